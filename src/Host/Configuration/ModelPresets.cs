namespace Scst.Host.Configuration;

/// <summary>
/// LAVIS's <c>blip2_t5</c> model types (<c>Blip2T5.PRETRAINED_MODEL_CONFIG_DICT</c>): each is the values of its
/// <c>lavis/configs/models/blip2/*.yaml</c> plus <c>Blip2T5.from_config</c>'s defaults for keys that file leaves out
/// (<c>max_txt_len</c> 32, <c>vit_model</c> eva_clip_g). A preset value applies when the user's file does not set the
/// key. Two entries are ours: <c>load_pretrained: true</c> (LAVIS always loads <c>pretrained</c> unless it loads
/// <c>finetuned</c>) and <c>feed_forward_activation: gelu</c> (LAVIS's <c>Blip2T5.__init__</c> sets the FlanT5 config's
/// <c>dense_act_fn = "gelu"</c>, exact GELU, where Hugging Face computes FlanT5's gated FFN with <c>gelu_new</c>).
/// LAVIS's <c>pretrained</c>/<c>finetuned</c> URLs are not presets: nothing is downloaded, the user names the folder.
/// </summary>
public static class ModelPresets
{
    public const string Tiny = "tiny";

    /// <summary>The LAVIS file each model type comes from (relative to <c>lavis/</c>).</summary>
    public static readonly IReadOnlyDictionary<string, string> Files = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["pretrain_flant5xl"] = "configs/models/blip2/blip2_pretrain_flant5xl.yaml",
        ["pretrain_flant5xl_vitL"] = "configs/models/blip2/blip2_pretrain_flant5xl_vitL.yaml",
        ["pretrain_flant5xxl"] = "configs/models/blip2/blip2_pretrain_flant5xxl.yaml",
        ["caption_coco_flant5xl"] = "configs/models/blip2/blip2_caption_flant5xl.yaml",
    };

    public static IEnumerable<string> Names => new[] { Tiny }.Concat(Files.Keys);

    /// <summary>Preset values by key path, as YAML scalars; null for <c>tiny</c> (no preset: the demo's architecture).</summary>
    public static IReadOnlyDictionary<string, string>? Get(string modelType)
    {
        if (!Files.ContainsKey(modelType)) return null;
        var caption = modelType == "caption_coco_flant5xl";
        var size = caption ? "364" : "224";
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["model.load_pretrained"] = "true",
            ["model.load_finetuned"] = caption ? "true" : "false",
            ["model.vit_model"] = modelType == "pretrain_flant5xl_vitL" ? "clip_L" : "eva_clip_g",
            ["model.image_size"] = size,
            ["model.drop_path_rate"] = "0",
            ["model.use_grad_checkpoint"] = "false",
            ["model.vit_precision"] = caption ? "fp32" : "fp16",
            ["model.freeze_vit"] = caption ? "false" : "true",
            ["model.num_query_token"] = "32",
            ["model.t5_model"] = modelType == "pretrain_flant5xxl" ? "google/flan-t5-xxl" : "google/flan-t5-xl",
            ["model.prompt"] = caption ? "a photo of" : "",
            ["model.max_txt_len"] = "32",
            ["model.feed_forward_activation"] = "gelu",
            ["datasets.*.vis_processor.train.name"] = "blip_image_train",
            ["datasets.*.vis_processor.eval.name"] = "blip_image_eval",
            ["datasets.*.text_processor.train.name"] = "blip_caption",
            ["datasets.*.text_processor.eval.name"] = "blip_caption",
        };
    }
}

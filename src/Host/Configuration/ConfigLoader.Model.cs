using Scst.Training.Configuration;
using Scst.Training;

namespace Scst.Host.Configuration;

// The model section: LAVIS's blip2_t5 keys, model_type presets, the tokenizer and the tiny architecture.
public static partial class ConfigLoader
{
    public static readonly string[] Archs = ["blip2_t5", "t5"];

    private static ModelOptions ReadModel(YamlSection s)
    {
        // LAVIS's own model-type files write the model type as arch (arch: pretrain_flant5xl); it means blip2_t5.
        var arch = s.GetString("arch", "blip2_t5", [.. Archs, .. ModelPresets.Files.Keys]);
        var typeFromArch = ModelPresets.Files.ContainsKey(arch) ? arch : null;
        var modelType = s.GetString("model_type", typeFromArch ?? ModelPresets.Tiny);
        if (typeFromArch is not null)
        {
            if (s.Has("model_type") && modelType != typeFromArch)
                s.Error("model_type", $"arch '{typeFromArch}' is a blip2_t5 model type (as LAVIS's model files write it) but model_type is '{modelType}': set arch: blip2_t5 and one model_type");
            s.Resolve("arch", "blip2_t5", $"{s.SourceOf("arch")} (a blip2_t5 model type)");
            if (!s.Has("model_type")) s.Resolve("model_type", typeFromArch, $"{s.SourceOf("arch")} (arch)");
            arch = "blip2_t5";
        }
        var preset = ModelPresets.Get(modelType);
        if (preset is not null) s.Trace.UsePreset(modelType, preset);
        else if (modelType != ModelPresets.Tiny)
            s.Error("model_type", $"unknown model_type '{modelType}': expected one of {string.Join(" | ", ModelPresets.Names)} (LAVIS's blip2_t5 types; tiny is the demo's architecture){YamlSection.Suggest(modelType, ModelPresets.Names)}");

        var loadPretrained = s.GetBool("load_pretrained", false);
        var pretrained = CheckpointPath(s, "pretrained");
        if (loadPretrained && pretrained is null)
            s.Error("pretrained", preset is null
                ? "load_pretrained is true, so 'pretrained' must name a Hugging Face folder or checkpoint"
                : $"model_type {modelType} loads pretrained weights: name the Hugging Face BLIP-2 folder (config.json + *.safetensors, e.g. a download of Salesforce/blip2-flan-t5-xl) in model.pretrained; nothing is downloaded");
        var loadFinetuned = s.GetBool("load_finetuned", false);
        var finetuned = CheckpointPath(s, "finetuned");
        if (loadFinetuned && finetuned is null)
            s.Error("finetuned", preset is not null && !s.Has("load_finetuned")
                ? $"model_type {modelType} has load_finetuned: true (LAVIS loads its COCO-finetuned weights): name our checkpoint of them in 'finetuned', or set load_finetuned: false and point 'pretrained' at a folder that holds them (e.g. Salesforce/blip2-flan-t5-xl-coco)"
                : "load_finetuned is true, so 'finetuned' must name a checkpoint");
        var freezeVit = s.GetBool("freeze_vit", true);
        var prompt = s.GetString("prompt", "");
        var maxTxtLen = s.GetInt("max_txt_len", 32, 1, 4096);
        var act = s.GetString("feed_forward_activation", loadPretrained ? "gelu" : "gelu_new", "gelu_new", "gelu", "relu");
        if (loadPretrained && !s.Has("feed_forward_activation") && preset is null)
            s.Resolve("feed_forward_activation", act, "default with load_pretrained (LAVIS's blip2_t5 sets the T5's dense_act_fn = gelu)");
        var useGradCheckpoint = s.GetBool("use_grad_checkpoint", false);
        var vitPrecision = s.GetString("vit_precision", "fp32", "fp16", "fp32", "bf16");
        if (vitPrecision != "fp32" && !(loadPretrained && freezeVit))
            s.Error("vit_precision", $"vit_precision {vitPrecision} holds a frozen pretrained ViT in half precision (LAVIS); it needs load_pretrained: true and freeze_vit: true, otherwise use fp32");
        var vitModel = s.GetOptionalString("vit_model", "eva_clip_g", "clip_L");
        if (vitModel == "clip_L")
            s.Error("vit_model", "clip_L (LAVIS's CLIP ViT-L: ln_pre, QuickGELU, key biases) has no Hugging Face BLIP-2 layout this loader reads; use eva_clip_g (model_type pretrain_flant5xl)");
        if (vitModel is not null && !loadPretrained)
            s.Error("vit_model", "vit_model names LAVIS's pretrained ViT; the tiny model (load_pretrained: false) is built from model.architecture: remove it");
        var dropPath = s.GetDouble("drop_path_rate", 0, 0, 1);
        if (dropPath != 0)
            s.Error("drop_path_rate", "stochastic depth in the ViT is not implemented; use 0 (the value of every LAVIS BLIP-2 model file)");
        var imageSize = s.GetOptionalInt("image_size", 8);
        var numQueryToken = s.GetOptionalInt("num_query_token", 1);
        var t5Model = s.GetOptionalString("t5_model");
        if (t5Model is not null && !loadPretrained)
            s.Error("t5_model", "t5_model names a pretrained T5; the tiny model (load_pretrained: false) is built from model.architecture: remove it");
        else if (t5Model is not null && !PretrainedChecks.FlanT5.ContainsKey(t5Model))
            s.Error("t5_model", $"'{t5Model}' is not a T5 whose shape is known here; the T5 comes from the folder in model.pretrained and t5_model is checked against it: use one of {string.Join(" | ", PretrainedChecks.FlanT5.Keys)}, or remove it");

        // A pretrained T5 reads ids of its own sentencepiece vocabulary: by default the folder's spiece.model.
        var t = s.Section("tokenizer");
        var tok = new TokenizerOptions(
            t.GetString("type", loadPretrained ? "sentencepiece" : "word", "word", "sentencepiece"),
            t.GetOptionalString("path") ?? (loadPretrained && pretrained is not null && !t.IsPresent ? Path.Combine(pretrained, "spiece.model") : null),
            t.GetInt("min_freq", 1, 1));
        if (tok.Path is not null && t.SourceOf("path") is null) t.Resolve("path", tok.Path, "default: model.pretrained/spiece.model");
        if (tok.Type == "sentencepiece" && tok.Path is null && !(loadPretrained && pretrained is null && !t.IsPresent)) // else the missing folder is the error
            t.Error("path", "a sentencepiece tokenizer needs 'path' (the spiece.model file)");
        if (tok.Type == "word" && loadPretrained)
            t.Error("type", "model.tokenizer: a word vocabulary built from the captions gives a pretrained T5 meaningless ids; use type: sentencepiece with the checkpoint's spiece.model (the default with load_pretrained)");
        t.Finish();

        var archOpts = ReadArchitecture(s.Section("architecture"), loadPretrained);
        s.Finish();
        return new ModelOptions(arch, modelType, loadPretrained, pretrained, loadFinetuned, finetuned, freezeVit, prompt,
            maxTxtLen, act, tok, archOpts, vitPrecision, t5Model, numQueryToken, imageSize, loadPretrained ? vitModel : null,
            UseGradCheckpoint: useGradCheckpoint);
    }

    // LAVIS's model files name .pth URLs; we read local safetensors only and never unpickle.
    private static string? CheckpointPath(YamlSection s, string key)
    {
        var p = s.GetOptionalString(key);
        if (p is null) return null;
        if (p.Length == 0) { s.Resolve(key, null, $"{s.SourceOf(key)} (empty: not set)"); return null; }
        var what = key == "pretrained"
            ? "name a local Hugging Face BLIP-2 safetensors folder (e.g. a download of Salesforce/blip2-flan-t5-xl)"
            : "convert LAVIS's finetuned weights to a Hugging Face safetensors folder and name it in pretrained with load_finetuned: false (finetuned names our own checkpoints)";
        if (p.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || p.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            s.Error(key, $"'{p}' is a URL and nothing is downloaded: {what}; docs/real-checkpoint.md");
        else if (p.EndsWith(".pth", StringComparison.OrdinalIgnoreCase) || p.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || p.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
            s.Error(key, $"'{p}' is a pickled PyTorch file, never loaded (unpickling can run code): convert it to safetensors and {what}; docs/real-checkpoint.md");
        return p;
    }

    private static TinyArchitecture? ReadArchitecture(YamlSection a, bool loadPretrained)
    {
        TinyArchitecture? archOpts = null;
        if (a.IsPresent || !loadPretrained)
        {
            archOpts = new TinyArchitecture(
                ImageSize: a.GetInt("image_size", 0, 8),
                PatchSize: a.GetInt("patch_size", 8, 1),
                VisionHidden: a.GetInt("vision_hidden", 64, 8),
                VisionLayers: a.GetInt("vision_layers", 2, 1),
                VisionHeads: a.GetInt("vision_heads", 4, 1),
                VisionMlp: a.GetInt("vision_mlp", 128, 1),
                NumQueryTokens: a.GetInt("num_query_tokens", 8, 1),
                QformerHidden: a.GetInt("qformer_hidden", 64, 8),
                QformerLayers: a.GetInt("qformer_layers", 1, 1),
                QformerHeads: a.GetInt("qformer_heads", 4, 1),
                QformerIntermediate: a.GetInt("qformer_intermediate", 128, 1),
                CrossAttentionFrequency: a.GetInt("cross_attention_frequency", 1, 1),
                DModel: a.GetInt("d_model", 64, 8),
                DKv: a.GetInt("d_kv", 16, 1),
                DFf: a.GetInt("d_ff", 128, 1),
                NumHeads: a.GetInt("num_heads", 4, 1),
                EncoderLayers: a.GetInt("encoder_layers", 1, 1),
                DecoderLayers: a.GetInt("decoder_layers", 2, 1),
                RelativeAttentionNumBuckets: a.GetInt("relative_attention_num_buckets", 16, 2),
                RelativeAttentionMaxDistance: a.GetInt("relative_attention_max_distance", 32, 2),
                DropoutRate: a.GetDouble("dropout_rate", 0.0, 0, 1));
        }
        a.Finish();
        return archOpts;
    }

    /// <summary>
    /// Checks that need the model and the datasets together: one image size for the ViT and the data, the tiny
    /// model's query count, and the prompt (the T5 encoder's, from model.prompt or the text processor's).
    /// </summary>
    private static ModelOptions Reconcile(YamlSection model, ModelOptions m, IReadOnlyDictionary<string, DatasetOptions> datasets,
        IReadOnlyDictionary<string, (string Prompt, string Source)> textPrompts)
    {
        var a = model.Section("architecture");
        foreach (var d in datasets.Values)
        {
            var data = d.Name == "preprocess" ? "preprocess.vis_processor" : $"datasets.{d.Name}";
            if (m.ImageSize is int size && d.ImageSize != size)
                model.Error("image_size", $"model.image_size is {size} but {data} feeds {d.ImageSize} px images: LAVIS builds the ViT for model.image_size; set the same size in both");
            if (m.Architecture is { } arch && arch.ImageSize != 0 && arch.ImageSize != d.ImageSize)
                a.Error("image_size", $"architecture.image_size is {arch.ImageSize} but {data} feeds {d.ImageSize} px images (the ViT is built for the data's size): set the same size, or remove it");
        }
        if (m.Architecture is { } tiny && datasets.Values.FirstOrDefault() is { } first)
        {
            if (first.ImageSize % tiny.PatchSize != 0)
                a.Error("patch_size", $"the image size {first.ImageSize} must be a multiple of patch_size {tiny.PatchSize}");
            if (tiny.ImageSize == 0) a.Resolve("image_size", first.ImageSize, $"datasets.{first.Name} image size");
            m = m with { Architecture = tiny with { ImageSize = first.ImageSize } };
            if (!m.LoadPretrained && m.NumQueryToken is int q && q != tiny.NumQueryTokens)
                model.Error("num_query_token", $"num_query_token is {q} but the tiny model's architecture.num_query_tokens is {tiny.NumQueryTokens}: set them equal, or remove num_query_token");
        }

        // In blip2_t5 the prompt is the T5 encoder's input; LAVIS's caption text processor would put it in the decoder's
        // targets, which its blip2_t5.forward never reads (it needs text_output): so a text processor prompt is the encoder prompt.
        var explicitModel = model.SourceOf("prompt");
        foreach (var (name, (prompt, source)) in textPrompts)
        {
            if (explicitModel is not null && prompt.Trim() != m.Prompt.Trim())
                model.Error("prompt", $"model.prompt '{m.Prompt}' and datasets.{name}.text_processor.train.prompt '{prompt}' differ: in blip2_t5 both are the T5 encoder's prompt; set one");
            else if (explicitModel is null)
            {
                if (m.Prompt != prompt && textPrompts.Values.Any(p => p.Prompt.Trim() != prompt.Trim()))
                    model.Error("prompt", $"the datasets' text_processor.train.prompt values differ; the T5 encoder has one prompt: set model.prompt");
                m = m with { Prompt = prompt };
                model.Resolve("prompt", prompt, $"{source} (datasets.{name}.text_processor.train.prompt)");
            }
        }
        return m;
    }
}

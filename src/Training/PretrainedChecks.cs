using Scst.Training.Configuration;
using Scst.Model.Blip2;

namespace Scst.Training;

/// <summary>
/// LAVIS keys that describe the pretrained model (<c>t5_model</c>, <c>num_query_token</c>) checked against the folder
/// <c>model.pretrained</c> names, before its weights are read: in LAVIS they build the model; here the folder does,
/// so a key that disagrees with it is an error, not a silent difference.
/// </summary>
public static class PretrainedChecks
{
    /// <summary>Flan-T5 shapes by hub name (d_model, num_layers, num_heads, d_ff of each model's <c>config.json</c>).</summary>
    public static readonly IReadOnlyDictionary<string, (int DModel, int Layers, int Heads, int DFf)> FlanT5 =
        new Dictionary<string, (int, int, int, int)>(StringComparer.Ordinal)
        {
            ["google/flan-t5-small"] = (512, 8, 6, 1024),
            ["google/flan-t5-base"] = (768, 12, 12, 2048),
            ["google/flan-t5-large"] = (1024, 24, 16, 2816),
            ["google/flan-t5-xl"] = (2048, 24, 32, 5120),
            ["google/flan-t5-xxl"] = (4096, 24, 64, 10240),
        };

    /// <summary>Throws, naming the config key, when <paramref name="m"/> disagrees with the folder's <paramref name="cfg"/>.</summary>
    public static void Check(ModelOptions m, Blip2Config cfg, string dir)
    {
        var config = Path.Combine(dir, "config.json");
        if (m.NumQueryToken is int q && q != cfg.NumQueryTokens)
            throw new InvalidDataException($"model.num_query_token is {q} but {config} has num_query_tokens {cfg.NumQueryTokens}: the query tokens are the checkpoint's; set num_query_token: {cfg.NumQueryTokens} or remove it");
        // LAVIS's eva_clip_g is EVA-CLIP ViT-g with its last layer removed (create_eva_vit_g): 39 layers of width 1408.
        if (m.VitModel == "eva_clip_g" && (cfg.Vision.HiddenSize, cfg.Vision.NumHiddenLayers) != (1408, 39))
            throw new InvalidDataException($"model.vit_model is eva_clip_g (hidden size 1408, 39 layers) but the ViT in {config} has hidden size {cfg.Vision.HiddenSize} and {cfg.Vision.NumHiddenLayers} layers: point model.pretrained at a BLIP-2 folder with LAVIS's ViT-g, or remove vit_model");
        if (m.T5Model is { } name && FlanT5.TryGetValue(name, out var shape))
        {
            var t = cfg.Text;
            var actual = (t.DModel, t.NumLayers, t.NumHeads, t.DFf);
            if (actual != shape)
                throw new InvalidDataException($"model.t5_model is {name} (d_model {shape.DModel}, {shape.Layers} layers, {shape.Heads} heads, d_ff {shape.DFf}) but the T5 in {config} has d_model {t.DModel}, {t.NumLayers} layers, {t.NumHeads} heads, d_ff {t.DFf}: name the T5 the folder holds, or remove t5_model");
        }
    }
}

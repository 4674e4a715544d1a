using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Scst.Model.Optim;

public static class ParameterGroups
{
    /// <summary>
    /// LAVIS's split (<c>RunnerBase.optimizer</c>): frozen parameters are left out; a parameter gets no weight decay
    /// when <c>p.ndim &lt; 2 or "bias" in n or "ln" in n or "bn" in n</c> — the same plain substring tests, so HF T5's
    /// <c>layer_norm.weight</c> (1-D) is exempt through ndim, as in Python.
    /// </summary>
    public static IReadOnlyList<ParameterGroup> Lavis(IEnumerable<(string Name, Parameter Parameter)> namedParameters, double weightDecay, double lrScale = 1.0)
    {
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (n, p) in namedParameters)
        {
            if (!p.requires_grad) continue;
            if (IsNoDecay(n, p)) noDecay.Add((n, p));
            else decay.Add((n, p));
        }
        return [new ParameterGroup("decay", decay, weightDecay, lrScale), new ParameterGroup("no_decay", noDecay, 0.0, lrScale)];
    }

    public static bool IsNoDecay(string name, Tensor p) =>
        p.ndim < 2 || name.Contains("bias", StringComparison.Ordinal) || name.Contains("ln", StringComparison.Ordinal) || name.Contains("bn", StringComparison.Ordinal);

    /// <summary>
    /// LAVIS's AdamW (<c>RunnerBase.optimizer</c>): its parameter groups, betas (0.9, <c>run.beta2</c>), eps 1e-8; with
    /// <paramref name="lrLayerDecay"/> ≠ 1 the trainable ViT parameters get per-layer groups (<see cref="LavisLayerDecay"/>).
    /// </summary>
    public static AdamW LavisAdamW(nn.Module module, double initLr, double weightDecay, double beta2 = 0.999, double lrLayerDecay = 1.0) =>
        new(lrLayerDecay == 1.0 ? Lavis(module.named_parameters(), weightDecay) : LavisLayerDecay(module.named_parameters(), weightDecay, lrLayerDecay),
            initLr, 0.9, beta2);

    /// <summary>
    /// <c>Blip2Base.get_optimizer_params(weight_decay, lr_scale=lr_layer_decay)</c>: a trainable parameter of the ViT
    /// (LAVIS's <c>visual_encoder</c>) with layer id <c>l</c> goes to group <c>vit_layer_{l}_{decay|no_decay}</c> with
    /// <c>lr_scale = decay^(L + 1 − l)</c>, L the number of ViT blocks; everything else keeps scale 1. Layer ids are EVA's
    /// <c>get_num_layer</c> on the Hugging Face names: embeddings (cls token, position and patch embedding) 0, block b
    /// b + 1, any other ViT parameter L. HF's <c>vision_model.post_layernorm</c> is LAVIS's <c>ln_vision</c>, outside the
    /// visual encoder: scale 1. Frozen parameters are left out, so with <c>freeze_vit</c> no ViT group exists. Groups come
    /// in order of first appearance, as LAVIS builds them; weight decay follows <see cref="IsNoDecay"/>.
    /// </summary>
    public static IReadOnlyList<ParameterGroup> LavisLayerDecay(IEnumerable<(string Name, Parameter Parameter)> namedParameters, double weightDecay, double lrLayerDecay)
    {
        var all = namedParameters.ToList();
        var vitLayers = VitBlockCount(all.Select(np => np.Name));
        var trainable = all.Where(np => np.Parameter.requires_grad);
        var groups = new List<(string Name, double Wd, double Scale, List<(string, Parameter)> Members)>();
        foreach (var (n, p) in trainable)
        {
            var noDecay = IsNoDecay(n, p);
            var name = noDecay ? "no_decay" : "decay";
            var scale = 1.0;
            if (VitLayerId(n, vitLayers) is int layer)
            {
                name = $"vit_layer_{layer}_{name}";
                scale = Math.Pow(lrLayerDecay, vitLayers + 1 - layer);
            }
            var g = groups.FindIndex(x => x.Name == name);
            if (g < 0) { groups.Add((name, noDecay ? 0.0 : weightDecay, scale, [])); g = groups.Count - 1; }
            groups[g].Members.Add((n, p));
        }
        return [.. groups.Select(g => new ParameterGroup(g.Name, g.Members, g.Wd, g.Scale))];
    }

    private const string Vit = "vision_model.";
    private const string VitBlocks = "vision_model.encoder.layers.";

    /// <summary>EVA's <c>get_num_layer</c> for a Hugging Face BLIP-2 name; null outside LAVIS's <c>visual_encoder</c>.</summary>
    public static int? VitLayerId(string name, int vitLayers)
    {
        if (!name.StartsWith(Vit, StringComparison.Ordinal) || name.StartsWith("vision_model.post_layernorm.", StringComparison.Ordinal)) return null;
        if (name.StartsWith("vision_model.embeddings.", StringComparison.Ordinal)) return 0;
        if (name.StartsWith(VitBlocks, StringComparison.Ordinal))
            return int.Parse(name.AsSpan(VitBlocks.Length, name.IndexOf('.', VitBlocks.Length) - VitBlocks.Length), System.Globalization.CultureInfo.InvariantCulture) + 1;
        return vitLayers;
    }

    // LAVIS asks the ViT for len(blocks); the names carry it (the highest block index + 1, frozen or not).
    private static int VitBlockCount(IEnumerable<string> names)
    {
        var max = -1;
        foreach (var n in names)
            if (n.StartsWith(VitBlocks, StringComparison.Ordinal))
                max = Math.Max(max, int.Parse(n.AsSpan(VitBlocks.Length, n.IndexOf('.', VitBlocks.Length) - VitBlocks.Length), System.Globalization.CultureInfo.InvariantCulture));
        return max + 1;
    }
}

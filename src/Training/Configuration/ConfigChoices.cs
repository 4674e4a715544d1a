using Scst.Reward;

namespace Scst.Training.Configuration;

/// <summary><c>scst.mode</c>: sync (every update waits for rollouts of its own weights) or async (bounded staleness, importance-weighted).</summary>
public enum ScstMode { Sync, Async }

/// <summary><c>scst.sampling</c>: K beams (deterministic) or K samples per image.</summary>
public enum RolloutSampling { Beam, Sample }

/// <summary><c>scst.loss_normalization</c>: how a caption's log-probability is normalised in the loss (<see cref="ScstLoss"/>).</summary>
public enum LossNormalization { LengthMean, Sum, TokenMean }

/// <summary><c>run.ce_sample_unit</c>: what a CE epoch visits — every (image, caption) annotation, or every image once.</summary>
public enum CeSampleUnit { Caption, Image }

/// <summary>
/// The config's names of each algorithm choice. The YAML, checkpoints and summary.json keep these strings; the code
/// past the loader sees only the enums.
/// </summary>
public static class ConfigChoices
{
    public static readonly ConfigChoice<BaselineKind> Baseline =
        new(("mean", BaselineKind.MeanOfK), ("leave_one_out", BaselineKind.LeaveOneOut), ("greedy", BaselineKind.Greedy));
    public static readonly ConfigChoice<RolloutSampling> Sampling = new(("beam", RolloutSampling.Beam), ("sample", RolloutSampling.Sample));
    public static readonly ConfigChoice<ScstMode> Mode = new(("sync", ScstMode.Sync), ("async", ScstMode.Async));
    public static readonly ConfigChoice<LossNormalization> LossNormalization =
        new(("length_mean", Configuration.LossNormalization.LengthMean), ("sum", Configuration.LossNormalization.Sum), ("token_mean", Configuration.LossNormalization.TokenMean));
    public static readonly ConfigChoice<CeSampleUnit> CeSampleUnit = new(("caption", Configuration.CeSampleUnit.Caption), ("image", Configuration.CeSampleUnit.Image));

    public static string Name(this BaselineKind v) => Baseline.NameOf(v);
    public static string Name(this RolloutSampling v) => Sampling.NameOf(v);
    public static string Name(this ScstMode v) => Mode.NameOf(v);
    public static string Name(this LossNormalization v) => LossNormalization.NameOf(v);
    public static string Name(this CeSampleUnit v) => CeSampleUnit.NameOf(v);
}

/// <summary>One config choice: its names in the YAML, in order, and the enum value of each.</summary>
public sealed class ConfigChoice<T>(params (string Name, T Value)[] choices) where T : struct, Enum
{
    public string[] Names { get; } = [.. choices.Select(c => c.Name)];

    public T Parse(string name) => choices.FirstOrDefault(c => c.Name == name) is { Name: not null } c
        ? c.Value
        : throw new ArgumentException($"'{name}' is not one of {string.Join(", ", Names)}");

    public string NameOf(T value) => choices.First(c => EqualityComparer<T>.Default.Equals(c.Value, value)).Name;
}

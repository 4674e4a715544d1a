using System.Globalization;
using System.Text;

namespace Scst.Training;

/// <summary>
/// The one human-readable line a driver prints every <c>run.log_freq</c> updates, e.g.
/// <c>scst update 120/400 | loss 0.0123 | reward 1.234 (greedy 1.1) | adv std 0.31 | len 9.2 | lr 1.0e-05 | grad 0.8 | 2.1 s/update</c>.
/// Pure: the drivers pass the update's metrics row (the keys of metrics.jsonl) and their own timing.
/// </summary>
public static class UpdateLog
{
    /// <summary>LAVIS's default <c>run.log_freq</c> (its runners read <c>run_cfg.get("log_freq", 50)</c>).</summary>
    public const int DefaultEvery = 50;

    /// <summary>Whether 1-based update <paramref name="update"/> gets a line; <paramref name="every"/> 0 (or less) means never.</summary>
    public static bool Due(long update, int every) => every > 0 && update > 0 && update % every == 0;

    /// <summary>
    /// The line for <paramref name="mode"/> ("ce" or "scst") at <paramref name="update"/> of <paramref name="total"/>
    /// (0 or less: unknown, shown without "/total"). Metrics missing from <paramref name="values"/> or not finite are
    /// left out, as is the timing when <paramref name="secondsPerUpdate"/> is not a positive number.
    /// </summary>
    public static string Line(string mode, long update, long total, IReadOnlyDictionary<string, double> values, double secondsPerUpdate)
    {
        var line = new StringBuilder(mode).Append(" update ").Append(update.ToString(CultureInfo.InvariantCulture));
        if (total > 0) line.Append('/').Append(total.ToString(CultureInfo.InvariantCulture));
        void Part(string text) => line.Append(" | ").Append(text);

        if (Get(values, "loss") is { } loss) Part("loss " + Num(loss));
        if (Get(values, "reward_mean") is { } reward)
        {
            // With the mean and leave-one-out baselines, baseline_mean equals reward_mean on average: only the greedy
            // baseline (a different caption) says something the reward does not.
            var greedy = Get(values, "greedy_reward_mean");
            Part("reward " + Num(reward) + (greedy is { } g ? $" (greedy {Num(g)})" : ""));
        }
        if (Get(values, "advantage_std") is { } adv) Part("adv std " + Num(adv));
        if (Get(values, "caption_length") is { } len) Part("len " + Num(len));
        if (Get(values, "staleness_mean") is { } stale) Part("stale " + Num(stale));
        if (Get(values, "lr") is { } lr) Part("lr " + lr.ToString("0.0e+00", CultureInfo.InvariantCulture));
        if (Get(values, "grad_norm") is { } grad) Part("grad " + Num(grad));
        if (double.IsFinite(secondsPerUpdate) && secondsPerUpdate > 0) Part(Num(secondsPerUpdate) + " s/update");
        return line.ToString();
    }

    static double? Get(IReadOnlyDictionary<string, double> values, string key) =>
        values.TryGetValue(key, out var v) && double.IsFinite(v) ? v : null;

    // Four significant digits; scientific below 1e-3 so a tiny loss does not print as 0, whole numbers from 1000 up
    // (where G4 would switch to "1.235E+04").
    static string Num(double v) => Math.Abs(v) switch
    {
        0 => "0",
        < 1e-3 => v.ToString("0.0e+00", CultureInfo.InvariantCulture),
        < 1000 => v.ToString("G4", CultureInfo.InvariantCulture),
        _ => v.ToString("F0", CultureInfo.InvariantCulture),
    };
}

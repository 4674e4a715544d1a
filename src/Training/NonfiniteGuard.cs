using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Scst.Training;

/// <summary>The run stopped because <c>run.max_nonfinite</c> updates in a row had a non-finite loss, reward or gradient norm.</summary>
public sealed class NonfiniteUpdatesException(string message) : Exception(message);

/// <summary>
/// What both drivers do with an update whose loss, reward or gradient norm is NaN or infinite: the update is skipped
/// (<see cref="Optimization.Step"/> takes no optimizer step and clears the gradients, so weights and optimizer state are
/// those before it), it still counts as an update (the data cursor, LR schedule and sampling seeds move on, so a
/// resumed or replayed run repeats it exactly), it is logged and counted (<c>nonfinite_skipped</c> in metrics.jsonl and
/// summary.json), and after <c>run.max_nonfinite</c> in a row the run stops: a skipped update leaves the weights
/// unchanged, so that many failures on fresh batches mean the weights or optimizer state are broken, not one batch.
/// </summary>
public sealed class NonfiniteGuard(int maxInARow)
{
    /// <summary>The key of the update rows and summary.json: updates skipped so far in the run.</summary>
    public const string MetricKey = "nonfinite_skipped";

    string _lastReason = "";

    /// <summary>Updates skipped in the whole run (restored on resume by the driver).</summary>
    public long Skipped { get; set; }

    /// <summary>Skipped updates since the last applied one, in this process.</summary>
    public int InARow { get; private set; }

    /// <summary>
    /// Counts update <paramref name="update"/> (1-based, as metrics.jsonl's step) skipped for <paramref name="reason"/>
    /// (null: applied), logs a skip, and adds the run's count to the update's metrics row.
    /// </summary>
    public void Count(long update, string? reason, IDictionary<string, double> values, ILogger log)
    {
        if (reason is null) InARow = 0;
        else
        {
            Skipped++;
            InARow++;
            _lastReason = reason;
            log.LogWarning("update {Update}: non-finite {Reason}; update skipped (no optimizer step), {InARow} in a row of run.max_nonfinite {Max}, {Skipped} in the run",
                update, reason, InARow, maxInARow, Skipped);
        }
        values[MetricKey] = Skipped;
    }

    /// <summary>After <see cref="Count"/>: the error that stops the run once <c>max_nonfinite</c> updates in a row were skipped, else null.</summary>
    public NonfiniteUpdatesException? Exhausted(long update) => InARow < maxInARow ? null : new NonfiniteUpdatesException(
        $"stopped at update {update}: {InARow} updates in a row had a non-finite {_lastReason} (run.max_nonfinite: {maxInARow}); the weights are those of update {update - InARow}. " +
        "Lower run.init_lr or set run.max_grad_norm, then resume (train --resume; the actor learner: the same command)");
}

/// <summary>
/// Fault injection for tests and drills, through the real update code: <c>SCST_INJECT_NONFINITE=3,7-9</c> makes the
/// loss of those updates (1-based, as metrics.jsonl's step) NaN before it is backpropagated, in CE and SCST, in the
/// plain trainer and the actor learner alike. Unset in normal runs.
/// </summary>
public static class FaultInjection
{
    public const string NonfiniteVariable = "SCST_INJECT_NONFINITE";

    static readonly Lazy<List<(long From, long To)>> Updates = new(() => ParseUpdates(Environment.GetEnvironmentVariable(NonfiniteVariable)));

    /// <summary>True when <see cref="NonfiniteVariable"/> names update <paramref name="update"/> (1-based).</summary>
    public static bool NonfiniteLossAt(long update) => Updates.Value.Exists(r => r.From <= update && update <= r.To);

    /// <summary>Reads the variable now, so a malformed value stops the run before it starts (<see cref="InvalidOperationException"/>, one line).</summary>
    public static void Validate() => _ = Updates.Value;

    /// <summary>"3,7-9" → [(3, 3), (7, 9)]; empty or null → none.</summary>
    public static List<(long From, long To)> ParseUpdates(string? text)
    {
        var set = new List<(long, long)>();
        if (string.IsNullOrWhiteSpace(text)) return set;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-', 2);
            if (!long.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var from) || from < 1 ||
                !long.TryParse(range.Length == 2 ? range[1] : range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var to) || to < from)
                throw new InvalidOperationException($"{NonfiniteVariable}: '{part}' is not an update number (1, 2, ...) or range (7-9); expected e.g. {NonfiniteVariable}=3,7-9");
            set.Add((from, to));
        }
        return set;
    }
}

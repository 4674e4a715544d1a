using System.Globalization;
using Scst.Training;

namespace Scst.Host.Reporting;

/// <summary>
/// What long work reports as text, for both console modes. Every finished task (a training phase, one evaluation)
/// gives exactly one summary line. Without a terminal (<paramref name="plainProgress"/>), progress lines too: the main
/// phase at every 10 % and at least every <paramref name="interval"/>, evaluations (short sub-tasks) only on the interval.
/// </summary>
public sealed class ProgressLines(string title, Func<DateTime> clock, TimeSpan interval, bool plainProgress)
{
    sealed class Phase
    {
        public DateTime Start, LastLine;
        public long Done, Total, StartDone;
        public int LastDecile;
        public bool Finished;
        public IReadOnlyDictionary<string, double> Last = new Dictionary<string, double>();
    }

    readonly Dictionary<string, Phase> _phases = [];

    public static bool IsSubTask(string phase) => phase.StartsWith("eval", StringComparison.Ordinal);

    /// <summary>Lines to show for this report (often none).</summary>
    public IReadOnlyList<string> Report(TrainingProgress p)
    {
        var now = clock();
        var lines = new List<string>();
        // A finished phase reported again is a new run of it (an evaluation of one batch reports only its end).
        if (!_phases.TryGetValue(p.Phase, out var s) || s.Finished || p.Done < s.Done)
            _phases[p.Phase] = s = new Phase { Start = now, LastLine = now, Done = p.Done, StartDone = p.Done };
        s.Done = p.Done;
        s.Total = p.Total;
        if (p.Last.Count > 0) s.Last = p.Last;
        if (p.Total > 0 && p.Done >= p.Total)
        {
            s.Finished = true;
            // A task seen only at its end (one batch) has no time of its own to show.
            var took = now > s.Start ? $" in {Duration(now - s.Start)}" : "";
            lines.Add($"{Name(p.Phase)}: done {p.Done}/{p.Total}{took}{Values(s)}");
            return lines;
        }
        if (!plainProgress) return lines;
        var decile = p.Total > 0 ? (int)(10 * p.Done / p.Total) : 0;
        var due = now - s.LastLine >= interval || (!IsSubTask(p.Phase) && decile > s.LastDecile);
        if (!due) return lines;
        s.LastLine = now;
        s.LastDecile = decile;
        var elapsed = (now - s.Start).TotalSeconds;
        // The rate from this phase's first report (its work before that is not timed).
        var rate = elapsed > 0 ? (p.Done - s.StartDone) / elapsed : 0;
        // Rate and ETA once there are two reports to time between.
        var speed = rate > 0 ? $", {rate.ToString("G3", CultureInfo.InvariantCulture)}/s, eta {Duration(TimeSpan.FromSeconds((p.Total - p.Done) / rate))}" : "";
        lines.Add($"{Name(p.Phase)}: {p.Done}/{p.Total} ({(p.Total > 0 ? 100.0 * p.Done / p.Total : 0):F0}%){speed}{Values(s)}");
        return lines;
    }

    /// <summary>At the end of the work: one line for each phase left unfinished (stopped or interrupted).</summary>
    public IReadOnlyList<string> Unfinished()
    {
        var now = clock();
        return _phases.Where(kv => !kv.Value.Finished)
            .Select(kv => $"{Name(kv.Key)}: stopped at {kv.Value.Done}/{kv.Value.Total} after {Duration(now - kv.Value.Start)}{Values(kv.Value)}").ToList();
    }

    string Name(string phase) => $"{title} {phase}";

    static string Values(Phase s)
    {
        var shown = s.Last.Where(kv => kv.Key is "loss" or "reward_mean" or "lr")
            .Select(kv => $"{kv.Key} {kv.Value.ToString("G4", CultureInfo.InvariantCulture)}").ToList();
        return shown.Count > 0 ? "  " + string.Join("  ", shown) : "";
    }

    public static string Duration(TimeSpan t) =>
        t.TotalSeconds < 60 ? $"{t.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s"
        : t.TotalHours < 1 ? $"{(int)t.TotalMinutes}:{t.Seconds:00}" : $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}";
}

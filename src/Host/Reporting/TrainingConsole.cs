using Microsoft.Extensions.Logging;
using Scst.Training;
using Spectre.Console;

namespace Scst.Host.Reporting;

/// <summary>Progress of long work (rate and ETA) and the final metric tables, on a terminal or as plain lines.</summary>
public static class TrainingConsole
{
    /// <summary>How often a plain (non-terminal) progress line is written at most apart.</summary>
    public static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Runs <paramref name="work"/> with progress fed by its callback. On a terminal: live bars at the bottom, log lines
    /// above them, and each finished sub-task (an evaluation) leaves one summary line instead of a finished bar. Without
    /// one: plain lines through <paramref name="log"/> (so they carry the log format and reach the run's log file).
    /// </summary>
    public static T WithProgress<T>(string title, ILogger log, Func<Action<TrainingProgress>, T> work)
    {
        var live = ConsoleOutput.IsTerminal;
        var lines = new ProgressLines(title, () => DateTime.UtcNow, PlainInterval, plainProgress: !live);
        var gate = new object();
        void Emit(IEnumerable<string> text)
        {
            foreach (var l in text) log.LogInformation("{Progress}", l);
        }

        if (!live)
        {
            var r = work(p => { lock (gate) Emit(lines.Report(p)); });
            Emit(lines.Unfinished());
            return r;
        }

        T result = default!;
        using (ConsoleOutput.EnterLive())
        {
            AnsiConsole.Progress()
                .AutoClear(true)
                .HideCompleted(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                    new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    var lastDescription = DateTime.MinValue;
                    result = work(p =>
                    {
                        lock (gate)
                        {
                            if (!tasks.TryGetValue(p.Phase, out var task) || task.IsFinished)
                                tasks[p.Phase] = task = ctx.AddTask(Markup.Escape($"{title} {p.Phase}"), maxValue: Math.Max(1, p.Total));
                            task.MaxValue = Math.Max(1, p.Total);
                            task.Value = Math.Min(p.Done, task.MaxValue);
                            if (p.Last.Count > 0 && DateTime.UtcNow - lastDescription > TimeSpan.FromSeconds(1))
                            {
                                lastDescription = DateTime.UtcNow;
                                var shown = p.Last.Where(kv => kv.Key is "loss" or "reward_mean" or "lr").Select(kv => $"{kv.Key} {kv.Value:G4}");
                                task.Description = $"{Markup.Escape($"{title} {p.Phase}")} [grey]{Markup.Escape(string.Join("  ", shown))}[/]";
                            }
                            var done = lines.Report(p);
                            if (done.Count > 0) task.StopTask(); // hidden from the live area; its summary line goes above
                            Emit(done);
                        }
                    });
                    lock (gate) Emit(lines.Unfinished());
                });
        }
        return result;
    }

    public static void PrintMetrics(string title, IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>> metrics)
    {
        var table = new Table().Title(title).AddColumn("split");
        var names = new[] { "CIDEr", "Bleu_4", "ROUGE_L", "Bleu_1" };
        foreach (var n in names) table.AddColumn(new TableColumn(n).RightAligned());
        foreach (var (split, m) in metrics)
            table.AddRow(new[] { split }.Concat(names.Select(n => m.TryGetValue(n, out var v) ? v.ToString("F4") : "-")).ToArray());
        AnsiConsole.Write(table);
    }
}

using Scst.Actors.Training;
using Spectre.Console;

namespace Scst.Host.Reporting;

/// <summary>Progress bars with rate and ETA for training and evaluation, and the final metric tables.</summary>
public static class TrainingConsole
{
    /// <summary>Runs <paramref name="work"/> with a live progress display fed by its progress callback.</summary>
    public static T WithProgress<T>(string title, Func<Action<TrainingProgress>, T> work)
    {
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var lastDescription = DateTime.MinValue;
                result = work(p =>
                {
                    if (!tasks.TryGetValue(p.Phase, out var task))
                        tasks[p.Phase] = task = ctx.AddTask($"{title} {p.Phase}", maxValue: Math.Max(1, p.Total));
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Done;
                    if (p.Last.Count > 0 && DateTime.UtcNow - lastDescription > TimeSpan.FromSeconds(1))
                    {
                        lastDescription = DateTime.UtcNow;
                        var shown = p.Last.Where(kv => kv.Key is "loss" or "reward_mean" or "lr").Select(kv => $"{kv.Key} {kv.Value:G4}");
                        task.Description = $"{title} {p.Phase} [grey]{Markup.Escape(string.Join("  ", shown))}[/]";
                    }
                    if (p.Done >= p.Total && p.Phase.StartsWith("eval", StringComparison.Ordinal)) { task.StopTask(); tasks.Remove(p.Phase); }
                });
            });
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

using System.Text;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>A learner alone says what it waits for, with a command that works; a finished run's nodes leave quietly.</summary>
[Trait("Category", "Process")]
public class WaitingLearnerTests(ITestOutputHelper output)
{
    static readonly TimeSpan Run = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task ALearnerAlonePrintsTheCommandThatStartsItsRolloutNode()
    {
        var dir = TinyScstRun.NewDir("waiting");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 4, checkpointEvery: 4, evalEvery: 4);
        var learnerDir = Path.Combine(dir, "learner");
        var lp = HostProcess.FreePort();
        using var learner = HostProcess.Start("learner", "train", "--role", "learner", "--config", config, "--run-dir", learnerDir, "--port", $"{lp}");
        await learner.WaitForLine(l => l.Contains("learner: sync SCST at update 0/4"), Run, "the learner starting");
        var started = DateTime.UtcNow;
        var waiting = await learner.WaitForLine(l => l.Contains("waiting for a rollout worker"), TimeSpan.FromSeconds(15), "the waiting line");
        output.WriteLine($"after {(DateTime.UtcNow - started).TotalSeconds:F1} s: {waiting}");

        const string marker = "start one with: ";
        var words = ShellWords(waiting[(waiting.IndexOf(marker, StringComparison.Ordinal) + marker.Length)..]);
        Assert.Equal("dotnet", words[0]);
        Assert.Equal(HostProcess.HostDll, words[1]);
        Assert.Contains($"akka.tcp://scst@127.0.0.1:{lp}", words);
        Assert.Contains(config, words);

        using var rollout = HostProcess.Start("rollout", [.. words.Skip(2)]);
        await learner.ExpectExit(0, Run, "finish the run with the rollout node it named");
        await rollout.ExpectExit(0, TimeSpan.FromSeconds(60), "leave after the run");
        Assert.Equal(4, TinyScstRun.Summary(learnerDir).GetProperty("updates").GetInt64());
        foreach (var p in new[] { learner, rollout })
            Assert.DoesNotContain(p.Lines, l => l.Contains("ClusterSingletonProxy failed to find"));
        // One format: no Akka prefix with a second timestamp inside our lines.
        Assert.DoesNotContain(learner.Lines, l => l.Contains("][Thread "));
    }

    /// <summary>Splits a POSIX command line as the shell would for words that are bare or single-quoted.</summary>
    static List<string> ShellWords(string line)
    {
        var words = new List<string>();
        var cur = new StringBuilder();
        bool quoted = false, any = false;
        foreach (var c in line.Trim())
        {
            if (c == '\'') { quoted = !quoted; any = true; }
            else if (c == ' ' && !quoted) { if (any) words.Add(cur.ToString()); cur.Clear(); any = false; }
            else { cur.Append(c); any = true; }
        }
        if (any) words.Add(cur.ToString());
        return words;
    }
}

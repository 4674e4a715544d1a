using Microsoft.Extensions.Logging;
using Scst.Training;
using Scst.Host.Cluster;
using Scst.Host.Reporting;

namespace Scst.Host.Tests;

/// <summary>What the console shows for long work without a terminal, the log line format, and the waiting learner's command.</summary>
public class ConsoleReportingTests
{
    static readonly Dictionary<string, double> None = [];

    sealed class FakeClock
    {
        public DateTime Now = new(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        public void Advance(double seconds) => Now = Now.AddSeconds(seconds);
    }

    static (ProgressLines Lines, FakeClock Clock) Plain(string title = "train")
    {
        var clock = new FakeClock();
        return (new ProgressLines(title, () => clock.Now, TimeSpan.FromSeconds(10), plainProgress: true), clock);
    }

    [Fact]
    public void FastMainPhaseGivesALineEveryTenPercentAndOneDoneLine()
    {
        var (lines, clock) = Plain();
        var all = new List<string>();
        for (var u = 1; u <= 100; u++)
        {
            clock.Advance(0.5); // 10 % = 10 updates = 5 s: the tenths come before the 10 s interval
            all.AddRange(lines.Report(new TrainingProgress("scst", u, 100, new Dictionary<string, double> { ["loss"] = 1.5 })));
        }
        Assert.Equal(10, all.Count);
        // Timed from the first report (update 1 at 0.5 s): 2 updates/s.
        Assert.Equal("train scst: 10/100 (10%), 2/s, eta 45.0 s  loss 1.5", all[0]);
        for (var d = 2; d <= 9; d++) Assert.StartsWith($"train scst: {d * 10}/100 ({d * 10}%), 2/s, eta ", all[d - 1]);
        Assert.Equal("train scst: done 100/100 in 49.5 s  loss 1.5", all[^1]);
        Assert.Empty(lines.Unfinished());
    }

    [Fact]
    public void SlowMainPhaseGivesALineEveryIntervalNotEveryUpdate()
    {
        var (lines, clock) = Plain();
        var times = new List<DateTime>();
        for (var u = 1; u <= 40; u++)
        {
            clock.Advance(3); // 40 updates of 1000 in 120 s: never a new tenth
            if (lines.Report(new TrainingProgress("ce", u, 1000, None)).Count > 0) times.Add(clock.Now);
        }
        // Timed from the first report (3 s); then a line at the first report at or past 10 s after the previous: 15, 27, ..., 111 s.
        Assert.Equal(9, times.Count);
        Assert.Equal(15, (times[0] - new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds);
        Assert.All(times.Zip(times.Skip(1)), p => Assert.Equal(12, (p.Item2 - p.Item1).TotalSeconds));
        Assert.Equal(["train ce: stopped at 40/1000 after 1:57"], lines.Unfinished());
    }

    [Fact]
    public void EachFinishedEvaluationIsOneLineAndShortOnesShowNoProgress()
    {
        var (lines, clock) = Plain("ce");
        var all = new List<string>();
        for (var run = 0; run < 3; run++)
        {
            for (var i = 0; i <= 20; i++)
            {
                clock.Advance(0.1);
                all.AddRange(lines.Report(new TrainingProgress("eval:val", i, 20, None)));
            }
            clock.Advance(30);
        }
        // Evaluations of one batch report only their end: each is still one line.
        all.AddRange(lines.Report(new TrainingProgress("eval:val", 20, 20, None)));
        all.AddRange(lines.Report(new TrainingProgress("eval:val", 20, 20, None)));
        Assert.Equal(Enumerable.Repeat("ce eval:val: done 20/20 in 2.0 s", 3).Concat(Enumerable.Repeat("ce eval:val: done 20/20", 2)), all);
    }

    [Fact]
    public void OnATerminalOnlyTheDoneLinesAreText()
    {
        var clock = new FakeClock();
        var lines = new ProgressLines("scst", () => clock.Now, TimeSpan.FromSeconds(10), plainProgress: false);
        var all = new List<string>();
        for (var u = 1; u <= 50; u++)
        {
            clock.Advance(1);
            all.AddRange(lines.Report(new TrainingProgress("scst", u, 50, None)));
            if (u % 25 == 0)
                for (var i = 1; i <= 4; i++) all.AddRange(lines.Report(new TrainingProgress("eval:val", i, 4, None)));
        }
        Assert.Equal(["scst eval:val: done 4/4", "scst scst: done 50/50 in 49.0 s", "scst eval:val: done 4/4"], all);
    }

    [Fact]
    public void LogLinesCarryTimeLevelAndSourceOnce()
    {
        var t = new DateTime(2026, 12, 2, 1, 38, 52, 674);
        Assert.Equal("01:38:52.674 info  train: update 400", HostLogging.FormatLine(t, LogLevel.Information, "train", "update 400"));
        // A message that already names its source keeps it once.
        Assert.Equal("01:38:52.674 warn  learner: request 3 unanswered", HostLogging.FormatLine(t, LogLevel.Warning, "learner", "learner: request 3 unanswered"));
        Assert.Equal("2026-12-02 01:38:52.674 fail  cluster: x", HostLogging.FormatLine(t, LogLevel.Error, "cluster", "x", withDate: true));
    }

    [Theory]
    [InlineData("[INFO][12/02/2026 01:38:52.672Z][Thread 0017][akka.tcp://scst@127.0.0.1:4053/system/sharding/learner/7/sync-run] learner: run sync-run: sync SCST at update 0/40",
        "learner", "learner: run sync-run: sync SCST at update 0/40", false)]
    [InlineData("[INFO][12/02/2026 01:38:52.672Z][Thread 0017][akka://scst/system/sharding/learner/7/sync-run/weights] weights v3 published",
        "learner", "weights v3 published", false)]
    [InlineData("[INFO][12/02/2026 01:38:52.672Z][Thread 0017][akka://scst/system/sharding/learner/7] Shard 7 started", "sharding", "Shard 7 started", true)]
    [InlineData("[INFO][12/02/2026 01:38:52.672Z][Thread 0017][akka://scst/user/rollout-link] serving run sync-run (sync, learner on x)", "run",
        "serving run sync-run (sync, learner on x)", false)]
    [InlineData("[INFO][12/02/2026 01:38:52.672Z][Thread 0017][akka://scst/user/rollout-0] rollout-0: learner at x", "rollout-0", "rollout-0: learner at x", false)]
    [InlineData("[INFO][12/02/2026 01:38:52.672Z][Thread 0017][Cluster(akka://scst)] Cluster Node [a] - Starting up...", "cluster", "Cluster Node [a] - Starting up...", true)]
    [InlineData("[WARNING][12/02/2026 01:38:52.672Z][Thread 0017][akka://scst/system/singletonProxylearnerconsumer] ClusterSingletonProxy failed", "singleton", "ClusterSingletonProxy failed", true)]
    [InlineData("[INFO][12/02/2026 01:38:52.672Z][Thread 0017][remoting (akka://scst)] Remoting started", "remote", "Remoting started", true)]
    public void AkkaLinesLoseTheirPrefixAndGetAShortSource(string text, string source, string message, bool akkaInternal)
    {
        Assert.Equal((source, message, akkaInternal), HostLogging.Classify("Akka.Actor.ActorSystem", text));
    }

    [Fact]
    public void OurCategoriesGetShortSources()
    {
        Assert.Equal(("cluster", "member up: a", false), HostLogging.Classify("Scst.Host.Cluster.ClusterNode", "member up: a"));
        Assert.Equal(("train", "x", false), HostLogging.Classify("train", "x"));
        Assert.Equal(("host", "Application started", true), HostLogging.Classify("Microsoft.Hosting.Lifetime", "Application started"));
    }

    [Fact]
    public void TheWaitingLearnersCommandStartsARolloutNodeForIt()
    {
        var learner = new NodeOptions
        {
            Role = "learner", RunDir = "/runs/my run", ExtraHoconFiles = ["/etc/scst/pg.conf"], TlsCertificate = "/certs/node.pfx", TlsCa = "/certs/ca.pem",
        };
        var cmd = RolloutCommandLine.Build("dotnet /app/Scst.Host.dll", "akka.ssl.tcp://scst@10.0.0.5:4053", learner, "/cfg/scst.yaml");
        Assert.Equal("dotnet /app/Scst.Host.dll train --role rollout --seed-nodes akka.ssl.tcp://scst@10.0.0.5:4053 --port 0 --run-dir '/runs/my run-rollout-1' " +
                     "--config /cfg/scst.yaml --hocon /etc/scst/pg.conf --tls-cert /certs/node.pfx --tls-ca /certs/ca.pem", cmd);
        var message = Scst.Actors.Pipeline.LearnerActor.WaitingMessage("rollout", 0, 40, TimeSpan.FromSeconds(10), cmd, "akka.ssl.tcp://scst@10.0.0.5:4053");
        Assert.Equal("learner: waiting for a rollout worker at update 0/40 (10 s so far); start one with: " + cmd, message);
    }
}

using System.CommandLine;
using Akka.Actor;
using Akka.Cluster;
using Microsoft.Extensions.Logging;
using Scst.Actors.Pipeline;
using Scst.Host.Cluster;

namespace Scst.Host.Commands;

/// <summary>
/// <c>status --seed-nodes ADDR [--run-id ID]</c>: joins the cluster for a moment as a member with role "status" (a learner
/// gives work only to actors that register with it, so this member gets none), prints the members and each run
/// announced (or the one named) with its step, version, mode and workers, then leaves. Exit codes: 0 answered, 2 bad
/// arguments, 3 could not join, 4 joined but no run answered.
/// </summary>
public static class StatusCommand
{
    public static readonly Option<int> TimeoutSeconds = new("--timeout")
    {
        Description = "Seconds to wait for joining the cluster, and again for the learner's answer",
        DefaultValueFactory = _ => 30,
    };

    public static Command Create()
    {
        var cmd = new Command("status", "Join the cluster briefly and print its members and its runs (step, policy version, mode, workers), then leave") { TimeoutSeconds };
        // Joins as role "status" whatever --role says, so no --role here.
        GlobalOptions.AddCluster(cmd, withRole: false);
        cmd.SetAction((r, ct) => RunAsync(r, ct));
        return cmd;
    }

    static async Task<int> RunAsync(ParseResult r, CancellationToken ct)
    {
        var timeout = TimeSpan.FromSeconds(Math.Max(1, r.GetValue(TimeoutSeconds)));
        var runDir = Directory.CreateTempSubdirectory("scst-status-").FullName;
        ClusterNode node;
        try
        {
            var options = NodeCommand.OptionsFrom(r) with { Role = "status", RunDir = runDir };
            if (options.SeedNodes.Count == 0) throw new ArgumentException("status: give --seed-nodes, the address of any node of the cluster (e.g. akka.tcp://scst@127.0.0.1:4053)");
            // Only errors from Akka (the singleton proxy warns while it searches); this command's own messages say what failed.
            node = await ClusterNode.StartAsync(ScstClusterOptions.From(options), l =>
            {
                HostLogging.Configure(l, logFile: null, LogLevel.Warning);
                l.AddFilter("Scst.Host.Cluster.ClusterNode", LogLevel.Warning).AddFilter("Akka", LogLevel.Error);
            }, ScstActorHosting.AddLearnerProxy, ct);
        }
        catch (Exception e) when (e is ArgumentException or IOException or Akka.Configuration.ConfigurationException)
        {
            Console.Error.WriteLine($"error: {CommandErrors.Describe(e) ?? e.Message}");
            TryDelete(runDir);
            return 2;
        }
        var code = 0;
        await using (node)
        {
            var cluster = Akka.Cluster.Cluster.Get(node.System);
            try { await node.WhenUpAsync(timeout); }
            catch (TimeoutException)
            {
                Console.Error.WriteLine($"error: could not join the cluster via {string.Join(", ", cluster.Settings.SeedNodes)} within {timeout.TotalSeconds:F0} s " +
                                        "(is a node running there, with the same TLS settings?)");
                TryDelete(runDir);
                return 3;
            }
            // The member-up callback can run before this node's own view of the state says Up.
            for (var i = 0; i < 20 && !cluster.State.Members.Any(m => m.Address == cluster.SelfAddress && m.Status == MemberStatus.Up); i++)
                await Task.Delay(100, CancellationToken.None);
            PrintMembers(cluster);
            var region = node.Registry.Get<LearnerActor>();
            var only = r.GetValue(GlobalOptions.RunId);
            // Runs announce themselves every second; a new subscriber is known cluster-wide after a gossip round or two.
            var runs = only is not null ? [only] : await AnnouncedRuns(node.System, TimeSpan.FromSeconds(Math.Min(4, timeout.TotalSeconds)), ct);
            if (runs.Count == 0)
            {
                Console.Error.WriteLine($"runs: none announced within {Math.Min(4, timeout.TotalSeconds):F0} s (no learner node, or no run running)");
                code = 4;
            }
            else Console.WriteLine($"runs: {runs.Count}");
            foreach (var id in runs)
            {
                try
                {
                    var s = await region.Ask<LearnerStatus>(new Akka.Cluster.Sharding.ShardingEnvelope(id, new GetLearnerStatus()), timeout, ct);
                    var state = s.Finished ? "finished" : s.Running ? "running" : "starting";
                    Console.WriteLine($"run {id}: learner {s.Node} {state}, step {s.Step}/{s.TotalUpdates}, policy v{s.PolicyVersion}, mode {s.Mode}, " +
                                      $"samples {s.SamplesConsumed}, rollouts dropped stale {s.RolloutsDroppedStale}");
                    Console.WriteLine($"  workers: {s.RolloutWorkers} rollout, {s.RewardWorkers} reward; batches queued {s.QueuedBatches}, at workers {s.InFlightBatches}");
                    // See docs/cluster.md, "The learner owns the data order".
                    Console.WriteLine($"  data: the learner owns the data cursor (epoch {s.CursorEpoch}, position {s.CursorPosition})");
                }
                catch (AskTimeoutException)
                {
                    Console.Error.WriteLine($"run {id}: no answer within {timeout.TotalSeconds:F0} s (no member with role learner, or it is still starting)");
                    code = 4;
                }
            }
            await cluster.LeaveAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        TryDelete(runDir);
        return code;
    }

    /// <summary>Run ids announced on <see cref="RunIds.Topic"/> within <paramref name="window"/>, in the order first heard.</summary>
    static async Task<IReadOnlyList<string>> AnnouncedRuns(ActorSystem system, TimeSpan window, CancellationToken ct)
    {
        var heard = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var listener = system.ActorOf(Props.Create(() => new RunListener(heard)), "runs");
        try { await Task.Delay(window, ct); }
        finally { system.Stop(listener); }
        return heard.OrderBy(h => h.Value).Select(h => h.Key).ToArray();
    }

    sealed class RunListener : ReceiveActor
    {
        public RunListener(System.Collections.Concurrent.ConcurrentDictionary<string, int> heard)
        {
            Receive<RunAnnounced>(a => heard.TryAdd(a.RunId, heard.Count));
            Receive<Akka.Cluster.Tools.PublishSubscribe.SubscribeAck>(_ => { });
        }

        protected override void PreStart() =>
            Akka.Cluster.Tools.PublishSubscribe.DistributedPubSub.Get(Context.System).Mediator.Tell(new Akka.Cluster.Tools.PublishSubscribe.Subscribe(RunIds.Topic, Self));
    }

    static void PrintMembers(Akka.Cluster.Cluster cluster)
    {
        var state = cluster.State;
        Console.WriteLine($"cluster {NodeOptions.SystemName}: {state.Members.Count(m => !RunIds.ClientRoles.Any(m.HasRole))} members, leader {state.Leader?.ToString() ?? "none"}");
        foreach (var m in state.Members.OrderBy(m => m.Address.ToString(), StringComparer.Ordinal))
        {
            var notes = new List<string>();
            if (state.Unreachable.Contains(m)) notes.Add("unreachable");
            if (m.Address == cluster.SelfAddress) notes.Add("this status client");
            Console.WriteLine($"  {m.Address}  {m.Status}  roles=[{string.Join(",", m.Roles.Order())}]{(notes.Count > 0 ? "  (" + string.Join(", ", notes) + ")" : "")}");
        }
    }

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

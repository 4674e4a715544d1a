using System.CommandLine;
using Akka.Hosting;
using Microsoft.Extensions.Logging;
using Scst.Host.Cluster;

namespace Scst.Host.Commands;

/// <summary>
/// `node`: run one cluster node until Ctrl-C / SIGTERM. Joins --seed-nodes, logs membership, writes
/// &lt;run-dir&gt;/nodes_seen.json on exit. A learner node hosts the learner region, so it takes runs submitted to the
/// cluster (or inherited from a learner node that died, with the PostgreSQL journal); a signal stops the runs it
/// hosts with a checkpoint before it leaves. A reward node serves every run of the cluster, each with its own
/// references and document frequencies (<see cref="Scst.Actors.Pipeline.SharedRewardNode"/>). Rollout workers need a
/// run's model: `node --role rollout --config BASE` shares one frozen base per device among every run whose model and
/// images match BASE (<see cref="Scst.Actors.Pipeline.SharedRolloutActor"/>); `train --role rollout` serves one run.
/// </summary>
public static class NodeCommand
{
    public static readonly Option<bool> FastFailure = new("--fast-failure")
    {
        Description = "Detect dead nodes and move their shards in seconds (hocon/fast-failure.conf); for tests and chaos runs",
    };

    public static NodeOptions OptionsFrom(ParseResult r) => new()
    {
        Role = r.GetValue(GlobalOptions.Role) ?? "all",
        Port = r.GetValue(GlobalOptions.Port),
        SeedNodes = r.GetValue(GlobalOptions.SeedNodes) ?? [],
        ExtraHoconFiles = (r.GetValue(GlobalOptions.Hocon) ?? []).Select(f => f.FullName).ToArray(),
        RunDir = r.GetValue(GlobalOptions.RunDir)?.FullName ?? Path.Combine("runs", "default"),
        RunId = r.GetValue(GlobalOptions.RunId),
        FastFailure = r.GetValue(FastFailure),
        TlsCertificate = r.GetValue(GlobalOptions.TlsCert)?.FullName,
        TlsCa = r.GetValue(GlobalOptions.TlsCa)?.FullName,
        TlsPasswordVariable = r.GetValue(GlobalOptions.TlsPasswordEnv),
    };

    public static Command Create()
    {
        var cmd = new Command("node", "Run one cluster node until Ctrl-C (use --role, --port, --seed-nodes, --run-dir)");
        cmd.Options.Add(FastFailure);
        GlobalOptions.AddCluster(cmd);
        GlobalOptions.AddMetrics(cmd);
        cmd.SetAction(async (r, ct) =>
        {
            NodeOptions options;
            ClusterNode node;
            LearnerHost? host = null;
            try
            {
                options = OptionsFrom(r);
                Directory.CreateDirectory(options.RunDir);
                var cluster = ScstClusterOptions.From(options);
                if (cluster.Roles.Contains(ScstActorHosting.LearnerRole))
                {
                    Func<Akka.Actor.ActorSystem, Scst.Actors.Pipeline.LearnerNode>? learner = null;
                    node = ClusterNode.Create(cluster, actors: akka => ScstActorHosting.AddLearnerRegion(akka, system => learner!(system)));
                    host = new LearnerHost(options, cluster, node.LoggerFactory);
                    learner = host.For;
                    await node.StartAsync(ct);
                }
                else if (options.Role == "rollout" && r.GetValue(GlobalOptions.Config) is { } baseFile)
                {
                    // One frozen base per device, shared by every run whose model and images match it.
                    var baseConfig = Scst.Host.Configuration.ConfigLoader.Load(baseFile.FullName);
                    Scst.Training.RunSetup.InitializeRuntime(baseConfig.Run);
                    var cuda = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.cuda.device_count() : 0;
                    var devices = Scst.Actors.Pipeline.RolloutDevices.Resolve(cluster.RolloutDevices, cluster.RolloutActors, baseConfig.Run.Device, cuda);
                    var fetcher = new Scst.Actors.Weights.WeightFetcherSettings(cluster.WeightFetchAttempts, TlsSetup.WeightPlane(cluster), WholeFileSha256: cluster.WeightVerifyWholeFile);
                    ClusterNode? self = null;
                    var runDir = options.RunDir;
                    node = self = ClusterNode.Create(cluster, actors: akka =>
                    {
                        ScstActorHosting.AddLearnerProxy(akka);
                        akka.WithActors((system, registry) =>
                        {
                            for (var i = 0; i < devices.Count; i++)
                                system.ActorOf(Scst.Actors.Pipeline.SharedRolloutActor.Props(new Scst.Actors.Pipeline.SharedRolloutSettings(baseConfig,
                                    Path.Combine(runDir, "replicas", $"rollout-{i}"), registry.Get<Scst.Actors.Pipeline.LearnerActor>(), self!.LoggerFactory.CreateLogger("rollout"),
                                    fetcher, devices[i], LearnerHost.ConfigOf, cluster.RolloutMemoryBudget, cluster.RolloutRunWeights)), $"rollout-{i}");
                        });
                    });
                    await node.StartAsync(ct);
                }
                else if (options.Role == "reward")
                {
                    // Every run's references, loaded from the config its learner journaled, once per run.
                    ClusterNode? self = null;
                    node = self = ClusterNode.Create(cluster, actors: akka =>
                    {
                        ScstActorHosting.AddLearnerProxy(akka);
                        akka.WithActors((system, registry) => system.ActorOf(Scst.Actors.Pipeline.SharedRewardNode.Props(registry.Get<Scst.Actors.Pipeline.LearnerActor>(),
                            spec => Scst.Actors.Pipeline.RewardContext.Load(LearnerHost.ConfigOf(spec), self!.LoggerFactory.CreateLogger("reward")), cluster.RewardActors), "reward"));
                    });
                    await node.StartAsync(ct);
                }
                else node = await ClusterNode.StartAsync(cluster, ct: ct);
            }
            catch (Exception e) when (e is ArgumentException or IOException or Akka.Configuration.ConfigurationException or Scst.Host.Configuration.ConfigException
                                      or Scst.Actors.Persistence.JournalCorruptException or Scst.Actors.Persistence.JournalUnavailableException)
            {
                Console.Error.WriteLine($"error: {CommandErrors.Describe(e) ?? e.Message}");
                return 2;
            }
            await using (node)
            {
                using var either = CancellationTokenSource.CreateLinkedTokenSource(ct, node.Stopping);
                try { await Task.Delay(Timeout.Infinite, either.Token); } catch (OperationCanceledException) { }
                if (host is not null && !node.System.WhenTerminated.IsCompleted) await ClusterTraining.StopHostedRuns(host, node);
                await File.WriteAllTextAsync(Path.Combine(options.RunDir, "nodes_seen.json"),
                    System.Text.Json.JsonSerializer.Serialize(new { nodes_seen = node.NodesSeen.Count, members = node.NodesSeen.Order().ToArray() }), CancellationToken.None);
            }
            return 0;
        });
        return cmd;
    }
}

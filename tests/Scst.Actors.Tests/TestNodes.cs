using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests;

/// <summary>Real ActorSystems on 127.0.0.1 started the way the Host starts them (<see cref="ClusterNode"/>, Akka.Hosting).</summary>
public static class TestNodes
{
    static readonly ConcurrentDictionary<ActorSystem, ClusterNode> Nodes = new();

    public static string NewRunDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "scst-actors-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>The options a test node runs with: the Host's binding of these flags and the extra HOCON.</summary>
    public static ScstClusterOptions Options(string runDir, string role = "all", Address? join = null, string? extraHocon = null)
    {
        var extra = new List<string>();
        if (extraHocon is not null)
        {
            var f = Path.Combine(runDir, $"extra-{Guid.NewGuid():N}.conf");
            File.WriteAllText(f, extraHocon);
            extra.Add(f);
        }
        return ScstClusterOptions.From(new NodeOptions
        {
            Role = role, Port = 0, RunDir = runDir, FastFailure = true, ExtraHoconFiles = extra,
            SeedNodes = join is null ? [] : [join.ToString()],
        });
    }

    public static ActorSystem Start(string runDir, string role = "all", Address? join = null, string? extraHocon = null)
    {
        // Tests read results, not logs: no logging providers.
        var node = ClusterNode.StartAsync(Options(runDir, role, join, extraHocon), _ => { }).GetAwaiter().GetResult();
        var system = node.System;
        Nodes[system] = node;
        if (!node.WhenUpAsync(TimeSpan.FromSeconds(30)).Wait(TimeSpan.FromSeconds(31)))
            throw new TimeoutException($"node {Cluster.Get(system).SelfAddress} did not reach Up");
        return system;
    }

    public static void Stop(ActorSystem system)
    {
        if (Nodes.TryRemove(system, out var node)) node.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(30));
        else system.Terminate().Wait(TimeSpan.FromSeconds(30));
    }
}

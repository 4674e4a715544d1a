using Akka.Actor;
using Akka.Cluster;
using Scst.Actors.Persistence;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests;

/// <summary>Real ActorSystems on 127.0.0.1 built from the same HOCON path the Host uses.</summary>
public static class TestNodes
{
    public static string NewRunDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "scst-actors-tests", Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }

    public static ActorSystem Start(string runDir, string role = "all", Address? join = null, string? extraHocon = null)
    {
        var extra = new List<string>();
        if (extraHocon is not null)
        {
            var f = Path.Combine(runDir, $"extra-{Guid.NewGuid():N}.conf");
            File.WriteAllText(f, extraHocon);
            extra.Add(f);
        }
        var config = HoconLoader.Load(new NodeOptions { Role = role, Port = 0, RunDir = runDir, FastFailure = true, ExtraHoconFiles = extra });
        JournalPreflightConfig.Run(config);
        var system = ActorSystem.Create(NodeOptions.SystemName, config);
        var cluster = Cluster.Get(system);
        var up = new TaskCompletionSource();
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        cluster.Join(join ?? cluster.SelfAddress);
        if (!up.Task.Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException($"node {cluster.SelfAddress} did not reach Up");
        return system;
    }

    public static void Stop(ActorSystem system) => system.Terminate().Wait(TimeSpan.FromSeconds(30));
}

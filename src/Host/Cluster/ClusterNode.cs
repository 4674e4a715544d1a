using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Scst.Actors.Persistence;

namespace Scst.Host.Cluster;

/// <summary>
/// One Scst process in the cluster: the ActorSystem started through Akka.Hosting with the merged HOCON,
/// Akka's logs routed into Microsoft.Extensions.Logging, joined to the seeds (or to itself), and a record of
/// every member seen Up (<see cref="NodesSeen"/>, the summary's nodes_seen).
/// </summary>
public sealed class ClusterNode : IAsyncDisposable
{
    readonly IHost _host;
    readonly ConcurrentDictionary<string, string> _seen;

    public ActorSystem System { get; }
    public Address SelfAddress => Akka.Cluster.Cluster.Get(System).SelfAddress;
    public IReadOnlyCollection<string> NodesSeen => _seen.Keys.ToArray();
    public ILoggerFactory LoggerFactory { get; }

    /// <summary>Fires when the host stops: SIGINT/SIGTERM (the generic host owns those) or the ActorSystem ending, e.g. after being downed.</summary>
    public CancellationToken Stopping { get; }

    ClusterNode(IHost host, ActorSystem system, ConcurrentDictionary<string, string> seen)
    {
        _host = host;
        System = system;
        _seen = seen;
        LoggerFactory = host.Services.GetRequiredService<ILoggerFactory>();
        Stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
    }

    public static async Task<ClusterNode> StartAsync(NodeOptions options, Action<ILoggingBuilder>? logging = null, CancellationToken ct = default)
    {
        if (options.SeedNodes.Count == 0 && options.Role is "rollout" or "reward" or "status")
            throw new ArgumentException($"--role {options.Role} joins an existing cluster: give --seed-nodes (the learner's address, e.g. akka.tcp://scst@127.0.0.1:4053)");
        var config = HoconLoader.Load(options);
        // A status client persists nothing; it must not create or lock journal files.
        if (options.Role != "status") JournalPreflightConfig.Run(config);
        var tls = TlsSetup.FromConfig(config);

        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder([]);
        builder.Logging.ClearProviders();
        if (logging is not null) logging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        builder.Services.AddAkka(NodeOptions.SystemName, (akka, _) =>
        {
            akka.AddHocon(config, HoconAddMode.Prepend);
            if (tls is not null) akka.AddSetup(tls);
            akka.ConfigureLoggers(l =>
            {
                l.ClearLoggers();
                l.AddLoggerFactory();
            });
        });
        var host = builder.Build();
        await host.StartAsync(ct);
        var system = host.Services.GetRequiredService<ActorSystem>();
        var seen = new ConcurrentDictionary<string, string>();
        var log = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger<ClusterNode>();
        system.ActorOf(Props.Create(() => new MembershipTracker(seen, log)), "membership");

        var cluster = Akka.Cluster.Cluster.Get(system);
        Scst.Actors.Telemetry.ScstMetrics.ObserveNodeCount(() => cluster.State.Members.Count(m => m.Status == MemberStatus.Up));
        // Seeds come from HOCON (akka.cluster.seed-nodes) and join by themselves; a first learner / `all` node forms its own cluster.
        if (options.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
        log.LogInformation("node started: {Address} role={Role} roles=[{Roles}]", cluster.SelfAddress, options.Role, string.Join(",", options.ClusterRoles));
        return new ClusterNode(host, system, seen);
    }

    public Task WhenUpAsync(TimeSpan timeout)
    {
        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(System).RegisterOnMemberUp(() => up.TrySetResult());
        return up.Task.WaitAsync(timeout);
    }

    public async ValueTask DisposeAsync()
    {
        Scst.Actors.Telemetry.ScstMetrics.ObserveNodeCount(null);
        await _host.StopAsync();
        _host.Dispose();
    }

    /// <summary>Logs membership changes in a fixed format (process tests wait for these lines) and records members seen Up.</summary>
    sealed class MembershipTracker : ReceiveActor
    {
        public MembershipTracker(ConcurrentDictionary<string, string> seen, ILogger log)
        {
            Receive<ClusterEvent.MemberUp>(m =>
            {
                seen[m.Member.Address.ToString()] = string.Join(",", m.Member.Roles);
                log.LogInformation("member up: {Address} roles=[{Roles}] nodes_seen={Seen}", m.Member.Address, string.Join(",", m.Member.Roles), seen.Count);
            });
            Receive<ClusterEvent.UnreachableMember>(m => log.LogWarning("member unreachable: {Address}", m.Member.Address));
            Receive<ClusterEvent.ReachableMember>(m => log.LogInformation("member reachable: {Address}", m.Member.Address));
            Receive<ClusterEvent.MemberRemoved>(m => log.LogInformation("member removed: {Address} (was {Status})", m.Member.Address, m.PreviousStatus));
            Receive<ClusterEvent.IMemberEvent>(_ => { });
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
    }
}

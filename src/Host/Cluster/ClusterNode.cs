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
        else HostLogging.Configure(builder.Logging, HostLogging.RunLogFile(options.RunDir, options.Role));
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
        Scst.Training.Telemetry.ScstMetrics.ObserveNodeCount(() => cluster.State.Members.Count(m => m.Status == MemberStatus.Up));
        // Seeds come from HOCON (akka.cluster.seed-nodes) and join by themselves; a first learner / `all` node forms its own cluster.
        if (options.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
        log.LogInformation("node started: {Address} role={Role} roles=[{Roles}]", cluster.SelfAddress, options.Role, string.Join(",", options.ClusterRoles));
        var node = new ClusterNode(host, system, seen);
        if (options.SeedNodes.Count > 0 && options.Role != "status") node.SayWhileNotJoined(cluster, options.SeedNodes, log, JoinWaitReport);
        return node;
    }

    /// <summary>How often a node that has not joined yet says which seeds it is trying.</summary>
    public static TimeSpan JoinWaitReport { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Until this node is Up, a warning every <paramref name="every"/> naming the seed addresses it tried.</summary>
    void SayWhileNotJoined(Akka.Cluster.Cluster cluster, IReadOnlyList<string> seeds, ILogger log, TimeSpan every)
    {
        var up = CancellationTokenSource.CreateLinkedTokenSource(Stopping);
        cluster.RegisterOnMemberUp(() => { try { up.Cancel(); } catch (ObjectDisposedException) { } });
        _ = Task.Run(async () =>
        {
            using (up)
            {
                var waited = TimeSpan.Zero;
                while (true)
                {
                    try { await Task.Delay(every, up.Token); } catch (OperationCanceledException) { return; }
                    waited += every;
                    log.LogWarning("cannot join the cluster yet: no answer from seed {Seeds} after {Seconds:F0} s; is the learner running there " +
                                   "(same host and port, same TLS settings: akka.tcp:// without TLS, akka.ssl.tcp:// with it)?",
                        string.Join(", ", seeds), waited.TotalSeconds);
                }
            }
        });
    }

    /// <summary>
    /// Leaves the cluster gracefully (the other members see it go, nothing waits on it) within <paramref name="timeout"/>;
    /// stopping the singleton proxy first keeps it from searching for a learner that has already gone.
    /// </summary>
    public async Task LeaveAsync(IActorRef? learnerProxy, TimeSpan timeout)
    {
        if (learnerProxy is not null) System.Stop(learnerProxy);
        try { await Akka.Cluster.Cluster.Get(System).LeaveAsync().WaitAsync(timeout); }
        catch (TimeoutException) { }
    }

    public Task WhenUpAsync(TimeSpan timeout)
    {
        var up = new TaskCompletionSource();
        Akka.Cluster.Cluster.Get(System).RegisterOnMemberUp(() => up.TrySetResult());
        return up.Task.WaitAsync(timeout);
    }

    public async ValueTask DisposeAsync()
    {
        Scst.Training.Telemetry.ScstMetrics.ObserveNodeCount(null);
        // Akka's shutdown chatter (leaving, remoting stopped) is Info; its last lines bypass the logger bridge and would
        // reach stdout in Akka's own format, so below Warning they are dropped unless --verbose.
        if (!HostLogging.Verbose) System.EventStream.SetLogLevel(Akka.Event.LogLevel.WarningLevel);
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

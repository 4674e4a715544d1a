using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Scst.Host.Cluster;

/// <summary>
/// One Scst process in the cluster: the ActorSystem started through Akka.Hosting from one <see cref="ScstClusterOptions"/>,
/// Akka's logs routed into Microsoft.Extensions.Logging, joined to the seeds (or to itself), and a record of
/// every member seen Up (<see cref="NodesSeen"/>, the summary's nodes_seen).
/// </summary>
public sealed class ClusterNode : IAsyncDisposable
{
    readonly IHost _host;
    readonly ConcurrentDictionary<string, string> _seen;

    /// <summary>The started ActorSystem (after <see cref="StartAsync(CancellationToken)"/>).</summary>
    public ActorSystem System => _system ?? throw new InvalidOperationException("the node has not been started");
    public Address SelfAddress => Akka.Cluster.Cluster.Get(System).SelfAddress;
    public IReadOnlyCollection<string> NodesSeen => _seen.Keys.ToArray();
    public ILoggerFactory LoggerFactory { get; }
    public ScstClusterOptions Options { get; }

    /// <summary>The actors Akka.Hosting started, by key (the learner proxy under <c>LearnerActor</c>).</summary>
    public IReadOnlyActorRegistry Registry => _host.Services.GetRequiredService<ActorRegistry>();

    /// <summary>Fires when the host stops: the ActorSystem ending, e.g. after being downed (signals reach the command's own token, see <see cref="StopSignals"/>).</summary>
    public CancellationToken Stopping { get; }

    ActorSystem? _system;

    ClusterNode(IHost host, ScstClusterOptions options)
    {
        _host = host;
        Options = options;
        _seen = new ConcurrentDictionary<string, string>();
        LoggerFactory = host.Services.GetRequiredService<ILoggerFactory>();
        Stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
    }

    /// <summary>
    /// Builds the node's host without starting it: Akka configured from <paramref name="options"/> through Akka.Hosting,
    /// plus whatever <paramref name="actors"/> registers (its factories run when the node starts).
    /// </summary>
    public static ClusterNode Create(ScstClusterOptions options, Action<ILoggingBuilder>? logging = null, Action<AkkaConfigurationBuilder>? actors = null)
    {
        if (options.SeedNodes.Count == 0 && options.Role is "rollout" or "reward" or "status" or "submit")
            throw new ArgumentException($"--role {options.Role} joins an existing cluster: give --seed-nodes (the learner's address, e.g. akka.tcp://scst@127.0.0.1:4053)");
        // The SQLite journal is this node's own file: a second learner node could neither read its runs nor take them over.
        if (options.SeedNodes.Count > 0 && options.Roles.Contains("learner") && options.Backend == JournalBackend.Sqlite)
            throw new ArgumentException($"--role {options.Role} with --seed-nodes: a second learner node needs the shared PostgreSQL journal " +
                                        "(scst.persistence.backend = postgresql); with the embedded SQLite journal a cluster has one learner node. " +
                                        "To run another experiment on this cluster, send it with --role submit");
        // Status and submit clients persist nothing; they must not create or lock journal files.
        if (options.Role is not ("status" or "submit")) ScstAkka.PreflightJournal(options);
        // Parsed here so a bad file or certificate is reported before the host exists.
        ScstAkka.BuildConfig(options);
        EnsurePortFree(options);

        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder([]);
        // Signals belong to the command (StopSignals, System.CommandLine's token): the console lifetime would run Akka's
        // coordinated shutdown on the first SIGTERM, before a learner could finish its update and write a checkpoint.
        builder.Services.AddSingleton<IHostLifetime, CommandOwnsSignals>();
        builder.Logging.ClearProviders();
        if (logging is not null) logging(builder.Logging);
        else
        {
            HostLogging.Configure(builder.Logging, HostLogging.RunLogFile(options.RunDir, options.Role));
            CommandErrors.RunLog = HostLogging.RunLogFile(options.RunDir, options.Role);
        }
        builder.Services.AddAkka(NodeOptions.SystemName, (akka, _) =>
        {
            ScstAkka.Configure(akka, options);
            akka.ConfigureLoggers(l =>
            {
                l.ClearLoggers();
                l.AddLoggerFactory();
            });
            actors?.Invoke(akka);
        });
        return new ClusterNode(builder.Build(), options);
    }

    public static async Task<ClusterNode> StartAsync(ScstClusterOptions options, Action<ILoggingBuilder>? logging = null,
        Action<AkkaConfigurationBuilder>? actors = null, CancellationToken ct = default)
    {
        var node = Create(options, logging, actors);
        try { await node.StartAsync(ct); }
        catch
        {
            node._host.Dispose();
            throw;
        }
        return node;
    }

    public async Task StartAsync(CancellationToken ct = default)
    {
        await _host.StartAsync(ct);
        var system = _system = _host.Services.GetRequiredService<ActorSystem>();
        var log = LoggerFactory.CreateLogger<ClusterNode>();
        system.ActorOf(Props.Create(() => new MembershipTracker(_seen, log)), "membership");

        var cluster = Akka.Cluster.Cluster.Get(system);
        Scst.Training.Telemetry.ScstMetrics.ObserveNodeCount(() => cluster.State.Members.Count(m => m.Status == MemberStatus.Up));
        // Seeds (WithClustering) join by themselves; a first learner / `all` node forms its own cluster.
        if (Options.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
        log.LogInformation("node started: {Address} role={Role} roles=[{Roles}]", cluster.SelfAddress, Options.Role, string.Join(",", Options.Roles));
        if (Options.SeedNodes.Count > 0 && Options.Role is not ("status" or "submit")) SayWhileNotJoined(cluster, Options.SeedNodes, log, JoinWaitReport);
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
    /// a learner node's shard region hands its remaining runs to another learner node first.
    /// </summary>
    public async Task LeaveAsync(TimeSpan timeout)
    {
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
        if (!HostLogging.Verbose) _system?.EventStream.SetLogLevel(Akka.Event.LogLevel.WarningLevel);
        await _host.StopAsync();
        _host.Dispose();
    }

    /// <summary>A host lifetime that leaves SIGINT/SIGTERM alone; the host stops when the command disposes the node.</summary>
    sealed class CommandOwnsSignals : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
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

    /// <summary>
    /// A taken --port, said in one line before Akka tries it (its own bind failure comes as nested AggregateExceptions,
    /// with a stack dump from the hosting layer). A port taken between this check and Akka's bind still fails, less politely.
    /// </summary>
    static void EnsurePortFree(ScstClusterOptions options)
    {
        if (options.Port == 0 || !global::System.Net.IPAddress.TryParse(options.Hostname, out var address)) return;
        try
        {
            var probe = new global::System.Net.Sockets.TcpListener(address, options.Port);
            // As Akka binds: a port left in TIME_WAIT by a node that just exited is free; one with a listener is not.
            probe.Server.SetSocketOption(global::System.Net.Sockets.SocketOptionLevel.Socket, global::System.Net.Sockets.SocketOptionName.ReuseAddress, true);
            probe.Start();
            probe.Stop();
        }
        catch (global::System.Net.Sockets.SocketException e) when (e.SocketErrorCode == global::System.Net.Sockets.SocketError.AddressAlreadyInUse)
        {
            throw new ArgumentException($"--port {options.Port}: {options.Hostname}:{options.Port} is already in use (another node?); choose another port, or 0 for any free one", e);
        }
    }
}

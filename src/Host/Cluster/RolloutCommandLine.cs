namespace Scst.Host.Cluster;

/// <summary>
/// The command a person runs to give a waiting learner a rollout node: this same program, <c>train --role rollout</c>,
/// the learner's own address as the seed, the same config, HOCON files and TLS settings, a run folder of its own beside
/// the learner's (a rollout node keeps only its replica's files there), and any free port.
/// </summary>
public static class RolloutCommandLine
{
    public static string For(string learnerAddress, NodeOptions learner, string? configFile, string? runId = null) =>
        Build(SelfInvocation(), learnerAddress, learner, configFile, runId);

    public static string Build(string program, string learnerAddress, NodeOptions learner, string? configFile, string? runId = null)
    {
        var runDir = Path.GetFullPath(learner.RunDir).TrimEnd(Path.DirectorySeparatorChar);
        var config = configFile is null ? "<the learner's config>" : Quote(Path.GetFullPath(configFile));
        var args = Arguments(learnerAddress, learner, config, runDir + "-rollout-1", p => Quote(Path.GetFullPath(p)));
        if (runId is not null) args.AddRange(["--run-id", Quote(runId)]);
        return string.Join(" ", [program, .. args]);
    }

    /// <summary>
    /// A rollout node's arguments for this learner (after the program): <paramref name="config"/> and
    /// <paramref name="runDir"/> as given, the learner's HOCON and TLS files through <paramref name="path"/> (quoted
    /// for a person's shell, as they are for a process start).
    /// </summary>
    public static List<string> Arguments(string learnerAddress, NodeOptions learner, string config, string runDir, Func<string, string> path)
    {
        var args = new List<string> { "train", "--role", "rollout", "--seed-nodes", learnerAddress, "--port", "0",
            "--run-dir", path(runDir), "--config", config };
        foreach (var h in learner.ExtraHoconFiles) args.AddRange(["--hocon", path(h)]);
        if (learner.TlsCertificate is not null)
        {
            // The same certificate works (every node is client and server); a node of its own is the usual setup.
            args.AddRange(["--tls-cert", path(learner.TlsCertificate)]);
            if (learner.TlsCa is not null) args.AddRange(["--tls-ca", path(learner.TlsCa)]);
            if (learner.TlsPasswordVariable is not null) args.AddRange(["--tls-password-env", learner.TlsPasswordVariable]);
        }
        if (learner.FastFailure) args.Add("--fast-failure");
        return args;
    }

    /// <summary>How this process was started, as a command line: the app host itself, or <c>dotnet Scst.Host.dll</c>.</summary>
    public static string SelfInvocation()
    {
        var (program, prefix) = Self();
        return prefix.Length > 0 ? $"dotnet {Quote(prefix[0])}" : Quote(program);
    }

    /// <summary>How to start this same program: the app host, or the <c>dotnet</c> host with Scst.Host.dll as its first argument.</summary>
    public static (string Program, string[] Prefix) Self()
    {
        var exe = Environment.ProcessPath;
        if (exe is null || Path.GetFileNameWithoutExtension(exe) == "dotnet") return (exe ?? "dotnet", [typeof(RolloutCommandLine).Assembly.Location]);
        return (exe, []);
    }

    /// <summary>POSIX shell quoting, only where needed.</summary>
    public static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "/._-:+=@,".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}

namespace Scst.Host.Cluster;

/// <summary>
/// The command a person runs to give a waiting learner a rollout node: this same program, <c>train --role rollout</c>,
/// the learner's own address as the seed, the same config, HOCON files and TLS settings, a run folder of its own beside
/// the learner's (a rollout node keeps only its replica's files there), and any free port.
/// </summary>
public static class RolloutCommandLine
{
    public static string For(string learnerAddress, NodeOptions learner, string? configFile) =>
        Build(SelfInvocation(), learnerAddress, learner, configFile);

    public static string Build(string program, string learnerAddress, NodeOptions learner, string? configFile)
    {
        var runDir = Path.GetFullPath(learner.RunDir).TrimEnd(Path.DirectorySeparatorChar);
        var args = new List<string> { program, "train", "--role", "rollout", "--seed-nodes", learnerAddress, "--port", "0",
            "--run-dir", Quote(runDir + "-rollout-1") };
        if (configFile is not null) args.AddRange(["--config", Quote(Path.GetFullPath(configFile))]);
        else args.AddRange(["--config", "<the learner's config>"]);
        foreach (var h in learner.ExtraHoconFiles) args.AddRange(["--hocon", Quote(Path.GetFullPath(h))]);
        if (learner.TlsCertificate is not null)
        {
            // The same certificate works (every node is client and server); a node of its own is the usual setup.
            args.AddRange(["--tls-cert", Quote(Path.GetFullPath(learner.TlsCertificate))]);
            if (learner.TlsCa is not null) args.AddRange(["--tls-ca", Quote(Path.GetFullPath(learner.TlsCa))]);
            if (learner.TlsPasswordVariable is not null) args.AddRange(["--tls-password-env", learner.TlsPasswordVariable]);
        }
        if (learner.FastFailure) args.Add("--fast-failure");
        return string.Join(" ", args);
    }

    /// <summary>How this process was started: the app host itself, or <c>dotnet Scst.Host.dll</c>.</summary>
    public static string SelfInvocation()
    {
        var exe = Environment.ProcessPath;
        var dll = typeof(RolloutCommandLine).Assembly.Location;
        if (exe is null || Path.GetFileNameWithoutExtension(exe) == "dotnet") return $"dotnet {Quote(dll)}";
        return Quote(exe);
    }

    /// <summary>POSIX shell quoting, only where needed.</summary>
    public static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "/._-:+=@,".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}

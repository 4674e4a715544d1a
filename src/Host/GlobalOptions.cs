using System.CommandLine;

namespace Scst.Host;

/// <summary>Options every command understands (cluster placement, config, run folder).</summary>
public static class GlobalOptions
{
    public static readonly Option<string> Role = new("--role")
    {
        Description = "Node role: learner | rollout | reward | all (all = everything in one process, no network)",
        DefaultValueFactory = _ => "all",
        Recursive = true,
    };

    public static readonly Option<FileInfo?> Config = new("--config")
    {
        Description = "YAML config in LAVIS's schema (model, datasets, run, scst)",
        Recursive = true,
    };

    public static readonly Option<FileInfo[]> Hocon = new("--hocon")
    {
        Description = "Extra HOCON files merged over hocon/ (later wins)",
        Recursive = true,
        AllowMultipleArgumentsPerToken = true,
    };

    public static readonly Option<string[]> SeedNodes = new("--seed-nodes")
    {
        Description = "Cluster seed nodes, e.g. akka.tcp://scst@127.0.0.1:4053",
        Recursive = true,
        AllowMultipleArgumentsPerToken = true,
    };

    public static readonly Option<int?> Port = new("--port")
    {
        Description = "Akka.Remote port for this node (0 = any free port)",
        Recursive = true,
    };

    public static readonly Option<DirectoryInfo?> RunDir = new("--run-dir")
    {
        Description = "Folder for checkpoints, metrics.jsonl, plots and the journal",
        Recursive = true,
    };

    public static readonly string[] Roles = ["learner", "rollout", "reward", "all"];

    public static void AddTo(RootCommand root)
    {
        Role.AcceptOnlyFromAmong(Roles);
        foreach (var o in new Option[] { Role, Config, Hocon, SeedNodes, Port, RunDir }) root.Options.Add(o);
    }
}

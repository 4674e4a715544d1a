using Akka.Configuration;

namespace Scst.Host.Cluster;

/// <summary>
/// The HOCON a node still reads: hocon/base.conf and cluster.conf (what Akka.Hosting has no option for),
/// fast-failure.conf when asked, and the user's --hocon files. Nothing here is built from command-line values:
/// those go into <see cref="ScstClusterOptions"/> and from there into the Akka.Hosting calls.
/// </summary>
public static class HoconLoader
{
    /// <summary>The files shipped in hocon/, lowest priority first.</summary>
    public static Config LoadStatic(ScstClusterOptions options)
    {
        var dir = FindHoconDir(options.HoconDir);
        var files = new List<string> { "base.conf", "cluster.conf" };
        if (options.FastFailure) files.Add("fast-failure.conf");
        // Parse every file first so a bad one is reported by name, then stack them (later wins).
        var layers = files.Select(f => ParseFile(Path.Combine(dir, f))).ToList();
        var merged = ConfigurationFactory.Empty;
        foreach (var l in layers) merged = l.WithFallback(merged);
        return merged;
    }

    /// <summary>The --hocon files merged in order (later wins); <paramref name="check"/> sees each file's own keys first.</summary>
    public static Config LoadUserFiles(IEnumerable<string> files, Action<string, Config>? check = null)
    {
        Config user = ConfigurationFactory.Empty;
        foreach (var f in files)
        {
            if (!File.Exists(f)) throw new FileNotFoundException($"--hocon file '{f}' does not exist", f);
            var file = ParseFile(f);
            check?.Invoke(f, file);
            user = file.WithFallback(user);
        }
        return user;
    }

    static Config ParseFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"HOCON file '{path}' is missing", path);
        try { return ConfigurationFactory.ParseString(File.ReadAllText(path)); }
        catch (Exception e) { throw new ConfigurationException($"HOCON file '{path}' does not parse: {e.Message}", e); }
    }

    /// <summary>hocon/ beside the app (copied by the build), else under the working directory.</summary>
    public static string FindHoconDir(string? explicitDir = null)
    {
        if (explicitDir is not null)
            return File.Exists(Path.Combine(explicitDir, "base.conf")) ? explicitDir
                : throw new DirectoryNotFoundException($"HOCON folder '{explicitDir}' has no base.conf");
        foreach (var d in new[] { Path.Combine(AppContext.BaseDirectory, "hocon"), Path.Combine(Directory.GetCurrentDirectory(), "hocon") })
            if (File.Exists(Path.Combine(d, "base.conf"))) return d;
        throw new DirectoryNotFoundException($"no hocon/base.conf beside {AppContext.BaseDirectory} or in {Directory.GetCurrentDirectory()}");
    }
}

namespace Scst.Actors.Pipeline;

/// <summary>
/// A rollout node's devices (<c>scst.rollout.devices</c>): one rollout actor per device, each holding that device's
/// model (frozen base and trainable part) and generating on its own pinned thread. A device is <c>cuda:N</c>, or a CPU
/// slot <c>cpu:N</c> (a model copy on the CPU, so the same code runs, and is tested, without a GPU). <c>all</c> is every
/// CUDA device of the node, or, without CUDA, <c>scst.rollout.actors</c> CPU slots. Unset: <c>scst.rollout.actors</c>
/// replicas on <c>run.device</c>, as before the setting existed.
/// </summary>
public static class RolloutDevices
{
    /// <param name="setting">The setting's entries (null: unset; ["all"]: every device).</param>
    /// <param name="cudaDevices">CUDA devices this node has.</param>
    public static IReadOnlyList<string> Resolve(IReadOnlyList<string>? setting, int actors, string runDevice, int cudaDevices)
    {
        if (setting is null)
        {
            var run = runDevice.Trim().ToLowerInvariant();
            var onCuda = run.StartsWith("cuda", StringComparison.Ordinal) || (run == "auto" && cudaDevices > 0);
            if (!onCuda) return [.. Enumerable.Range(0, actors).Select(i => $"cpu:{i}")];
            var device = run.Contains(':') ? run : "cuda:0";
            return [.. Enumerable.Repeat(device, actors)];
        }
        if (setting.Count == 1 && setting[0].Trim().Equals("all", StringComparison.OrdinalIgnoreCase))
            return cudaDevices > 0
                ? [.. Enumerable.Range(0, cudaDevices).Select(i => $"cuda:{i}")]
                : [.. Enumerable.Range(0, actors).Select(i => $"cpu:{i}")];
        if (setting.Count == 0) throw new ArgumentException("scst.rollout.devices is empty: give a list such as [cuda:0, cuda:1] or [cpu:0, cpu:1], or all");
        var devices = new List<string>();
        foreach (var entry in setting)
        {
            var d = Normalize(entry, cudaDevices);
            if (devices.Contains(d)) throw new ArgumentException($"scst.rollout.devices lists {d} twice: one rollout actor per device");
            devices.Add(d);
        }
        return devices;
    }

    /// <summary>The Torch device a rollout device runs on (a CPU slot runs on the CPU).</summary>
    public static string TorchDevice(string device) => device.StartsWith("cpu", StringComparison.Ordinal) ? "cpu" : device;

    /// <summary>A rollout actor's model on its device: the frozen base and the trainable part, loaded once per device, its files under <paramref name="workDir"/>.</summary>
    public static Scst.Training.RunSetup LoadModel(Scst.Training.Configuration.ScstConfig config, string device, string workDir, Microsoft.Extensions.Logging.ILogger log)
    {
        Directory.CreateDirectory(workDir);
        return Scst.Training.RunSetup.Load(config with { Run = config.Run with { Device = TorchDevice(device) } }, Path.Combine(workDir, "checkpoints"), log);
    }

    static string Normalize(string entry, int cudaDevices)
    {
        var e = entry.Trim().ToLowerInvariant();
        var (kind, index) = e.Split(':') switch
        {
            [var k] => (k, 0),
            [var k, var i] when int.TryParse(i, out var n) && n >= 0 => (k, n),
            _ => ("", -1),
        };
        if (kind == "cpu") return $"cpu:{index}";
        if (kind == "cuda")
        {
            if (index >= cudaDevices)
                throw new ArgumentException(cudaDevices == 0
                    ? $"scst.rollout.devices: {entry} but this node has no CUDA device (use cpu:N slots, or set SCST_LIBTORCH to a CUDA libtorch)"
                    : $"scst.rollout.devices: {entry} but this node has CUDA devices 0..{cudaDevices - 1}");
            return $"cuda:{index}";
        }
        throw new ArgumentException($"scst.rollout.devices: '{entry}' is not a device; use cuda:N or cpu:N (a CPU slot), or all");
    }
}

namespace Scst.Model;

/// <summary>Resident memory of this process as the kernel counts it (Linux <c>/proc/self/status</c>), native tensors included.</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size in bytes (VmHWM), or the GC's peak working set where /proc is absent.</summary>
    public static long PeakRssBytes() => Read("VmHWM:") ?? Environment.WorkingSet;

    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long RssBytes() => Read("VmRSS:") ?? Environment.WorkingSet;

    private static long? Read(string key)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return null;
        foreach (var line in File.ReadLines(status))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0]) * 1024;
        return null;
    }
}

namespace Scst.Model;

/// <summary>Resident memory of this process as the kernel counts it (Linux <c>/proc/self/status</c>), native tensors included.</summary>
public static class ProcessMemory
{
    /// <summary>Peak resident set size in bytes (VmHWM), or the GC's peak working set where /proc is absent.</summary>
    public static long PeakRssBytes() => Read("VmHWM:") ?? Environment.WorkingSet;

    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long RssBytes() => Read("VmRSS:") ?? Environment.WorkingSet;

    /// <summary>
    /// Resets the peak (VmHWM) to the current RSS, so one process can measure several phases (Linux ≥ 4.0's
    /// <c>clear_refs</c> 5); false where the kernel offers no reset.
    /// </summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

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

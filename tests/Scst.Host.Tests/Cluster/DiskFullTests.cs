using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// A run folder on a small tmpfs that fills up before a checkpoint: the previous checkpoint stays valid, the run stops
/// with one line naming the file and the full disk (exit 2, no stack trace), and once space is freed the run resumes
/// and ends with exactly the weights of an uninterrupted run — the plain trainer with --resume, and a `--role all`
/// SCST run started again (its journal replays the updates after the checkpoint).
/// </summary>
[Trait("Category", "Chaos")]
public sealed class DiskFullTests(ITestOutputHelper output) : IDisposable
{
    static readonly TimeSpan Run = TimeSpan.FromSeconds(180);
    readonly List<string> _mounts = [];

    [SkippableFact]
    public Task Plain_train_stops_on_a_full_disk_and_resumes_to_the_same_weights() =>
        FullDiskThenResume("plain", [], resume: ["--resume"]);

    [SkippableFact]
    public Task Role_all_scst_stops_on_a_full_disk_and_resumes_to_the_same_weights() =>
        FullDiskThenResume("all", ["--role", "all"], resume: []);

    /// <summary>
    /// Almost no room at all: the journal's next event (or a metrics line, whichever comes first) cannot be written.
    /// The journal stays consistent: the run started again replays what it holds and ends with the same weights.
    /// </summary>
    [SkippableFact]
    public Task Role_all_scst_with_no_room_for_the_journal_resumes_to_the_same_weights() =>
        FullDiskThenResume("all-journal", ["--role", "all"], resume: [], leaveFree: _ => 16 * 1024, failingFile: null);

    async Task FullDiskThenResume(string name, string[] role, string[] resume, Func<long, long>? leaveFree = null, string? failingFile = "step_0000006.safetensors")
    {
        var dir = TinyScstRun.NewDir("disk-full-" + name);
        var config = TinyScstRun.WriteConfig(dir, maxIters: 8, checkpointEvery: 2);
        var reference = Path.Combine(dir, "reference");
        using (var p = HostProcess.Start("reference", [.. role, "train", "--config", config, "--run-dir", reference]))
            await p.ExpectExit(0, Run, "finish the uninterrupted run");

        var mount = Mount(Path.Combine(dir, "small-disk"), "64m");
        var run = Path.Combine(mount, "run");
        string[] train = [.. role, "train", "--config", config, "--run-dir", run];
        using (var p = HostProcess.Start("first", [.. train, "--stop-after", "4"]))
            await p.ExpectExit(0, Run, "stop after 4 updates with a checkpoint");
        var before = Latest(run);
        Assert.Equal(4, before.Step);

        // By default room for the small writes of two updates (metrics, journal, log) but not for the next checkpoint.
        var checkpointBytes = new FileInfo(Path.Combine(run, "checkpoints", before.File)).Length;
        var filler = Path.Combine(mount, "filler");
        Fill(filler, new DriveInfo(mount).AvailableFreeSpace - (leaveFree ?? (c => c / 2))(checkpointBytes));
        output.WriteLine($"checkpoint {checkpointBytes} bytes; free after filling {new DriveInfo(mount).AvailableFreeSpace} bytes");

        using (var p = HostProcess.Start("full", [.. train, .. resume]))
        {
            await p.ExpectExit(2, Run, "stop on the full disk");
            foreach (var l in p.Lines.Where(l => l.StartsWith("error:", StringComparison.Ordinal))) output.WriteLine(l);
            Assert.DoesNotContain(p.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal) || l.Contains("Unhandled exception"));
            Assert.Contains(p.Lines, l => l.StartsWith("error:", StringComparison.Ordinal) && l.Contains("No space left", StringComparison.OrdinalIgnoreCase)
                                          && (failingFile is null || l.Contains(failingFile)));
        }
        // The previous checkpoint is still the latest, whole (its hash matches), and nothing half-written is left.
        var after = Latest(run);
        Assert.Equal(before, after);
        Assert.Equal(after.Sha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(run, "checkpoints", after.File)))));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(run, "checkpoints"), "*.tmp"));

        File.Delete(filler);
        using (var p = HostProcess.Start("resumed", [.. train, .. resume]))
            await p.ExpectExit(0, Run, "finish after space was freed");
        Assert.Equal(8, Latest(run).Step);
        var delta = TinyScstRun.MaxWeightDelta(reference, run);
        output.WriteLine($"max |Δ| uninterrupted vs full disk + resume: {delta:G3}");
        Assert.True(delta <= 1e-6, $"weights differ by {delta}");
        Assert.True(TinyScstRun.Summary(run).GetProperty("completed").GetBoolean());
    }

    sealed record Pointer(string File, string Sha256, long Step, string Tag);

    static Pointer Latest(string run) =>
        JsonSerializer.Deserialize<Pointer>(File.ReadAllBytes(Path.Combine(run, "checkpoints", "latest.json")))!;

    /// <summary>A tmpfs of <paramref name="size"/> at <paramref name="dir"/>; skips the test where mounting is not allowed (not root, no CAP_SYS_ADMIN).</summary>
    string Mount(string dir, string size)
    {
        Directory.CreateDirectory(dir);
        var (code, text) = Exec("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", dir);
        Skip.If(code != 0, $"cannot mount a tmpfs here (needs root): {text}");
        _mounts.Add(dir);
        return dir;
    }

    static void Fill(string file, long bytes)
    {
        using var f = new FileStream(file, FileMode.CreateNew, FileAccess.Write);
        var block = new byte[1 << 16];
        for (var left = bytes; left > 0; left -= block.Length) f.Write(block, 0, (int)Math.Min(block.Length, left));
    }

    static (int Code, string Text) Exec(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var text = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, text.Trim());
        }
        catch (System.ComponentModel.Win32Exception e) { return (-1, e.Message); }
    }

    public void Dispose()
    {
        foreach (var m in _mounts) Exec("umount", "-l", m);
    }
}

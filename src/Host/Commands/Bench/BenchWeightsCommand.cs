using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Scst.Actors.Weights;
using Scst.Host.Cluster;
using Scst.Model;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench weights --mb N</c>: the weight plane between two processes on 127.0.0.1. This process writes N MB of
/// random bytes as a safetensors-shaped file and starts a child (this same program, <c>bench weights --serve FILE</c>)
/// that serves it with the real <see cref="WeightServer"/>; here the real <see cref="WeightDownloader"/> fetches it
/// into memory as a rollout node's fetcher does (per-chunk SHA-256, one buffer reused for every transfer). In the same run, alternating with it, the child sends the same
/// bytes from memory over a plain TCP socket and this process receives and discards them: the reference.
/// </summary>
public static class BenchWeightsCommand
{
    static readonly Option<int> Mb = new("--mb") { Description = "Payload size in MB (10^6 bytes)", DefaultValueFactory = _ => 100 };
    static readonly Option<int> Repeat = new("--repeat") { Description = "Timed transfers of each kind (median reported)", DefaultValueFactory = _ => 3 };
    static readonly Option<bool> Tls = new("--tls") { Description = "Mutual TLS on the weight plane (throw-away CA and node certificates)" };
    static readonly Option<bool> WholeFile = new("--verify-whole-file") { Description = "Also hash the whole file while streaming (scst.weights.verify-whole-file)" };
    static readonly Option<FileInfo?> Json = new("--json") { Description = "Also write {\"mb_per_s\": x, \"raw_mb_per_s\": y, ...} to this file" };
    static readonly Option<DirectoryInfo?> Work = new("--work-dir") { Description = "Where the payload and fetched copies go (default: a temp folder)" };
    // The child's side: not for people.
    static readonly Option<string?> Serve = new("--serve") { Hidden = true };
    static readonly Option<string?> ServeTls = new("--serve-tls") { Hidden = true };

    const string PasswordVariable = "SCST_BENCH_WEIGHTS_PASSWORD";

    public static Command Create()
    {
        var cmd = new Command("weights", "Weight plane MB/s between two processes on 127.0.0.1, against a raw TCP socket in the same run")
            { Mb, Repeat, Tls, WholeFile, Json, Work, Serve, ServeTls };
        cmd.SetAction(async (p, ct) =>
        {
            if (p.GetValue(Serve) is { } file) return RunServer(file, p.GetValue(ServeTls));
            var mb = p.GetValue(Mb);
            var repeat = p.GetValue(Repeat);
            if (mb < 1) { Console.Error.WriteLine("bench weights: --mb must be at least 1"); return 2; }
            if (repeat < 1) { Console.Error.WriteLine("bench weights: --repeat must be at least 1"); return 2; }
            var work = p.GetValue(Work)?.FullName ?? Path.Combine(Path.GetTempPath(), "scst-bench-weights", Guid.NewGuid().ToString("N")[..8]);
            try { return await Measure(mb, repeat, p.GetValue(Tls), p.GetValue(WholeFile), work, p.GetValue(Json)?.FullName, ct); }
            finally { try { Directory.Delete(work, recursive: true); } catch (IOException) { } }
        });
        return cmd;
    }

    static async Task<int> Measure(int mb, int repeat, bool tls, bool wholeFile, string work, string? json, CancellationToken ct)
    {
        Directory.CreateDirectory(work);
        var payload = Path.Combine(work, "payload.safetensors");
        var bytes = WritePayload(payload, (long)mb * 1_000_000);
        string? tlsDir = null;
        WeightPlaneTls? clientTls = null;
        if (tls) (tlsDir, clientTls) = MakeCertificates(work);

        var (program, prefix) = RolloutCommandLine.Self();
        var psi = new ProcessStartInfo(program) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in prefix.Concat(["bench", "weights", "--serve", payload])) psi.ArgumentList.Add(a);
        if (tlsDir is not null) { psi.ArgumentList.Add("--serve-tls"); psi.ArgumentList.Add(tlsDir); psi.Environment[PasswordVariable] = "bench"; }
        using var child = Process.Start(psi)!;
        try
        {
            var ready = JsonNode.Parse(await child.StandardOutput.ReadLineAsync(ct) ?? throw new IOException("the serving process ended before it was ready"))!;
            var info = new WeightsAvailable(1, (string)ready["sha256"]!, (long)ready["size"]!, (int)ready["chunk_size"]!, (string)ready["url"]!,
                Convert.FromBase64String((string)ready["chunk_sha256"]!));
            var rawPort = (int)ready["raw_port"]!;

            using var downloader = new WeightDownloader(new WeightFetcherSettings(5, clientTls, WholeFileSha256: wholeFile));
            var fetched = new Scst.Model.SafeTensors.SegmentedBuffer();
            // One untimed round of each, so JIT, connection set-up and the buffers are warm for the timed ones (as a fetcher's are after its first version).
            await PlaneOnce(downloader, info, fetched, ct);
            await RawOnce(rawPort, bytes, ct);
            var plane = new List<double>();
            var raw = new List<double>();
            // CPU seconds per GB of each side: on a loaded machine the wall clock depends on the neighbours, this does not.
            var cpu = new double[4];
            async Task<double> ServerCpu()
            {
                await child.StandardInput.WriteLineAsync("cpu");
                return double.Parse(await child.StandardOutput.ReadLineAsync(ct) ?? "0", CultureInfo.InvariantCulture);
            }
            double OwnCpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
            for (var r = 0; r < repeat; r++)
            {
                var (s0, o0) = (await ServerCpu(), OwnCpu());
                var s = await PlaneOnce(downloader, info, fetched, ct);
                var (s1, o1) = (await ServerCpu(), OwnCpu());
                plane.Add(bytes / s / 1e6);
                var (s1f, o1f) = (await ServerCpu(), OwnCpu());
                raw.Add(bytes / await RawOnce(rawPort, bytes, ct) / 1e6);
                var (s2, o2) = (await ServerCpu(), OwnCpu());
                cpu[0] += s1 - s0; cpu[1] += o1 - o0; cpu[2] += s2 - s1f; cpu[3] += o2 - o1f;
            }
            var perGb = cpu.Select(c => c / repeat / (bytes / 1e9)).ToArray();
            await child.StandardInput.WriteLineAsync("quit");
            var serverRss = long.Parse(await child.StandardOutput.ReadLineAsync(ct) ?? "0", CultureInfo.InvariantCulture);
            await child.WaitForExitAsync(ct);

            var inv = CultureInfo.InvariantCulture;
            var (planeMedian, rawMedian) = (Median(plane), Median(raw));
            Console.WriteLine(string.Format(inv, "bench weights: {0} MB ({1} bytes, {2} chunks of {3} MiB), {4}, {5} timed transfers each, 127.0.0.1, {6} cores",
                mb, bytes, info.ChunkCount, info.ChunkSize >> 20, (tls ? "HTTPS with mutual TLS" : "plain HTTP") + (wholeFile ? ", SHA-256 per chunk and whole file" : ", SHA-256 per chunk"), repeat, Environment.ProcessorCount));
            Console.WriteLine(string.Format(inv, "  weight plane: {0} MB/s (runs: {1})", planeMedian.ToString("F0", inv), string.Join(", ", plane.Select(x => x.ToString("F0", inv)))));
            Console.WriteLine(string.Format(inv, "  raw TCP:      {0} MB/s (runs: {1})", rawMedian.ToString("F0", inv), string.Join(", ", raw.Select(x => x.ToString("F0", inv)))));
            Console.WriteLine(string.Format(inv, "  plane / raw:  {0:F2}", planeMedian / rawMedian));
            Console.WriteLine(string.Format(inv, "  CPU s per GB: plane server {0:F2} + fetcher {1:F2}; raw sender {2:F2} + receiver {3:F2}", perGb[0], perGb[1], perGb[2], perGb[3]));
            Console.WriteLine(string.Format(inv, "  peak RSS: fetcher {0:F0} MB, server {1:F0} MB (the fetcher receives into one payload buffer; the server also holds the payload in memory for the raw socket)",
                ProcessMemory.PeakRssBytes() / 1e6, serverRss / 1e6));
            if (json is not null)
            {
                var o = new JsonObject
                {
                    ["mb_per_s"] = Math.Round(planeMedian, 1), ["raw_mb_per_s"] = Math.Round(rawMedian, 1), ["ratio"] = Math.Round(planeMedian / rawMedian, 3),
                    ["mb"] = mb, ["bytes"] = bytes, ["tls"] = tls, ["whole_file_sha256"] = wholeFile, ["chunk_size"] = info.ChunkSize,
                    ["plane_runs"] = new JsonArray([.. plane.Select(x => (JsonNode)Math.Round(x, 1))]),
                    ["raw_runs"] = new JsonArray([.. raw.Select(x => (JsonNode)Math.Round(x, 1))]),
                    ["fetcher_peak_rss_bytes"] = ProcessMemory.PeakRssBytes(), ["server_peak_rss_bytes"] = serverRss,
                    ["processor_count"] = Environment.ProcessorCount,
                };
                o["cpu_s_per_gb"] = new JsonObject { ["plane_server"] = Math.Round(perGb[0], 3), ["plane_fetcher"] = Math.Round(perGb[1], 3),
                    ["raw_sender"] = Math.Round(perGb[2], 3), ["raw_receiver"] = Math.Round(perGb[3], 3) };
                File.WriteAllText(json, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            return 0;
        }
        finally
        {
            if (!child.HasExited) child.Kill(entireProcessTree: true);
        }
    }

    static async Task<double> PlaneOnce(WeightDownloader downloader, WeightsAvailable info, Scst.Model.SafeTensors.SegmentedBuffer into, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        await downloader.DownloadAsync(info, into, ct);
        return clock.Elapsed.TotalSeconds;
    }

    static async Task<double> RawOnce(int port, long bytes, CancellationToken ct)
    {
        var buf = new byte[4 << 20];
        var clock = Stopwatch.StartNew();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port, ct);
        long got = 0;
        for (int n; (n = await socket.ReceiveAsync(buf, SocketFlags.None, ct)) > 0;) got += n;
        var seconds = clock.Elapsed.TotalSeconds;
        if (got != bytes) throw new IOException($"raw socket delivered {got} of {bytes} bytes");
        return seconds;
    }

    /// <summary>A safetensors file of one F32 tensor of random values: header length, JSON header, data.</summary>
    static long WritePayload(string path, long bytes)
    {
        var data = bytes / 4 * 4;
        var header = Encoding.UTF8.GetBytes($"{{\"weights\":{{\"dtype\":\"F32\",\"shape\":[{data / 4}],\"data_offsets\":[0,{data}]}}}}");
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write);
        fs.Write(BitConverter.GetBytes((long)header.Length));
        fs.Write(header);
        var block = new byte[1 << 20];
        for (var left = data; left > 0; left -= block.Length)
        {
            RandomNumberGenerator.Fill(block);
            fs.Write(block, 0, (int)Math.Min(block.Length, left));
        }
        return fs.Length;
    }

    static (string Dir, WeightPlaneTls Client) MakeCertificates(string work)
    {
        var dir = Path.Combine(work, "tls");
        Directory.CreateDirectory(dir);
        using var ca = TlsCertificates.CreateCa("scst bench CA", TimeSpan.FromDays(1));
        File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.ExportCertificatePem());
        TlsCertificates.WritePfx(TlsCertificates.CreateNode(ca, "server", TimeSpan.FromDays(1)), Path.Combine(dir, "server.pfx"), "bench");
        var client = TlsCertificates.CreateNode(ca, "fetcher", TimeSpan.FromDays(1));
        // Through PKCS#12 and back, as a node loads its certificate, so the key is usable by the TLS stack.
        var reloaded = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12(client.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pkcs12, "bench"), "bench");
        return (dir, new WeightPlaneTls(reloaded, System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(ca.RawData)));
    }

    /// <summary>The child: serves <paramref name="file"/> as version 1 and the same bytes on a raw socket, until "quit" on stdin.</summary>
    static int RunServer(string file, string? tlsDir)
    {
        WeightPlaneTls? tls = null;
        if (tlsDir is not null)
            tls = new WeightPlaneTls(
                System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(Path.Combine(tlsDir, "server.pfx"), Environment.GetEnvironmentVariable(PasswordVariable)),
                System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(Path.Combine(tlsDir, "ca.pem"))));
        using var server = WeightServer.Start(new WeightServerSettings("127.0.0.1", "127.0.0.1", 0, 2, tls));
        var info = server.Add(1, file);
        var bytes = File.ReadAllBytes(file);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                using var s = await listener.AcceptSocketAsync();
                for (var sent = 0; sent < bytes.Length;) sent += await s.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
                s.Shutdown(SocketShutdown.Send);
            }
        });
        var ready = new JsonObject
        {
            ["url"] = info.Url, ["sha256"] = info.Sha256, ["size"] = info.SizeBytes, ["chunk_size"] = info.ChunkSize,
            ["chunk_sha256"] = Convert.ToBase64String(info.ChunkSha256), ["raw_port"] = ((IPEndPoint)listener.LocalEndpoint).Port,
        };
        Console.WriteLine(ready.ToJsonString());
        // "cpu": this process's CPU time so far, so the parent can put CPU seconds per GB next to each transfer.
        while (Console.ReadLine() is { } line && line != "quit")
            if (line == "cpu") Console.WriteLine(Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds.ToString("R", CultureInfo.InvariantCulture));
        listener.Stop();
        Console.WriteLine(ProcessMemory.PeakRssBytes().ToString(CultureInfo.InvariantCulture));
        return 0;
    }

    static double Median(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}

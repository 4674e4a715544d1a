using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Scst.Actors.Weights;
using Scst.Host.Cluster;

namespace Scst.Actors.Tests;

/// <summary>
/// The weight plane: announcements over real Akka.Remote between two ActorSystems on 127.0.0.1, bytes from the real
/// <see cref="WeightServer"/> (Kestrel) to the real <see cref="WeightDownloader"/>, faults injected by the server itself.
/// </summary>
public class WeightSyncTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    static (string Path, string Sha) WriteWeights(int bytes, int seed)
    {
        var data = new byte[bytes];
        new Random(seed).NextBytes(data);
        var path = Path.Combine(TestNodes.NewRunDir(), $"weights-{seed}.safetensors");
        File.WriteAllBytes(path, data);
        return (path, Convert.ToHexStringLower(SHA256.HashData(data)));
    }

    static WeightServer Server(WeightPlaneTls? tls = null, int keep = 2) => WeightServer.Start(new WeightServerSettings("127.0.0.1", "127.0.0.1", 0, keep, tls));

    static string Sha(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public async Task Announcement_over_akka_and_bytes_over_http_reach_a_remote_fetcher_intact()
    {
        var learner = TestNodes.Start(TestNodes.NewRunDir(), "learner");
        var rolloutDir = TestNodes.NewRunDir();
        var rollout = TestNodes.Start(rolloutDir, "rollout", join: Akka.Cluster.Cluster.Get(learner).SelfAddress);
        try
        {
            var server = Server();
            learner.ActorOf(WeightPublisher.Props(server), "weights");
            var publisher = await rollout.ActorSelection(new RootActorPath(Akka.Cluster.Cluster.Get(learner).SelfAddress) / "user" / "weights").ResolveOne(Wait);
            var owner = new TestKit(rollout).CreateTestProbe();
            var fetcher = rollout.ActorOf(WeightFetcher.Props(publisher, Path.Combine(rolloutDir, "weights"), owner.Ref, new WeightFetcherSettings(3, WholeFileSha256: true)));

            var (path, sha) = WriteWeights(10 * 1024 * 1024 + 12345, 7);
            var announced = await learner.ActorSelection("/user/weights").Ask<WeightsAvailable>(new PublishWeights(1, path), Wait);
            Assert.Equal((sha, 3, 4 << 20), (announced.Sha256, announced.ChunkCount, announced.ChunkSize));
            Assert.StartsWith($"http://127.0.0.1:{server.Port}/weights/v1", announced.Url);
            var ready = owner.ExpectMsg<WeightsReady>(Wait);
            Assert.Equal((1L, sha), (ready.Version, ready.Sha256));
            Assert.Equal(sha, Sha(ready.Path));
            Assert.Equal([ready.Path], Directory.GetFiles(Path.GetDirectoryName(ready.Path)!)); // no partial file left

            // A second version: the fetcher acts on the announcement alone; the writer's known hash is taken as given.
            var (path2, sha2) = WriteWeights(300_000, 8);
            learner.ActorSelection("/user/weights").Tell(new PublishWeights(2, path2, sha2));
            var ready2 = owner.ExpectMsg<WeightsReady>(Wait);
            Assert.Equal((2L, sha2), (ready2.Version, Sha(ready2.Path)));
            var stats = await fetcher.Ask<FetcherStats>(GetFetcherStats.Instance, Wait);
            Assert.Equal((4L, 0L, 0L, 2L), (stats.ChunksVerified, stats.ChunksRefused, stats.Resumes, stats.VersionsReady));
        }
        finally
        {
            TestNodes.Stop(rollout);
            TestNodes.Stop(learner);
        }
    }

    [Fact]
    public async Task A_damaged_chunk_is_refused_and_fetched_again_from_that_chunk()
    {
        using var server = Server();
        var (path, sha) = WriteWeights(13 * 1024 * 1024, 1);
        var info = server.Add(1, path);
        // One byte of chunk 2 (of 4) arrives altered once: chunks 0-1 stay, the resume asks from chunk 2.
        server.Faults.DamageByte(2L * info.ChunkSize + 777, times: 1);
        using var d = new WeightDownloader(new WeightFetcherSettings(3));
        var got = await d.DownloadAsync(info, TestNodes.NewRunDir(), CancellationToken.None);
        Assert.Equal(sha, Sha(got));
        Assert.Equal((1L, 1L, 4L), (d.ChunksRefused, d.Resumes, d.ChunksVerified));
        Assert.Equal(2L, server.Requests);
        // The second response starts at chunk 2; the first sent at least chunks 0-2, at most the whole file.
        var resent = info.SizeBytes - 2L * info.ChunkSize;
        Assert.InRange(server.BytesServed, 3L * info.ChunkSize + resent, info.SizeBytes + resent);
    }

    [Fact]
    public async Task A_chunk_damaged_on_every_try_fails_the_fetch_after_max_attempts_and_leaves_no_file()
    {
        using var server = Server();
        var (path, _) = WriteWeights(9 * 1024 * 1024, 2);
        var info = server.Add(1, path);
        server.Faults.DamageByte(5, times: 100);
        using var d = new WeightDownloader(new WeightFetcherSettings(3));
        var dir = TestNodes.NewRunDir();
        var e = await Assert.ThrowsAsync<WeightFetchException>(() => d.DownloadAsync(info, dir, CancellationToken.None));
        Assert.Contains("chunk 0 arrived damaged", e.Message);
        Assert.Equal(3L, d.ChunksRefused);
        Assert.Empty(Directory.EnumerateFiles(dir));
    }

    [Fact]
    public async Task A_connection_broken_mid_file_resumes_with_a_range_request_from_the_last_verified_chunk()
    {
        using var server = Server();
        var (path, sha) = WriteWeights(20 * 1024 * 1024 + 5, 3);
        var info = server.Add(1, path);
        // The real server closes the connection after about 11 MB: chunks 0 and 1 (8 MiB) are verified by then.
        server.Faults.DropConnectionAfter(11_000_000, times: 1);
        using var d = new WeightDownloader(new WeightFetcherSettings(3));
        var got = await d.DownloadAsync(info, TestNodes.NewRunDir(), CancellationToken.None);
        Assert.Equal(sha, Sha(got));
        Assert.Equal((0L, 1L), (d.ChunksRefused, d.Resumes));
        Assert.Equal(2L, server.Requests);
        // Resumed, not restarted: at most the broken chunk's bytes and one write segment are sent twice.
        Assert.InRange(server.BytesServed - info.SizeBytes, 0, info.ChunkSize + (1 << 20));
    }

    [Fact]
    public async Task A_version_no_longer_kept_is_reported_gone_so_the_fetcher_asks_for_the_latest()
    {
        using var server = Server(keep: 1);
        var (p1, _) = WriteWeights(1000, 4);
        var (p2, _) = WriteWeights(1000, 5);
        var v1 = server.Add(1, p1);
        server.Add(2, p2);
        using var d = new WeightDownloader(new WeightFetcherSettings(3));
        var e = await Assert.ThrowsAsync<WeightVersionGoneException>(() => d.DownloadAsync(v1, TestNodes.NewRunDir(), CancellationToken.None));
        Assert.Equal(1, e.Version);
        Assert.Throws<ArgumentException>(() => server.Add(2, p2));
    }

    [Fact]
    public async Task Over_mutual_tls_only_a_client_certified_by_the_cluster_ca_gets_bytes()
    {
        using var ca = TlsCertificates.CreateCa("weights test CA", TimeSpan.FromDays(1));
        using var otherCa = TlsCertificates.CreateCa("another CA", TimeSpan.FromDays(1));
        var caPublic = X509CertificateLoader.LoadCertificate(ca.RawData);
        var tls = new WeightPlaneTls(Node(ca, "learner"), caPublic);
        using var server = Server(tls);
        var (path, sha) = WriteWeights(5 * 1024 * 1024, 6);
        var info = server.Add(1, path);
        Assert.StartsWith("https://", info.Url);

        // Signed by another CA (even one that trusts the server): refused in the handshake, no request, no bytes.
        foreach (var untrusted in new[] { new WeightPlaneTls(Node(otherCa, "intruder"), caPublic), new WeightPlaneTls(Node(otherCa, "intruder"), null) })
        {
            using var d = new WeightDownloader(new WeightFetcherSettings(2, untrusted));
            var dir = TestNodes.NewRunDir();
            await Assert.ThrowsAsync<WeightFetchException>(() => d.DownloadAsync(info, dir, CancellationToken.None));
            Assert.Empty(Directory.EnumerateFiles(dir));
        }
        // No client certificate at all (plain HttpClient over HTTPS that would trust the server): refused too.
        using (var bare = new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } }))
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => bare.GetByteArrayAsync(info.Url));
        Assert.Equal((0L, 0L), (server.Requests, server.BytesServed));

        // A node of this cluster fetches it; and it refuses a server that is not of the cluster.
        using (var member = new WeightDownloader(new WeightFetcherSettings(2, new WeightPlaneTls(Node(ca, "rollout"), caPublic))))
            Assert.Equal(sha, Sha(await member.DownloadAsync(info, TestNodes.NewRunDir(), CancellationToken.None)));
        using var impostor = Server(new WeightPlaneTls(Node(otherCa, "impostor"), X509CertificateLoader.LoadCertificate(otherCa.RawData)));
        var fake = impostor.Add(1, path);
        using (var member = new WeightDownloader(new WeightFetcherSettings(2, new WeightPlaneTls(Node(ca, "rollout"), caPublic))))
            await Assert.ThrowsAsync<WeightFetchException>(() => member.DownloadAsync(fake, TestNodes.NewRunDir(), CancellationToken.None));
    }

    /// <summary>A node certificate through PKCS#12 and back, as a node loads its .pfx.</summary>
    static X509Certificate2 Node(X509Certificate2 ca, string cn)
    {
        using var cert = TlsCertificates.CreateNode(ca, cn, TimeSpan.FromDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12, "t"), "t");
    }
}

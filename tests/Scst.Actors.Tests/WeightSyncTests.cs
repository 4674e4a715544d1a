using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Scst.Actors.Weights;
using Scst.Host.Cluster;
using Scst.Model.SafeTensors;

namespace Scst.Actors.Tests;

/// <summary>
/// The weight plane: announcements over real Akka.Remote between two ActorSystems on 127.0.0.1, bytes from the real
/// <see cref="WeightServer"/> (HTTP/1.1, sendfile) into the memory of the real <see cref="WeightDownloader"/>, faults
/// injected by the server itself.
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

    static string Sha(SegmentedBuffer payload)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (var i = 0; i < payload.SegmentCount; i++) sha.AppendData(payload.Segment(i).Span);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    static async Task<SegmentedBuffer> Fetch(WeightDownloader d, WeightsAvailable info)
    {
        var into = new SegmentedBuffer();
        await d.DownloadAsync(info, into, CancellationToken.None);
        return into;
    }

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
            var fetcher = rollout.ActorOf(WeightFetcher.Props(publisher, owner.Ref, new WeightFetcherSettings(3, WholeFileSha256: true)));

            var (path, sha) = WriteWeights(10 * 1024 * 1024 + 12345, 7);
            var announced = await learner.ActorSelection("/user/weights").Ask<WeightsAvailable>(new PublishWeights(1, path), Wait);
            Assert.Equal((sha, 3, 4 << 20), (announced.Sha256, announced.ChunkCount, announced.ChunkSize));
            Assert.StartsWith($"http://127.0.0.1:{server.Port}/weights/v1", announced.Url);
            var ready = owner.ExpectMsg<WeightsReady>(Wait);
            Assert.Equal((1L, sha, announced.SizeBytes), (ready.Version, ready.Sha256, ready.SizeBytes));
            Assert.Equal(sha, Sha(ready.Payload));
            Assert.False(Directory.Exists(Path.Combine(rolloutDir, "weights"))); // fetched into memory: nothing on disk

            // A second version while the owner still holds the first: the fetcher's one buffer is lent, so nothing is
            // received into it (and nothing delivered) until the owner hands it back.
            var (path2, sha2) = WriteWeights(300_000, 8);
            learner.ActorSelection("/user/weights").Tell(new PublishWeights(2, path2, sha2));
            owner.ExpectNoMsg(TimeSpan.FromSeconds(1));
            Assert.Equal(sha, Sha(ready.Payload));
            Assert.Equal(3L, (await fetcher.Ask<FetcherStats>(GetFetcherStats.Instance, Wait)).ChunksVerified);
            ready.Dispose();
            // The fetcher acts on the announcement alone (the writer's known hash is taken as given), into the same buffer.
            using var ready2 = owner.ExpectMsg<WeightsReady>(Wait);
            Assert.Equal((2L, sha2), (ready2.Version, Sha(ready2.Payload)));
            Assert.Same(ready.Payload, ready2.Payload);
            var stats = await fetcher.Ask<FetcherStats>(GetFetcherStats.Instance, Wait);
            Assert.Equal((4L, 0L, 0L, 2L), (stats.ChunksVerified, stats.ChunksRefused, stats.Resumes, stats.VersionsReady));
            // The buffer holds what this version needs (one 4 MiB segment), not the larger first one's three.
            Assert.Equal(4L << 20, stats.BufferBytes);
        }
        finally
        {
            TestNodes.Stop(rollout);
            TestNodes.Stop(learner);
        }
    }

    [Fact]
    public async Task A_newer_version_stops_a_transfer_in_flight_and_is_received_into_the_same_buffer()
    {
        var node = TestNodes.Start(TestNodes.NewRunDir(), "learner");
        try
        {
            var server = Server();
            var publisher = node.ActorOf(WeightPublisher.Props(server), "weights");
            var owner = new TestKit(node).CreateTestProbe();
            // Version 1's third chunk arrives damaged on every try: its transfer keeps resuming (with backoff) until superseded.
            var (path1, _) = WriteWeights(9 * 1024 * 1024, 11);
            server.Faults.DamageByte(2L * (4 << 20) + 5, times: 1000);
            var fetcher = node.ActorOf(WeightFetcher.Props(publisher, owner.Ref, new WeightFetcherSettings(50)));
            await publisher.Ask<WeightsAvailable>(new PublishWeights(1, path1), Wait);
            await owner.AwaitConditionAsync(async () => (await fetcher.Ask<FetcherStats>(GetFetcherStats.Instance, Wait)).ChunksRefused >= 2, Wait);

            var (path2, sha2) = WriteWeights(1_000_000, 12);
            await publisher.Ask<WeightsAvailable>(new PublishWeights(2, path2), Wait);
            using var ready = owner.ExpectMsg<WeightsReady>(Wait);
            Assert.Equal((2L, sha2), (ready.Version, Sha(ready.Payload)));
            owner.ExpectNoMsg(TimeSpan.FromMilliseconds(500)); // neither version 1 nor a failure of it
            var stats = await fetcher.Ask<FetcherStats>(GetFetcherStats.Instance, Wait);
            Assert.Equal(1L, stats.VersionsReady);
            Assert.Equal(4L << 20, stats.BufferBytes);
        }
        finally { TestNodes.Stop(node); }
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
        var got = await Fetch(d, info);
        Assert.Equal(sha, Sha(got));
        Assert.Equal((1L, 1L, 4L), (d.ChunksRefused, d.Resumes, d.ChunksVerified));
        Assert.Equal(2L, server.Requests);
        // The second response starts at chunk 2; the first sent at least chunks 0-2, at most the whole file.
        var resent = info.SizeBytes - 2L * info.ChunkSize;
        Assert.InRange(server.BytesServed, 3L * info.ChunkSize + resent, info.SizeBytes + resent);
    }

    [Fact]
    public async Task A_chunk_damaged_on_every_try_fails_the_fetch_after_max_attempts()
    {
        using var server = Server();
        var (path, _) = WriteWeights(9 * 1024 * 1024, 2);
        var info = server.Add(1, path);
        server.Faults.DamageByte(5, times: 100);
        using var d = new WeightDownloader(new WeightFetcherSettings(3));
        var e = await Assert.ThrowsAsync<WeightFetchException>(() => Fetch(d, info));
        Assert.Contains("chunk 0 arrived damaged", e.Message);
        Assert.Equal(3L, d.ChunksRefused);
        Assert.Equal(0L, d.ChunksVerified);
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
        var got = await Fetch(d, info);
        Assert.Equal(sha, Sha(got));
        Assert.Equal((0L, 1L), (d.ChunksRefused, d.Resumes));
        Assert.Equal(2L, server.Requests);
        // Resumed, not restarted: at most the broken chunk's bytes and one write segment are sent twice.
        Assert.InRange(server.BytesServed - info.SizeBytes, 0, info.ChunkSize + (1 << 20));
    }

    [Fact]
    public async Task The_server_answers_ranges_keeps_connections_and_refuses_what_it_does_not_serve()
    {
        using var server = Server();
        var (path, _) = WriteWeights(3_000_000, 9);
        var bytes = File.ReadAllBytes(path);
        var info = server.Add(1, path);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 });
        Assert.Equal(bytes, await http.GetByteArrayAsync(info.Url));
        using (var ranged = new HttpRequestMessage(HttpMethod.Get, info.Url) { Headers = { Range = new(1_234_567, null) } })
        using (var response = await http.SendAsync(ranged))
        {
            Assert.Equal(System.Net.HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal("bytes 1234567-2999999/3000000", response.Content.Headers.ContentRange!.ToString());
            Assert.Equal(bytes[1_234_567..], await response.Content.ReadAsByteArrayAsync());
        }
        using (var beyond = new HttpRequestMessage(HttpMethod.Get, info.Url) { Headers = { Range = new(3_000_000, null) } })
        using (var response = await http.SendAsync(beyond))
        {
            Assert.Equal(System.Net.HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
            Assert.Equal("bytes */3000000", response.Content.Headers.ContentRange!.ToString());
        }
        using (var post = await http.PostAsync(info.Url, new ByteArrayContent([1, 2, 3])))
            Assert.Equal(System.Net.HttpStatusCode.NotFound, post.StatusCode);
        using (var other = await http.GetAsync($"{server.BaseUrl}/weights/v9"))
        {
            Assert.Equal(System.Net.HttpStatusCode.NotFound, other.StatusCode);
            Assert.Equal("1", other.Headers.GetValues("X-Latest-Version").Single());
        }
        Assert.Equal(bytes, await http.GetByteArrayAsync(info.Url));
        // Two connections: the server keeps one open between responses, and closes it after a request whose body it did not read (the POST).
        Assert.Equal((6L, 2L), (server.Requests, server.Connections));
    }

    [Fact]
    public async Task A_disposed_server_frees_its_port_and_ends_a_transfer_in_flight()
    {
        var first = Server();
        var port = first.Port;
        var (path, _) = WriteWeights(30 * 1024 * 1024, 10);
        var info = first.Add(1, path);
        // A transfer that stalls mid-file (the client stops reading): the server's sendfile blocks on a full socket.
        using var http = new HttpClient();
        using var response = await http.GetAsync(info.Url, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        Assert.True(await body.ReadAsync(new byte[1000]) > 0);
        first.Dispose();
        // The learner restarting on a fixed scst.weights.port gets it at once, and the stalled transfer ends.
        using var second = WeightServer.Start(new WeightServerSettings("127.0.0.1", "127.0.0.1", port, 2));
        Assert.Equal(port, second.Port);
        var rest = new byte[1 << 20];
        long got = 1000;
        try { for (int n; (n = await body.ReadAsync(rest)) > 0;) got += n; }
        catch (Exception e) when (e is IOException or HttpRequestException) { }
        Assert.InRange(got, 1000, info.SizeBytes - 1);
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
        var e = await Assert.ThrowsAsync<WeightVersionGoneException>(() => Fetch(d, v1));
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
            await Assert.ThrowsAsync<WeightFetchException>(() => Fetch(d, info));
            Assert.Equal(0L, d.ChunksVerified);
        }
        // No client certificate at all (plain HttpClient over HTTPS that would trust the server): refused too.
        using (var bare = new HttpClient(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } }))
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => bare.GetByteArrayAsync(info.Url));
        Assert.Equal((0L, 0L), (server.Requests, server.BytesServed));

        // A node of this cluster fetches it; and it refuses a server that is not of the cluster.
        using (var member = new WeightDownloader(new WeightFetcherSettings(2, new WeightPlaneTls(Node(ca, "rollout"), caPublic))))
            Assert.Equal(sha, Sha(await Fetch(member, info)));
        using var impostor = Server(new WeightPlaneTls(Node(otherCa, "impostor"), X509CertificateLoader.LoadCertificate(otherCa.RawData)));
        var fake = impostor.Add(1, path);
        using (var member = new WeightDownloader(new WeightFetcherSettings(2, new WeightPlaneTls(Node(ca, "rollout"), caPublic))))
            await Assert.ThrowsAsync<WeightFetchException>(() => Fetch(member, fake));
    }

    /// <summary>A node certificate through PKCS#12 and back, as a node loads its .pfx.</summary>
    static X509Certificate2 Node(X509Certificate2 ca, string cn)
    {
        using var cert = TlsCertificates.CreateNode(ca, cn, TimeSpan.FromDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12, "t"), "t");
    }
}

using System.Security.Cryptography.X509Certificates;
using Scst.Host.Cluster;
using Xunit.Abstractions;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// Akka.Remote with mutual TLS (--tls-cert/--tls-ca): certificates are made here, per test, from a throw-away CA
/// (no private key is committed). A node whose certificate the cluster CA signed joins; a node with a certificate
/// from another CA, or one speaking plain TCP, never becomes a member.
/// </summary>
[Trait("Category", "Security")]
public class TlsClusterTests(ITestOutputHelper output)
{
    const string Password = "test-only-pfx-password";
    static readonly Dictionary<string, string> Env = new() { ["SCST_TLS_PASSWORD"] = Password };

    static X509Certificate2 MakeCa(string name) => TlsCertificates.CreateCa(name, TimeSpan.FromDays(30));

    static string MakeNodePfx(X509Certificate2 ca, string cn, string file)
    {
        using var cert = TlsCertificates.CreateNode(ca, cn, TimeSpan.FromDays(7));
        TlsCertificates.WritePfx(cert, file, Password);
        return file;
    }

    [Fact]
    public async Task A_node_with_the_cluster_CAs_certificate_joins_and_an_untrusted_or_plain_node_does_not()
    {
        var dir = TinyScstRun.NewDir("tls");
        using var ca = MakeCa("Scst test cluster CA");
        using var rogueCa = MakeCa("Rogue CA");
        var caPem = Path.Combine(dir, "ca.pem");
        File.WriteAllText(caPem, ca.ExportCertificatePem());
        var learnerPfx = MakeNodePfx(ca, "scst-learner", Path.Combine(dir, "learner.pfx"));
        var goodPfx = MakeNodePfx(ca, "scst-rollout-1", Path.Combine(dir, "good.pfx"));
        var roguePfx = MakeNodePfx(rogueCa, "scst-rogue", Path.Combine(dir, "rogue.pfx"));

        int lp = HostProcess.FreePort(), gp = HostProcess.FreePort(), rp = HostProcess.FreePort(), pp = HostProcess.FreePort();
        var seed = $"akka.ssl.tcp://scst@127.0.0.1:{lp}";
        string[] Node(string role, string name, int port, string? pfx, string seeds) =>
        [
            "--role", role, "node", "--run-dir", Path.Combine(dir, name), "--port", $"{port}", "--fast-failure",
            .. (pfx is null ? Array.Empty<string>() : ["--tls-cert", pfx, "--tls-ca", caPem]),
            .. (seeds.Length == 0 ? Array.Empty<string>() : ["--seed-nodes", seeds]),
        ];
        using var learner = HostProcess.StartWithEnvironment("learner", Env, Node("learner", "learner", lp, learnerPfx, ""));
        await learner.WaitForLine(l => l.Contains($"member up: {seed}"), TimeSpan.FromSeconds(60), "its own member-up over TLS");

        // The rogue node trusts the cluster CA, so any refusal comes from the learner checking the rogue's certificate.
        using var rogue = HostProcess.StartWithEnvironment("rogue", Env, Node("rollout", "rogue", rp, roguePfx, seed));
        using var plain = HostProcess.Start("plain", Node("rollout", "plain", pp, null, $"akka.tcp://scst@127.0.0.1:{lp}"));
        using var good = HostProcess.StartWithEnvironment("good", Env, Node("rollout", "good", gp, goodPfx, seed));
        var up = await learner.WaitForLine(l => l.Contains($"member up: akka.ssl.tcp://scst@127.0.0.1:{gp}"), TimeSpan.FromSeconds(60), "the trusted node up");
        output.WriteLine(up);

        // Give the others as long again as the trusted node needed, and more.
        await Task.Delay(TimeSpan.FromSeconds(15));
        foreach (var l in learner.Lines.Where(l => l.Contains("TLS") || l.Contains("member")).Take(20)) output.WriteLine(l);
        Assert.DoesNotContain(learner.Lines, l => l.Contains("member up") && l.Contains($":{rp}"));
        Assert.DoesNotContain(learner.Lines, l => l.Contains("member up") && l.Contains($":{pp}"));
        Assert.DoesNotContain(rogue.Lines, l => l.Contains("member up"));
        Assert.DoesNotContain(plain.Lines, l => l.Contains("member up"));
        // The refusal is the cluster CA check, during the handshake, before any Akka message is read.
        Assert.Contains(learner.Lines, l => l.Contains("TLS: rejected") && l.Contains("CN=scst-rogue"));
        Assert.False(learner.HasExited);
        Assert.False(good.HasExited);
    }

    [Fact]
    [Trait("Category", "Chaos")]
    public async Task Under_tls_a_remote_rollout_node_fetches_its_weights_over_mutual_tls_https()
    {
        var dir = TinyScstRun.NewDir("tls-weights");
        using var ca = MakeCa("Scst test cluster CA");
        var caPem = Path.Combine(dir, "ca.pem");
        File.WriteAllText(caPem, ca.ExportCertificatePem());
        var learnerPfx = MakeNodePfx(ca, "scst-learner", Path.Combine(dir, "learner.pfx"));
        var rolloutPfx = MakeNodePfx(ca, "scst-rollout-1", Path.Combine(dir, "rollout.pfx"));
        var config = TinyScstRun.WriteConfig(dir, maxIters: 6, checkpointEvery: 6, evalEvery: 6);
        int lp = HostProcess.FreePort(), rp = HostProcess.FreePort();
        using var rollout = HostProcess.StartWithEnvironment("rollout", Env, "--role", "rollout", "train", "--config", config, "--run-dir", Path.Combine(dir, "r1"),
            "--port", $"{rp}", "--seed-nodes", $"akka.ssl.tcp://scst@127.0.0.1:{lp}", "--tls-cert", rolloutPfx, "--tls-ca", caPem, "--fast-failure");
        using var learner = HostProcess.StartWithEnvironment("learner", Env, "--role", "learner", "train", "--config", config, "--run-dir", Path.Combine(dir, "learner"),
            "--port", $"{lp}", "--tls-cert", learnerPfx, "--tls-ca", caPem, "--fast-failure");
        await learner.ExpectExit(0, TimeSpan.FromSeconds(150), "finish the run");
        await rollout.ExpectExit(0, TimeSpan.FromSeconds(30), "exit after the run");
        // Every update's weights went to the rollout node from the learner's HTTPS weight server, none failed.
        Assert.Contains(learner.Lines, l => l.Contains("weights v6 published at https://127.0.0.1:"));
        Assert.DoesNotContain(rollout.Lines, l => l.Contains("could not be fetched") || l.Contains("resuming at chunk"));
        var byNode = TinyScstRun.Summary(Path.Combine(dir, "learner")).GetProperty("rollouts_by_node");
        Assert.True(byNode.GetProperty($"akka.ssl.tcp://scst@127.0.0.1:{rp}").GetInt64() > 0, "the rollout node served rollouts");
    }

    [Fact]
    public async Task A_wrong_pfx_password_is_a_clear_error()
    {
        var dir = TinyScstRun.NewDir("tls-password");
        using var ca = MakeCa("Scst test cluster CA");
        var pfx = MakeNodePfx(ca, "scst-learner", Path.Combine(dir, "learner.pfx"));
        using var p = HostProcess.StartWithEnvironment("learner", new Dictionary<string, string> { ["MY_PFX_PASSWORD"] = "wrong" },
            "--role", "learner", "node", "--run-dir", Path.Combine(dir, "run"), "--tls-cert", pfx, "--tls-password-env", "MY_PFX_PASSWORD");
        await p.ExpectExit(2, TimeSpan.FromSeconds(60), "refuse the certificate");
        Assert.Contains(p.Lines, l => l.Contains("learner.pfx") && l.Contains("$MY_PFX_PASSWORD"));
    }
}

using System.CommandLine;
using Scst.Host.Cluster;

namespace Scst.Host.Commands;

/// <summary>
/// <c>tls init --out DIR</c>: a private cluster CA (ca.pem, ca.pfx) and one node certificate (node.pfx) for mutual
/// TLS, the .pfx files protected with the password in $SCST_TLS_PASSWORD (or --tls-password-env). Keep ca.pfx off the nodes.
/// </summary>
public static class TlsCommand
{
    public static Command Create()
    {
        var outDir = new Option<DirectoryInfo>("--out") { Description = "Folder for ca.pem, ca.pfx and node.pfx", Required = true };
        var ifMissing = new Option<bool>("--if-missing") { Description = "Leave the folder alone when it already holds ca.pem and node.pfx (compose runs this on every start)" };
        var dns = new Option<string[]>("--dns") { Description = "Extra DNS names in the node certificate (hostname validation is off by default; for tools that check it)", AllowMultipleArgumentsPerToken = true };
        var days = new Option<int>("--days") { Description = "Validity of the CA and node certificates", DefaultValueFactory = _ => 365 };
        var init = new Command("init", "Create a cluster CA and a node certificate for --tls-cert / --tls-ca") { outDir, ifMissing, dns, days, GlobalOptions.TlsPasswordEnv };
        init.SetAction(r =>
        {
            var dir = r.GetValue(outDir)!.FullName;
            var variable = r.GetValue(GlobalOptions.TlsPasswordEnv) ?? "SCST_TLS_PASSWORD";
            var password = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(password)) { Console.Error.WriteLine($"error: tls init: set ${variable} to the password for the .pfx files"); return 2; }
            if (r.GetValue(ifMissing) && File.Exists(Path.Combine(dir, "ca.pem")) && File.Exists(Path.Combine(dir, "node.pfx")))
            {
                Console.WriteLine($"tls init: {dir} already holds ca.pem and node.pfx; left as is");
                return 0;
            }
            Directory.CreateDirectory(dir);
            var validFor = TimeSpan.FromDays(Math.Max(1, r.GetValue(days)));
            using var ca = TlsCertificates.CreateCa("Scst cluster CA", validFor);
            using var node = TlsCertificates.CreateNode(ca, "scst-node", validFor, r.GetValue(dns) ?? []);
            File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.ExportCertificatePem());
            TlsCertificates.WritePfx(ca, Path.Combine(dir, "ca.pfx"), password);
            TlsCertificates.WritePfx(node, Path.Combine(dir, "node.pfx"), password);
            Console.WriteLine($"tls init: wrote {dir}/ca.pem, ca.pfx (CA key: keep it off the nodes), node.pfx (valid until {node.NotAfter:yyyy-MM-dd})");
            return 0;
        });
        var cmd = new Command("tls", "Certificates for Akka.Remote mutual TLS");
        cmd.Subcommands.Add(init);
        return cmd;
    }
}

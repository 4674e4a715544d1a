using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Hosting;
using Akka.Remote.Transport.DotNetty;

namespace Scst.Host.Cluster;

/// <summary>
/// Mutual TLS for Akka.Remote (--tls-cert, or scst.tls in a --hocon file): this node's certificate from a .pfx whose
/// password comes from an environment variable, and a validator that accepts a peer only if its certificate chains
/// to the cluster's own CA (a custom trust root, so the CA need not be installed in the machine's trust store).
/// </summary>
public static class TlsSetup
{
    /// <summary>The remoting TLS options, or null when TLS is off or configured purely in akka.remote's own HOCON.</summary>
    public static SslOptions? Load(ScstClusterOptions o)
    {
        if (o.TlsCertificate is null) return null;
        if (o.UserHocon.GetBoolean("akka.remote.dot-netty.tcp.ssl.suppress-validation", false))
            throw new ConfigurationException("scst.tls: akka.remote.dot-netty.tcp.ssl.suppress-validation = true would accept any peer; the cluster's TLS is strict");
        var variable = o.TlsPasswordVariable;
        var password = string.IsNullOrEmpty(variable) ? null : Environment.GetEnvironmentVariable(variable);
        var cert = LoadPfx(o.TlsCertificate, password, variable);
        var ca = o.TlsCa is null ? null : LoadCa(o.TlsCa);
        return new SslOptions
        {
            X509Certificate = cert,
            SuppressValidation = false,
            // Both sides present a certificate and both check the other's: a node without one signed by the CA cannot connect.
            RequireMutualAuthentication = true,
            // Nodes are identified by their CA-signed certificate, not their hostname (addresses are often IPs or container ids).
            ValidateCertificateHostname = false,
            CustomValidator = ca is null ? null : TrustOnly(ca),
        };
    }

    /// <summary>The same certificate and CA for the weight plane's HTTPS (null when TLS is off).</summary>
    public static Scst.Actors.Weights.WeightPlaneTls? WeightPlane(ScstClusterOptions o)
    {
        if (o.TlsCertificate is null) return null;
        var variable = o.TlsPasswordVariable;
        var password = string.IsNullOrEmpty(variable) ? null : Environment.GetEnvironmentVariable(variable);
        return new Scst.Actors.Weights.WeightPlaneTls(LoadPfx(o.TlsCertificate, password, variable), o.TlsCa is null ? null : LoadCa(o.TlsCa));
    }

    static X509Certificate2 LoadPfx(string file, string? password, string variable)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"scst.tls.certificate: '{file}' does not exist", file);
        X509Certificate2 cert;
        try { cert = X509CertificateLoader.LoadPkcs12FromFile(file, password); }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"scst.tls.certificate: '{file}' is not a PKCS#12 file this password opens (password from ${variable}" +
                                        $"{(password is null ? ", which is not set" : "")}): {e.Message}");
        }
        if (!cert.HasPrivateKey) throw new ArgumentException($"scst.tls.certificate: '{file}' holds no private key; a node needs its own key to speak TLS");
        return cert;
    }

    static X509Certificate2 LoadCa(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"scst.tls.ca: '{file}' does not exist", file);
        try
        {
            var text = File.ReadAllText(file);
            return text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal)
                ? X509Certificate2.CreateFromPem(text)
                : X509CertificateLoader.LoadCertificateFromFile(file);
        }
        catch (CryptographicException e) { throw new ArgumentException($"scst.tls.ca: '{file}' is not a PEM or DER certificate: {e.Message}"); }
    }
    /// <summary>Accepts a peer certificate only if it chains to <paramref name="ca"/> (and nothing else is trusted).</summary>
    public static CertificateValidationCallback TrustOnly(X509Certificate2 ca) => (certificate, _, peer, _, log) =>
    {
        if (certificate is null)
        {
            log?.Warning("TLS: {0} presented no certificate; rejected", peer);
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        // A private cluster CA publishes no revocation list; rotate by issuing a new CA.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        var ok = chain.Build(certificate) && chain.ChainElements[^1].Certificate.Thumbprint == ca.Thumbprint;
        if (!ok)
            log?.Warning("TLS: rejected {0} from {1}: not signed by the cluster CA {2} ({3})", certificate.Subject, peer, ca.Subject,
                string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim())));
        return ok;
    };
}

using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Scst.Host.Cluster;

/// <summary>
/// A private cluster CA and node certificates (ECDSA P-256) for mutual TLS: `tls init` writes them for compose and
/// local clusters, tests make throw-away ones. Node certificates allow server and client auth, as each node is both.
/// </summary>
public static class TlsCertificates
{
    public static X509Certificate2 CreateCa(string name, TimeSpan validFor)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.Add(validFor));
    }

    /// <summary>A node certificate signed by <paramref name="ca"/> (which must hold its private key), with its key, valid within the CA's lifetime.</summary>
    public static X509Certificate2 CreateNode(X509Certificate2 ca, string cn, TimeSpan validFor, params string[] dnsNames)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        foreach (var d in dnsNames.Append("localhost").Distinct()) san.AddDnsName(d);
        req.CertificateExtensions.Add(san.Build());
        var notAfter = DateTimeOffset.UtcNow.Add(validFor) < ca.NotAfter ? DateTimeOffset.UtcNow.Add(validFor) : new DateTimeOffset(ca.NotAfter);
        using var signed = req.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), notAfter, RandomNumberGenerator.GetBytes(12));
        return signed.CopyWithPrivateKey(key);
    }

    public static void WritePfx(X509Certificate2 cert, string file, string password) => File.WriteAllBytes(file, cert.Export(X509ContentType.Pkcs12, password));
}

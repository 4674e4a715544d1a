using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Scst.Actors.Weights;

/// <summary>
/// The cluster's mutual TLS applied to the weight plane: this node's certificate (with its key) and the cluster CA.
/// Server and client each accept the other only if its certificate chains to <see cref="Ca"/> (null: the machine's
/// trust store), as Akka.Remote's TLS does; hostnames are not checked, nodes are identified by their certificate.
/// </summary>
public sealed record WeightPlaneTls(X509Certificate2 Certificate, X509Certificate2? Ca)
{
    /// <summary>Whether a peer's certificate is one this cluster trusts.</summary>
    public bool Trusts(X509Certificate2? peer, X509Chain? presented, SslPolicyErrors errors)
    {
        if (peer is null) return false;
        if (Ca is null) return (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca);
        // A private cluster CA publishes no revocation list; rotate by issuing a new CA.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
            foreach (var e in presented.ChainElements)
                if (e.Certificate.Thumbprint != peer.Thumbprint) chain.ChainPolicy.ExtraStore.Add(e.Certificate);
        return chain.Build(peer) && chain.ChainElements[^1].Certificate.Thumbprint == Ca.Thumbprint;
    }
}

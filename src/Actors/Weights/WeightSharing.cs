using Akka.Actor;
using Scst.Actors.Pipeline;
using Scst.Training;

namespace Scst.Actors.Weights;

/// <summary>
/// How the learner's weights reach its rollout replicas: replicas in the learner's process get an in-memory copy
/// (<see cref="LocalPolicyWeights"/>, no file); remote ones fetch a safetensors file over the learner node's weight plane
/// (<see cref="WeightPublisher"/>, <see cref="WeightServer"/>), written only while some are registered. Keeps the newest <c>keepVersions</c> files.
/// </summary>
/// <param name="inAmpDType">Files carry linear layers in the autocast dtype when the run computes them in one
/// narrower than fp32 (bf16 under amp), as rollouts do (scst.weights.dtype = auto); false: every tensor as held.</param>
public sealed class WeightSharing(Learner core, IActorRef publisher, string runDir, int keepVersions, bool inAmpDType = true)
{
    /// <summary>The dtype of the linear layers in published files, or null for the parameters' own.</summary>
    public TorchSharp.torch.ScalarType? LinearDType { get; } =
        inAmpDType && core.Policy.AmpDType is { } d && d != TorchSharp.torch.ScalarType.Float32 ? d : null;

    private readonly HashSet<IActorRef> _local = [];

    public IActorRef Publisher => publisher;
    /// <summary>The newest version written as a file (-1: none yet).</summary>
    public long PublishedVersion { get; private set; } = -1;

    /// <summary>A replica joined: one in this process is remembered; returns whether it is local.</summary>
    public bool Join(IActorRef replica)
    {
        if (!replica.Path.Address.HasLocalScope) return false;
        _local.Add(replica);
        return true;
    }

    public void Leave(IActorRef replica) => _local.Remove(replica);

    /// <summary>Whether any of <paramref name="rolloutWorkers"/> lives in another process (and so needs files).</summary>
    public bool AnyRemote(IEnumerable<IActorRef> rolloutWorkers) => rolloutWorkers.Any(w => !_local.Contains(w));

    /// <summary>Hands the current weights (<paramref name="version"/>) to the local replicas (or just <paramref name="only"/>), a copy each; they dispose it.</summary>
    public void ShareLocally(long version, IActorRef? only = null)
    {
        foreach (var r in only is null ? _local : [only])
            r.Tell(new LocalPolicyWeights(version, PolicyWeights.Snapshot(core.Policy.Model, core.Setup.Base)));
    }

    /// <summary>Writes the weights as <c>weights/policy-vN.safetensors</c> and announces them; older files beyond the kept versions go.</summary>
    public void Publish(long version)
    {
        PublishedVersion = version;
        var dir = Path.Combine(runDir, "weights");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, $"policy-v{version}.safetensors");
        var sha = PolicyWeights.Export(core.Policy.Model, core.Setup.Base, file, LinearDType);
        publisher.Tell(new PublishWeights(version, file, sha));
        // The weight server keeps its newest versions open, so older files can go (an open handle outlives the name).
        foreach (var f in Directory.EnumerateFiles(dir, "policy-v*.safetensors"))
            if (long.TryParse(Path.GetFileNameWithoutExtension(f)["policy-v".Length..], out var v) && v <= version - keepVersions)
                File.Delete(f);
    }
}

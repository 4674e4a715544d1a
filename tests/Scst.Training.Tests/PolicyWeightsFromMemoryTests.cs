using Scst.Model;
using Scst.Model.SafeTensors;
using static TorchSharp.torch;

namespace Scst.Training.Tests;

/// <summary>
/// A rollout node loads fetched weights from the bytes in memory (no file): it must end up with exactly the tensors
/// the same bytes give when loaded from a file, whatever the segment boundaries inside tensors and the header.
/// </summary>
public class PolicyWeightsFromMemoryTests
{
    public PolicyWeightsFromMemoryTests() => TorchRuntime.Initialize();

    static SegmentedBuffer InMemory(string file, int segmentSize)
    {
        var bytes = File.ReadAllBytes(file);
        var buffer = new SegmentedBuffer();
        buffer.Reset(bytes.Length, segmentSize);
        for (var i = 0; i < buffer.SegmentCount; i++)
            bytes.AsSpan(i * segmentSize, buffer.SegmentLength(i)).CopyTo(buffer.Segment(i).Span);
        return buffer;
    }

    [Theory]
    [InlineData(4099)] // segments end inside the header and inside tensors
    [InlineData(4 << 20)] // one segment: the whole payload
    public void A_replica_loads_identical_tensors_from_memory_as_from_the_file(int segmentSize)
    {
        using var learner = PolicyWeightsDTypeTests.Model(1);
        using var fromFile = PolicyWeightsDTypeTests.Model(2);
        using var fromMemory = PolicyWeightsDTypeTests.Model(3);
        var file = Path.Combine(Directory.CreateTempSubdirectory("scst-memload-").FullName, "policy-v1.safetensors");
        // Mixed dtypes (bf16 linear layers, fp32 the rest), as under amp.
        PolicyWeights.Export(learner, null, file, ScalarType.BFloat16);
        var payload = InMemory(file, segmentSize);
        Assert.True(segmentSize > payload.Length || payload.SegmentCount > 10);

        PolicyWeights.Load(fromFile, null, file, sha256: null);
        PolicyWeights.Load(fromMemory, null, payload, "weights v1 in memory");
        var expected = fromFile.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var changed = 0;
        using var original = PolicyWeightsDTypeTests.Model(3);
        var before = original.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in fromMemory.named_parameters())
        {
            Assert.True(PolicyWeightsDTypeTests.Same(expected[name], p), $"{name} differs between file and memory loads");
            if (!PolicyWeightsDTypeTests.Same(before[name], p)) changed++;
        }
        Assert.True(changed > 10, $"only {changed} parameters changed: the load did not apply the payload");
    }

    [Fact]
    public void A_truncated_payload_in_memory_is_refused_with_its_name()
    {
        using var learner = PolicyWeightsDTypeTests.Model(1);
        using var replica = PolicyWeightsDTypeTests.Model(2);
        var file = Path.Combine(Directory.CreateTempSubdirectory("scst-memload-").FullName, "policy-v1.safetensors");
        PolicyWeights.Export(learner, null, file);
        var bytes = File.ReadAllBytes(file);
        var cut = new SegmentedBuffer();
        cut.Reset(bytes.Length - 100, 1 << 20);
        bytes.AsSpan(0, (int)cut.Length).CopyTo(cut.Segment(0).Span);
        var e = Assert.Throws<InvalidDataException>(() => PolicyWeights.Load(replica, null, cut, "weights v7 from the learner"));
        Assert.StartsWith("weights v7 from the learner:", e.Message);
    }
}

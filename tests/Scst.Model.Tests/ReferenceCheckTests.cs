using Scst.Model.Checkpoints;

namespace Scst.Model.Tests;

/// <summary>The engine of <c>model check</c>: passes on each fixture's own reference, fails on another's.</summary>
public class ReferenceCheckTests
{
    public ReferenceCheckTests() => TorchRuntime.Initialize();

    [Theory]
    [InlineData("t5_v11_untied", 14)]
    [InlineData("t5_v11_gated", 14)]
    [InlineData("t5_relu_tied", 14)]
    [InlineData("blip2_t5_tiny", 7)]
    public void EveryOutputOfItsOwnReferenceMatches(string name, int outputs)
    {
        using var m = HfCheckpoint.Load(Fixture.Dir(name));
        var items = ReferenceCheck.Run(m, Path.Combine(Fixture.Dir(name), "reference.json"));
        Assert.Equal(outputs, items.Count);
        Assert.All(items, i => Assert.True(i.Ok, $"{i.Name}: {i.MaxAbsDiff} {i.Detail}"));
    }

    [Fact]
    public void AnotherModelsReferenceFails()
    {
        using var m = HfCheckpoint.Load(Fixture.Dir("t5_relu_tied"));
        var items = ReferenceCheck.Run(m, Path.Combine(Fixture.Dir("t5_v11_gated"), "reference.json"));
        Assert.Contains(items, i => !i.Ok && i.Name == "logits");
        Assert.Contains(items, i => !i.Ok && i.IsSequence);
    }
}

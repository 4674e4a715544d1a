using System.Reflection;

namespace Scst.Actors.Tests;

/// <summary>The layers of docs/architecture.md, checked on the built assemblies rather than trusted to review.</summary>
public class LayeringTests
{
    private static string[] References(Type anyTypeOfAssembly) =>
        [.. anyTypeOfAssembly.Assembly.GetReferencedAssemblies().Select(a => a.Name!)];

    [Fact]
    public void The_training_core_references_neither_akka_nor_the_drivers()
    {
        var refs = References(typeof(Scst.Training.ScstUpdate));
        Assert.Contains("Scst.Model", refs);
        Assert.Contains("Scst.Reward", refs);
        Assert.DoesNotContain(refs, r => r.StartsWith("Akka", StringComparison.Ordinal));
        Assert.DoesNotContain(refs, r => r is "Scst.Actors" or "Scst.Host");
    }

    [Fact]
    public void The_model_knows_no_akka_and_the_reward_neither_akka_nor_torch()
    {
        var model = References(typeof(Scst.Model.Blip2.Blip2T5));
        Assert.DoesNotContain(model, r => r.StartsWith("Akka", StringComparison.Ordinal) || r.StartsWith("Scst.", StringComparison.Ordinal));
        var reward = References(typeof(Scst.Reward.CiderDReward));
        Assert.DoesNotContain(reward, r => r.StartsWith("Akka", StringComparison.Ordinal) || r.StartsWith("TorchSharp", StringComparison.Ordinal) || r.StartsWith("Scst.", StringComparison.Ordinal));
    }
}

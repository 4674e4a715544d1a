using Scst.Host.Configuration;

namespace Scst.Host.Tests;

/// <summary><c>model.use_grad_checkpoint</c> reaches <c>ModelOptions.UseGradCheckpoint</c> (off unless set).</summary>
public class GradCheckpointConfigTests
{
    private static string Yaml(string modelExtra) => $"""
        model:
          arch: blip2_t5
        {modelExtra}
        datasets:
          shapes:
            build_info:
              images: data/shapes
        run:
          max_iters: 10
        """;

    [Fact]
    public void UseGradCheckpointIsReadAndDefaultsToOff()
    {
        Assert.False(ConfigLoader.Parse(Yaml(""), "a.yaml").Model.UseGradCheckpoint);
        Assert.True(ConfigLoader.Parse(Yaml("  use_grad_checkpoint: true"), "b.yaml").Model.UseGradCheckpoint);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Yaml("  use_grad_checkpoint: sometimes"), "c.yaml"));
        Assert.Contains(e.Errors, x => x.Key == "model.use_grad_checkpoint");
    }
}

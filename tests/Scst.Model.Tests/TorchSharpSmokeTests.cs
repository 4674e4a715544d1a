using Scst.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>Proves the packaged libtorch loads on this machine and the pieces training needs work.</summary>
public class TorchSharpSmokeTests
{
    public TorchSharpSmokeTests() => TorchRuntime.Initialize();

    [Fact]
    public void TensorOpsComputeExpectedValues()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        var b = tensor(new float[] { 5, 6, 7, 8 }).reshape(2, 2);
        var c = a.matmul(b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
        var (values, indices) = topk(tensor(new float[] { 0.1f, 0.9f, 0.5f }), 2);
        Assert.Equal(new long[] { 1, 2 }, indices.data<long>().ToArray());
        Assert.Equal(0.9f, values[0].item<float>(), 6);
    }

    [Fact]
    public void AutogradBackwardGivesAnalyticGradient()
    {
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1, -2, 3 }, requires_grad: true);
        var y = (x * x * x).sum(); // dy/dx = 3x²
        y.backward();
        Assert.Equal(new float[] { 3, 12, 27 }, x.grad!.data<float>().ToArray());
    }

    [Fact]
    public void AdamWStepReducesCrossEntropy()
    {
        using var scope = NewDisposeScope();
        manual_seed(0);
        var model = nn.Linear(8, 4);
        var opt = optim.AdamW(model.parameters(), lr: 0.05);
        var x = randn(32, 8);
        var target = randint(0, 4, new long[] { 32 });
        float Loss() => nn.functional.cross_entropy(model.forward(x), target).item<float>();
        var before = Loss();
        for (var i = 0; i < 20; i++)
        {
            opt.zero_grad();
            nn.functional.cross_entropy(model.forward(x), target).backward();
            opt.step();
        }
        Assert.True(Loss() < before * 0.8, $"loss did not fall: {before} -> {Loss()}");
    }

    [Fact]
    public void MissingLibTorchFolderIsAClearError()
    {
        var ex = Assert.ThrowsAny<Exception>(() => TorchRuntime.Initialize("/nonexistent/torch/lib"));
        Assert.Contains("/nonexistent/torch/lib", ex.Message);
    }
}

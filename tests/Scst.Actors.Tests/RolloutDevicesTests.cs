using Scst.Actors.Pipeline;

namespace Scst.Actors.Tests;

public class RolloutDevicesTests
{
    [Fact]
    public void Unset_keeps_the_actor_count_on_the_run_device()
    {
        Assert.Equal(["cpu:0", "cpu:1", "cpu:2"], RolloutDevices.Resolve(null, 3, "cpu", cudaDevices: 0));
        Assert.Equal(["cpu:0"], RolloutDevices.Resolve(null, 1, "auto", cudaDevices: 0));
        Assert.Equal(["cuda:1", "cuda:1"], RolloutDevices.Resolve(null, 2, "cuda:1", cudaDevices: 2));
        Assert.Equal(["cuda:0"], RolloutDevices.Resolve(null, 1, "auto", cudaDevices: 4));
    }

    [Fact]
    public void All_is_every_cuda_device_or_cpu_slots_without_cuda()
    {
        Assert.Equal(["cuda:0", "cuda:1", "cuda:2"], RolloutDevices.Resolve(["all"], 1, "cuda:0", cudaDevices: 3));
        Assert.Equal(["cpu:0", "cpu:1"], RolloutDevices.Resolve(["ALL"], 2, "cpu", cudaDevices: 0));
    }

    [Fact]
    public void A_list_is_one_actor_per_device()
    {
        Assert.Equal(["cuda:0", "cuda:1"], RolloutDevices.Resolve(["cuda:0", " CUDA:1 "], 1, "cuda:0", cudaDevices: 2));
        Assert.Equal(["cpu:0", "cpu:1"], RolloutDevices.Resolve(["cpu", "cpu:1"], 1, "cpu", cudaDevices: 0));
        Assert.Equal("cpu", RolloutDevices.TorchDevice("cpu:3"));
        Assert.Equal("cuda:2", RolloutDevices.TorchDevice("cuda:2"));
    }

    [Theory]
    [InlineData("cuda:1", 1, "CUDA devices 0..0")]
    [InlineData("cuda:0", 0, "no CUDA device")]
    [InlineData("gpu:0", 1, "'gpu:0' is not a device")]
    [InlineData("cpu:-1", 0, "'cpu:-1' is not a device")]
    public void Bad_entries_are_refused_naming_the_setting(string entry, int cuda, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => RolloutDevices.Resolve([entry], 1, "cpu", cuda));
        Assert.Contains("scst.rollout.devices", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_device_listed_twice_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => RolloutDevices.Resolve(["cpu:1", "cpu:1"], 1, "cpu", 0));
        Assert.Contains("cpu:1 twice", e.Message);
        Assert.Throws<ArgumentException>(() => RolloutDevices.Resolve([], 1, "cpu", 0));
    }
}

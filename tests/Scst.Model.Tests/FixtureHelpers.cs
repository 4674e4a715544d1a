using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>Reads the HF fixtures' reference.json into tensors.</summary>
internal static class Fixture
{
    public static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "data", "hf", name);

    public static JsonObject Reference(string name) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Dir(name), "reference.json")))!.AsObject();

    private static void Flatten(JsonNode node, List<long> shape, List<double> values, int depth)
    {
        if (node is JsonArray a)
        {
            if (shape.Count == depth) shape.Add(a.Count);
            foreach (var x in a) Flatten(x!, shape, values, depth + 1);
        }
        else values.Add(node.GetValue<double>());
    }

    public static Tensor Floats(JsonNode node)
    {
        var shape = new List<long>(); var values = new List<double>();
        Flatten(node, shape, values, 0);
        return tensor(values.Select(v => (float)v).ToArray()).reshape(shape.ToArray());
    }

    public static Tensor Longs(JsonNode node)
    {
        var shape = new List<long>(); var values = new List<double>();
        Flatten(node, shape, values, 0);
        return tensor(values.Select(v => (long)v).ToArray()).reshape(shape.ToArray());
    }

    public static double MaxDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }
}

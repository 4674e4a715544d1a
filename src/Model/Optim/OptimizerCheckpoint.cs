using System.Text.Json;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace Scst.Model.Optim;

public sealed record OptimizerGroupState(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("weight_decay")] double WeightDecay,
    [property: JsonPropertyName("lr_scale")] double LrScale,
    [property: JsonPropertyName("params")] IReadOnlyList<string> Parameters);

/// <summary>The non-tensor part of an optimizer checkpoint; serialises to JSON with <see cref="ToJson"/>.</summary>
public sealed record OptimizerScalars(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("lr")] double LearningRate,
    [property: JsonPropertyName("beta1")] double Beta1,
    [property: JsonPropertyName("beta2")] double Beta2,
    [property: JsonPropertyName("eps")] double Eps,
    [property: JsonPropertyName("groups")] IReadOnlyList<OptimizerGroupState> Groups,
    [property: JsonPropertyName("steps")] IReadOnlyDictionary<string, long> Steps)
{
    public string ToJson() => JsonSerializer.Serialize(this);

    public static OptimizerScalars FromJson(string json, string source = "optimizer state")
    {
        try
        {
            return JsonSerializer.Deserialize<OptimizerScalars>(json)
                   ?? throw new InvalidDataException($"{source}: empty optimizer state JSON.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not a valid optimizer state ({e.Message}).", e);
        }
    }
}

/// <summary>
/// An optimizer checkpoint: named tensors (write them with the safetensors writer) plus scalars (write them as
/// JSON, e.g. in the safetensors <c>__metadata__</c> or a side file).
/// </summary>
public sealed record OptimizerCheckpoint(IReadOnlyDictionary<string, Tensor> Tensors, OptimizerScalars Scalars);

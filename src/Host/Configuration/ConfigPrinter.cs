using System.Text;
using Scst.Training.Configuration;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Scst.Host.Configuration;

/// <summary>Writes a resolved config back: as YAML of the typed records, or key by key with where each value came from.</summary>
public static class ConfigPrinter
{
    private static readonly ISerializer Serializer = new SerializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .DisableAliases()
        .Build();

    public static string ToYaml(ScstConfig config) => Serializer.Serialize(new
    {
        config.Model,
        config.Datasets,
        config.Run,
        config.Scst,
    });

    /// <summary>
    /// Every key the loader read, in reading order, as <c>path: value  # source</c> (source: <c>file:line:column</c>,
    /// <c>preset MODEL_TYPE</c>, <c>default</c>, or what the value was derived from).
    /// </summary>
    public static string WithSources(ConfigTrace trace)
    {
        var width = trace.Keys.Select(k => k.Path.Length + 2 + k.Value.Length).DefaultIfEmpty(0).Max();
        var sb = new StringBuilder();
        foreach (var k in trace.Keys)
        {
            var line = $"{k.Path}: {k.Value}";
            sb.Append(line).Append(' ', width - line.Length + 2).Append("# ").AppendLine(k.Source);
        }
        return sb.ToString();
    }
}

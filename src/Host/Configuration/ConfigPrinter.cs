using Scst.Actors.Configuration;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Scst.Host.Configuration;

/// <summary>Writes a resolved config back as YAML with every default filled in, in the same key names.</summary>
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
}

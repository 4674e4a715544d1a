using Scst.Training.Configuration;

namespace Scst.Host.Configuration;

/// <summary>A loaded file: the training config (null for a LAVIS model-type file), what each key resolved to and from where, and its kind.</summary>
public sealed record LoadedConfig(ScstConfig? Config, ConfigTrace Trace, string Kind);

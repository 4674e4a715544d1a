namespace Scst.Host.Configuration;

/// <summary>One problem in a config file, located precisely enough to fix without searching.</summary>
public sealed record ConfigError(string File, long Line, long Column, string Key, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: '{Key}': {Message}";
}

/// <summary>A config that cannot be used; lists every problem found, not just the first.</summary>
public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception(FormatMessage(errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;

    private static string FormatMessage(IReadOnlyList<ConfigError> errors) =>
        errors.Count == 1
            ? $"invalid config: {errors[0]}"
            : $"invalid config ({errors.Count} problems):\n  " + string.Join("\n  ", errors);
}

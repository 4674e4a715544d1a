using System.Collections.Immutable;
using Scst.Actors.Messages;

namespace Scst.Actors.Persistence;

/// <summary>Compare the settings a run was journaled with (e.g. data.shard-count) against this run's settings.</summary>
public sealed record VerifyRunManifest(ImmutableSortedDictionary<string, string> Expected) : IScstMessage;

public sealed record RunManifestOk(ImmutableSortedDictionary<string, string> Journaled) : IScstMessage;

public sealed record RunManifestMismatch(string Key, string Journaled, string Configured) : IScstMessage;

/// <summary>Journal event: settings first seen (or newly added keys).</summary>
public sealed record RunManifestRecorded(ImmutableSortedDictionary<string, string> Entries) : IScstMessage;

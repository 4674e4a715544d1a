using System.Security.Cryptography;
using System.Text;
using Scst.Model.Tokenization;
using Scst.Reward;
using Scst.Training;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Actors.Pipeline;

/// <summary>
/// What must match between the learner and a worker for the worker's answers to mean what the learner thinks they
/// mean: the wire protocol, the code build, and — for a rollout worker — the model, tokenizer, training images and
/// sampling settings, for a reward worker the references and reward settings. A worker registers with its own; the
/// learner compares it field by field with the one it computes from its own setup and refuses a worker that differs,
/// naming the field (token ids decoded with another vocabulary would otherwise be silently wrong).
/// Values are short strings (hashes are SHA-256 hex prefixes) so a refusal can quote both sides.
/// </summary>
public sealed record WorkerFingerprint(IReadOnlyList<KeyValuePair<string, string>> Fields)
{
    /// <summary>Bumped whenever a message between learner and workers changes meaning.</summary>
    public const int ProtocolVersion = 3;

    public bool Equals(WorkerFingerprint? other) => other is not null && Differences(other).Count == 0;
    public override int GetHashCode() => Fields.Count;

    /// <summary>The fields (name, learner's value, worker's value) that differ; missing on one side counts as differing.</summary>
    public IReadOnlyList<(string Field, string Expected, string Actual)> Differences(WorkerFingerprint worker)
    {
        var mine = Fields.ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);
        var theirs = worker.Fields.ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);
        return [.. mine.Keys.Union(theirs.Keys).Order(StringComparer.Ordinal)
            .Select(k => (k, mine.GetValueOrDefault(k, "(none)"), theirs.GetValueOrDefault(k, "(none)")))
            .Where(d => d.Item2 != d.Item3)];
    }

    /// <summary>One line naming every differing field with both values, for the learner's log and the worker's exit message.</summary>
    public static string Describe(IReadOnlyList<(string Field, string Expected, string Actual)> differences) =>
        string.Join("; ", differences.Select(d => $"{d.Field} differs (learner: {d.Expected}, worker: {d.Actual})"));

    /// <summary>
    /// A rollout worker's fingerprint, from the setup it generates with. A rollout actor shared by runs gives the run's
    /// config as <paramref name="run"/>: the model and data fields stay its own (the base it holds), the rollout fields are the run's.
    /// </summary>
    public static WorkerFingerprint ForRollout(RunSetup setup, ScstConfig? run = null)
    {
        var m = setup.Config.Model;
        var c = run ?? setup.Config;
        var s = c.Scst;
        var r = c.Run;
        return new([
            .. Common(),
            new("model.architecture", Hash(m with { Pretrained = null, Finetuned = null, LoadFinetuned = false, Tokenizer = m.Tokenizer with { Path = null, MinFreq = 0 }, UseGradCheckpoint = false })),
            new("model.base", setup.Base?.Identity[..16] ?? "scratch"),
            new("model.layout", Layout(setup.Policy.Model)),
            new("model.frozen", setup.Base is null ? FrozenValues(setup.Policy.Model) : "on base"),
            new("tokenizer", TokenizerHash(setup.Policy.Tokenizer)),
            new("data.train", ReferencesHash(setup.Corpus.Train.References)),
            new("rollout.sampling", $"{s.Sampling.Name()} n={s.SampleN} beam={s.BeamSize} temperature={s.Temperature} top_k={s.TopK} top_p={s.TopP}"),
            new("rollout.length", $"max_len={r.MaxLen} min_len={r.MinLen} max_txt_len={m.MaxTxtLen}"),
            new("rollout.penalties", $"repetition={r.RepetitionPenalty} length={r.LengthPenalty}"),
            new("rollout.greedy", s.Baseline == BaselineKind.Greedy ? $"num_beams={r.NumBeams}" : "none"),
            new("rollout.precision", r.Amp ? r.AmpDType : "fp32"),
            new("model.prompt", m.Prompt),
        ]);
    }

    /// <summary>A reward worker's fingerprint: the references it scores against and how.</summary>
    public static WorkerFingerprint ForReward(ScstConfig config, IReadOnlyList<IReadOnlyList<string>> references)
    {
        var w = config.Scst.Reward;
        return new([
            .. Common(),
            new("reward.metric", $"{w.Metric} sigma={w.Sigma} n={w.N} eos_token={w.EosToken}"),
            new("reward.df", w.DfFile is { } f && File.Exists(f) ? "file " + FileHash(f) : $"{w.Df} of train references"),
            new("reward.baseline", config.Scst.Baseline.Name()),
            new("data.train", ReferencesHash(references)),
        ]);
    }

    static IEnumerable<KeyValuePair<string, string>> Common() =>
    [
        new("protocol", ProtocolVersion.ToString()),
        new("build", Build.Value),
    ];

    /// <summary>The code's identity: the module version ids of the assemblies whose arithmetic and messages a run depends on (deterministic builds of the same source agree).</summary>
    static readonly Lazy<string> Build = new(() => Hash(string.Join(",",
        new[] { typeof(ICaptionTokenizer), typeof(DocumentFrequency), typeof(RunSetup), typeof(WorkerFingerprint) }
            .Select(t => t.Assembly.ManifestModule.ModuleVersionId.ToString()))));

    static string Layout(nn.Module model) =>
        Hash(string.Join("\n", model.named_parameters().Select(p => $"{p.name} {string.Join('x', p.parameter.shape)} {p.parameter.dtype} {p.parameter.requires_grad}")));

    /// <summary>A scratch model's frozen parameters come from its seeded initialisation, not from the learner: their values must agree.</summary>
    static string FrozenValues(nn.Module model)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var any = false;
        foreach (var (name, p) in model.named_parameters())
        {
            if (p.requires_grad) continue;
            any = true;
            sha.AppendData(Encoding.UTF8.GetBytes(name));
            using var cpu = p.detach().cpu().contiguous();
            sha.AppendData(cpu.bytes);
        }
        return any ? Convert.ToHexStringLower(sha.GetHashAndReset())[..16] : "none";
    }

    static string TokenizerHash(ICaptionTokenizer t) => t switch
    {
        WordTokenizer w => Hash("word\n" + string.Join("\n", w.Vocabulary)),
        SentencePieceTokenizer sp => Hash($"sentencepiece {sp.NormalizerName} {sp.VocabSize}\n" + string.Join("\n", Enumerable.Range(0, sp.PieceCount).Select(sp.IdToPiece))),
        _ => Hash($"{t.GetType().Name} {t.VocabSize}"),
    };

    static string ReferencesHash(IReadOnlyList<IReadOnlyList<string>> refs) =>
        $"{refs.Count} images " + Hash(string.Join("\u0001", refs.Select(r => string.Join("\u0002", r))));

    static string FileHash(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f))[..16];
    }

    static string Hash(object value) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(value.ToString() ?? "")))[..16];
}

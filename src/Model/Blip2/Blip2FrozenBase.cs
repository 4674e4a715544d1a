using Scst.Model.T5;

namespace Scst.Model.Blip2;

/// <summary>
/// The frozen parts of a pretrained BLIP-2 (LAVIS: the ViT trunk and the whole T5), held once per device and shared by
/// every model built on them: the learner and its rollout replicas in one process hold one 7.7 GB bf16 base between
/// them, each with its own trainable Q-Former, queries, projection and <c>ln_vision</c>. The last model to let go
/// disposes it.
/// </summary>
public sealed class Blip2FrozenBase
{
    private static readonly Dictionary<string, Blip2FrozenBase> Live = new(StringComparer.Ordinal);
    private int _users;

    /// <summary>What the parts were loaded from and how they are held (folder identity, image size, dtypes, device).</summary>
    public string Key { get; }
    public (Blip2VisionEmbeddings Embeddings, Blip2Encoder Encoder)? VisionTrunk { get; }
    public T5ForConditionalGeneration? LanguageModel { get; }

    private Blip2FrozenBase(string key, (Blip2VisionEmbeddings, Blip2Encoder)? trunk, T5ForConditionalGeneration? lm)
    {
        Key = key; VisionTrunk = trunk; LanguageModel = lm;
    }

    /// <summary>The live base under <paramref name="key"/>, with one more user, or null when none is loaded.</summary>
    public static Blip2FrozenBase? Acquire(string key)
    {
        lock (Live)
        {
            if (!Live.TryGetValue(key, out var b)) return null;
            b._users++;
            return b;
        }
    }

    /// <summary>Registers a freshly loaded model's frozen parts under <paramref name="key"/> (its first user).</summary>
    public static Blip2FrozenBase Publish(string key, Blip2T5 owner, bool vision, bool text)
    {
        lock (Live)
        {
            var b = new Blip2FrozenBase(key, vision ? owner.VisionModel.Trunk : null, text ? owner.LanguageModel : null) { _users = 1 };
            Live[key] = b;
            return b;
        }
    }

    /// <summary>Number of models using a live base (tests, logs).</summary>
    public static int Users(string key)
    {
        lock (Live) return Live.TryGetValue(key, out var b) ? b._users : 0;
    }

    internal void Release()
    {
        lock (Live)
        {
            if (--_users > 0) return;
            Live.Remove(Key);
        }
        VisionTrunk?.Embeddings.Dispose();
        VisionTrunk?.Encoder.Dispose();
        LanguageModel?.Dispose();
    }
}

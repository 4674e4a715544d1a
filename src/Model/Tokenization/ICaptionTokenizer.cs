using static TorchSharp.torch;

namespace Scst.Model.Tokenization;

/// <summary>
/// What the captioner needs from a tokenizer. Ids follow T5: pad = 0 (also the decoder start token), eos = 1,
/// unk = 2, so the model's conventions hold whichever tokenizer is used.
/// </summary>
public interface ICaptionTokenizer
{
    int VocabSize { get; }
    int PadId { get; }
    int EosId { get; }
    int UnkId { get; }

    /// <summary>T5 starts decoding from the pad token.</summary>
    int DecoderStartId => PadId;

    /// <summary>Token ids of <paramref name="text"/>, ending in EOS when <paramref name="addEos"/>.</summary>
    int[] Encode(string text, bool addEos = true);

    /// <summary>Text of <paramref name="ids"/>; special tokens (pad, eos, unk, ...) are left out when asked, as HF's <c>skip_special_tokens</c>.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true);
}

public static class CaptionTokenizerExtensions
{
    /// <summary>
    /// Encodes a batch into right-padded <c>input_ids</c> and <c>attention_mask</c> (int64, [B, L]). Captions longer
    /// than <paramref name="maxLength"/> are cut so that EOS stays last, as HF's <c>truncation=True</c> does for T5.
    /// </summary>
    public static (Tensor InputIds, Tensor AttentionMask) EncodeBatch(this ICaptionTokenizer tokenizer, IReadOnlyList<string> texts, int maxLength)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "max length must leave room for a token and EOS.");
        var encoded = texts.Select(t =>
        {
            var ids = tokenizer.Encode(t);
            if (ids.Length <= maxLength) return ids;
            var cut = ids[..maxLength];
            cut[^1] = tokenizer.EosId;
            return cut;
        }).ToList();
        var len = Math.Max(1, encoded.Count == 0 ? 1 : encoded.Max(e => e.Length));
        var ids = new long[texts.Count * len];
        var mask = new long[texts.Count * len];
        for (var b = 0; b < encoded.Count; b++)
            for (var i = 0; i < len; i++)
            {
                var inside = i < encoded[b].Length;
                ids[b * len + i] = inside ? encoded[b][i] : tokenizer.PadId;
                mask[b * len + i] = inside ? 1 : 0;
            }
        return (TorchSharp.torch.tensor(ids, [texts.Count, len]), TorchSharp.torch.tensor(mask, [texts.Count, len]));
    }
}

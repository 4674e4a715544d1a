namespace Scst.Reward;

/// <summary>
/// The training reward: CIDEr-D of B images × K candidates against each image's references, with
/// document frequencies precomputed from the training references. Immutable after construction and
/// safe to call from many threads at once; each thread reuses its own scratch buffers, so the int
/// path allocates nothing per call once the buffers have grown.
/// </summary>
public sealed class CiderDReward
{
    private readonly NGramCountMap[] _shards;
    private readonly double[] _logDf;
    private readonly double _refLen;

    public CiderDReward(DocumentFrequency df)
    {
        DocumentFrequency = df;
        _shards = [df.Map];
        _logDf = CiderD.LogTable(df.NumImages);
        _refLen = Math.Log(df.NumImages);
    }

    public DocumentFrequency DocumentFrequency { get; }
    public bool CountsEos => DocumentFrequency.CountsEos;

    /// <summary>
    /// Scores image-major candidates (image b's K candidates are <c>candidates[b*K .. b*K+K)</c>) into
    /// <paramref name="rewards"/>. Token ids are those of <see cref="DocumentFrequency.Vocabulary"/>;
    /// EOS must not be in the arrays: it is appended when the df counted it.
    /// </summary>
    public void Score(IReadOnlyList<IReadOnlyList<int[]>> references, IReadOnlyList<int[]> candidates, Span<double> rewards)
    {
        int k = CandidatesPerImage(references.Count, candidates.Count, rewards.Length);
        var cooker = ImageCooker.ForThread();
        var scratch = CiderScratch.ForThread();
        int eos = DocumentFrequency.EosId;
        for (int b = 0; b < references.Count; b++)
        {
            var refs = references[b];
            if (refs.Count == 0) throw new ArgumentException($"image #{b} has no references", nameof(references));
            cooker.Reset();
            for (int i = 0; i < k; i++) cooker.AddSentence(candidates[b * k + i], eos);
            cooker.AddSentences(refs, eos);
            scratch.ComputeIdf(cooker, _shards, _logDf, _refLen);
            scratch.ScoreCandidates(cooker.View, 0, k, k, refs.Count, rewards.Slice(b * k, k));
        }
    }

    public double[] Score(IReadOnlyList<IReadOnlyList<int[]>> references, IReadOnlyList<int[]> candidates)
    {
        var rewards = new double[candidates.Count];
        Score(references, candidates, rewards);
        return rewards;
    }

    /// <summary>
    /// The same for tokenized strings (words separated by whitespace). Words outside the df vocabulary
    /// get call-local ids, so they still match between a candidate and its references (df 0).
    /// </summary>
    public void Score(IReadOnlyList<IReadOnlyList<string>> references, IReadOnlyList<string> candidates, Span<double> rewards)
    {
        int k = CandidatesPerImage(references.Count, candidates.Count, rewards.Length);
        var cooker = ImageCooker.ForThread();
        var scratch = CiderScratch.ForThread();
        var words = WordMapper.ForThread(DocumentFrequency.Vocabulary);
        int eos = DocumentFrequency.EosId;
        for (int b = 0; b < references.Count; b++)
        {
            var refs = references[b];
            if (refs.Count == 0) throw new ArgumentException($"image #{b} has no references", nameof(references));
            cooker.Reset();
            for (int i = 0; i < k; i++) cooker.AddSentence(words.Encode(candidates[b * k + i]), eos);
            for (int j = 0; j < refs.Count; j++) cooker.AddSentence(words.Encode(refs[j]), eos);
            scratch.ComputeIdf(cooker, _shards, _logDf, _refLen);
            scratch.ScoreCandidates(cooker.View, 0, k, k, refs.Count, rewards.Slice(b * k, k));
        }
        words.Clear();
    }

    public double[] Score(IReadOnlyList<IReadOnlyList<string>> references, IReadOnlyList<string> candidates)
    {
        var rewards = new double[candidates.Count];
        Score(references, candidates, rewards);
        return rewards;
    }

    private static int CandidatesPerImage(int images, int candidates, int rewards)
    {
        if (images == 0) throw new ArgumentException("no images to score");
        if (candidates % images != 0)
            throw new ArgumentException($"{candidates} candidates for {images} images: expected K candidates per image (a multiple of {images})");
        if (rewards != candidates) throw new ArgumentException($"rewards has length {rewards}, expected {candidates} (one per candidate)");
        return candidates / images;
    }

    /// <summary>Per-thread string → id mapping over a frozen vocabulary, with call-local ids for unknown words.</summary>
    private sealed class WordMapper
    {
        private Vocabulary _vocab = null!;
        private readonly Dictionary<string, int> _extra = new(StringComparer.Ordinal);
        private Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _extraSpan;
        private int[] _buf = new int[64];

        private WordMapper() => _extraSpan = _extra.GetAlternateLookup<ReadOnlySpan<char>>();

        public ReadOnlySpan<int> Encode(string text)
        {
            if (_buf.Length < text.Length / 2 + 1) _buf = new int[text.Length / 2 + 1];
            int n = 0, i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && Vocabulary.IsPythonSpace(text[i])) i++;
                int start = i;
                while (i < text.Length && !Vocabulary.IsPythonSpace(text[i])) i++;
                if (i > start) _buf[n++] = Map(text.AsSpan(start, i - start));
            }
            return new ReadOnlySpan<int>(_buf, 0, n);
        }

        private int Map(ReadOnlySpan<char> w)
        {
            if (_vocab.TryGetId(w, out int id)) return id;
            if (_extraSpan.TryGetValue(w, out id)) return id;
            id = _vocab.Count + _extra.Count;
            _extra.Add(w.ToString(), id);
            return id;
        }

        public void Clear() => _extra.Clear();

        [ThreadStatic] private static WordMapper? t_instance;
        public static WordMapper ForThread(Vocabulary vocab)
        {
            var m = t_instance ??= new WordMapper();
            m._vocab = vocab;
            m._extra.Clear();
            return m;
        }
    }
}

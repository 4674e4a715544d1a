using BenchmarkDotNet.Attributes;
using Scst.Reward;

namespace Scst.Benchmarks;

/// <summary>
/// CIDEr-D corpus scoring (tokenized strings in, scores out, as pycocoevalcap's Cider().compute_score)
/// on synthetic corpora the sizes of Flickr8k (8,092 images, 4 refs + 1 candidate) and COCO val
/// (40,504 images, 5 refs + 1 candidate), and the training
/// reward call (16 images × 5 candidates, precomputed df, int token ids).
/// </summary>
[MemoryDiagnoser]
public class CiderBenchmarks
{
    private List<CaptionSample> _corpus = null!;
    private CiderDReward _reward = null!;
    private IReadOnlyList<int[]>[] _refs = null!;
    private int[][] _cands = null!;
    private readonly double[] _rewards = new double[16 * 5];

    [Params(8092, 40504)]
    public int Images { get; set; }

    private int RefsPerImage => Images > 10_000 ? 5 : 4;

    [GlobalSetup]
    public void Setup()
    {
        _corpus = SyntheticCorpus.Generate(Images, RefsPerImage);
        var df = DocumentFrequency.Build(_corpus.Select(s => s.References).ToList(), countEos: true);
        _reward = new CiderDReward(df);
        int[] Enc(string s) => s.Split(' ').Select(w => df.Vocabulary.TryGetId(w, out var id) ? id : 0).ToArray();
        _refs = _corpus.Take(16).Select(s => (IReadOnlyList<int[]>)s.References.Select(Enc).ToArray()).ToArray();
        _cands = _corpus.Take(16).SelectMany((s, i) => Enumerable.Range(0, 5).Select(k => Enc(k == 0 ? s.Candidate : _corpus[(i + 7 * k) % Images].Candidate))).ToArray();
    }

    private double ScoreCorpus(int dop)
    {
        var vocab = new Vocabulary();
        var cands = new int[_corpus.Count][];
        var refs = new int[_corpus.Count][][];
        for (int i = 0; i < _corpus.Count; i++)
        {
            cands[i] = vocab.EncodeWhitespace(_corpus[i].Candidate);
            refs[i] = _corpus[i].References.Select(vocab.EncodeWhitespace).ToArray();
        }
        return CiderD.Score(cands, refs, -1, dop).Corpus;
    }

    [Benchmark(Description = "CIDEr-D corpus, 1 thread")]
    public double CorpusSingleThread() => ScoreCorpus(1);

    [Benchmark(Description = "CIDEr-D corpus, all cores")]
    public double CorpusParallel() => ScoreCorpus(Environment.ProcessorCount);

    [Benchmark(Description = "training reward 16x5, precomputed df")]
    public double TrainingCall()
    {
        _reward.Score(_refs, _cands, _rewards);
        return _rewards[0];
    }
}

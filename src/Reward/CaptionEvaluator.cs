namespace Scst.Reward;

/// <summary>One image: its references and the candidate caption to score.</summary>
public sealed record CaptionSample(string ImageId, IReadOnlyList<string> References, string Candidate);

public sealed record EvaluationOptions
{
    /// <summary>Run the PTB tokenizer first (coco-caption's COCOEvalCap does); false when the text is already tokenized.</summary>
    public bool Tokenize { get; init; } = true;
    /// <summary>Append an EOS token to candidate and references before CIDEr-D's n-gram counting (not BLEU/ROUGE).</summary>
    public bool CountEos { get; init; }
    /// <summary>Fixed document frequencies for CIDEr-D; null = from the references being scored (pycocoevalcap).</summary>
    public DocumentFrequency? DocumentFrequency { get; init; }
    public int DegreeOfParallelism { get; init; } = 1;
}

/// <summary>Corpus metrics (coco-caption names) and per-image metrics in input order.</summary>
public sealed record CaptionEvaluation(
    IReadOnlyList<string> ImageIds,
    IReadOnlyDictionary<string, double> Corpus,
    IReadOnlyDictionary<string, double[]> PerImage,
    bool CountsEos,
    bool CorpusDocumentFrequency)
{
    public static readonly string[] MetricNames = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"];
}

/// <summary>The equivalent of coco-caption's COCOEvalCap (BLEU-1..4, ROUGE-L, CIDEr-D) for a list of images.</summary>
public static class CaptionEvaluator
{
    public static CaptionEvaluation Evaluate(IReadOnlyList<CaptionSample> samples, EvaluationOptions? options = null)
    {
        options ??= new EvaluationOptions();
        int n = samples.Count;
        if (n == 0) throw new ArgumentException("no images to evaluate", nameof(samples));
        for (int i = 0; i < n; i++)
            if (samples[i].References.Count == 0) throw new ArgumentException($"image '{samples[i].ImageId}' has no references", nameof(samples));
        var pt = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, options.DegreeOfParallelism) };

        string[] cands = new string[n];
        string[][] refs = new string[n][];
        if (options.Tokenize)
        {
            Parallel.For(0, n, pt, i =>
            {
                cands[i] = PtbTokenizer.Tokenize(samples[i].Candidate);
                refs[i] = samples[i].References.Select(PtbTokenizer.Tokenize).ToArray();
            });
        }
        else
        {
            for (int i = 0; i < n; i++) { cands[i] = samples[i].Candidate; refs[i] = samples[i].References.ToArray(); }
        }

        var df = options.DocumentFrequency;
        // With a fixed df, ids must be the df's; new words extend a copy of its vocabulary (df 0 for them).
        var vocab = df is null ? new Vocabulary() : new Vocabulary(df.Vocabulary.Words);
        int eos = df is not null ? df.EosId : options.CountEos ? vocab.GetOrAdd(DocumentFrequency.DefaultEosToken) : -1;
        if (df is not null && df.CountsEos != options.CountEos)
            throw new ArgumentException($"CountEos = {options.CountEos} but the document-frequency table was built with CountEos = {df.CountsEos}; they must agree");

        var candIds = new int[n][];
        var refIds = new int[n][][];
        var candRouge = new int[n][];
        var refRouge = new int[n][][];
        for (int i = 0; i < n; i++)
        {
            candIds[i] = vocab.EncodeWhitespace(cands[i]);
            refIds[i] = Array.ConvertAll(refs[i], vocab.EncodeWhitespace);
            candRouge[i] = vocab.EncodeSingleSpace(cands[i]);
            refRouge[i] = Array.ConvertAll(refs[i], vocab.EncodeSingleSpace);
        }

        var cider = df is null ? CiderD.Score(candIds, refIds, eos, options.DegreeOfParallelism)
                               : CiderD.Score(candIds, refIds, df, options.DegreeOfParallelism);
        var bleu = Bleu.Score(candIds, refIds, options.DegreeOfParallelism);
        var rouge = RougeL.Score(candRouge, refRouge, options.DegreeOfParallelism);

        var corpus = new Dictionary<string, double>
        {
            ["Bleu_1"] = bleu.Corpus[0], ["Bleu_2"] = bleu.Corpus[1], ["Bleu_3"] = bleu.Corpus[2], ["Bleu_4"] = bleu.Corpus[3],
            ["ROUGE_L"] = rouge.Corpus, ["CIDEr"] = cider.Corpus,
        };
        var perImage = new Dictionary<string, double[]>
        {
            ["Bleu_1"] = bleu.PerImage[0], ["Bleu_2"] = bleu.PerImage[1], ["Bleu_3"] = bleu.PerImage[2], ["Bleu_4"] = bleu.PerImage[3],
            ["ROUGE_L"] = rouge.PerImage, ["CIDEr"] = cider.PerImage,
        };
        return new CaptionEvaluation(samples.Select(s => s.ImageId).ToArray(), corpus, perImage, eos >= 0, df is null);
    }
}

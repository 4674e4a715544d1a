using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Scst.Reward.Tests;

public class PropertyTests
{
    private static readonly string[] Words =
        ["a", "man", "woman", "dog", "riding", "on", "the", "wave", "red", "bus", "street", "with", "of", "in", "two", "people", "is", "sitting", "table", "food"];

    private static Gen<string> Sentence(int min, int max) =>
        from n in Gen.Choose(min, max)
        from ws in Gen.Elements(Words).ArrayOf(n)
        select string.Join(' ', ws);

    private static Gen<CaptionSample[]> Corpus =>
        from n in Gen.Choose(2, 12)
        from imgs in (from refs in Sentence(1, 12).ArrayOf(4) from cand in Sentence(0, 12) select (refs, cand)).ArrayOf(n)
        select imgs.Select((x, i) => new CaptionSample(i.ToString(), x.refs, x.cand)).ToArray();

    [Property(MaxTest = 60)]
    public Property ScoresAreInvariantToImageOrder() =>
        Prop.ForAll(Corpus.ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (corpus, seed) =>
        {
            var rng = new Random(seed);
            var shuffled = corpus.Select(s => (s, k: rng.Next())).OrderBy(t => t.k).Select(t => t.s).ToArray();
            var opts = new EvaluationOptions { Tokenize = false };
            var a = CaptionEvaluator.Evaluate(corpus, opts);
            var b = CaptionEvaluator.Evaluate(shuffled, opts);
            foreach (var m in CaptionEvaluation.MetricNames)
            {
                if (Math.Abs(a.Corpus[m] - b.Corpus[m]) > 1e-12) return false;
                for (int i = 0; i < shuffled.Length; i++)
                {
                    int j = Array.IndexOf(corpus, shuffled[i]);
                    // Per-image scores are computed identically whatever the order (same df, same sums).
                    if (a.PerImage[m][j] != b.PerImage[m][i]) return false;
                }
            }
            return true;
        });

    [Property(MaxTest = 60)]
    public Property CandidateEqualToAllReferencesIsMaximalAmongPerturbations() =>
        Prop.ForAll(Sentence(3, 12).ToArbitrary(), Corpus.ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (sentence, others, seed) =>
        {
            var rng = new Random(seed);
            var words = sentence.Split(' ');
            var perturbed = rng.Next(3) switch
            {
                0 => words.Where((_, i) => i != rng.Next(words.Length)).ToArray(),                     // drop a word
                1 => words.Select((w, i) => i == rng.Next(words.Length) ? "zebra" : w).ToArray(),      // replace one
                _ => words.Append(Words[rng.Next(Words.Length)]).ToArray(),                             // insert
            };
            CaptionSample Target(string cand) => new("target", [sentence, sentence, sentence], cand);
            double Cider(string cand)
            {
                var corpus = others.Append(Target(cand)).ToArray();
                return CaptionEvaluator.Evaluate(corpus, new EvaluationOptions { Tokenize = false }).PerImage["CIDEr"][^1];
            }
            return Cider(sentence) >= Cider(string.Join(' ', perturbed));
        });

    private static Gen<string> RawCaption =>
        from n in Gen.Choose(0, 10)
        from parts in Gen.Elements("A", "man's", "don't", "(dog)", "\"hi\"", "U.S.", "ok.", "well,", "x-ray", "3,000", "$5", "--", "...", "Mr.", "it's", "dogs'", "'90s", "can't", "#1", "end.")
            .ArrayOf(n)
        select string.Join(' ', parts);

    [Property(MaxTest = 200)]
    public Property TokenizerIsIdempotentOnItsOutput() =>
        Prop.ForAll(RawCaption.ToArbitrary(), raw =>
        {
            var once = PtbTokenizer.Tokenize(raw);
            return (PtbTokenizer.Tokenize(once) == once).Label($"'{raw}' -> '{once}' -> '{PtbTokenizer.Tokenize(once)}'");
        });
}

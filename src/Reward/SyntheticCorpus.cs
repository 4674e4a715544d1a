namespace Scst.Reward;

/// <summary>
/// A deterministic COCO-like caption corpus for benchmarks: per image R references and one candidate,
/// 8–16 words from templates over Zipf-distributed nouns, adjectives and verbs (about 6k words), with
/// each image's captions sharing its two topic nouns, so n-gram statistics resemble real captions.
/// </summary>
public static class SyntheticCorpus
{
    private static readonly string[] Determiners = ["a", "the", "two", "a", "an", "some", "three", "a"];
    private static readonly string[] Prepositions = ["on", "in", "with", "next to", "near", "at", "under", "by", "on top of", "in front of"];

    public static List<CaptionSample> Generate(int images, int refsPerImage, int seed = 1234)
    {
        var rng = new Random(seed);
        var nouns = Words("n", 3000); var adjs = Words("j", 800); var verbs = Words("v", 1200); var advs = Words("r", 400);
        var samples = new List<CaptionSample>(images);
        for (int i = 0; i < images; i++)
        {
            string topic = nouns[Zipf(rng, nouns.Length)], other = nouns[Zipf(rng, nouns.Length)];
            string Caption()
            {
                var w = new List<string>(16);
                string Noun() => rng.NextDouble() < 0.6 ? topic : rng.NextDouble() < 0.6 ? other : nouns[Zipf(rng, nouns.Length)];
                void NounPhrase()
                {
                    w.Add(Determiners[rng.Next(Determiners.Length)]);
                    if (rng.NextDouble() < 0.5) w.Add(adjs[Zipf(rng, adjs.Length)]);
                    w.Add(Noun());
                }
                NounPhrase();
                if (rng.NextDouble() < 0.5) w.Add("is");
                w.Add(verbs[Zipf(rng, verbs.Length)]);
                if (rng.NextDouble() < 0.2) w.Add(advs[Zipf(rng, advs.Length)]);
                w.AddRange(Prepositions[rng.Next(Prepositions.Length)].Split(' '));
                NounPhrase();
                if (rng.NextDouble() < 0.5) { w.AddRange(Prepositions[rng.Next(Prepositions.Length)].Split(' ')); NounPhrase(); }
                return string.Join(' ', w);
            }
            var refs = new string[refsPerImage];
            for (int r = 0; r < refsPerImage; r++) refs[r] = Caption();
            samples.Add(new CaptionSample(i.ToString(), refs, Caption()));
        }
        return samples;
    }

    private static string[] Words(string tag, int count)
    {
        var w = new string[count];
        for (int i = 0; i < count; i++) w[i] = $"{tag}{i}";
        return w;
    }

    /// <summary>Index in [0, n) with P(k) ∝ 1/(k+1) (inverse-CDF on the harmonic approximation).</summary>
    private static int Zipf(Random rng, int n)
    {
        double u = rng.NextDouble() * Math.Log(n + 1.0);
        return Math.Min(n - 1, (int)Math.Exp(u) - 1);
    }
}

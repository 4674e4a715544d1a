namespace Scst.Model.Data.Shapes;

/// <summary>
/// Writes reference captions for a shapes scene the way different people would: each caption independently
/// picks a sentence frame, synonyms, the order in which shapes are mentioned, and whether to mention each
/// optional detail (size, position, spatial relation; each with probability ≈ 0.3–0.45). Kind and colour are
/// always mentioned. Because no single caption is the consensus of the five, a model trained with cross-entropy
/// produces the most likely words at each step, while a model optimised for CIDEr (SCST) learns which details
/// pay off across all references — the gap the demo is built to show.
/// </summary>
public static class ShapesCaptioner
{
    public const int MaxWords = 16;

    private static readonly (string Word, double Weight)[] CircleWords = [("circle", 0.6), ("disk", 0.2), ("ball", 0.2)];
    private static readonly (string Word, double Weight)[] SquareWords = [("square", 0.6), ("box", 0.2), ("block", 0.2)];
    private static readonly (string Word, double Weight)[] TriangleWords = [("triangle", 1.0)];
    private static readonly (string Word, double Weight)[] SmallWords = [("small", 0.5), ("little", 0.3), ("tiny", 0.2)];
    private static readonly (string Word, double Weight)[] LargeWords = [("large", 0.4), ("big", 0.45), ("huge", 0.15)];
    private static readonly (string Word, double Weight)[] ThingWords = [("shapes", 0.6), ("objects", 0.4)];

    // "{0}" is the noun phrase (or list of them).
    private static readonly (string Frame, double Weight)[] Frames =
    [
        ("{0}", 0.3),
        ("a picture of {0}", 0.15),
        ("an image of {0}", 0.1),
        ("there is {0}", 0.15),
        ("{0} on a black background", 0.15),
        ("a photo of {0}", 0.1),
        ("{0} on a dark background", 0.05),
    ];

    /// <summary>Five (or <paramref name="count"/>) captions, each of at most <see cref="MaxWords"/> words.</summary>
    public static IReadOnlyList<string> Describe(ShapesScene scene, Random rng, int count = 5)
    {
        var captions = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            string caption;
            var tries = 0;
            do caption = DescribeOnce(scene, rng, allowDetails: tries++ < 20);
            while (WordCount(caption) > MaxWords);
            captions.Add(caption);
        }
        return captions;
    }

    private static string DescribeOnce(ShapesScene scene, Random rng, bool allowDetails)
    {
        var objs = scene.Objects.ToArray();
        rng.Shuffle(objs);
        var n = objs.Length;
        // Fewer details per shape when there are more shapes, as people do (and to keep captions short).
        var (pSize, pPos) = n switch { 1 => (0.4, 0.4), 2 => (0.35, 0.3), _ => (0.3, 0.2) };
        if (!allowDetails) (pSize, pPos) = (0, 0);
        string body;
        if (n == 1)
            body = NounPhrase(objs[0], rng, pSize, pPos);
        else if (n == 2 && allowDetails && rng.NextDouble() < 0.4)
        {
            // A spatial relation replaces the positions: "a red circle to the left of a blue box".
            body = $"{NounPhrase(objs[0], rng, pSize, 0)} {Relation(objs[0], objs[1], rng)} {NounPhrase(objs[1], rng, pSize, 0)}";
        }
        else if (rng.NextDouble() < 0.12)
        {
            // Only the count: some people do not itemise.
            body = $"{(n == 2 ? "two" : "three")} {Pick(ThingWords, rng)}";
        }
        else
        {
            var phrases = objs.Select(o => NounPhrase(o, rng, pSize, pPos)).ToList();
            body = n == 2
                ? $"{phrases[0]} and {phrases[1]}"
                : $"{phrases[0]}, {phrases[1]} and {phrases[2]}";
        }
        var frame = Pick(Frames, rng);
        // "there is two shapes" is wrong; people say "there are".
        if (frame == "there is {0}" && (body.StartsWith("two ", StringComparison.Ordinal) || body.StartsWith("three ", StringComparison.Ordinal)))
            frame = "there are {0}";
        return string.Format(frame, body);
    }

    private static string NounPhrase(ShapeObject o, Random rng, double pSize, double pPos)
    {
        var words = new List<string>();
        if (rng.NextDouble() < pSize) words.Add(Pick(o.Size == ShapeSize.Small ? SmallWords : LargeWords, rng));
        words.Add(o.Color.Name);
        words.Add(Pick(o.Kind switch
        {
            ShapeKind.Circle => CircleWords,
            ShapeKind.Square => SquareWords,
            _ => TriangleWords,
        }, rng));
        var np = "a " + string.Join(' ', words);
        if (rng.NextDouble() < pPos) np += " " + Position(o.Row, o.Col, rng);
        return np;
    }

    private static string Position(int row, int col, Random rng)
    {
        var h = col == 0 ? "left" : col == 2 ? "right" : null;
        if (row == 1)
            return h is null
                ? (rng.NextDouble() < 0.6 ? "in the center" : "in the middle")
                : rng.Next(3) switch { 0 => $"on the {h}", 1 => $"at the {h}", _ => $"on the {h} side" };
        if (h is null)
        {
            // "upper"/"lower" only read well before another word ("the upper left"); alone it is top/bottom.
            var edge = row == 0 ? "top" : "bottom";
            return rng.Next(3) switch { 0 => $"at the {edge}", 1 => $"near the {edge}", _ => $"in the {edge} middle" };
        }
        var v = row == 0 ? (rng.NextDouble() < 0.7 ? "top" : "upper") : (rng.NextDouble() < 0.7 ? "bottom" : "lower");
        return rng.Next(3) switch { 0 => $"in the {v} {h}", 1 => $"at the {v} {h}", _ => $"in the {v} {h} corner" };
    }

    /// <summary>Where <paramref name="a"/> is relative to <paramref name="b"/>; one of the true relations at random.</summary>
    private static string Relation(ShapeObject a, ShapeObject b, Random rng)
    {
        var options = new List<string>();
        if (a.Col < b.Col) options.Add("to the left of");
        if (a.Col > b.Col) options.Add("to the right of");
        if (a.Row < b.Row) options.Add("above");
        if (a.Row > b.Row) options.Add("below");
        return options[rng.Next(options.Count)];
    }

    private static string Pick((string Word, double Weight)[] choices, Random rng)
    {
        var u = rng.NextDouble() * choices.Sum(c => c.Weight);
        foreach (var (word, weight) in choices)
        {
            u -= weight;
            if (u < 0) return word;
        }
        return choices[^1].Word;
    }

    private static int WordCount(string caption) =>
        caption.Split(' ', StringSplitOptions.RemoveEmptyEntries).Count(w => w != ",");
}

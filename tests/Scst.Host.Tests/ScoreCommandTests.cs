using System.CommandLine;
using System.Text.Json;
using Scst.Host.Commands;

namespace Scst.Host.Tests;

public sealed class ScoreCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("score-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    private const string Annotations = """
        {"images": [{"id": 1}, {"id": 2}, {"id": 3}],
         "annotations": [
           {"image_id": 1, "id": 10, "caption": "A man riding a wave on top of a surfboard."},
           {"image_id": 1, "id": 11, "caption": "A surfer rides a large wave in the ocean."},
           {"image_id": 2, "id": 12, "caption": "A black cat sleeping on a white couch."},
           {"image_id": 2, "id": 13, "caption": "The cat's curled up on a sofa."},
           {"image_id": 3, "id": 14, "caption": "A red bus driving down a street."}]}
        """;

    private (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(ScoreCommand.Create());
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = root.Parse(["score", .. args]).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void GoodFilesGiveMetricsJsonForTheResultImagesOnly()
    {
        var ann = Write("ann.json", Annotations);
        var res = Write("res.json", """[{"image_id": 1, "caption": "A man riding a wave on a surfboard."}, {"image_id": 2, "caption": "a cat on a couch"}]""");
        var metrics = Path.Combine(_dir, "metrics.json");
        var perImage = Path.Combine(_dir, "per_image.json");
        var (code, stdout, stderr) = Invoke("--annotations", ann, "--results", res, "--out", metrics, "--per-image", perImage);

        Assert.True(code == 0, stderr);
        Assert.Contains("CIDEr", stdout);
        Assert.Contains("EOS counted: no", stdout);
        var corpus = JsonSerializer.Deserialize<Dictionary<string, double>>(File.ReadAllText(metrics))!;
        Assert.Equal(["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"], corpus.Keys);
        Assert.InRange(corpus["Bleu_1"], 0.5, 1.0);
        var per = JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, double>>>(File.ReadAllText(perImage))!;
        Assert.Equal(["1", "2"], per.Keys);   // image 3 has no result, so it is not evaluated
        Assert.Equal(corpus["ROUGE_L"], (per["1"]["ROUGE_L"] + per["2"]["ROUGE_L"]) / 2, 12);
        // Two images: an n-gram in both reference sets gets idf 0; the score is the mean of the per-image ones.
        Assert.Equal(corpus["CIDEr"], (per["1"]["CIDEr"] + per["2"]["CIDEr"]) / 2, 12);
    }

    [Fact]
    public void PretokenizedSkipsThePtbTokenizer()
    {
        var ann = Write("ann.json", Annotations);
        var res = Write("res.json", """[{"image_id": 2, "caption": "The cat's curled up on a sofa."}, {"image_id": 1, "caption": "a surfer rides a large wave in the ocean"}]""");
        var tok = Path.Combine(_dir, "tok.json");
        var raw = Path.Combine(_dir, "raw.json");
        Assert.Equal(0, Invoke("--annotations", ann, "--results", res, "--per-image", tok).Code);
        Assert.Equal(0, Invoke("--annotations", ann, "--results", res, "--per-image", raw, "--pretokenized").Code);
        var t = JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, double>>>(File.ReadAllText(tok))!;
        var r = JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, double>>>(File.ReadAllText(raw))!;
        Assert.Equal(1.0, t["2"]["ROUGE_L"], 12);          // identical to a reference after tokenization
        Assert.Equal(1.0, r["2"]["ROUGE_L"], 12);          // and also identical as raw text
        Assert.Equal(1.0, t["1"]["ROUGE_L"], 12);          // the tokenizer drops the reference's final "."
        Assert.True(r["1"]["ROUGE_L"] < 1.0);              // without it "ocean." != "ocean"
    }

    public static TheoryData<string, string, string, string> BadFiles => new()
    {
        { "missing annotations", "<none>", """[{"image_id": 1, "caption": "x"}]""", "file not found" },
        { "annotations not JSON", "{ this is not json", """[{"image_id": 1, "caption": "x"}]""", "not valid JSON" },
        { "annotations wrong shape", """[{"image_id": 1, "caption": "x"}]""", """[{"image_id": 1, "caption": "x"}]""", "expected a JSON object with 'annotations'" },
        { "annotation without caption", """{"annotations": [{"image_id": 1}]}""", """[{"image_id": 1, "caption": "x"}]""", "annotations[0] (image_id 1) has no string 'caption'" },
        { "results not an array", Annotations, """{"image_id": 1, "caption": "x"}""", "expected a JSON array" },
        { "result without image_id", Annotations, """[{"caption": "x"}]""", "[0] has no 'image_id'" },
        { "result id not in annotations", Annotations, """[{"image_id": 1, "caption": "x"}, {"image_id": 99, "caption": "y"}]""", "entry [1] has image_id 99, which has no captions" },
        { "duplicate result id", Annotations, """[{"image_id": 1, "caption": "x"}, {"image_id": 1, "caption": "y"}]""", "entry [1] repeats image_id 1" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFilesGiveAClearErrorAndNonZeroExit(string why, string annotations, string results, string message)
    {
        var ann = annotations == "<none>" ? Path.Combine(_dir, "absent.json") : Write("ann.json", annotations);
        var res = Write("res.json", results);
        var (code, _, stderr) = Invoke("--annotations", ann, "--results", res, "--out", Path.Combine(_dir, "m.json"));
        Assert.True(code != 0, why);
        Assert.Contains(message, stderr);
        // The message names the offending file.
        Assert.True(stderr.Contains(ann) || stderr.Contains(res), stderr);
        Assert.False(File.Exists(Path.Combine(_dir, "m.json")));
    }
}

using System.Text.Json;
using Scst.Host.Tests.Cluster;

namespace Scst.Host.Tests;

/// <summary><c>model tokenize</c> as a user runs it, against sentencepiece's own output (tests/data/spiece/make_oracle.py).</summary>
public class ModelTokenizeCommandTests
{
    private static string DataPath(string file) => Path.Combine(AppContext.BaseDirectory, "data", "spiece", file);

    private sealed record Result(int[] ids, string[] pieces, string decode);

    [Fact]
    public async Task Json_output_equals_sentencepiece_on_every_oracle_string()
    {
        var output = Path.Combine(Directory.CreateTempSubdirectory("scst-tokenize-").FullName, "out.json");
        using var p = HostProcess.Start("tokenize", "model", "tokenize", "--tokenizer", DataPath("t5_oracle_unigram.model"),
            "--file", DataPath("oracle_strings.json"), "--json", output);
        await p.ExpectExit(0, TimeSpan.FromSeconds(120), "model tokenize exit");
        var expected = JsonSerializer.Deserialize<Result[]>(File.ReadAllText(DataPath("expected_t5_oracle_unigram.json")))!;
        var actual = JsonSerializer.Deserialize<Result[]>(File.ReadAllText(output))!;
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].ids, actual[i].ids);
            Assert.Equal(expected[i].pieces, actual[i].pieces);
            Assert.Equal(expected[i].decode, actual[i].decode);
        }
        Assert.Equal(expected.Length, p.Lines.Count(l => l.StartsWith("ids:    [", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Text_prints_ids_pieces_and_decode()
    {
        using var p = HostProcess.Start("tokenize", "model", "tokenize", "--tokenizer", DataPath("t5_oracle_unigram.model"), "--text", "a  red\u0001 circle");
        await p.ExpectExit(0, TimeSpan.FromSeconds(60), "model tokenize exit");
        var lines = p.Lines.ToList();
        Assert.Contains("decode: \"a red circle\"", lines);
        Assert.Contains(lines, l => l.StartsWith("pieces: [\"▁a\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Bad_inputs_end_with_one_line_and_exit_code_2()
    {
        var dir = Directory.CreateTempSubdirectory("scst-tokenize-").FullName;
        var badJson = Path.Combine(dir, "bad.json");
        File.WriteAllText(badJson, "{\"not\": \"an array\"}");
        var missingModel = Path.Combine(dir, "missing.model");
        var cases = new (string[] Args, string Expect)[]
        {
            (["--tokenizer", DataPath("t5_oracle_unigram.model"), "--file", badJson], badJson),
            (["--tokenizer", DataPath("t5_oracle_unigram.model"), "--file", Path.Combine(dir, "none.json")], "none.json"),
            (["--tokenizer", missingModel, "--text", "a"], missingModel),
            (["--tokenizer", badJson, "--text", "a"], badJson),
            (["--tokenizer", DataPath("t5_oracle_unigram.model")], "--text"),
        };
        foreach (var (args, expect) in cases)
        {
            using var p = HostProcess.Start("tokenize", ["model", "tokenize", .. args]);
            await p.ExpectExit(2, TimeSpan.FromSeconds(60), $"model tokenize {string.Join(' ', args)}");
            var lines = p.Lines.Where(l => l.Length > 0).ToList();
            Assert.Single(lines);
            Assert.Contains(expect, lines[0]);
            Assert.StartsWith("error: ", lines[0]);
        }
    }
}

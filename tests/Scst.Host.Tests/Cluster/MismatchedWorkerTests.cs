using System.Text.Json.Nodes;

namespace Scst.Host.Tests.Cluster;

/// <summary>
/// A rollout node started with another config or vocabulary than the learner's is refused at registration, with the
/// differing field named on both sides, and exits with code 2 instead of serving rollouts that mean something else.
/// </summary>
[Trait("Category", "Chaos")]
public class MismatchedWorkerTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Rollout_nodes_with_another_sampling_setting_or_vocabulary_are_refused_naming_the_field()
    {
        var dir = TinyScstRun.NewDir("mismatch");
        var config = TinyScstRun.WriteConfig(dir, maxIters: 40, checkpointEvery: 40, evalEvery: 40);
        var learnerDir = Path.Combine(dir, "learner");
        var lp = HostProcess.FreePort();
        var seed = $"akka.tcp://scst@127.0.0.1:{lp}";
        using var learner = HostProcess.Start("learner", "--role", "learner", "train", "--config", config, "--run-dir", learnerDir, "--port", $"{lp}", "--fast-failure");
        await learner.WaitForLine(l => l.Contains("waiting for a rollout worker"), Wait, "that it waits for a rollout worker");

        // Another K: its captions would be scored and weighted as K = 3.
        var otherK = Path.Combine(dir, "k4");
        Directory.CreateDirectory(otherK);
        var kConfig = Path.Combine(otherK, "tiny_scst.yaml");
        File.WriteAllText(kConfig, File.ReadAllText(config).Replace("sample_n: 3", "sample_n: 4"));
        using (var r = HostProcess.Start("rollout-k4", "--role", "rollout", "train", "--config", kConfig, "--run-dir", Path.Combine(otherK, "run"),
                   "--port", $"{HostProcess.FreePort()}", "--seed-nodes", seed, "--fast-failure"))
        {
            await r.ExpectExit(2, Wait, "be refused");
            AssertRefusal(r, "rollout.sampling differs", "n=3", "n=4");
        }
        await learner.WaitForLine(l => l.Contains("refused rollout worker") && l.Contains("rollout.sampling differs"), Wait, "the refusal");

        // Same words, two ids swapped: every caption it decodes would read differently from what the learner trains on.
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(learnerDir, "checkpoints", "tokenizer.json")))!.AsObject();
        var words = vocab["vocab"]!.AsArray();
        (words[5], words[6]) = (words[6]!.GetValue<string>(), words[5]!.GetValue<string>());
        var otherVocab = Path.Combine(dir, "swapped");
        Directory.CreateDirectory(otherVocab);
        var tokenizer = Path.Combine(otherVocab, "tokenizer.json");
        File.WriteAllText(tokenizer, vocab.ToJsonString());
        var vConfig = Path.Combine(otherVocab, "tiny_scst.yaml");
        File.WriteAllText(vConfig, File.ReadAllText(config).Replace("tokenizer: {type: word, min_freq: 1}", $"tokenizer: {{type: word, min_freq: 1, path: {tokenizer}}}"));
        using (var r = HostProcess.Start("rollout-vocab", "--role", "rollout", "train", "--config", vConfig, "--run-dir", Path.Combine(otherVocab, "run"),
                   "--port", $"{HostProcess.FreePort()}", "--seed-nodes", seed, "--fast-failure"))
        {
            await r.ExpectExit(2, Wait, "be refused");
            AssertRefusal(r, "tokenizer differs");
            Assert.DoesNotContain(r.Lines, l => l.Contains("rollout.sampling differs"));
        }
        Assert.Equal(0, TinyScstRun.LastUpdate(learnerDir)); // nothing was trained with a refused worker
    }

    static void AssertRefusal(HostProcess worker, params string[] expected)
    {
        var line = worker.Lines.FirstOrDefault(l => l.Contains("the learner refused this rollout node"));
        Assert.True(line is not null, "no refusal line:\n" + string.Join("\n", worker.Lines.TakeLast(20)));
        foreach (var e in expected) Assert.Contains(e, line);
        Assert.DoesNotContain(worker.Lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }
}

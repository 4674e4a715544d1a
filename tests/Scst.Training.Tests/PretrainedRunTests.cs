using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Scst.Training.Configuration;
using Scst.Training;
using Scst.Host.Configuration;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.SafeTensors;
using Scst.Model.T5;
using static TorchSharp.torch;

namespace Scst.Training.Tests;

/// <summary>
/// A run on a pretrained folder (a tiny one in the hub layout): LAVIS's trainable set, checkpoints that hold only what
/// trains and name their base, SCST on them, and the refusal of a checkpoint made on another base.
/// </summary>
public sealed class PretrainedRunTests : IClassFixture<TinyShapes>, IDisposable
{
    private readonly TinyShapes _shapes;
    private readonly string _root = Directory.CreateTempSubdirectory("scst-pretrained-").FullName;

    public PretrainedRunTests(TinyShapes shapes) => _shapes = shapes;

    private static Blip2Config TinyConfig() => Blip2Config.FromJson(new Blip2Config
    {
        Vision = new Blip2VisionConfig { HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4, ImageSize = 28, PatchSize = 7 },
        QFormer = new Blip2QFormerConfig { HiddenSize = 16, IntermediateSize = 40, NumHiddenLayers = 2, NumAttentionHeads = 4, CrossAttentionFrequency = 2, EncoderHiddenSize = 32 },
        // The folder's spiece.model has 1,000 pieces; T5 adds 100 sentinel ids and pads the embedding to a multiple of 64.
        Text = new T5Config
        {
            VocabSize = 1152, DModel = 24, DKv = 6, DFf = 40, NumLayers = 1, NumDecoderLayers = 1, NumHeads = 4, DropoutRate = 0.1,
            FeedForwardProj = "gated-gelu", DenseActFn = "gelu_new", IsGatedAct = true,
        },
        NumQueryTokens = 4,
    }.ToJson());

    private string Folder(string name, int seed)
    {
        var dir = Path.Combine(_root, name);
        var cfg = TinyConfig();
        HubLayoutFolder.Write(dir, cfg.ToJson(), HubLayoutFolder.Blip2Tensors(cfg), shardBytes: 60_000, seed: seed);
        return dir;
    }

    // The seed's recipe on the tiny folder, at 42 px on a 28 px checkpoint (position embeddings interpolated 4 -> 6).
    private ScstConfig Config(string pretrained, string? finetuned, string extra = "") => ConfigLoader.Parse($$"""
        model:
          arch: blip2_t5
          load_pretrained: true
          pretrained: {{pretrained}}
          {{(finetuned is null ? "" : $"load_finetuned: true\n  finetuned: {finetuned}")}}
          freeze_vit: true
          vit_precision: bf16
          prompt: "a photo of "
        datasets:
          shapes:
            build_info: {images: {{_shapes.DataDir}}}
            vis_processor:
              train: {image_size: 42}
              eval: {image_size: 42}
        run:
          lr_sched: constant_lr
          init_lr: 1e-3
          max_iters: 2
          batch_size_train: 2
          batch_size_eval: 12
          max_len: 6
          seed: 3
          amp: true
          eval_every: 2
          eval_max_images: 4
          checkpoint_every: 2
          threads: 1
        {{extra}}
        """, "pretrained.yaml");

    private const string Scst = """
        scst:
          sampling: beam
          beam_size: 2
          baseline: mean
        """;

    [Fact]
    public void CheckpointsHoldWhatTrainsNameTheirBaseAndSeedScstButNotAnotherBase()
    {
        var folder = Folder("base", seed: 1);
        var ceDir = Path.Combine(_root, "ce");
        var (_, ce) = TinyShapes.Train(Config(folder, null), new TrainerOptions(ceDir));
        Assert.Equal(2, ce.Updates);

        // summary.json: what the model holds and what of it trains (LAVIS: Q-Former, queries, projection, ln_vision).
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(ceDir, "summary.json")))!;
        using (var probe = TinyShapes.Trainer(Config(folder, null), new TrainerOptions(Path.Combine(_root, "probe"))))
        {
            var trainable = probe.Learner.Policy.Model.named_parameters().Where(p => p.name.StartsWith("qformer.", StringComparison.Ordinal)
                || p.name is "query_tokens" || p.name.StartsWith("language_projection.", StringComparison.Ordinal)
                || p.name.StartsWith("vision_model.post_layernorm.", StringComparison.Ordinal)).Sum(p => p.parameter.numel());
            Assert.Equal(trainable, summary["parameters"]!["trainable"]!.GetValue<long>());
            Assert.Equal(probe.Learner.Policy.Model.parameters().Sum(p => p.numel()), summary["parameters"]!["total"]!.GetValue<long>());
        }

        // The checkpoint holds the trainable tensors (and their optimizer moments) only, and its base.
        var best = Path.Combine(ceDir, "checkpoints", "best.json");
        var (tensors, state) = CheckpointStore.LoadFile(Path.Combine(ceDir, "checkpoints", "best.safetensors"));
        var models = tensors.Keys.Where(k => k.StartsWith("model.", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(models);
        Assert.All(models, k => Assert.Matches(@"^model\.(qformer\.|query_tokens$|language_projection\.|vision_model\.post_layernorm\.)", k));
        Assert.Equal(WeightFolder.Identity(folder), state["base"]!["identity"]!.GetValue<string>());
        foreach (var t in tensors.Values) t.Dispose();

        // SCST starts from it: the trainable weights are the checkpoint's, the frozen ones the folder's.
        using (var scst = TinyShapes.Trainer(Config(folder, best, Scst), new TrainerOptions(Path.Combine(_root, "scst"))))
        using (var reference = TinyShapes.Trainer(Config(folder, null), new TrainerOptions(Path.Combine(_root, "reference"))))
        {
            var (ckpt, _) = CheckpointStore.LoadFile(Path.Combine(ceDir, "checkpoints", "best.safetensors"));
            foreach (var (name, p) in scst.Learner.Policy.Model.named_parameters())
            {
                var expected = ckpt.TryGetValue("model." + name, out var c) ? c
                    : reference.Learner.Policy.Model.named_parameters().Single(r => r.name == name).parameter;
                Assert.True((p.detach().cpu().to(ScalarType.Float32) - expected.cpu().to(ScalarType.Float32)).abs().max().item<float>() == 0, name);
            }
            foreach (var t in ckpt.Values) t.Dispose();
            var s = scst.Run();
            Assert.Equal(2, s.Updates);
            // A weight update for rollout replicas carries what trains, stamped with the base.
            var weights = Path.Combine(_root, "policy.safetensors");
            PolicyWeights.Export(scst.Learner.Policy.Model, scst.Learner.Setup.Base, weights);
            using var reader = SafeTensorsReader.Open(weights);
            Assert.Equal(models.Order(), reader.Entries.Select(e => e.Name).Order());
            Assert.Equal(scst.Learner.Setup.Base!.Identity, reader.Metadata[PretrainedBase.MetadataKey]);
        }

        // A folder of the same architecture with other values is another base: the checkpoint is refused, naming both.
        var other = Folder("other", seed: 2);
        Assert.NotEqual(WeightFolder.Identity(folder), WeightFolder.Identity(other));
        var e = Assert.Throws<InvalidDataException>(() => TinyShapes.Trainer(Config(other, best, Scst), new TrainerOptions(Path.Combine(_root, "wrong"))));
        Assert.Contains("was made on another pretrained base", e.Message);
        Assert.Contains(other, e.Message);
    }

    [Fact]
    public void AWordTokenizerOnAPretrainedT5AndHalfPrecisionOnATrainedVitAreRefused()
    {
        var yaml = """
            model:
              load_pretrained: true
              pretrained: /somewhere
              tokenizer: {type: word}
            datasets:
              shapes: {build_info: {images: /tmp/x}}
            run: {max_iters: 1}
            """;
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "word.yaml"));
        Assert.Contains("model.tokenizer", e.Message);
        var vit = yaml.Replace("tokenizer: {type: word}", "freeze_vit: false\n  vit_precision: bf16");
        var e2 = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(vit, "vit.yaml"));
        Assert.Contains("'model.vit_precision'", e2.Message);
        // Without a tokenizer section a pretrained model reads its folder's spiece.model.
        var ok = ConfigLoader.Parse(yaml.Replace("  tokenizer: {type: word}\n", ""), "ok.yaml");
        Assert.Equal(("sentencepiece", Path.Combine("/somewhere", "spiece.model")), (ok.Model.Tokenizer.Type, ok.Model.Tokenizer.Path));
    }

    [Fact]
    public void TheFeedForwardActivationReplacesTheFoldersAndTheQueryCountIsChecked()
    {
        var folder = Folder("act", seed: 2);
        var m = Config(folder, null).Model;
        Assert.Equal("gelu", m.FeedForwardActivation);                      // LAVIS's blip2_t5 sets dense_act_fn = gelu
        Assert.Equal("gelu_new", TinyConfig().Text.DenseActFn);              // the folder's (HF's reading of gated-gelu)
        var (gelu, _) = PolicyModel.Build(m, 0, 42, 3, CPU, NullLogger.Instance);
        var (geluNew, _) = PolicyModel.Build(m with { FeedForwardActivation = "gelu_new" }, 0, 42, 3, CPU, NullLogger.Instance);
        using (gelu)
        using (geluNew)
        {
            Assert.Equal(("gelu", "gelu_new"), (gelu.Config.Text.DenseActFn, geluNew.Config.Text.DenseActFn));
            gelu.eval();
            geluNew.eval();
            // Same weights, so the feed-forwards differ only by the activation. Exact and tanh-approximated GELU differ
            // by at most ~2e-4, under bf16's resolution except where GELU is near 0 (pre-activations around -3): so the
            // input is scaled to put the pre-activations in [-4, 4].
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ffGelu = gelu.LanguageModel.Encoder.Block(0).FeedForwardLayer.Dense;
            var ffNew = geluNew.LanguageModel.Encoder.Block(0).FeedForwardLayer.Dense;
            var x = randn(64, 24, generator: new TorchSharp.torch.Generator(7));
            var w0 = ffGelu.InputProjections.First().weight!.to(float32);
            x = x * (2.0 / x.matmul(w0.t()).std().item<float>());
            var a = ffGelu.forward(x.to(bfloat16)).to(float32);
            var b = ffNew.forward(x.to(bfloat16)).to(float32);
            var diff = (a - b).abs().max().item<float>();
            Assert.True(diff > 0, "gelu and gelu_new gave the same feed-forward output");
            Assert.True(diff < 0.05 * a.abs().max().item<float>(), $"the activations differ by {diff}, more than GELU's tanh approximation can");
        }
        var e = Assert.Throws<InvalidDataException>(() => PolicyModel.Build(m with { NumQueryToken = 32 }, 0, 42, 3, CPU, NullLogger.Instance));
        Assert.StartsWith("model.num_query_token is 32", e.Message);
        Assert.Contains("num_query_tokens 4", e.Message);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}

using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Scst.Model.Blip2;
using Scst.Model.Checkpoints;
using Scst.Model.SafeTensors;
using Scst.Model.T5;
using Scst.Model.Tokenization;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Scst.Model.Tests;

/// <summary>
/// Stand-in hub folders: a scaled-down BLIP-2 folder written with several shards loads with <see cref="HfCheckpoint"/>;
/// the BLIP-2 FlanT5-XL tensor list and shard split are checked by arithmetic, never by allocating 16 GB.
/// </summary>
public sealed partial class HubLayoutFolderTests : IDisposable
{
    private readonly ITestOutputHelper _out;
    private readonly string _tmp = Directory.CreateTempSubdirectory("scst-hub-").FullName;
    public HubLayoutFolderTests(ITestOutputHelper output) { _out = output; TorchRuntime.Initialize(); }
    public void Dispose() { if (Directory.Exists(_tmp)) Directory.Delete(_tmp, recursive: true); }

    // The hub's Salesforce/blip2-flan-t5-xl (transformers 4.47 save, revision 0eb0d3b): its tensors sum to this count.
    internal const long XlParameters = 3_942_446_592;

    private static Blip2Config Tiny(bool tie = false) => Blip2Config.FromJson(new Blip2Config
    {
        Vision = new Blip2VisionConfig { HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4, ImageSize = 28, PatchSize = 7 },
        QFormer = new Blip2QFormerConfig { HiddenSize = 16, IntermediateSize = 40, NumHiddenLayers = 3, NumAttentionHeads = 4, CrossAttentionFrequency = 2, EncoderHiddenSize = 32 },
        Text = new T5Config
        {
            VocabSize = 120, DModel = 24, DKv = 6, DFf = 40, NumLayers = 2, NumDecoderLayers = 3, NumHeads = 4,
            FeedForwardProj = "gated-gelu", DenseActFn = "gelu_new", IsGatedAct = true, TieWordEmbeddings = tie, ScaleDecoderOutputs = tie,
        },
        NumQueryTokens = 4,
    }.ToJson());

    [GeneratedRegex(@"^language_model\.(encoder|decoder)\.embed_tokens\.weight$")]
    private static partial Regex EmbedAlias();
    [GeneratedRegex(@"^qformer\.encoder\.layer\.\d+\.(intermediate|output)\.")]
    private static partial Regex TextBranch();

    /// <summary>
    /// What <see cref="HfCheckpoint.LoadBlip2T5"/> makes of a file's tensors: aliases and the Q-Former text branch dropped,
    /// a 5.x/hub qkv.bias [3n] split into q_bias and v_bias [n] (the key part is zero and not a parameter, as in LAVIS).
    /// The tiny-config tests below check this against the real loader.
    /// </summary>
    internal static SortedDictionary<string, string> AsLoaded(IEnumerable<(string Name, long[] Shape)> file)
    {
        var r = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, shape) in file)
        {
            if (EmbedAlias().IsMatch(name) || TextBranch().IsMatch(name)) continue;
            if (name.EndsWith(".self_attn.qkv.bias", StringComparison.Ordinal))
            {
                r[name[..^"qkv.bias".Length] + "q_bias"] = $"[{shape[0] / 3}]";
                r[name[..^"qkv.bias".Length] + "v_bias"] = $"[{shape[0] / 3}]";
            }
            else r[name] = $"[{string.Join(", ", shape)}]";
        }
        return r;
    }

    internal static SortedDictionary<string, string> Parameters(nn.Module m) =>
        new(m.named_parameters().ToDictionary(p => p.name, p => $"[{string.Join(", ", p.parameter.shape)}]"), StringComparer.Ordinal);

    private static long Count(IEnumerable<(string Name, long[] Shape)> t) => HubLayoutFolder.ParameterCount(t);

    public static TheoryData<bool, bool, bool, bool> Namings => new()
    {
        { false, false, false, false }, // the hub's files
        { true, true, true, false },    // q_bias/v_bias, embed_tokens aliases, Q-Former text branch: all ignored or fused
        { false, false, false, true },  // tied head: no lm_head tensor
    };

    [Theory]
    [MemberData(nameof(Namings))]
    public void Tiny_folder_with_several_shards_loads_and_matches_the_enumeration(bool splitQv, bool aliases, bool textBranch, bool tie)
    {
        var cfg = Tiny(tie);
        var naming = new Blip2HubNaming { SplitVisionQvBias = splitQv, EmbedTokensAliases = aliases, QFormerTextBranch = textBranch };
        var tensors = HubLayoutFolder.Blip2Tensors(cfg, naming);
        var dir = Path.Combine(_tmp, "tiny");
        const long shardBytes = 24_000;
        var r = HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, shardBytes, seed: 3, progress: _out.WriteLine);
        Assert.True(r.Written);
        Assert.True(r.Shards.Count >= 3, $"{r.Shards.Count} shards");

        // Files: config, spiece, index, model-0000i-of-0000n shards, layout.json last; nothing else.
        var names = Enumerable.Range(0, r.Shards.Count).Select(i => $"model-{i + 1:D5}-of-{r.Shards.Count:D5}.safetensors").ToList();
        Assert.Equal(names, r.Shards.Select(s => s.File));
        Assert.Equal(new[] { "config.json", "layout.json", "model.safetensors.index.json", "spiece.model" }.Concat(names).Order(StringComparer.Ordinal),
            Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Index: every tensor once, total_size = tensor bytes; shards hold what the index says, in hub order.
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, HfCheckpoint.IndexFile)))!.AsObject();
        var map = index["weight_map"]!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<string>());
        Assert.Equal(tensors.Select(t => t.Name).Order(StringComparer.Ordinal), map.Keys);
        Assert.Equal(Count(tensors) * 4, index["metadata"]!["total_size"]!.GetValue<long>());
        Assert.Equal(Count(tensors) * 4, r.TotalSize);
        var split = HubLayoutFolder.SplitShards(tensors, shardBytes);
        for (var i = 0; i < split.Count; i++)
        {
            Assert.All(split[i], t => Assert.Equal(names[i], map[t.Name]));
            var layout = SafeTensorsStreamWriter.Plan(split[i].Select(t => new SafeTensorEntry(t.Name, "F32", t.Shape)), new Dictionary<string, string> { ["format"] = "pt" });
            Assert.Equal(layout.FileBytes, new FileInfo(Path.Combine(dir, names[i])).Length);
            Assert.True(layout.DataBytes <= shardBytes || split[i].Count == 1);
        }
        Assert.Equal(tensors.Select(t => t.Name), split.SelectMany(s => s.Select(t => t.Name))); // order kept across shards

        // The loader takes the folder, and the model's parameters are exactly the enumeration after its 4.x mapping.
        using var m = HfCheckpoint.LoadBlip2T5(dir);
        Assert.Equal(Parameters(m), AsLoaded(tensors));
        Assert.Equal(m.Config, cfg);
        var p = m.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        var expected = new float[8];
        SyntheticWeights.Fill(SyntheticWeights.Key(3, "language_model.shared.weight"), SyntheticWeights.Kind.Uniform, 0, expected);
        Assert.Equal(expected, p["language_model.shared.weight"].flatten().narrow(0, 0, 8).data<float>().ToArray());
        Assert.True(p["qformer.layernorm.weight"].eq(1f).all().item<bool>());
        Assert.Equal(0f, p["vision_model.encoder.layers.1.self_attn.q_bias"].abs().max().item<float>());

        // spiece.model is the embedded T5-style model, and it tokenizes like T5 (eos appended, pad 0).
        var tok = SentencePieceTokenizer.Load(Path.Combine(dir, HubLayoutFolder.SpieceFile));
        Assert.Equal((0, 1, 2), (tok.PadId, tok.EosId, tok.UnkId));
        Assert.Equal(1000, tok.PieceCount);
        var ids = tok.Encode("a red circle to the left of a blue box");
        Assert.Equal(1, ids[^1]);
        Assert.Equal("a red circle to the left of a blue box", tok.Decode(ids));
    }

    [Fact]
    public void Layout_marker_caches_the_folder_until_something_changes()
    {
        var cfg = Tiny();
        var tensors = HubLayoutFolder.Blip2Tensors(cfg);
        var dir = Path.Combine(_tmp, "cached");
        var (many, fewer) = (HubLayoutFolder.SplitShards(tensors, 30_000).Count, HubLayoutFolder.SplitShards(tensors, 60_000).Count);
        Assert.True(many > fewer && fewer > 1, $"{many} and {fewer} shards");
        Assert.True(HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, 30_000).Written);
        var shard = Path.Combine(dir, $"model-00001-of-{many:D5}.safetensors");
        Assert.True(File.Exists(shard));
        var stamp = DateTime.UtcNow.AddDays(-1);
        foreach (var f in Directory.GetFiles(dir)) File.SetLastWriteTimeUtc(f, stamp);

        var again = HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, 30_000);
        Assert.False(again.Written);
        Assert.Equal(many, again.Shards.Count);
        Assert.All(Directory.GetFiles(dir), f => Assert.Equal(stamp, File.GetLastWriteTimeUtc(f)));

        // A truncated shard, another seed or another shard size: rewritten (and stale shard files removed).
        using (var fs = new FileStream(shard, FileMode.Open)) fs.SetLength(fs.Length - 4);
        Assert.True(HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, 30_000).Written);
        Assert.False(HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, 30_000).Written);
        var before = File.ReadAllBytes(shard);
        Assert.True(HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, 30_000, seed: 1).Written);
        Assert.NotEqual(before, File.ReadAllBytes(shard));
        var rewritten = HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, 60_000, seed: 1);
        Assert.True(rewritten.Written);
        Assert.Equal(fewer, rewritten.Shards.Count);
        Assert.Empty(Directory.GetFiles(dir, $"*-of-{many:D5}.safetensors"));
        Assert.Empty(Directory.GetFiles(dir, ".*"));

        // One shard: model.safetensors and no index, as save_pretrained writes it.
        var single = HubLayoutFolder.Ensure(dir, cfg.ToJson(), tensors, 10_000_000);
        Assert.Equal(HfCheckpoint.WeightsFile, Assert.Single(single.Shards).File);
        Assert.False(File.Exists(Path.Combine(dir, HfCheckpoint.IndexFile)));
        Assert.Empty(Directory.GetFiles(dir, "model-*"));
        using var m = HfCheckpoint.LoadBlip2T5(dir);

        // A folder this class did not write is never overwritten.
        var foreign = Path.Combine(_tmp, "foreign");
        Directory.CreateDirectory(foreign);
        File.WriteAllText(Path.Combine(foreign, "config.json"), "{}");
        var e = Assert.Throws<IOException>(() => HubLayoutFolder.Ensure(foreign, cfg.ToJson(), tensors, 30_000));
        Assert.Contains("refusing to overwrite", e.Message);
        Assert.Equal("{}", File.ReadAllText(Path.Combine(foreign, "config.json")));
    }

    [Fact]
    public void Shards_split_as_huggingface_hub_splits_them()
    {
        (string, long[]) T(string name, long n) => (name, [n]);
        // 40-byte shards of float32: fill in order; a tensor above the limit gets a shard of its own, listed before the open one.
        var s = HubLayoutFolder.SplitShards([T("a", 4), T("b", 6), T("c", 20), T("d", 10), T("e", 1)], 40);
        Assert.Equal(["c", "a,b", "d", "e"],
            s.Select(x => string.Join(",", x.Select(t => t.Item1))));
        s = HubLayoutFolder.SplitShards([T("a", 2), T("b", 8), T("c", 3)], 40);
        Assert.Equal(["a,b", "c"], s.Select(x => string.Join(",", x.Select(t => t.Item1))));
        Assert.Single(HubLayoutFolder.SplitShards([], 40));
        Assert.Equal("model.safetensors", HubLayoutFolder.ShardFileName(0, 1));
        Assert.Equal("model-00002-of-00002.safetensors", HubLayoutFolder.ShardFileName(1, 2));
    }

    [Fact]
    public void Config_json_is_written_as_transformers_writes_it()
    {
        var dir = Path.Combine(_tmp, "cfg");
        HubLayoutFolder.Write(dir, HubLayoutFolder.Blip2FlanT5XlConfig(), [("w", [2])], 1000);
        var text = File.ReadAllText(Path.Combine(dir, HfCheckpoint.ConfigFile));
        // json.dumps(indent=2, sort_keys=True) + "\n", with Python's spelling of floats.
        Assert.StartsWith("{\n  \"architectures\": [\n    \"Blip2ForConditionalGeneration\"\n  ],\n  \"image_text_hidden_size\": 256,", text);
        Assert.EndsWith("\n  }\n}\n", text);
        foreach (var s in new[] { "\"initializer_factor\": 1.0,", "\"layer_norm_epsilon\": 1e-06,", "\"layer_norm_eps\": 1e-12,", "\"classifier_dropout\": null," })
            Assert.Contains(s, text);
        var keys = JsonNode.Parse(text)!.AsObject().Select(kv => kv.Key).ToList();
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
        Assert.Equal(HubLayoutFolder.Blip2FlanT5XlConfig().ToJsonString(), JsonNode.Parse(text)!.ToJsonString());
    }

    [Fact]
    public void Embedded_spiece_model_is_the_committed_test_data_file()
    {
        var committed = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "data", "spiece", "t5_style_unigram.model"));
        Assert.Equal(committed, HubLayoutFolder.T5StyleSpieceModel());
    }

    [Fact]
    public void Xl_enumeration_has_the_hub_parameter_count_and_splits_into_the_hub_shards()
    {
        var config = HubLayoutFolder.Blip2FlanT5XlConfig();
        var cfg = Blip2Config.FromJson(config);
        Assert.Equal((1408, 39, 16, 6144, 224, 14), (cfg.Vision.HiddenSize, cfg.Vision.NumHiddenLayers, cfg.Vision.NumAttentionHeads, cfg.Vision.IntermediateSize, cfg.Vision.ImageSize, cfg.Vision.PatchSize));
        Assert.Equal((768, 12, 2, 1408), (cfg.QFormer.HiddenSize, cfg.QFormer.NumHiddenLayers, cfg.QFormer.CrossAttentionFrequency, cfg.QFormer.EncoderHiddenSize));
        Assert.Equal((2048, 64, 5120, 24, 24, 32, 32128, false, true), (cfg.Text.DModel, cfg.Text.DKv, cfg.Text.DFf, cfg.Text.NumLayers, cfg.Text.NumDecoderLayers, cfg.Text.NumHeads, cfg.Text.VocabSize, cfg.Text.TieWordEmbeddings, cfg.Text.IsGatedAct));
        Assert.Equal("gelu_new", cfg.Text.DenseActFn);
        Assert.Equal(32, cfg.NumQueryTokens);
        Assert.Equal(32100, cfg.ImageTokenIndex);

        var hub = HubLayoutFolder.Blip2Tensors(cfg);
        Assert.Equal(1289, hub.Count);
        Assert.Equal(hub.Count, hub.Select(t => t.Name).Distinct().Count());
        Assert.Equal(XlParameters, Count(hub));
        // Loaded, the zero key bias is no parameter (LAVIS's count): 39 × 1408 fewer than the file holds.
        Assert.Equal(3_942_391_680, AsLoaded(hub).Values.Sum(s => s.Trim('[', ']').Split(", ").Aggregate(1L, (a, b) => a * long.Parse(b))));

        // LAVIS-style q_bias/v_bias (no k bias): 39 × 1408 fewer numbers in the file, the same model after loading.
        var split = HubLayoutFolder.Blip2Tensors(cfg, new Blip2HubNaming { SplitVisionQvBias = true });
        Assert.Equal(3_942_391_680, Count(split));
        Assert.Equal(AsLoaded(hub), AsLoaded(split));
        // The 2023 pytorch_model.bin index also listed encoder/decoder.embed_tokens (2 × 32128 × 2048).
        Assert.Equal(XlParameters + 2L * 32128 * 2048, Count(HubLayoutFolder.Blip2Tensors(cfg, new Blip2HubNaming { EmbedTokensAliases = true })));

        // save_pretrained(max_shard_size="10GB"): the hub's 9.96 GB + 5.81 GB, split inside decoder block 2.
        var shards = HubLayoutFolder.SplitShards(hub, HubLayoutFolder.DefaultMaxShardBytes);
        Assert.Equal(2, shards.Count);
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        var plans = shards.Select(s => SafeTensorsStreamWriter.Plan(s.Select(t => new SafeTensorEntry(t.Name, "F32", t.Shape)), meta)).ToList();
        for (var i = 0; i < 2; i++)
            _out.WriteLine($"{HubLayoutFolder.ShardFileName(i, 2)}: {plans[i].FileBytes:N0} bytes ({plans[i].DataBytes:N0} tensor bytes + {plans[i].Header.Length:N0} header), {shards[i].Count} tensors, last {shards[i][^1].Name}");
        Assert.Equal(9_961_191_424, plans[0].DataBytes);
        Assert.Equal(5_808_594_944, plans[1].DataBytes);
        Assert.Equal("9.96", (plans[0].FileBytes / 1e9).ToString("F2", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("5.81", (plans[1].FileBytes / 1e9).ToString("F2", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("language_model.decoder.block.2.layer.2.DenseReluDense.wi_0.weight", shards[0][^1].Name);
        Assert.Equal("query_tokens", shards[0][0].Name);
        Assert.Equal("language_model.lm_head.weight", shards[1][^1].Name);
    }

    /// <summary>
    /// Writes the real-size folder once, by hand: <c>SCST_SEED_SCALE_DIR=/work/xl dotnet test --filter Category=SeedScale</c>
    /// (15.8 GB in <c>$SCST_SEED_SCALE_DIR/blip2-flan-t5-xl</c>; a second run finds it cached).
    /// </summary>
    [SkippableFact]
    [Trait("Category", "SeedScale")]
    public void Writes_the_blip2_flan_t5_xl_folder_when_asked()
    {
        var root = Environment.GetEnvironmentVariable("SCST_SEED_SCALE_DIR");
        Skip.If(string.IsNullOrWhiteSpace(root), "SCST_SEED_SCALE_DIR is not set: the 15.8 GB BLIP-2 FlanT5-XL folder is not written");
        var dir = Path.Combine(root!, "blip2-flan-t5-xl");
        var sw = Stopwatch.StartNew();
        HubLayoutFolder.EnsureBlip2FlanT5Xl(dir, progress: s => _out.WriteLine($"[{sw.Elapsed.TotalSeconds,7:F1} s] {s}"));
        var layout = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, HubLayoutFolder.LayoutFile)))!;
        _out.WriteLine(layout.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        Assert.Equal(1289, layout["tensor_count"]!.GetValue<int>());
        Assert.Equal(XlParameters * 4, layout["total_size"]!.GetValue<long>());
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, HfCheckpoint.IndexFile)))!;
        Assert.Equal(1289, index["weight_map"]!.AsObject().Count);
    }
}

/// <summary>
/// Our <see cref="Blip2T5"/> built at full XL size on the meta device (shapes, no storage). The default device is
/// process-wide, so this runs alone, after the parallel tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetaDeviceCollection { public const string Name = "meta device (process-wide default device)"; }

[Collection(MetaDeviceCollection.Name)]
public sealed class HubLayoutMetaDeviceTests
{
    public HubLayoutMetaDeviceTests() => TorchRuntime.Initialize();

    [Fact]
    public void Xl_enumeration_matches_our_model_built_on_the_meta_device()
    {
        var cfg = Blip2Config.FromJson(HubLayoutFolder.Blip2FlanT5XlConfig());
        var before = get_default_device();
        set_default_device(new Device(TorchSharp.DeviceType.META));
        try
        {
            using var m = new Blip2T5(cfg);
            Assert.True(m.named_parameters().First().parameter.is_meta);
            Assert.Equal(HubLayoutFolderTests.Parameters(m), HubLayoutFolderTests.AsLoaded(HubLayoutFolder.Blip2Tensors(cfg)));
            // The file's count less the 39 zero key biases the model does not hold (LAVIS's and the paper's count).
            Assert.Equal(HubLayoutFolderTests.XlParameters - 39 * 1408, m.named_parameters().Sum(p => p.parameter.numel()));
            Assert.Equal(3_942_391_680, m.named_parameters().Sum(p => p.parameter.numel()));
        }
        finally { set_default_device(before); }
    }
}

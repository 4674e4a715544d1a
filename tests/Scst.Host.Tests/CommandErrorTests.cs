using System.CommandLine;
using System.Text;
using Scst.Host.Tests.Cluster;

namespace Scst.Host.Tests;

/// <summary>
/// Every command that reads a file, run as a real process and given a missing file, a directory instead of a file,
/// an unreadable file, a truncated safetensors (where one is read) and a non-UTF-8 YAML (where a config is read):
/// exit code 2, a line naming the file, no stack trace. The commands come from the CLI's own tree, so a new one
/// fails <see cref="Every_command_of_the_tree_is_covered"/> until it is listed here.
/// </summary>
[Trait("Category", "Chaos")]
public class CommandErrorTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>What a bad input is: <see cref="FileForFolder"/> gives a regular file where a folder is expected.</summary>
    public enum Bad { Missing, Directory, Unreadable, TruncatedSafetensors, NonUtf8Yaml, FileForFolder }

    static readonly Bad[] Readable = [Bad.Missing, Bad.Directory, Bad.Unreadable];
    static readonly Bad[] Yaml = [.. Readable, Bad.NonUtf8Yaml];
    static readonly Bad[] Checkpoint = [.. Readable, Bad.TruncatedSafetensors];
    static readonly Bad[] Folder = [Bad.FileForFolder];
    static readonly Bad[] HfFolder = [Bad.Missing, Bad.FileForFolder, Bad.TruncatedSafetensors];

    /// <summary>
    /// Each command's file inputs: the arguments with {F} where the bad path goes, {YAML}/{SPIECE}/... for good inputs
    /// the command needs before it reaches the file, and the kinds of bad input that apply.
    /// </summary>
    static readonly (string Command, string Args, string Ext, Bad[] Kinds)[] Inputs =
    [
        ("", "--config {F}", ".yaml", Yaml),
        ("config validate", "config validate {F}", ".yaml", Yaml),
        ("config show", "config show {F}", ".yaml", Yaml),
        ("data synth", "data synth --out {F} --train 1 --val 1 --test 1", "", Folder),
        ("score", "score --annotations {F} --results {RESULTS}", ".json", Readable),
        ("score", "score --annotations {ANNOTATIONS} --results {F}", ".json", Readable),
        ("bench reward", "bench reward --corpus {F} --repeat 1", ".json", Readable),
        ("bench reward", "bench reward --corpus {ANNOTATIONS} --results {F} --repeat 1", ".json", Readable),
        ("bench actors", "bench actors --config {F}", ".yaml", Yaml),
        // A missing --dir is written (15.8 GB): only a file where the folder goes is safe to try.
        ("bench seed-scale", "bench seed-scale --dir {F} --work-dir {WORK}", "", Folder),
        ("bench weights", "bench weights --mb 1 --repeat 1 --work-dir {F}", "", Folder),
        ("bench soak", "bench soak --updates 3 --every 1 --ce-updates 1 --work-dir {F}", "", Folder),
        ("bench soak", "bench soak --updates 3 --every 1 --ce-updates 1 --work-dir {WORK} --data-dir {F}", "", Folder),
        ("bench tokenize", "bench tokenize --tokenizer {F} --file {STRINGS}", ".model", Readable),
        ("bench tokenize", "bench tokenize --tokenizer {SPIECE} --file {F}", ".json", Readable),
        ("train", "train --config {F} --run-dir {WORK}", ".yaml", Yaml),
        ("train", "train --config {FINETUNED_YAML} --run-dir {WORK}", ".safetensors", Checkpoint),
        ("train", "train --role all --config {SCST_YAML} --hocon {F} --run-dir {WORK}", ".conf", Readable),
        ("demo", "demo --data-dir {F} --run-dir {WORK} --ce-iters 1 --scst-iters 1", "", Folder),
        ("demo", "demo --run-dir {F} --ce-iters 1 --scst-iters 1", "", Folder),
        ("eval", "eval --config {F} --checkpoint {WORK}/none.safetensors", ".yaml", Yaml),
        ("eval", "eval --config {EVAL_YAML} --checkpoint {F}", ".safetensors", Checkpoint),
        ("model check", "model check --checkpoint {F}", "", HfFolder),
        ("model check", "model check --checkpoint {HF} --reference {F}", ".json", Readable),
        ("model info", "model info --checkpoint {F}", "", HfFolder),
        ("model tokenize", "model tokenize --tokenizer {F} --text hello", ".model", Readable),
        ("model tokenize", "model tokenize --tokenizer {SPIECE} --file {F}", ".json", Readable),
        ("node", "node --role learner --port 0 --hocon {F} --run-dir {WORK}", ".conf", Readable),
        ("node", "node --role learner --port 0 --tls-cert {F} --run-dir {WORK}", ".pfx", Readable),
        ("node", "node --role learner --port 0 --tls-cert {PFX} --tls-ca {F} --run-dir {WORK}", ".pem", Readable),
        ("status", "status --seed-nodes akka.tcp://scst@127.0.0.1:1 --hocon {F} --timeout 2", ".conf", Readable),
        ("status", "status --seed-nodes akka.ssl.tcp://scst@127.0.0.1:1 --tls-cert {F} --timeout 2", ".pfx", Readable),
        ("tls init", "tls init --out {F}", "", Folder),
    ];

    /// <summary>Commands that read no file a user names, and why.</summary>
    static readonly Dictionary<string, string> NoInputFile = new()
    {
        ["bench generate"] = "a random-init model of the size given by flags",
        ["bench learner"] = "a random-init model of the size given by flags",
    };

    static IEnumerable<string> Leaves(Command c, string path)
    {
        if (c.Action is not null) yield return path;
        foreach (var s in c.Subcommands)
            foreach (var l in Leaves(s, path.Length == 0 ? s.Name : $"{path} {s.Name}"))
                yield return l;
    }

    [Fact]
    public void Every_command_of_the_tree_is_covered()
    {
        var tree = Leaves(ScstCli.BuildRoot(), "").ToHashSet();
        var listed = Inputs.Select(i => i.Command).Concat(NoInputFile.Keys).ToHashSet();
        Assert.Empty(tree.Except(listed));   // a command with no row here: add its file inputs (or say why it has none)
        Assert.Empty(listed.Except(tree));   // a row for a command that no longer exists
    }

    public static IEnumerable<object[]> Cases() =>
        Inputs.SelectMany((input, row) => input.Kinds.Select(k => new object[] { row, input.Args, k }));

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_bad_file_is_one_line_naming_it_and_exit_code_2(int row, string args, Bad kind)
    {
        var dir = Directory.CreateTempSubdirectory("scst-bad-").FullName;
        var token = $"bad-{kind.ToString().ToLowerInvariant()}";
        var bad = Make(dir, token + Inputs[row].Ext, kind, args);
        // A checkpoint is read after the word vocabulary beside it: give it one, so the checkpoint itself is what fails.
        if (Inputs[row].Ext == ".safetensors") Scst.Model.Tokenization.WordTokenizer.Build(["a red circle"]).Save(Path.Combine(dir, "tokenizer.json"));
        var argv = Fill(args, bad, dir);
        using var p = HostProcess.StartWithEnvironment("bad-file", new Dictionary<string, string> { ["SCST_TLS_PASSWORD"] = "test" }, argv);
        var code = await p.WaitForExit(TimeSpan.FromSeconds(180), "exit on a bad file");
        var lines = p.Lines.ToList();
        foreach (var l in lines.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase))) output.WriteLine(l);
        var shown = string.Join("\n", lines.TakeLast(15));
        Assert.True(code == 2, $"exit {code}, expected 2: {string.Join(' ', argv)}\n{shown}");
        Assert.DoesNotContain(lines, l => l.StartsWith("   at ", StringComparison.Ordinal) || l.Contains("Unhandled exception"));
        Assert.True(lines.Any(l => l.Contains(token)), $"no line names {token}: {string.Join(' ', argv)}\n{shown}");
    }

    [Theory]
    [InlineData("node --role learner --port {P} --run-dir {WORK}")]
    [InlineData("node --role learner --port 0 --metrics-port {P} --run-dir {WORK}")]
    public async Task A_port_in_use_is_one_line_naming_it_and_exit_code_2(string args)
    {
        var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var work = Directory.CreateTempSubdirectory("scst-port-").FullName;
            using var p = HostProcess.Start("port-in-use", args.Replace("{P}", port).Replace("{WORK}", work).Split(' '));
            await p.ExpectExit(2, TimeSpan.FromSeconds(120), "exit on a port in use");
            var lines = p.Lines.ToList();
            foreach (var l in lines.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase))) output.WriteLine(l);
            Assert.DoesNotContain(lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal) || l.StartsWith("Cause:", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.StartsWith("error:", StringComparison.Ordinal) && l.Contains(port));
        }
        finally { taken.Stop(); }
    }

    /// <summary>The bad input at <paramref name="name"/> in <paramref name="dir"/>.</summary>
    static string Make(string dir, string name, Bad kind, string args)
    {
        var path = Path.Combine(dir, name);
        switch (kind)
        {
            case Bad.Missing: return Path.Combine(dir, "nowhere", name);
            case Bad.Directory: Directory.CreateDirectory(path); return path;
            case Bad.Unreadable:
                // Tests run as root, where chmod 000 does not stop a read: /proc/self/mem fails every read at offset 0 (EIO).
                File.CreateSymbolicLink(path, "/proc/self/mem");
                return path;
            case Bad.NonUtf8Yaml:
                File.WriteAllBytes(path, [.. "run:\n  max_iters: 1\n  # caf"u8, 0xE9, .. "\n"u8]); // Latin-1 é
                return path;
            case Bad.FileForFolder: File.WriteAllText(path, "a file, not a folder\n"); return path;
            case Bad.TruncatedSafetensors:
                if (path.EndsWith(".safetensors", StringComparison.Ordinal))
                {
                    // A checkpoint as a full disk would have left it: its sidecar records the whole file's hash.
                    var whole = TinySafetensors();
                    File.WriteAllBytes(path, whole[..(whole.Length / 2)]);
                    File.WriteAllText(path + ".sha256", $"{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(whole))}  {Path.GetFileName(path)}\n");
                    return path;
                }
                // An HF folder whose model.safetensors stops half-way.
                Directory.CreateDirectory(path);
                var hf = Path.Combine(AppContext.BaseDirectory, "data", "hf", "t5_relu_tied");
                File.Copy(Path.Combine(hf, "config.json"), Path.Combine(path, "config.json"));
                var bytes = File.ReadAllBytes(Path.Combine(hf, "model.safetensors"));
                File.WriteAllBytes(Path.Combine(path, "model.safetensors"), bytes[..(bytes.Length / 2)]);
                return path;
        }
        throw new ArgumentOutOfRangeException(nameof(kind));
    }

    static byte[] TinySafetensors()
    {
        var header = Encoding.UTF8.GetBytes("{\"model.w\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[0,256]}}");
        var n = BitConverter.GetBytes((ulong)header.Length);
        return [.. n, .. header, .. new byte[256]];
    }

    static string[] Fill(string args, string bad, string dir)
    {
        var data = Path.Combine(AppContext.BaseDirectory, "data");
        var slots = new Dictionary<string, Func<string>>
        {
            ["{F}"] = () => bad,
            ["{WORK}"] = () => Path.Combine(dir, "work"),
            ["{RESULTS}"] = () => Write(dir, "results.json", "[{\"image_id\": 1, \"caption\": \"a red circle\"}]"),
            ["{ANNOTATIONS}"] = () => Write(dir, "annotations.json", "{\"images\": [{\"id\": 1}], \"annotations\": [{\"image_id\": 1, \"caption\": \"a red circle\"}]}"),
            ["{STRINGS}"] = () => Write(dir, "strings.json", "[\"a red circle\"]"),
            ["{SPIECE}"] = () => Path.Combine(data, "spiece", "t5_style_unigram.model"),
            ["{HF}"] = () => Path.Combine(data, "hf", "t5_relu_tied"),
            ["{PFX}"] = () => NodePfx(dir),
            ["{SCST_YAML}"] = () => TinyScstRun.WriteConfig(dir, maxIters: 1, checkpointEvery: 1),
            ["{EVAL_YAML}"] = () => Write(dir, "eval.yaml", EvalConfig(TinyScstRun.Dataset, finetuned: null)),
            ["{FINETUNED_YAML}"] = () => Write(dir, "finetuned.yaml", EvalConfig(TinyScstRun.Dataset, finetuned: bad)),
        };
        return args.Split(' ').Select(t =>
        {
            foreach (var (slot, value) in slots)
                if (t.Contains(slot)) t = t.Replace(slot, value());
            return t;
        }).ToArray();
    }

    /// <summary>A real node certificate (password "test"), so --tls-ca is the only bad input.</summary>
    static string NodePfx(string dir)
    {
        var path = Path.Combine(dir, "node.pfx");
        using var ca = Scst.Host.Cluster.TlsCertificates.CreateCa("test CA", TimeSpan.FromDays(1));
        using var node = Scst.Host.Cluster.TlsCertificates.CreateNode(ca, "scst-node", TimeSpan.FromDays(1));
        Scst.Host.Cluster.TlsCertificates.WritePfx(node, path, "test");
        return path;
    }

    static string EvalConfig(string data, string? finetuned) =>
        $"run:\n  max_iters: 1\n  device: cpu\ndatasets:\n  shapes:\n    build_info: {{images: {data}}}\n    vis_processor: {{eval: {{image_size: 32}}, train: {{image_size: 32}}}}\n" +
        $"    shapes: {{seed: 7, train: 200, val: 50, test: 50}}\n" +
        $"model:\n  architecture: {{image_size: 32}}\n" + (finetuned is null ? "" : $"  load_finetuned: true\n  finetuned: {finetuned}\n");

    static string Write(string dir, string name, string text)
    {
        var path = Path.Combine(dir, name);
        if (!File.Exists(path)) File.WriteAllText(path, text);
        return path;
    }
}

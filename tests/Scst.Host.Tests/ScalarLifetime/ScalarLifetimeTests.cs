using Microsoft.CodeAnalysis;
using Xunit.Abstractions;

namespace Scst.Host.Tests.ScalarLifetime;

/// <summary>
/// The TorchSharp scalar-lifetime crash (a temporary Scalar finalized while a native op reads it) cannot come back:
/// every src project that calls TorchSharp is compiled against the real assemblies and <see cref="ScalarTemporaryScan"/>
/// must find no temporary Scalar in it. The scan itself is pinned on a sample with known violations and safe forms.
/// </summary>
public class ScalarLifetimeTests(ITestOutputHelper output)
{
    static readonly string Root = FindRoot();

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Directory.Packages.props"))) return d.FullName;
        throw new DirectoryNotFoundException("repository root (Directory.Packages.props) not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The runtime's and this test's assemblies (every src project and TorchSharp among them), but not <paramref name="except"/>.</summary>
    static List<MetadataReference> References(string? except) =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(p => p.EndsWith(".dll", StringComparison.Ordinal) && Path.GetFileNameWithoutExtension(p) != except)
            .DistinctBy(Path.GetFileName).Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList();

    // The configuration this test was built in (bin/Release/net10.0 → Release): its obj folders hold the generated sources.
    static string Configuration => new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    [Theory]
    [InlineData("Model")]
    [InlineData("Training")]
    [InlineData("Actors")]
    [InlineData("Host")]
    public void No_src_project_makes_a_temporary_scalar(string project)
    {
        var dir = Path.Combine(Root, "src", project);
        var sep = Path.DirectorySeparatorChar;
        var sources = Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{sep}obj{sep}") && !f.Contains($"{sep}bin{sep}")).ToList();
        // Global usings, assembly attributes and protobuf types the build generated (a build of the src project precedes this test's).
        var generated = Path.Combine(dir, "obj", Configuration, "net10.0");
        Assert.True(Directory.Exists(generated), $"{generated} is missing: build the solution first");
        sources.AddRange(Directory.EnumerateFiles(generated, "*.cs"));
        var compilation = ScalarTemporaryScan.Compile("Scst." + project, sources, References("Scst." + project), executable: project == "Host");

        // The scan is only as good as the semantic model: it must bind. CS8795: [GeneratedRegex] methods, whose bodies a source generator writes.
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && d.Id != "CS8795").ToList();
        Assert.True(errors.Count == 0, $"src/{project} does not compile for the scan:\n" + string.Join("\n", errors.Take(20)));

        var findings = ScalarTemporaryScan.Scan(compilation, f => f.StartsWith(dir, StringComparison.Ordinal) && !f.Contains($"{sep}obj{sep}")
                                                                 && !f.EndsWith($"{sep}Model{sep}Scalars.cs", StringComparison.Ordinal));
        foreach (var f in findings) output.WriteLine(f.ToString().Replace(Root + sep, ""));
        Assert.True(findings.Count == 0,
            $"src/{project}: {findings.Count} temporary Scalars a native call can outlive (keep them alive: Scalars.Of / Scalars.One, or a using variable):\n" +
            string.Join("\n", findings.Select(f => f.ToString().Replace(Root + sep, ""))));
    }

    const string Sample = """
        using TorchSharp;
        using static TorchSharp.torch;
        static class Sample
        {
            static readonly Scalar Cached = 2.0;
            static Tensor F(Tensor a, Tensor b, double v)
            {
                var x = a.mul(0.5);
                var y = a.add(b, Cached);
                var z = a + b;
                using Scalar s = v;
                var u = a.clamp(s, s);
                Scalar t = v;
                var q = a.mul(t);
                var r = a.pow((Scalar)3);
                var k = a.mul(v.ToScalar());
                var m = a * b;
                var n = a.add_(b);
                using (Scalar w = 1.5) a.mul_(w);
                a.add_(b.mul(Cached), Cached);
                return a.where(a > 0, b);
            }
        }
        """;

    [Fact]
    public void The_scan_flags_conversions_ToScalar_and_hidden_alphas_and_passes_cached_and_using_scalars()
    {
        var file = Path.Combine(Path.GetTempPath(), "scalar-scan-sample.cs");
        File.WriteAllText(file, Sample);
        var compilation = ScalarTemporaryScan.Compile("Sample", [file], References(null));
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        var findings = ScalarTemporaryScan.Scan(compilation);
        foreach (var f in findings) output.WriteLine(f.ToString());
        // Lines of Sample (1-based): 8 mul(0.5), 10 a + b (hidden alpha), 13 a plain Scalar local, 15 a cast,
        // 16 ToScalar(), 18 add_(b) (hidden alpha), 21 a > 0.
        Assert.Equal([8, 10, 13, 15, 16, 18, 21], findings.Select(f => f.Line).Distinct().Order());
    }
}

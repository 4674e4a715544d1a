using Scst.Host.Reporting;

namespace Scst.Host.Tests;

/// <summary>The pieces of the error policy that need no process: classification, console text, metrics after a failed write.</summary>
public class ErrorPolicyTests
{
    [Fact]
    public void User_errors_get_one_line_and_bugs_none()
    {
        var dir = Directory.CreateTempSubdirectory("scst-policy-").FullName;
        var asDirectory = CommandErrors.Describe(new UnauthorizedAccessException($"Access to the path '{dir}' is denied."));
        Assert.Equal($"'{dir}' is a directory, expected a file (Access to the path '{dir}' is denied.)", asDirectory);
        Assert.Contains("check the path", CommandErrors.Describe(new FileNotFoundException("Could not find file '/nowhere/x.json'.")));
        Assert.Null(CommandErrors.Describe(new NullReferenceException()));
        // A library's InvalidOperationException is a bug; ours says what the user did.
        Assert.Null(CommandErrors.Describe(Thrown(() => new List<int>().First())));
        Assert.Null(CommandErrors.Describe(new ArgumentNullException("x")));
        Assert.NotNull(CommandErrors.Describe(new AggregateException(new InvalidDataException("x.safetensors: truncated"))));
    }

    [Fact]
    public void A_full_disk_is_named_as_such_with_what_to_do()
    {
        var full = new IOException("/run/checkpoints/step_0000006.safetensors: not written, the previous file is unchanged (No space left on device)") { HResult = 28 };
        Assert.True(CommandErrors.IsDiskFull(full));
        Assert.Contains("resume", CommandErrors.Describe(full));
        Assert.True(CommandErrors.IsDiskFull(new IOException("the learner journal could not record update 5: database or disk is full")));
        Assert.False(CommandErrors.IsDiskFull(new IOException("Input/output error : '/proc/self/mem'") { HResult = 5 }));
    }

    [Fact]
    public void Unexpected_errors_print_one_line_with_the_file_holding_the_trace()
    {
        var log = Path.Combine(Directory.CreateTempSubdirectory("scst-policy-").FullName, "logs", "train.log");
        CommandErrors.RunLog = log;
        try
        {
            var console = new StringWriter();
            Assert.Equal(CommandErrors.Unexpected, CommandErrors.Report(Thrown(() => new List<int>().First()), "Scst.Host train", console));
            var line = Assert.Single(console.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"full trace in {log}", line);
            Assert.Contains("   at ", File.ReadAllText(log));
        }
        finally { CommandErrors.RunLog = null; }
    }

    [Fact]
    public void The_console_shows_an_akka_error_without_its_stack()
    {
        var akka = "learner: stopping after update 6: disk full\nCause: System.IO.IOException: disk full\n ---> System.IO.IOException: No space\n   at A.B()";
        Assert.Equal("learner: stopping after update 6: disk full", HostLogging.WithoutTrace(akka));
        Assert.Equal("failed (System.Exception: boom)", HostLogging.WithoutTrace("failed\nCause: System.Exception: boom\n   at A.B()"));
        Assert.Equal("plain\nmessage", HostLogging.WithoutTrace("plain\nmessage"));
    }

    [Fact]
    public void Metrics_lines_cut_short_by_a_failed_write_are_dropped_when_the_run_resumes()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("scst-policy-").FullName, "metrics.jsonl");
        using (var sink = new JsonlMetricsSink(file)) sink.Log("scst", 1, new Dictionary<string, double> { ["loss"] = 1 });
        File.AppendAllText(file, "{\"time\":\"2026-01-01\",\"phase\":\"sc"); // what a full disk leaves
        using (var sink = new JsonlMetricsSink(file)) sink.Log("scst", 2, new Dictionary<string, double> { ["loss"] = 2 });
        var rows = PlotWriter.Read(file);
        Assert.Equal([1L, 2L], rows.Select(r => r.Step));
    }

    static Exception Thrown(Action a)
    {
        try { a(); }
        catch (Exception e) { return e; }
        throw new InvalidOperationException("expected an exception");
    }
}

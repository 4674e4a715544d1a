using System.CommandLine;
using Scst.Host.Configuration;

namespace Scst.Host.Commands;

/// <summary><c>config validate FILE</c> and <c>config show FILE</c>.</summary>
public static class ConfigCommand
{
    public static Command Create()
    {
        var cmd = new Command("config", "Validate or show a YAML training config");

        var validateFile = new Argument<FileInfo>("FILE") { Description = "YAML config to check" };
        var validate = new Command("validate", "Check a config; print every problem with file:line:column and key") { validateFile };
        validate.SetAction(r => Run(r.GetValue(validateFile)!, show: false));

        var showFile = new Argument<FileInfo>("FILE") { Description = "YAML config to resolve" };
        var show = new Command("show", "Print every resolved value and where it came from (file:line:column, model_type preset, default)") { showFile };
        show.SetAction(r => Run(r.GetValue(showFile)!, show: true));

        cmd.Subcommands.Add(validate);
        cmd.Subcommands.Add(show);
        return cmd;
    }

    private static int Run(FileInfo file, bool show)
    {
        try
        {
            var loaded = ConfigLoader.LoadTraced(file.FullName);
            if (show) Console.Out.Write(ConfigPrinter.WithSources(loaded.Trace));
            else if (loaded.Config is not { } config)
                Console.Out.WriteLine($"{file.FullName}: valid ({loaded.Kind}: model and preprocess; a training config names its model_type with datasets and run)");
            else
            {
                Console.Out.WriteLine($"{file.FullName}: valid ({loaded.Kind}, " +
                                      $"datasets: {string.Join(", ", config.Datasets.Keys)})");
                foreach (var note in MissingPaths(config)) Console.Out.WriteLine($"note: {note}");
            }
            return 0;
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    // Paths are checked when training starts; validate only points out what is not there yet.
    private static IEnumerable<string> MissingPaths(Scst.Training.Configuration.ScstConfig c)
    {
        foreach (var d in c.Datasets.Values)
        {
            if (d.Format != "shapes" && d.Annotations is { } a && !File.Exists(a)) yield return $"datasets.{d.Name}.build_info.annotations: '{a}' does not exist yet";
            if (d.Format != "shapes" && d.Images is { } i && !Directory.Exists(i)) yield return $"datasets.{d.Name}.build_info.images: '{i}' does not exist yet";
        }
        if (c.Model.LoadPretrained && c.Model.Pretrained is { } p && !Directory.Exists(p) && !File.Exists(p))
            yield return $"model.pretrained: '{p}' does not exist yet";
    }
}

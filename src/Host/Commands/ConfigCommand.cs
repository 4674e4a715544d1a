using System.CommandLine;

namespace Scst.Host.Commands;

public static class ConfigCommand
{
    public static Command Create()
    {
        var cmd = new Command("config", "Validate or show a YAML training config");
        return cmd;
    }
}

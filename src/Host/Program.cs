// The command tree and its error policy live in ScstCli (tests walk the same tree).
return await Scst.Host.ScstCli.RunAsync(args);

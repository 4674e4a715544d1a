using System.Runtime.InteropServices;

namespace Scst.Host;

/// <summary>
/// Ctrl-C and SIGTERM for every command: the first cancels <see cref="Token"/> (the token System.CommandLine hands each
/// command) and the command stops gracefully — a learner completes the update being journaled, writes a checkpoint and
/// tells its workers, which may take a while on a large model. A second signal ends the process at once: journal events
/// and checkpoints are written atomically, so what is on disk stays consistent and the same command resumes.
/// </summary>
public static class StopSignals
{
    static readonly CancellationTokenSource First = new();
    static int _signals;

    public static CancellationToken Token => First.Token;

    public static IDisposable Install() =>
        new Registrations([.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM }.Select(s => PosixSignalRegistration.Create(s, OnSignal))]);

    static void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _signals) == 1)
        {
            context.Cancel = true; // the runtime's default would end the process (and run Akka's shutdown hook) right away
            First.Cancel();
            return;
        }
        Console.Error.WriteLine($"{context.Signal} again: exiting now (journal and checkpoints on disk stay consistent; the same command resumes)");
        Environment.Exit(context.Signal == PosixSignal.SIGINT ? 130 : 143);
    }

    sealed class Registrations(PosixSignalRegistration[] all) : IDisposable
    {
        public void Dispose()
        {
            foreach (var r in all) r.Dispose();
        }
    }
}

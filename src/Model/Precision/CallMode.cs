using TorchSharp;
using static TorchSharp.torch;

namespace Scst.Model.Precision;

/// <summary>
/// Train/eval mode of the model that is calling, for modules several models share (a frozen T5 or ViT held once per
/// device). A module's own <c>training</c> flag would be whatever the last <c>train()</c>/<c>eval()</c> on any sharer
/// set; dropout inside shared modules asks <see cref="Training"/> instead, which each entry point of the sharing model
/// sets for its own thread.
/// </summary>
public static class CallMode
{
    [ThreadStatic] private static bool? _training;

    /// <summary>The calling model's mode, or <paramref name="own"/> when no sharing model has set one on this thread.</summary>
    public static bool Training(bool own) => _training ?? own;

    public static Scope Enter(bool training) => new(training);

    /// <summary>The mode a sharing model set on this thread (null: none), for re-entering it on another thread or later.</summary>
    public static bool? Current => _training;

    /// <summary>Re-enters a mode read from <see cref="Current"/> (activation checkpointing's recomputation in backward).</summary>
    public static Scope Restore(bool? training) => new(training);

    public readonly struct Scope : IDisposable
    {
        private readonly bool? _previous;
        internal Scope(bool? training) { _previous = _training; _training = training; }
        public void Dispose() => _training = _previous;
    }
}

/// <summary><c>nn.Dropout</c> whose on/off follows <see cref="CallMode"/>.</summary>
public sealed class CallerDropout(double p) : nn.Module<Tensor, Tensor>(nameof(CallerDropout))
{
    public override Tensor forward(Tensor x) => CallMode.Training(training) && p > 0 ? nn.functional.dropout(x, p, true) : x.alias();
}

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
    private static readonly ThreadScoped<bool> Scoped = new();

    /// <summary>The calling model's mode, or <paramref name="own"/> when no sharing model has set one on this thread.</summary>
    public static bool Training(bool own) => Scoped.Value ?? own;

    public static ThreadScoped<bool>.Scope Enter(bool training) => Scoped.Enter(training);

    /// <summary>The mode a sharing model set on this thread (null: none), for re-entering it on another thread or later.</summary>
    public static bool? Current => Scoped.Value;

    /// <summary>Re-enters a mode read from <see cref="Current"/> (activation checkpointing's recomputation in backward).</summary>
    public static ThreadScoped<bool>.Scope Restore(bool? training) => Scoped.Enter(training);
}

/// <summary><c>nn.Dropout</c> whose on/off follows <see cref="CallMode"/>.</summary>
public sealed class CallerDropout(double p) : nn.Module<Tensor, Tensor>(nameof(CallerDropout))
{
    public override Tensor forward(Tensor x) => CallMode.Training(training) && p > 0 ? nn.functional.dropout(x, p, true) : x.alias();
}

namespace Scst.Model.Precision;

/// <summary>
/// A setting that holds for the current thread inside a <c>using</c> block and reverts to the enclosing block's value when
/// it ends: <see cref="Autocast"/>'s matmul dtype and <see cref="CallMode"/>'s train/eval flag, which reach layers deep in
/// the model without being threaded through every <c>forward</c>.
/// </summary>
public sealed class ThreadScoped<T> where T : struct
{
    private readonly ThreadLocal<T?> _value = new();

    /// <summary>This thread's value, or null outside every block.</summary>
    public T? Value => _value.Value;

    /// <summary>Sets <paramref name="value"/> (null: none) for this thread until the returned handle is disposed.</summary>
    public Scope Enter(T? value) => new(this, value);

    public readonly struct Scope : IDisposable
    {
        private readonly ThreadScoped<T> _owner;
        private readonly T? _previous;

        internal Scope(ThreadScoped<T> owner, T? value)
        {
            _owner = owner;
            _previous = owner._value.Value;
            owner._value.Value = value;
        }

        public void Dispose() => _owner._value.Value = _previous;
    }
}

using System.Collections.Concurrent;
using TorchSharp;

namespace Scst.Model;

/// <summary>
/// TorchSharp scalars that live for the whole process. TorchSharp 0.107's scalar operations hand
/// <c>scalar.Handle</c> to native code without keeping the <see cref="Scalar"/> alive, so an implicit conversion
/// (<c>x + eps</c>, <c>t.pow(2)</c>, <c>t == eos</c>) makes a Scalar the GC may finalize — freeing its native memory —
/// while the native op still reads it. The result is a rare native error ("Expected false to be true ... toLong at
/// Scalar.h") that we saw in about 1 of 8 runs of 200 tiny SCST updates. Hot code (every layer, every decoding
/// step) takes its constants from here; a cached Scalar is never finalized. <c>a + b</c> and <c>t.add(s)</c> hide
/// one more temporary (alpha = 1), so hot additions pass <see cref="One"/> as alpha explicitly.
/// </summary>
public static class Scalars
{
    private static readonly ConcurrentDictionary<long, Scalar> Integers = new();
    private static readonly ConcurrentDictionary<long, Scalar> Reals = new(); // keyed by the double's bits

    // After the dictionaries: static fields initialise in text order.
    public static readonly Scalar One = Of(1L);
    private static readonly Scalar True = true.ToScalar(), False = false.ToScalar();

    public static Scalar Of(long value) => Integers.GetOrAdd(value, v => v.ToScalar());

    public static Scalar Of(bool value) => value ? True : False;

    public static Scalar Of(double value) => Reals.GetOrAdd(BitConverter.DoubleToInt64Bits(value), bits => BitConverter.Int64BitsToDouble(bits).ToScalar());
}

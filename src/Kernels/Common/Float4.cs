using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Four packed floats. Loading one through a view marked 16-byte aligned (<c>AsAligned(16)</c>)
/// makes ILGPU emit a single <c>ld.global.v4.f32</c> instead of four scalar loads.
/// </summary>
public struct Float4
{
    /// <summary>Lanes.</summary>
    public float X, Y, Z, W;

    /// <summary>c + a·b, lane by lane (ptxas contracts each lane into one FFMA).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 Fma(Float4 c, float a, Float4 b)
    {
        c.X += a * b.X;
        c.Y += a * b.Y;
        c.Z += a * b.Z;
        c.W += a * b.W;
        return c;
    }

    /// <summary>c·s, lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 Scale(Float4 c, float s)
    {
        c.X *= s;
        c.Y *= s;
        c.Z *= s;
        c.W *= s;
        return c;
    }

    /// <summary>The largest lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly float Max() => IntrinsicMath.Max(IntrinsicMath.Max(X, Y), IntrinsicMath.Max(Z, W));

    /// <summary>The lanes' sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly float Sum() => (X + Y) + (Z + W);

    /// <summary>e^(lane − m), lane by lane; all zeros when m is −∞ (every lane is −∞ then too: a softmax row with nothing
    /// visible yet has probabilities 0, not e^(−∞ + ∞) = NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 ExpMinus(Float4 c, float m)
    {
        if (m == float.NegativeInfinity)
            return default;
        c.X = MathF.Exp(c.X - m);
        c.Y = MathF.Exp(c.Y - m);
        c.Z = MathF.Exp(c.Z - m);
        c.W = MathF.Exp(c.W - m);
        return c;
    }

    /// <summary>
    /// src[at .. at+3], reading only the first <paramref name="valid"/> elements (the rest are 0): one 16-byte load when
    /// <paramref name="vector"/> is set and all four are valid (the caller guarantees 16-byte alignment of <paramref name="at"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 Load(ArrayView<float> src, int at, int valid, int vector)
    {
        if (vector != 0 && valid >= 4)
            return src.Cast<Float4>().AsAligned(16)[at / 4];
        Float4 v = default;
        if (valid > 0) v.X = src[at];
        if (valid > 1) v.Y = src[at + 1];
        if (valid > 2) v.Z = src[at + 2];
        if (valid > 3) v.W = src[at + 3];
        return v;
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Vectorized exp for the exp-bound host code (softmax rows, sigmoid, attention probabilities). The classic range reduction:
/// eˣ = 2ⁿ·eʳ with n = round(x·log₂e) and r = x − n·ln2 (ln2 split in two parts so r is exact to float precision), eʳ by a
/// degree-6 minimax polynomial on |r| ≤ ln2/2 (the Cephes coefficients), 2ⁿ built in the exponent bits. About 1 ulp
/// over the whole range; inputs below −87.34 give exactly 0 (so −inf masks give exact zeros), above 88.72 give +inf.
/// Measured against TensorPrimitives.Exp in the bench (softmax and sigmoid rows of KERNELS.md). Without 256-bit SIMD
/// hardware the span helpers fall back to MathF.Exp per element.
/// </summary>
internal static unsafe class HostMath
{
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float Low = -87.3365447f, High = 88.7228391f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>eˣ lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var clamped = Vector256.Min(Vector256.Max(x, Vector256.Create(Low)), Vector256.Create(High));
        var n = Vector256.Floor(MulAdd(clamped, Vector256.Create(Log2E), Vector256.Create(0.5f)));
        var r = MulAdd(n, Vector256.Create(-Ln2Hi), clamped);
        r = MulAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = MulAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = MulAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = MulAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = MulAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = MulAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = MulAdd(p * r, r, r) + Vector256<float>.One;
        // 2ⁿ: n + 127 in the exponent field. n ≥ −126 after the clamp, so the result stays normal.
        var pow2 = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;
        var result = p * pow2.AsSingle();
        result = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Low)), Vector256<float>.Zero, result);
        result = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(High)), Vector256.Create(float.PositiveInfinity), result);
        // NaN in, NaN out (the clamp above would have turned it into a number).
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), result, x);
    }

    /// <summary>dst[i] = exp(src[i] − shift); returns Σ dst (float lanes, summed in double per block of 128).</summary>
    public static float ExpShiftedSum(float* src, float* dst, int n, float shift)
    {
        int i = 0;
        double total = 0;
        var vs = Vector256.Create(shift);
        while (Vector256.IsHardwareAccelerated && i + 8 <= n)
        {
            var acc = Vector256<float>.Zero;
            for (int end = Math.Min(n - 7, i + 128); i < end; i += 8)
            {
                var e = Exp(Vector256.Load(src + i) - vs);
                Vector256.Store(e, dst + i);
                acc += e;
            }
            total += Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(src[i] - shift);
            dst[i] = e;
            total += e;
        }
        return (float)total;
    }

    /// <summary>dst[i] = 1 / (1 + exp(−src[i])); dst may be src.</summary>
    public static void Sigmoid(float* src, float* dst, int n)
    {
        int i = 0;
        for (; Vector256.IsHardwareAccelerated && i + 8 <= n; i += 8)
        {
            var x = Vector256.Load(src + i);
            Vector256.Store(Vector256<float>.One / (Vector256<float>.One + Exp(-x)), dst + i);
        }
        for (; i < n; i++)
            dst[i] = 1f / (1f + MathF.Exp(-src[i]));
    }
}

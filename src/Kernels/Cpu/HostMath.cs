using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Vectorized exp for the exp-bound host code (softmax rows, sigmoid, attention probabilities). The classic range reduction:
/// eˣ = 2ⁿ·eʳ with n = round(x·log₂e) and r = x − n·ln2 (ln2 split in two parts so r is exact to float precision), eʳ by a
/// degree-5 polynomial on |r| ≤ ln2/2, 2ⁿ built in the exponent bits. Relative error
/// ≤ 2e-7 (measured against double exp); inputs below −87.34 give exactly 0 (so −inf masks give exact
/// zeros), above 88.72 give +inf. 1.4 ns per element on one Zen 1 core against TensorPrimitives.Exp's 2.3 ns. Without AVX2
/// and FMA the span helpers fall back to MathF.Exp per element.
/// </summary>
internal static unsafe class HostMath
{
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float Low = -87.3365447f, High = 88.7228391f, RoundingMagic = 12582912f;
    private const int OneBits = 0x3F800000;

    // eʳ ≈ 1 + r + r²·(P2 + P3·r + P4·r² + P5·r³): a degree-5 fit of relative error on |r| ≤ ln2/2 (least squares at 2000
    // Chebyshev nodes, the near-minimax choice); 1.7e-7 worst case evaluated in float, two FMAs fewer than Cephes' degree 7.
    private const float P2 = 0.49999142572507393f, P3 = 0.16666886383481355f, P4 = 0.041898577938282916f, P5 = 0.008333837950189136f;

    /// <summary>True when the vector path runs (AVX2 and FMA); elsewhere the span helpers use MathF.Exp per element.</summary>
    public static bool Vectorized => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>
    /// eˣ lane by lane (AVX2 + FMA). Inputs are clamped to [−87.34, 88.72] and the three special cases restored by blends:
    /// below the range 0, above it +inf, NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var result = ExpInRange(Avx.Min(Avx.Max(x, Vector256.Create(Low)), Vector256.Create(High)));
        result = Avx.BlendVariable(result, Vector256<float>.Zero, Avx.CompareLessThan(x, Vector256.Create(Low)));
        result = Avx.BlendVariable(result, Vector256.Create(float.PositiveInfinity), Avx.CompareGreaterThan(x, Vector256.Create(High)));
        return Avx.BlendVariable(x, result, Avx.CompareEqual(x, x));
    }

    /// <summary>
    /// eˣ for x ≤ 0 or −inf, never NaN (softmax rows after subtracting their finite maximum): only the lower clamp and its
    /// blend to exact 0 — two fewer blends and one fewer clamp than <see cref="Exp"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ExpNonPositive(Vector256<float> x) =>
        Avx.BlendVariable(ExpInRange(Avx.Max(x, Vector256.Create(Low))), Vector256<float>.Zero, Avx.CompareLessThan(x, Vector256.Create(Low)));

    /// <summary>
    /// eˣ for x already within [−87.34, 88.72]. n is rounded by the 1.5·2²³ trick — x·log₂e + 1.5·2²³ leaves round(x·log₂e)
    /// in the low mantissa bits — which also gives 2ⁿ's exponent field by one shift, saving the round and convert
    /// instructions (30% faster than Vector256.Floor + ConvertToInt32 here, measured).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ExpInRange(Vector256<float> x)
    {
        var t = Fma.MultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(RoundingMagic));
        var n = Avx.Subtract(t, Vector256.Create(RoundingMagic));
        var r = Fma.MultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Fma.MultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Fma.MultiplyAdd(Vector256.Create(P5), r, Vector256.Create(P4));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(P3));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(P2));
        p = Avx.Add(Fma.MultiplyAdd(Avx.Multiply(p, r), r, r), Vector256<float>.One);
        // t's low bits hold n; shifted into the exponent field and added to 1.0f's bits they make 2ⁿ (n ≥ −126 in range).
        var pow2 = Avx2.Add(Avx2.ShiftLeftLogical(t.AsInt32(), 23), Vector256.Create(OneBits)).AsSingle();
        return Avx.Multiply(p, pow2);
    }

    /// <summary>
    /// The largest of x[0..n), NaN when any element is NaN (as TensorPrimitives.Max, which also orders −0 below +0 and costs
    /// 2.5× as much for it; a softmax row needs neither). n ≥ 1.
    /// </summary>
    public static float MaxOrNaN(float* x, int n)
    {
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vectorized && n >= 16)
        {
            // Two accumulators halve the max chain; vmaxps drops a NaN operand, so NaNs are tracked apart as an unordered mask.
            var a = Vector256.Create(float.NegativeInfinity);
            var b = a;
            var nan = Vector256<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var u = Vector256.Load(x + i);
                var v = Vector256.Load(x + i + 8);
                a = Avx.Max(a, u);
                b = Avx.Max(b, v);
                nan = Avx.Or(nan, Avx.CompareUnordered(u, v));
            }
            if (!Avx.TestZ(nan, nan))
                return float.NaN;
            var lanes = Avx.Max(a, b);
            for (int k = 0; k < 8; k++)
                max = MathF.Max(max, lanes[k]);
        }
        for (; i < n; i++)
        {
            float v = x[i];
            if (float.IsNaN(v))
                return float.NaN;
            max = MathF.Max(max, v);
        }
        return max;
    }

    /// <summary>dst[i] = exp(src[i] − shift); returns Σ dst (float lanes, summed in double per block of 128).</summary>
    public static float ExpShiftedSum(float* src, float* dst, int n, float shift) => ExpShiftedSum<Flags.No>(src, dst, n, shift);

    /// <summary>As <see cref="ExpShiftedSum(float*, float*, int, float)"/>; with <typeparamref name="TNonPositive"/> the caller
    /// guarantees src − shift ≤ 0 and no NaN (shift is the finite maximum of src), and the cheaper <see cref="ExpNonPositive"/> runs.</summary>
    public static float ExpShiftedSum<TNonPositive>(float* src, float* dst, int n, float shift) where TNonPositive : struct, IFlag
    {
        int i = 0;
        double total = 0;
        var vs = Vector256.Create(shift);
        while (Vectorized && i + 8 <= n)
        {
            var acc = Vector256<float>.Zero;
            for (int end = Math.Min(n - 7, i + 128); i < end; i += 8)
            {
                var d = Vector256.Load(src + i) - vs;
                var e = default(TNonPositive).Value ? ExpNonPositive(d) : Exp(d);
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
        for (; Vectorized && i + 8 <= n; i += 8)
        {
            var x = Vector256.Load(src + i);
            Vector256.Store(Vector256<float>.One / (Vector256<float>.One + Exp(-x)), dst + i);
        }
        for (; i < n; i++)
            dst[i] = 1f / (1f + MathF.Exp(-src[i]));
    }

    /// <summary>
    /// erfc(|z|) for lanes of |z| (the fit of <see cref="MathFn.Erfc"/>, fractional error below 1.2e-7): t = 1/(1 + |z|/2) and
    /// t·exp(−z² + P(t)) with the degree-9 polynomial evaluated by Horner, the exponential by <see cref="Exp"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ErfcAbs(Vector256<float> az)
    {
        var t = Vector256<float>.One / Fma.MultiplyAdd(az, Vector256.Create(0.5f), Vector256<float>.One);
        var p = Vector256.Create(0.17087277f);
        p = Fma.MultiplyAdd(p, t, Vector256.Create(-0.82215223f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(1.48851587f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(-1.13520398f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(0.27886807f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(-0.18628806f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(0.09678418f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(0.37409196f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(1.00002368f));
        p = Fma.MultiplyAdd(p, t, Vector256.Create(-1.26551223f));
        return t * Exp(Fma.MultiplyAddNegated(az, az, p));
    }

    /// <summary>Φ(x) = ½·erfc(−x/√2) lane by lane, as the GELU structs compute it (both tails at full relative precision).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> NormalCdf(Vector256<float> x)
    {
        var z = x * Vector256.Create(0.70710678118654752f);
        var half = ErfcAbs(Vector256.Abs(z)) * Vector256.Create(0.5f);
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(z, Vector256<float>.Zero), Vector256<float>.One - half, half);
    }

    /// <summary>dst[i] = x·Φ(x) (exact GELU); dst may be x. Lanes agree with <see cref="Activation.GeluErf"/> to float rounding.</summary>
    public static void GeluErf(float* x, float* dst, int n)
    {
        int i = 0;
        for (; Vectorized && i + 8 <= n; i += 8)
        {
            var v = Vector256.Load(x + i);
            Vector256.Store(v * NormalCdf(v), dst + i);
        }
        var op = default(Activation.GeluErf);
        for (; i < n; i++)
            dst[i] = op.Apply(x[i]);
    }

    /// <summary>dst[i] = dy·(Φ(x) + x·φ(x)), the exact GELU's backward; dst may alias dy or x.</summary>
    public static void GeluErfBackward(float* dy, float* x, float* dst, int n)
    {
        int i = 0;
        for (; Vectorized && i + 8 <= n; i += 8)
        {
            var v = Vector256.Load(x + i);
            var density = Exp(v * v * Vector256.Create(-0.5f)) * Vector256.Create(0.3989422804014327f);
            Vector256.Store(Vector256.Load(dy + i) * Fma.MultiplyAdd(v, density, NormalCdf(v)), dst + i);
        }
        var op = default(Activation.GeluErf);
        for (; i < n; i++)
            dst[i] = dy[i] * op.Derivative(x[i]);
    }
}

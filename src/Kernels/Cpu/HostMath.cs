using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Vectorized exp for the exp-bound host code (softmax rows, sigmoid, attention probabilities). The classic range reduction:
/// eˣ = 2ⁿ·eʳ with n = round(x·log₂e) and r = x − n·ln2 (ln2 split in two parts so r is exact to float precision), eʳ by a
/// degree-5 polynomial on |r| ≤ ln2/2, 2ⁿ built in the exponent bits. Relative error ≤ 2e-7 (measured against double exp)
/// from e^−86.99 (1.7e-38, just above float's smallest normal) up to float's overflow at x = 88.72, where +inf begins; below
/// −86.99 the result is exactly 0 (a flush to zero, as GPUs' fast exp do: −inf masks give exact zeros); NaN stays NaN. The
/// special cases cost no compares or blends: they fall out of two clamps and the exponent arithmetic (see <see cref="Parts"/>).
/// About 1.2 ns per element with its row sum (sigmoid 1.15 ns) on one Zen 1 core, against TensorPrimitives.Exp's 2.3 ns.
/// Without AVX2 and FMA the span helpers fall back to MathF.Exp per element.
/// </summary>
internal static unsafe class HostMath
{
    private const float Log2E = 1.44269504088896341f, Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f, RoundingMagic = 12582912f;

    // ln 2 rounded to float (1.9e-9 above it): one FMA reduces r = x − n·ln2 with an error of |n|·1.9e-9, so the result's
    // relative error grows from 1.7e-7 to at most 1.7e-7 + |n|·1.9e-9 (measured: 1.9e-7 for results within e^−14 of 1,
    // 3.9e-7 at the bottom of the range). Softmax and sigmoid take it: their small results weigh nothing beside the large
    // ones, and the saved FMA is 5% of their loops; exp itself keeps the exact two-part reduction.
    private const float Ln2 = 0.693147182f;

    // The clamp keeps n = round(x·log₂e) within [−126, 128], where 2ⁿ⁻¹ is built from exponent bits without wrapping: n = −126
    // gives 2⁻¹²⁷'s field 0, so an exact 0 (everything below −86.99); n = 128 gives 2¹²⁷, and 2eʳ·2¹²⁷ overflows to +inf in
    // the multiply exactly where eˣ leaves float's range.
    private const float Lowest = -87.5f, Highest = 89f;

    // 0.5f's bits: (n << 23) + HalfBits are the bits of 2ⁿ⁻¹.
    private const int HalfBits = 0x3F000000;

    // 2eʳ ≈ 2 + 2r + r²·(C2 + C3·r + C4·r² + C5·r³): twice a degree-5 fit of eʳ's relative error on |r| ≤ ln2/2 (least squares
    // at 2000 Chebyshev nodes, the near-minimax choice; 1.7e-7 worst case evaluated in float). Scaling by 2 is exact, and it
    // lets 2ⁿ⁻¹ stand in for 2ⁿ, which does not exist as a float at n = 128.
    private const float C2 = 2 * 0.49999142572507393f, C3 = 2 * 0.16666886383481355f, C4 = 2 * 0.041898577938282916f, C5 = 2 * 0.008333837950189136f;

    /// <summary>True when the vector path runs (AVX2 and FMA); elsewhere the span helpers use MathF.Exp per element.</summary>
    public static bool Vectorized => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>A mask of the first <paramref name="count"/> lanes (none below 1, all from 16): the masked loads and stores
    /// of a row's last, partial vector.</summary>
    public static Vector512<float> FirstLanes(int count) =>
        Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(count)).AsSingle();

    /// <summary><see cref="FirstLanes"/> for 8-lane vectors (AVX's masked loads and stores read the lanes' sign bits).</summary>
    public static Vector256<float> FirstLanes8(int count) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count)).AsSingle();

    /// <summary>The 16 × 16 matrix in rows <paramref name="a"/>[0..16) transposed in place, with AVX-512: four rounds in which
    /// rows i and i + 8 zip into rows 2i (their first halves) and 2i + 1 (their second halves) — 64 two-source permutes on
    /// rows held in registers (through a scratch array, every permute also loaded two rows and stored one: the depthwise
    /// convolution's transposes were 40% of its time).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose16(Vector512<float>* a)
    {
        var low = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        var high = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        Vector512<float> r0 = a[0], r1 = a[1], r2 = a[2], r3 = a[3], r4 = a[4], r5 = a[5], r6 = a[6], r7 = a[7],
            r8 = a[8], r9 = a[9], r10 = a[10], r11 = a[11], r12 = a[12], r13 = a[13], r14 = a[14], r15 = a[15];
        for (int round = 0; round < 4; round++)
        {
            var s0 = Avx512F.PermuteVar16x32x2(r0, low, r8);
            var s1 = Avx512F.PermuteVar16x32x2(r0, high, r8);
            var s2 = Avx512F.PermuteVar16x32x2(r1, low, r9);
            var s3 = Avx512F.PermuteVar16x32x2(r1, high, r9);
            var s4 = Avx512F.PermuteVar16x32x2(r2, low, r10);
            var s5 = Avx512F.PermuteVar16x32x2(r2, high, r10);
            var s6 = Avx512F.PermuteVar16x32x2(r3, low, r11);
            var s7 = Avx512F.PermuteVar16x32x2(r3, high, r11);
            var s8 = Avx512F.PermuteVar16x32x2(r4, low, r12);
            var s9 = Avx512F.PermuteVar16x32x2(r4, high, r12);
            var s10 = Avx512F.PermuteVar16x32x2(r5, low, r13);
            var s11 = Avx512F.PermuteVar16x32x2(r5, high, r13);
            var s12 = Avx512F.PermuteVar16x32x2(r6, low, r14);
            var s13 = Avx512F.PermuteVar16x32x2(r6, high, r14);
            var s14 = Avx512F.PermuteVar16x32x2(r7, low, r15);
            var s15 = Avx512F.PermuteVar16x32x2(r7, high, r15);
            (r0, r1, r2, r3, r4, r5, r6, r7) = (s0, s1, s2, s3, s4, s5, s6, s7);
            (r8, r9, r10, r11, r12, r13, r14, r15) = (s8, s9, s10, s11, s12, s13, s14, s15);
        }
        (a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]) = (r0, r1, r2, r3, r4, r5, r6, r7);
        (a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]) = (r8, r9, r10, r11, r12, r13, r14, r15);
    }

    /// <summary>
    /// e^(±x) as a product: returns 2eʳ and sets <paramref name="scale"/> = 2ⁿ⁻¹, for x already clamped to [Lowest, Highest]
    /// (negated: to [−Highest, −Lowest]). Sigmoid fuses its 1 + e^−x into the final multiply; <paramref name="negate"/> is a
    /// constant at every call, so the JIT folds the sign into the reduction's FMAs instead of spending a negation.
    /// n is rounded by the 1.5·2²³ trick — x·log₂e + 1.5·2²³ leaves round(x·log₂e) in the low mantissa bits — which also
    /// gives 2ⁿ⁻¹'s exponent field by one shift (30% faster than Vector256.Floor + ConvertToInt32 here, measured).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Parts(Vector256<float> x, bool negate, bool oneStep, out Vector256<float> scale)
    {
        var t = Fma.MultiplyAdd(x, Vector256.Create(negate ? -Log2E : Log2E), Vector256.Create(RoundingMagic));
        var n = Avx.Subtract(t, Vector256.Create(RoundingMagic));
        var ln2 = Vector256.Create(oneStep ? Ln2 : Ln2Hi);
        var r = negate ? Fma.MultiplySubtractNegated(n, ln2, x) : Fma.MultiplyAddNegated(n, ln2, x);
        if (!oneStep)
            r = Fma.MultiplyAddNegated(n, Vector256.Create(Ln2Lo), r);
        var p = Fma.MultiplyAdd(Vector256.Create(C5), r, Vector256.Create(C4));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(C3));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(C2));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(2f));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(2f));
        // t's low bits hold n; shifted into the exponent field (the magic's own bits shift out) and added to 0.5f's they make 2ⁿ⁻¹.
        scale = Avx2.Add(Avx2.ShiftLeftLogical(t.AsInt32(), 23), Vector256.Create(HalfBits)).AsSingle();
        return p;
    }

    // The clamps put the constant first: vmaxps/vminps return their second operand when either is NaN, so a NaN lane passes
    // through both clamps and the polynomial and comes out NaN, with no compare.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Clamp(Vector256<float> x, float low, float high) =>
        Avx.Min(Vector256.Create(high), Avx.Max(Vector256.Create(low), x));

    /// <summary>eˣ lane by lane (AVX2 + FMA): 0 below −86.99, +inf above 88.72, NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x) => Parts(Clamp(x, Lowest, Highest), negate: false, oneStep: false, out var scale) * scale;

    /// <summary>eˣ for x ≤ 0, −inf or NaN (softmax rows after subtracting their finite maximum): the upper clamp is not needed,
    /// and the reduction is the one-FMA one (relative error ≤ 1.7e-7 + |n|·1.9e-9, see <see cref="Ln2"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ExpNonPositive(Vector256<float> x) =>
        Parts(Avx.Max(Vector256.Create(Lowest), x), negate: false, oneStep: true, out var scale) * scale;

    /// <summary>
    /// 1 / (1 + e^−x) lane by lane: one FMA forms the denominator from e^−x's parts, e^−x by the one-FMA reduction (relative
    /// error ≤ 2.9e-7 for |x| ≤ 20, 4.4e-7 in the far tails; measured against double). Exactly 1 above 86.99 and 0 below
    /// −88.72 (where the true value is a subnormal under 2.9e-39); NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sigmoid(Vector256<float> x)
    {
        var p = Parts(Clamp(x, -Highest, -Lowest), negate: true, oneStep: true, out var scale);
        return Vector256<float>.One / Fma.MultiplyAdd(p, scale, Vector256<float>.One);
    }

    /// <summary><see cref="Sigmoid(Vector256{float})"/> of a 16-lane vector, half by half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512.Create(Sigmoid(x.GetLower()), Sigmoid(x.GetUpper()));

    /// <summary>
    /// tanh lane by lane, as <see cref="MathFn.Tanh"/>: the odd series to x⁹ below |x| = 0.25 (no cancellation near 0), else
    /// (1 − t)/(1 + t) with t = e^−2|x| (<see cref="ExpNonPositive"/>) and x's sign; ±1 far out, NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        var x2 = x * x;
        var series = x * Fma.MultiplyAdd(x2, Fma.MultiplyAdd(x2, Fma.MultiplyAdd(x2, Fma.MultiplyAdd(x2, Vector256.Create(0.021869488f),
            Vector256.Create(-0.053968254f)), Vector256.Create(0.13333333f)), Vector256.Create(-0.33333333f)), Vector256<float>.One);
        var t = ExpNonPositive(ax * Vector256.Create(-2f));
        var r = (Vector256<float>.One - t) / (Vector256<float>.One + t);
        var signed = Vector256.ConditionalSelect(Vector256.Create(-0f), x, r);
        return Vector256.ConditionalSelect(Vector256.LessThan(ax, Vector256.Create(0.25f)), series, signed);
    }

    /// <summary>
    /// The largest of x[0..n), NaN when any element is NaN (as TensorPrimitives.Max, which also orders −0 below +0 and costs
    /// 2.5× as much for it; a softmax row needs neither). n ≥ 1.
    /// </summary>
    public static float MaxOrNaN(float* x, int n) => Max<Flags.Yes>(x, n);

    /// <summary>
    /// The largest of x[0..n) for rows whose NaNs the caller catches later (softmax: a NaN reaches the row's sum through the
    /// exp): without NaNs it is the maximum; with them it may be NaN or the largest of the other elements. One vmaxps per
    /// vector, where <see cref="MaxOrNaN"/> also spends a compare and an or on tracking NaN. n ≥ 1.
    /// </summary>
    public static float MaxUnordered(float* x, int n) => Max<Flags.No>(x, n);

    private static float Max<TTrackNaN>(float* x, int n) where TTrackNaN : struct, IFlag
    {
        bool track = default(TTrackNaN).Value;
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
                if (track)
                    nan = Avx.Or(nan, Avx.CompareUnordered(u, v));
            }
            if (track && !Avx.TestZ(nan, nan))
                return float.NaN;
            var lanes = Avx.Max(a, b);
            for (int k = 0; k < 8; k++)
                max = MathF.Max(max, lanes[k]);
        }
        for (; i < n; i++)
        {
            float v = x[i];
            if (track && float.IsNaN(v))
                return float.NaN;
            max = MathF.Max(max, v);
        }
        return max;
    }

    /// <summary>dst[i] = exp(src[i] − shift); returns Σ dst (float lanes, summed in double per block of 256).</summary>
    public static float ExpShiftedSum(float* src, float* dst, int n, float shift) => ExpShiftedSum<Flags.No>(src, dst, n, shift);

    /// <summary>As <see cref="ExpShiftedSum(float*, float*, int, float)"/>; with <typeparamref name="TNonPositive"/> the caller
    /// guarantees src − shift ≤ 0 or NaN (shift is at least every non-NaN element), and the cheaper <see cref="ExpNonPositive"/>
    /// runs. A NaN element makes the sum NaN.</summary>
    public static float ExpShiftedSum<TNonPositive>(float* src, float* dst, int n, float shift) where TNonPositive : struct, IFlag
    {
        int i = 0;
        double total = 0;
        var vs = Vector256.Create(shift);
        while (Vectorized && i + 8 <= n)
        {
            // Two vectors per step with their own accumulators: 2.5% faster on Zen 1 than one (measured on 64K elements).
            var acc = Vector256<float>.Zero;
            var acc2 = Vector256<float>.Zero;
            int end = Math.Min(n, i + 256);
            for (; i + 16 <= end; i += 16)
            {
                acc += ExpShiftedStore<TNonPositive>(src + i, dst + i, vs);
                acc2 += ExpShiftedStore<TNonPositive>(src + i + 8, dst + i + 8, vs);
            }
            if (i + 8 <= end)
            {
                acc += ExpShiftedStore<TNonPositive>(src + i, dst + i, vs);
                i += 8;
            }
            total += Vector256.Sum(acc + acc2);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(src[i] - shift);
            dst[i] = e;
            total += e;
        }
        return (float)total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ExpShiftedStore<TNonPositive>(float* src, float* dst, Vector256<float> shift) where TNonPositive : struct, IFlag
    {
        var d = Vector256.Load(src) - shift;
        var e = default(TNonPositive).Value ? ExpNonPositive(d) : Exp(d);
        Vector256.Store(e, dst);
        return e;
    }

    /// <summary>dst[i] = 1 / (1 + exp(−src[i])); dst may be src.</summary>
    public static void Sigmoid(float* src, float* dst, int n)
    {
        int i = 0;
        for (; Vectorized && i + 8 <= n; i += 8)
        {
            Vector256.Store(Sigmoid(Vector256.Load(src + i)), dst + i);
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

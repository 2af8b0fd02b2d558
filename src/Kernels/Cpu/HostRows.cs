using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Row-wise families on the fast CPU device — softmax, normalization, reductions — each a loop over rows split across
/// cores, with the row itself in vector code (TensorPrimitives, Vector256 loops, <see cref="HostMath.Exp"/> fused with the row sum). A row is read two or three times
/// (statistics, then output); at the sizes these ops see, the row is in L1/L2 after the first pass, so the extra passes
/// cost little against the one pass over memory.
/// </summary>
internal static unsafe class HostRows
{
    /// <summary>Scratch slot for a row's exponentials (log-softmax).</summary>
    private const int RowSlot = 5;

    /// <summary>Scratch slots for the normalization backward's x̂ and dŷ rows (the attention slots: the two never nest).</summary>
    private const int XHatSlot = 6, DyHatSlot = 7;

    /// <summary>Softmax (or log-softmax) of each row of contiguous [rows, cols]; causal rows see columns ≤ row mod rowsPerMatrix + offset.</summary>
    public static void Softmax(float* x, float* o, int rows, int cols, bool log, bool causal, int rowsPerMatrix, int offset)
    {
        HostParallel.For(rows, 4L * cols, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                float* xr = x + (long)r * cols, orow = o + (long)r * cols;
                var xs = new ReadOnlySpan<float>(xr, cols);
                var os = new Span<float>(orow, cols);
                int limit = causal ? Math.Clamp(r % rowsPerMatrix + offset + 1, 0, cols) : cols;
                // A NaN the unordered max passes over reaches the sum through the exp (the row is then NaN, below).
                float max = limit == 0 ? float.NegativeInfinity : HostMath.MaxUnordered(xr, limit);
                if (max == float.NegativeInfinity && !xs[..limit].ContainsAnyExcept(float.NegativeInfinity))
                {
                    // Nothing unmasked (or every value −inf): zeros, −inf for log-softmax, as the GPU kernel.
                    os.Fill(log ? float.NegativeInfinity : 0f);
                    continue;
                }
                if (!float.IsFinite(max))
                {
                    // A NaN in the row, or +inf (inf − inf): the row is NaN, as in the reference.
                    os.Fill(float.NaN);
                    continue;
                }
                float sum = HostMath.ExpShiftedSum<Flags.Yes>(xr, log ? HostScratch.Get(RowSlot, limit) : orow, limit, max);
                if (float.IsNaN(sum))
                {
                    os.Fill(float.NaN);
                    continue;
                }
                if (log)
                {
                    TensorPrimitives.Subtract(xs[..limit], max + MathF.Log(sum), os[..limit]);
                    os[limit..].Fill(float.NegativeInfinity);
                }
                else
                {
                    TensorPrimitives.Multiply(os[..limit], 1f / sum, os[..limit]);
                    os[limit..].Clear();
                }
            }
        });
    }

    /// <summary>
    /// Cross-entropy rows on the host (see <see cref="CrossEntropyKernels"/>): per row the vector max, Σ e^(x − max) through
    /// the row scratch and Σx, then the kernel's own <see cref="CrossEntropyKernels.RowAt"/> writes loss, lse and weight.
    /// </summary>
    public static void CrossEntropy(ILGPU.ArrayView<float> xView, ILGPU.ArrayView<float> target, ILGPU.ArrayView<float> loss, ILGPU.ArrayView<float> lse,
        ILGPU.ArrayView<float> weight, int rows, int classes, int ignoreIndex, float smoothing)
    {
        float* x = HostMemory.Ptr(xView);
        HostParallel.For(rows, 4L * classes, (start, end) =>
        {
            float* scratch = HostScratch.Get(RowSlot, classes);
            for (int r = start; r < end; r++)
            {
                float* row = x + (long)r * classes;
                float max = HostMath.MaxOrNaN(row, classes);
                float sum = float.IsFinite(max) ? HostMath.ExpShiftedSum<Flags.Yes>(row, scratch, classes, max) : float.NaN;
                var stats = new LogitStats { Norm = new MaxSum { Max = max, Sum = sum }, Total = TensorPrimitives.Sum(new ReadOnlySpan<float>(row, classes)) };
                CrossEntropyKernels.RowAt(xView, target, loss, lse, weight, stats, r, classes, ignoreIndex, smoothing);
            }
        });
    }

    /// <summary>
    /// The cross-entropy backward of each row on the host: dx = g_r·e^(x − lse) by the vector exp, minus g_r·ε/C everywhere
    /// and g_r·(1 − ε) at the target; zeros for an ignored row (the same values as <see cref="CrossEntropyKernels.BackwardAt"/>).
    /// </summary>
    public static void CrossEntropyBackward(float* x, float* target, float* lse, float* g, float* dx, int rows, int classes, int ignoreIndex, float smoothing)
    {
        HostParallel.For(rows, 4L * classes, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                var dRow = new Span<float>(dx + (long)r * classes, classes);
                int t = (int)target[r];
                if (t == ignoreIndex)
                {
                    dRow.Clear();
                    continue;
                }
                HostMath.ExpShiftedSum(x + (long)r * classes, dx + (long)r * classes, classes, lse[r]);
                TensorPrimitives.Multiply(dRow, g[r], dRow);
                if (smoothing != 0f)
                    TensorPrimitives.Add(dRow, -g[r] * smoothing / classes, dRow);
                dRow[t] -= g[r] * (1f - smoothing);
            }
        });
    }

    /// <summary>The max backward on the host: each [reduced, inner] block cleared, then each column's gradient written at its argmax row.</summary>
    public static void MaxBackward(float* g, float* index, float* dx, int outer, int reduced, int inner)
    {
        HostParallel.For(outer, 2L * reduced * inner, (start, end) =>
        {
            for (int o = start; o < end; o++)
            {
                float* block = dx + (long)o * reduced * inner;
                new Span<float>(block, reduced * inner).Clear();
                for (int i = 0; i < inner; i++)
                    block[(long)(int)index[o * inner + i] * inner + i] = g[o * inner + i];
            }
        });
    }

    /// <summary>The softmax (or log-softmax) backward of each row of contiguous [rows, cols] (see <see cref="SoftmaxKernels.BackwardRows{TLog}"/>):
    /// the row's Σ g⊙y (or Σ g), then dx = y(g − Σ) or g − eʸΣ.</summary>
    public static void SoftmaxBackward(float* y, float* g, float* dx, int rows, int cols, bool log)
    {
        HostParallel.For(rows, 4L * cols, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                long at = (long)r * cols;
                var ys = new ReadOnlySpan<float>(y + at, cols);
                var gs = new ReadOnlySpan<float>(g + at, cols);
                float dot = log ? TensorPrimitives.Sum(gs) : TensorPrimitives.Dot(gs, ys);
                for (int j = 0; j < cols; j++)
                    dx[at + j] = log ? SoftmaxKernels.BackwardAt<Flags.Yes>(ys[j], gs[j], dot) : SoftmaxKernels.BackwardAt<Flags.No>(ys[j], gs[j], dot);
            }
        });
    }

    /// <summary>
    /// Normalizes every row of <paramref name="layout"/> as the GPU kernel does (see <see cref="NormalizationKernels"/>):
    /// statistics of x − x[row start] (exact for rows on a large common offset), the centred variance in a second pass,
    /// then y = (x − mean)·rstd·γ + β, or x·rstd·γ with rstd = 1/√(mean(x²) + ε) when <paramref name="rms"/>.
    /// A row is SegLen-long contiguous segments SegStride apart; γ/β index = (row mod AffineGroups)·(Cols/Spatial) + j/Spatial.
    /// </summary>
    public static void Normalize(float* x, float* gamma, float* beta, float* y, float* meanOut, float* rstdOut, float* varOut,
        NormLayout layout, float eps, bool rms)
    {
        int cols = layout.Cols, segLen = layout.SegLen, segments = cols / segLen, perAffine = cols / layout.Spatial;
        HostParallel.For(layout.Rows, 8L * cols, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                float* rowStart = x + (long)row * layout.RowStride;
                float shift = rowStart[0];
                double sum = 0;
                for (int s = 0; s < segments; s++)
                    sum += SumShifted(rowStart + (long)s * layout.SegStride, segLen, shift);
                float meanD = (float)(sum / cols);
                double m2 = 0;
                for (int s = 0; s < segments; s++)
                    m2 += SumSquaredDeviation(rowStart + (long)s * layout.SegStride, segLen, shift, meanD);
                // The reported mean is shift + Σ(x − shift)/n added in double: in float the two nearly cancel for a row centred
                // near 0 whose first element is not (the 4099-wide check reached 1.03e-5 at one seed in 60; now at most 4e-6 over 25 seeds).
                float variance = (float)(m2 / cols), mean = (float)(shift + sum / cols);
                // The subtracted centre, as (x − shift) − centre: the shifted mean, or −shift for RMSNorm (no centring).
                float centre, rstd;
                if (rms)
                {
                    centre = -shift;
                    rstd = 1f / MathF.Sqrt(variance + mean * mean + eps);
                }
                else
                {
                    centre = meanD;
                    rstd = 1f / MathF.Sqrt(variance + eps);
                }
                int affineBase = row % layout.AffineGroups * perAffine;
                float* yRow = y + (long)row * layout.RowStride;
                for (int s = 0; s < segments; s++)
                {
                    long at = (long)s * layout.SegStride;
                    int j0 = s * segLen;
                    // Runs of elements sharing one affine entry (Spatial long), or γ/β per element when Spatial = 1.
                    if (layout.Spatial == 1)
                        WriteNormalized(rowStart + at, yRow + at, segLen, shift, centre, rstd,
                            layout.HasGamma != 0 ? gamma + affineBase + j0 : null, layout.HasBeta != 0 ? beta + affineBase + j0 : null);
                    else
                        for (int j = j0; j < j0 + segLen;)
                        {
                            int a = affineBase + j / layout.Spatial;
                            int run = Math.Min(j0 + segLen, (j / layout.Spatial + 1) * layout.Spatial) - j;
                            float g = layout.HasGamma != 0 ? gamma[a] : 1f, b = layout.HasBeta != 0 ? beta[a] : 0f;
                            WriteScaled(rowStart + at + (j - j0), yRow + at + (j - j0), run, shift + centre, rstd * g, b);
                            j += run;
                        }
                }
                meanOut[row] = mean;
                rstdOut[row] = rstd;
                if (layout.HasVar != 0)
                    varOut[row] = variance;
            }
        });
    }

    /// <summary>
    /// The normalization backward of every row of <paramref name="layout"/> (see <see cref="NormalizationKernels.BackwardRows{TRms}"/>):
    /// per row Σdŷ, Σdŷ·x̂ and Σx̂ over its segments, then dx and the dy·x̂ products, runs of elements sharing one γ entry at a time.
    /// </summary>
    public static void NormalizeBackward(float* x, float* gamma, float* dy, float* mean, float* rstd, float* dx, float* product, NormLayout layout, bool rms)
    {
        int cols = layout.Cols, segLen = layout.SegLen, segments = cols / segLen, perAffine = cols / layout.Spatial;
        if (segments == 1 && layout.Spatial == 1 && layout.AffineGroups == 1)
        {
            NormalizeBackwardRows(x, gamma, dy, mean, rstd, dx, product, layout.Rows, cols, layout.RowStride, rms);
            return;
        }
        HostParallel.For(layout.Rows, 12L * cols, (start, end) =>
        {
            for (int row = start; row < end; row++)
            {
                float centre = rms ? 0f : mean[row], r = rstd[row];
                int affineBase = row % layout.AffineGroups * perAffine;
                double sumDy = 0, sumDyX = 0, sumX = 0;
                for (int pass = 0; pass < 2; pass++)
                {
                    // The drift of x̂'s mean from zero (the saved mean's rounding; see NormalizationKernels.BackwardRows), taken out.
                    float drift = rms ? 0f : (float)(sumX / cols);
                    float meanDy = rms ? 0f : (float)(sumDy / cols), meanDyX = (float)((sumDyX - drift * sumDy) / cols);
                    for (int sgm = 0; sgm < segments; sgm++)
                    {
                        long at = (long)row * layout.RowStride + (long)sgm * layout.SegStride;
                        for (int j0 = sgm * segLen, j = j0; j < j0 + segLen;)
                        {
                            // A run of elements that share one γ entry: the whole segment when γ is per element (Spatial = 1 runs of 1).
                            int run = layout.Spatial == 1 ? j0 + segLen - j : Math.Min(j0 + segLen, (j / layout.Spatial + 1) * layout.Spatial) - j;
                            float* xs = x + at + (j - j0), gs = dy + at + (j - j0);
                            float* gam = layout.HasGamma == 0 ? null : gamma + affineBase + j / layout.Spatial;
                            if (pass == 0)
                            {
                                float a = 0, b = 0, c = 0;
                                for (int k = 0; k < run; k++)
                                {
                                    float xHat = (xs[k] - centre) * r, dyHat = gs[k] * (gam == null ? 1f : layout.Spatial == 1 ? gam[k] : gam[0]);
                                    a += dyHat;
                                    b += dyHat * xHat;
                                    c += xHat;
                                }
                                sumDy += a;
                                sumDyX += b;
                                sumX += c;
                            }
                            else
                            {
                                float* ds = dx + at + (j - j0), ps = product + at + (j - j0);
                                for (int k = 0; k < run; k++)
                                {
                                    float xHat = (xs[k] - centre) * r - drift, dyHat = gs[k] * (gam == null ? 1f : layout.Spatial == 1 ? gam[k] : gam[0]);
                                    ds[k] = r * (dyHat - meanDy - xHat * meanDyX);
                                    ps[k] = gs[k] * xHat;
                                }
                            }
                            j += run;
                        }
                    }
                }
            }
        });
    }

    /// <summary>
    /// LayerNorm/RMSNorm rows (one contiguous segment, γ per column) in vector code: x̂ (LayerNorm's recentred on its own mean,
    /// see NormalizationKernels.BackwardRows) and dŷ into per-thread scratch rows, their sums by TensorPrimitives, then dx = rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)) and the products dy·x̂.
    /// </summary>
    private static void NormalizeBackwardRows(float* x, float* gamma, float* dy, float* mean, float* rstd, float* dx, float* product, int rows, int cols, int stride, bool rms)
    {
        HostParallel.For(rows, 12L * cols, (start, end) =>
        {
            var xHat = new Span<float>(HostScratch.Get(XHatSlot, cols), cols);
            var dyHat = new Span<float>(HostScratch.Get(DyHatSlot, cols), cols);
            for (int r = start; r < end; r++)
            {
                long at = (long)r * stride;
                var xs = new ReadOnlySpan<float>(x + at, cols);
                var gs = new ReadOnlySpan<float>(dy + at, cols);
                var ds = new Span<float>(dx + at, cols);
                TensorPrimitives.Subtract(xs, rms ? 0f : mean[r], xHat);
                TensorPrimitives.Multiply(xHat, rstd[r], xHat);
                if (!rms)
                    TensorPrimitives.Subtract(xHat, TensorPrimitives.Sum(xHat) / cols, xHat);
                if (gamma == null)
                    gs.CopyTo(dyHat);
                else
                    TensorPrimitives.Multiply(gs, new ReadOnlySpan<float>(gamma, cols), dyHat);
                float meanDy = rms ? 0f : TensorPrimitives.Sum(dyHat) / cols, meanDyX = TensorPrimitives.Dot(dyHat, xHat) / cols;
                TensorPrimitives.MultiplyAdd(xHat, -meanDyX, dyHat, ds);
                TensorPrimitives.Add(ds, -meanDy, ds);
                TensorPrimitives.Multiply(ds, rstd[r], ds);
                TensorPrimitives.Multiply(gs, xHat, new Span<float>(product + at, cols));
            }
        });
    }

    /// <summary>Σ(x − shift). Blocks of 128 are summed in float vectors and the block sums in double, so long rows lose no
    /// more than a short one (a plain float accumulator drifted to 2.7e-5 relative error on a 4099-wide row's mean). The
    /// total stays double: rounded to float (an ulp of 2.4e-4 at a 4099-wide row's Σ(x − x₀) ≈ −3,700), the mean of a row
    /// centred near 0 missed the 1e-5 check at one seed in about 80.</summary>
    private static double SumShifted(float* p, int n, float shift)
    {
        int i = 0;
        double total = 0;
        var vs = Vector256.Create(shift);
        while (i + 8 <= n)
        {
            var acc = Vector256<float>.Zero;
            for (int end = Math.Min(n - 7, i + 128); i < end; i += 8)
                acc += Vector256.Load(p + i) - vs;
            total += Vector256.Sum(acc);
        }
        for (; i < n; i++)
            total += p[i] - shift;
        return total;
    }

    /// <summary>Σ((x − shift) − meanD)²: the deviation formed from the shifted value, as the GPU's Welford merge sees it.</summary>
    private static double SumSquaredDeviation(float* p, int n, float shift, float meanD)
    {
        int i = 0;
        double total = 0;
        var vs = Vector256.Create(shift);
        var vm = Vector256.Create(meanD);
        while (i + 8 <= n)
        {
            var acc = Vector256<float>.Zero;
            for (int end = Math.Min(n - 7, i + 128); i < end; i += 8)
            {
                var d = Vector256.Load(p + i) - vs - vm;
                acc += d * d;
            }
            total += Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float d = p[i] - shift - meanD;
            total += d * d;
        }
        return total;
    }

    /// <summary>y = ((x − shift) − centre)·rstd·γ + β with γ, β per element (either may be absent).</summary>
    private static void WriteNormalized(float* x, float* y, int n, float shift, float centre, float rstd, float* gamma, float* beta)
    {
        int i = 0;
        var vs = Vector256.Create(shift);
        var vc = Vector256.Create(centre);
        var vr = Vector256.Create(rstd);
        for (; i + 8 <= n; i += 8)
        {
            var v = (Vector256.Load(x + i) - vs - vc) * vr;
            if (gamma != null)
                v *= Vector256.Load(gamma + i);
            if (beta != null)
                v += Vector256.Load(beta + i);
            Vector256.Store(v, y + i);
        }
        for (; i < n; i++)
        {
            float v = (x[i] - shift - centre) * rstd;
            if (gamma != null)
                v *= gamma[i];
            if (beta != null)
                v += beta[i];
            y[i] = v;
        }
    }

    /// <summary>y = (x − offset)·scale + shift over a run sharing one affine entry.</summary>
    private static void WriteScaled(float* x, float* y, int n, float offset, float scale, float shift)
    {
        var xs = new ReadOnlySpan<float>(x, n);
        var ys = new Span<float>(y, n);
        TensorPrimitives.Subtract(xs, offset, ys);
        TensorPrimitives.Multiply(ys, scale, ys);
        TensorPrimitives.Add(ys, shift, ys);
    }

    /// <summary>BatchNorm inference: per channel scale = γ/√(var + ε), shift = β − mean·scale, then y = x·scale + shift over [N, C, spatial].</summary>
    public static void BatchNormInfer(float* x, float* y, float* mean, float* variance, float* gamma, float* beta, int n, int channels, int spatial, float eps)
    {
        HostParallel.For(n * channels, spatial, (start, end) =>
        {
            for (int plane = start; plane < end; plane++)
            {
                int c = plane % channels;
                float scale = 1f / MathF.Sqrt(variance[c] + eps);
                if (gamma != null)
                    scale *= gamma[c];
                float shift = (beta != null ? beta[c] : 0f) - mean[c] * scale;
                var ys = new Span<float>(y + (long)plane * spatial, spatial);
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(x + (long)plane * spatial, spatial), scale, ys);
                TensorPrimitives.Add(ys, shift, ys);
            }
        });
    }

    /// <summary>
    /// Sums (or means) of rows [start, end) of 4 elements (a global pool over 2×2 maps), sixteen rows from four vectors: two
    /// in-lane shuffles and adds leave each row's sum in all four of its lanes, three blends gather one lane of each row into
    /// a vector of 4 × 4 sums and one permute puts them in row order. A sum per row cost ~5 ns: resnet18's last pool (512
    /// channels) and efficientnet's (1,152 channels, five in the model) took 7–12 µs each.
    /// </summary>
    private static void SumRowsOf4(float* x, float* o, int start, int end, bool mean)
    {
        var order = Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        var scale = Vector512.Create(mean ? 0.25f : 1f);
        int r = start;
        for (; r + 16 <= end; r += 16)
        {
            float* p = x + (long)r * 4;
            var a = RowSums4(Vector512.Load(p));
            var b = RowSums4(Vector512.Load(p + 16));
            var c = RowSums4(Vector512.Load(p + 32));
            var d = RowSums4(Vector512.Load(p + 48));
            // Lane 4k + j from vector j: row k of a, b, c, d in turn, then in row order by one permute.
            var mixed = Avx512F.BlendVariable(Avx512F.BlendVariable(a, b, Lanes4(1)), Avx512F.BlendVariable(c, d, Lanes4(3)), Lanes4(2) | Lanes4(3));
            Vector512.Store(Avx512F.PermuteVar16x32(mixed, order) * scale, o + r);
        }
        for (; r < end; r++)
        {
            float* p = x + (long)r * 4;
            float total = (p[0] + p[1]) + (p[2] + p[3]);
            o[r] = mean ? total * 0.25f : total;
        }
    }

    /// <summary>Each group of four lanes' sum in all four of its lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> RowSums4(Vector512<float> v)
    {
        v += Avx512F.Shuffle(v, v, 0b10_11_00_01);
        return v + Avx512F.Shuffle(v, v, 0b01_00_11_10);
    }

    /// <summary>A blend mask selecting lane 4k + j of every group of four.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Lanes4(int j) =>
        Vector512.Equals(Vector512.Create(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3), Vector512.Create(j)).AsSingle();

    /// <summary>
    /// Sums (or means) of rows [start, end) of 8 to 16 elements, one masked vector a row (shorter rows are faster summed
    /// one by one). A global pool over a 2×2 or 4×4 map is a row per channel, where a library sum per row (its fixed cost
    /// ~5 ns) took 3.6 µs for 672 channels of 16.
    /// </summary>
    private static void SumShortRows(float* x, float* o, int start, int end, int reduced, bool mean)
    {
        var mask = HostMath.FirstLanes(reduced);
        for (int r = start; r < end; r++)
        {
            float total = Vector512.Sum(Avx512F.MaskLoad(x + (long)r * reduced, mask, Vector512<float>.Zero));
            // A mean divides as the per-row path's Finish does.
            o[r] = mean ? total / reduced : total;
        }
    }

    /// <summary>Reduces contiguous x seen as [outer, reduced, inner] into o [outer, inner] with <paramref name="op"/>.</summary>
    public static void Reduce<TAcc, TOp>(float* x, float* o, int outer, int reduced, int inner, TOp op)
        where TAcc : unmanaged where TOp : struct, IReduceOp<TAcc>
    {
        bool sum = typeof(TOp) == typeof(ReduceOps.Sum) || typeof(TOp) == typeof(ReduceOps.Mean);
        bool max = typeof(TOp) == typeof(ReduceOps.Max);
        if (inner == 1)
        {
            HostParallel.For(outer, reduced, (start, end) =>
            {
                if (sum && typeof(TAcc) == typeof(float) && reduced is 4 or (>= 8 and <= 16) && HostGemm.Wide && Avx512F.IsSupported)
                {
                    if (reduced == 4)
                        SumRowsOf4(x, o, start, end, typeof(TOp) == typeof(ReduceOps.Mean));
                    else
                        SumShortRows(x, o, start, end, reduced, typeof(TOp) == typeof(ReduceOps.Mean));
                    return;
                }
                for (int r = start; r < end; r++)
                {
                    var row = new ReadOnlySpan<float>(x + (long)r * reduced, reduced);
                    if (sum && typeof(TAcc) == typeof(float))
                    {
                        float total = TensorPrimitives.Sum(row);
                        o[r] = op.Finish(Unsafe.BitCast<float, TAcc>(total), reduced);
                    }
                    else if (max && reduced > 0 && typeof(TAcc) == typeof(float))
                    {
                        float m = Math.Max(float.NegativeInfinity, TensorPrimitives.Max(row));
                        o[r] = op.Finish(Unsafe.BitCast<float, TAcc>(m), reduced);
                    }
                    else if (typeof(TOp) == typeof(ReduceOps.ArgMax) && reduced > 0)
                        o[r] = ArgMaxRow(x + (long)r * reduced, reduced);
                    else
                    {
                        var acc = op.Identity;
                        for (int c = 0; c < reduced; c++)
                            acc = op.Combine(acc, op.Lift(row[c], c));
                        o[r] = op.Finish(acc, reduced);
                    }
                }
            });
            return;
        }
        // Columns: accumulate whole rows of `inner` elements, so each step is a contiguous vector operation.
        HostParallel.For(outer, (long)reduced * inner, (start, end) =>
        {
            for (int p = start; p < end; p++)
            {
                float* src = x + (long)p * reduced * inner;
                var dst = new Span<float>(o + (long)p * inner, inner);
                if ((sum || max) && typeof(TAcc) == typeof(float))
                {
                    if (reduced == 0)
                    {
                        dst.Fill(op.Finish(op.Identity, 0));
                        continue;
                    }
                    new ReadOnlySpan<float>(src, inner).CopyTo(dst);
                    for (int r = 1; r < reduced; r++)
                    {
                        var row = new ReadOnlySpan<float>(src + (long)r * inner, inner);
                        if (sum)
                            TensorPrimitives.Add(dst, row, dst);
                        else
                            TensorPrimitives.Max(dst, row, dst);
                    }
                    if (typeof(TOp) == typeof(ReduceOps.Mean))
                        TensorPrimitives.Divide(dst, reduced, dst);
                    continue;
                }
                if (typeof(TOp) == typeof(ReduceOps.ArgMax) && reduced > 0)
                {
                    ArgMaxColumns(src, reduced, inner, o + (long)p * inner);
                    continue;
                }
                for (int j = 0; j < inner; j++)
                {
                    var acc = op.Identity;
                    for (int r = 0; r < reduced; r++)
                        acc = op.Combine(acc, op.Lift(src[(long)r * inner + j], r));
                    dst[j] = op.Finish(acc, reduced);
                }
            }
        });
    }

    /// <summary>
    /// argmax of a row as <see cref="ReduceOps.ArgMax"/> folds it left to right: the first index of the largest value, where
    /// a NaN wins only at index 0 (nothing compares greater than it) and is passed over elsewhere. Eight lanes each keep their
    /// first strictly greater value, then the lanes' best values, ties to the lowest index: the struct's scalar fold ran 70×
    /// slower than reduce_max (0.42 against 0.006 ms at 64 × 1024).
    /// </summary>
    private static float ArgMaxRow(float* row, int n)
    {
        if (float.IsNaN(row[0]))
            return 0;
        int i = 0, best = 0;
        float bestValue = row[0];
        if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            // Lanes start at −∞ with index n (beaten by any value, tied by none); element 0 joins lane 0 as the fold's start.
            var values = Vector256.Create(float.NegativeInfinity);
            var indices = Vector256.Create(n);
            var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(row + i);
                var greater = Vector256.GreaterThan(v, values);   // false for NaN: passed over
                values = Vector256.ConditionalSelect(greater, v, values);
                indices = Vector256.ConditionalSelect(greater.AsInt32(), lane, indices);
                lane += Vector256.Create(8);
            }
            bestValue = float.NegativeInfinity;
            best = n;
            for (int k = 0; k < 8; k++)
            {
                float value = values.GetElement(k);
                int index = indices.GetElement(k);
                if (value > bestValue || value == bestValue && index < best)
                    (bestValue, best) = (value, index);
            }
            if (best == n)   // every element so far −∞ or NaN: the fold kept element 0
                (bestValue, best) = (row[0], 0);
        }
        for (; i < n; i++)
            if (row[i] > bestValue)
                (bestValue, best) = (row[i], i);
        return best;
    }

    /// <summary>argmax down the columns of a [reduced, inner] block into dst[inner], as <see cref="ArgMaxRow"/> folds a row.</summary>
    private static void ArgMaxColumns(float* src, int reduced, int inner, float* dst)
    {
        var bestValue = new Span<float>(HostScratch.Get(RowSlot, inner), inner);
        new ReadOnlySpan<float>(src, inner).CopyTo(bestValue);
        new Span<float>(dst, inner).Clear();
        for (int r = 1; r < reduced; r++)
        {
            float* row = src + (long)r * inner;
            for (int j = 0; j < inner; j++)
                if (row[j] > bestValue[j])
                {
                    bestValue[j] = row[j];
                    dst[j] = r;
                }
        }
    }
}

using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Runtime.CompilerServices;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Pooling, its gradient, the fold (col2im) and the upsampling gradients on the fast CPU device, one core per plane. Pooling's
/// gradient and the fold scatter: a gradient that several windows (or taps) send to one input is summed by the plane's single
/// thread in a fixed order, deterministic without atomics, instead of the GPU kernels' per-element gather (which re-derives,
/// for every input, the windows that read it through a delegate call and measured 45× slower here). The upsampling gradients
/// gather, as on the GPU, but from tables of the outputs (and weights) that read each input row and column, built once per
/// launch. Windows come from <see cref="PoolingKernels.Window"/>, as on the GPU.
/// </summary>
internal static unsafe class HostPool
{
    /// <summary>
    /// Max pooling with a fixed window: each window's valid rows and columns (the taps outside the padding) are computed once
    /// per launch as tables, so the per-output loop is only the comparisons — the generic loop re-derived the window per
    /// output and ran resnet18's stem pool at 5.5 ns a tap. Ties keep the first tap in row-major order and the first NaN wins,
    /// as in <see cref="PoolingKernels.Window"/>'s GPU loop.
    /// </summary>
    private static void MaxPool2d(float* x, float* o, float* indices, PoolIndex q, int planes)
    {
        var rows = ValidTaps(q.OH, q.StrideH, q.PadH, q.DilationH, q.KH, q.H);
        var cols = ValidTaps(q.OW, q.StrideW, q.PadW, q.DilationW, q.KW, q.W);
        var (owLo, owHi, phaseWidth) = InteriorColumns(q);
        int s = q.StrideW;
        // A tap (load, compare, branch) costs about ten of the vector adds HostParallel's threshold is counted in.
        HostParallel.For(planes, 10L * q.KH * q.KW * q.OH * q.OW, (p0, p1) =>
        {
            float* phases = s > 1 && owHi > owLo ? HostScratch.Get(0, (long)s * q.H * phaseWidth) : null;
            for (int p = p0; p < p1; p++)
            {
                float* xp = x + (long)p * q.H * q.W;
                long outBase = (long)p * q.OH * q.OW;
                if (phases != null)
                    HostConv.SplitPhases(xp, q.H, q.W, s, phases, phaseWidth);
                for (int oh = 0; oh < q.OH; oh++)
                {
                    var (h0, h1) = rows[oh];
                    int ow = 0;
                    for (; ow < q.OW; ow++)
                    {
                        if (ow == owLo && h0 < h1 && owHi > owLo)
                        {
                            // The last vector ends at owHi, overlapping the one before (recomputing the same outputs).
                            for (; ow < owHi; ow = Math.Min(ow + 8, owHi))
                            {
                                int at = Math.Min(ow, owHi - 8);
                                MaxPoolVector(xp, phases, phaseWidth, q, h0, h1, at, o + outBase + (long)oh * q.OW + at, indices + outBase + (long)oh * q.OW + at);
                            }
                        }
                        if (ow >= q.OW)
                            break;
                        var (w0, w1) = cols[ow];
                        float best = float.NegativeInfinity;
                        int bestIndex = -1;
                        for (int ih = h0; ih < h1; ih += q.DilationH)
                        {
                            float* row = xp + (long)ih * q.W;
                            for (int iw = w0; iw < w1; iw += q.DilationW)
                            {
                                float v = row[iw];
                                // The first tap is always taken (bestIndex < 0).
                                if (bestIndex < 0 || Takes(v, best))
                                {
                                    best = v;
                                    bestIndex = ih * q.W + iw;
                                }
                            }
                        }
                        o[outBase + (long)oh * q.OW + ow] = best;
                        indices[outBase + (long)oh * q.OW + ow] = bestIndex;
                    }
                }
            }
        });
    }

    /// <summary>
    /// Max pooling without indices (inference), separably: each input row's maxima over every output's column taps (a row of
    /// OW), then each output row the maximum of its window's rows of those — a 3×3 stride-2 window costs 3 + 1.5 comparisons
    /// per output instead of 9, and no index is tracked. Interior columns run 8 at a time from the stride phases as in
    /// <see cref="MaxPool2d"/>, the column pass's edges and a dilated row per output; NaN propagates (a comparison that is
    /// false both ways takes the NaN). resnet18's 64 × 32×32 stem pool in the model: 60 µs with indices, 44 without.
    /// </summary>
    private static void MaxPool2dValues(float* x, float* o, PoolIndex q, int planes)
    {
        var rows = ValidTaps(q.OH, q.StrideH, q.PadH, q.DilationH, q.KH, q.H);
        var cols = ValidTaps(q.OW, q.StrideW, q.PadW, q.DilationW, q.KW, q.W);
        var (owLo, owHi, phaseWidth) = InteriorColumns(q);
        int s = q.StrideW;
        HostParallel.For(planes, 2L * (q.KH + q.KW) * q.OH * q.OW + q.H * q.W, (p0, p1) =>
        {
            float* phases = s > 1 && owHi > owLo ? HostScratch.Get(0, (long)s * q.H * phaseWidth) : null;
            float* columnMax = HostScratch.Get(1, (long)q.H * q.OW);
            for (int p = p0; p < p1; p++)
            {
                float* xp = x + (long)p * q.H * q.W;
                if (phases != null)
                    HostConv.SplitPhases(xp, q.H, q.W, s, phases, phaseWidth);
                for (int ih = 0; ih < q.H; ih++)
                {
                    float* row = xp + (long)ih * q.W, to = columnMax + (long)ih * q.OW;
                    for (int ow = 0; ow < q.OW; ow++)
                    {
                        if (ow == owLo && owHi > owLo)
                        {
                            // The last vector ends at owHi, overlapping the one before.
                            for (; ow < owHi; ow = Math.Min(ow + 8, owHi))
                            {
                                int at = Math.Min(ow, owHi - 8);
                                var best = Vector256.Create(float.NegativeInfinity);
                                for (int kw = 0; kw < q.KW; kw++)
                                {
                                    int column = at * s - q.PadW + kw;
                                    var v = Vector256.Load(phases == null ? row + column : phases + ((long)(column % s) * q.H + ih) * phaseWidth + column / s);
                                    best = Vector256.ConditionalSelect(Takes(v, best), v, best);
                                }
                                Vector256.Store(best, to + at);
                            }
                            if (ow >= q.OW)
                                break;
                        }
                        var (w0, w1) = cols[ow];
                        float m = float.NegativeInfinity;
                        for (int iw = w0; iw < w1; iw += q.DilationW)
                            m = Takes(row[iw], m) ? row[iw] : m;
                        to[ow] = m;
                    }
                }
                float* op = o + (long)p * q.OH * q.OW;
                for (int oh = 0; oh < q.OH; oh++)
                {
                    var (h0, h1) = rows[oh];
                    float* dst = op + (long)oh * q.OW;
                    int ow = 0;
                    for (; ow + 8 <= q.OW; ow += 8)
                    {
                        var best = Vector256.Create(float.NegativeInfinity);
                        for (int ih = h0; ih < h1; ih += q.DilationH)
                        {
                            var v = Vector256.Load(columnMax + (long)ih * q.OW + ow);
                            best = Vector256.ConditionalSelect(Takes(v, best), v, best);
                        }
                        Vector256.Store(best, dst + ow);
                    }
                    for (; ow < q.OW; ow++)
                    {
                        float m = float.NegativeInfinity;
                        for (int ih = h0; ih < h1; ih += q.DilationH)
                        {
                            float v = columnMax[(long)ih * q.OW + ow];
                            m = Takes(v, m) ? v : m;
                        }
                        dst[ow] = m;
                    }
                }
            }
        });
    }

    /// <summary>
    /// Max pooling without indices at column stride 1 or 2, with AVX-512, an output row at a time: first its window's input
    /// rows reduced to one row (16 columns a vector), then 16 outputs at a time across that row, each column tap one masked
    /// load of the 16 columns it reads (at stride 2 two loads and a permute keeping the even lanes) — KH + KW taps per output
    /// instead of KH·KW. Columns outside the input load as −∞, so the padding needs no case of its own; rows outside it are
    /// skipped. NaN propagates as in <see cref="Takes(Vector512{float}, Vector512{float})"/>. Taking every tap of the window
    /// per output vector (3×3 = 9 loads, permutes and selects) ran resnet18's 64 × 32×32 stem pool in 19.2–22.5 µs against
    /// 18.1–20.0 here, 64 × 112×112 in 179–220 against 134–138, 16 × 13×13 in 3.9 against 3.0–3.2 (in-process A/B); the
    /// separable form before that split each plane into stride phases and walked it in 8-lane vectors and scalar edges.
    /// </summary>
    private static void MaxPool2dRows(float* x, float* o, PoolIndex q, int planes)
    {
        var rows = ValidTaps(q.OH, q.StrideH, q.PadH, q.DilationH, q.KH, q.H);
        int s = q.StrideW, chunks = (q.OW + 15) / 16, across = (q.W + 15) / 16;
        HostParallel.For(planes, 2L * (q.KH * q.W + q.KW * q.OW) * q.OH, (p0, p1) =>
        {
            var iota = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var evens = iota * 2;
            var lowest = Vector512.Create(float.NegativeInfinity);
            // One output row's window rows reduced to one input row, 16 columns at a time (the last vector masked).
            float* down = HostScratch.Get(0, 16L * across);
            for (int p = p0; p < p1; p++)
            {
                float* xp = x + (long)p * q.H * q.W, op = o + (long)p * q.OH * q.OW;
                for (int oh = 0; oh < q.OH; oh++)
                {
                    var (h0, h1) = rows[oh];
                    for (int a = 0; a < across; a++)
                    {
                        var best = lowest;
                        for (int ih = h0; ih < h1; ih += q.DilationH)
                        {
                            var v = Columns(xp + (long)ih * q.W, 16 * a, q.W, iota, lowest);
                            best = Vector512.ConditionalSelect(Takes(v, best), v, best);
                        }
                        Vector512.Store(best, down + 16 * a);
                    }
                    for (int chunk = 0; chunk < chunks; chunk++)
                    {
                        int ow0 = chunk * 16;
                        var best = lowest;
                        for (int kw = 0; kw < q.KW; kw++)
                        {
                            // Lane j reads column (ow0 + j)·s − PadW + kw·DilationW of the reduced row.
                            int start = ow0 * s - q.PadW + kw * q.DilationW;
                            var v = Columns(down, start, q.W, iota, lowest);
                            if (s == 2)
                                v = Avx512F.PermuteVar16x32x2(v, evens, Columns(down, start + 16, q.W, iota, lowest));
                            best = Vector512.ConditionalSelect(Takes(v, best), v, best);
                        }
                        Avx512F.MaskStore(op + (long)oh * q.OW + ow0, HostMath.FirstLanes(q.OW - ow0), best);
                    }
                }
            }
        });
    }

    /// <summary>Columns start .. start + 15 of a row of <paramref name="width"/>, −∞ where outside it (masked lanes are not read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Columns(float* row, int start, int width, Vector512<int> iota, Vector512<float> lowest)
    {
        if (start >= 0 && start + 16 <= width)
            return Vector512.Load(row + start);
        var column = iota + Vector512.Create(start);
        var inside = Vector512.GreaterThanOrEqual(column, Vector512<int>.Zero) & Vector512.LessThan(column, Vector512.Create(width));
        return Avx512F.MaskLoad(row + start, inside.AsSingle(), lowest);
    }

    /// <summary><see cref="Takes(float, float)"/> per lane.</summary>
    private static Vector512<float> Takes(Vector512<float> v, Vector512<float> best) =>
        Vector512.GreaterThan(v, best) | (~Vector512.Equals(v, v) & Vector512.Equals(best, best));

    /// <summary>
    /// Outputs ow .. ow + 7 of one output row, all of whose column taps lie inside the input, over the valid tap rows
    /// [h0, h1): the same row-major order and the same rule as the per-output loop (strictly larger, or NaN over a number),
    /// so ties and NaNs resolve alike. <paramref name="phases"/> is null at stride 1 (the row itself is read).
    /// </summary>
    private static void MaxPoolVector(float* xp, float* phases, int phaseWidth, PoolIndex q, int h0, int h1, int ow, float* o, float* indices)
    {
        int s = q.StrideW;
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * s;
        Vector256<float> best = default;
        Vector256<int> at = default;
        bool first = true;
        for (int ih = h0; ih < h1; ih += q.DilationH)
            for (int kw = 0; kw < q.KW; kw++)
            {
                // Input column of output ow + l at tap kw: (ow + l)·s − PadW + kw; its phase is the same for all l.
                int column = ow * s - q.PadW + kw;
                float* from = phases == null
                    ? xp + (long)ih * q.W + column
                    : phases + ((long)(column % s) * q.H + ih) * phaseWidth + column / s;
                var v = Vector256.Load(from);
                var index = Vector256.Create(ih * q.W + column) + lane;
                if (first)
                {
                    (best, at, first) = (v, index, false);
                    continue;
                }
                var take = Takes(v, best);
                best = Vector256.ConditionalSelect(take, v, best);
                at = Vector256.ConditionalSelect(take.AsInt32(), index, at);
            }
        Vector256.Store(best, o);
        Vector256.Store(Vector256.ConvertToSingle(at), indices);
    }

    /// <summary>
    /// The output columns [Lo, Hi) whose every column tap lies inside the input, when the columns step by 1 and there are at
    /// least 8 of them (else Hi = Lo): they run 8 at a time in vectors from the row split into stride phases (column c to phase
    /// c mod stride, index c / stride, each phase <c>PhaseWidth</c> floats a row), so a tap's column for 8 consecutive outputs
    /// is one contiguous run of its phase. The edges stay on the per-output loop.
    /// </summary>
    private static (int Lo, int Hi, int PhaseWidth) InteriorColumns(PoolIndex q)
    {
        int s = q.StrideW, lo = (q.PadW + s - 1) / s, last = q.W - 1 + q.PadW - (q.KW - 1);
        int hi = q.DilationW != 1 || last < 0 ? lo : Math.Clamp(last / s + 1, lo, q.OW);
        return (lo, hi - lo >= 8 ? hi : lo, (q.W + s - 1) / s + 8);
    }

    /// <summary>Whether a max pool takes v over the best so far: larger, or NaN over a number (so NaN propagates and the first
    /// NaN of a window stays).</summary>
    private static bool Takes(float v, float best) => v > best || (float.IsNaN(v) && !float.IsNaN(best));

    /// <summary><see cref="Takes(float, float)"/> per lane.</summary>
    private static Vector256<float> Takes(Vector256<float> v, Vector256<float> best) =>
        Vector256.GreaterThan(v, best) | (~Vector256.Equals(v, v) & Vector256.Equals(best, best));

    /// <summary>For each output position along one axis, its first and one-past-last tap inside the input (stepping by
    /// <paramref name="dilation"/> from the first).</summary>
    private static (int Start, int End)[] ValidTaps(int outputs, int stride, int pad, int dilation, int kernel, int size)
    {
        var taps = new (int, int)[outputs];
        for (int i = 0; i < outputs; i++)
        {
            int start = i * stride - pad, end = start + (kernel - 1) * dilation + 1;
            while (start < 0)
                start += dilation;
            taps[i] = (start, Math.Min(end, size));
        }
        return taps;
    }

    /// <summary>Max (with flat argmax indices, or none when <paramref name="indices"/> is null) or average pooling of
    /// <paramref name="planes"/> planes.</summary>
    public static void Pool2d(float* x, float* o, float* indices, PoolIndex q, int planes, bool max)
    {
        if (max && q.Adaptive == 0)
        {
            if (indices == null && q.StrideW <= 2 && HostGemm.Wide && Avx512F.IsSupported)
                MaxPool2dRows(x, o, q, planes);
            else if (indices == null)
                MaxPool2dValues(x, o, q, planes);
            else
                MaxPool2d(x, o, indices, q, planes);
            return;
        }
        long window = q.Adaptive != 0 ? (long)q.H * q.W / Math.Max(q.OH * q.OW, 1) + 1 : (long)q.KH * q.KW;
        HostParallel.For(planes, window * q.OH * q.OW, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float* xp = x + (long)p * q.H * q.W;
                long outBase = (long)p * q.OH * q.OW;
                for (int oh = 0; oh < q.OH; oh++)
                    for (int ow = 0; ow < q.OW; ow++)
                    {
                        var w = PoolingKernels.Window(q, oh, ow);
                        int h0 = w.Hs, w0 = w.Ws;
                        // Skip the taps in the padding: first tap inside the input, last one before its end.
                        while (h0 < 0) h0 += w.Dh;
                        while (w0 < 0) w0 += w.Dw;
                        int h1 = Math.Min(w.He, q.H), w1 = Math.Min(w.We, q.W);
                        float best = float.NegativeInfinity, sum = 0f;
                        int bestIndex = -1;
                        for (int ih = h0; ih < h1; ih += w.Dh)
                        {
                            float* row = xp + (long)ih * q.W;
                            for (int iw = w0; iw < w1; iw += w.Dw)
                            {
                                float v = row[iw];
                                if (max)
                                {
                                    if (bestIndex < 0 || Takes(v, best))
                                    {
                                        best = v;
                                        bestIndex = ih * q.W + iw;
                                    }
                                }
                                else
                                    sum += v;
                            }
                        }
                        long at = outBase + oh * q.OW + ow;
                        if (max)
                        {
                            o[at] = best;
                            indices[at] = bestIndex;
                        }
                        else
                            o[at] = sum / w.Divisor;
                    }
            }
        });
    }

    /// <summary>The pooling gradient: each plane's dx cleared, then every output's gradient added to the input its index names
    /// (max) or spread over its window's valid taps divided by the forward's divisor (average).</summary>
    public static void Pool2dBackward(float* dy, float* indices, float* dx, PoolIndex q, int planes, bool max)
    {
        long window = max ? 1 : q.Adaptive != 0 ? (long)q.H * q.W / Math.Max(q.OH * q.OW, 1) + 1 : (long)q.KH * q.KW;
        HostParallel.For(planes, window * q.OH * q.OW + (long)q.H * q.W, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float* dxp = dx + (long)p * q.H * q.W;
                new Span<float>(dxp, q.H * q.W).Clear();
                long outBase = (long)p * q.OH * q.OW;
                for (int oh = 0; oh < q.OH; oh++)
                    for (int ow = 0; ow < q.OW; ow++)
                    {
                        long at = outBase + oh * q.OW + ow;
                        if (max)
                        {
                            int index = (int)indices[at];
                            if (index >= 0)
                                dxp[index] += dy[at];
                            continue;
                        }
                        var w = PoolingKernels.Window(q, oh, ow);
                        float share = dy[at] / w.Divisor;
                        for (int ih = Math.Max(w.Hs, 0); ih < Math.Min(w.He, q.H); ih++)
                            for (int iw = Math.Max(w.Ws, 0); iw < Math.Min(w.We, q.W); iw++)
                                dxp[ih * q.W + iw] += share;
                    }
            }
        });
    }

    /// <summary>
    /// Nearest upsampling's gradient as a gather: every input element sums the outputs whose source it is — a run of output
    /// rows times a run of output columns, the runs tabulated once from the forward's float32 source indices.
    /// </summary>
    public static void NearestBackward(float* dy, float* dx, int h, int w, int oh, int ow, int planes)
    {
        var (rowStart, rowEnd) = Runs(h, oh);
        var (colStart, colEnd) = Runs(w, ow);
        HostParallel.For(planes, (long)oh * ow + (long)h * w, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float* dxp = dx + (long)p * h * w, dyp = dy + (long)p * oh * ow;
                for (int iy = 0; iy < h; iy++)
                    for (int ix = 0; ix < w; ix++)
                    {
                        float sum = 0f;
                        for (int oy = rowStart[iy]; oy < rowEnd[iy]; oy++)
                        {
                            float* row = dyp + (long)oy * ow;
                            for (int ox = colStart[ix]; ox < colEnd[ix]; ox++)
                                sum += row[ox];
                        }
                        dxp[iy * w + ix] = sum;
                    }
            }
        });
    }

    /// <summary>For each input index, the run [start, end) of outputs whose nearest source it is (the source grows with the output).</summary>
    private static (int[] Start, int[] End) Runs(int size, int outSize)
    {
        float scale = (float)size / outSize;
        var start = new int[size];
        var end = new int[size];
        for (int o = 0; o < outSize; o++)
        {
            int source = Math.Min((int)MathF.Floor(o * scale), size - 1);
            if (end[source] == 0)
                start[source] = o;
            end[source] = o + 1;
        }
        return (start, end);
    }

    /// <summary>
    /// Bilinear upsampling's gradient as a gather: every input element sums (row weight)·(column weight)·dy over the outputs
    /// that read it; for each input row (and column) the outputs reading it and their weights are tabulated once from the
    /// forward's float32 formulas.
    /// </summary>
    public static void BilinearBackward(float* dy, float* dx, int h, int w, int oh, int ow, int alignCorners, int planes)
    {
        var rows = Readers(h, oh, alignCorners);
        var cols = Readers(w, ow, alignCorners);
        HostParallel.For(planes, 4L * oh * ow + (long)h * w, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float* dxp = dx + (long)p * h * w, dyp = dy + (long)p * oh * ow;
                for (int iy = 0; iy < h; iy++)
                    for (int ix = 0; ix < w; ix++)
                    {
                        float sum = 0f;
                        foreach (var (oy, wy) in rows[iy])
                        {
                            float* row = dyp + (long)oy * ow;
                            float inner = 0f;
                            foreach (var (ox, wx) in cols[ix])
                                inner += wx * row[ox];
                            sum += wy * inner;
                        }
                        dxp[iy * w + ix] = sum;
                    }
            }
        });
    }

    /// <summary>For each input index, the outputs that read it with their interpolation weights (1 − λ for the lower neighbour,
    /// λ for the upper, both at the last index), in output order.</summary>
    private static (int Output, float Weight)[][] Readers(int size, int outSize, int alignCorners)
    {
        float scale = alignCorners != 0 ? (outSize > 1 ? (float)(size - 1) / (outSize - 1) : 0f) : (float)size / outSize;
        var readers = Enumerable.Range(0, size).Select(_ => new List<(int, float)>()).ToArray();
        for (int o = 0; o < outSize; o++)
        {
            float src = alignCorners != 0 ? o * scale : Math.Max((o + 0.5f) * scale - 0.5f, 0f);
            int lo = (int)src, hi = lo + (lo < size - 1 ? 1 : 0);
            float lambda = src - lo;
            if (hi == lo)
                readers[lo].Add((o, 1f));
            else
            {
                readers[lo].Add((o, 1 - lambda));
                readers[hi].Add((o, lambda));
            }
        }
        return readers.Select(r => r.ToArray()).ToArray();
    }

    /// <summary>
    /// The fold: image planes [N, C, outH, outW] from columns [N, groups, (C/groups)·KH·KW, H·W] (the kernel positions H×W of
    /// <paramref name="index"/>), each plane cleared then every column entry added to the pixel its tap lands on, plus the bias
    /// and the activation. One core per image plane.
    /// </summary>
    public static void Col2Im<TAct>(float* col, float* bias, float* o, ConvIndex index, int n, int outH, int outW, int channels, int groups, bool hasBias, TAct act)
        where TAct : struct, IUnaryOp
    {
        int positions = index.H * index.W, taps = index.KH * index.KW;
        HostParallel.For(n * channels, (long)taps * positions + (long)outH * outW, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                int c = p % channels;
                float* plane = o + (long)p * outH * outW;
                new Span<float>(plane, outH * outW).Fill(hasBias ? bias[c] : 0f);
                // Column rows of this plane's channel: (c·KH + kh)·KW + kw within the [N, groups, ...] layout, which is
                // [N, C·KH·KW, positions] in the same order.
                float* rows = col + (long)p * taps * positions;
                for (int kh = 0; kh < index.KH; kh++)
                    for (int kw = 0; kw < index.KW; kw++)
                    {
                        float* row = rows + (long)(kh * index.KW + kw) * positions;
                        for (int ph = 0; ph < index.H; ph++)
                        {
                            int y = ph * index.StrideH - index.PadTop + kh * index.DilationH;
                            if (y < 0 || y >= outH)
                                continue;
                            float* target = plane + (long)y * outW;
                            float* source = row + (long)ph * index.W;
                            for (int pw = 0; pw < index.W; pw++)
                            {
                                int x = pw * index.StrideW - index.PadLeft + kw * index.DilationW;
                                if ((uint)x < (uint)outW)
                                    target[x] += source[pw];
                            }
                        }
                    }
                if (typeof(TAct) != typeof(ElementwiseOps.Identity))
                    for (int i = 0; i < outH * outW; i++)
                        plane[i] = act.Apply(plane[i]);
            }
        });
    }
}

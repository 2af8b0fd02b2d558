namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Pooling, upsampling gradients and the fold (col2im) on the fast CPU device: one core owns whole planes, so a gradient that
/// several windows (or taps, or outputs) send to one input is summed by a single thread in a fixed order — the scatter form,
/// run deterministically without atomics, instead of the GPU kernels' gather (which re-derives, for every input, the windows
/// that read it and is several times slower on a CPU). Windows come from <see cref="PoolingKernels.Window"/>, as on the GPU.
/// </summary>
internal static unsafe class HostPool
{
    /// <summary>Max (with flat argmax indices) or average pooling of <paramref name="planes"/> planes.</summary>
    public static void Pool2d(float* x, float* o, float* indices, PoolIndex q, int planes, bool max)
    {
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
                                    if (bestIndex < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best)))
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

    /// <summary>Nearest upsampling's gradient: each plane's dx cleared, then every output's gradient added to its source.</summary>
    public static void NearestBackward(float* dy, float* dx, int h, int w, int oh, int ow, int planes)
    {
        float scaleH = (float)h / oh, scaleW = (float)w / ow;
        var sourceRow = new int[oh];
        var sourceCol = new int[ow];
        for (int i = 0; i < oh; i++)
            sourceRow[i] = Math.Min((int)MathF.Floor(i * scaleH), h - 1);
        for (int j = 0; j < ow; j++)
            sourceCol[j] = Math.Min((int)MathF.Floor(j * scaleW), w - 1);
        HostParallel.For(planes, (long)oh * ow + (long)h * w, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float* dxp = dx + (long)p * h * w, dyp = dy + (long)p * oh * ow;
                new Span<float>(dxp, h * w).Clear();
                for (int i = 0; i < oh; i++)
                {
                    float* target = dxp + (long)sourceRow[i] * w;
                    float* source = dyp + (long)i * ow;
                    for (int j = 0; j < ow; j++)
                        target[sourceCol[j]] += source[j];
                }
            }
        });
    }

    /// <summary>Bilinear upsampling's gradient: each plane's dx cleared, then every output's gradient added to its four
    /// neighbours with the forward's float32 weights (the rows' and columns' neighbours and weights computed once).</summary>
    public static void BilinearBackward(float* dy, float* dx, int h, int w, int oh, int ow, int alignCorners, int planes)
    {
        var (row0, row1, rowLambda) = Neighbours(h, oh, alignCorners);
        var (col0, col1, colLambda) = Neighbours(w, ow, alignCorners);
        HostParallel.For(planes, 4L * oh * ow + (long)h * w, (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
            {
                float* dxp = dx + (long)p * h * w, dyp = dy + (long)p * oh * ow;
                new Span<float>(dxp, h * w).Clear();
                for (int i = 0; i < oh; i++)
                {
                    float ly = rowLambda[i];
                    float* top = dxp + (long)row0[i] * w, bottom = dxp + (long)row1[i] * w, source = dyp + (long)i * ow;
                    for (int j = 0; j < ow; j++)
                    {
                        float g = source[j], lx = colLambda[j];
                        top[col0[j]] += (1 - ly) * (1 - lx) * g;
                        top[col1[j]] += (1 - ly) * lx * g;
                        bottom[col0[j]] += ly * (1 - lx) * g;
                        bottom[col1[j]] += ly * lx * g;
                    }
                }
            }
        });
    }

    /// <summary>The lower and upper source index and the blend weight of every output row (or column), as the forward computes them.</summary>
    private static (int[] Lo, int[] Hi, float[] Lambda) Neighbours(int size, int outSize, int alignCorners)
    {
        float scale = alignCorners != 0 ? (outSize > 1 ? (float)(size - 1) / (outSize - 1) : 0f) : (float)size / outSize;
        var lo = new int[outSize];
        var hi = new int[outSize];
        var lambda = new float[outSize];
        for (int o = 0; o < outSize; o++)
        {
            float src = alignCorners != 0 ? o * scale : Math.Max((o + 0.5f) * scale - 0.5f, 0f);
            lo[o] = (int)src;
            hi[o] = lo[o] + (lo[o] < size - 1 ? 1 : 0);
            lambda[o] = src - lo[o];
        }
        return (lo, hi, lambda);
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

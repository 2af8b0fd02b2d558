namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Convolution on the fast CPU device: per image, im2col into a per-thread column buffer (Cg·KH·KW × OH·OW floats,
/// reused, never the whole batch's), then <see cref="HostGemm"/> per group with the bias per output channel and the
/// activation in its epilogue. The column rows are built a run of output pixels at a time: for a tap (c, kh, kw) and
/// an output row, the valid output columns form one interval (computed, not tested per pixel), copied with a block
/// copy at stride 1, zero-filled outside. Small images run one image per core; large ones split the GEMM instead.
/// </summary>
internal static unsafe class HostConv
{
    /// <summary>Scratch slot of the column buffer (slots 0–3 belong to the GEMM).</summary>
    private const int ColumnSlot = 4;

    /// <summary>col[(c, kh, kw), pixel] for one image of <paramref name="channels"/> planes of H·W at <paramref name="x"/>;
    /// with <paramref name="parallel"/>, channels are split across the cores (each writes its own rows).</summary>
    public static void Im2Col(float* x, float* col, ConvIndex ix, int channels, int oh, int ow, bool parallel = false)
    {
        if (parallel)
        {
            HostParallel.For(channels, (long)ix.KH * ix.KW * oh * ow, (c0, c1) => Im2Col(x, col, ix, c0, c1, oh, ow));
            return;
        }
        Im2Col(x, col, ix, 0, channels, oh, ow);
    }

    private static void Im2Col(float* x, float* col, ConvIndex ix, int c0, int c1, int oh, int ow)
    {
        int pixels = oh * ow;
        float* dst = col + (long)c0 * ix.KH * ix.KW * pixels;
        for (int c = c0; c < c1; c++)
        {
            float* plane = x + (long)c * ix.H * ix.W;
            for (int kh = 0; kh < ix.KH; kh++)
                for (int kw = 0; kw < ix.KW; kw++, dst += pixels)
                {
                    int colOffset = kw * ix.DilationW - ix.PadLeft;
                    // Output columns whose input column iw = ow·stride + colOffset lies in [0, W).
                    int lo = colOffset >= 0 ? 0 : (-colOffset + ix.StrideW - 1) / ix.StrideW;
                    int hi = ix.W - 1 - colOffset < 0 ? -1 : Math.Min(ow - 1, (ix.W - 1 - colOffset) / ix.StrideW);
                    if (hi < lo)
                        (lo, hi) = (0, -1);
                    for (int r = 0; r < oh; r++)
                    {
                        float* row = dst + r * ow;
                        int ih = r * ix.StrideH - ix.PadTop + kh * ix.DilationH;
                        if (ih < 0 || ih >= ix.H || hi < lo)
                        {
                            new Span<float>(row, ow).Clear();
                            continue;
                        }
                        float* src = plane + (long)ih * ix.W + colOffset;
                        for (int j = 0; j < lo; j++)
                            row[j] = 0;
                        if (ix.StrideW == 1)
                            new ReadOnlySpan<float>(src + lo, hi - lo + 1).CopyTo(new Span<float>(row + lo, hi - lo + 1));
                        else
                            for (int j = lo; j <= hi; j++)
                                row[j] = src[(long)j * ix.StrideW];
                        for (int j = hi + 1; j < ow; j++)
                            row[j] = 0;
                    }
                }
        }
    }

    /// <summary>
    /// out[n, g·Kg + m, pixel] = act(Σ w[g·Kg + m, k]·col_n,g[k, pixel] + bias) for input x [N, C, H, W] (contiguous) and
    /// weights [K, Cg·KH·KW]; <paramref name="p"/> is the per-(image, group) GEMM with the bias per row.
    /// </summary>
    public static void Conv2d<TAct>(float* x, float* w, float* output, float* bias, Conv2dGeometry g, GemmParams p, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int groups = g.Options.Groups, pixels = g.OH * g.OW, cgkk = g.Cg * g.KH * g.KW;
        var ix = g.Index;
        var layoutA = Layout6.Create("conv2d", new[] { groups }, new[] { g.Kg * cgkk });
        var layoutB = Layout6.Create("conv2d", new[] { groups }, new[] { cgkk * pixels });
        long perImage = (long)g.K * pixels * cgkk;
        bool perCore = g.N > 1 && perImage < (1 << 22);
        void Images(int start, int end)
        {
            float* col = HostScratch.Get(ColumnSlot, (long)g.C * g.KH * g.KW * pixels);
            for (int n = start; n < end; n++)
            {
                Im2Col(x + (long)n * g.C * g.H * g.W, col, ix, g.C, g.OH, g.OW, parallel: !perCore);
                HostGemm.Run(w, col, output + (long)n * g.K * pixels, bias, p, layoutA, layoutB, groups, act, parallel: !perCore);
            }
        }
        if (perCore)
            HostParallel.For(g.N, perImage, Images);
        else
            Images(0, g.N);
    }
}

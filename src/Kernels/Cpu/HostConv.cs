namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Convolution on the fast CPU device: per image, im2col into a per-thread column buffer (Cg·KH·KW × OH·OW floats,
/// reused, never the whole batch's), then <see cref="HostGemm"/> per group with the bias per output channel and the
/// activation in its epilogue. The column rows are built a run of output pixels at a time: for a tap (c, kh, kw) and
/// an output row, the valid output columns form one interval (computed, not tested per pixel), copied with a block
/// copy at stride 1, zero-filled outside. A batch of small images runs one image per core; otherwise each image's output
/// rows are split across the cores.
/// </summary>
internal static unsafe class HostConv
{
    /// <summary>Scratch slot of the column buffer (slots 0–3 belong to the GEMM).</summary>
    private const int ColumnSlot = 4;

    /// <summary>Scratch slot of a core's output rows before they are copied into the image's output.</summary>
    private const int TileSlot = 8;

    /// <summary>col[(c, kh, kw), pixel] for one image of <paramref name="channels"/> planes of H·W at <paramref name="x"/>;
    /// with <paramref name="parallel"/>, channels are split across the cores (each writes its own rows).</summary>
    public static void Im2Col(float* x, float* col, ConvIndex ix, int channels, int oh, int ow, bool parallel = false)
    {
        if (parallel)
        {
            HostParallel.For(channels, (long)ix.KH * ix.KW * oh * ow, (c0, c1) => Im2Col(x, col, ix, c0, c1, 0, oh, ow));
            return;
        }
        Im2Col(x, col, ix, 0, channels, 0, oh, ow);
    }

    /// <summary>Rows (c, kh, kw) of c0..c1 for the output rows r0..r1 only: col's rows are (r1 − r0)·ow pixels long.</summary>
    private static void Im2Col(float* x, float* col, ConvIndex ix, int c0, int c1, int r0, int r1, int ow)
    {
        int pixels = (r1 - r0) * ow;
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
                    for (int r = r0; r < r1; r++)
                    {
                        float* row = dst + (r - r0) * ow;
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
        if (g.N > 1 && perImage < (1 << 22))
        {
            HostParallel.For(g.N, perImage, (start, end) =>
            {
                float* col = HostScratch.Get(ColumnSlot, (long)g.C * g.KH * g.KW * pixels);
                for (int n = start; n < end; n++)
                {
                    Im2Col(x + (long)n * g.C * g.H * g.W, col, ix, g.C, g.OH, g.OW, parallel: false);
                    HostGemm.Run(w, col, output + (long)n * g.K * pixels, bias, p, layoutA, layoutB, groups, act, parallel: false);
                }
            });
            return;
        }
        // One image at a time, its output rows split across the cores: each core builds the columns of its rows and runs
        // their GEMM alone — one hand-off per image where splitting the im2col by channel and the GEMM by tiles took one
        // per step and per K slab.
        for (int n = 0; n < g.N; n++)
        {
            float* image = x + (long)n * g.C * g.H * g.W, result = output + (long)n * g.K * pixels;
            HostParallel.For(g.OH, (long)g.K * g.OW * cgkk, (r0, r1) =>
            {
                int cols = (r1 - r0) * g.OW;
                float* col = HostScratch.Get(ColumnSlot, (long)g.C * g.KH * g.KW * cols);
                Im2Col(image, col, ix, 0, g.C, r0, r1, g.OW);
                if (cols == pixels)
                {
                    HostGemm.Run(w, col, result, bias, p, layoutA, layoutB, groups, act, parallel: false);
                    return;
                }
                var rows = p with { N = cols, StrideBk = cols };
                var rowsB = Layout6.Create("conv2d", new[] { groups }, new[] { cgkk * cols });
                float* tile = HostScratch.Get(TileSlot, (long)g.K * cols);
                HostGemm.Run(w, col, tile, bias, rows, layoutA, rowsB, groups, act, parallel: false);
                for (int k = 0; k < g.K; k++)
                    new ReadOnlySpan<float>(tile + (long)k * cols, cols).CopyTo(new Span<float>(result + (long)k * pixels + (long)r0 * g.OW, cols));
            });
        }
    }
}

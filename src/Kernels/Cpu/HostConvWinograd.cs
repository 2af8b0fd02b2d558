using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// 3×3 stride-1 convolutions as Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, 2016): each 2×2 block of
/// output pixels (a tile) from its 4×4 input window in 16 multiplies per input channel instead of 36. Per tile and input
/// channel the window d becomes V = Bᵀ·d·B, the weights g become U = G·g·Gᵀ once when packed, the 16 points ξ are 16
/// independent products M[ξ] = V[ξ]·U[ξ] summed over the input channels (run by the direct convolution's register tile:
/// 6 tiles × 64 output channels, the weights the stream of vectors, the tiles' V broadcast), and each tile's outputs are
/// Aᵀ·M·A. B, G and A hold only 0, ±1 and ±½, so the transforms add and halve exactly; results differ from the direct
/// sum only in the order of the additions.
/// </summary>
internal static unsafe partial class HostConv
{
    /// <summary>The 16 points of F(2×2, 3×3): a 4×4 window per tile.</summary>
    private const int WinogradPoints = 16;

    /// <summary>Register tiles (6 tiles × 64 output channels) whose transformed input and products a core keeps at once
    /// (the products 16 × 1.5 KiB each).</summary>
    private const int WinogradWindowSextets = 16;

    /// <summary>Scratch slots of a core's transformed input V, its products M and its tap offsets.</summary>
    private const int WinogradInputSlot = 6, WinogradProductSlot = 7, WinogradOffsetSlot = 5;

    /// <summary>Weights (output × input channels) up to which packed 3×3 weights also carry their Winograd transform U
    /// (16/9 of their size): beyond it a layer's weights stream from memory at small maps, where 16 points a weight read
    /// cost more than the multiplies they save.</summary>
    private const int WinogradMaxWeights = 128 * 128;

    /// <summary>Whether weights of this shape carry their transform U when packed (<see cref="PackWeights"/>).</summary>
    public static bool WinogradPacks(int groups, int kg, int cg, int kh, int kw) =>
        HostGemm.Wide && groups == 1 && kh == 3 && kw == 3 && (long)kg * cg <= WinogradMaxWeights;

    /// <summary>Whether convolution <paramref name="g"/> runs as <see cref="Winograd{TAct}"/> from packed weights: 3×3 at
    /// stride 1 without dilation, at least 16 input channels, and at least 16 tiles.</summary>
    public static bool UsesWinograd(Conv2dGeometry g)
    {
        var ix = g.Index;
        return WinogradPacks(g.Options.Groups, g.Kg, g.Cg, g.KH, g.KW) && ix.StrideH == 1 && ix.StrideW == 1 && ix.DilationH == 1
            && ix.DilationW == 1 && g.Cg >= 16 && (g.OH + 1) / 2 * ((g.OW + 1) / 2) >= 16;
    }

    /// <summary>
    /// U[ξ] = (G·g·Gᵀ)[ξ] for weights [K, C, 3, 3] (ξ = 4·row + column), each point laid out as <see cref="PackDirect"/>
    /// lays out a 1×1 convolution's weights — [block of 64 output channels, c, channel in the block], K rounded up to
    /// whole vectors by zeros — so that the products read each block as one sequential stream.
    /// </summary>
    private static void WinogradWeights(float* w, float* u, int k, int c)
    {
        int ldw = PackedChannels(k);
        long point = (long)ldw * c;
        new Span<float>(u, checked((int)(WinogradPoints * point))).Clear();
        HostParallel.For(k, 16L * 9 * c, (s, e) =>
        {
            float* m = stackalloc float[12];
            for (int o = s; o < e; o++)
            {
                int block = o / TileChannels * TileChannels, width = Math.Min(TileChannels, ldw - block);
                for (int i = 0; i < c; i++)
                {
                    float* g = w + ((long)o * c + i) * 9;
                    // G·g: rows g0, (g0 + g1 + g2)/2, (g0 − g1 + g2)/2, g2 of the kernel's rows.
                    for (int col = 0; col < 3; col++)
                    {
                        float g0 = g[col], g1 = g[3 + col], g2 = g[6 + col];
                        m[col] = g0;
                        m[3 + col] = 0.5f * (g0 + g1 + g2);
                        m[6 + col] = 0.5f * (g0 - g1 + g2);
                        m[9 + col] = g2;
                    }
                    // (G·g)·Gᵀ: the same along each row.
                    float* to = u + (long)block * c + (long)i * width + (o - block);
                    for (int row = 0; row < 4; row++)
                    {
                        float a = m[3 * row], b = m[3 * row + 1], d = m[3 * row + 2];
                        to[4 * row * point] = a;
                        to[(4 * row + 1) * point] = 0.5f * (a + b + d);
                        to[(4 * row + 2) * point] = 0.5f * (a - b + d);
                        to[(4 * row + 3) * point] = d;
                    }
                }
            }
        });
    }

    /// <summary>
    /// The convolution <paramref name="g"/> (see <see cref="UsesWinograd"/>) from its weights' transform
    /// <paramref name="u"/> (<see cref="WinogradWeights"/>). A unit of work is a band of tile rows of an image and a block of
    /// 64 output channels; each core takes one run of units (its own blocks when there are enough, else its own bands), and
    /// a window of them at a time it transforms the windows of the tiles it needs (V, numbered over tile rows padded to 4, 8
    /// or a multiple of 16 tiles, so that 16 tiles' window rows are the even and odd columns of 32 consecutive values),
    /// forms the 16 products point by point in register tiles of 6 tiles × 64 channels — a point's block of U stays in L1
    /// while the window's tiles pass over it — and transforms them back. Measured against the direct tiles on this
    /// project's 2-core VM (hot, two threads): resnet's 64 → 64 at 16×16 44 against 63 µs, 128 → 128 at 8×8 42 against 58;
    /// one thread 69 against 105 and 60 against 102. Results do not depend on the split: every output is the same sum in
    /// the same order on any number of cores.
    /// </summary>
    public static void Winograd<TAct>(float* x, float* u, float* output, float* bias, float* residual, Conv2dGeometry g, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int c = g.C, k = g.K, ldw = PackedChannels(k), th = (g.OH + 1) / 2, tw = (g.OW + 1) / 2, tiles = th * tw;
        int rowTiles = tw <= 4 ? 4 : tw <= 8 ? 8 : (tw + 15) & ~15;
        // A band of tile rows is a core's alone (no output line written by both), and as many rows as leave its last
        // register tile at least 4 tiles (8 tiles a row: two rows, 6 + 6 + 4).
        int bandRows = 1;
        while (bandRows < 6 && bandRows * tw % TilePixels is > 0 and < 4)
            bandRows++;
        int bandTiles = bandRows * tw, bands = (th + bandRows - 1) / bandRows, blocks = (ldw + TileChannels - 1) / TileChannels;
        int perImage = bands * blocks, bandSextets = (bandTiles + TilePixels - 1) / TilePixels;
        // With a block of output channels for every core, each core takes its own blocks (and reads its share of U, which
        // at small maps comes from memory: 16/9 of the weights' bytes) and transforms the whole image itself; otherwise the
        // cores split the bands and each transforms its own.
        bool blockMajor = blocks >= HostParallel.Workers;
        // The bordered image holds every tile's window (2 rows and columns a tile, 2 more for the last one's) and the
        // padding tiles' of the last 16.
        int hp = ((th * rowTiles + 15) / 16 * 16 / rowTiles) * 2 + 2, wp = rowTiles * 2 + 2;
        long call = Interlocked.Increment(ref _directCalls);
        // The bias padded to whole blocks by zeros, added to each vector of 16 channels before it is transposed.
        float* biasPadded = HostScratch.Get(PhaseSlot, (long)blocks * TileChannels + TileChannels);
        float* zeros = biasPadded + blocks * TileChannels;
        PadBias(bias, 1, k, blocks * TileChannels, biasPadded);
        new Span<float>(zeros, TileChannels).Clear();
        var epilogue = Epilogue.For<TAct>();
        int pixels = g.OH * g.OW;
        long pointFloats = (long)ldw * c, sextetFloats = TilePixels * TileChannels;
        HostParallel.For(g.N * perImage, (long)WinogradPoints * bandTiles * TileChannels * c, (s, e) =>
        {
            int* poff = stackalloc int[TilePixels];
            var stores = stackalloc WinogradStore[2 * TilePixels];
            // A 16 × 16 block whose rows 12–15 are zero (WinogradOutput).
            var staged = stackalloc Vector512<float>[16];
            new Span<Vector512<float>>(staged, 16).Clear();
            int* koff = (int*)HostScratch.Get(WinogradOffsetSlot, c);
            for (int from = s; from < e;)
            {
                // A window: units of one image whose register tiles (with their transformed input and 16 products) a
                // core keeps at once.
                int n = from / perImage, to = from + 1;
                while (to < e && to < (n + 1) * perImage && (to + 1 - from) * bandSextets <= WinogradWindowSextets)
                    to++;
                int firstBand = bands, lastBand = -1;
                for (int unit = from; unit < to; unit++)
                {
                    int band = UnitBand(unit - n * perImage);
                    (firstBand, lastBand) = (Math.Min(firstBand, band), Math.Max(lastBand, band));
                }
                int firstTile = firstBand * bandTiles, lastTile = Math.Min(tiles, (lastBand + 1) * bandTiles) - 1;
                int vector0 = TileColumn(firstTile, tw, rowTiles) / 16, vectors = TileColumn(lastTile, tw, rowTiles) / 16 - vector0 + 1, columns = vectors * 16;
                float* bordered = BorderedImage(x + (long)n * c * g.H * g.W, g, hp, wp, call, n);
                float* v = HostScratch.Get(WinogradInputSlot, (long)WinogradPoints * c * columns);
                for (int i = 0; i < c; i++)
                {
                    koff[i] = i * columns;
                    for (int q = 0; q < vectors; q++)
                        WinogradInput(bordered + (long)i * hp * wp, wp, rowTiles, (vector0 + q) * 16, v + (long)i * columns + q * 16, (long)c * columns);
                }
                // m[point, unit, register tile, tile, channel]: the products of the window's units.
                long windowFloats = (to - from) * bandSextets * sextetFloats;
                float* m = HostScratch.Get(WinogradProductSlot, WinogradPoints * windowFloats);
                for (int p = 0; p < WinogradPoints; p++)
                    for (int unit = from; unit < to; unit++)
                    {
                        int band = UnitBand(unit - n * perImage), block = UnitBlock(unit - n * perImage), o0 = block * TileChannels;
                        int width = Math.Min(TileChannels, ldw - o0), end = Math.Min(tiles, (band + 1) * bandTiles);
                        float* wb = u + p * pointFloats + (long)o0 * c, xb = v + (long)p * c * columns;
                        for (int t0 = band * bandTiles, j = 0; t0 < end; t0 += TilePixels, j++)
                        {
                            for (int q = 0; q < TilePixels; q++)
                                poff[q] = TileColumn(Math.Min(t0 + q, end - 1), tw, rowTiles) - vector0 * 16;
                            float* sums = m + p * windowFloats + ((unit - from) * bandSextets + j) * sextetFloats;
                            // A unit's first register tile brings the point's block of U in, the rest find it in L1.
                            if (j == 0)
                                DirectTile<Flags.Yes>(width / 16, end - t0 <= 4, xb, poff, koff, 0, c, wb, width, zeros, sums);
                            else
                                DirectTile<Flags.No>(width / 16, end - t0 <= 4, xb, poff, koff, 0, c, wb, width, zeros, sums);
                        }
                    }
                for (int unit = from; unit < to; unit++)
                {
                    int band = UnitBand(unit - n * perImage), block = UnitBlock(unit - n * perImage), o0 = block * TileChannels;
                    int channels = Math.Min(TileChannels, k - o0), end = Math.Min(tiles, (band + 1) * bandTiles);
                    for (int t0 = band * bandTiles, j = 0; t0 < end; t0 += TilePixels, j++)
                    {
                        int count = WinogradSegments(g, tw, t0, Math.Min(TilePixels, end - t0), stores);
                        float* sums = m + ((unit - from) * bandSextets + j) * sextetFloats;
                        for (int o = 0; o < channels; o += 16)
                            WinogradOutput(sums + o, windowFloats, Vector512.Load(biasPadded + o0 + o), staged,
                                output + ((long)n * k + o0 + o) * pixels, residual != null ? residual + ((long)n * k + o0 + o) * pixels : null,
                                pixels, Math.Min(16, channels - o), stores, count, epilogue);
                    }
                }
                from = to;
            }
        }, oneChunkPerCore: true);
        int UnitBand(int unit) => blockMajor ? unit % bands : unit / blocks;
        int UnitBlock(int unit) => blockMajor ? unit / bands : unit % blocks;
        ActivateAfter(epilogue, output, g, act);
    }

    /// <summary>Tile <paramref name="tile"/>'s column in V: tiles numbered over tile rows of <paramref name="rowTiles"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TileColumn(int tile, int tw, int rowTiles) => tile / tw * rowTiles + tile % tw;

    /// <summary>Where a run of a unit's outputs goes in a plane: lane 0's offset and the mask of the lanes inside.</summary>
    private struct WinogradStore
    {
        public int Offset, Row;
        public Vector512<float> Mask;
    }

    /// <summary>
    /// The stores of <paramref name="count"/> tiles from tile <paramref name="t0"/> (row-major over tile rows of
    /// <paramref name="tw"/>): with each tile's two output columns side by side (tile q in lanes 2q and 2q + 1), per output
    /// row of the tiles (0, 1) one store per run of tiles in one tile row, masked to the columns inside the output and
    /// skipped past its last row. Returns how many were written.
    /// </summary>
    private static int WinogradSegments(Conv2dGeometry g, int tw, int t0, int count, WinogradStore* stores)
    {
        int written = 0;
        for (int q = 0; q < count;)
        {
            int ty = (t0 + q) / tw, tx = (t0 + q) % tw, end = Math.Min(count, q + tw - tx);
            int lanes = Math.Min(2 * (end - q), g.OW - 2 * tx);
            for (int i = 0; i < 2; i++)
            {
                int row = 2 * ty + i;
                if (row >= g.OH)
                    continue;
                stores[written++] = new WinogradStore
                {
                    Offset = row * g.OW + 2 * tx - 2 * q,
                    Row = i,
                    Mask = Vector512.AndNot(HostMath.FirstLanes(2 * q + lanes), HostMath.FirstLanes(2 * q)),
                };
            }
            q = end;
        }
        return written;
    }

    /// <summary>
    /// V = Bᵀ·d·B for the 16 tiles from tile <paramref name="tile"/> of one bordered plane, lane j holding tile j: the 16
    /// points go to <paramref name="v"/> + ξ·<paramref name="pointStride"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WinogradInput(float* plane, int wp, int rowTiles, int tile, float* v, long pointStride)
    {
        float* row = plane + (long)(tile / rowTiles) * 2 * wp + tile % rowTiles * 2;
        // e[a, ·] = d[a, ·]·B for window row a.
        var (e00, e01, e02, e03) = WindowRow(row, wp, rowTiles);
        var (e10, e11, e12, e13) = WindowRow(row + wp, wp, rowTiles);
        var (e20, e21, e22, e23) = WindowRow(row + 2 * wp, wp, rowTiles);
        var (e30, e31, e32, e33) = WindowRow(row + 3 * wp, wp, rowTiles);
        // Bᵀ·e: rows e0 − e2, e1 + e2, e2 − e1, e1 − e3.
        Vector512.Store(e00 - e20, v);
        Vector512.Store(e01 - e21, v + pointStride);
        Vector512.Store(e02 - e22, v + 2 * pointStride);
        Vector512.Store(e03 - e23, v + 3 * pointStride);
        Vector512.Store(e10 + e20, v + 4 * pointStride);
        Vector512.Store(e11 + e21, v + 5 * pointStride);
        Vector512.Store(e12 + e22, v + 6 * pointStride);
        Vector512.Store(e13 + e23, v + 7 * pointStride);
        Vector512.Store(e20 - e10, v + 8 * pointStride);
        Vector512.Store(e21 - e11, v + 9 * pointStride);
        Vector512.Store(e22 - e12, v + 10 * pointStride);
        Vector512.Store(e23 - e13, v + 11 * pointStride);
        Vector512.Store(e10 - e30, v + 12 * pointStride);
        Vector512.Store(e11 - e31, v + 13 * pointStride);
        Vector512.Store(e12 - e32, v + 14 * pointStride);
        Vector512.Store(e13 - e33, v + 15 * pointStride);
    }

    /// <summary>
    /// One window row times B for 16 tiles from <paramref name="row"/>: its 4 columns for 16 tiles are the even and odd
    /// columns of 32 consecutive values (one tile row's; or two rows' of 8 tiles, four of 4, side by side — the next tile
    /// row's window row is 2 rows down), read from the window's first column and from its third.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) WindowRow(float* row, int wp, int rowTiles)
    {
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        var (low, high) = Values32(row, wp, rowTiles);
        var d0 = Avx512F.PermuteVar16x32x2(low, even, high);
        var d1 = Avx512F.PermuteVar16x32x2(low, odd, high);
        (low, high) = Values32(row + 2, wp, rowTiles);
        var d2 = Avx512F.PermuteVar16x32x2(low, even, high);
        var d3 = Avx512F.PermuteVar16x32x2(low, odd, high);
        // d·B: columns d0 − d2, d1 + d2, d2 − d1, d1 − d3.
        return (d0 - d2, d1 + d2, d2 - d1, d1 - d3);
    }

    /// <summary>32 values from <paramref name="row"/>: one tile row's, or 16 from each of two tile rows, or 8 from each of four.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>) Values32(float* row, int wp, int rowTiles) =>
        rowTiles >= 16 ? (Vector512.Load(row), Vector512.Load(row + 16))
        : rowTiles == 8 ? (Vector512.Load(row), Vector512.Load(row + 2L * wp))
        : (Vector512.Create(Vector256.Load(row), Vector256.Load(row + 2L * wp)), Vector512.Create(Vector256.Load(row + 4L * wp), Vector256.Load(row + 6L * wp)));

    /// <summary>
    /// Y = Aᵀ·M·A for 16 output channels of a unit's 6 tiles (the tiles' sums <see cref="TileChannels"/> apart, the points
    /// <paramref name="pointStride"/> apart), plus the bias, one output row of the tiles at a time: its 12 values a channel
    /// (tile q's two columns at 2q and 2q + 1) are rows of a 16 × 16 block held in registers — a scratch block written
    /// between the loads of M made those loads wait on the stores (0.3–1.8 µs a call, by where the scratch fell) — whose
    /// transpose (<see cref="HostMath.Transpose16"/>) gives each channel's outputs; per channel the residual is added, the
    /// activation applied and the runs stored by <paramref name="stores"/>.
    /// </summary>
    private static void WinogradOutput(float* m, long pointStride, Vector512<float> bias, Vector512<float>* staged, float* plane, float* residual,
        int pixels, int channels, WinogradStore* stores, int count, Epilogue epilogue)
    {
        for (int i = 0; i < 2; i++)
        {
            // Aᵀ·M's row i: M0 + M1 + M2 or M1 − M2 − M3; then ·A: columns S0 + S1 + S2 and S1 − S2 − S3.
            var (a0, b0) = OutputRow(m, pointStride, i, bias);
            var (a1, b1) = OutputRow(m + TileChannels, pointStride, i, bias);
            var (a2, b2) = OutputRow(m + 2 * TileChannels, pointStride, i, bias);
            var (a3, b3) = OutputRow(m + 3 * TileChannels, pointStride, i, bias);
            var (a4, b4) = OutputRow(m + 4 * TileChannels, pointStride, i, bias);
            var (a5, b5) = OutputRow(m + 5 * TileChannels, pointStride, i, bias);
            (staged[0], staged[1], staged[2], staged[3], staged[4], staged[5]) = (a0, b0, a1, b1, a2, b2);
            (staged[6], staged[7], staged[8], staged[9], staged[10], staged[11]) = (a3, b3, a4, b4, a5, b5);
            HostMath.Transpose16(staged);
            for (int j = 0; j < count; j++)
            {
                if (stores[j].Row != i)
                    continue;
                int at = stores[j].Offset;
                var mask = stores[j].Mask;
                for (int o = 0; o < channels; o++)
                {
                    var y = staged[o];
                    if (residual != null)
                        y += Avx512F.MaskLoad(residual + (long)o * pixels + at, mask, Vector512<float>.Zero);
                    Avx512F.MaskStore(plane + (long)o * pixels + at, mask, epilogue.Apply(y));
                }
            }
            // Rows 12–15 of the block are zero again for the next transpose.
            (staged[12], staged[13], staged[14], staged[15]) = (default, default, default, default);
        }
    }

    /// <summary>Row <paramref name="i"/> of Aᵀ·M·A for one tile (points <paramref name="pointStride"/> apart), plus the bias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>) OutputRow(float* at, long pointStride, int i, Vector512<float> bias)
    {
        Vector512<float> s0, s1, s2, s3;
        if (i == 0)
        {
            s0 = Vector512.Load(at) + Vector512.Load(at + 4 * pointStride) + Vector512.Load(at + 8 * pointStride);
            s1 = Vector512.Load(at + pointStride) + Vector512.Load(at + 5 * pointStride) + Vector512.Load(at + 9 * pointStride);
            s2 = Vector512.Load(at + 2 * pointStride) + Vector512.Load(at + 6 * pointStride) + Vector512.Load(at + 10 * pointStride);
            s3 = Vector512.Load(at + 3 * pointStride) + Vector512.Load(at + 7 * pointStride) + Vector512.Load(at + 11 * pointStride);
        }
        else
        {
            s0 = Vector512.Load(at + 4 * pointStride) - Vector512.Load(at + 8 * pointStride) - Vector512.Load(at + 12 * pointStride);
            s1 = Vector512.Load(at + 5 * pointStride) - Vector512.Load(at + 9 * pointStride) - Vector512.Load(at + 13 * pointStride);
            s2 = Vector512.Load(at + 6 * pointStride) - Vector512.Load(at + 10 * pointStride) - Vector512.Load(at + 14 * pointStride);
            s3 = Vector512.Load(at + 7 * pointStride) - Vector512.Load(at + 11 * pointStride) - Vector512.Load(at + 15 * pointStride);
        }
        return (s0 + s1 + s2 + bias, s1 - s2 - s3 + bias);
    }
}

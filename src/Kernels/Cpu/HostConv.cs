using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Convolution on the fast CPU device. With AVX-512 and weights packed once (<see cref="PackWeights"/>; or packed per call
/// when there are enough output pixels to pay for it) a convolution runs as direct register tiles over the image
/// (<see cref="Direct{TAct}"/>), 3×3 ones at stride 1 as Winograd F(2×2, 3×3) (<see cref="Winograd{TAct}"/>); depthwise
/// ones have planes of their own, few column rows over many pixels outer products.
/// The rest: per image, im2col into a per-thread column buffer (Cg·KH·KW × OH·OW floats,
/// reused, never the whole batch's), then <see cref="HostGemm"/> per group with the bias per output channel and the
/// activation in its epilogue. The column rows are built a run of output pixels at a time: for a tap (c, kh, kw) and
/// an output row, the valid output columns form one interval (computed, not tested per pixel), copied with a block
/// copy at stride 1, zero-filled outside. A batch of small images runs one image per core; otherwise each image's output
/// rows are split across the cores.
/// </summary>
internal static unsafe partial class HostConv
{
    /// <summary>Scratch slot of the column buffer (slots 0–3 belong to the GEMM).</summary>
    private const int ColumnSlot = 4;

    /// <summary>Scratch slot of a core's output rows before they are copied into the image's output.</summary>
    private const int TileSlot = 8;

    /// <summary>Scratch slot of weights packed for one call of <see cref="Direct{TAct}"/>.</summary>
    private const int PackedSlot = 10;

    /// <summary>Output pixels (over the batch) from which a convolution without packed weights packs them for
    /// <see cref="Direct{TAct}"/> on each call: the packing costs a few multiply-adds per weight, the columns' im2col
    /// and GEMM packing a few per output.</summary>
    private const int DirectUnpackedPixels = 1024;

    /// <summary>Scratch slot of a plane's rows split into stride phases, or at stride 1 of its zero-bordered rows
    /// (<see cref="Im2Col(float*, float*, ConvIndex, int, int, int, int, int)"/>).</summary>
    private const int PhaseSlot = 9;

    /// <summary>col[(c, kh, kw), pixel] for one image of <paramref name="channels"/> planes of H·W at <paramref name="x"/>;
    /// with <paramref name="parallel"/>, channels are split across the cores (each writes its own rows).</summary>
    public static void Im2Col(float* x, float* col, ConvIndex ix, int channels, int oh, int ow, bool parallel = false)
    {
        if (parallel)
        {
            // A column row is a copy with its own bounds: counted as ~8 vector adds a pixel, so small images split too.
            HostParallel.For(channels, 8L * ix.KH * ix.KW * oh * ow, (c0, c1) => Im2Col(x, col, ix, c0, c1, 0, oh, ow));
            return;
        }
        Im2Col(x, col, ix, 0, channels, 0, oh, ow);
    }

    /// <summary>Rows (c, kh, kw) of c0..c1 for the output rows r0..r1 only: col's rows are (r1 − r0)·ow pixels long.</summary>
    private static void Im2Col(float* x, float* col, ConvIndex ix, int c0, int c1, int r0, int r1, int ow)
    {
        int pixels = (r1 - r0) * ow, stride = ix.StrideW;
        float* dst = col + (long)c0 * ix.KH * ix.KW * pixels;
        if (stride <= 2)
        {
            Im2ColBordered(x, dst, ix, c0, c1, r0, r1, ow);
            return;
        }
        // At a column stride s the plane's rows are split into s phases first (column c to phase c mod s, index c / s), so each
        // tap's valid run of an output row is a contiguous copy from one phase: resnet18's 7×7 stride-2 stem gathered 75K
        // single floats per core instead.
        int phaseWidth = (ix.W + stride - 1) / stride;
        float* phases = HostScratch.Get(PhaseSlot, (long)stride * ix.H * phaseWidth);
        for (int c = c0; c < c1; c++)
        {
            float* plane = x + (long)c * ix.H * ix.W;
            SplitPhases(plane, ix.H, ix.W, stride, phases, phaseWidth);
            for (int kh = 0; kh < ix.KH; kh++)
                for (int kw = 0; kw < ix.KW; kw++, dst += pixels)
                {
                    int colOffset = kw * ix.DilationW - ix.PadLeft;
                    // Output columns whose input column iw = ow·stride + colOffset lies in [0, W).
                    int lo = colOffset >= 0 ? 0 : (-colOffset + ix.StrideW - 1) / ix.StrideW;
                    int hi = ix.W - 1 - colOffset < 0 ? -1 : Math.Min(ow - 1, (ix.W - 1 - colOffset) / ix.StrideW);
                    if (hi < lo)
                        (lo, hi) = (0, -1);
                    // Output rows whose input row lies in [0, H): one interval too; the rows outside are zeroed at once.
                    int rowOffset = kh * ix.DilationH - ix.PadTop;
                    int rLo = Math.Max(r0, rowOffset >= 0 ? 0 : (-rowOffset + ix.StrideH - 1) / ix.StrideH);
                    int rHi = ix.H - 1 - rowOffset < 0 ? r0 - 1 : Math.Min(r1 - 1, (ix.H - 1 - rowOffset) / ix.StrideH);
                    if (hi < lo || rHi < rLo)
                    {
                        new Span<float>(dst, pixels).Clear();
                        continue;
                    }
                    new Span<float>(dst, (rLo - r0) * ow).Clear();
                    new Span<float>(dst + (rHi + 1 - r0) * ow, (r1 - 1 - rHi) * ow).Clear();
                    // Input column j·s + colOffset is phase colOffset mod s, index j + ⌊colOffset / s⌋ there.
                    int phase = ((colOffset % stride) + stride) % stride, shift = (colOffset - phase) / stride;
                    for (int r = rLo; r <= rHi; r++)
                    {
                        float* row = dst + (r - r0) * ow;
                        int ih = r * ix.StrideH + rowOffset;
                        for (int j = 0; j < lo; j++)
                            row[j] = 0;
                        Copy(row + lo, phases + ((long)phase * ix.H + ih) * phaseWidth + shift + lo, hi - lo + 1);
                        for (int j = hi + 1; j < ow; j++)
                            row[j] = 0;
                    }
                }
        }
    }

    /// <summary>
    /// <see cref="Im2Col(float*, float*, ConvIndex, int, int, int, int, int)"/> at column stride 1 or 2 (any row stride): the
    /// input rows that output rows r0 … r1 reach are first laid zero-bordered — at stride 2 split into their two column
    /// phases (padded column a to phase a mod 2, index a / 2) — where every tap's output row is one contiguous, in-bounds run
    /// of ow floats: no per-row bounds, no zero fills. A 3×3 layer unfolds 9·C·OH rows (9,216 in each of resnet18's stages),
    /// and the per-row bookkeeping of the bounded copy was 3.4–5.8 ns a row; at stride 2 it also split whole planes on every
    /// core (resnet18's 7×7 stem: 64 rows of each plane where a core's 16 output rows reach 37).
    /// </summary>
    private static void Im2ColBordered(float* x, float* dst, ConvIndex ix, int c0, int c1, int r0, int r1, int ow)
    {
        var (rows, width) = BorderedExtent(ix, r1 - r0, ow);
        float* padded = HostScratch.Get(PhaseSlot, (long)ix.StrideW * rows * width);
        int pixels = (r1 - r0) * ow;
        for (int c = c0; c < c1; c++)
        {
            BorderRows(x + (long)c * ix.H * ix.W, padded, ix, r0, rows, width);
            for (int kh = 0; kh < ix.KH; kh++)
                for (int kw = 0; kw < ix.KW; kw++, dst += pixels)
                {
                    float* src = padded + BorderedTap(ix, kh, kw, rows, width);
                    for (int r = 0; r < r1 - r0; r++)
                        Copy(dst + r * ow, src + (long)r * ix.StrideH * width, ow);
                }
        }
    }

    /// <summary>The input rows and the row width <see cref="BorderRows"/> lays out for <paramref name="outRows"/> output rows of
    /// <paramref name="ow"/> pixels: output column j of tap kw reads padded column s·j + kw·DilationW, phase (kw·DilationW) mod s,
    /// index j + (kw·DilationW) / s.</summary>
    private static (int Rows, int Width) BorderedExtent(ConvIndex ix, int outRows, int ow) =>
        ((outRows - 1) * ix.StrideH + (ix.KH - 1) * ix.DilationH + 1, ow + (ix.KW - 1) * ix.DilationW / ix.StrideW);

    /// <summary>Where tap (kh, kw) of an output row's first pixel lies in <see cref="BorderRows"/>' layout of
    /// <paramref name="rows"/> rows of <paramref name="width"/>, in floats from its start: its phase, row and index.</summary>
    private static long BorderedTap(ConvIndex ix, int kh, int kw, int rows, int width)
    {
        int at = kw * ix.DilationW;
        return ((long)(at % ix.StrideW) * rows + kh * ix.DilationH) * width + at / ix.StrideW;
    }

    /// <summary>The <paramref name="rows"/> input rows of one plane from output row <paramref name="r0"/>'s first tap row on,
    /// zero-bordered into rows of <paramref name="width"/> at <paramref name="padded"/>: at column stride 1 padded column a is
    /// input column a − PadLeft; at stride 2 they are split into two phases of <paramref name="rows"/> rows each (padded
    /// column a to phase a mod 2, index a / 2). Rows outside the input are zeros.</summary>
    private static void BorderRows(float* plane, float* padded, ConvIndex ix, int r0, int rows, int width)
    {
        int s = ix.StrideW;
        // Stride 1: the input columns inside [0, width); stride 2: those that land in the two phases.
        int colLo = Math.Min(width, ix.PadLeft), colHi = Math.Clamp(ix.PadLeft + ix.W, colLo, width), columns = Math.Min(ix.W, s * width - ix.PadLeft);
        for (int y = 0; y < rows; y++)
        {
            float* line = padded + (long)y * width;
            int ih = r0 * ix.StrideH + y - ix.PadTop;
            bool inside = ih >= 0 && ih < ix.H;
            if (s == 2)
            {
                float* odd = padded + (long)(rows + y) * width;
                new Span<float>(line, width).Clear();
                new Span<float>(odd, width).Clear();
                if (inside && columns > 0)
                    SplitPairs(plane + (long)ih * ix.W, 0, columns, ix.PadLeft, line, odd);
                continue;
            }
            if (!inside || colHi <= colLo)
            {
                new Span<float>(line, width).Clear();
                continue;
            }
            for (int j = 0; j < colLo; j++)
                line[j] = 0;
            Copy(line + colLo, plane + (long)ih * ix.W + (colLo - ix.PadLeft), colHi - colLo);
            for (int j = colHi; j < width; j++)
                line[j] = 0;
        }
    }

    /// <summary>
    /// The h × w plane's rows split into <paramref name="stride"/> phases: phase q row r, index j holds plane[r, j·stride + q],
    /// each phase of <paramref name="phaseWidth"/> floats a row (≥ ⌈w / stride⌉), so a run of columns at that stride is contiguous.
    /// </summary>
    internal static void SplitPhases(float* plane, int h, int w, int stride, float* phases, int phaseWidth)
    {
        // Stride 2 by shuffles, 16 columns at a time: the scalar loop was most of a stride-2 max pool's time (resnet18's
        // 64 × 32×32 planes: a float per iteration).
        if (stride == 2 && HostMath.Vectorized)
        {
            for (int ih = 0; ih < h; ih++)
                SplitPairs(plane + (long)ih * w, 0, w, 0, phases + (long)ih * phaseWidth, phases + ((long)h + ih) * phaseWidth);
            return;
        }
        for (int ih = 0; ih < h; ih++)
            for (int ph = 0; ph < stride; ph++)
            {
                float* to = phases + ((long)ph * h + ih) * phaseWidth, from = plane + (long)ih * w;
                for (int j = 0, iw = ph; iw < w; j++, iw += stride)
                    to[j] = from[iw];
            }
    }

    /// <summary>
    /// A depthwise convolution (one input channel per group; Kg output channels each): each output plane directly, with no
    /// columns and no GEMM — as a GEMM per group it is a 1 × KH·KW by KH·KW × pixels product, all call overhead and im2col
    /// copies. For each output row and tap the valid output columns form one interval (as in im2col), added
    /// as one scaled row (a vector multiply-add at stride 1). Planes are split across the cores; bias and activation are
    /// applied to each finished plane while it is in L1.
    /// </summary>
    private static void Depthwise<TAct>(float* x, float* w, float* packed, float* output, float* bias, Conv2dGeometry g, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        var ix = g.Index;
        int planes = g.N * g.K, pixels = g.OH * g.OW, taps = g.KH * g.KW;
        bool identity = typeof(TAct) == typeof(ElementwiseOps.Identity);
        // Rows narrower than a few vectors fill the padded path's vectors partly: up to 8×8 output pixels the channels-last
        // form is faster (efficientnet_b0's 240 channels at 8×8 with 5×5 taps: 20 against 29 µs; 144 at 16×16 stride 2: 22
        // against 23), from 16×16 the planes (96 channels at 32×32 stride 2: 35 against 43; 32 at 32×32: 20 against 32).
        // ReLU, ReLU6 and SiLU in the registers of the two forms below; others in the pass after.
        var epilogue = Epilogue.For<TAct>();
        if (g.Kg == 1 && pixels <= ChannelsLastPixels && !(StridedPairs(g) && g.OW >= PairsMinWidth))
        {
            DepthwiseChannelsLast(x, w, packed, output, bias, g, epilogue);
            identity |= epilogue.InRegisters;
        }
        else if (ix.DilationH == 1 && ix.DilationW == 1)
        {
            DepthwisePadded(x, w, output, bias, g, epilogue);
            identity |= epilogue.InRegisters;
        }
        else
            DepthwiseRows(x, w, output, bias, g);
        // The activation over the whole output at once: per plane it was a library call per 4 or 16 outputs at 2×2 and 4×4
        // (1,152 calls in one of efficientnet's layers).
        if (!identity)
        {
            var all = new Span<float>(output, checked(planes * pixels));
            HostElementwise.ApplyUnary(all, all, act);
        }
    }

    /// <summary>The bounded row-by-row form of <see cref="Depthwise"/>, for dilated kernels: each tap's valid output columns
    /// are one interval per row, added as one scaled run; a strided row is read as phase rows.</summary>
    private static void DepthwiseRows(float* x, float* w, float* output, float* bias, Conv2dGeometry g)
    {
        var ix = g.Index;
        int planes = g.N * g.K, pixels = g.OH * g.OW, taps = g.KH * g.KW;
        int stride = ix.StrideW, phaseWidth = (ix.W + stride - 1) / stride;
        HostParallel.For(planes, (long)pixels * taps, (p0, p1) =>
        {
            // A strided row is read as `stride` phase rows (columns ≡ 0, 1, … mod stride), so every tap adds a contiguous run.
            float* phases = stride > 1 ? HostScratch.Get(ColumnSlot, (long)stride * ix.H * phaseWidth) : null;
            int lastPlane = -1;
            for (int plane = p0; plane < p1; plane++)
            {
                int n = plane / g.K, k = plane % g.K, c = k / g.Kg;
                float* src = x + ((long)n * g.C + c) * g.H * g.W, dst = output + (long)plane * pixels, wk = w + (long)k * taps;
                int rowPitch = ix.W;
                if (stride > 1)
                {
                    if (plane / g.Kg != lastPlane)
                        SplitPhases(src, ix.H, ix.W, stride, phases, phaseWidth);
                    lastPlane = plane / g.Kg;
                    rowPitch = phaseWidth;
                }
                new Span<float>(dst, pixels).Fill(bias == null ? 0f : bias[k]);
                for (int kw = 0; kw < g.KW; kw++)
                {
                    int colOffset = kw * ix.DilationW - ix.PadLeft;
                    int lo = colOffset >= 0 ? 0 : (-colOffset + stride - 1) / stride;
                    int hi = ix.W - 1 - colOffset < 0 ? -1 : Math.Min(g.OW - 1, (ix.W - 1 - colOffset) / stride);
                    if (hi < lo)
                        continue;
                    // Input column j·stride + colOffset: phase colOffset mod stride, index j + ⌊colOffset / stride⌋ there.
                    int phase = ((colOffset % stride) + stride) % stride, shift = (colOffset - phase) / stride;
                    float* basePlane = stride > 1 ? phases + (long)phase * ix.H * phaseWidth : src;
                    for (int kh = 0; kh < g.KH; kh++)
                    {
                        float weight = wk[kh * g.KW + kw];
                        for (int oh = 0; oh < g.OH; oh++)
                        {
                            int ih = oh * ix.StrideH - ix.PadTop + kh * ix.DilationH;
                            if (ih >= 0 && ih < ix.H)
                                AddScaled(dst + (long)oh * g.OW + lo, basePlane + (long)ih * rowPitch + shift + lo, hi - lo + 1, weight);
                        }
                    }
                }
            }
        });
    }

    /// <summary>
    /// A depthwise convolution on a zero-padded copy of each input plane, its columns split into stride phases (column c of
    /// the padded plane goes to phase c mod stride, index c / stride): with the padding in the copy and the stride in the
    /// phases, every tap of every output row is one unbounded contiguous run, so an output row is built 8 pixels at a time
    /// in a register — bias, then one FMA per tap, then the <paramref name="epilogue"/>'s activation — and stored once. The
    /// row-by-row form (one bounded scaled add per tap and output row) made 144 calls of 16 floats per 16×16 plane:
    /// mobilenet_v2's 144-channel 16×16 layer took 0.12 ms, its stride-2 96-channel 32×32 one 0.15 ms.
    /// </summary>
    private static void DepthwisePadded(float* x, float* w, float* output, float* bias, Conv2dGeometry g, Epilogue epilogue)
    {
        var ix = g.Index;
        int pixels = g.OH * g.OW, taps = g.KH * g.KW, sh = ix.StrideH, sw = ix.StrideW;
        // Output (oh, ow) reads padded row oh·sh + kh and padded column ow·sw + kw, which is phase kw mod sw at index
        // ow + kw / sw. A phase row has 16 spare columns so the last vector of a row may read past its end (into zeros).
        int rows = (g.OH - 1) * sh + g.KH, columns = (g.OW - 1) * sw + g.KW;
        int phaseWidth = (columns + sw - 1) / sw + 16;
        long phaseSize = (long)rows * phaseWidth;
        // A plane's work in HostParallel's units: its taps and the copy of its input into phases, each ~4 of the vector adds
        // the threshold counts (counting the taps alone kept mobilenet_v2's 144 planes of 16×16 at stride 2 on one core:
        // 44–47 µs, split 33–34).
        long perPlane = 4L * ((long)pixels * taps + (long)ix.H * ix.W);
        bool pairs = StridedPairs(g), shifts = HostGemm.Wide && g.KH == 3 && g.KW == 3 && sh == 1 && sw == 1 && ix.PadLeft == 1
            && ix.DilationH == 1 && ix.DilationW == 1;
        HostParallel.For(g.N * g.K, perPlane, (p0, p1) =>
        {
            float* padded = pairs || shifts ? null : HostScratch.Get(ColumnSlot, sw * phaseSize);
            if (padded != null)
                new Span<float>(padded, checked((int)(sw * phaseSize))).Clear();
            var weights = stackalloc Vector256<float>[taps];
            // Each tap's place relative to an output row's first padded row and column: phase, row and index within the phase.
            var tapAt = stackalloc long[taps];
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                    tapAt[kh * g.KW + kw] = kw % sw * phaseSize + (long)kh * phaseWidth + kw / sw;
            int lastInput = -1;
            int ih0 = Math.Max(0, -ix.PadTop), ih1 = Math.Min(ix.H, rows - ix.PadTop);
            int iw0 = Math.Max(0, -ix.PadLeft), iw1 = Math.Min(ix.W, columns - ix.PadLeft);
            for (int plane = p0; plane < p1; plane++)
            {
                int n = plane / g.K, k = plane % g.K, c = k / g.Kg;
                int input = n * g.C + c;
                if (pairs || shifts)
                {
                    float* from = x + (long)input * ix.H * ix.W, to = output + (long)plane * pixels, kernel = w + (long)k * 9;
                    float b0 = bias == null ? 0f : bias[k];
                    if (pairs)
                        Plane3x3<StrideTwo>(from, ix.H, ix.W, ix.PadTop, kernel, b0, to, g.OH, g.OW, epilogue);
                    else
                        Plane3x3<StrideOne>(from, ix.H, ix.W, ix.PadTop, kernel, b0, to, g.OH, g.OW, epilogue);
                    continue;
                }
                if (input != lastInput)
                {
                    // Input (ih, iw) lands on padded row ih + PadTop, column iw + PadLeft; the border stays zero from the
                    // clear above, as every plane fills the same interior.
                    float* src = x + (long)input * ix.H * ix.W;
                    for (int ih = ih0; ih < ih1 && iw1 > iw0; ih++)
                    {
                        float* from = src + (long)ih * ix.W;
                        long row = (long)(ih + ix.PadTop) * phaseWidth;
                        if (sw == 1)
                            Copy(padded + row + iw0 + ix.PadLeft, from + iw0, iw1 - iw0);
                        else if (sw == 2 && HostMath.Vectorized)
                            SplitPairs(from, iw0, iw1, ix.PadLeft, padded + row, padded + phaseSize + row);
                        else
                            for (int q = 0; q < sw; q++)
                            {
                                // Phase q holds padded columns j·sw + q, i.e. input columns j·sw + q − PadLeft.
                                float* to = padded + q * phaseSize + row;
                                int j0 = Math.Max(0, (iw0 + ix.PadLeft - q + sw - 1) / sw);
                                for (int j = j0, iw = j0 * sw + q - ix.PadLeft; iw < iw1; j++, iw += sw)
                                    to[j] = from[iw];
                            }
                    }
                    lastInput = input;
                }
                for (int t = 0; t < taps; t++)
                    weights[t] = Vector256.Create(w[(long)k * taps + t]);
                var start = Vector256.Create(bias == null ? 0f : bias[k]);
                float* dst = output + (long)plane * pixels;
                if (taps == 9)
                {
                    Plane3x3(padded, sh * phaseWidth, tapAt, w + (long)k * 9, bias == null ? 0f : bias[k], dst, g.OH, g.OW, epilogue);
                    continue;
                }
                for (int oh = 0; oh < g.OH; oh++)
                {
                    float* outRow = dst + (long)oh * g.OW;
                    for (int ow = 0; ow < g.OW; ow += 8)
                    {
                        var acc = start;
                        float* from = padded + (long)oh * sh * phaseWidth + ow;
                        for (int t = 0; t < taps; t++)
                            acc = Vector256.Load(from + tapAt[t]) * weights[t] + acc;
                        acc = epilogue.Apply(acc);
                        if (ow + 8 <= g.OW)
                            Vector256.Store(acc, outRow + ow);
                        else
                            for (int j = 0; ow + j < g.OW; j++)
                                outRow[ow + j] = acc.GetElement(j);
                    }
                }
            }
        });
    }

    /// <summary>
    /// One output plane of a 3×3 depthwise layer from its padded phases: the nine weights and tap offsets held in registers
    /// for the whole plane, a row's outputs 16 at a time (8 without 512-bit vectors; the generic loop reloaded both from the
    /// stack per tap), activated by the <paramref name="epilogue"/> (ReLU, ReLU6: a second pass over the output cost 5% of
    /// the layer). The nine taps are summed as three chains of three, then added: one chain of nine dependent FMAs held each
    /// vector for nine FMA latencies, and 32 channels at 32×32 took 24 µs on one core for 0.3 M multiply-adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Plane3x3(float* padded, long rowStep, long* tapAt, float* w, float start, float* dst, int oh, int ow, Epilogue epilogue)
    {
        long t0 = tapAt[0], t1 = tapAt[1], t2 = tapAt[2], t3 = tapAt[3], t4 = tapAt[4], t5 = tapAt[5], t6 = tapAt[6], t7 = tapAt[7], t8 = tapAt[8];
        if (HostGemm.Wide)
        {
            var (w0, w1, w2) = (Vector512.Create(w[0]), Vector512.Create(w[1]), Vector512.Create(w[2]));
            var (w3, w4, w5) = (Vector512.Create(w[3]), Vector512.Create(w[4]), Vector512.Create(w[5]));
            var (w6, w7, w8) = (Vector512.Create(w[6]), Vector512.Create(w[7]), Vector512.Create(w[8]));
            var bias = Vector512.Create(start);
            for (int r = 0; r < oh; r++)
            {
                float* outRow = dst + (long)r * ow, rowBase = padded + r * rowStep;
                for (int c = 0; c < ow; c += 16)
                {
                    float* f = rowBase + c;
                    var a = Avx512F.FusedMultiplyAdd(Vector512.Load(f + t0), w0, bias);
                    var b = Vector512.Load(f + t3) * w3;
                    var d = Vector512.Load(f + t6) * w6;
                    a = Avx512F.FusedMultiplyAdd(Vector512.Load(f + t1), w1, a);
                    b = Avx512F.FusedMultiplyAdd(Vector512.Load(f + t4), w4, b);
                    d = Avx512F.FusedMultiplyAdd(Vector512.Load(f + t7), w7, d);
                    a = Avx512F.FusedMultiplyAdd(Vector512.Load(f + t2), w2, a);
                    b = Avx512F.FusedMultiplyAdd(Vector512.Load(f + t5), w5, b);
                    d = Avx512F.FusedMultiplyAdd(Vector512.Load(f + t8), w8, d);
                    var acc = epilogue.Apply(a + b + d);
                    if (c + 16 <= ow)
                        Vector512.Store(acc, outRow + c);
                    else
                        Avx512F.MaskStore(outRow + c, HostMath.FirstLanes(ow - c), acc);
                }
            }
            return;
        }
        var (v0, v1, v2) = (Vector256.Create(w[0]), Vector256.Create(w[1]), Vector256.Create(w[2]));
        var (v3, v4, v5) = (Vector256.Create(w[3]), Vector256.Create(w[4]), Vector256.Create(w[5]));
        var (v6, v7, v8) = (Vector256.Create(w[6]), Vector256.Create(w[7]), Vector256.Create(w[8]));
        var first = Vector256.Create(start);
        for (int r = 0; r < oh; r++)
        {
            float* outRow = dst + (long)r * ow, rowBase = padded + r * rowStep;
            for (int c = 0; c < ow; c += 8)
            {
                float* f = rowBase + c;
                var a = Fma.MultiplyAdd(Vector256.Load(f + t0), v0, first);
                var b = Vector256.Load(f + t3) * v3;
                var d = Vector256.Load(f + t6) * v6;
                a = Fma.MultiplyAdd(Vector256.Load(f + t1), v1, a);
                b = Fma.MultiplyAdd(Vector256.Load(f + t4), v4, b);
                d = Fma.MultiplyAdd(Vector256.Load(f + t7), v7, d);
                a = Fma.MultiplyAdd(Vector256.Load(f + t2), v2, a);
                b = Fma.MultiplyAdd(Vector256.Load(f + t5), v5, b);
                d = Fma.MultiplyAdd(Vector256.Load(f + t8), v8, d);
                var acc = epilogue.Apply(a + b + d);
                if (c + 8 <= ow)
                    Vector256.Store(acc, outRow + c);
                else
                    for (int j = 0; c + j < ow; j++)
                        outRow[c + j] = acc.GetElement(j);
            }
        }
    }

    /// <summary>Output columns from which a small strided layer that <see cref="StridedPairs"/> fits runs its planes rather than
    /// channels-last: 144 channels at 16×16 to 8×8 ran 11 µs against 15–19 on one core; at 4 columns (192 at 8×8) the half-empty
    /// vectors lost, 11 against 5–6.</summary>
    private const int PairsMinWidth = 8;

    /// <summary>Whether <see cref="Plane3x3{TStride}"/> computes this depthwise layer's planes.</summary>
    private static bool StridedPairs(Conv2dGeometry g) =>
        HostGemm.Wide && g.KH == 3 && g.KW == 3 && g.Options.Stride == (2, 2) && g.Options.Padding.Left == 1 && g.Options.Dilation == (1, 1);

    /// <summary>
    /// One output plane of a 3×3 depthwise layer at stride 1 or 2 (<typeparamref name="TStride"/>) with one column of left
    /// padding, straight from the input plane (<paramref name="h"/> × <paramref name="w"/>), with no copy: each input row's
    /// columns under 16 outputs become the left, middle and right taps' vectors in registers (<see cref="ShiftRow"/>,
    /// <see cref="SplitRow"/>); rows above and below the plane and columns right of it read as zeros (padding); an input row's
    /// vectors serve every output row whose taps reach it; the nine taps sum as three chains of three. At stride 2 this
    /// replaced a split of every row into column phases (<see cref="SplitPairs"/>, a call per input row: half of the layer,
    /// mobilenet_v2's 96 channels at 32×32 35 → 9 µs on one core); at stride 1 a zero-bordered copy and nine unaligned loads
    /// per output vector (32 channels at 32×32 16–18 → 9.8–10.5 µs, 144 at 16×16 20 → 8.5). (The taps through a struct of the
    /// nine weights with rows passed by reference ran both 1.5–2× slower.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Plane3x3<TStride>(float* plane, int h, int w, int padTop, float* k, float start, float* dst, int oh, int ow, Epilogue epilogue)
        where TStride : struct, IPlaneStride
    {
        var (w0, w1, w2) = (Vector512.Create(k[0]), Vector512.Create(k[1]), Vector512.Create(k[2]));
        var (w3, w4, w5) = (Vector512.Create(k[3]), Vector512.Create(k[4]), Vector512.Create(k[5]));
        var (w6, w7, w8) = (Vector512.Create(k[6]), Vector512.Create(k[7]), Vector512.Create(k[8]));
        var bias = Vector512.Create(start);
        int s = TStride.Stride;
        for (int c = 0; c < ow; c += 16)
        {
            // Input row s·r − padTop + kh for output row r and tap row kh: at stride 1 rows 1 and 2 of r are rows 0 and 1 of
            // r + 1, at stride 2 row 2 of r is row 0 of r + 1.
            var (l0, m0, r0) = TStride.Row(plane, h, w, -padTop, s * c);
            var (l1, m1, r1) = s == 1 ? TStride.Row(plane, h, w, 1 - padTop, c) : default;
            for (int r = 0; r < oh; r++)
            {
                if (s == 2)
                    (l1, m1, r1) = TStride.Row(plane, h, w, 2 * r - padTop + 1, 2 * c);
                var (l2, m2, r2) = TStride.Row(plane, h, w, s * r - padTop + 2, s * c);
                var a = Avx512F.FusedMultiplyAdd(l0, w0, bias);
                var b = l1 * w3;
                var d = l2 * w6;
                a = Avx512F.FusedMultiplyAdd(m0, w1, a);
                b = Avx512F.FusedMultiplyAdd(m1, w4, b);
                d = Avx512F.FusedMultiplyAdd(m2, w7, d);
                a = Avx512F.FusedMultiplyAdd(r0, w2, a);
                b = Avx512F.FusedMultiplyAdd(r1, w5, b);
                d = Avx512F.FusedMultiplyAdd(r2, w8, d);
                var acc = epilogue.Apply(a + b + d);
                float* outRow = dst + (long)r * ow + c;
                if (c + 16 <= ow)
                    Vector512.Store(acc, outRow);
                else
                    Avx512F.MaskStore(outRow, HostMath.FirstLanes(ow - c), acc);
                if (s == 1)
                    (l0, m0, r0, l1, m1, r1) = (l1, m1, r1, l2, m2, r2);
                else
                    (l0, m0, r0) = (l2, m2, r2);
            }
        }
    }

    /// <summary>The stride of <see cref="Plane3x3{TStride}"/> and how it reads an input row's taps.</summary>
    private interface IPlaneStride
    {
        static abstract int Stride { get; }

        /// <summary>Input row <paramref name="ih"/>'s left, middle and right taps under the 16 outputs whose first tap reads
        /// column <paramref name="from"/>.</summary>
        static abstract (Vector512<float> Left, Vector512<float> Middle, Vector512<float> Right) Row(float* plane, int h, int w, int ih, int from);
    }

    private struct StrideOne : IPlaneStride
    {
        public static int Stride => 1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector512<float> Left, Vector512<float> Middle, Vector512<float> Right) Row(float* plane, int h, int w, int ih, int from) =>
            ShiftRow(plane, h, w, ih, from);
    }

    private struct StrideTwo : IPlaneStride
    {
        public static int Stride => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector512<float> Left, Vector512<float> Middle, Vector512<float> Right) Row(float* plane, int h, int w, int ih, int from) =>
            SplitRow(plane, h, w, ih, from);
    }

    /// <summary>Input row <paramref name="ih"/>'s columns [from − 1, + 16), [from, + 16) and [from + 1, + 16), zero outside the
    /// plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Left, Vector512<float> Middle, Vector512<float> Right) ShiftRow(float* plane, int h, int w, int ih, int from)
    {
        if (ih < 0 || ih >= h)
            return (Vector512<float>.Zero, Vector512<float>.Zero, Vector512<float>.Zero);
        float* row = plane + (long)ih * w;
        var middle = Part(row, w, from);
        var before = Vector512.Create(from > 0 && from <= w ? row[from - 1] : 0f);
        var after = Vector512.Create(from + 16 < w ? row[from + 16] : 0f);
        var left = Avx512F.AlignRight32(middle.AsUInt32(), before.AsUInt32(), 15).AsSingle();
        var right = Avx512F.AlignRight32(after.AsUInt32(), middle.AsUInt32(), 1).AsSingle();
        return (left, middle, right);
    }

    /// <summary>Input row <paramref name="ih"/>'s columns from <paramref name="from"/> at stride 2: the odd ones a pair to the
    /// left (column from − 1 first, zero at the plane's edge), the even ones and the odd ones; all zero outside the plane's
    /// rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Left, Vector512<float> Even, Vector512<float> Odd) SplitRow(float* plane, int h, int w, int ih, int from)
    {
        if (ih < 0 || ih >= h)
            return (Vector512<float>.Zero, Vector512<float>.Zero, Vector512<float>.Zero);
        float* row = plane + (long)ih * w;
        Vector512<float> a = Part(row, w, from), b = Part(row, w, from + 16);
        var even = Avx512F.PermuteVar16x32x2(a, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
        var odd = Avx512F.PermuteVar16x32x2(a, Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
        var before = Vector512.Create(from > 0 && from <= w ? row[from - 1] : 0f);
        var left = Avx512F.AlignRight32(odd.AsUInt32(), before.AsUInt32(), 15).AsSingle();
        return (left, even, odd);
    }

    /// <summary>
    /// Input columns [iw0, iw1) of one row into stride-2 phases: padded column iw + pad goes to phase (iw + pad) mod 2 at index
    /// (iw + pad) / 2. Sixteen columns at a time split into even and odd vectors by two shuffles and a lane permute; the
    /// scalar loop moved one float per iteration, most of a strided depthwise layer's time (mobilenet_v2's 96 channels at
    /// 32×32: 98 µs against ONNX Runtime's 20).
    /// </summary>
    private static void SplitPairs(float* from, int iw0, int iw1, int pad, float* even, float* odd)
    {
        int iw = iw0;
        // Whole pairs start where iw + pad is even; an odd start takes its first column alone.
        if (((iw + pad) & 1) != 0 && iw < iw1)
        {
            odd[(iw + pad) >> 1] = from[iw];
            iw++;
        }
        if (Avx512F.IsSupported)
        {
            // Sixteen columns a permute (evens to the low half, odds to the high), the row's last ones by masked loads and
            // stores: with a padding of 1, a 32-column row left 15 columns to the scalar tail below — most of a stride-2
            // depthwise layer's time (mobilenet_v2's 96 channels at 32×32 spent three times its FMAs' time splitting).
            var split = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
            var iota = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            for (; iw < iw1; iw += 16)
            {
                int count = Math.Min(16, iw1 - iw), j = (iw + pad) >> 1;
                var v = count == 16 ? Vector512.Load(from + iw) : Avx512F.MaskLoad(from + iw, HostMath.FirstLanes(count), Vector512<float>.Zero);
                var halves = Avx512F.PermuteVar16x32(v, split);
                if (count == 16)
                {
                    halves.GetLower().Store(even + j);
                    halves.GetUpper().Store(odd + j);
                }
                else
                {
                    var lanes = iota.GetLower();
                    Avx.MaskStore(even + j, Vector256.LessThan(lanes, Vector256.Create((count + 1) / 2)).AsSingle(), halves.GetLower());
                    Avx.MaskStore(odd + j, Vector256.LessThan(lanes, Vector256.Create(count / 2)).AsSingle(), halves.GetUpper());
                }
            }
            return;
        }
        for (; iw + 16 <= iw1; iw += 16)
        {
            var a = Vector256.Load(from + iw);
            var b = Vector256.Load(from + iw + 8);
            int j = (iw + pad) >> 1;
            // Shuffle picks lanes 0, 2 (or 1, 3) of each 128-bit half of a and b: a0 a2 b0 b2 | a4 a6 b4 b6; the 64-bit
            // permute (0, 2, 1, 3) puts a's pairs before b's.
            Vector256.Store(Avx2.Permute4x64(Avx.Shuffle(a, b, 0x88).AsDouble(), 0xD8).AsSingle(), even + j);
            Vector256.Store(Avx2.Permute4x64(Avx.Shuffle(a, b, 0xDD).AsDouble(), 0xD8).AsSingle(), odd + j);
        }
        for (; iw < iw1; iw++)
        {
            int at = iw + pad;
            ((at & 1) == 0 ? even : odd)[at >> 1] = from[iw];
        }
    }

    /// <summary>Column rows (input channels × taps) up to which a convolution runs <see cref="PointwiseDirect"/>.</summary>
    private const int PointwiseDirectChannels = 64;

    /// <summary>
    /// A stem — few input channels (≤ <see cref="StemChannels"/>) under a large kernel, ≤ <see cref="StemColumnRows"/> column
    /// rows — over <see cref="StemPixels"/> output pixels runs its columns' outer products too: the direct tiles' transposed
    /// stores and partial second slab cost as much as their 72–147 taps' products there (resnet18's 3 → 64 7×7 stride-2 stem
    /// at 64×64: 106–118 µs against 73–81; 8 → 64 3×3 at 32×32: 70–88 against 33–38; 4 → 64 5×5: 79–97 against 43–53). With
    /// fewer pixels (16 → 64 at 16×16: 25 against 44) and more (3 → 64 7×7 at 224×224: 786 against 907, each core's columns
    /// past its L2) the tiles win.
    /// </summary>
    private const int StemChannels = 8, StemColumnRows = 160;

    /// <inheritdoc cref="StemChannels"/>
    private static readonly (int Min, int Max) StemPixels = (1024, 4096);

    /// <summary>Output channels, or else input channels, up to which a 1×1 convolution runs <see cref="PointwiseDirect"/>.</summary>
    private const int PointwiseOuterOutputs = 64, PointwiseOuterInputs = 144;

    /// <summary>
    /// A 1×1 convolution over few input channels (mobilenet's and efficientnet's expansions: 16–64 in, 96–384 out, 16×16 to
    /// 32×32 pixels) as outer products straight from the image: for 64 pixels (four 512-bit vectors) and four output channels
    /// at a time, each input channel adds its plane's four vectors times each channel's broadcast weight into 16 accumulators
    /// (4 loads, 16 FMAs per input channel), then bias and activation are applied and the 4 × 64 outputs stored once. The
    /// packed GEMM spent more than the products on packing the image, its tiles' overhead at K ≤ 64 and a second pass over
    /// the output for the epilogue (16 → 96 channels at 32×32: 72 µs; 32 → 16: 50 µs). Output channels are split across the
    /// cores when <c>parallel</c>. The output planes are <c>outStride</c> floats apart: <c>pixels</c>, or a whole plane when these
    /// pixels are some of its rows. A <c>residual</c> shaped like the output is added before the activation, in the store.
    /// </summary>
    private static void PointwiseDirect<TAct>(float* x, int images, int channels, int pixels, float* w, int outChannels, float* output, int outStride,
        float* bias, float* residual, TAct act, bool parallel)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int blocks = (pixels + 63) / 64;
        bool identity = typeof(TAct) == typeof(ElementwiseOps.Identity);
        // ReLU, ReLU6 and SiLU in the registers (a library call per 64 outputs cost as much as the products); others over the
        // whole output after.
        var epilogue = Epilogue.For<TAct>();
        bool inRegisters = epilogue.InRegisters;
        // An expansion (fewer inputs than outputs) is split across the cores by output channels (groups of four, one
        // contiguous share per core), every core over all pixel blocks: each core's writes are one contiguous part of the
        // output. Split by pixel blocks, each wrote half of every plane, and lines next to its own (which the other core was
        // writing) moved between the cores: two threads writing a 384 KB buffer in interleaved 2 KB runs took 9.8 µs, in
        // two halves 1.4 (16 → 96 channels at 32×32: 20.7–21.5 → 17.6–20.4 µs; 24 → 144 at 16×16: 9.7–13.0 → 8.6–9.6).
        // A projection (more inputs than outputs) is split by pixel blocks: its input, written by a depthwise layer split by
        // channels, is what moves, and by output channels each core read every plane whole — half of them from the other
        // core's cache — where by pixels it reads half of each. After a 3×3 depthwise layer: 32 → 16 at 32×32 5.29 → 3.95
        // µs, 96 → 24 at 16×16 4.24 → 3.67, 144 → 24 5.81 → 4.94 (one pixel block at 8×8: the same either way).
        var rows = new PointwiseRows(x, channels, pixels, blocks, w, outChannels, output, outStride, bias, residual, epilogue);
        int groups = (outChannels + 3) / 4, pixelBlocks = images * blocks;
        long groupWork = 4L * pixelBlocks * 64 * channels, blockWork = 64L * channels * 4 * groups;
        if (parallel && channels > outChannels && HostParallel.Splits(pixelBlocks, blockWork))
            SplitPointwise(rows, pixelBlocks, 0, outChannels, blockWork);
        else if (parallel && HostParallel.Splits(groups, groupWork))
            SplitPointwise(rows, pixelBlocks, groups, outChannels, groupWork);
        else
            rows.Run(0, pixelBlocks, 0, outChannels);
        if (!identity && !inRegisters && outStride != pixels)
            for (int n = 0; n < images; n++)
                for (int k = 0; k < outChannels; k++)
                {
                    var plane = new Span<float>(output + ((long)n * outChannels + k) * outStride, pixels);
                    HostElementwise.ApplyUnary(plane, plane, act);
                }
        else if (!identity && !inRegisters)
        {
            var all = new Span<float>(output, checked(images * outChannels * pixels));
            HostElementwise.ApplyUnary(all, all, act);
        }
    }

    /// <summary><paramref name="rows"/> split across the cores (the closure made here only), one contiguous share a core: its
    /// <paramref name="groups"/> groups of four output channels over every pixel block, or where <paramref name="groups"/> is 0
    /// its <paramref name="pixelBlocks"/> pixel blocks with every output channel.</summary>
    private static void SplitPointwise(PointwiseRows rows, int pixelBlocks, int groups, int outChannels, long workPerItem)
    {
        if (groups == 0)
            HostParallel.For(pixelBlocks, workPerItem, (b0, b1) => rows.Run(b0, b1, 0, outChannels), oneChunkPerCore: true);
        else
            HostParallel.For(groups, workPerItem, (q0, q1) => rows.Run(0, pixelBlocks, 4 * q0, Math.Min(outChannels, 4 * q1)), oneChunkPerCore: true);
    }

    /// <summary>
    /// <see cref="PointwiseDirect{TAct}"/>'s work on pixel blocks [b0, b1) (of all images) and output channels [kStart, kEnd):
    /// a struct, so that a call on one thread (the fused expansion's, per four channels; a stem's rows) allocates nothing —
    /// as a local function its captured variables were a ~300-byte object on every call, 12 KB of mobilenet_v2's 71 KB of
    /// allocations a run.
    /// </summary>
    private readonly struct PointwiseRows(float* x, int channels, int pixels, int blocks, float* w, int outChannels, float* output, int outStride,
        float* bias, float* residual, Epilogue epilogue)
    {
        public void Run(int b0, int b1, int kStart, int kEnd)
        {
            float* tail = stackalloc float[64];
            float* sums = stackalloc float[4 * 64];
            // Not ColumnSlot: that may hold the columns this reads (the calling thread runs a share of the blocks).
            float* padded = blocks * 64 > pixels ? HostScratch.Get(TileSlot, 64L * channels) : null;
            for (int blk = b0; blk < b1; blk++)
            {
                int n = blk / blocks, p0 = blk % blocks * 64, valid = Math.Min(64, pixels - p0);
                float* image = x + (long)n * channels * pixels + p0, result = output + (long)n * outChannels * outStride + p0;
                // A block past the last pixel reads zero-padded copies of its planes, not past the image.
                float* source = image;
                int stride = pixels;
                if (valid < 64)
                {
                    for (int c = 0; c < channels; c++)
                    {
                        new ReadOnlySpan<float>(image + (long)c * pixels, valid).CopyTo(new Span<float>(padded + c * 64, valid));
                        new Span<float>(padded + c * 64 + valid, 64 - valid).Clear();
                    }
                    source = padded;
                    stride = 64;
                }
                for (int k0 = kStart; k0 < kEnd; k0 += 4)
                {
                    int rows = Math.Min(4, kEnd - k0);
                    // Channels past the last repeat it (computed, not stored), so the loop has no branches.
                    float* w0 = w + (long)k0 * channels, w1 = w0 + (rows > 1 ? channels : 0), w2 = w0 + (rows > 2 ? 2L * channels : 0), w3 = w0 + (rows > 3 ? 3L * channels : 0);
                    PointwiseBlock(source, stride, channels, w0, w1, w2, w3, sums);
                    for (int r = 0; r < rows; r++)
                    {
                        float* sum = sums + r * 64;
                        var (q0, q1, q2, q3) = (Vector512.Load(sum), Vector512.Load(sum + 16), Vector512.Load(sum + 32), Vector512.Load(sum + 48));
                        var beta = Vector512.Create(bias == null ? 0f : bias[k0 + r]);
                        (q0, q1, q2, q3) = (q0 + beta, q1 + beta, q2 + beta, q3 + beta);
                        if (residual != null)
                        {
                            // Shaped like the output (whole planes: only the 1×1 form passes one); a tail block's lanes
                            // past the last pixel are masked, not read.
                            float* res = residual + ((long)n * outChannels + k0 + r) * outStride + p0;
                            q0 += Part(res, valid, 0); q1 += Part(res, valid, 16); q2 += Part(res, valid, 32); q3 += Part(res, valid, 48);
                        }
                        (q0, q1, q2, q3) = (epilogue.Apply(q0), epilogue.Apply(q1), epilogue.Apply(q2), epilogue.Apply(q3));
                        float* to = valid == 64 ? result + (long)(k0 + r) * outStride : tail;
                        Vector512.Store(q0, to);
                        Vector512.Store(q1, to + 16);
                        Vector512.Store(q2, to + 32);
                        Vector512.Store(q3, to + 48);
                        if (valid < 64)
                            new ReadOnlySpan<float>(tail, valid).CopyTo(new Span<float>(result + (long)(k0 + r) * outStride, valid));
                    }
                }
            }
        }
    }

    /// <summary>
    /// The activation a convolution applies to its sums in registers before it stores them: ReLU and ReLU6 as a clamp to
    /// [0, high], SiLU as x·σ(x) with <see cref="HostMath.Sigmoid(Vector256{float})"/> (the same function the separate pass
    /// over the output used); none for the others, which the caller applies in one pass after. SiLU in the store saved
    /// efficientnet_b0's 49 SiLU layers that pass and its split across the cores each.
    /// </summary>
    private readonly struct Epilogue
    {
        private readonly Vector512<float> _high;
        private readonly bool _clamp, _silu;

        private Epilogue(float high, bool clamp, bool silu) => (_high, _clamp, _silu) = (Vector512.Create(high), clamp, silu);

        /// <summary>The epilogue of activation <typeparamref name="TAct"/>.</summary>
        public static Epilogue For<TAct>() =>
            typeof(TAct) == typeof(Activation.Relu) ? new(float.PositiveInfinity, true, false)
            : typeof(TAct) == typeof(Activation.Relu6) ? new(6f, true, false)
            : typeof(TAct) == typeof(Activation.Silu) ? new(0f, false, true)
            : default;

        /// <summary>The epilogue of <paramref name="activation"/>; null for one it does not apply in registers.</summary>
        public static Epilogue? Of(FusedActivation activation) => activation switch
        {
            FusedActivation.None => default(Epilogue),
            FusedActivation.Relu => For<Activation.Relu>(),
            FusedActivation.Relu6 => For<Activation.Relu6>(),
            FusedActivation.Silu => For<Activation.Silu>(),
            _ => null,
        };

        /// <summary>Whether the activation is applied here (else by the caller, after).</summary>
        public bool InRegisters => _clamp || _silu;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Apply(Vector256<float> v) =>
            _clamp ? Clamp(v, _high.GetLower()) : _silu ? v * HostMath.Sigmoid(v) : v;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Apply(Vector512<float> v) =>
            _clamp ? Clamp(v, _high) : _silu ? v * HostMath.Sigmoid(v) : v;
    }

    /// <summary>0 where x ≤ 0, high where x ≥ high, else x — NaN stays NaN, as in the ReLU structs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Clamp(Vector512<float> x, Vector512<float> high)
    {
        var y = Vector512.ConditionalSelect(Vector512.LessThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.Zero, x);
        return Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(y, high), high, y);
    }

    /// <inheritdoc cref="Clamp(Vector512{float}, Vector512{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Clamp(Vector256<float> x, Vector256<float> high)
    {
        var y = Vector256.ConditionalSelect(Vector256.LessThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.Zero, x);
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(y, high), high, y);
    }

    /// <summary>Floats [offset, offset + 16) of a row of <paramref name="valid"/>, zero past its end (those lanes not read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Part(float* row, int valid, int offset) =>
        valid >= offset + 16 ? Vector512.Load(row + offset)
        : Avx512F.MaskLoad(row + offset, HostMath.FirstLanes(valid - offset), Vector512<float>.Zero);

    /// <summary>
    /// One output channel's 64 sums of a stem's block (<paramref name="sum"/>, <see cref="PhaseOuterProducts"/>) plus its bias,
    /// activated by the <paramref name="epilogue"/>, stored at <paramref name="dst"/>: the first <paramref name="valid"/> of
    /// them (a part block's through <paramref name="tail"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreSums(float* sum, float bias, int valid, in Epilogue epilogue, float* dst, float* tail)
    {
        var beta = Vector512.Create(bias);
        var (q0, q1, q2, q3) = (Vector512.Load(sum) + beta, Vector512.Load(sum + 16) + beta, Vector512.Load(sum + 32) + beta, Vector512.Load(sum + 48) + beta);
        (q0, q1, q2, q3) = (epilogue.Apply(q0), epilogue.Apply(q1), epilogue.Apply(q2), epilogue.Apply(q3));
        float* to = valid == 64 ? dst : tail;
        Vector512.Store(q0, to);
        Vector512.Store(q1, to + 16);
        Vector512.Store(q2, to + 32);
        Vector512.Store(q3, to + 48);
        if (valid < 64)
            new ReadOnlySpan<float>(tail, valid).CopyTo(new Span<float>(dst, valid));
    }

    /// <summary>
    /// sums[r·64 + j] = Σ_c w_r[c]·x[c·stride + j] for 4 rows of weights and 64 pixels: the accumulators are this method's own
    /// locals (16 registers), which the JIT kept on the stack — a load and a store around every FMA — when the loop sat in
    /// the parallel lambda. (The attention's SmallProduct has the same tile for any width up to 64; with its masked last
    /// vector and width tests this fixed one is 15 % faster: 32 → 192 channels at 8×8 4.4–4.6 against 5.1–5.2 µs.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PointwiseBlock(float* x, int stride, int channels, float* w0, float* w1, float* w2, float* w3, float* sums)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default,
            c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        for (int c = 0; c < channels; c++)
        {
            float* plane = x + (long)c * stride;
            var x0 = Vector512.Load(plane);
            var x1 = Vector512.Load(plane + 16);
            var x2 = Vector512.Load(plane + 32);
            var x3 = Vector512.Load(plane + 48);
            var v = Vector512.Create(w0[c]);
            a0 = Avx512F.FusedMultiplyAdd(x0, v, a0); a1 = Avx512F.FusedMultiplyAdd(x1, v, a1); a2 = Avx512F.FusedMultiplyAdd(x2, v, a2); a3 = Avx512F.FusedMultiplyAdd(x3, v, a3);
            v = Vector512.Create(w1[c]);
            b0 = Avx512F.FusedMultiplyAdd(x0, v, b0); b1 = Avx512F.FusedMultiplyAdd(x1, v, b1); b2 = Avx512F.FusedMultiplyAdd(x2, v, b2); b3 = Avx512F.FusedMultiplyAdd(x3, v, b3);
            v = Vector512.Create(w2[c]);
            c0 = Avx512F.FusedMultiplyAdd(x0, v, c0); c1 = Avx512F.FusedMultiplyAdd(x1, v, c1); c2 = Avx512F.FusedMultiplyAdd(x2, v, c2); c3 = Avx512F.FusedMultiplyAdd(x3, v, c3);
            v = Vector512.Create(w3[c]);
            d0 = Avx512F.FusedMultiplyAdd(x0, v, d0); d1 = Avx512F.FusedMultiplyAdd(x1, v, d1); d2 = Avx512F.FusedMultiplyAdd(x2, v, d2); d3 = Avx512F.FusedMultiplyAdd(x3, v, d3);
        }
        a0.Store(sums); a1.Store(sums + 16); a2.Store(sums + 32); a3.Store(sums + 48);
        b0.Store(sums + 64); b1.Store(sums + 80); b2.Store(sums + 96); b3.Store(sums + 112);
        c0.Store(sums + 128); c1.Store(sums + 144); c2.Store(sums + 160); c3.Store(sums + 176);
        d0.Store(sums + 192); d1.Store(sums + 208); d2.Store(sums + 224); d3.Store(sums + 240);
    }

    /// <summary>
    /// <see cref="PointwiseBlock"/> for a stem's block (<see cref="PhaseOuterProducts"/>): column row c of pixels 16v … 16v + 15
    /// at <paramref name="x0"/> … <paramref name="x3"/>[v] + <paramref name="tap"/>[c]. A kernel of its own: the 1×1 layers'
    /// loop reading either source (a table, a type parameter, or the store in a shared method) ran mobilenet_v2 1–4 % slower
    /// in-process, with its strided rows read exactly as before.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TappedBlock(float* x0, float* x1, float* x2, float* x3, int* tap, int channels, float* w0, float* w1, float* w2, float* w3, float* sums)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default,
            c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        for (int c = 0; c < channels; c++)
        {
            int at = tap[c];
            var v0 = Vector512.Load(x0 + at);
            var v1 = Vector512.Load(x1 + at);
            var v2 = Vector512.Load(x2 + at);
            var v3 = Vector512.Load(x3 + at);
            var v = Vector512.Create(w0[c]);
            a0 = Avx512F.FusedMultiplyAdd(v0, v, a0); a1 = Avx512F.FusedMultiplyAdd(v1, v, a1); a2 = Avx512F.FusedMultiplyAdd(v2, v, a2); a3 = Avx512F.FusedMultiplyAdd(v3, v, a3);
            v = Vector512.Create(w1[c]);
            b0 = Avx512F.FusedMultiplyAdd(v0, v, b0); b1 = Avx512F.FusedMultiplyAdd(v1, v, b1); b2 = Avx512F.FusedMultiplyAdd(v2, v, b2); b3 = Avx512F.FusedMultiplyAdd(v3, v, b3);
            v = Vector512.Create(w2[c]);
            c0 = Avx512F.FusedMultiplyAdd(v0, v, c0); c1 = Avx512F.FusedMultiplyAdd(v1, v, c1); c2 = Avx512F.FusedMultiplyAdd(v2, v, c2); c3 = Avx512F.FusedMultiplyAdd(v3, v, c3);
            v = Vector512.Create(w3[c]);
            d0 = Avx512F.FusedMultiplyAdd(v0, v, d0); d1 = Avx512F.FusedMultiplyAdd(v1, v, d1); d2 = Avx512F.FusedMultiplyAdd(v2, v, d2); d3 = Avx512F.FusedMultiplyAdd(v3, v, d3);
        }
        a0.Store(sums); a1.Store(sums + 16); a2.Store(sums + 32); a3.Store(sums + 48);
        b0.Store(sums + 64); b1.Store(sums + 80); b2.Store(sums + 96); b3.Store(sums + 112);
        c0.Store(sums + 128); c1.Store(sums + 144); c2.Store(sums + 160); c3.Store(sums + 176);
        d0.Store(sums + 192); d1.Store(sums + 208); d2.Store(sums + 224); d3.Store(sums + 240);
    }

    /// <summary>
    /// A convolution with one output pixel per image (a squeeze-and-excite block's 1×1 convolutions on a pooled [N, C, 1, 1]):
    /// from packed weights (<see cref="PackWeights"/>: per block of 64 output channels, a row of them per tap) the pixel's
    /// column value of each tap broadcast against its row, four vectors of channels at once, stored contiguously (the output
    /// is [N, K]); from plain weights a dot product per output channel, four rows a pass (<see cref="HostGemm.Dot4"/>).
    /// As register tiles of 6 pixels × 64 channels it used one pixel in six and stored every channel by a gather:
    /// efficientnet's 48 → 1152 ran 10 µs, 1152 → 48 13.6.
    /// </summary>
    private static void SinglePixel<TAct>(float* x, float* w, float* packed, float* output, float* bias, float* residual, Conv2dGeometry g, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int cgkk = g.C * g.KH * g.KW;
        bool pointwise = g.KH == 1 && g.KW == 1 && g.H == 1 && g.W == 1;
        for (int n = 0; n < g.N; n++)
        {
            float* column = x + (long)n * g.C * g.H * g.W, result = output + (long)n * g.K;
            if (!pointwise)
            {
                column = HostScratch.Get(ColumnSlot, cgkk);
                Im2Col(x + (long)n * g.C * g.H * g.W, column, g.Index, g.C, 1, 1);
            }
            float* image = column;
            if (packed != null)
                HostParallel.For((PackedChannels(g.K) + TileChannels - 1) / TileChannels, (long)TileChannels * cgkk, (b0, b1) =>
                {
                    for (int block = b0; block < b1; block++)
                    {
                        int o0 = block * TileChannels, width = Math.Min(TileChannels, PackedChannels(g.K) - o0);
                        float* rows = packed + (long)o0 * cgkk;
                        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                        for (int t = 0; t < cgkk; t++, rows += width)
                        {
                            var v = Vector512.Create(image[t]);
                            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(rows), v, a0);
                            if (width > 16)
                                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(rows + 16), v, a1);
                            if (width > 32)
                                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(rows + 32), v, a2);
                            if (width > 48)
                                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(rows + 48), v, a3);
                        }
                        int valid = Math.Min(TileChannels, g.K - o0);
                        for (int i = 0; i * 16 < valid; i++)
                            Avx512F.MaskStore(result + o0 + i * 16, HostMath.FirstLanes(valid - i * 16), i == 0 ? a0 : i == 1 ? a1 : i == 2 ? a2 : a3);
                    }
                });
            else
                HostParallel.For((g.K + 3) / 4, 4L * cgkk, (q0, q1) =>
                {
                    for (int k = q0 * 4; k < Math.Min(g.K, q1 * 4); k += 4)
                    {
                        if (k + 4 <= g.K)
                            (result[k], result[k + 1], result[k + 2], result[k + 3]) = HostGemm.Dot4(image, w + (long)k * cgkk, cgkk, cgkk);
                        else
                            for (int j = k; j < g.K; j++)
                                result[j] = TensorPrimitives.Dot(new ReadOnlySpan<float>(image, cgkk), new ReadOnlySpan<float>(w + (long)j * cgkk, cgkk));
                    }
                });
            var all = new Span<float>(result, g.K);
            if (bias != null)
                TensorPrimitives.Add(all, new ReadOnlySpan<float>(bias, g.K), all);
            if (residual != null)
                TensorPrimitives.Add(all, new ReadOnlySpan<float>(residual + (long)n * g.K, g.K), all);
            if (typeof(TAct) != typeof(ElementwiseOps.Identity))
                HostElementwise.ApplyUnary(all, all, act);
        }
    }

    /// <summary>Output planes at or below which a depthwise convolution runs channels-last (see <see cref="DepthwiseChannelsLast"/>).</summary>
    private const int ChannelsLastPixels = 64;

    /// <summary>Shares of each image's depthwise channels whose projections <see cref="DepthwiseChannelsLast"/> sums apart (one
    /// per core of the project's 2-core machines; a batch's images give more cores work).</summary>
    private const int ProjectionShares = 2;

    /// <summary>Blocks of 16 channels from which <see cref="DepthwiseChannelsLast"/> expands four blocks at a time.</summary>
    private const int ExpandUnitBlocks = 16;

    /// <summary>
    /// A depthwise convolution on small feature maps (a network's late stages: 2×2 to 8×8 pixels, hundreds of channels),
    /// sixteen channels at a time in the lanes of one vector: the block's input planes are interleaved channels-last into a
    /// zero-bordered image that every tap of every output pixel lands inside (stride and dilation become offsets, no bounds
    /// per tap), four output pixels sum their taps together with one FMA per tap for all sixteen channels, and the
    /// result is de-interleaved into the output planes. The weights come as <see cref="PackWeights"/> interleaves them
    /// (<paramref name="packed"/>), or are gathered so per block when <paramref name="packed"/> is null. Each sum is activated
    /// by the <paramref name="epilogue"/> before it is stored (ReLU, ReLU6, SiLU). A full
    /// block's planes move in and out 16 pixels at a time by 16 × 16 register transposes (<see cref="HostMath.Transpose16"/>),
    /// otherwise by 8-lane gathers (down the 16 channels, then along each channel's pixels). Per plane, the row-by-row form spent its time on loop and call
    /// overhead (4×4 planes: 36 row updates of 4 floats each, 0.2 GFLOP/s); eight lanes with a bounds test per tap ran
    /// efficientnet_b0's 672 channels at 4×4 with 5×5 taps at 5.5 GFLOP/s. Lanes past the last block's channels compute
    /// whatever the buffers hold and are not stored.
    /// </summary>
    private static void DepthwiseChannelsLast(float* x, float* w, float* packed, float* output, float* bias, Conv2dGeometry g, Epilogue epilogue,
        Expansion expansion = default, Projection projection = default)
    {
        const int lanes = 16;
        var ix = g.Index;
        int pixels = g.OH * g.OW, inPixels = ix.H * ix.W, taps = g.KH * g.KW, blocks = (g.K + lanes - 1) / lanes;
        // The bordered image's extent is what the output's taps reach: input rows and columns beyond it are never read.
        int bh = (g.OH - 1) * ix.StrideH + (g.KH - 1) * ix.DilationH + 1, bw = (g.OW - 1) * ix.StrideW + (g.KW - 1) * ix.DilationW + 1;
        int rows = Math.Min(ix.H, bh - ix.PadTop), cols = Math.Min(ix.W, bw - ix.PadLeft);
        long bordered = (long)bh * bw * lanes;
        // A block's work in multiply-adds and element moves: its FMAs plus the interleaving both ways (or the expansion's
        // multiply-adds in).
        // With an expansion of 16 blocks or more a unit is the four blocks of one 64-channel block of its packed weights,
        // expanded together (each weight row read whole, in order); otherwise one block. With fewer, four-block units left
        // the cores unbalanced (mobilenet_v2's 192 channels: three units) and one-block units ran the model faster (two
        // threads, in-process: 687 → 671, 639 → 622, 640 → 615 µs; efficientnet_b0 within ±4%).
        int perUnit = expansion.Weights != null && blocks >= ExpandUnitBlocks ? TileChannels / lanes : 1, units = (blocks + perUnit - 1) / perUnit;
        long work = perUnit * (4L * lanes * (pixels * taps + 2 * (inPixels + pixels)) + (long)lanes * inPixels * expansion.Channels
            + (long)lanes * pixels * projection.OutChannels);
        // A projection's partial sums: each image's units in ProjectionShares contiguous shares, each share summing its
        // channels' part of every output into a [pixels][packed output channels] set of its own, in unit order; the sets are
        // added in share order at the end. The loop splits the shares, never a share, so no sum depends on the split (one
        // thread computes the same bits as two).
        bool projecting = projection.Weights != null;
        int shares = Math.Min(ProjectionShares, units), parts = projecting ? shares : units;
        long partialImage = (long)pixels * PackedChannels(projection.OutChannels);
        HostParallel.For(g.N * parts, work * units / parts, (i0, i1) =>
        {
            float* images = HostScratch.Get(ColumnSlot, bordered * perUnit);
            float* yout = HostScratch.Get(TileSlot, (long)pixels * lanes);
            // The borders are cleared once per chunk: each block rewrites only the interior.
            new Span<float>(images, checked((int)(bordered * perUnit))).Clear();
            float* gathered = stackalloc float[taps * lanes];
            int* tapOffset = stackalloc int[taps];
            float* lane = stackalloc float[lanes];
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                    tapOffset[kh * g.KW + kw] = (kh * ix.DilationH * bw + kw * ix.DilationW) * lanes;
            var down = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * inPixels;
            var along = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * lanes;
            var block = stackalloc Vector512<float>[16];
            // Where each input pixel goes in the bordered image (−1: beyond what the taps reach), for every way a block moves in.
            int* inOffset = stackalloc int[inPixels];
            for (int ih = 0; ih < ix.H; ih++)
                for (int iw = 0; iw < ix.W; iw++)
                    inOffset[ih * ix.W + iw] = ih < rows && iw < cols ? ((ih + ix.PadTop) * bw + iw + ix.PadLeft) * lanes : -1;
            int* pixelOffset = stackalloc int[pixels];
            for (int oh = 0; oh < g.OH; oh++)
                for (int ow = 0; ow < g.OW; ow++)
                    pixelOffset[oh * g.OW + ow] = (oh * ix.StrideH * bw + ow * ix.StrideW) * lanes;
            for (int item = i0; item < i1; item++)
            {
                // Item: an image's part — one unit, or with a projection one of its shares of units. Bounds rounded up: the
                // first share, which the calling thread runs (its chunk comes first) and which finds the input in its cache (the
                // previous layer's sums were added there), is the larger of two unequal shares (576 channels: 5 | 4 units of
                // 64). The other way round the calling thread waited 3–6 µs on each of mobilenet_v2's 576- and 960-channel
                // blocks; in-process A/B 241.4 → 239.1, 244.8 → 241.5 µs.
                int n = item / parts, part = item % parts;
                int firstUnit = (units * part + parts - 1) / parts, lastUnit = (units * (part + 1) + parts - 1) / parts;
                float* partials = null;
                if (projecting)
                {
                    partials = projection.Partials + item * partialImage;
                    new Span<float>(partials, checked((int)partialImage)).Clear();
                }
                for (int unit = firstUnit; unit < lastUnit; unit++)
                for (int head = unit * perUnit, blk = head; blk < Math.Min(blocks, head + perUnit); blk++)
                {
                    int k0 = blk * lanes, valid = Math.Min(lanes, g.K - k0);
                    float* planes = x + ((long)n * g.C + k0) * inPixels, xin = images + (blk - head) * bordered;
                    if (expansion.Weights != null)
                    {
                        float* image = x + (long)n * expansion.Channels * inPixels;
                        if (perUnit == 1)
                            ExpandBlock(expansion, image, inPixels, k0, inOffset, xin);
                        else if (blk == head)
                            Expand(expansion, image, inPixels, k0, inOffset, images, bordered);
                    }
                    else if (valid == lanes && inPixels % 16 == 0 && Avx512F.IsSupported)
                    {
                        // 16 channels × 16 pixels at a time transposed in registers (the planes are consecutive in NCHW).
                        for (int q0 = 0; q0 < inPixels; q0 += 16)
                        {
                            for (int c = 0; c < lanes; c++)
                                block[c] = Vector512.Load(planes + (long)c * inPixels + q0);
                            HostMath.Transpose16(block);
                            for (int i = 0; i < 16; i++)
                                if (inOffset[q0 + i] >= 0)
                                    block[i].Store(xin + inOffset[q0 + i]);
                        }
                    }
                    else if (valid == lanes && Avx2.IsSupported)
                    {
                        for (int q = 0; q < inPixels; q++)
                            if (inOffset[q] >= 0)
                            {
                                Vector256.Store(Avx2.GatherVector256(planes + q, down, 4), xin + inOffset[q]);
                                Vector256.Store(Avx2.GatherVector256(planes + 8L * inPixels + q, down, 4), xin + inOffset[q] + 8);
                            }
                    }
                    else
                        for (int c = 0; c < valid; c++)
                            for (int q = 0; q < inPixels; q++)
                                if (inOffset[q] >= 0)
                                    xin[inOffset[q] + c] = planes[(long)c * inPixels + q];
                    float* weights = gathered;
                    if (packed != null)
                        weights = packed + (long)(k0 / lanes) * taps * lanes;
                    else
                        for (int t = 0; t < taps; t++)
                            GatherRows(w + (long)k0 * taps, taps, valid, t, gathered + t * lanes);
                    for (int c = 0; c < lanes; c++)
                        lane[c] = c < valid && bias != null ? bias[k0 + c] : 0f;
                    var start = Vector512.Load(lane);
                    int p = 0;
                    // Four pixels share each tap's weight vector: four independent FMA chains (a group may span output rows, so
                    // 2×2 and 4×4 maps fill it too).
                    for (; p + 4 <= pixels; p += 4)
                    {
                        float* q0 = xin + pixelOffset[p], q1 = xin + pixelOffset[p + 1], q2 = xin + pixelOffset[p + 2], q3 = xin + pixelOffset[p + 3];
                        Vector512<float> a0 = start, a1 = start, a2 = start, a3 = start;
                        for (int t = 0; t < taps; t++)
                        {
                            var wt = Vector512.Load(weights + t * lanes);
                            int at = tapOffset[t];
                            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(q0 + at), wt, a0);
                            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(q1 + at), wt, a1);
                            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(q2 + at), wt, a2);
                            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(q3 + at), wt, a3);
                        }
                        (a0, a1, a2, a3) = (epilogue.Apply(a0), epilogue.Apply(a1), epilogue.Apply(a2), epilogue.Apply(a3));
                        float* o = yout + p * lanes;
                        a0.Store(o); a1.Store(o + lanes); a2.Store(o + 2 * lanes); a3.Store(o + 3 * lanes);
                    }
                    for (; p < pixels; p++)
                    {
                        float* q = xin + pixelOffset[p];
                        var a = start;
                        for (int t = 0; t < taps; t++)
                            a = Vector512.FusedMultiplyAdd(Vector512.Load(q + tapOffset[t]), Vector512.Load(weights + t * lanes), a);
                        epilogue.Apply(a).Store(yout + p * lanes);
                    }
                    if (partials != null)
                    {
                        Project(projection, yout, pixels, k0, valid, partials);
                        continue;
                    }
                    if (valid == lanes && pixels % 16 == 0 && Avx512F.IsSupported)
                    {
                        float* first = output + ((long)n * g.K + k0) * pixels;
                        for (int p0 = 0; p0 < pixels; p0 += 16)
                        {
                            for (int i = 0; i < 16; i++)
                                block[i] = Vector512.Load(yout + (p0 + i) * lanes);
                            HostMath.Transpose16(block);
                            for (int c = 0; c < lanes; c++)
                                block[c].Store(first + (long)c * pixels + p0);
                        }
                        continue;
                    }
                    for (int c = 0; c < valid; c++)
                    {
                        float* plane = output + ((long)n * g.K + k0 + c) * pixels, from = yout + c;
                        int px = 0;
                        if (Avx2.IsSupported)
                        {
                            for (; px + 8 <= pixels; px += 8)
                                Vector256.Store(Avx2.GatherVector256(from + px * lanes, along, 4), plane + px);
                            if (px + 4 <= pixels)
                            {
                                Vector128.Store(Avx2.GatherVector128(from + px * lanes, along.GetLower(), 4), plane + px);
                                px += 4;
                            }
                        }
                        for (; px < pixels; px++)
                            plane[px] = from[px * lanes];
                    }
                }
            }
        });
        if (projecting)
            FinishProjection(projection, shares, g.N, pixels, output);
    }

    /// <summary>
    /// A 1×1 convolution (stride 1, no padding, one group) whose output only a depthwise convolution reads, computed by
    /// <see cref="DepthwiseChannelsLast"/> straight into its channels-last block (<see cref="Expand"/>): its weights as
    /// <see cref="PackWeights"/> lays them out, its bias (or null) and activation, and its input channels.
    /// </summary>
    private readonly struct Expansion(float* weights, float* bias, int channels, int outChannels, Epilogue epilogue)
    {
        public readonly float* Weights = weights, Bias = bias;
        public readonly int Channels = channels, OutChannels = outChannels;
        public readonly Epilogue Epilogue = epilogue;
    }

    /// <summary>
    /// A 1×1 convolution (one group) that alone reads <see cref="DepthwiseChannelsLast"/>'s output, computed from each block
    /// of 16 depthwise channels while the block is in registers' reach (<see cref="Project"/>): its weights packed by
    /// <see cref="PackWeights"/> ([E] rows per 64-channel tile), its bias and residual (or null), its activation, the
    /// depthwise channels E it reads and its output channels; and the scratch of partial sums, one set per image and fixed
    /// share of its depthwise channels (each share sums its channels' part of every output), summed by
    /// <see cref="FinishProjection"/>.
    /// </summary>
    private readonly struct Projection(float* weights, float* bias, float* residual, int channels, int outChannels, Epilogue epilogue, float* partials)
    {
        public readonly float* Weights = weights, Bias = bias, Residual = residual, Partials = partials;
        public readonly int Channels = channels, OutChannels = outChannels;
        public readonly Epilogue Epilogue = epilogue;
    }

    /// <summary>
    /// partials[p, o] += Σ_c yout[p, c]·W[o, k0 + c] over the block's <paramref name="valid"/> depthwise channels from
    /// <paramref name="k0"/> (yout [pixels, 16] channels-last, as the depthwise loop leaves it; partials [pixels, packed output
    /// channels]): four pixels × four vectors of outputs a register tile, each weight row's 64 floats read in order and each
    /// pixel's channel broadcast, as <see cref="Expand"/> does; a tile narrower than 64 one vector of outputs × eight pixels.
    /// </summary>
    private static void Project(in Projection pr, float* yout, int pixels, int k0, int valid, float* partials)
    {
        const int lanes = 16;
        int ldp = PackedChannels(pr.OutChannels);
        for (int tile = 0; tile < ldp; tile += TileChannels)
        {
            int width = Math.Min(TileChannels, ldp - tile);
            float* w = pr.Weights + (long)tile * pr.Channels + (long)k0 * width, acc = partials + tile;
            if (width == TileChannels)
            {
                int p = 0;
                for (; p + 4 <= pixels; p += 4)
                {
                    float* r0 = acc + (long)p * ldp, r1 = r0 + ldp, r2 = r1 + ldp, r3 = r2 + ldp;
                    Vector512<float> a00 = Vector512.Load(r0), a01 = Vector512.Load(r0 + 16), a02 = Vector512.Load(r0 + 32), a03 = Vector512.Load(r0 + 48);
                    Vector512<float> a10 = Vector512.Load(r1), a11 = Vector512.Load(r1 + 16), a12 = Vector512.Load(r1 + 32), a13 = Vector512.Load(r1 + 48);
                    Vector512<float> a20 = Vector512.Load(r2), a21 = Vector512.Load(r2 + 16), a22 = Vector512.Load(r2 + 32), a23 = Vector512.Load(r2 + 48);
                    Vector512<float> a30 = Vector512.Load(r3), a31 = Vector512.Load(r3 + 16), a32 = Vector512.Load(r3 + 32), a33 = Vector512.Load(r3 + 48);
                    float* y = yout + p * lanes, wc = w;
                    for (int c = 0; c < valid; c++, y++, wc += TileChannels)
                    {
                        Vector512<float> w0 = Vector512.Load(wc), w1 = Vector512.Load(wc + 16), w2 = Vector512.Load(wc + 32), w3 = Vector512.Load(wc + 48);
                        var x0 = Vector512.Create(y[0]);
                        a00 = Vector512.FusedMultiplyAdd(w0, x0, a00); a01 = Vector512.FusedMultiplyAdd(w1, x0, a01);
                        a02 = Vector512.FusedMultiplyAdd(w2, x0, a02); a03 = Vector512.FusedMultiplyAdd(w3, x0, a03);
                        var x1 = Vector512.Create(y[lanes]);
                        a10 = Vector512.FusedMultiplyAdd(w0, x1, a10); a11 = Vector512.FusedMultiplyAdd(w1, x1, a11);
                        a12 = Vector512.FusedMultiplyAdd(w2, x1, a12); a13 = Vector512.FusedMultiplyAdd(w3, x1, a13);
                        var x2 = Vector512.Create(y[2 * lanes]);
                        a20 = Vector512.FusedMultiplyAdd(w0, x2, a20); a21 = Vector512.FusedMultiplyAdd(w1, x2, a21);
                        a22 = Vector512.FusedMultiplyAdd(w2, x2, a22); a23 = Vector512.FusedMultiplyAdd(w3, x2, a23);
                        var x3 = Vector512.Create(y[3 * lanes]);
                        a30 = Vector512.FusedMultiplyAdd(w0, x3, a30); a31 = Vector512.FusedMultiplyAdd(w1, x3, a31);
                        a32 = Vector512.FusedMultiplyAdd(w2, x3, a32); a33 = Vector512.FusedMultiplyAdd(w3, x3, a33);
                    }
                    a00.Store(r0); a01.Store(r0 + 16); a02.Store(r0 + 32); a03.Store(r0 + 48);
                    a10.Store(r1); a11.Store(r1 + 16); a12.Store(r1 + 32); a13.Store(r1 + 48);
                    a20.Store(r2); a21.Store(r2 + 16); a22.Store(r2 + 32); a23.Store(r2 + 48);
                    a30.Store(r3); a31.Store(r3 + 16); a32.Store(r3 + 32); a33.Store(r3 + 48);
                }
                for (; p < pixels; p++)
                {
                    float* r = acc + (long)p * ldp;
                    Vector512<float> a0 = Vector512.Load(r), a1 = Vector512.Load(r + 16), a2 = Vector512.Load(r + 32), a3 = Vector512.Load(r + 48);
                    float* y = yout + p * lanes, wc = w;
                    for (int c = 0; c < valid; c++, wc += TileChannels)
                    {
                        var xv = Vector512.Create(y[c]);
                        a0 = Vector512.FusedMultiplyAdd(Vector512.Load(wc), xv, a0);
                        a1 = Vector512.FusedMultiplyAdd(Vector512.Load(wc + 16), xv, a1);
                        a2 = Vector512.FusedMultiplyAdd(Vector512.Load(wc + 32), xv, a2);
                        a3 = Vector512.FusedMultiplyAdd(Vector512.Load(wc + 48), xv, a3);
                    }
                    a0.Store(r); a1.Store(r + 16); a2.Store(r + 32); a3.Store(r + 48);
                }
                continue;
            }
            for (int v = 0; v < width; v += 16)
            {
                int p = 0;
                for (; p + 8 <= pixels; p += 8)
                {
                    float* r = acc + (long)p * ldp + v;
                    Vector512<float> a0 = Vector512.Load(r), a1 = Vector512.Load(r + ldp), a2 = Vector512.Load(r + 2 * ldp), a3 = Vector512.Load(r + 3 * ldp);
                    Vector512<float> a4 = Vector512.Load(r + 4 * ldp), a5 = Vector512.Load(r + 5 * ldp), a6 = Vector512.Load(r + 6 * ldp), a7 = Vector512.Load(r + 7 * ldp);
                    float* y = yout + p * lanes, wc = w + v;
                    for (int c = 0; c < valid; c++, y++, wc += width)
                    {
                        var wv = Vector512.Load(wc);
                        a0 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[0]), a0);
                        a1 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[lanes]), a1);
                        a2 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[2 * lanes]), a2);
                        a3 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[3 * lanes]), a3);
                        a4 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[4 * lanes]), a4);
                        a5 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[5 * lanes]), a5);
                        a6 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[6 * lanes]), a6);
                        a7 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(y[7 * lanes]), a7);
                    }
                    a0.Store(r); a1.Store(r + ldp); a2.Store(r + 2 * ldp); a3.Store(r + 3 * ldp);
                    a4.Store(r + 4 * ldp); a5.Store(r + 5 * ldp); a6.Store(r + 6 * ldp); a7.Store(r + 7 * ldp);
                }
                for (; p < pixels; p++)
                {
                    float* r = acc + (long)p * ldp + v, y = yout + p * lanes, wc = w + v;
                    var a = Vector512.Load(r);
                    for (int c = 0; c < valid; c++, wc += width)
                        a = Vector512.FusedMultiplyAdd(Vector512.Load(wc), Vector512.Create(y[c]), a);
                    a.Store(r);
                }
            }
        }
    }

    /// <summary>
    /// The projection's output [N, K, pixels] = act(b + Σ over the <paramref name="sets"/> partial sums + residual): 16 pixels ×
    /// 16 output channels at a time summed channels-last, transposed in registers (<see cref="HostMath.Transpose16"/>), then
    /// the residual added and the activation applied a row of 16 pixels (masked below 16) at a time.
    /// </summary>
    private static void FinishProjection(in Projection pr, int sets, int images, int pixels, float* output)
    {
        int k = pr.OutChannels, ldp = PackedChannels(k);
        long perSet = (long)pixels * ldp;
        var block = stackalloc Vector512<float>[16];
        for (int n = 0; n < images; n++)
            for (int k0 = 0; k0 < k; k0 += 16)
            {
                var bias = pr.Bias == null ? Vector512<float>.Zero : Part(pr.Bias + k0, k - k0, 0);
                int rows = Math.Min(16, k - k0);
                for (int p0 = 0; p0 < pixels; p0 += 16)
                {
                    int count = Math.Min(16, pixels - p0);
                    for (int i = 0; i < 16; i++)
                    {
                        if (i >= count)
                        {
                            block[i] = default;
                            continue;
                        }
                        float* at = pr.Partials + (long)n * sets * perSet + (long)(p0 + i) * ldp + k0;
                        var v = bias + Vector512.Load(at);
                        for (int s = 1; s < sets; s++)
                            v += Vector512.Load(at + s * perSet);
                        block[i] = v;
                    }
                    HostMath.Transpose16(block);
                    var mask = HostMath.FirstLanes(count);
                    for (int c = 0; c < rows; c++)
                    {
                        long at = ((long)n * k + k0 + c) * pixels + p0;
                        var v = block[c];
                        if (pr.Residual != null)
                            v += count == 16 ? Vector512.Load(pr.Residual + at) : Avx512F.MaskLoad(pr.Residual + at, mask, Vector512<float>.Zero);
                        v = pr.Epilogue.Apply(v);
                        if (count == 16)
                            v.Store(output + at);
                        else
                            Avx512F.MaskStore(output + at, mask, v);
                    }
                }
            }
    }

    /// <summary>
    /// act(b + W·x) for the expanded channels [k0, k0 + 64) of one block of the packed weights at every input pixel, each
    /// pixel's 16 channels one vector stored where <paramref name="inOffset"/> puts it in block k's bordered image
    /// (<paramref name="images"/> + k·<paramref name="bordered"/>; pixels the taps never reach, at −1, are skipped). Four pixels
    /// × four vectors of channels a register tile: each input channel's whole 64-float weight row, read in order, times each
    /// pixel's broadcast value. (One 16-channel block at a time read every fourth line of the rows: efficientnet_b0's 192 →
    /// 1152 expansion at 2×2 took 60 µs of a 36 µs pair.) The expanded tensor is never written in NCHW, nor read back and
    /// interleaved. A last block of fewer than 64 channels goes 16 at a time (<see cref="ExpandBlock"/>).
    /// </summary>
    private static void Expand(in Expansion e, float* image, int inPixels, int k0, int* inOffset, float* images, long bordered)
    {
        int ldw = PackedChannels(e.OutChannels), width = Math.Min(TileChannels, ldw - k0), cin = e.Channels;
        float* w = e.Weights + (long)k0 * cin;
        if (width < TileChannels)
        {
            for (int s = 0; s < width / 16; s++)
                ExpandBlock(e, image, inPixels, k0 + s * 16, inOffset, images + s * bordered);
            return;
        }
        float* b = e.Bias;
        int left = e.OutChannels - k0;
        Vector512<float> c0 = b == null ? default : Part(b + k0, left, 0), c1 = b == null ? default : Part(b + k0, left, 16);
        Vector512<float> c2 = b == null ? default : Part(b + k0, left, 32), c3 = b == null ? default : Part(b + k0, left, 48);
        int q = 0;
        for (; q + 4 <= inPixels; q += 4)
        {
            Vector512<float> a00 = c0, a01 = c0, a02 = c0, a03 = c0, a10 = c1, a11 = c1, a12 = c1, a13 = c1;
            Vector512<float> a20 = c2, a21 = c2, a22 = c2, a23 = c2, a30 = c3, a31 = c3, a32 = c3, a33 = c3;
            float* xq = image + q, wc = w;
            for (int c = 0; c < cin; c++, xq += inPixels, wc += TileChannels)
            {
                Vector512<float> w0 = Vector512.Load(wc), w1 = Vector512.Load(wc + 16), w2 = Vector512.Load(wc + 32), w3 = Vector512.Load(wc + 48);
                var x0 = Vector512.Create(xq[0]);
                a00 = Vector512.FusedMultiplyAdd(w0, x0, a00); a10 = Vector512.FusedMultiplyAdd(w1, x0, a10);
                a20 = Vector512.FusedMultiplyAdd(w2, x0, a20); a30 = Vector512.FusedMultiplyAdd(w3, x0, a30);
                var x1 = Vector512.Create(xq[1]);
                a01 = Vector512.FusedMultiplyAdd(w0, x1, a01); a11 = Vector512.FusedMultiplyAdd(w1, x1, a11);
                a21 = Vector512.FusedMultiplyAdd(w2, x1, a21); a31 = Vector512.FusedMultiplyAdd(w3, x1, a31);
                var x2 = Vector512.Create(xq[2]);
                a02 = Vector512.FusedMultiplyAdd(w0, x2, a02); a12 = Vector512.FusedMultiplyAdd(w1, x2, a12);
                a22 = Vector512.FusedMultiplyAdd(w2, x2, a22); a32 = Vector512.FusedMultiplyAdd(w3, x2, a32);
                var x3 = Vector512.Create(xq[3]);
                a03 = Vector512.FusedMultiplyAdd(w0, x3, a03); a13 = Vector512.FusedMultiplyAdd(w1, x3, a13);
                a23 = Vector512.FusedMultiplyAdd(w2, x3, a23); a33 = Vector512.FusedMultiplyAdd(w3, x3, a33);
            }
            StoreExpanded(e.Epilogue, images, inOffset + q, a00, a01, a02, a03);
            StoreExpanded(e.Epilogue, images + bordered, inOffset + q, a10, a11, a12, a13);
            StoreExpanded(e.Epilogue, images + 2 * bordered, inOffset + q, a20, a21, a22, a23);
            StoreExpanded(e.Epilogue, images + 3 * bordered, inOffset + q, a30, a31, a32, a33);
        }
        for (; q < inPixels; q++)
        {
            Vector512<float> a0 = c0, a1 = c1, a2 = c2, a3 = c3;
            float* xq = image + q, wc = w;
            for (int c = 0; c < cin; c++, xq += inPixels, wc += TileChannels)
            {
                var xv = Vector512.Create(*xq);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(wc), xv, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(wc + 16), xv, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(wc + 32), xv, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(wc + 48), xv, a3);
            }
            if (inOffset[q] >= 0)
            {
                e.Epilogue.Apply(a0).Store(images + inOffset[q]);
                e.Epilogue.Apply(a1).Store(images + bordered + inOffset[q]);
                e.Epilogue.Apply(a2).Store(images + 2 * bordered + inOffset[q]);
                e.Epilogue.Apply(a3).Store(images + 3 * bordered + inOffset[q]);
            }
        }
    }

    /// <summary>
    /// <see cref="Expand"/> for one block of 16 expanded channels from <paramref name="k0"/> (its weights a vector in each row of
    /// its 64-channel block of the packed weights): eight pixels (then one) a register tile.
    /// </summary>
    private static void ExpandBlock(in Expansion e, float* image, int inPixels, int k0, int* inOffset, float* xin)
    {
        int tile = k0 / TileChannels * TileChannels, stride = Math.Min(TileChannels, PackedChannels(e.OutChannels) - tile);
        float* w = e.Weights + (long)tile * e.Channels + (k0 - tile);
        var bias = e.Bias == null ? Vector512<float>.Zero : Part(e.Bias + k0, e.OutChannels - k0, 0);
        int q = 0;
        for (; q + 8 <= inPixels; q += 8)
        {
            Vector512<float> a0 = bias, a1 = bias, a2 = bias, a3 = bias, a4 = bias, a5 = bias, a6 = bias, a7 = bias;
            float* xq = image + q;
            for (int c = 0; c < e.Channels; c++, xq += inPixels)
            {
                var wv = Vector512.Load(w + (long)c * stride);
                a0 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[0]), a0);
                a1 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[1]), a1);
                a2 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[2]), a2);
                a3 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[3]), a3);
                a4 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[4]), a4);
                a5 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[5]), a5);
                a6 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[6]), a6);
                a7 = Vector512.FusedMultiplyAdd(wv, Vector512.Create(xq[7]), a7);
            }
            StoreExpanded(e.Epilogue, xin, inOffset + q, a0, a1, a2, a3);
            StoreExpanded(e.Epilogue, xin, inOffset + q + 4, a4, a5, a6, a7);
        }
        for (; q < inPixels; q++)
        {
            var a = bias;
            float* xq = image + q;
            for (int c = 0; c < e.Channels; c++, xq += inPixels)
                a = Vector512.FusedMultiplyAdd(Vector512.Load(w + (long)c * stride), Vector512.Create(*xq), a);
            if (inOffset[q] >= 0)
                e.Epilogue.Apply(a).Store(xin + inOffset[q]);
        }
    }

    /// <summary>Four expanded pixels activated into the bordered image where the taps reach them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreExpanded(in Epilogue epilogue, float* xin, int* offset, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        if (offset[0] >= 0) epilogue.Apply(a0).Store(xin + offset[0]);
        if (offset[1] >= 0) epilogue.Apply(a1).Store(xin + offset[1]);
        if (offset[2] >= 0) epilogue.Apply(a2).Store(xin + offset[2]);
        if (offset[3] >= 0) epilogue.Apply(a3).Store(xin + offset[3]);
    }

    /// <summary>Whether <see cref="ExpandDepthwise"/> computes a 1×1 expansion with <paramref name="expandActivation"/> into the
    /// depthwise convolution <paramref name="g"/> with <paramref name="activation"/>: with 512-bit vectors, one output channel
    /// per group, both activations applied in registers, and either ≤ 64 output pixels (the layer runs channels-last) or a
    /// 3×3 kernel at stride 1 or 2 with one column of left padding (<see cref="Plane3x3{TStride}"/>'s layers).</summary>
    public static bool ExpandsDepthwise(Conv2dGeometry g, FusedActivation expandActivation, FusedActivation activation) =>
        HostGemm.Wide && g.Kg == 1 && g.Cg == 1 && g.Options.Groups == g.C && Epilogue.Of(expandActivation) is not null
        && Epilogue.Of(activation) is not null && (g.OH * g.OW <= ChannelsLastPixels || ExpandsPlanes(g));

    /// <summary>A depthwise layer over more than 64 output pixels that <see cref="Plane3x3{TStride}"/> convolves.</summary>
    private static bool ExpandsPlanes(Conv2dGeometry g) =>
        g.OH * g.OW > ChannelsLastPixels && g.KH == 3 && g.KW == 3 && g.Options.Dilation == (1, 1) && g.Options.Padding.Left == 1
        && g.Options.Stride is (1, 1) or (2, 2);

    /// <summary>
    /// dw(act₁(W₁·x + b₁)) for a 1×1 expansion (x [N, <paramref name="channels"/>, H, W]; weights [E, channels] and packed by
    /// <see cref="PackWeights"/>) read only by the depthwise convolution <paramref name="g"/> (weights [E, 1, KH, KW] and
    /// packed too). Up to 64 output pixels each block of 16 expanded channels is computed straight into the depthwise
    /// layer's channels-last bordered image (<see cref="Expand"/>), so the expanded tensor is never written, read back or
    /// interleaved; over more, four expanded planes at a time go to a scratch the depthwise convolution reads while they are
    /// in L1 (<see cref="ExpandPlanes{TAct}"/>). Either way each core expands the channels it then convolves. Requires
    /// <see cref="ExpandsDepthwise"/>.
    /// </summary>
    public static void ExpandDepthwise(float* x, int channels, float* expandWeights, float* expandPacked, float* expandBias, FusedActivation expandActivation,
        float* w, float* packed, float* bias, float* output, Conv2dGeometry g, FusedActivation activation)
    {
        var epilogue = Epilogue.Of(activation)!.Value;
        if (g.OH * g.OW <= ChannelsLastPixels)
        {
            var expansion = new Expansion(expandPacked, expandBias, channels, g.C, Epilogue.Of(expandActivation)!.Value);
            DepthwiseChannelsLast(x, null, packed, output, bias, g, epilogue, expansion);
            return;
        }
        ActivationDispatch.WithActivation(expandActivation, new ExpandPlanesLaunch(x, channels, expandWeights, expandBias, w, bias, output, g, epilogue));
    }

    /// <summary>Whether <see cref="ExpandDepthwiseProject"/> takes the expansion and depthwise convolution <paramref name="g"/>
    /// (<see cref="ExpandsDepthwise"/>) followed by a 1×1 projection with <paramref name="projectActivation"/>: where the
    /// depthwise layer runs channels-last (≤ 64 output pixels) and the projection's activation applies in registers.</summary>
    public static bool ProjectsDepthwise(Conv2dGeometry g, FusedActivation expandActivation, FusedActivation activation, FusedActivation projectActivation) =>
        ExpandsDepthwise(g, expandActivation, activation) && g.OH * g.OW <= ChannelsLastPixels && Epilogue.Of(projectActivation) is not null;

    /// <summary>
    /// act₃(W₃·dw(act₁(W₁·x + b₁)) + b₃ + residual): an inverted residual block whole, its expansion and depthwise layer as
    /// <see cref="ExpandDepthwise"/> computes them channels-last, and the 1×1 projection (weights [K, E] packed by
    /// <see cref="PackWeights"/>) summed from each block of 16 depthwise channels as it leaves the depthwise loop, so neither
    /// the expanded nor the depthwise tensor is ever written. The cores split the depthwise channels as before, each summing
    /// its channels' share of every projected output; the shares are added once at the end. As two layers the projection
    /// read the depthwise output across both cores' caches after a second hand-off, and a projection with one block of
    /// work (576 → 96 at 4×4) ran on one core. <paramref name="residual"/> (or null) is shaped like the output [N, K, OH, OW].
    /// Requires <see cref="ProjectsDepthwise"/>.
    /// </summary>
    public static void ExpandDepthwiseProject(float* x, int channels, float* expandPacked, float* expandBias, FusedActivation expandActivation,
        float* packed, float* bias, Conv2dGeometry g, FusedActivation activation,
        float* projectPacked, float* projectBias, int projectChannels, FusedActivation projectActivation, float* residual, float* output)
    {
        var expansion = new Expansion(expandPacked, expandBias, channels, g.C, Epilogue.Of(expandActivation)!.Value);
        // Slot of the stem's phases, never live while a depthwise convolution runs.
        float* partials = HostScratch.Get(PhaseSlot, (long)ProjectionShares * g.N * g.OH * g.OW * PackedChannels(projectChannels));
        var projection = new Projection(projectPacked, projectBias, residual, g.K, projectChannels, Epilogue.Of(projectActivation)!.Value, partials);
        DepthwiseChannelsLast(x, null, packed, output, bias, g, Epilogue.Of(activation)!.Value, expansion, projection);
    }

    /// <summary><see cref="ExpandPlanes{TAct}"/> with the expansion's activation as a type argument.</summary>
    private readonly struct ExpandPlanesLaunch(float* x, int channels, float* expandWeights, float* expandBias, float* w, float* bias, float* output,
        Conv2dGeometry g, Epilogue epilogue) : IActivationVisitor
    {
        public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp =>
            ExpandPlanes<TAct>(x, channels, expandWeights, expandBias, w, bias, output, g, epilogue);
    }

    /// <summary>
    /// <see cref="ExpandDepthwise"/> over more than 64 output pixels, four expanded channels at a time: their planes by the
    /// 1×1 layer's outer products (<see cref="PointwiseDirect{TAct}"/>, 16 KB at 32×32) into a scratch, then each plane
    /// convolved from there (<see cref="Plane3x3{TStride}"/>) while it is in L1. As two layers, the expanded tensor (393 KB for
    /// mobilenet_v2's 96 channels at 32×32) went out to L2 and back, with a second split across the cores: 16 → 96 at 32×32
    /// then 3×3 at stride 2 ran 31–33 µs in sequence (26–28 for the two layers timed apart), 24–26 here; 24 → 144 at 16×16
    /// at stride 1 18–19 against 14.4–14.9. Groups of four channels are split across the cores, each core a contiguous share.
    /// </summary>
    private static void ExpandPlanes<TAct>(float* x, int channels, float* expandWeights, float* expandBias, float* w, float* bias, float* output,
        Conv2dGeometry g, Epilogue epilogue)
        where TAct : struct, IDifferentiableUnaryOp
    {
        var ix = g.Index;
        int inPixels = ix.H * ix.W, pixels = g.OH * g.OW, groups = (g.K + 3) / 4;
        bool two = ix.StrideW == 2;
        HostParallel.For(g.N * groups, 4L * (2L * inPixels * channels + 9L * pixels), (u0, u1) =>
        {
            float* planes = HostScratch.Get(ColumnSlot, 4L * inPixels);
            for (int u = u0; u < u1; u++)
            {
                int n = u / groups, k0 = u % groups * 4, count = Math.Min(4, g.K - k0);
                PointwiseDirect(x + (long)n * channels * inPixels, 1, channels, inPixels, expandWeights + (long)k0 * channels, count, planes, inPixels,
                    expandBias == null ? null : expandBias + k0, null, default(TAct), parallel: false);
                for (int j = 0; j < count; j++)
                {
                    int k = k0 + j;
                    float* plane = planes + (long)j * inPixels, dst = output + ((long)n * g.K + k) * pixels, kernel = w + (long)k * 9;
                    float start = bias == null ? 0f : bias[k];
                    if (two)
                        Plane3x3<StrideTwo>(plane, ix.H, ix.W, ix.PadTop, kernel, start, dst, g.OH, g.OW, epilogue);
                    else
                        Plane3x3<StrideOne>(plane, ix.H, ix.W, ix.PadTop, kernel, start, dst, g.OH, g.OW, epilogue);
                }
            }
        }, oneChunkPerCore: true);
    }

    /// <summary>dst[0..count) = src[0..count): the column rows of a network's later layers are 4–32 floats, where a span copy's
    /// fixed cost was most of im2col's time (resnet18's 16×16 layers: 4,600 copies of 16 floats per image).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(float* dst, float* src, int count)
    {
        int j = 0;
        for (; j + 8 <= count; j += 8)
            Vector256.Store(Vector256.Load(src + j), dst + j);
        if (j + 4 <= count)
        {
            Vector128.Store(Vector128.Load(src + j), dst + j);
            j += 4;
        }
        for (; j < count; j++)
            dst[j] = src[j];
    }

    /// <summary>dst[0..count) += weight·src[0..count): a network's late planes are rows of 2–16 pixels, where a library
    /// call's fixed cost (TensorPrimitives ran 0.2 GFLOP/s on 4×4 planes) outweighs the arithmetic.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddScaled(float* dst, float* src, int count, float weight)
    {
        int j = 0;
        if (count >= 8)
        {
            var wv = Vector256.Create(weight);
            for (; j + 8 <= count; j += 8)
                Vector256.Store(Vector256.Load(src + j) * wv + Vector256.Load(dst + j), dst + j);
        }
        for (; j < count; j++)
            dst[j] += weight * src[j];
    }

    /// <summary>
    /// out[n, g·Kg + m, pixel] = act(Σ w[g·Kg + m, k]·col_n,g[k, pixel] + bias + residual) for input x [N, C, H, W] (contiguous)
    /// and weights [K, Cg·KH·KW]; <paramref name="p"/> is the per-(image, group) GEMM with the bias per row.
    /// <paramref name="packed"/> (may be null) holds the weights as <see cref="PackWeights"/> lays them out, and
    /// <paramref name="residual"/> (may be null) values shaped like the output.
    /// </summary>
    public static void Conv2d<TAct>(float* x, float* w, float* packed, float* output, float* bias, float* residual, Conv2dGeometry g, GemmParams p, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int groups = g.Options.Groups, pixels = g.OH * g.OW, cgkk = g.Cg * g.KH * g.KW;
        var ix = g.Index;
        bool depthwise = g.Cg == 1 && groups > 1;
        bool pointwise = g.KH == 1 && g.KW == 1 && ix.StrideH == 1 && ix.StrideW == 1 && ix.PadTop == 0 && ix.PadLeft == 0 && g.OH == g.H && g.OW == g.W;
        // Few column rows over many pixels (mobilenet's and efficientnet's expansions, a 3-channel stem) keep their outer
        // products: they ran mobilenet_v2 in 1.28–1.36 ms of node time against 1.44–1.51 as direct tiles. So do 1×1 layers
        // with few output channels or few inputs (the projections): 144 → 24 at 16×16 13.3 against 8.0 µs as direct tiles,
        // 192 → 32 at 8×8 8.0 against 4.7, 96 → 144 at 16×16 40 against 28; from 160 inputs and 128 outputs the tiles win
        // (160 → 960 at 8×8: 76 against 94, 512 → 128: 28 against 40). A strided 1×1 layer (resnet's downsampling) has nothing
        // for columns to gather but its stride, which the tiles' pixel offsets take for free: 64 → 128 at 16×16 stride 2 8.2–9.0
        // µs as tiles against 11.4–14.7 as columns, 32 → 64 at 32×32 13–14 against 31–33.
        bool outerProducts = groups == 1 && pixels >= 64 && HostGemm.Wide
            && ((cgkk <= PointwiseDirectChannels && (pointwise || g.KH * g.KW > 1)) || (pointwise && (g.K <= PointwiseOuterOutputs || cgkk <= PointwiseOuterInputs))
                || (g.Cg <= StemChannels && cgkk <= StemColumnRows && pixels >= StemPixels.Min && pixels <= StemPixels.Max));
        bool direct = HostGemm.Wide && !depthwise && !outerProducts && (packed != null || (long)g.N * pixels >= DirectUnpackedPixels);
        if (pixels == 1 && groups == 1 && HostGemm.Wide)
        {
            SinglePixel(x, w, packed, output, p.HasBias != 0 ? bias : null, residual, g, act);
            return;
        }
        if (packed != null && UsesWinograd(g))
        {
            Winograd(x, packed + DirectLength(groups, g.Kg, g.Cg, cgkk), output, p.HasBias != 0 ? bias : null, residual, g, act);
            return;
        }
        if (residual != null && !direct && !(outerProducts && pointwise))
        {
            // The other forms have no residual in their stores: the convolution (from the packed weights where it reads them),
            // then one pass adding it and activating.
            Conv2d(x, w, packed, output, bias, null, g, p, default(ElementwiseOps.Identity));
            var all = new Span<float>(output, checked(g.N * g.K * pixels));
            TensorPrimitives.Add(all, new ReadOnlySpan<float>(residual, all.Length), all);
            if (typeof(TAct) != typeof(ElementwiseOps.Identity))
                HostElementwise.ApplyUnary(all, all, act);
            return;
        }
        if (depthwise)
        {
            Depthwise(x, w, InterleavesGroups(groups, g.Kg, g.Cg) ? packed : null, output, p.HasBias != 0 ? bias : null, g, act);
            return;
        }
        if (outerProducts)
        {
            // A 1×1 convolution reads the image itself; another with few column rows (a stem: 3 channels × 3×3 taps = 27)
            // builds its columns first, then the same outer products over them — each core the columns of its own output
            // rows, in its own cache: built by channel on both cores and read by pixel block, every column line moved
            // between them (mobilenet's 3 → 32 stem at 64×64: 38 µs on two cores, 19 on one).
            if (pointwise)
            {
                PointwiseDirect(x, g.N, cgkk, pixels, w, g.K, output, pixels, p.HasBias != 0 ? bias : null, residual, act, parallel: true);
                return;
            }
            for (int n = 0; n < g.N; n++)
                ColumnOuterProducts(x + (long)n * g.C * g.H * g.W, w, output + (long)n * g.K * pixels, p.HasBias != 0 ? bias : null, g, act);
            return;
        }
        if (direct)
        {
            if (packed == null)
            {
                packed = HostScratch.Get(PackedSlot, DirectLength(groups, g.Kg, g.Cg, cgkk));
                PackDirect(w, packed, groups, g.Kg, g.Cg, cgkk);
            }
            Direct(x, packed, output, p.HasBias != 0 ? bias : null, residual, g, act);
            return;
        }
        var layoutA = Layout6.Create("conv2d", new[] { groups }, new[] { g.Kg * cgkk });
        var layoutB = Layout6.Create("conv2d", new[] { groups }, new[] { cgkk * pixels });
        long perImage = (long)g.K * pixels * cgkk;
        if (g.N > 1 && perImage < (1 << 22))
        {
            ImagesPerCore(x, w, output, bias, g, p, layoutA, layoutB, act);
            return;
        }
        // One image at a time, its output rows split across the cores: each core builds the columns of its rows and runs
        // their GEMM alone — one hand-off per image where splitting the im2col by channel and the GEMM by tiles took one
        // per step and per K slab.
        for (int n = 0; n < g.N; n++)
        {
            float* image = x + (long)n * g.C * g.H * g.W, result = output + (long)n * g.K * pixels;
            // A 1×1 convolution's columns are the image itself; and few output pixels (a network's last stages) split the
            // GEMM's rows — the weights — across the cores rather than the pixels, so each core reads half the weights
            // instead of all of them.
            if (pointwise || pixels <= 64)
            {
                float* columns = image;
                if (!pointwise)
                {
                    columns = HostScratch.Get(ColumnSlot, (long)g.C * g.KH * g.KW * pixels);
                    Im2Col(image, columns, ix, g.C, g.OH, g.OW, parallel: true);
                }
                HostGemm.Run(w, columns, result, bias, p, layoutA, layoutB, groups, act, parallel: true);
                continue;
            }
            RowsPerCore(image, w, result, bias, g, p, layoutA, layoutB, act);
        }
    }

    // The split loops of Conv2d live in methods of their own: a lambda over Conv2d's parameters made C# allocate its closure
    // on entry to every convolution, on the paths that never split too.

    /// <summary>A stem's outer products, each core over its own output rows (see Conv2d): from the bordered input rows
    /// themselves (<see cref="PhaseOuterProducts"/>) where each output row is whole vectors at column stride 1 or 2, else
    /// from the columns of those rows.</summary>
    private static void ColumnOuterProducts<TAct>(float* image, float* w, float* result, float* bias, Conv2dGeometry g, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int pixels = g.OH * g.OW, cgkk = g.Cg * g.KH * g.KW;
        bool phases = g.Index.StrideW <= 2 && g.OW % 16 == 0;
        HostParallel.For(g.OH, (long)g.OW * g.K * cgkk, (r0, r1) =>
        {
            if (phases)
            {
                PhaseOuterProducts(image, w, result, bias, g, act, r0, r1);
                return;
            }
            int count = (r1 - r0) * g.OW;
            float* columns = HostScratch.Get(ColumnSlot, (long)cgkk * count);
            Im2Col(image, columns, g.Index, 0, g.C, r0, r1, g.OW);
            PointwiseDirect(columns, 1, cgkk, count, w, g.K, result + (long)r0 * g.OW, pixels, bias, null, act, parallel: false);
        });
    }

    /// <summary>
    /// Output rows [r0, r1) of a stem (few input channels, whole 16-pixel vectors per output row, column stride 1 or 2) as
    /// outer products read straight from its input rows laid zero-bordered in column phases (<see cref="BorderRows"/>): the
    /// 16 pixels of a vector sit in one output row, so each column row (c, kh, kw) of them is one contiguous run of a phase
    /// row, at an offset per column row (a table) from a place per vector. The columns (147 rows of each core's pixels at
    /// resnet18's 7×7 stem: 300 KB written and read back per core) are never built.
    /// </summary>
    private static void PhaseOuterProducts<TAct>(float* image, float* w, float* result, float* bias, Conv2dGeometry g, TAct act, int r0, int r1)
        where TAct : struct, IDifferentiableUnaryOp
    {
        var ix = g.Index;
        int cgkk = g.Cg * g.KH * g.KW, pixels = g.OH * g.OW, count = (r1 - r0) * g.OW;
        var (rows, width) = BorderedExtent(ix, r1 - r0, g.OW);
        long plane = (long)ix.StrideW * rows * width;
        float* phases = HostScratch.Get(PhaseSlot, g.C * plane);
        for (int c = 0; c < g.C; c++)
            BorderRows(image + (long)c * ix.H * ix.W, phases + c * plane, ix, r0, rows, width);
        int* tap = stackalloc int[cgkk];
        for (int c = 0, k = 0; c < g.C; c++)
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                    tap[k++] = (int)(c * plane + BorderedTap(ix, kh, kw, rows, width));
        var epilogue = Epilogue.For<TAct>();
        float* tail = stackalloc float[64];
        float* sums = stackalloc float[4 * 64];
        var from = stackalloc float*[4];
        for (int p0 = 0; p0 < count; p0 += 64)
        {
            // Vector v holds pixels p0 + 16v … + 15 of one output row; vectors past the last pixel repeat the last one (not stored).
            int valid = Math.Min(64, count - p0);
            for (int v = 0; v < 4; v++)
            {
                int q = p0 + 16 * Math.Min(v, (valid - 1) / 16), row = q / g.OW;
                from[v] = phases + (long)row * ix.StrideH * width + (q - row * g.OW);
            }
            float* dst = result + (long)r0 * g.OW + p0;
            for (int k0 = 0; k0 < g.K; k0 += 4)
            {
                int rowsOut = Math.Min(4, g.K - k0);
                // Channels past the last repeat it (computed, not stored).
                float* w0 = w + (long)k0 * cgkk, w1 = w0 + (rowsOut > 1 ? cgkk : 0), w2 = w0 + (rowsOut > 2 ? 2L * cgkk : 0), w3 = w0 + (rowsOut > 3 ? 3L * cgkk : 0);
                TappedBlock(from[0], from[1], from[2], from[3], tap, cgkk, w0, w1, w2, w3, sums);
                for (int r = 0; r < rowsOut; r++)
                    StoreSums(sums + r * 64, bias == null ? 0f : bias[k0 + r], valid, epilogue, dst + (long)(k0 + r) * pixels, tail);
            }
        }
        if (typeof(TAct) != typeof(ElementwiseOps.Identity) && !epilogue.InRegisters)
            for (int k = 0; k < g.K; k++)
            {
                var rowsOut = new Span<float>(result + (long)k * pixels + (long)r0 * g.OW, count);
                HostElementwise.ApplyUnary(rowsOut, rowsOut, act);
            }
    }

    /// <summary>Small images of a batch, one per core at a time: each its columns and GEMM.</summary>
    private static void ImagesPerCore<TAct>(float* x, float* w, float* output, float* bias, Conv2dGeometry g, GemmParams p, Layout6 layoutA, Layout6 layoutB, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int pixels = g.OH * g.OW;
        HostParallel.For(g.N, (long)g.K * pixels * g.Cg * g.KH * g.KW, (start, end) =>
        {
            float* col = HostScratch.Get(ColumnSlot, (long)g.C * g.KH * g.KW * pixels);
            for (int n = start; n < end; n++)
            {
                Im2Col(x + (long)n * g.C * g.H * g.W, col, g.Index, g.C, g.OH, g.OW, parallel: false);
                HostGemm.Run(w, col, output + (long)n * g.K * pixels, bias, p, layoutA, layoutB, g.Options.Groups, act, parallel: false);
            }
        });
    }

    /// <summary>One image's output rows split across the cores, each core building the columns of its rows and running their
    /// GEMM alone (see Conv2d).</summary>
    private static void RowsPerCore<TAct>(float* image, float* w, float* result, float* bias, Conv2dGeometry g, GemmParams p, Layout6 layoutA, Layout6 layoutB, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        int pixels = g.OH * g.OW, cgkk = g.Cg * g.KH * g.KW, groups = g.Options.Groups;
        HostParallel.For(g.OH, (long)g.K * g.OW * cgkk, (r0, r1) =>
        {
            int cols = (r1 - r0) * g.OW;
            float* col = HostScratch.Get(ColumnSlot, (long)g.C * g.KH * g.KW * cols);
            Im2Col(image, col, g.Index, 0, g.C, r0, r1, g.OW);
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
        }, oneChunkPerCore: true);
    }

    // ------------------------------------------------------------------ direct convolution over packed weights

    /// <summary>Output pixels in one register tile of <see cref="Direct{TAct}"/>.</summary>
    private const int TilePixels = 6;

    /// <summary>Output channels in one register tile of <see cref="Direct{TAct}"/> (four 512-bit vectors).</summary>
    private const int TileChannels = 64;

    /// <summary>Tiles that pass over one slab of weights while it is in L1 (a run's sums: 8 × 6 × 64 floats, 12 KiB).</summary>
    private const int RunTiles = 8;

    /// <summary>Floats ahead (8 KiB: 32 taps of a 64-channel block) at which a run's first tile prefetches the weights it
    /// streams. resnet18's last layers read 9.4 MB of weights each from beyond L2 (each core its own half, which stays in
    /// its share of L3 from one run to the next): at 2 KiB ahead they streamed at 60 GB/s (156 µs), at 8 KiB at 80 GB/s
    /// (117 µs); 4 and 16 KiB were no better, and no prefetch at all 0.228–0.275 against 0.217–0.246 ms at 2 KiB.</summary>
    private const int WeightsAhead = 2048;

    /// <summary>Taps per slab: 64 × 64 channels' weights, 16 KiB of L1.</summary>
    private const int SlabTaps = 64;

    /// <summary>Output channels per group in <see cref="PackWeights"/>'s layout: Kg rounded up to whole vectors of 16.</summary>
    public static int PackedChannels(int kg) => (kg + 15) & ~15;

    /// <summary>Whether <see cref="PackWeights"/> interleaves sixteen groups per vector instead of blocking each group's
    /// output channels: a depthwise convolution (one input and one output channel per group), whose group-blocked form
    /// would be one used lane in sixteen and which <see cref="DepthwiseChannelsLast"/> reads sixteen channels a tap at a time.</summary>
    public static bool InterleavesGroups(int groups, int kg, int cg) => groups > 1 && kg == 1 && cg == 1;

    /// <summary>Floats <see cref="PackWeights"/> writes for weights [groups·Kg, Cg, KH, KW]: the direct convolution's layout
    /// (<see cref="DirectLength"/>), then for 3×3 weights that take it (<see cref="WinogradPacks"/>) their Winograd transform.</summary>
    public static long PackedLength(int groups, int kg, int cg, int kh, int kw) =>
        DirectLength(groups, kg, cg, cg * kh * kw) + (WinogradPacks(groups, kg, cg, kh, kw) ? (long)WinogradPoints * PackedChannels(kg) * cg : 0);

    /// <summary>Floats of the direct convolution's packed layout (<see cref="PackDirect"/>).</summary>
    private static long DirectLength(int groups, int kg, int cg, int cgkk) =>
        InterleavesGroups(groups, kg, cg) ? (long)PackedChannels(groups) * cgkk : (long)groups * cgkk * PackedChannels(kg);

    /// <summary>Packs weights [groups·Kg, Cg, KH, KW] into <see cref="PackedLength"/> floats at <paramref name="wt"/>: the
    /// direct layout (<see cref="PackDirect"/>), then, where <see cref="WinogradPacks"/>, the Winograd transform
    /// (<see cref="WinogradWeights"/>).</summary>
    public static void PackWeights(float* w, float* wt, int groups, int kg, int cg, int kh, int kw)
    {
        int cgkk = cg * kh * kw;
        PackDirect(w, wt, groups, kg, cg, cgkk);
        if (WinogradPacks(groups, kg, cg, kh, kw))
            WinogradWeights(w, wt + DirectLength(groups, kg, cg, cgkk), kg, cg);
    }

    /// <summary>
    /// The weights [groups·Kg, Cg·KH·KW] transposed per group and per block of <see cref="TileChannels"/> output channels into
    /// wt[group, block, (c, kh, kw), o] with o padded to whole vectors of 16 by zeros (<see cref="PackedChannels"/>): what
    /// <see cref="Direct{TAct}"/> reads for one tile, a vector of 16 output channels per tap, is one sequential stream (the
    /// late layers' 9 MB of weights come from memory, where a stream the prefetcher follows ran at twice the rate of rows
    /// strided across the blocks). A depthwise convolution's (<see cref="InterleavesGroups"/>) become wt[block of 16
    /// channels, tap, channel]. 16 output channels are gathered a tap at a time (<see cref="GatherRows"/>).
    /// </summary>
    private static void PackDirect(float* w, float* wt, int groups, int kg, int cg, int cgkk)
    {
        if (InterleavesGroups(groups, kg, cg))
        {
            HostParallel.For(PackedChannels(groups) / 16, 16L * cgkk, (s, e) =>
            {
                for (int b = s; b < e; b++)
                    for (int k = 0; k < cgkk; k++)
                        GatherRows(w + (long)b * 16 * cgkk, cgkk, Math.Min(16, groups - b * 16), k, wt + ((long)b * cgkk + k) * 16);
            });
            return;
        }
        int ldw = PackedChannels(kg), blocks = ldw / 16;
        HostParallel.For(groups * blocks, 16L * cgkk, (s, e) =>
        {
            for (int b = s; b < e; b++)
            {
                int group = b / blocks, o0 = b % blocks * 16, valid = Math.Min(16, kg - o0);
                int block = o0 / TileChannels * TileChannels, width = Math.Min(TileChannels, ldw - block);
                float* src = w + ((long)group * kg + o0) * cgkk, dst = wt + ((long)group * ldw + block) * cgkk + (o0 - block);
                for (int k = 0; k < cgkk; k++, dst += width)
                    GatherRows(src, cgkk, valid, k, dst);
            }
        });
    }

    /// <summary>dst[o] = src[o·<paramref name="rowLength"/> + k] for the first <paramref name="valid"/> of 16 rows, 0 for the
    /// rest: two 8-lane gathers when all 16 rows exist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GatherRows(float* src, int rowLength, int valid, int k, float* dst)
    {
        if (valid == 16 && Avx2.IsSupported)
        {
            var rows = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * rowLength;
            Vector256.Store(Avx2.GatherVector256(src + k, rows, 4), dst);
            Vector256.Store(Avx2.GatherVector256(src + 8L * rowLength + k, rows, 4), dst + 8);
            return;
        }
        for (int o = 0; o < 16; o++)
            dst[o] = o < valid ? src[(long)o * rowLength + k] : 0f;
    }

    /// <summary>
    /// A convolution as an indirect GEMM over packed weights (<see cref="PackWeights"/>), with no im2col: a register tile holds
    /// <see cref="TilePixels"/> output pixels × <see cref="TileChannels"/> output channels (24 zmm accumulators, output
    /// channels in the lanes), and per tap (c, kh, kw) it loads four vectors of weights and broadcasts each pixel's input
    /// value from a zero-bordered copy of the image (the padding in the copy, so no bounds anywhere), at a per-tap offset
    /// from a table plus a per-pixel offset that holds the stride — any stride, dilation and padding, the pixels of a tile
    /// free to span output rows (8×8 and 4×4 maps fill it). Per tap 4 loads and 6 broadcasts feed 24 FMAs, so it runs at the
    /// FMA rate where im2col + the packed GEMM spent a third of their time copying: the columns, their packing, the output
    /// tiles. The tile is then stored transposed (pixels are contiguous in NCHW) with the bias, the residual and the
    /// activation. Tiles (image, group, 64 channels, 6 pixels) are split across the cores, channel blocks outermost so a core
    /// keeps its weights in L2.
    /// </summary>
    /// <param name="x">Input [N, C, H, W], contiguous.</param>
    /// <param name="wt">The weights as <see cref="PackWeights"/> lays them out.</param>
    /// <param name="output">Output [N, K, OH, OW].</param>
    /// <param name="bias">Null, or one value per output channel.</param>
    /// <param name="residual">Null, or values shaped like the output, added before the activation.</param>
    /// <param name="g">The convolution's geometry.</param>
    /// <param name="act">The activation.</param>
    public static void Direct<TAct>(float* x, float* wt, float* output, float* bias, float* residual, Conv2dGeometry g, TAct act)
        where TAct : struct, IDifferentiableUnaryOp
    {
        var ix = g.Index;
        int groups = g.Options.Groups, cg = g.Cg, kg = g.Kg, ldw = PackedChannels(kg), kd = cg * g.KH * g.KW, pixels = g.OH * g.OW;
        int sh = ix.StrideH, sw = ix.StrideW;
        // The input extent the output reaches; a copy with zero borders only when some tap reads outside the image.
        int hp = (g.OH - 1) * sh + (g.KH - 1) * ix.DilationH + 1, wp = (g.OW - 1) * sw + (g.KW - 1) * ix.DilationW + 1;
        bool inPlace = ix.PadTop == 0 && ix.PadLeft == 0 && hp <= g.H && wp <= g.W;
        int rowStride = inPlace ? g.W : wp, plane = inPlace ? g.H * g.W : hp * wp;
        long call = Interlocked.Increment(ref _directCalls);
        int* koff = (int*)HostScratch.Get(PhaseSlot, kd + 16 + (long)groups * ldw);
        TapOffsets(koff, cg, g.KH, g.KW, ix.DilationH * rowStride, ix.DilationW, plane);
        // The bias padded to whole vectors per group (zeros past Kg), added to the accumulators as they are stored.
        float* biasPadded = (float*)(koff + kd + 16 - kd % 16);
        PadBias(bias, groups, kg, ldw, biasPadded);
        // ReLU, ReLU6 and SiLU are applied in the store; any other activation in one pass over the output after.
        var epilogue = Epilogue.For<TAct>();
        int tiles = (pixels + TilePixels - 1) / TilePixels, blocks = (ldw + TileChannels - 1) / TileChannels;
        int runs = (tiles + RunTiles - 1) / RunTiles;
        HostParallel.For(g.N * groups * blocks * runs, (long)RunTiles * TilePixels * TileChannels * kd, (s, e) =>
        {
            int* poff = stackalloc int[RunTiles * TilePixels];
            // Each tile's 6 × 64 sums between slabs.
            float* sums = HostScratch.Get(TileSlot, RunTiles * TilePixels * TileChannels);
            var pairs = stackalloc Vector512<float>[8];
            for (int u = s; u < e; u++)
            {
                int run = u % runs, rest = u / runs, ob = rest % blocks, ng = rest / blocks, group = ng % groups, n = ng / groups;
                // Runs of equal length (≤ RunTiles each): 43 tiles as 7 and 8, not five of 8 and one of 3, which left one core
                // 24 tiles and the other 19 (64 → 64 at 16×16: 75–84 → 74–75 µs).
                int t0 = tiles * run / runs, t1 = tiles * (run + 1) / runs, o0 = ob * TileChannels, width = Math.Min(TileChannels, ldw - o0);
                for (int t = t0; t < t1; t++)
                    for (int i = 0; i < TilePixels; i++)
                    {
                        int p = Math.Min(t * TilePixels + i, pixels - 1), oh = p / g.OW;
                        poff[(t - t0) * TilePixels + i] = oh * sh * rowStride + (p - oh * g.OW) * sw;
                    }
                float* image = x + (long)n * g.C * g.H * g.W;
                if (!inPlace)
                {
                    image = BorderedImage(image, g, hp, wp, call, n);
                }
                float* xb = image + (long)group * cg * plane, wb = wt + ((long)group * ldw + o0) * kd, bb = biasPadded + group * ldw + o0;
                // K in slabs whose 64-channel weights (≤ 32 KiB) stay in L1 while every tile of the run passes over them.
                for (int k0 = 0; k0 < kd; k0 += SlabTaps)
                {
                    int k1 = Math.Min(kd, k0 + SlabTaps);
                    for (int t = t0; t < t1; t++)
                    {
                        float* tileSums = sums + (t - t0) * TilePixels * TileChannels;
                        int* pt = poff + (t - t0) * TilePixels;
                        // The run's first tile brings the slab of weights in (prefetching it), the others find it in L1.
                        bool fourRows = pixels - t * TilePixels <= 4;
                        if (t == t0)
                            DirectTile<Flags.Yes>(width / 16, fourRows, xb, pt, koff, k0, k1, wb, width, bb, tileSums);
                        else
                            DirectTile<Flags.No>(width / 16, fourRows, xb, pt, koff, k0, k1, wb, width, bb, tileSums);
                    }
                }
                // Transposed into the output, where channel j's pixels of a tile are contiguous: per 16 channels, the tile's 6
                // rows (and two of zeros) zipped in three rounds of permutes into 8 vectors of two channels' 8 pixels each,
                // stored by masks: 5–12 % faster than a gather down each column on 1×1 layers at 4×4 and 2×2 pixels
                // (64 → 384 at 4×4: 9.1–9.6 → 7.4–8.3 µs).
                int channels = Math.Min(TileChannels, kg - o0);
                for (int t = t0; t < t1; t++)
                {
                    int p0 = t * TilePixels, count = Math.Min(TilePixels, pixels - p0);
                    float* tileSums = sums + (t - t0) * TilePixels * TileChannels;
                    long first = ((long)n * g.K + (long)group * kg + o0) * pixels + p0;
                    var low = HostMath.FirstLanes(count);
                    var highHalf = Vector512.AndNot(HostMath.FirstLanes(8 + count), HostMath.FirstLanes(8));
                    for (int c0 = 0; c0 < channels; c0 += 16)
                    {
                        Zip8(tileSums + c0, TileChannels, pairs);
                        for (int r = 0; r < 8 && c0 + 2 * r < channels; r++)
                        {
                            // Lanes 0–7: channel c0 + 2r; lanes 8–15: channel c0 + 2r + 1, written 8 floats before its plane.
                            float* at = output + first + (long)(c0 + 2 * r) * pixels;
                            bool second = c0 + 2 * r + 1 < channels;
                            var v = pairs[r];
                            if (residual != null)
                            {
                                float* res = residual + (at - output);
                                var add = Avx512F.MaskLoad(res, low, Vector512<float>.Zero);
                                if (second)
                                    add = Avx512F.MaskLoad(res + pixels - 8, highHalf, add);
                                v += add;
                            }
                            v = epilogue.Apply(v);
                            Avx512F.MaskStore(at, low, v);
                            if (second)
                                Avx512F.MaskStore(at + pixels - 8, highHalf, v);
                        }
                    }
                }
            }
        });
        ActivateAfter(epilogue, output, g, act);
    }

    /// <summary>
    /// offsets[c·KH·KW + kh·KW + kw] = c·<paramref name="plane"/> + kh·<paramref name="rowStep"/> + kw·<paramref name="columnStep"/>:
    /// where each tap of <see cref="Direct{TAct}"/>'s reduction reads in the image, 16 at a time. Writes up to 15 ints past
    /// the table (the caller's scratch has room, and fills it after). Built one int at a time, the 4,608 offsets of resnet18's
    /// 512-channel 3×3 layers were most of the 5.5–5.8 µs each call spent before its cores started (1.3–1.5 µs so).
    /// </summary>
    private static void TapOffsets(int* offsets, int channels, int kh, int kw, int rowStep, int columnStep, int plane)
    {
        int taps = kh * kw;
        if (taps == 1)
        {
            var at = Vector512<int>.Indices * plane;
            var step = Vector512.Create(16 * plane);
            for (int c = 0; c < channels; c += 16, at += step)
                Vector512.Store(at, offsets + c);
            return;
        }
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
                offsets[i * kw + j] = i * rowStep + j * columnStep;
        // Each channel's taps are the first channel's moved by c·plane; a channel's vector runs into the next channel's
        // taps, which that channel then writes (in order), and the first channel's are never written again.
        for (int c = 1; c < channels; c++)
        {
            var moved = Vector512.Create(c * plane);
            int* row = offsets + (long)c * taps;
            for (int t = 0; t < taps; t += 16)
                Vector512.Store(Vector512.Load(offsets + t) + moved, row + t);
        }
    }

    /// <summary>The bias of each of <paramref name="groups"/> groups of <paramref name="kg"/> channels (zeros where
    /// <paramref name="bias"/> is null) padded by zeros to <paramref name="padded"/> floats a group, into <paramref name="dst"/>.</summary>
    private static void PadBias(float* bias, int groups, int kg, int padded, float* dst)
    {
        for (int group = 0; group < groups; group++)
            for (int o = 0; o < padded; o++)
                dst[group * padded + o] = bias != null && o < kg ? bias[group * kg + o] : 0f;
    }

    /// <summary>The activation in one pass over the output of <paramref name="g"/>, where <paramref name="epilogue"/> did not
    /// apply it in the stores (any but ReLU, ReLU6 and SiLU).</summary>
    private static void ActivateAfter<TAct>(in Epilogue epilogue, float* output, Conv2dGeometry g, TAct act) where TAct : struct, IDifferentiableUnaryOp
    {
        if (typeof(TAct) == typeof(ElementwiseOps.Identity) || epilogue.InRegisters)
            return;
        var all = new Span<float>(output, checked(g.N * g.K * g.OH * g.OW));
        HostElementwise.ApplyUnary(all, all, act);
    }

    /// <summary>
    /// Rows 0–5 of a [6, stride] tile (16 columns from <paramref name="tile"/>), with rows 6 and 7 zero, transposed in three
    /// rounds of two-source permutes: <paramref name="pairs"/>[r] holds column 2r's 8 rows in lanes 0–7 and column 2r + 1's
    /// in lanes 8–15. The 8-row form of <see cref="HostMath.Transpose16"/>'s rounds (16 rows, four rounds there), written out
    /// apart so that each keeps its rows in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Zip8(float* tile, int stride, Vector512<float>* pairs)
    {
        var low = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        var high = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        Vector512<float> r0 = Vector512.Load(tile), r1 = Vector512.Load(tile + stride), r2 = Vector512.Load(tile + 2 * stride),
            r3 = Vector512.Load(tile + 3 * stride), r4 = Vector512.Load(tile + 4 * stride), r5 = Vector512.Load(tile + 5 * stride),
            r6 = Vector512<float>.Zero, r7 = Vector512<float>.Zero;
        for (int round = 0; round < 3; round++)
        {
            var s0 = Avx512F.PermuteVar16x32x2(r0, low, r4);
            var s1 = Avx512F.PermuteVar16x32x2(r0, high, r4);
            var s2 = Avx512F.PermuteVar16x32x2(r1, low, r5);
            var s3 = Avx512F.PermuteVar16x32x2(r1, high, r5);
            var s4 = Avx512F.PermuteVar16x32x2(r2, low, r6);
            var s5 = Avx512F.PermuteVar16x32x2(r2, high, r6);
            var s6 = Avx512F.PermuteVar16x32x2(r3, low, r7);
            var s7 = Avx512F.PermuteVar16x32x2(r3, high, r7);
            (r0, r1, r2, r3, r4, r5, r6, r7) = (s0, s1, s2, s3, s4, s5, s6, s7);
        }
        (pairs[0], pairs[1], pairs[2], pairs[3], pairs[4], pairs[5], pairs[6], pairs[7]) = (r0, r1, r2, r3, r4, r5, r6, r7);
    }

    /// <summary>Calls of <see cref="Direct{TAct}"/> so far: with <see cref="_borderedImage"/>, which bordered image a core's
    /// column slot holds.</summary>
    private static long _directCalls;

    [ThreadStatic] private static long _borderedCall;
    [ThreadStatic] private static int _borderedImage;

    /// <summary>
    /// One image's input planes cut or zero-extended to hp × wp rows from (−PadTop, −PadLeft) into <paramref name="dst"/>,
    /// which holds <see cref="BorderedSlack"/> floats past the last plane. Each row is written whole, 16 columns at a
    /// time, by loads masked to the columns inside the image (a lane outside reads nothing and gives 0); a vector that runs
    /// past the row's end is overwritten by the next row. Copies and clears per row's run of border cost 3× as much (64
    /// planes of 16 × 16 into 18 × 18: 10 µs against 3).
    /// </summary>
    private static void Bordered(float* image, float* dst, Conv2dGeometry g, int hp, int wp)
    {
        var ix = g.Index;
        int vectors = (wp + 15) / 16;
        var masks = stackalloc Vector512<float>[vectors];
        for (int j = 0; j < vectors; j++)
        {
            // Lanes whose column j·16 + lane − PadLeft lies in [0, W).
            int from = Math.Clamp(ix.PadLeft - j * 16, 0, 16), to = Math.Clamp(ix.PadLeft + g.W - j * 16, 0, 16);
            masks[j] = to > from ? Vector512.AndNot(HostMath.FirstLanes(to), HostMath.FirstLanes(from)) : Vector512<float>.Zero;
        }
        for (int q = 0; q < g.C; q++)
        {
            float* plane = dst + (long)q * hp * wp, source = image + (long)q * g.H * g.W - ix.PadLeft;
            for (int r = 0; r < hp; r++)
            {
                int ih = r - ix.PadTop;
                float* row = plane + (long)r * wp, from = source + (long)ih * g.W;
                bool inside = ih >= 0 && ih < g.H;
                for (int j = 0; j < vectors; j++)
                    Vector512.Store(inside ? Avx512F.MaskLoad(from + j * 16, masks[j], Vector512<float>.Zero) : Vector512<float>.Zero, row + j * 16);
            }
        }
    }

    /// <summary>Floats <see cref="Bordered"/> may write past its last plane.</summary>
    private const int BorderedSlack = 16;

    /// <summary>
    /// Image <paramref name="n"/> bordered to hp × wp (<see cref="Bordered"/>) in this core's column slot, made once per
    /// call (<paramref name="call"/>, numbered by <see cref="_directCalls"/>) of <see cref="Direct{TAct}"/> or
    /// <see cref="Winograd{TAct}"/> and image. Each core borders the image it works on into its own buffer: one copy written by
    /// the calling core and read by the other cost more than both copies, its lines moving between the cores on every call
    /// (64 × 16 × 16: 11.8 µs against 3.2).
    /// </summary>
    private static float* BorderedImage(float* image, Conv2dGeometry g, int hp, int wp, long call, int n)
    {
        float* bordered = HostScratch.Get(ColumnSlot, (long)g.C * hp * wp + BorderedSlack);
        if (_borderedCall != call || _borderedImage != n)
        {
            Bordered(image, bordered, g, hp, wp);
            (_borderedCall, _borderedImage) = (call, n);
        }
        return bordered;
    }

    /// <summary><see cref="DirectTile{TV, TRows, TPrefetch}"/> for <paramref name="vectors"/> vectors of 16 output channels, over
    /// the tile's first 4 pixels only where <paramref name="fourRows"/> (a last tile with at most 4 pixels left: resnet's 2×2
    /// layers would spend a third of their multiply-adds on the 6-pixel tile's two copies of the last pixel).</summary>
    private static void DirectTile<TPrefetch>(int vectors, bool fourRows, float* x, int* poff, int* koff, int k0, int k1, float* w, int ldw, float* bias, float* tile)
        where TPrefetch : struct, IFlag
    {
        if (fourRows)
            DirectTile<Four, TPrefetch>(vectors, x, poff, koff, k0, k1, w, ldw, bias, tile);
        else
            DirectTile<Six, TPrefetch>(vectors, x, poff, koff, k0, k1, w, ldw, bias, tile);
    }

    private static void DirectTile<TRows, TPrefetch>(int vectors, float* x, int* poff, int* koff, int k0, int k1, float* w, int ldw, float* bias, float* tile)
        where TRows : struct, IVectors where TPrefetch : struct, IFlag
    {
        switch (vectors)
        {
            case 1: DirectTile<One, TRows, TPrefetch>(x, poff, koff, k0, k1, w, ldw, bias, tile); break;
            case 2: DirectTile<Two, TRows, TPrefetch>(x, poff, koff, k0, k1, w, ldw, bias, tile); break;
            case 3: DirectTile<Three, TRows, TPrefetch>(x, poff, koff, k0, k1, w, ldw, bias, tile); break;
            default: DirectTile<Four, TRows, TPrefetch>(x, poff, koff, k0, k1, w, ldw, bias, tile); break;
        }
    }

    /// <summary>A count fixed at compile time: vectors of 16 output channels in one <see cref="DirectTile{TV, TRows, TPrefetch}"/>
    /// (1–4: a group's last block may be narrower), or the pixel rows it computes (4 or 6).</summary>
    private interface IVectors { static abstract int Count { get; } }
    private struct One : IVectors { public static int Count => 1; }
    private struct Two : IVectors { public static int Count => 2; }
    private struct Three : IVectors { public static int Count => 3; }
    private struct Four : IVectors { public static int Count => 4; }
    private struct Six : IVectors { public static int Count => 6; }

    /// <summary>
    /// tile[i, j] (+)= Σ x[poff[i] + koff[k]]·w[k·ldw + j] over k0 ≤ k &lt; k1 for 6 pixels (the first 4 where <typeparamref name="TRows"/> is 4; rows 4 and 5 of the tile are then left as they were), starting from the bias at k0 = 0, and 16·TV.Count channels
    /// (prefetching the weights ahead with <typeparamref name="TPrefetch"/>): its own method so the 24
    /// accumulators stay in registers (in the parallel lambda the JIT kept them on the stack).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DirectTile<TV, TRows, TPrefetch>(float* x, int* poff, int* koff, int k0, int k1, float* w, int ldw, float* bias, float* tile)
        where TV : struct, IVectors where TRows : struct, IVectors where TPrefetch : struct, IFlag
    {
        float* x0 = x + poff[0], x1 = x + poff[1], x2 = x + poff[2], x3 = x + poff[3], x4 = x + poff[TRows.Count > 4 ? 4 : 0], x5 = x + poff[TRows.Count > 4 ? 5 : 0];
        // The first slab starts from the bias, later ones from the sums the previous slab stored.
        float* from = k0 == 0 ? null : tile;
        LoadRow<TV>(from, bias, 0, out var c00, out var c01, out var c02, out var c03);
        LoadRow<TV>(from, bias, 1, out var c10, out var c11, out var c12, out var c13);
        LoadRow<TV>(from, bias, 2, out var c20, out var c21, out var c22, out var c23);
        LoadRow<TV>(from, bias, 3, out var c30, out var c31, out var c32, out var c33);
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default, c50 = default, c51 = default, c52 = default, c53 = default;
        if (TRows.Count > 4)
        {
            LoadRow<TV>(from, bias, 4, out c40, out c41, out c42, out c43);
            LoadRow<TV>(from, bias, 5, out c50, out c51, out c52, out c53);
        }
        w += (long)k0 * ldw;
        for (int k = k0; k < k1; k++, w += ldw)
        {
            int at = koff[k];
            if (default(TPrefetch).Value)
            {
                Sse.Prefetch0(w + WeightsAhead);
                if (TV.Count > 1) Sse.Prefetch0(w + WeightsAhead + 16);
                if (TV.Count > 2) Sse.Prefetch0(w + WeightsAhead + 32);
                if (TV.Count > 3) Sse.Prefetch0(w + WeightsAhead + 48);
            }
            var w0 = Vector512.Load(w);
            var w1 = TV.Count > 1 ? Vector512.Load(w + 16) : default;
            var w2 = TV.Count > 2 ? Vector512.Load(w + 32) : default;
            var w3 = TV.Count > 3 ? Vector512.Load(w + 48) : default;
            var a = Vector512.Create(x0[at]);
            c00 = Avx512F.FusedMultiplyAdd(a, w0, c00);
            if (TV.Count > 1) c01 = Avx512F.FusedMultiplyAdd(a, w1, c01);
            if (TV.Count > 2) c02 = Avx512F.FusedMultiplyAdd(a, w2, c02);
            if (TV.Count > 3) c03 = Avx512F.FusedMultiplyAdd(a, w3, c03);
            a = Vector512.Create(x1[at]);
            c10 = Avx512F.FusedMultiplyAdd(a, w0, c10);
            if (TV.Count > 1) c11 = Avx512F.FusedMultiplyAdd(a, w1, c11);
            if (TV.Count > 2) c12 = Avx512F.FusedMultiplyAdd(a, w2, c12);
            if (TV.Count > 3) c13 = Avx512F.FusedMultiplyAdd(a, w3, c13);
            a = Vector512.Create(x2[at]);
            c20 = Avx512F.FusedMultiplyAdd(a, w0, c20);
            if (TV.Count > 1) c21 = Avx512F.FusedMultiplyAdd(a, w1, c21);
            if (TV.Count > 2) c22 = Avx512F.FusedMultiplyAdd(a, w2, c22);
            if (TV.Count > 3) c23 = Avx512F.FusedMultiplyAdd(a, w3, c23);
            a = Vector512.Create(x3[at]);
            c30 = Avx512F.FusedMultiplyAdd(a, w0, c30);
            if (TV.Count > 1) c31 = Avx512F.FusedMultiplyAdd(a, w1, c31);
            if (TV.Count > 2) c32 = Avx512F.FusedMultiplyAdd(a, w2, c32);
            if (TV.Count > 3) c33 = Avx512F.FusedMultiplyAdd(a, w3, c33);
            if (TRows.Count > 4)
            {
                a = Vector512.Create(x4[at]);
                c40 = Avx512F.FusedMultiplyAdd(a, w0, c40);
                if (TV.Count > 1) c41 = Avx512F.FusedMultiplyAdd(a, w1, c41);
                if (TV.Count > 2) c42 = Avx512F.FusedMultiplyAdd(a, w2, c42);
                if (TV.Count > 3) c43 = Avx512F.FusedMultiplyAdd(a, w3, c43);
                a = Vector512.Create(x5[at]);
                c50 = Avx512F.FusedMultiplyAdd(a, w0, c50);
                if (TV.Count > 1) c51 = Avx512F.FusedMultiplyAdd(a, w1, c51);
                if (TV.Count > 2) c52 = Avx512F.FusedMultiplyAdd(a, w2, c52);
                if (TV.Count > 3) c53 = Avx512F.FusedMultiplyAdd(a, w3, c53);
            }
        }
        StoreRow<TV>(tile, c00, c01, c02, c03);
        StoreRow<TV>(tile + TileChannels, c10, c11, c12, c13);
        StoreRow<TV>(tile + 2 * TileChannels, c20, c21, c22, c23);
        StoreRow<TV>(tile + 3 * TileChannels, c30, c31, c32, c33);
        if (TRows.Count > 4)
        {
            StoreRow<TV>(tile + 4 * TileChannels, c40, c41, c42, c43);
            StoreRow<TV>(tile + 5 * TileChannels, c50, c51, c52, c53);
        }
    }

    /// <summary>Row <paramref name="row"/> of the tile's sums from <paramref name="from"/>, or the bias where it is null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadRow<TV>(float* from, float* bias, int row, out Vector512<float> a, out Vector512<float> b, out Vector512<float> c,
        out Vector512<float> d) where TV : struct, IVectors
    {
        float* src = from == null ? bias : from + row * TileChannels;
        a = Vector512.Load(src);
        b = TV.Count > 1 ? Vector512.Load(src + 16) : default;
        c = TV.Count > 2 ? Vector512.Load(src + 32) : default;
        d = TV.Count > 3 ? Vector512.Load(src + 48) : default;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TV>(float* row, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d) where TV : struct, IVectors
    {
        a.Store(row);
        if (TV.Count > 1) b.Store(row + 16);
        if (TV.Count > 2) c.Store(row + 32);
        if (TV.Count > 3) d.Store(row + 48);
    }
}

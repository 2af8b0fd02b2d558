using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// A whole recurrence on the fast CPU device in one call (see <see cref="RecurrentKernels"/>): per step the recurrent
/// product h·Rᵀ + b_R through <see cref="HostGemm"/> (a GEMV for one sequence) into a per-thread buffer, then the gates of
/// <see cref="RecurrentKernels.Lstm"/> / <see cref="RecurrentKernels.Gru"/> over [batch, hidden], h′ written into its row
/// of y, which the next step reads as h. Nothing is allocated or dispatched per step.
/// </summary>
internal static unsafe class HostRecurrent
{
    private const int ProductSlot = 5, CandidateSlot = 6, ResetSlot = 7, TransposedSlot = 11;

    /// <summary>Scratch slots of the transposed input weights and the input projections when the call computes them (the
    /// convolutions' tile and phase slots: never live while a recurrence runs).</summary>
    private const int InputTransposedSlot = 8, ProjectionSlot = 9;

    /// <summary>The sequence x [seq, batch, <see cref="Size"/>] and its input weights W [gates·hidden, Size] and bias (or null),
    /// for a call that computes x·Wᵀ + b itself (<see cref="RecurrentKernels.ProjectsInline"/>).</summary>
    public readonly struct Input(float* x, float* w, float* bias, int size)
    {
        public readonly float* X = x, W = w, Bias = bias;
        public readonly int Size = size;
    }

    public static void Run(RecurrentCell cell, float* xw, Input input, float* r, float* rb, float* h0, float* c, float* y, int seq, int batch, int hidden, bool reverse,
        bool resetAfter)
    {
        int gates = RecurrentKernels.Gates(cell);
        if (xw == null)
        {
            // Every step's projection up front, as the matrix product would leave them: Wᵀ once, then a row of products per
            // step and sequence (the same routine as the recurrent product's).
            int columns = gates * hidden;
            float* wt = HostScratch.Get(InputTransposedSlot, (long)input.Size * columns);
            Transpose(input.W, wt, columns, input.Size);
            xw = HostScratch.Get(ProjectionSlot, (long)seq * batch * columns);
            for (long row = 0; row < (long)seq * batch; row++)
                Product(input.X + row * input.Size, wt, columns, 0, columns, input.Size, input.Bias, xw + row * columns);
        }
        bool split = cell == RecurrentCell.Gru && !resetAfter;
        int width = split ? 2 * hidden : gates * hidden, stateSize = batch * hidden;
        float* hr = HostScratch.Get(ProductSlot, (long)batch * width);
        float* hn = split ? HostScratch.Get(CandidateSlot, stateSize) : null;
        float* rh = split ? HostScratch.Get(ResetSlot, stateSize) : null;
        // Rᵀ [hidden, gates·hidden], transposed once per call: a step's product is then one pass of broadcast-multiply-adds
        // over contiguous rows with the sums in registers, where a dot product per output (a library call each, 192 of 64
        // floats for a 64-wide GRU) took most of the step.
        int rows = gates * hidden;
        float* rt = HostScratch.Get(TransposedSlot, (long)hidden * rows);
        Transpose(r, rt, rows, hidden);
        for (int step = 0; step < seq; step++)
        {
            int t = reverse ? seq - 1 - step : step;
            float* h = step == 0 ? h0 : y + (long)(reverse ? t + 1 : t - 1) * stateSize;
            float* x = xw + (long)t * batch * gates * hidden, output = y + (long)t * stateSize;
            for (int b = 0; b < batch; b++)
                Product(h + (long)b * hidden, rt, rows, 0, width, hidden, rb, hr + (long)b * width);
            if (split)
            {
                // (σ(r)·h)·R_nᵀ + b_n: the candidate's product needs the reset gate first.
                for (int b = 0; b < batch; b++)
                    for (int j = 0; j < hidden; j++)
                        rh[b * hidden + j] = MathFn.Sigmoid(x[b * 3 * hidden + hidden + j] + hr[b * width + hidden + j]) * h[b * hidden + j];
                for (int b = 0; b < batch; b++)
                    Product(rh + (long)b * hidden, rt, rows, width, hidden, hidden, rb, hn + (long)b * hidden);
            }
            for (int b = 0; b < batch; b++)
            {
                float* xr = x + (long)b * gates * hidden, pr = hr + (long)b * width, hb = h + (long)b * hidden, ob = output + (long)b * hidden;
                int j = HostMath.Vectorized ? VectorGates(cell, xr, pr, split ? hn + (long)b * hidden : null, hb, ob, c == null ? null : c + (long)b * hidden, hidden, resetAfter) : 0;
                for (; j < hidden; j++)
                {
                    switch (cell)
                    {
                        case RecurrentCell.Lstm:
                            ob[j] = RecurrentKernels.Lstm(xr[j] + pr[j], xr[hidden + j] + pr[hidden + j], xr[2 * hidden + j] + pr[2 * hidden + j],
                                xr[3 * hidden + j] + pr[3 * hidden + j], ref c[b * hidden + j]);
                            break;
                        case RecurrentCell.Gru:
                            ob[j] = RecurrentKernels.Gru(xr[j] + pr[j], xr[hidden + j] + pr[hidden + j], xr[2 * hidden + j],
                                split ? hn[b * hidden + j] : pr[2 * hidden + j], resetAfter, hb[j]);
                            break;
                        default:
                            ob[j] = MathFn.Tanh(xr[j] + pr[j]);
                            break;
                    }
                }
            }
        }
    }

    /// <summary>dst [cols, rows] = srcᵀ for src [rows, cols], in 8 × 8 blocks transposed in registers (the scalar loop's strided
    /// stores took 10 µs of a 64-wide GRU's 40); edges element by element.</summary>
    private static void Transpose(float* src, float* dst, int rows, int cols)
    {
        int r8 = HostMath.Vectorized ? rows & ~7 : 0, c8 = HostMath.Vectorized ? cols & ~7 : 0;
        for (int i = 0; i < r8; i += 8)
            for (int j = 0; j < c8; j += 8)
                Transpose8(src + (long)i * cols + j, cols, dst + (long)j * rows + i, rows);
        for (int i = 0; i < rows; i++)
            for (int j = i < r8 ? c8 : 0; j < cols; j++)
                dst[(long)j * rows + i] = src[(long)i * cols + j];
    }

    /// <summary>One 8 × 8 block: unpack pairs, then 64-bit pairs, then 128-bit halves.</summary>
    private static void Transpose8(float* src, int srcStride, float* dst, int dstStride)
    {
        var r0 = Vector256.Load(src); var r1 = Vector256.Load(src + srcStride);
        var r2 = Vector256.Load(src + 2 * srcStride); var r3 = Vector256.Load(src + 3 * srcStride);
        var r4 = Vector256.Load(src + 4 * srcStride); var r5 = Vector256.Load(src + 5 * srcStride);
        var r6 = Vector256.Load(src + 6 * srcStride); var r7 = Vector256.Load(src + 7 * srcStride);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1); var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5); var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE); var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE); var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x20), dst + dstStride);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x20), dst + 2 * dstStride);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x20), dst + 3 * dstStride);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x31), dst + 4 * dstStride);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x31), dst + 5 * dstStride);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x31), dst + 6 * dstStride);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x31), dst + 7 * dstStride);
    }

    /// <summary>
    /// The cell's gates 8 lanes at a time (<see cref="HostMath.Sigmoid(Vector256{float})"/>, <see cref="HostMath.Tanh"/>), the same formulas as
    /// <see cref="RecurrentKernels"/>' scalar cells: a 64-wide GRU step spent longer in 192 scalar exps than in its product.
    /// The last columns (fewer than 8) go through the same vectors with masked loads and stores where AVX has them (a 12-wide
    /// LSTM's 4 scalar columns of three sigmoids and two tanhs were a third of its step). Returns the columns done; the caller
    /// finishes any rest with the scalar cells.
    /// </summary>
    private static int VectorGates(RecurrentCell cell, float* xr, float* pr, float* hn, float* h, float* output, float* c, int hidden, bool resetAfter)
    {
        int j = 0;
        for (; j + 8 <= hidden; j += 8)
            Gates8(cell, xr + j, pr + j, hn == null ? null : hn + j, h + j, output + j, c == null ? null : c + j, hidden, resetAfter, default, full: true);
        if (j < hidden && Avx.IsSupported)
        {
            var mask = HostMath.FirstLanes8(hidden - j);
            Gates8(cell, xr + j, pr + j, hn == null ? null : hn + j, h + j, output + j, c == null ? null : c + j, hidden, resetAfter, mask, full: false);
            j = hidden;
        }
        return j;
    }

    /// <summary>8 columns of <see cref="VectorGates"/> from their first (the lanes of <paramref name="mask"/> unless
    /// <paramref name="full"/>; lanes past it load as zeros and are not stored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Gates8(RecurrentCell cell, float* xr, float* pr, float* hn, float* h, float* output, float* c, int hidden, bool resetAfter,
        Vector256<float> mask, bool full)
    {
        Vector256<float> Load(float* p) => full ? Vector256.Load(p) : Avx.MaskLoad(p, mask);
        void Store(float* p, Vector256<float> v)
        {
            if (full)
                v.Store(p);
            else
                Avx.MaskStore(p, mask, v);
        }
        Vector256<float> Pre(int gate) => Load(xr + gate * hidden) + Load(pr + gate * hidden);
        switch (cell)
        {
            case RecurrentCell.Lstm:
            {
                var cell1 = HostMath.Sigmoid(Pre(2)) * Load(c) + HostMath.Sigmoid(Pre(0)) * HostMath.Tanh(Pre(3));
                Store(c, cell1);
                Store(output, HostMath.Sigmoid(Pre(1)) * HostMath.Tanh(cell1));
                break;
            }
            case RecurrentCell.Gru:
            {
                var recurrentN = hn != null ? Load(hn) : Load(pr + 2 * hidden);
                if (resetAfter)
                    recurrentN *= HostMath.Sigmoid(Pre(1));
                var n = HostMath.Tanh(Load(xr + 2 * hidden) + recurrentN);
                Store(output, n + HostMath.Sigmoid(Pre(0)) * (Load(h) - n));
                break;
            }
            default:
                Store(output, HostMath.Tanh(Pre(0)));
                break;
        }
    }

    /// <summary>
    /// out[j] = bias[j0 + j] + Σ_k h[k]·rt[k·rows + j0 + j] for j in [0, count): with AVX-512 128 columns at a time in eight
    /// 16-wide accumulators (the row of Rᵀ read contiguously, h[k] broadcast: eight independent FMA chains cover the FMA
    /// latency, where four 8-wide ones waited on it — a 64-wide GRU's 192 columns took six latency-bound passes over h), then
    /// 32 at a time in four 8-wide ones, the last columns one at a time.
    /// </summary>
    private static void Product(float* h, float* rt, int rows, int j0, int count, int hidden, float* bias, float* output)
    {
        int j = 0;
        if (HostGemm.Wide)
            for (; j + 128 <= count; j += 128)
            {
                float* col = rt + j0 + j;
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                if (bias != null)
                {
                    float* b = bias + j0 + j;
                    (a0, a1, a2, a3) = (Vector512.Load(b), Vector512.Load(b + 16), Vector512.Load(b + 32), Vector512.Load(b + 48));
                    (a4, a5, a6, a7) = (Vector512.Load(b + 64), Vector512.Load(b + 80), Vector512.Load(b + 96), Vector512.Load(b + 112));
                }
                for (int k = 0; k < hidden; k++, col += rows)
                {
                    var v = Vector512.Create(h[k]);
                    a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col), a0);
                    a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col + 48), a3);
                    a4 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col + 64), a4);
                    a5 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col + 80), a5);
                    a6 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col + 96), a6);
                    a7 = Vector512.FusedMultiplyAdd(v, Vector512.Load(col + 112), a7);
                }
                float* o = output + j;
                a0.Store(o); a1.Store(o + 16); a2.Store(o + 32); a3.Store(o + 48);
                a4.Store(o + 64); a5.Store(o + 80); a6.Store(o + 96); a7.Store(o + 112);
            }
        for (; j + 32 <= count; j += 32)
        {
            float* col = rt + j0 + j;
            var (a0, a1, a2, a3) = bias == null ? default : (Vector256.Load(bias + j0 + j), Vector256.Load(bias + j0 + j + 8), Vector256.Load(bias + j0 + j + 16),
                Vector256.Load(bias + j0 + j + 24));
            for (int k = 0; k < hidden; k++, col += rows)
            {
                var v = Vector256.Create(h[k]);
                a0 = Vector256.FusedMultiplyAdd(v, Vector256.Load(col), a0);
                a1 = Vector256.FusedMultiplyAdd(v, Vector256.Load(col + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(v, Vector256.Load(col + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(v, Vector256.Load(col + 24), a3);
            }
            a0.Store(output + j);
            a1.Store(output + j + 8);
            a2.Store(output + j + 16);
            a3.Store(output + j + 24);
        }
        // The last columns 8 at a time, then one masked vector (a 12-wide LSTM's 48 columns: 32, then 16 that were scalar).
        for (; j + 8 <= count; j += 8)
            Columns8(h, rt + j0 + j, rows, hidden, bias == null ? null : bias + j0 + j, output + j, default, full: true);
        if (j < count && Avx.IsSupported)
        {
            var mask = HostMath.FirstLanes8(count - j);
            Columns8(h, rt + j0 + j, rows, hidden, bias == null ? null : bias + j0 + j, output + j, mask, full: false);
            j = count;
        }
        for (; j < count; j++)
        {
            float sum = bias == null ? 0f : bias[j0 + j];
            for (int k = 0; k < hidden; k++)
                sum = MathF.FusedMultiplyAdd(h[k], rt[(long)k * rows + j0 + j], sum);
            output[j] = sum;
        }
    }

    /// <summary>8 columns of <see cref="Product"/> (the lanes of <paramref name="mask"/> unless <paramref name="full"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns8(float* h, float* col, int rows, int hidden, float* bias, float* output, Vector256<float> mask, bool full)
    {
        var a = bias == null ? Vector256<float>.Zero : full ? Vector256.Load(bias) : Avx.MaskLoad(bias, mask);
        for (int k = 0; k < hidden; k++, col += rows)
            a = Vector256.FusedMultiplyAdd(Vector256.Create(h[k]), full ? Vector256.Load(col) : Avx.MaskLoad(col, mask), a);
        if (full)
            a.Store(output);
        else
            Avx.MaskStore(output, mask, a);
    }
}

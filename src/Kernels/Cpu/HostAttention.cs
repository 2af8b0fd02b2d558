using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Attention on the fast CPU device, FlashAttention-style: per (batch, head, block of 32 queries) it walks the keys in
/// blocks of 64, computes the score block S = Q·Kᵀ·scale with <see cref="HostGemm"/> (K read in place along d), adds the
/// mask and hides padded/causal keys, folds S into running row maxima and sums (online softmax: earlier partial
/// outputs are rescaled by exp(m_old − m_new)), and accumulates O += P·V with a second GEMM. Memory beyond the inputs
/// is one 32×64 score block and one 32×d output block per core; causal blocks past the diagonal are skipped whole.
/// (batch, head, query block) tasks are split across cores. Same results as <see cref="AttentionKernels.Fused"/>,
/// including zeros (and logsumexp −inf) for a query that sees no key.
/// </summary>
internal static unsafe class HostAttention
{
    private const int BlockQ = 32, BlockK = 64;
    private const int ScoreSlot = 6, OutputSlot = 7, KeysSlot = 8;

    /// <summary>Head sizes up to which, with AVX-512, the two block products run as the small direct loops below
    /// (<see cref="Scores"/>, <see cref="Accumulate"/>) instead of <see cref="HostGemm"/>.</summary>
    private const int SmallHead = 64;

    public static void Fused(float* q, float* k, float* v, float* o, float* lse, float* lengths, float* mask,
        HeadLayout lq, HeadLayout lk, HeadLayout lv, HeadLayout lo, AttentionParams p)
    {
        int qBlocks = (p.Nq + BlockQ - 1) / BlockQ, d = p.D;
        var single = Layout6.Create("attention", ReadOnlySpan<int>.Empty, ReadOnlySpan<int>.Empty);
        HostParallel.For(p.B * p.H * qBlocks, (long)BlockQ * p.Nk * d * 2, (start, end) =>
        {
            float* s = HostScratch.Get(ScoreSlot, BlockQ * BlockK);
            float* acc = HostScratch.Get(OutputSlot, BlockQ * d);
            bool small = HostGemm.Wide && d <= SmallHead;
            float* kt = small ? HostScratch.Get(KeysSlot, SmallHead * BlockK) : null;
            Span<float> m = stackalloc float[BlockQ], l = stackalloc float[BlockQ];
            for (int task = start; task < end; task++)
            {
                int qb = task % qBlocks, bh = task / qBlocks, h = bh % p.H, b = bh / p.H;
                int i0 = qb * BlockQ, rows = Math.Min(BlockQ, p.Nq - i0);
                int keyLimit = p.HasLengths != 0 ? Math.Min((int)lengths[b], p.Nk) : p.Nk;
                // Causal: query i sees keys j ≤ i + Nk − Nq; the block's last row sees the most.
                int keyEnd = p.Causal != 0 ? Math.Min(keyLimit, i0 + rows - 1 + p.Nk - p.Nq + 1) : keyLimit;
                m[..rows].Fill(float.NegativeInfinity);
                l[..rows].Clear();
                new Span<float>(acc, rows * d).Clear();
                float* qBlock = q + lq.At(b, h, i0);
                for (int j0 = 0; j0 < keyEnd; j0 += BlockK)
                {
                    int cols = Math.Min(BlockK, keyEnd - j0);
                    if (small)
                        Scores(qBlock, lq.Seq, k + lk.At(b, h, j0), lk.Seq, s, rows, cols, d, p.Scale, kt);
                    else
                    {
                        var scores = new GemmParams { M = rows, N = cols, K = d, StrideAm = lq.Seq, StrideAk = 1, StrideBk = 1, StrideBn = lk.Seq, Alpha = p.Scale };
                        HostGemm.Run(qBlock, k + lk.At(b, h, j0), s, null, scores, single, single, 1, default(ElementwiseOps.Identity), parallel: false);
                    }
                    for (int r = 0; r < rows; r++)
                    {
                        int i = i0 + r;
                        var row = new Span<float>(s + r * cols, cols);
                        if (p.HasMask != 0)
                            TensorPrimitives.Add(row, new ReadOnlySpan<float>(mask + (long)b * p.MaskBatch + (long)h * p.MaskHead + (long)i * p.MaskRow + j0, cols), row);
                        int visible = p.Causal != 0 ? Math.Clamp(i + p.Nk - p.Nq + 1 - j0, 0, cols) : cols;
                        row[visible..].Fill(float.NegativeInfinity);
                        float blockMax = visible == 0 ? float.NegativeInfinity : HostMath.MaxOrNaN(s + r * cols, visible);
                        float mNew = Math.Max(m[r], blockMax);
                        if (mNew == float.NegativeInfinity)
                        {
                            row.Clear();
                            continue;
                        }
                        float rescale = MathF.Exp(m[r] - mNew);
                        l[r] = l[r] * rescale + HostMath.ExpShiftedSum(s + r * cols, s + r * cols, cols, mNew);
                        m[r] = mNew;
                        if (rescale != 1f)
                        {
                            var o = new Span<float>(acc + r * d, d);
                            TensorPrimitives.Multiply(o, rescale, o);
                        }
                    }
                    if (small)
                        Accumulate(s, cols, v + lv.At(b, h, j0), lv.Seq, acc, rows, d);
                    else
                    {
                        var update = new GemmParams { M = rows, N = d, K = cols, StrideAm = cols, StrideAk = 1, StrideBk = lv.Seq, StrideBn = 1, Alpha = 1, Beta = 1 };
                        HostGemm.Run(s, v + lv.At(b, h, j0), acc, null, update, single, single, 1, default(ElementwiseOps.Identity), parallel: false);
                    }
                }
                for (int r = 0; r < rows; r++)
                {
                    int i = i0 + r;
                    var dst = new Span<float>(o + lo.At(b, h, i), d);
                    if (l[r] > 0)
                        TensorPrimitives.Divide(new ReadOnlySpan<float>(acc + r * d, d), l[r], dst);
                    else
                        dst.Clear();
                    lse[((long)b * p.H + h) * p.Nq + i] = l[r] > 0 ? m[r] + MathF.Log(l[r]) : float.NegativeInfinity;
                }
            }
        });
    }

    /// <summary>
    /// s[r, j] = scale·Σ_e q[r, e]·k[j, e] for a block of <paramref name="rows"/> queries and <paramref name="cols"/> ≤ 64 keys
    /// with d ≤ <see cref="SmallHead"/>: the keys transposed into <paramref name="kt"/> [d, 64], then one
    /// <see cref="SmallProduct"/>. Through <see cref="HostGemm"/> a 16 × 16 × 16 head paid a transposed copy of K and a library
    /// call per product.
    /// </summary>
    private static void Scores(float* q, int qStride, float* k, int kStride, float* s, int rows, int cols, int d, float scale, float* kt)
    {
        for (int j = 0; j < cols; j++)
            for (int e = 0; e < d; e++)
                kt[e * BlockK + j] = k[(long)j * kStride + e];
        SmallProduct(q, qStride, rows, d, kt, BlockK, cols, s, cols, scale, accumulate: false);
    }

    /// <summary>acc[r, :] += Σ_j s[r, j]·v[j, :] for d ≤ <see cref="SmallHead"/> (see <see cref="Scores"/>).</summary>
    private static void Accumulate(float* s, int cols, float* v, int vStride, float* acc, int rows, int d) =>
        SmallProduct(s, cols, rows, cols, v, vStride, d, acc, d, 1f, accumulate: true);

    /// <summary>
    /// c[r, :width] = scale·((<paramref name="accumulate"/> ? c[r, :] : 0) + Σ_e a[r, e]·b[e, :width]) for width ≤ 64: four
    /// rows at a time of one broadcast FMA per e, row and vector of 16 (up to 16 accumulators in registers — four independent
    /// chains per vector of b; kept in a stack array instead, they ran slower than the GEMMs they replace), the last vector of
    /// each row of b and c masked to the width.
    /// </summary>
    private static void SmallProduct(float* a, int aStride, int rows, int depth, float* b, int bStride, int width, float* c, int cStride, float scale, bool accumulate)
    {
        int vectors = (width + 15) / 16;
        var tail = HostMath.FirstLanes(width - (vectors - 1) * 16);
        var factor = Vector512.Create(scale);
        for (int r = 0; r < rows; r += 4)
        {
            // Rows past the block repeat its last row: computed, not stored.
            float* a0 = a + (long)r * aStride, a1 = a + (long)Math.Min(r + 1, rows - 1) * aStride;
            float* a2 = a + (long)Math.Min(r + 2, rows - 1) * aStride, a3 = a + (long)Math.Min(r + 3, rows - 1) * aStride;
            float* c0 = c + (long)r * cStride, c1 = c + (long)Math.Min(r + 1, rows - 1) * cStride;
            float* c2 = c + (long)Math.Min(r + 2, rows - 1) * cStride, c3 = c + (long)Math.Min(r + 3, rows - 1) * cStride;
            Vector512<float> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
            Vector512<float> s20 = default, s21 = default, s22 = default, s23 = default, s30 = default, s31 = default, s32 = default, s33 = default;
            if (accumulate)
            {
                LoadRow(c0, vectors, tail, out s00, out s01, out s02, out s03);
                LoadRow(c1, vectors, tail, out s10, out s11, out s12, out s13);
                LoadRow(c2, vectors, tail, out s20, out s21, out s22, out s23);
                LoadRow(c3, vectors, tail, out s30, out s31, out s32, out s33);
            }
            for (int e = 0; e < depth; e++)
            {
                LoadRow(b + (long)e * bStride, vectors, tail, out var b0, out var b1, out var b2, out var b3);
                var x = Vector512.Create(a0[e]);
                s00 = Vector512.FusedMultiplyAdd(x, b0, s00); s01 = Vector512.FusedMultiplyAdd(x, b1, s01); s02 = Vector512.FusedMultiplyAdd(x, b2, s02); s03 = Vector512.FusedMultiplyAdd(x, b3, s03);
                x = Vector512.Create(a1[e]);
                s10 = Vector512.FusedMultiplyAdd(x, b0, s10); s11 = Vector512.FusedMultiplyAdd(x, b1, s11); s12 = Vector512.FusedMultiplyAdd(x, b2, s12); s13 = Vector512.FusedMultiplyAdd(x, b3, s13);
                x = Vector512.Create(a2[e]);
                s20 = Vector512.FusedMultiplyAdd(x, b0, s20); s21 = Vector512.FusedMultiplyAdd(x, b1, s21); s22 = Vector512.FusedMultiplyAdd(x, b2, s22); s23 = Vector512.FusedMultiplyAdd(x, b3, s23);
                x = Vector512.Create(a3[e]);
                s30 = Vector512.FusedMultiplyAdd(x, b0, s30); s31 = Vector512.FusedMultiplyAdd(x, b1, s31); s32 = Vector512.FusedMultiplyAdd(x, b2, s32); s33 = Vector512.FusedMultiplyAdd(x, b3, s33);
            }
            // Stored last row first, so a repeated last row (rows past the block) ends with its own values.
            if (r + 3 < rows) StoreRow(c3, vectors, tail, factor, s30, s31, s32, s33);
            if (r + 2 < rows) StoreRow(c2, vectors, tail, factor, s20, s21, s22, s23);
            if (r + 1 < rows) StoreRow(c1, vectors, tail, factor, s10, s11, s12, s13);
            StoreRow(c0, vectors, tail, factor, s00, s01, s02, s03);
        }
    }

    /// <summary>A row of <paramref name="vectors"/> (1–4) vectors, the last one masked to <paramref name="tail"/>; the rest zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadRow(float* row, int vectors, Vector512<float> tail, out Vector512<float> a0, out Vector512<float> a1, out Vector512<float> a2, out Vector512<float> a3)
    {
        a0 = vectors > 1 ? Vector512.Load(row) : Avx512F.MaskLoad(row, tail, Vector512<float>.Zero);
        a1 = vectors > 2 ? Vector512.Load(row + 16) : vectors > 1 ? Avx512F.MaskLoad(row + 16, tail, Vector512<float>.Zero) : default;
        a2 = vectors > 3 ? Vector512.Load(row + 32) : vectors > 2 ? Avx512F.MaskLoad(row + 32, tail, Vector512<float>.Zero) : default;
        a3 = vectors > 3 ? Avx512F.MaskLoad(row + 48, tail, Vector512<float>.Zero) : default;
    }

    /// <summary>row = <paramref name="factor"/>·(a0 … a3) for <paramref name="vectors"/> vectors, the last one masked to <paramref name="tail"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* row, int vectors, Vector512<float> tail, Vector512<float> factor, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3)
    {
        if (vectors == 1) { Avx512F.MaskStore(row, tail, a0 * factor); return; }
        (a0 * factor).Store(row);
        if (vectors == 2) { Avx512F.MaskStore(row + 16, tail, a1 * factor); return; }
        (a1 * factor).Store(row + 16);
        if (vectors == 3) { Avx512F.MaskStore(row + 32, tail, a2 * factor); return; }
        (a2 * factor).Store(row + 32);
        Avx512F.MaskStore(row + 48, tail, a3 * factor);
    }
}

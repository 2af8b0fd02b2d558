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
    /// with d ≤ <see cref="SmallHead"/>: the keys transposed into <paramref name="kt"/> [d, 64], four score rows at a time are
    /// d broadcast FMAs over ⌈cols/16⌉ vectors each (up to 16 accumulators in registers, four independent chains per key
    /// vector). Through <see cref="HostGemm"/> a 16 × 16 × 16 head paid a transposed copy of K and a library call per product.
    /// </summary>
    private static void Scores(float* q, int qStride, float* k, int kStride, float* s, int rows, int cols, int d, float scale, float* kt)
    {
        for (int j = 0; j < cols; j++)
            for (int e = 0; e < d; e++)
                kt[e * BlockK + j] = k[(long)j * kStride + e];
        int vectors = (cols + 15) / 16;
        var tail = Lanes(cols - (vectors - 1) * 16);
        var factor = Vector512.Create(scale);
        for (int r = 0; r < rows; r += 4)
        {
            // Rows past the block repeat its last row: computed, not stored.
            float* q0 = q + (long)r * qStride, q1 = q + (long)Math.Min(r + 1, rows - 1) * qStride;
            float* q2 = q + (long)Math.Min(r + 2, rows - 1) * qStride, q3 = q + (long)Math.Min(r + 3, rows - 1) * qStride;
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
            for (int e = 0; e < d; e++)
            {
                float* ke = kt + e * BlockK;
                var k0 = Vector512.Load(ke);
                var k1 = vectors > 1 ? Vector512.Load(ke + 16) : default;
                var k2 = vectors > 2 ? Vector512.Load(ke + 32) : default;
                var k3 = vectors > 3 ? Vector512.Load(ke + 48) : default;
                var x = Vector512.Create(q0[e]);
                a00 = Vector512.FusedMultiplyAdd(x, k0, a00); a01 = Vector512.FusedMultiplyAdd(x, k1, a01); a02 = Vector512.FusedMultiplyAdd(x, k2, a02); a03 = Vector512.FusedMultiplyAdd(x, k3, a03);
                x = Vector512.Create(q1[e]);
                a10 = Vector512.FusedMultiplyAdd(x, k0, a10); a11 = Vector512.FusedMultiplyAdd(x, k1, a11); a12 = Vector512.FusedMultiplyAdd(x, k2, a12); a13 = Vector512.FusedMultiplyAdd(x, k3, a13);
                x = Vector512.Create(q2[e]);
                a20 = Vector512.FusedMultiplyAdd(x, k0, a20); a21 = Vector512.FusedMultiplyAdd(x, k1, a21); a22 = Vector512.FusedMultiplyAdd(x, k2, a22); a23 = Vector512.FusedMultiplyAdd(x, k3, a23);
                x = Vector512.Create(q3[e]);
                a30 = Vector512.FusedMultiplyAdd(x, k0, a30); a31 = Vector512.FusedMultiplyAdd(x, k1, a31); a32 = Vector512.FusedMultiplyAdd(x, k2, a32); a33 = Vector512.FusedMultiplyAdd(x, k3, a33);
            }
            StoreRow(s + r * cols, vectors, tail, factor, a00, a01, a02, a03);
            if (r + 1 < rows) StoreRow(s + (r + 1) * cols, vectors, tail, factor, a10, a11, a12, a13);
            if (r + 2 < rows) StoreRow(s + (r + 2) * cols, vectors, tail, factor, a20, a21, a22, a23);
            if (r + 3 < rows) StoreRow(s + (r + 3) * cols, vectors, tail, factor, a30, a31, a32, a33);
        }
    }

    /// <summary>acc[r, :] += Σ_j s[r, j]·v[j, :] for d ≤ <see cref="SmallHead"/> (see <see cref="Scores"/>): four output rows at a
    /// time in ⌈d/16⌉ vectors each, one broadcast FMA per key, row and vector.</summary>
    private static void Accumulate(float* s, int cols, float* v, int vStride, float* acc, int rows, int d)
    {
        int vectors = (d + 15) / 16;
        var tail = Lanes(d - (vectors - 1) * 16);
        var one = Vector512.Create(1f);
        for (int r = 0; r < rows; r += 4)
        {
            float* s0 = s + r * cols, s1 = s + Math.Min(r + 1, rows - 1) * cols, s2 = s + Math.Min(r + 2, rows - 1) * cols, s3 = s + Math.Min(r + 3, rows - 1) * cols;
            float* o0 = acc + r * d, o1 = acc + Math.Min(r + 1, rows - 1) * d, o2 = acc + Math.Min(r + 2, rows - 1) * d, o3 = acc + Math.Min(r + 3, rows - 1) * d;
            LoadRow(o0, vectors, tail, out var a00, out var a01, out var a02, out var a03);
            LoadRow(o1, vectors, tail, out var a10, out var a11, out var a12, out var a13);
            LoadRow(o2, vectors, tail, out var a20, out var a21, out var a22, out var a23);
            LoadRow(o3, vectors, tail, out var a30, out var a31, out var a32, out var a33);
            for (int j = 0; j < cols; j++)
            {
                float* vj = v + (long)j * vStride;
                var v0 = vectors > 1 ? Vector512.Load(vj) : Avx512F.MaskLoad(vj, tail, Vector512<float>.Zero);
                var v1 = vectors > 2 ? Vector512.Load(vj + 16) : vectors > 1 ? Avx512F.MaskLoad(vj + 16, tail, Vector512<float>.Zero) : default;
                var v2 = vectors > 3 ? Vector512.Load(vj + 32) : vectors > 2 ? Avx512F.MaskLoad(vj + 32, tail, Vector512<float>.Zero) : default;
                var v3 = vectors > 3 ? Avx512F.MaskLoad(vj + 48, tail, Vector512<float>.Zero) : default;
                var x = Vector512.Create(s0[j]);
                a00 = Vector512.FusedMultiplyAdd(x, v0, a00); a01 = Vector512.FusedMultiplyAdd(x, v1, a01); a02 = Vector512.FusedMultiplyAdd(x, v2, a02); a03 = Vector512.FusedMultiplyAdd(x, v3, a03);
                x = Vector512.Create(s1[j]);
                a10 = Vector512.FusedMultiplyAdd(x, v0, a10); a11 = Vector512.FusedMultiplyAdd(x, v1, a11); a12 = Vector512.FusedMultiplyAdd(x, v2, a12); a13 = Vector512.FusedMultiplyAdd(x, v3, a13);
                x = Vector512.Create(s2[j]);
                a20 = Vector512.FusedMultiplyAdd(x, v0, a20); a21 = Vector512.FusedMultiplyAdd(x, v1, a21); a22 = Vector512.FusedMultiplyAdd(x, v2, a22); a23 = Vector512.FusedMultiplyAdd(x, v3, a23);
                x = Vector512.Create(s3[j]);
                a30 = Vector512.FusedMultiplyAdd(x, v0, a30); a31 = Vector512.FusedMultiplyAdd(x, v1, a31); a32 = Vector512.FusedMultiplyAdd(x, v2, a32); a33 = Vector512.FusedMultiplyAdd(x, v3, a33);
            }
            // Stored in reverse so a repeated last row (rows past the block) ends with its own values.
            if (r + 3 < rows) StoreRow(o3, vectors, tail, one, a30, a31, a32, a33);
            if (r + 2 < rows) StoreRow(o2, vectors, tail, one, a20, a21, a22, a23);
            if (r + 1 < rows) StoreRow(o1, vectors, tail, one, a10, a11, a12, a13);
            StoreRow(o0, vectors, tail, one, a00, a01, a02, a03);
        }
    }

    /// <summary>A mask of the first <paramref name="count"/> (1–16) lanes.</summary>
    private static Vector512<float> Lanes(int count) =>
        Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(count)).AsSingle();

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

using System.Numerics.Tensors;

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
    private const int ScoreSlot = 6, OutputSlot = 7;

    public static void Fused(float* q, float* k, float* v, float* o, float* lse, float* lengths, float* mask,
        HeadLayout lq, HeadLayout lk, HeadLayout lv, HeadLayout lo, AttentionParams p)
    {
        int qBlocks = (p.Nq + BlockQ - 1) / BlockQ, d = p.D;
        var single = Layout6.Create("attention", ReadOnlySpan<int>.Empty, ReadOnlySpan<int>.Empty);
        HostParallel.For(p.B * p.H * qBlocks, (long)BlockQ * p.Nk * d * 2, (start, end) =>
        {
            float* s = HostScratch.Get(ScoreSlot, BlockQ * BlockK);
            float* acc = HostScratch.Get(OutputSlot, BlockQ * d);
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
                    var scores = new GemmParams { M = rows, N = cols, K = d, StrideAm = lq.Seq, StrideAk = 1, StrideBk = 1, StrideBn = lk.Seq, Alpha = p.Scale };
                    HostGemm.Run(qBlock, k + lk.At(b, h, j0), s, null, scores, single, single, 1, default(ElementwiseOps.Identity), parallel: false);
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
                    var update = new GemmParams { M = rows, N = d, K = cols, StrideAm = cols, StrideAk = 1, StrideBk = lv.Seq, StrideBn = 1, Alpha = 1, Beta = 1 };
                    HostGemm.Run(s, v + lv.At(b, h, j0), acc, null, update, single, single, 1, default(ElementwiseOps.Identity), parallel: false);
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
}

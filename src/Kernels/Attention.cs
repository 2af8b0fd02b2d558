using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>Strides (in elements) of one attention operand [B, H, N, d] or [B, N, H, d]: the head dimension is contiguous.</summary>
    public struct HeadLayout
    {
        /// <summary>Steps between batches, heads and sequence positions.</summary>
        public int Batch, Head, Seq;

        /// <summary>Offset of element (b, h, n, 0).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly int At(int b, int h, int n) => b * Batch + h * Head + n * Seq;
    }

    /// <summary>The layouts of the backward's operands (one kernel parameter: a launch takes at most 16 arguments).</summary>
    public struct BackwardLayouts
    {
        /// <summary>Q, K, V, the output gradient, and the three input gradients.</summary>
        public HeadLayout Q, K, V, DO, DQ, DK, DV;
    }

    /// <summary>Scalars of one attention launch (kernel parameter).</summary>
    public struct AttentionParams
    {
        /// <summary>Batches, heads, query and key lengths, head dimension.</summary>
        public int B, H, Nq, Nk, D;

        /// <summary>Softmax scale (usually 1/√d).</summary>
        public float Scale;

        /// <summary>1: query i sees keys j ≤ i + (Nk − Nq) (the diagonal aligned to the end).</summary>
        public int Causal;

        /// <summary>1: per-batch key lengths (keys j ≥ length are masked).</summary>
        public int HasLengths;

        /// <summary>1: an additive mask [B or 1, H or 1, Nq, Nk] with these strides (0 on broadcast dimensions).</summary>
        public int HasMask, MaskBatch, MaskHead, MaskRow;
    }

    /// <summary>Four rows by eight columns of output accumulators (struct fields, so they stay in registers).</summary>
    public struct Acc4x8
    {
        /// <summary>Row r, columns 0–3 (L) and 4–7 (H).</summary>
        public Float4 R0L, R0H, R1L, R1H, R2L, R2H, R3L, R3H;
    }

    /// <summary>
    /// The attention family: <c>attention</c> (fused, FlashAttention-style), <c>attention_unfused</c> (matmul,
    /// softmax, matmul — the baseline), <c>attention_decode</c> (one query against a KV cache, split across the
    /// cache) and <c>kv_cache_append</c>.
    /// <para><b>Fused kernel</b> (<see cref="Fused"/>): one group of 128 threads owns a block of 32 queries of one
    /// (batch, head) and walks the keys in tiles of 32 through shared memory, never materializing the Nq×Nk scores
    /// (memory O(N·d)). Per key tile: S = Q·Kᵀ (each thread a 2×4 block, Q and K stored d-major so the reads are
    /// float4 and conflict-free); the online softmax runs on those registers, FlashAttention-2 style: the eight lanes
    /// that share two query rows reduce their keys' max and sum with three xor shuffles (both rows in one), each keeping the
    /// rows' running max m and sum l, and write P and the rescale factor α = e^(m_old − m) to shared memory once; then
    /// O = α·O + P·V with each thread owning a 4×8 block of O in registers. (The softmax used to be a pass of its own over
    /// S in shared memory, a warp per query row with ten shuffles per row: 80 shuffles per warp and tile against 6 pair
    /// shuffles now. On the simulated GPU, where each shuffle is a rendezvous of 32 threads, that made the kernel 7× slower:
    /// B3 H4 N7 d16 took 1,160 ms there, now 170 ms.) Causal attention stops at the
    /// last key tile that touches the diagonal and masks only the tiles that cross it; key-padding lengths stop the
    /// walk at the sequence's length. O is written once, normalized by l, with the per-row logsumexp m + log l
    /// (the backward pass needs it); a row with no visible key gives zeros and logsumexp −inf. Head dimension ≤ 128.</para>
    /// FLOPs: 4·B·H·Nq·Nk·d (about half when causal). Bytes (minimum): 4·B·H·(2·Nq·d + 2·Nk·d) (+ the mask, + 4·B·H·Nq for logsumexp).
    /// </summary>
    public static class AttentionKernels
    {
        /// <summary>Queries per group.</summary>
        public const int BlockQ = 32;

        /// <summary>Keys per tile (one per warp lane in the softmax).</summary>
        public const int BlockK = 32;

        /// <summary>Largest head dimension.</summary>
        public const int MaxD = 128;

        /// <summary>Threads per group.</summary>
        public const int Threads = 128;

        /// <summary>Is key j masked for query i (causal, padding)? Additive masks are applied separately.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool Hidden(int i, int j, int keyLimit, AttentionParams p) =>
            j >= keyLimit || (p.Causal != 0 && j > i + p.Nk - p.Nq);

        /// <summary>Scores of query i against keys j..j+3 plus the additive mask, −∞ where a key is hidden or past Nk.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Float4 MaskScores(Float4 s, int i, int j, bool crossesMask, int keyLimit, ArrayView<float> mask, int b, int h, AttentionParams p) => new()
        {
            X = MaskScore(s.X, i, j, crossesMask, keyLimit, mask, b, h, p),
            Y = MaskScore(s.Y, i, j + 1, crossesMask, keyLimit, mask, b, h, p),
            Z = MaskScore(s.Z, i, j + 2, crossesMask, keyLimit, mask, b, h, p),
            W = MaskScore(s.W, i, j + 3, crossesMask, keyLimit, mask, b, h, p),
        };

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float MaskScore(float s, int i, int j, bool crossesMask, int keyLimit, ArrayView<float> mask, int b, int h, AttentionParams p)
        {
            if (j >= p.Nk || (crossesMask && Hidden(i, j, keyLimit, p)))
                return float.NegativeInfinity;
            return p.HasMask != 0 && i < p.Nq ? s + MaskAt(mask, b, h, i, j, p) : s;
        }

        /// <summary>The additive mask at (b, h, i, j), through its strides (0 on broadcast dimensions).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float MaskAt(ArrayView<float> mask, int b, int h, int i, int j, AttentionParams p) =>
            mask[b * p.MaskBatch + h * p.MaskHead + i * p.MaskRow + j];

        /// <summary>Rows of Q (dK/dV kernel) or of K and V (dQ kernel) staged in shared memory per tile; one warp per owned row, four rows per group.</summary>
        public const int BackwardTile = 32, BackwardRows = 4;

        /// <summary>(a·b, c·e) for lane-held Float4 slices, each summed over the warp (every lane gets both): the two dot products
        /// the backward needs per (query, key) share one shuffle chain (on a GPU the same shuffles as two chains; on the simulated
        /// GPU, where each shuffle is a rendezvous of 32 threads, half the rendezvous).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Float2 Dots(Float4 a, Float4 b, Float4 c, Float4 e)
        {
            var v = new Float2 { X = a.X * b.X + a.Y * b.Y + a.Z * b.Z + a.W * b.W, Y = c.X * e.X + c.Y * e.Y + c.Z * e.Z + c.W * e.W };
            for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
                v = v.Add(Warp.ShuffleXor(v, delta));
            return v;
        }

        /// <summary>Four consecutive elements of a row starting at column c (zeros past d).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Float4 Row4(ArrayView<float> x, int at, int c, int d) => Float4.Load(x, at + c, d - c, 0);

        /// <summary>Element (row r, columns c..c+3) of a [tile][MaxD] shared array.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Float4 Shared4(ArrayView<float> tile, int r, int c) =>
            new Float4 { X = tile[r * MaxD + c], Y = tile[r * MaxD + c + 1], Z = tile[r * MaxD + c + 2], W = tile[r * MaxD + c + 3] };

        /// <summary>The probability and dS of (query i, key j) from the recomputed dot products (q·k, dO·v) = (s, dP): P = e^(s·scale + mask − lse), dS = P·(dP − D).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (float P, float DS) Probability(Float2 dots, float lse, float delta, ArrayView<float> mask, int b, int h, int i, int j, AttentionParams p)
        {
            float score = dots.X * p.Scale + (p.HasMask != 0 ? MaskAt(mask, b, h, i, j, p) : 0f);
            // A row that saw no key has lse = −inf and no probability anywhere (its output was zeros).
            float prob = lse == float.NegativeInfinity ? 0f : MathF.Exp(score - lse);
            return (prob, prob * (dots.Y - delta));
        }

        /// <summary>
        /// dK and dV, FlashAttention-2 style: a warp owns one key row (lane ℓ its columns 4ℓ..4ℓ+3, so d ≤ 128 fits one
        /// Float4 per lane), four keys per group; tiles of 32 queries with their output gradients stream through shared memory.
        /// For each visible (query, key) the warp recomputes the score (a shuffle-reduced dot product), P from the saved
        /// logsumexp and dS = P·(dP − D_i), and accumulates dV += P·dO_i, dK += dS·scale·q_i in registers. Causal: query
        /// tiles wholly before the keys' diagonal are skipped. Nothing but the logsumexp and D is kept from the forward.
        /// Grid: (⌈Nk/4⌉, H, B), 128 threads.
        /// </summary>
        public static void BackwardKeys(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dO, ArrayView<float> lse, ArrayView<float> delta,
            ArrayView<float> lengths, ArrayView<float> mask, ArrayView<float> dK, ArrayView<float> dV, BackwardLayouts l, AttentionParams p)
        {
            var (lq, lk, lv, ldo, ldk, ldv) = (l.Q, l.K, l.V, l.DO, l.DK, l.DV);
            var qTile = SharedMemory.Allocate<float>(BackwardTile * MaxD);
            var dTile = SharedMemory.Allocate<float>(BackwardTile * MaxD);
            var stats = SharedMemory.Allocate<float>(2 * BackwardTile);
            int t = Group.IdxX, warp = t / Warp.WarpSize, lane = Warp.LaneIdx, h = Grid.IdxY, b = Grid.IdxZ, d = p.D, c = 4 * lane;
            int j = Grid.IdxX * BackwardRows + warp;
            int keyLimit = p.HasLengths != 0 ? IntrinsicMath.Min((int)lengths[b], p.Nk) : p.Nk;
            bool live = j < keyLimit;
            var kj = live ? Row4(k, lk.At(b, h, j), c, d) : default;
            var vj = live ? Row4(v, lv.At(b, h, j), c, d) : default;
            Float4 dk = default, dv = default;
            // Causal: query i sees key j when j ≤ i + Nk − Nq, so the group's first key bounds the first query that matters.
            int firstQuery = p.Causal != 0 ? IntrinsicMath.Max(0, Grid.IdxX * BackwardRows - (p.Nk - p.Nq)) : 0;
            for (int i0 = firstQuery / BackwardTile * BackwardTile; i0 < p.Nq; i0 += BackwardTile)
            {
                for (int e = t; e < BackwardTile * MaxD; e += Group.DimX)
                {
                    int r = e / MaxD, col = e - r * MaxD;
                    bool inside = i0 + r < p.Nq && col < d;
                    qTile[e] = inside ? q[lq.At(b, h, i0 + r) + col] : 0f;
                    dTile[e] = inside ? dO[ldo.At(b, h, i0 + r) + col] : 0f;
                }
                for (int e = t; e < BackwardTile; e += Group.DimX)
                {
                    int row = (b * p.H + h) * p.Nq + i0 + e;
                    stats[e] = i0 + e < p.Nq ? lse[row] : float.NegativeInfinity;
                    stats[BackwardTile + e] = i0 + e < p.Nq ? delta[row] : 0f;
                }
                Group.Barrier();
                for (int r = 0; r < BackwardTile && i0 + r < p.Nq; r++)
                {
                    int i = i0 + r;
                    if (!live || Hidden(i, j, keyLimit, p))
                        continue;
                    var qi = Shared4(qTile, r, c);
                    var doi = Shared4(dTile, r, c);
                    var (prob, ds) = Probability(Dots(qi, kj, doi, vj), stats[r], stats[BackwardTile + r], mask, b, h, i, j, p);
                    dv = Float4.Fma(dv, prob, doi);
                    dk = Float4.Fma(dk, ds * p.Scale, qi);
                }
                Group.Barrier();
            }
            if (j < p.Nk)
                for (int e = 0; e < 4; e++)
                    if (c + e < d)
                    {
                        dK[ldk.At(b, h, j) + c + e] = e == 0 ? dk.X : e == 1 ? dk.Y : e == 2 ? dk.Z : dk.W;
                        dV[ldv.At(b, h, j) + c + e] = e == 0 ? dv.X : e == 1 ? dv.Y : e == 2 ? dv.Z : dv.W;
                    }
        }

        /// <summary>
        /// dQ, FlashAttention-2 style: a warp owns one query row, four per group; tiles of 32 keys and values stream through
        /// shared memory; per visible key the warp recomputes the score and dP, P from the logsumexp and dS = P·(dP − D_i),
        /// and accumulates dQ += dS·scale·k_j. Causal: key tiles past the last query's diagonal are never loaded; key lengths
        /// stop the walk. Grid: (⌈Nq/4⌉, H, B), 128 threads.
        /// </summary>
        public static void BackwardQueries(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dO, ArrayView<float> lse, ArrayView<float> delta,
            ArrayView<float> lengths, ArrayView<float> mask, ArrayView<float> dQ, BackwardLayouts l, AttentionParams p)
        {
            var (lq, lk, lv, ldo, ldq) = (l.Q, l.K, l.V, l.DO, l.DQ);
            var kTile = SharedMemory.Allocate<float>(BackwardTile * MaxD);
            var vTile = SharedMemory.Allocate<float>(BackwardTile * MaxD);
            int t = Group.IdxX, warp = t / Warp.WarpSize, lane = Warp.LaneIdx, h = Grid.IdxY, b = Grid.IdxZ, d = p.D, c = 4 * lane;
            int i = Grid.IdxX * BackwardRows + warp;
            bool live = i < p.Nq;
            var qi = live ? Row4(q, lq.At(b, h, i), c, d) : default;
            var doi = live ? Row4(dO, ldo.At(b, h, i), c, d) : default;
            int row = (b * p.H + h) * p.Nq + i;
            float rowLse = live ? lse[row] : float.NegativeInfinity, rowDelta = live ? delta[row] : 0f;
            Float4 dq = default;
            int keyLimit = p.HasLengths != 0 ? IntrinsicMath.Min((int)lengths[b], p.Nk) : p.Nk;
            int lastQuery = IntrinsicMath.Min(p.Nq - 1, Grid.IdxX * BackwardRows + BackwardRows - 1);
            int keyEnd = p.Causal != 0 ? IntrinsicMath.Min(keyLimit, lastQuery + 1 + p.Nk - p.Nq) : keyLimit;
            for (int j0 = 0; j0 < keyEnd; j0 += BackwardTile)
            {
                for (int e = t; e < BackwardTile * MaxD; e += Group.DimX)
                {
                    int r = e / MaxD, col = e - r * MaxD;
                    bool inside = j0 + r < p.Nk && col < d;
                    kTile[e] = inside ? k[lk.At(b, h, j0 + r) + col] : 0f;
                    vTile[e] = inside ? v[lv.At(b, h, j0 + r) + col] : 0f;
                }
                Group.Barrier();
                for (int r = 0; r < BackwardTile && j0 + r < keyEnd; r++)
                {
                    int j = j0 + r;
                    if (!live || Hidden(i, j, keyLimit, p))
                        continue;
                    var kj = Shared4(kTile, r, c);
                    var (_, ds) = Probability(Dots(qi, kj, doi, Shared4(vTile, r, c)), rowLse, rowDelta, mask, b, h, i, j, p);
                    dq = Float4.Fma(dq, ds * p.Scale, kj);
                }
                Group.Barrier();
            }
            if (live)
                for (int e = 0; e < 4; e++)
                    if (c + e < d)
                        dQ[ldq.At(b, h, i) + c + e] = e == 0 ? dq.X : e == 1 ? dq.Y : e == 2 ? dq.Z : dq.W;
        }

        /// <summary>The fused attention kernel (see the class summary). Grid: (⌈Nq/32⌉, H, B).</summary>
        public static void Fused(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o, ArrayView<float> lse,
            ArrayView<float> lengths, ArrayView<float> mask, HeadLayout lq, HeadLayout lk, HeadLayout lv, HeadLayout lo, AttentionParams p)
        {
            // Shared: Qᵀ [MaxD][BlockQ] (scaled), K tile d-major [MaxD][BlockK] then V tile [BlockK][MaxD] (same buffer),
            // P [BlockK][BlockQ] (key-major, so PV reads four query rows as one float4), and per-row m, l, α.
            var qT = SharedMemory.Allocate<float>(MaxD * BlockQ);
            var kv = SharedMemory.Allocate<float>(MaxD * BlockK);
            var pT = SharedMemory.Allocate<float>(BlockK * BlockQ);
            var rowMax = SharedMemory.Allocate<float>(BlockQ);
            var rowSum = SharedMemory.Allocate<float>(BlockQ);
            var rowAlpha = SharedMemory.Allocate<float>(BlockQ);

            int t = Group.IdxX, q0 = Grid.IdxX * BlockQ, h = Grid.IdxY, b = Grid.IdxZ, d = p.D;
            int keyLimit = p.HasLengths != 0 ? IntrinsicMath.Min((int)lengths[b], p.Nk) : p.Nk;
            // Causal: no key beyond the last query row's diagonal is ever visible to this block.
            int keyEnd = p.Causal != 0 ? IntrinsicMath.Min(keyLimit, q0 + BlockQ + p.Nk - p.Nq) : keyLimit;

            for (int e = t; e < MaxD * BlockQ; e += Threads)
            {
                int r = e % BlockQ, c = e / BlockQ;
                qT[e] = c < d && q0 + r < p.Nq ? q[lq.At(b, h, q0 + r) + c] * p.Scale : 0f;
            }
            // Q must be in place before anyone reads it.
            Group.Barrier();

            // S: thread t owns query rows 2·(t/8), +1 and key columns 4·(t%8)..+3.
            int sRow = 2 * (t / 8), sCol = 4 * (t % 8);
            // PV: thread t owns query rows 4·(t/16)..+3 and output columns 8·(t%16)..+7.
            int oRow = 4 * (t / 16), oCol = 8 * (t % 16);
            Acc4x8 acc = default;
            // The running max m and sum l of rows sRow, sRow + 1 (the same in all eight lanes that share the rows).
            float m0 = float.NegativeInfinity, m1 = float.NegativeInfinity, l0 = 0f, l1 = 0f;

            for (int k0 = 0; k0 < keyEnd; k0 += BlockK)
            {
                // K tile, d-major: kv[c·BlockK + j] = K[k0 + j, c].
                for (int e = t; e < MaxD * BlockK; e += Threads)
                {
                    int j = e % BlockK, c = e / BlockK;
                    kv[e] = c < d && k0 + j < p.Nk ? k[lk.At(b, h, k0 + j) + c] : 0f;
                }
                Group.Barrier();

                Float4 s0 = default, s1 = default;
                var kv4 = kv.Cast<Float4>().AsAligned(16);
                for (int c = 0; c < d; c++)
                {
                    var kc = kv4[(c * BlockK + sCol) / 4];
                    s0 = Float4.Fma(s0, qT[c * BlockQ + sRow], kc);
                    s1 = Float4.Fma(s1, qT[c * BlockQ + sRow + 1], kc);
                }

                // Online softmax on the registers that hold S: the eight lanes that share rows sRow, sRow + 1 (lanes 8a..8a+7 of
                // a warp) reduce their four keys each, then combine by three xor shuffles carrying both rows.
                bool crossesMask = k0 + BlockK > keyLimit || (p.Causal != 0 && k0 + BlockK - 1 > q0 + p.Nk - p.Nq);
                s0 = MaskScores(s0, q0 + sRow, k0 + sCol, crossesMask, keyLimit, mask, b, h, p);
                s1 = MaskScores(s1, q0 + sRow + 1, k0 + sCol, crossesMask, keyLimit, mask, b, h, p);
                var tileMax = new Float2 { X = s0.Max(), Y = s1.Max() };
                for (int delta = 4; delta > 0; delta /= 2)
                    tileMax = tileMax.Max(Warp.ShuffleXor(tileMax, delta));
                // A row that has seen only −inf keeps m = −inf: its probabilities and α are 0, never NaN.
                float mNew0 = IntrinsicMath.Max(m0, tileMax.X), mNew1 = IntrinsicMath.Max(m1, tileMax.Y);
                s0 = Float4.ExpMinus(s0, mNew0);
                s1 = Float4.ExpMinus(s1, mNew1);
                var tileSum = new Float2 { X = s0.Sum(), Y = s1.Sum() };
                for (int delta = 4; delta > 0; delta /= 2)
                    tileSum = tileSum.Add(Warp.ShuffleXor(tileSum, delta));
                float alpha0 = m0 == float.NegativeInfinity ? 0f : MathF.Exp(m0 - mNew0);
                float alpha1 = m1 == float.NegativeInfinity ? 0f : MathF.Exp(m1 - mNew1);
                (m0, m1) = (mNew0, mNew1);
                (l0, l1) = (l0 * alpha0 + tileSum.X, l1 * alpha1 + tileSum.Y);
                pT[(sCol + 0) * BlockQ + sRow] = s0.X; pT[(sCol + 1) * BlockQ + sRow] = s0.Y;
                pT[(sCol + 2) * BlockQ + sRow] = s0.Z; pT[(sCol + 3) * BlockQ + sRow] = s0.W;
                pT[(sCol + 0) * BlockQ + sRow + 1] = s1.X; pT[(sCol + 1) * BlockQ + sRow + 1] = s1.Y;
                pT[(sCol + 2) * BlockQ + sRow + 1] = s1.Z; pT[(sCol + 3) * BlockQ + sRow + 1] = s1.W;
                if (sCol == 0)
                {
                    rowAlpha[sRow] = alpha0;
                    rowAlpha[sRow + 1] = alpha1;
                }
                // P and α are in place for the P·V threads, and nobody reads the K tile any more.
                Group.Barrier();

                // V tile, row-major: kv[j·MaxD + c] = V[k0 + j, c] (the K tile is no longer needed).
                for (int e = t; e < MaxD * BlockK; e += Threads)
                {
                    int c = e % MaxD, j = e / MaxD;
                    kv[e] = c < d && k0 + j < p.Nk ? v[lv.At(b, h, k0 + j) + c] : 0f;
                }
                Group.Barrier();

                if (oCol < d)
                {
                    var alpha4 = rowAlpha.Cast<Float4>().AsAligned(16)[oRow / 4];
                    acc.R0L = Float4.Scale(acc.R0L, alpha4.X); acc.R0H = Float4.Scale(acc.R0H, alpha4.X);
                    acc.R1L = Float4.Scale(acc.R1L, alpha4.Y); acc.R1H = Float4.Scale(acc.R1H, alpha4.Y);
                    acc.R2L = Float4.Scale(acc.R2L, alpha4.Z); acc.R2H = Float4.Scale(acc.R2H, alpha4.Z);
                    acc.R3L = Float4.Scale(acc.R3L, alpha4.W); acc.R3H = Float4.Scale(acc.R3H, alpha4.W);
                    var p4 = pT.Cast<Float4>().AsAligned(16);
                    var v4 = kv.Cast<Float4>().AsAligned(16);
                    for (int j = 0; j < BlockK; j++)
                    {
                        var pj = p4[(j * BlockQ + oRow) / 4];
                        var vL = v4[(j * MaxD + oCol) / 4];
                        var vH = v4[(j * MaxD + oCol + 4) / 4];
                        acc.R0L = Float4.Fma(acc.R0L, pj.X, vL); acc.R0H = Float4.Fma(acc.R0H, pj.X, vH);
                        acc.R1L = Float4.Fma(acc.R1L, pj.Y, vL); acc.R1H = Float4.Fma(acc.R1H, pj.Y, vH);
                        acc.R2L = Float4.Fma(acc.R2L, pj.Z, vL); acc.R2H = Float4.Fma(acc.R2H, pj.Z, vH);
                        acc.R3L = Float4.Fma(acc.R3L, pj.W, vL); acc.R3H = Float4.Fma(acc.R3H, pj.W, vH);
                    }
                }
                // The next tile overwrites kv and pT.
                Group.Barrier();
            }

            // The statistics move from the softmax's row mapping to the output's.
            if (sCol == 0)
            {
                rowMax[sRow] = m0; rowMax[sRow + 1] = m1;
                rowSum[sRow] = l0; rowSum[sRow + 1] = l1;
            }
            Group.Barrier();
            if (oCol < d)
            {
                WriteRow(o, lo, rowSum, oRow, q0, oCol, b, h, acc.R0L, acc.R0H, p);
                WriteRow(o, lo, rowSum, oRow + 1, q0, oCol, b, h, acc.R1L, acc.R1H, p);
                WriteRow(o, lo, rowSum, oRow + 2, q0, oCol, b, h, acc.R2L, acc.R2H, p);
                WriteRow(o, lo, rowSum, oRow + 3, q0, oCol, b, h, acc.R3L, acc.R3H, p);
            }
            if (t < BlockQ && q0 + t < p.Nq)
                lse[(b * p.H + h) * p.Nq + q0 + t] = rowSum[t] > 0 ? rowMax[t] + MathF.Log(rowSum[t]) : float.NegativeInfinity;
        }

        /// <summary>O[b, h, q0 + r, c..c+7] = acc / l (0 when the row saw no key), bounds-checked against Nq and d.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void WriteRow(ArrayView<float> o, HeadLayout layout, ArrayView<float> rowSum, int r, int q0, int c, int b, int h, Float4 lo, Float4 hi, AttentionParams p)
        {
            int i = q0 + r;
            if (i >= p.Nq)
                return;
            float l = rowSum[r], inv = l > 0 ? 1f / l : 0f;
            int at = layout.At(b, h, i) + c;
            int valid = p.D - c;
            o[at] = lo.X * inv;
            if (valid > 1) o[at + 1] = lo.Y * inv;
            if (valid > 2) o[at + 2] = lo.Z * inv;
            if (valid > 3) o[at + 3] = lo.W * inv;
            if (valid > 4) o[at + 4] = hi.X * inv;
            if (valid > 5) o[at + 5] = hi.Y * inv;
            if (valid > 6) o[at + 6] = hi.Z * inv;
            if (valid > 7) o[at + 7] = hi.W * inv;
        }

        /// <summary>Keys per split of the decode kernel.</summary>
        public const int DecodeChunk = 256;

        /// <summary>
        /// Decode attention, pass 1: group (chunk, h, b) scores its ≤ 256 cached keys against the single query (a warp
        /// per key, lanes over d, shuffle sum), folds them into (max, Σexp), and accumulates its partial output with a
        /// thread per output column. Writes [m, l, o₀..o_d) per chunk to <paramref name="partial"/>.
        /// </summary>
        public static void DecodePartial(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> lengths, ArrayView<float> partial,
            HeadLayout lq, HeadLayout lk, HeadLayout lv, AttentionParams p, int chunks)
        {
            var qs = SharedMemory.Allocate<float>(MaxD);
            var scores = SharedMemory.Allocate<float>(DecodeChunk);
            var slots = SharedMemory.Allocate<MaxSum>(32);
            int t = Group.IdxX, chunk = Grid.IdxX, h = Grid.IdxY, b = Grid.IdxZ, d = p.D;
            int keyLimit = p.HasLengths != 0 ? IntrinsicMath.Min((int)lengths[b], p.Nk) : p.Nk;
            int j0 = chunk * DecodeChunk, j1 = IntrinsicMath.Min(j0 + DecodeChunk, keyLimit);
            if (t < MaxD)
                qs[t] = t < d ? q[lq.At(b, h, 0) + t] * p.Scale : 0f;
            Group.Barrier();

            int warp = t / 32, lane = t % 32;
            for (int j = j0 + warp; j < j1; j += Threads / 32)
            {
                int row = lk.At(b, h, j);
                float s = 0f;
                for (int c = lane; c < d; c += 32)
                    s += qs[c] * k[row + c];
                for (int delta = 16; delta > 0; delta /= 2)
                    s += Warp.ShuffleXor(s, delta);
                if (lane == 0)
                    scores[j - j0] = s;
            }
            Group.Barrier();

            var acc = MaxSum.Empty;
            for (int j = j0 + t; j < j1; j += Threads)
                acc = acc.Add(scores[j - j0]);
            acc = GroupReduce.AllReduce(acc, slots, default(MaxSum.Merger));

            int outBase = ((b * p.H + h) * chunks + chunk) * (MaxD + 2);
            if (t < d)
            {
                float sum = 0f;
                for (int j = j0; j < j1; j++)
                    sum += MathF.Exp(scores[j - j0] - acc.Max) * v[lv.At(b, h, j) + t];
                partial[outBase + 2 + t] = acc.Max == float.NegativeInfinity ? 0f : sum;
            }
            if (t == 0)
            {
                partial[outBase] = acc.Max;
                partial[outBase + 1] = acc.Sum;
            }
        }

        /// <summary>Decode attention, pass 2: group (h, b) merges the chunks' (m, l, o) with a thread per output column.</summary>
        public static void DecodeCombine(ArrayView<float> partial, ArrayView<float> o, ArrayView<float> lse, HeadLayout lo, AttentionParams p, int chunks)
        {
            int t = Group.IdxX, h = Grid.IdxX, b = Grid.IdxY;
            int baseIndex = (b * p.H + h) * chunks * (MaxD + 2);
            float m = float.NegativeInfinity;
            for (int c = 0; c < chunks; c++)
                m = IntrinsicMath.Max(m, partial[baseIndex + c * (MaxD + 2)]);
            float l = 0f, sum = 0f;
            for (int c = 0; c < chunks; c++)
            {
                float mc = partial[baseIndex + c * (MaxD + 2)];
                if (mc == float.NegativeInfinity)
                    continue;
                float w = MathF.Exp(mc - m);
                l += partial[baseIndex + c * (MaxD + 2) + 1] * w;
                if (t < p.D)
                    sum += partial[baseIndex + c * (MaxD + 2) + 2 + t] * w;
            }
            if (t < p.D)
                o[lo.At(b, h, 0) + t] = l > 0 ? sum / l : 0f;
            if (t == 0)
                lse[b * p.H + h] = l > 0 ? m + MathF.Log(l) : float.NegativeInfinity;
        }

        // ------------------------------------------------------------ launchers

        /// <summary>True when the device has the fused backward (<see cref="BackwardKeys"/>, <see cref="BackwardQueries"/>); the
        /// fast CPU has none, and the op differentiates the unfused recomputation there instead.</summary>
        internal static bool HasFusedBackward(Device device) => !device.IsHostCpu;

        /// <summary>The element strides of a [B, H, N, d] (or [B, N, H, d]) operand as the kernels index it.</summary>
        internal static HeadLayout Heads(Tensor t, AttentionLayout layout) => layout == AttentionLayout.BHND
            ? new HeadLayout { Batch = t.Strides[0], Head = t.Strides[1], Seq = t.Strides[2] }
            : new HeadLayout { Batch = t.Strides[0], Head = t.Strides[2], Seq = t.Strides[1] };

        /// <summary>
        /// Fused attention into <paramref name="output"/> and <paramref name="lse"/> [B, H, Nq] on the implementation for the device:
        /// the fast CPU's host loop (<see cref="Cpu.HostAttention"/>), else <see cref="Fused"/>. Q, K, V have a contiguous last
        /// dimension; <paramref name="mask"/> (when given) is contiguous with its broadcast strides in <paramref name="p"/>.
        /// </summary>
        internal static void RunFused(string op, Device device, Tensor q, Tensor k, Tensor v, Tensor output, Tensor lse, Tensor? keyLengths,
            Tensor? mask, AttentionLayout layout, AttentionParams p)
        {
            if (device.IsHostCpu)
            {
                RunHost(op, q, k, v, output, lse, keyLengths, mask, layout, p);
                return;
            }
            var grid = new Index3D((p.Nq + BlockQ - 1) / BlockQ, p.H, p.B);
            device.Launch(op, Fused, new KernelConfig(grid, new Index3D(Threads, 1, 1)),
                q.StridedView, k.StridedView, v.StridedView, output.ContiguousView, lse.ContiguousView,
                (keyLengths ?? lse).ContiguousView, (mask ?? lse).StridedView,
                Heads(q, layout), Heads(k, layout), Heads(v, layout), Heads(output, layout), p);
        }

        /// <summary>
        /// One query per sequence against a KV cache: on the fast CPU the fused host loop (already a split over key blocks with an
        /// online softmax), else <see cref="DecodePartial"/> over chunks of <see cref="DecodeChunk"/> keys and <see cref="DecodeCombine"/>.
        /// </summary>
        internal static void RunDecode(string op, Device device, Tensor q, Tensor k, Tensor v, Tensor output, Tensor lse, Tensor? keyLengths,
            AttentionLayout layout, AttentionParams p)
        {
            if (device.IsHostCpu)
            {
                RunHost(op, q, k, v, output, lse, keyLengths, null, layout, p);
                return;
            }
            int chunks = Math.Max(1, (p.Nk + DecodeChunk - 1) / DecodeChunk);
            using var partial = Tensor.Empty(device, p.B, p.H, chunks, MaxD + 2);
            using (device.Profiler.Measure(op))   // two kernels, one op
            {
                device.Launch(null, DecodePartial, new KernelConfig(new Index3D(chunks, p.H, p.B), new Index3D(Threads, 1, 1)), q.StridedView, k.StridedView, v.StridedView,
                    (keyLengths ?? partial).ContiguousView, partial.ContiguousView, Heads(q, layout), Heads(k, layout), Heads(v, layout), p, chunks);
                device.Launch(null, DecodeCombine, new KernelConfig(new Index3D(p.H, p.B, 1), new Index3D(Threads, 1, 1)), partial.ContiguousView,
                    output.ContiguousView, lse.ContiguousView, Heads(output, layout), p, chunks);
            }
        }

        /// <summary>
        /// The fused backward's two kernels (<see cref="BackwardKeys"/> for dK and dV, <see cref="BackwardQueries"/> for dQ) from the
        /// forward's logsumexp and <paramref name="delta"/> = rowsum(dO ⊙ O) [B, H, Nq]; one profiler entry for the op.
        /// </summary>
        internal static void RunBackward(string op, Device device, Tensor q, Tensor k, Tensor v, Tensor dOutput, Tensor lse, Tensor delta,
            Tensor? keyLengths, Tensor? mask, Tensor dq, Tensor dk, Tensor dv, AttentionLayout layout, AttentionParams p)
        {
            var lengths = (keyLengths ?? lse).ContiguousView;
            var layouts = new BackwardLayouts
            {
                Q = Heads(q, layout), K = Heads(k, layout), V = Heads(v, layout), DO = Heads(dOutput, layout), DQ = Heads(dq, layout), DK = Heads(dk, layout), DV = Heads(dv, layout),
            };
            var threads = new Index3D(BackwardRows * 32, 1, 1);
            using (device.Profiler.Measure(op))   // two kernels, one op
            {
                device.Launch(null, BackwardKeys, new KernelConfig(new Index3D((p.Nk + BackwardRows - 1) / BackwardRows, p.H, p.B), threads),
                    q.StridedView, k.StridedView, v.StridedView, dOutput.StridedView, lse.ContiguousView, delta.ContiguousView, lengths, (mask ?? lse).StridedView, dk.ContiguousView, dv.ContiguousView, layouts, p);
                device.Launch(null, BackwardQueries, new KernelConfig(new Index3D((p.Nq + BackwardRows - 1) / BackwardRows, p.H, p.B), threads),
                    q.StridedView, k.StridedView, v.StridedView, dOutput.StridedView, lse.ContiguousView, delta.ContiguousView, lengths, (mask ?? lse).StridedView, dq.ContiguousView, layouts, p);
            }
        }

        /// <summary>The fast CPU device's attention (<see cref="Cpu.HostAttention"/>).</summary>
        private static unsafe void RunHost(string op, Tensor q, Tensor k, Tensor v, Tensor output, Tensor lse, Tensor? keyLengths, Tensor? mask,
            AttentionLayout layout, AttentionParams p)
        {
            using (q.Device.Profiler.Measure(op))
                Cpu.HostAttention.Fused(Cpu.HostMemory.Ptr(q), Cpu.HostMemory.Ptr(k), Cpu.HostMemory.Ptr(v),
                    Cpu.HostMemory.Ptr(output), Cpu.HostMemory.Ptr(lse), keyLengths is null ? null : Cpu.HostMemory.Ptr(keyLengths),
                    mask is null ? null : Cpu.HostMemory.Ptr(mask), Heads(q, layout), Heads(k, layout), Heads(v, layout), Heads(output, layout), p);
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>Memory layout of attention operands.</summary>
    public enum AttentionLayout
    {
        /// <summary>[B, H, N, d] (heads before the sequence).</summary>
        BHND,
        /// <summary>[B, N, H, d] (the output of a fused QKV projection, reshaped).</summary>
        BNHD,
    }

    /// <summary>Attention output (same layout as the inputs) and the per-row logsumexp [B, H, Nq] (for the backward pass).</summary>
    public sealed record AttentionResult(Tensor Output, Tensor LogSumExp) : IDisposable
    {
        /// <summary>Disposes both tensors.</summary>
        public void Dispose()
        {
            Output.Dispose();
            LogSumExp.Dispose();
        }
    }
}

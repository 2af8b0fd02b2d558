using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// Block tile of the tiled matmul, a compile-time specialization. Every thread owns an 8×8
    /// micro-tile, so a group has (BM/8)·(BN/8) threads; BK is chosen so that each thread moves
    /// exactly one float4 of A and one of B per k-step (BM·BK/4 = BN·BK/4 = threads), which keeps
    /// the prefetch in two registers of Float4 instead of a local array.
    /// </summary>
    public interface IMatMulTile
    {
        /// <summary>Rows of C per group.</summary>
        int BM { get; }

        /// <summary>Columns of C per group.</summary>
        int BN { get; }

        /// <summary>Depth of one k-step.</summary>
        int BK { get; }
    }

    /// <summary>Tile shapes.</summary>
    public static class MatMulTiles
    {
        /// <summary>128×128×8, 256 threads, 16 KiB of shared memory: the GPU tile.</summary>
        public struct Large : IMatMulTile
        {
            /// <inheritdoc/>
            public readonly int BM => 128;
            /// <inheritdoc/>
            public readonly int BN => 128;
            /// <inheritdoc/>
            public readonly int BK => 8;
        }

        /// <summary>64×64×4, 64 threads: small problems on a GPU, and the CPU accelerator (where barriers cost OS-level syncs).</summary>
        public struct Small : IMatMulTile
        {
            /// <inheritdoc/>
            public readonly int BM => 64;
            /// <inheritdoc/>
            public readonly int BN => 64;
            /// <inheritdoc/>
            public readonly int BK => 4;
        }
    }

    /// <summary>A compile-time boolean: the kernel's branches on it fold away.</summary>
    public interface IFlag
    {
        /// <summary>The value.</summary>
        bool Value { get; }
    }

    /// <summary>Compile-time booleans.</summary>
    public static class Flags
    {
        /// <summary>true.</summary>
        public struct Yes : IFlag { /// <inheritdoc/>
            public readonly bool Value => true; }

        /// <summary>false.</summary>
        public struct No : IFlag { /// <inheritdoc/>
            public readonly bool Value => false; }
    }

    /// <summary>Scalars and strides of one matmul launch (kernel parameter).</summary>
    public struct GemmParams
    {
        /// <summary>Problem size: C is M×N, the reduction runs over K.</summary>
        public int M, N, K;

        /// <summary>Strides of A(m, k) and B(k, n) in elements; for each operand one of the two is 1.</summary>
        public int StrideAm, StrideAk, StrideBk, StrideBn;

        /// <summary>C = act(alpha·A·B + beta·C + bias).</summary>
        public float Alpha, Beta;

        /// <summary>0: no bias; 1: bias[n] per column (nn.Linear); 2: bias[(z mod BiasGroups)·M + m] per row (a convolution's output channel).</summary>
        public int HasBias;

        /// <summary>
        /// 1: the backward of a fused activation — C = (alpha·A·B + beta·C) ⊙ act′(Z), where Z, laid out like C, is read
        /// through the bias view (HasBias is then 0) and act itself is not applied. The GPU kernel takes it as a compile-time
        /// specialization (its TGate argument, chosen from this field at launch), so the forward's code does not carry it.
        /// </summary>
        public int GateByDerivative;

        /// <summary>For a per-row bias: batch z uses the bias block z mod BiasGroups (the conv group).</summary>
        public int BiasGroups;

        /// <summary>1 when float4 loads of A / B / float4 stores of C are legal (16-byte alignment of every row start).</summary>
        public int VecA, VecB, VecC;
    }

    /// <summary>
    /// Where the tiled matmul's B operand comes from: a compile-time specialization. Each thread loads one
    /// float4 chunk of the (BK × BN) tile per k-step, along k when <see cref="KContiguous"/>, else along n.
    /// </summary>
    public interface IOperandB
    {
        /// <summary>True when chunks run along k (then they are scattered into the k-major shared tile).</summary>
        bool KContiguous { get; }

        /// <summary>This thread's chunk of the tile at (k0, n0); elements outside K × N read as 0.</summary>
        Float4 Load(ArrayView<float> b, int bBase, int n0, int k0, GemmParams p, int bn, int bk, int t);
    }

    /// <summary>B as a strided matrix in memory (contiguous along k or along n): float4 loads where aligned.</summary>
    public struct DenseB<TKContig> : IOperandB where TKContig : struct, IFlag
    {
        /// <inheritdoc/>
        public readonly bool KContiguous => default(TKContig).Value;

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly Float4 Load(ArrayView<float> b, int bBase, int n0, int k0, GemmParams p, int bn, int bk, int t) =>
            MatMulKernels.LoadChunk<TKContig>(b, bBase, p.StrideBn, p.StrideBk, n0, k0, p.N, p.K, bn, bk, t, p.VecB);
    }

    /// <summary>An 8×8 block of accumulators: rows 0–3 and 4–7, columns in two float4 halves. Plain fields so they live in registers.</summary>
    public struct Acc8x8
    {
        /// <summary>Row r, left (L) and right (H) four columns.</summary>
        public Float4 R0L, R0H, R1L, R1H, R2L, R2H, R3L, R3H, R4L, R4H, R5L, R5H, R6L, R6H, R7L, R7H;
    }

    /// <summary>
    /// The matmul family: C = act(alpha·op(A)·op(B) + beta·C + bias) with strided, broadcast batches.
    /// <para><b>Tiled kernel</b> (<see cref="Tiled"/>): one group per BM×BN block of C (grid x over N,
    /// y over M, z over batches). A and B are staged through shared memory k-major (As[k][m], Bs[k][n])
    /// in two buffers: while the group multiplies buffer i, each thread has already issued the global
    /// loads of its float4 of the next k-step, and stores them to buffer i^1 afterwards — one barrier per
    /// k-step. Each thread accumulates an 8×8 micro-tile in registers: per k it reads 2 float4 of A and 2
    /// of B from shared memory and does 64 FMAs. A thread's rows are {4ty..4ty+3} ∪ {BM/2+4ty..}, and
    /// columns likewise, so the float4 shared reads of a warp cover contiguous 16-byte lanes (no bank
    /// conflicts). Whether A and B are k-contiguous (transposes, nn.Linear weights) is a compile-time
    /// flag; global loads are float4 when the contiguous dimension is 16-byte aligned, and edge chunks
    /// fall back to bounds-checked scalar loads that fill zeros, so every M, N, K ≥ 1 is exact.</para>
    /// <para><b>GEMV</b> (<see cref="GemvKContiguous"/>, <see cref="GemvNContiguous"/>): M = 1 (decode).
    /// y = act(alpha·x·W + beta·y + bias); a warp per output when W is k-contiguous (shuffle reduction),
    /// a thread per output when it is n-contiguous (coalesced across n).</para>
    /// FLOPs: 2·batch·M·N·K. Bytes (minimum): 4·(batch_A·M·K + batch_B·K·N + batch·M·N·(1 + [beta≠0])).
    /// </summary>
    public static class MatMulKernels
    {
        /// <summary>
        /// Reads this thread's float4 chunk of a (rows × BK) operand tile: 4 consecutive elements along the
        /// operand's contiguous dimension. <typeparamref name="TKContig"/>: the chunk runs along k, else along
        /// the row dimension (m for A, n for B). Out-of-range elements read as 0.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Float4 LoadChunk<TKContig>(ArrayView<float> src, int baseOffset, int strideRow, int strideK,
            int row0, int k0, int rows, int depth, int tileRows, int bk, int t, int vec)
            where TKContig : struct, IFlag
        {
            int row, k;
            if (default(TKContig).Value)
            {
                row = row0 + t / (bk / 4);
                k = k0 + t % (bk / 4) * 4;
            }
            else
            {
                row = row0 + t % (tileRows / 4) * 4;
                k = k0 + t / (tileRows / 4);
            }
            if (default(TKContig).Value)
                return row < rows ? Float4.Load(src, baseOffset + row * strideRow + k, depth - k, vec) : default;
            return k < depth ? Float4.Load(src, baseOffset + k * strideK + row, rows - row, vec) : default;
        }

        /// <summary>Writes a chunk (along k when <paramref name="kContiguous"/>, else along the row dimension) into the k-major shared tile tile[k][row].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreChunk(ArrayView<float> tile, Float4 v, int tileRows, int bk, int t, bool kContiguous)
        {
            if (kContiguous)
            {
                int row = t / (bk / 4), k = t % (bk / 4) * 4;
                tile[k * tileRows + row] = v.X;
                tile[(k + 1) * tileRows + row] = v.Y;
                tile[(k + 2) * tileRows + row] = v.Z;
                tile[(k + 3) * tileRows + row] = v.W;
            }
            else
            {
                int row = t % (tileRows / 4) * 4, k = t / (tileRows / 4);
                tile.Cast<Float4>().AsAligned(16)[(k * tileRows + row) / 4] = v;
            }
        }

        /// <summary>C[m, n..n+3] = act(alpha·acc + beta·C + bias) — or (alpha·acc + beta·C) ⊙ act′(Z) — bounds-checked, one float4 store when legal.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreQuad<TAct, TGate>(ArrayView<float> c, ArrayView<float> bias, int cBase, int biasRow, int m, int n, Float4 acc, GemmParams p, TAct act)
            where TAct : struct, IDifferentiableUnaryOp where TGate : struct, IFlag
        {
            if (m >= p.M || n >= p.N)
                return;
            int at = cBase + m * p.N + n;
            bool full = n + 3 < p.N;
            Float4 r;
            r.X = p.Alpha * acc.X; r.Y = p.Alpha * acc.Y; r.Z = p.Alpha * acc.Z; r.W = p.Alpha * acc.W;
            if (p.Beta != 0)
                r = Float4.Fma(r, p.Beta, Float4.Load(c, at, p.N - n, 0));
            if (default(TGate).Value)
            {
                // Z has C's layout, so the same index and float4 legality apply.
                var z = Float4.Load(bias, at, p.N - n, p.VecC);
                r.X *= act.Derivative(z.X); r.Y *= act.Derivative(z.Y); r.Z *= act.Derivative(z.Z); r.W *= act.Derivative(z.W);
            }
            else
            {
                if (p.HasBias == 1)
                    r = Float4.Fma(r, 1f, Float4.Load(bias, n, p.N - n, 0));
                else if (p.HasBias == 2)
                {
                    float rowBias = bias[biasRow + m];
                    r.X += rowBias; r.Y += rowBias; r.Z += rowBias; r.W += rowBias;
                }
                r.X = act.Apply(r.X); r.Y = act.Apply(r.Y); r.Z = act.Apply(r.Z); r.W = act.Apply(r.W);
            }
            if (full && p.VecC != 0)
            {
                c.Cast<Float4>().AsAligned(16)[at / 4] = r;
                return;
            }
            c[at] = r.X;
            if (n + 1 < p.N) c[at + 1] = r.Y;
            if (n + 2 < p.N) c[at + 2] = r.Z;
            if (full) c[at + 3] = r.W;
        }

        /// <summary>Stores row <paramref name="m"/> of the micro-tile: two float4 halves BN/2 apart.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreRow<TAct, TGate>(ArrayView<float> c, ArrayView<float> bias, int cBase, int biasRow, int m, int nL, int nH, Float4 left, Float4 right, GemmParams p, TAct act)
            where TAct : struct, IDifferentiableUnaryOp where TGate : struct, IFlag
        {
            StoreQuad<TAct, TGate>(c, bias, cBase, biasRow, m, nL, left, p, act);
            StoreQuad<TAct, TGate>(c, bias, cBase, biasRow, m, nH, right, p, act);
        }

        /// <summary>
        /// The tiled matmul (see the class summary). Batch z reads A at batchA.Offset(z), B at batchB.Offset(z), writes C at z·M·N.
        /// <typeparamref name="TGate"/>: the epilogue multiplies by act′ of the saved pre-activation instead of adding the bias
        /// and applying act (<see cref="GemmParams.GateByDerivative"/>).
        /// </summary>
        public static void Tiled<TTile, TAKContig, TB, TAct, TGate>(
            ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias,
            GemmParams p, Layout6 batchA, Layout6 batchB, TTile tile, TB bSource, TAct act)
            where TTile : struct, IMatMulTile
            where TAKContig : struct, IFlag
            where TB : struct, IOperandB
            where TAct : struct, IDifferentiableUnaryOp
            where TGate : struct, IFlag
        {
            int bm = tile.BM, bn = tile.BN, bk = tile.BK;
            // Two k-major stages of A (bk×bm) and B (bk×bn).
            var shared = SharedMemory.Allocate<float>(2 * (tile.BK * tile.BM + tile.BK * tile.BN));
            int stage = bk * bm + bk * bn;

            int t = Group.IdxX;
            int tx = t % (bn / 8), ty = t / (bn / 8);
            int m0 = Grid.IdxY * bm, n0 = Grid.IdxX * bn, z = Grid.IdxZ;
            int aBase = batchA.Offset(z), bBase = batchB.Offset(z), cBase = z * p.M * p.N;
            int kTiles = (p.K + bk - 1) / bk;

            Acc8x8 acc = default;
            if (kTiles > 0)
            {
                var a0 = LoadChunk<TAKContig>(a, aBase, p.StrideAm, p.StrideAk, m0, 0, p.M, p.K, bm, bk, t, p.VecA);
                var b0 = bSource.Load(b, bBase, n0, 0, p, bn, bk, t);
                StoreChunk(shared.SubView(0, bk * bm), a0, bm, bk, t, default(TAKContig).Value);
                StoreChunk(shared.SubView(bk * bm, bk * bn), b0, bn, bk, t, bSource.KContiguous);
            }
            Group.Barrier();

            for (int kt = 0; kt < kTiles; kt++)
            {
                int cur = (kt & 1) * stage, next = stage - cur;
                bool more = kt + 1 < kTiles;
                Float4 aNext = default, bNext = default;
                if (more)
                {
                    // Issue the next k-step's global loads now; they land while this step computes.
                    aNext = LoadChunk<TAKContig>(a, aBase, p.StrideAm, p.StrideAk, m0, (kt + 1) * bk, p.M, p.K, bm, bk, t, p.VecA);
                    bNext = bSource.Load(b, bBase, n0, (kt + 1) * bk, p, bn, bk, t);
                }

                // The shared block is .align 16 and every offset here is a multiple of 4 floats, so the
                // compiler may use 16-byte shared loads; it cannot prove that through the stage offset.
                var As = shared.SubView(cur, bk * bm).Cast<Float4>().AsAligned(16);
                var Bs = shared.SubView(cur + bk * bm, bk * bn).Cast<Float4>().AsAligned(16);
                for (int k = 0; k < bk; k++)
                {
                    var aL = As[(k * bm + ty * 4) / 4];
                    var aH = As[(k * bm + bm / 2 + ty * 4) / 4];
                    var bL = Bs[(k * bn + tx * 4) / 4];
                    var bH = Bs[(k * bn + bn / 2 + tx * 4) / 4];
                    acc.R0L = Float4.Fma(acc.R0L, aL.X, bL); acc.R0H = Float4.Fma(acc.R0H, aL.X, bH);
                    acc.R1L = Float4.Fma(acc.R1L, aL.Y, bL); acc.R1H = Float4.Fma(acc.R1H, aL.Y, bH);
                    acc.R2L = Float4.Fma(acc.R2L, aL.Z, bL); acc.R2H = Float4.Fma(acc.R2H, aL.Z, bH);
                    acc.R3L = Float4.Fma(acc.R3L, aL.W, bL); acc.R3H = Float4.Fma(acc.R3H, aL.W, bH);
                    acc.R4L = Float4.Fma(acc.R4L, aH.X, bL); acc.R4H = Float4.Fma(acc.R4H, aH.X, bH);
                    acc.R5L = Float4.Fma(acc.R5L, aH.Y, bL); acc.R5H = Float4.Fma(acc.R5H, aH.Y, bH);
                    acc.R6L = Float4.Fma(acc.R6L, aH.Z, bL); acc.R6H = Float4.Fma(acc.R6H, aH.Z, bH);
                    acc.R7L = Float4.Fma(acc.R7L, aH.W, bL); acc.R7H = Float4.Fma(acc.R7H, aH.W, bH);
                }

                if (more)
                {
                    // Buffer `next` was last read in step kt−1, which every thread finished before the
                    // barrier that ended it: safe to overwrite without a second barrier.
                    StoreChunk(shared.SubView(next, bk * bm), aNext, bm, bk, t, default(TAKContig).Value);
                    StoreChunk(shared.SubView(next + bk * bm, bk * bn), bNext, bn, bk, t, bSource.KContiguous);
                }
                Group.Barrier();
            }

            int mL = m0 + ty * 4, mH = m0 + bm / 2 + ty * 4, nL = n0 + tx * 4, nH = n0 + bn / 2 + tx * 4;
            int biasRow = p.HasBias == 2 ? z % p.BiasGroups * p.M : 0;
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mL, nL, nH, acc.R0L, acc.R0H, p, act);
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mL + 1, nL, nH, acc.R1L, acc.R1H, p, act);
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mL + 2, nL, nH, acc.R2L, acc.R2H, p, act);
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mL + 3, nL, nH, acc.R3L, acc.R3H, p, act);
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mH, nL, nH, acc.R4L, acc.R4H, p, act);
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mH + 1, nL, nH, acc.R5L, acc.R5H, p, act);
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mH + 2, nL, nH, acc.R6L, acc.R6H, p, act);
            StoreRow<TAct, TGate>(c, bias, cBase, biasRow, mH + 3, nL, nH, acc.R7L, acc.R7H, p, act);
        }

        /// <summary>
        /// y[n] = act(alpha·Σ_k x[k]·W[n·sBn + k] + beta·y[n] + bias[n]) with W k-contiguous (an nn.Linear
        /// weight): one warp per output, lanes stride over k (float4 when aligned), shuffle reduction.
        /// </summary>
        public static void GemvKContiguous<TAct>(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, ArrayView<float> bias, GemmParams p, TAct act)
            where TAct : struct, IUnaryOp
        {
            int warpsPerGroup = Group.DimX / Warp.WarpSize;
            int lane = Warp.LaneIdx;
            for (int n = Grid.IdxX * warpsPerGroup + Warp.WarpIdx; n < p.N; n += Grid.DimX * warpsPerGroup)
            {
                int row = n * p.StrideBn;
                float sum = 0;
                int kVec = p.VecB != 0 && p.VecA != 0 ? p.K / 4 * 4 : 0;
                if (kVec > 0)
                {
                    var x4 = x.Cast<Float4>().AsAligned(16);
                    var w4 = w.Cast<Float4>().AsAligned(16);
                    for (int k = lane * 4; k < kVec; k += Warp.WarpSize * 4)
                    {
                        var xv = x4[k / 4];
                        var wv = w4[(row + k) / 4];
                        sum += xv.X * wv.X + xv.Y * wv.Y + xv.Z * wv.Z + xv.W * wv.W;
                    }
                }
                for (int k = kVec + lane; k < p.K; k += Warp.WarpSize)
                    sum += x[k] * w[row + k];
                for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
                    sum += Warp.ShuffleDown(sum, delta);
                if (lane == 0)
                    y[n] = GemvEpilogue(sum, y, bias, n, p, act);
            }
        }

        /// <summary>y[n] = act(alpha·Σ_k x[k]·W[k·sBk + n] + beta·y[n] + bias[n]) with W n-contiguous: a thread per output, coalesced across n.</summary>
        public static void GemvNContiguous<TAct>(ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, ArrayView<float> bias, GemmParams p, TAct act)
            where TAct : struct, IUnaryOp
        {
            for (int n = Grid.GlobalIndex.X; n < p.N; n += Grid.DimX * Group.DimX)
            {
                float sum = 0;
                int at = n;
                for (int k = 0; k < p.K; k++, at += p.StrideBk)
                    sum += x[k] * w[at];
                y[n] = GemvEpilogue(sum, y, bias, n, p, act);
            }
        }

        /// <summary>act(alpha·sum + beta·y[n] + bias[n]) for one GEMV output.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float GemvEpilogue<TAct>(float sum, ArrayView<float> y, ArrayView<float> bias, int n, GemmParams p, TAct act)
            where TAct : struct, IUnaryOp
        {
            float r = p.Alpha * sum;
            if (p.Beta != 0)
                r += p.Beta * y[n];
            if (p.HasBias != 0)
                r += bias[n];
            return act.Apply(r);
        }

        // ------------------------------------------------------------ launchers

        /// <summary>The views a matmul-family kernel reads and writes: A, B, C and the bias (or the gate's pre-activation).</summary>
        internal readonly record struct Views(ArrayView<float> A, ArrayView<float> B, ArrayView<float> C, ArrayView<float> Bias);

        /// <summary>
        /// C = act(alpha·op(A)·op(B) + beta·C + bias) over broadcast <paramref name="batch"/>es, on the implementation for C's
        /// device: the fast CPU's GEMM (<see cref="Cpu.HostGemm"/>), the GEMV kernels for a single row, else the tiled kernel.
        /// With <paramref name="gate"/> the epilogue multiplies by act′(gate) instead of applying act (the fused backward).
        /// Arguments are validated by the op.
        /// </summary>
        internal static void Run(string op, Tensor a, Tensor b, bool transA, bool transB, int[] batch, int m, int n, int k,
            float alpha, float beta, Tensor c, Tensor? bias, FusedActivation act, MatMulTile tile, Tensor? gate = null)
        {
            if (m == 1 && ShapeUtil.Product(batch) == 1 && tile == MatMulTile.Auto && gate is null && !c.Device.IsHostCpu)
                RunGemv(op == "matmul" ? "gemv" : op, a, b, transB, n, k, alpha, beta, c, bias, act);
            else
                RunTiled(op, a, b, transA, transB, batch, m, n, k, alpha, beta, c, bias, act, tile, gate);
        }

        /// <summary>The operand as (row stride, k stride) where row is m for A and n for B; copied to contiguous
        /// when neither matrix dimension has stride 1 (the tiled loads need one contiguous direction).</summary>
        private static (Tensor View, int StrideRow, int StrideK, bool Owned) MatrixOperand(Tensor t, bool kIsLast)
        {
            var view = t;
            var (sPrev, sLast) = UsableStrides(view);
            bool owned = sPrev != 1 && sLast != 1;
            if (owned)
            {
                view = LayoutKernels.ContiguousCopy(t);
                (sPrev, sLast) = UsableStrides(view);
            }
            return kIsLast ? (view, sPrev, sLast, owned) : (view, sLast, sPrev, owned);
        }

        /// <summary>A size-1 dimension is never stepped along, so its stride is free: call it 1 where that makes the operand count as contiguous.</summary>
        private static (int Prev, int Last) UsableStrides(Tensor t)
        {
            int sPrev = t.Strides[^2], sLast = t.Strides[^1];
            if (t.Size(-1) == 1)
                sLast = 1;
            else if (t.Size(-2) == 1 && sLast != 1)
                sPrev = 1;
            return (sPrev, sLast);
        }

        /// <summary>The tiled kernel (or the fast CPU device's GEMM); with <paramref name="gate"/>, the epilogue multiplies by act′(gate) instead.</summary>
        private static void RunTiled(string op, Tensor a, Tensor b, bool transA, bool transB, int[] batch, int m, int n, int k,
            float alpha, float beta, Tensor c, Tensor? bias, FusedActivation act, MatMulTile tile, Tensor? gate)
        {
            var device = c.Device;
            var (av, sAm, sAk, ownA) = MatrixOperand(a, kIsLast: !transA);
            var (bv, sBn, sBk, ownB) = MatrixOperand(b, kIsLast: transB);
            try
            {
                var batchStridesA = ShapeUtil.BroadcastStrides(op, "a", av.ShapeArray()[..^2], av.Strides.ToArray()[..^2], batch);
                var batchStridesB = ShapeUtil.BroadcastStrides(op, "b", bv.ShapeArray()[..^2], bv.Strides.ToArray()[..^2], batch);
                var (bdims, bst) = ShapeUtil.Coalesce(batch, batchStridesA, batchStridesB);
                var layoutA = Layout6.Create(op, bdims, bst[0]);
                var layoutB = Layout6.Create(op, bdims, bst[1]);
                bool aK = sAk == 1, bK = sBk == 1;
                var p = new GemmParams
                {
                    M = m, N = n, K = k, StrideAm = sAm, StrideAk = sAk, StrideBk = sBk, StrideBn = sBn,
                    Alpha = alpha, Beta = beta, HasBias = bias is null ? 0 : 1, GateByDerivative = gate is null ? 0 : 1,
                    VecA = av.IsAligned(16) && (aK ? sAm : sAk) % 4 == 0 && bst[0].All(s => s % 4 == 0) ? 1 : 0,
                    VecB = bv.IsAligned(16) && (bK ? sBn : sBk) % 4 == 0 && bst[1].All(s => s % 4 == 0) ? 1 : 0,
                    VecC = c.IsAligned(16) && (gate?.IsAligned(16) ?? true) && n % 4 == 0 ? 1 : 0,
                };
                int batchCount = (int)ShapeUtil.Product(batch);
                var views = new Views(av.StridedView, bv.StridedView, c.ContiguousView, (gate ?? bias)?.ContiguousView ?? c.ContiguousView);
                if (device.IsHostCpu)
                {
                    ActivationDispatch.WithActivation(act, new HostGemmLaunch(m == 1 && op == "matmul" ? "gemv" : op, device, views, p, layoutA, layoutB, batchCount));
                    return;
                }
                if (UseLargeTile(device, m, n, batchCount, tile))
                    LaunchTiled(op, device, views, p, layoutA, layoutB, batchCount, new MatMulTiles.Large(), aK, bK, act);
                else
                    LaunchTiled(op, device, views, p, layoutA, layoutB, batchCount, new MatMulTiles.Small(), aK, bK, act);
            }
            finally
            {
                if (ownA) av.Dispose();
                if (ownB) bv.Dispose();
            }
        }

        /// <summary>Large tiles on a GPU when they still give every multiprocessor a block; small otherwise and on the CPU accelerator.</summary>
        internal static bool UseLargeTile(Device device, int m, int n, int batches, MatMulTile tile) => tile switch
        {
            MatMulTile.Large => true,
            MatMulTile.Small => false,
            _ => device.Info.IsGpu && (long)((m + 127) / 128) * ((n + 127) / 128) * batches >= device.Info.Multiprocessors,
        };

        private static void LaunchTiled<TTile>(string op, Device device, Views v, GemmParams p, Layout6 la, Layout6 lb, int batchCount,
            TTile tile, bool aK, bool bK, FusedActivation act) where TTile : struct, IMatMulTile
        {
            // Each (orientation, activation) pair is its own specialization: the branches fold at compile time.
            switch ((aK, bK))
            {
                case (true, true): ActivationDispatch.WithActivation(act, new TiledLaunch<TTile, Flags.Yes, DenseB<Flags.Yes>>(op, device, v, p, la, lb, batchCount, default)); break;
                case (true, false): ActivationDispatch.WithActivation(act, new TiledLaunch<TTile, Flags.Yes, DenseB<Flags.No>>(op, device, v, p, la, lb, batchCount, default)); break;
                case (false, true): ActivationDispatch.WithActivation(act, new TiledLaunch<TTile, Flags.No, DenseB<Flags.Yes>>(op, device, v, p, la, lb, batchCount, default)); break;
                default: ActivationDispatch.WithActivation(act, new TiledLaunch<TTile, Flags.No, DenseB<Flags.No>>(op, device, v, p, la, lb, batchCount, default)); break;
            }
        }

        /// <summary>One tiled launch, waiting for its activation type (see <see cref="ActivationDispatch.WithActivation"/>); the
        /// convolution launches it too, with A the weights and <typeparamref name="TB"/> its column source.</summary>
        internal readonly record struct TiledLaunch<TTile, TA, TB>(string Op, Device Device, Views V, GemmParams P, Layout6 La, Layout6 Lb, int BatchCount, TB BSource)
            : IActivationVisitor where TTile : struct, IMatMulTile where TA : struct, IFlag where TB : struct, IOperandB
        {
            public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
            {
                if (P.GateByDerivative != 0)
                    Launch<TAct, Flags.Yes>();
                else
                    Launch<TAct, Flags.No>();
            }

            private void Launch<TAct, TGate>() where TAct : struct, IDifferentiableUnaryOp where TGate : struct, IFlag
            {
                TTile tile = default;
                var grid = new Index3D((P.N + tile.BN - 1) / tile.BN, (P.M + tile.BM - 1) / tile.BM, BatchCount);
                var config = new KernelConfig(grid, new Index3D(tile.BM / 8 * (tile.BN / 8), 1, 1));
                Device.Launch(Op, Tiled<TTile, TA, TB, TAct, TGate>, config, V.A, V.B, V.C, V.Bias, P, La, Lb, tile, BSource, default(TAct));
            }
        }

        /// <summary>The fast CPU device's GEMM (<see cref="Cpu.HostGemm"/>) with the activation as a type argument.</summary>
        private readonly record struct HostGemmLaunch(string Op, Device Device, Views V, GemmParams P, Layout6 La, Layout6 Lb, int BatchCount)
            : IActivationVisitor
        {
            public unsafe void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
            {
                using (Device.Profiler.Measure(Op))
                    Cpu.HostGemm.Run(Cpu.HostMemory.Ptr(V.A), Cpu.HostMemory.Ptr(V.B), Cpu.HostMemory.Ptr(V.C), Cpu.HostMemory.Ptr(V.Bias),
                        P, La, Lb, BatchCount, default(TAct));
            }
        }

        private static void RunGemv(string op, Tensor a, Tensor b, bool transB, int n, int k, float alpha, float beta,
            Tensor y, Tensor? bias, FusedActivation act)
        {
            var device = y.Device;
            // With M = 1, a contiguous A ([1, K] or, transposed, [K, 1]) is K consecutive floats.
            var x = a.IsContiguous ? a : LayoutKernels.ContiguousCopy(a);
            var (wv, sBn, sBk, ownW) = MatrixOperand(b, kIsLast: transB);
            try
            {
                var p = new GemmParams
                {
                    M = 1, N = n, K = k, StrideBk = sBk, StrideBn = sBn, Alpha = alpha, Beta = beta, HasBias = bias is null ? 0 : 1,
                    VecA = x.IsAligned(16) ? 1 : 0, VecB = wv.IsAligned(16) && sBn % 4 == 0 ? 1 : 0,
                };
                var views = new Views(x.StridedView, wv.StridedView, y.ContiguousView, bias?.ContiguousView ?? y.ContiguousView);
                ActivationDispatch.WithActivation(act, new GemvLaunch(op, device, views, p, sBk == 1));
            }
            finally
            {
                if (ownW) wv.Dispose();
                if (!ReferenceEquals(x, a)) x.Dispose();
            }
        }

        private readonly record struct GemvLaunch(string Op, Device Device, Views V, GemmParams P, bool KContiguous) : IActivationVisitor
        {
            public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
            {
                int group = LaunchShapes.ElementwiseGroup(Device);
                // k-contiguous: a warp per output; n-contiguous: a thread per output.
                if (KContiguous)
                    Device.Launch(Op, GemvKContiguous<TAct>, LaunchShapes.Linear(Device, (long)P.N * Device.Info.WarpSize, group), V.A, V.B, V.C, V.Bias, P, default(TAct));
                else
                    Device.Launch(Op, GemvNContiguous<TAct>, LaunchShapes.Linear(Device, P.N, group), V.A, V.B, V.C, V.Bias, P, default(TAct));
            }
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>The activation fused into a matmul epilogue.</summary>
    public enum FusedActivation
    {
        /// <summary>None.</summary>
        None,
        /// <summary>max(x, 0).</summary>
        Relu,
        /// <summary>Exact (erf) GELU.</summary>
        Gelu,
        /// <summary>Tanh-approximated GELU.</summary>
        GeluTanh,
        /// <summary>x·σ(x).</summary>
        Silu,
        /// <summary>min(max(x, 0), 6).</summary>
        Relu6,
    }

    /// <summary>Which tiled-matmul specialization to use.</summary>
    public enum MatMulTile
    {
        /// <summary>The launcher decides (large tiles on a GPU when there are enough blocks to fill it).</summary>
        Auto,
        /// <summary>64×64×4.</summary>
        Small,
        /// <summary>128×128×8.</summary>
        Large,
    }
}

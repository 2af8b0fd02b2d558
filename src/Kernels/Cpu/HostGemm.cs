using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// The fast CPU device's SGEMM: C = act(alpha·A·B + beta·C + bias) for the matmul family and everything
/// matmul-shaped (conv, attention projections), any strides, strided/broadcast batches — the same
/// <see cref="GemmParams"/> and <see cref="Layout6"/> the GPU kernel takes.
/// <para>Blocked as in BLIS/GotoBLAS: for each KC-deep slab of K, B's slab is packed once into NR-wide slivers
/// (k-major, zero-padded), and each MC-row block of A into MR-tall slivers; a register-blocked micro-kernel (6×32 with
/// AVX-512, 6×16 with AVX2: see <see cref="Panel512"/>, <see cref="Panel256"/>) then multiplies one A sliver with one B
/// sliver, its 12 accumulators in registers. KC = 256 keeps a B sliver (16–32 KiB) in L1 and an A block
/// (96×256 floats, 96 KiB) in L2; the packed B slab (≤ 256×4096 floats) sits in L3. Packing reads either operand
/// along its contiguous dimension, so transposes cost nothing extra; a small B with contiguous rows (≤ 256 KiB, a
/// Linear layer's weights) is read in place instead. Tiles short of MR rows store only their rows; tiles narrower than
/// NR run the same micro-kernel into a scratch tile and copy the valid part, so every M, N, K ≥ 1 is exact.</para>
/// <para>Threads: (MC-row block × 256-column block) tiles of C are split across cores; batches of small matrices go
/// one matrix per core instead. M = 1 (decode) skips packing: a GEMV over B's contiguous direction; so does N ≤ 64 with A
/// contiguous in K (<see cref="Skinny"/>).</para>
/// </summary>
internal static unsafe class HostGemm
{
    private const int MR = 6, KC = 256, MC = 96, NC = 4096, NB = 256;

    /// <summary>Elements of B (K·N, 256 KiB) up to which a B with contiguous rows is read in place rather than packed.</summary>
    private const long InPlaceB = 1 << 16;

    /// <summary>
    /// 512-bit micro-kernels where the CPU runs them at full width (measured on this project's Zen 5 VM: 1.7–1.9× the FMA
    /// throughput of 256-bit, so a 6×32 tile of twelve zmm accumulators); <c>GPUNET_HOST_VECTOR_BITS=256</c> keeps the 6×16
    /// AVX2 tile. Settable (internal) so the tests run both paths on one machine: either must be exact to the same bound.
    /// </summary>
    internal static bool Wide = Vector512.IsHardwareAccelerated && Environment.GetEnvironmentVariable("GPUNET_HOST_VECTOR_BITS") != "256";

    /// <summary>Multiply-adds below which a one-tile product stays on one core: a 16 × 256 × 147 convolution GEMM (0.6M)
    /// split in four column tiles ran 0.12–0.13 ms on two cores against 0.093 ms on one.</summary>
    private const long SplitColumnsWork = 1 << 20;

    /// <summary>Below this many multiply-adds per matrix a batch runs one matrix per core rather than splitting each matrix.</summary>
    private const long SmallMatrix = 1 << 21;

    /// <summary>Runs every batch z: A at a + la.Offset(z), B at b + lb.Offset(z), C contiguous [batches, M, N] at c.
    /// <paramref name="parallel"/> false keeps it on the calling thread (the caller already split the work across cores).</summary>
    public static void Run<TAct>(float* a, float* b, float* c, float* bias, GemmParams p, Layout6 la, Layout6 lb, int batches, TAct act, bool parallel = true)
        where TAct : struct, IDifferentiableUnaryOp
    {
        long perMatrix = (long)p.M * p.N * Math.Max(p.K, 1);
        if (parallel && batches > 1 && perMatrix < SmallMatrix && HostParallel.Splits(batches, perMatrix))
        {
            MatricesPerCore(a, b, c, bias, p, la, lb, batches, act, perMatrix);
            return;
        }
        for (int z = 0; z < batches; z++)
            One(a + la.Offset(z), b + lb.Offset(z), c + (long)z * p.M * p.N, bias, p, z, act, parallel);
    }

    // The split loops' closures live in methods of their own (here and below): a lambda over a method's parameters makes C#
    // allocate its closure when the method is entered, on the single-threaded path too — a few hundred bytes a product,
    // for every Linear layer of an ONNX run.

    /// <summary>Small matrices of a batch, one per core at a time.</summary>
    private static void MatricesPerCore<TAct>(float* a, float* b, float* c, float* bias, GemmParams p, Layout6 la, Layout6 lb, int batches, TAct act, long perMatrix)
        where TAct : struct, IDifferentiableUnaryOp =>
        HostParallel.For(batches, perMatrix, (start, end) =>
        {
            for (int z = start; z < end; z++)
                One(a + la.Offset(z), b + lb.Offset(z), c + (long)z * p.M * p.N, bias, p, z, act, false);
        });

    private static void One<TAct>(float* a, float* b, float* c, float* bias, GemmParams p, int z, TAct act, bool parallel)
        where TAct : struct, IDifferentiableUnaryOp
    {
        if (p.K == 0)
            ScaleC(c, (long)p.M * p.N, p.Beta);
        else if (p.M == 1)
            Gemv(a, b, c, p, parallel);
        else if (p.N <= SkinnyColumns && p.StrideAk == 1 && p.K >= 8)
        {
            // The epilogue rides in the product's stores unless it is the backward's gate.
            bool fused = p.GateByDerivative == 0;
            var e = new SkinnyBias(bias, p, z, fused);
            if (p.N > 8 && Wide)
                SkinnyWide(a, b, c, p, e, parallel);
            else
                Skinny(a, b, c, p, e, parallel);
            if (fused)
            {
                // The activation over all of C at once: per element in the stores a SiLU (an exp each) cost 10 ns × M·N.
                if (typeof(TAct) != typeof(ElementwiseOps.Identity))
                {
                    var all = new Span<float>(c, checked(p.M * p.N));
                    HostElementwise.ApplyUnary(all, all, act);
                }
                return;
            }
        }
        else if (Wide)
            Packed<Panel512>(a, b, c, p, parallel);
        else
            Packed<Panel256>(a, b, c, p, parallel);
        Epilogue(c, bias, p, z, act, parallel);
    }

    /// <summary>C = beta·C, with beta = 0 writing zeros (C may hold anything, NaN included).</summary>
    private static void ScaleC(float* c, long n, float beta)
    {
        var span = new Span<float>(c, checked((int)n));
        if (beta == 0)
            span.Clear();
        else
            TensorPrimitives.Multiply(span, beta, span);
    }

    /// <summary>
    /// Bias (per column, or per row of the batch's group) and the activation, one pass over C's rows; or, for the backward of a
    /// fused activation, C ⊙ act′(Z) with Z (laid out like the batches of C) where the bias would be.
    /// </summary>
    private static void Epilogue<TAct>(float* c, float* bias, GemmParams p, int z, TAct act, bool parallel) where TAct : struct, IDifferentiableUnaryOp
    {
        bool identity = typeof(TAct) == typeof(ElementwiseOps.Identity);
        if (p.HasBias == 0 && identity)
            return;
        if (parallel && HostParallel.Splits(p.M, p.N))
            EpilogueSplit(c, bias, p, z, act);
        else
            EpilogueRows(c, bias, p, z, act, 0, p.M);
    }

    private static void EpilogueSplit<TAct>(float* c, float* bias, GemmParams p, int z, TAct act) where TAct : struct, IDifferentiableUnaryOp =>
        HostParallel.For(p.M, p.N, (start, end) => EpilogueRows(c, bias, p, z, act, start, end));

    /// <summary>Rows [start, end) of <see cref="Epilogue"/>.</summary>
    private static void EpilogueRows<TAct>(float* c, float* bias, GemmParams p, int z, TAct act, int start, int end) where TAct : struct, IDifferentiableUnaryOp
    {
        int n = p.N;
        float* gate = bias + (long)z * p.M * n;
        bool identity = typeof(TAct) == typeof(ElementwiseOps.Identity);
        for (int m = start; m < end; m++)
        {
            var row = new Span<float>(c + (long)m * n, n);
            if (p.GateByDerivative != 0)
            {
                float* at = c + (long)m * n;
                HostElementwise.ApplyBinary(at, gate + (long)m * n, at, n, new Activation.Backward<TAct> { Op = act });
                continue;
            }
            if (p.HasBias == 1)
                TensorPrimitives.Add(row, new ReadOnlySpan<float>(bias, n), row);
            else if (p.HasBias == 2)
                TensorPrimitives.Add(row, bias[z % Math.Max(p.BiasGroups, 1) * p.M + m], row);
            if (!identity)
                HostElementwise.ApplyUnary(row, row, act);
        }
    }

    /// <summary>One row times B: along n with axpy updates when B's rows are contiguous, else a dot product per output.</summary>
    private static void Gemv(float* a, float* b, float* c, GemmParams p, bool parallel)
    {
        int k = p.K, n = p.N;
        float* x = a;
        if (p.StrideAk != 1)
        {
            x = HostScratch.Get(2, k);
            for (int i = 0; i < k; i++)
                x[i] = a[(long)i * p.StrideAk];
        }
        if (p.StrideBn == 1)
        {
            // Chunks of whole cache lines, so the two cores never write one line.
            int chunks = (n + 15) / 16;
            if (parallel && HostParallel.Splits(chunks, 16L * k))
                GemvColumnsSplit(x, b, c, p, chunks);
            else
                GemvColumns(x, b, c, p, 0, n);
            return;
        }
        // Split by groups of four outputs, so that every output is summed by the same routine however many cores share the
        // loop: split at output 125 (1,000 in eight chunks), outputs 125–127 were three single dot products on two cores and
        // part of a four-row group on one, and a model's result changed in its last bits with the thread count.
        int groups = (n + 3) / 4;
        if (parallel && HostParallel.Splits(groups, 4L * k))
            GemvDotsSplit(x, b, c, p, groups);
        else
            GemvDots(x, b, c, p, 0, n);
    }

    private static void GemvColumnsSplit(float* x, float* b, float* c, GemmParams p, int chunks) =>
        HostParallel.For(chunks, 16L * p.K, (s, e) => GemvColumns(x, b, c, p, s * 16, Math.Min(p.N, e * 16)));

    /// <summary>Outputs [start, end) of a GEMV along B's rows (B's columns contiguous): one scaled row of B added per k.</summary>
    private static void GemvColumns(float* x, float* b, float* c, GemmParams p, int start, int end)
    {
        var y = new Span<float>(c + start, end - start);
        var acc = new Span<float>(HostScratch.Get(3, end - start), end - start);
        acc.Clear();
        for (int i = 0; i < p.K; i++)
            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)i * p.StrideBk + start, end - start), x[i], acc, acc);
        if (p.Beta == 0)
            TensorPrimitives.Multiply(acc, p.Alpha, y);
        else
            for (int j = 0; j < y.Length; j++)
                y[j] = p.Alpha * acc[j] + p.Beta * y[j];
    }

    private static void GemvDotsSplit(float* x, float* b, float* c, GemmParams p, int groups) =>
        HostParallel.For(groups, 4L * p.K, (g0, g1) => GemvDots(x, b, c, p, 4 * g0, Math.Min(p.N, 4 * g1)));

    /// <summary>Outputs [start, end) of a GEMV across B's rows: a dot product each, four at a time where B is contiguous in k.</summary>
    private static void GemvDots(float* x, float* b, float* c, GemmParams p, int start, int end)
    {
        int k = p.K;
        float alpha = p.Alpha, beta = p.Beta;
        bool kContiguous = p.StrideBk == 1;
        var xs = new ReadOnlySpan<float>(x, k);
        int j0 = start;
        if (kContiguous && Wide && k >= 64)
            for (; j0 + 4 <= end; j0 += 4)
            {
                var (d0, d1, d2, d3) = Dot4(x, b + (long)j0 * p.StrideBn, p.StrideBn, k);
                float* cj = c + j0;
                (cj[0], cj[1], cj[2], cj[3]) = beta == 0
                    ? (alpha * d0, alpha * d1, alpha * d2, alpha * d3)
                    : (alpha * d0 + beta * cj[0], alpha * d1 + beta * cj[1], alpha * d2 + beta * cj[2], alpha * d3 + beta * cj[3]);
            }
        for (int j = j0; j < end; j++)
        {
            float* col = b + (long)j * p.StrideBn;
            float dot;
            if (kContiguous)
                dot = TensorPrimitives.Dot(xs, new ReadOnlySpan<float>(col, k));
            else
            {
                dot = 0;
                for (int i = 0; i < k; i++)
                    dot += x[i] * col[(long)i * p.StrideBk];
            }
            c[j] = beta == 0 ? alpha * dot : alpha * dot + beta * c[j];
        }
    }

    /// <summary>
    /// x·r0 … x·r3 for four rows of B (a weight matrix [N, K] times one input row: a classifier, a Linear layer at batch 1):
    /// each 16-float step loads x once for four rows, and two steps run at once so eight accumulator chains hide the FMA
    /// latency. One library dot product per row re-read x per row and reduced per row (mobilenet_v2's 1280 → 1000
    /// classifier: 56 µs warm, 100 in the model where its 5 MB of weights come from memory).
    /// </summary>
    internal static (float, float, float, float) Dot4(float* x, float* r0, int rowStride, int k)
    {
        float* r1 = r0 + rowStride, r2 = r1 + rowStride, r3 = r2 + rowStride;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        int i = 0;
        for (; i + 32 <= k; i += 32)
        {
            var u = Vector512.Load(x + i);
            var v = Vector512.Load(x + i + 16);
            a0 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r0 + i), a0);
            a1 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r1 + i), a1);
            a2 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r2 + i), a2);
            a3 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r3 + i), a3);
            b0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(r0 + i + 16), b0);
            b1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(r1 + i + 16), b1);
            b2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(r2 + i + 16), b2);
            b3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(r3 + i + 16), b3);
        }
        if (i + 16 <= k)
        {
            var u = Vector512.Load(x + i);
            a0 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r0 + i), a0);
            a1 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r1 + i), a1);
            a2 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r2 + i), a2);
            a3 = Vector512.FusedMultiplyAdd(u, Vector512.Load(r3 + i), a3);
            i += 16;
        }
        float s0 = Vector512.Sum(a0 + b0), s1 = Vector512.Sum(a1 + b1), s2 = Vector512.Sum(a2 + b2), s3 = Vector512.Sum(a3 + b3);
        for (; i < k; i++)
        {
            s0 += x[i] * r0[i];
            s1 += x[i] * r1[i];
            s2 += x[i] * r2[i];
            s3 += x[i] * r3[i];
        }
        return (s0, s1, s2, s3);
    }

    /// <summary>Columns at or below which a parallel packed product splits its rows across the cores once (see <see cref="Packed"/>).</summary>
    private const int RowSplitColumns = 512;

    /// <summary>Columns at or below which a product with rows of A contiguous in K skips packing (<see cref="Skinny"/>).</summary>
    private const int SkinnyColumns = 16;

    /// <summary>
    /// C = alpha·A·B + beta·C for few columns (a convolution's last stages: 4–64 output pixels against K up to 4,608):
    /// the packed path would pad each 16-wide sliver (N = 4 wastes 75 % of its FMAs) and repack all of A, the weights, on
    /// every call — at resnet18's 512×4608 that repacking alone outweighed the product. Here B is transposed once into
    /// [N, K] (at most 64 × K floats, L2-resident), and each 4-row block of A is read along K once per 4 columns: per
    /// 8-wide step, 4 loads of A and 4 of Bᵀ feed 16 FMAs into 16 accumulators, summed horizontally at the end. The row
    /// blocks are split across the cores, so each core streams only its own rows of A. (With AVX-512, 9–16 columns take
    /// <see cref="SkinnyWide"/>.) The bias is added in the store (<see cref="SkinnyBias"/>), the activation in one pass after: the separate
    /// epilogue made two library calls per row of 4 elements.
    /// </summary>
    private static void Skinny(float* a, float* b, float* c, GemmParams p, SkinnyBias e, bool parallel)
    {
        int m = p.M, n = p.N, k = p.K;
        float* bt = HostScratch.Get(0, (long)n * k);
        for (int kk = 0; kk < k; kk++)
        {
            float* src = b + (long)kk * p.StrideBk;
            for (int j = 0; j < n; j++)
                bt[(long)j * k + kk] = src[(long)j * p.StrideBn];
        }
        int blocks = (m + 3) / 4;
        long work = 4L * n * k;
        if (parallel && HostParallel.Splits(blocks, work))
            SkinnySplit(a, bt, c, p, e, blocks, work);
        else
            SkinnyRows(a, bt, c, p, e, 0, blocks);
    }

    private static void SkinnySplit(float* a, float* bt, float* c, GemmParams p, SkinnyBias e, int blocks, long work) =>
        HostParallel.For(blocks, work, (start, end) => SkinnyRows(a, bt, c, p, e, start, end));

    /// <summary>Row blocks [start, end) of 4 rows of <see cref="Skinny"/>.</summary>
    private static void SkinnyRows(float* a, float* bt, float* c, GemmParams p, SkinnyBias e, int start, int end)
    {
        for (int blk = start; blk < end; blk++)
        {
            int i0 = blk * 4, rows = Math.Min(4, p.M - i0);
            for (int j0 = 0; j0 < p.N; j0 += 4)
                SkinnyBlock(a, bt, c, p, i0, rows, j0, Math.Min(4, p.N - j0), e);
        }
    }

    /// <summary>
    /// <see cref="Skinny"/> for 9–16 columns with 512-bit vectors and no transpose: a row of B, padded to 16 columns, is one
    /// vector (read in place when B already is a contiguous [K, 16], as a convolution's columns at 4×4 pixels are, else
    /// copied once), and each of 8 rows of A adds its broadcast value at k times it: per k, 1 load of B, 8 broadcasts and 8
    /// FMAs of 16 useful lanes, no horizontal sums. The transposed 4×4 form used 256-bit halves, re-read A once per 4
    /// columns and spent as long transposing B (K·N = 37K scalar moves at 2304 × 16) as multiplying: resnet18's 4×4 layers
    /// (256 × 2304 × 16) went from 0.16 to 0.08 ms. Bias (per column or per row) is added in the store.
    /// N ≤ 8 keeps the transposed form: spreading 4 values of A over a vector of 4 rows of B ran 2.4× slower at 512 × 4608 × 4
    /// (a permute per row and step), and the transposed form in 512-bit steps gained nothing there (A streams at 60 GB/s).
    /// </summary>
    private static void SkinnyWide(float* a, float* b, float* c, GemmParams p, SkinnyBias e, bool parallel)
    {
        int m = p.M, n = p.N, k = p.K;
        const int np = 16;
        float* bp = b;
        if (!(p.StrideBn == 1 && p.StrideBk == np))
        {
            bp = HostScratch.Get(0, (long)np * k);
            for (int kk = 0; kk < k; kk++)
            {
                float* src = b + (long)kk * p.StrideBk, dst = bp + (long)kk * np;
                for (int j = 0; j < np; j++)
                    dst[j] = j < n ? src[(long)j * p.StrideBn] : 0f;
            }
        }
        int blocks = (m + 7) / 8;
        long work = 8L * np * k;
        if (parallel && HostParallel.Splits(blocks, work))
            SkinnyWideSplit(a, bp, c, p, e, blocks, work);
        else
            SkinnyWideRows(a, bp, c, p, 0, blocks, e);
    }

    private static void SkinnyWideSplit(float* a, float* bp, float* c, GemmParams p, SkinnyBias e, int blocks, long work) =>
        HostParallel.For(blocks, work, (start, end) => SkinnyWideRows(a, bp, c, p, start, end, e), oneChunkPerCore: true);

    /// <summary>What the skinny products apply as they store C: the bias (per column, or per row of the batch's group); the
    /// activation follows over all of C in one vectorized pass.</summary>
    private readonly struct SkinnyBias(float* bias, GemmParams p, int z, bool apply)
    {
        private readonly float* _bias = bias;
        private readonly int _kind = apply ? p.HasBias : 0, _rowBase = apply && p.HasBias == 2 ? z % Math.Max(p.BiasGroups, 1) * p.M : 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Apply(float x, int row, int column)
        {
            if (_kind == 1)
                x += _bias[column];
            else if (_kind == 2)
                x += _bias[_rowBase + row];
            return x;
        }
    }

    /// <summary>Row blocks [start, end) of 8 rows of <see cref="SkinnyWide"/>; rows past M repeat the last one and are not stored.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SkinnyWideRows(float* a, float* bp, float* c, GemmParams p, int start, int end, SkinnyBias e)
    {
        int k = p.K;
        float* lanes = stackalloc float[16];
        var rowPtr = stackalloc float*[8];
        for (int blk = start; blk < end; blk++)
        {
            int i0 = blk * 8, rows = Math.Min(8, p.M - i0);
            for (int r = 0; r < 8; r++)
                rowPtr[r] = a + (long)(i0 + Math.Min(r, rows - 1)) * p.StrideAm;
            float* a0 = rowPtr[0], a1 = rowPtr[1], a2 = rowPtr[2], a3 = rowPtr[3], a4 = rowPtr[4], a5 = rowPtr[5], a6 = rowPtr[6], a7 = rowPtr[7];
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
            float* bk = bp;
            for (int kk = 0; kk < k; kk++, bk += 16)
            {
                var v = Vector512.Load(bk);
                c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a0[kk]), v, c0);
                c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a1[kk]), v, c1);
                c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a2[kk]), v, c2);
                c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a3[kk]), v, c3);
                c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a4[kk]), v, c4);
                c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a5[kk]), v, c5);
                c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a6[kk]), v, c6);
                c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a7[kk]), v, c7);
            }
            for (int r = 0; r < rows; r++)
            {
                Vector512.Store(r switch { 0 => c0, 1 => c1, 2 => c2, 3 => c3, 4 => c4, 5 => c5, 6 => c6, _ => c7 }, lanes);
                float* crow = c + (long)(i0 + r) * p.N;
                for (int j = 0; j < p.N; j++)
                {
                    float dot = lanes[j];
                    float v = p.Beta == 0 ? p.Alpha * dot : p.Alpha * dot + p.Beta * crow[j];
                    crow[j] = e.Apply(v, i0 + r, j);
                }
            }
        }
    }

    /// <summary>
    /// Floats ahead of the current k that <see cref="SkinnyBlock"/> prefetches in each of its four rows of A (2 KiB): its four
    /// streams interleaved with the FMAs left the hardware prefetcher behind when A came from memory — resnet18's last
    /// weights (512 × 4608, 9.4 MB, not cached) streamed at 24 GB/s (0.39 ms), with the prefetch at 44–48 GB/s (0.2 ms);
    /// 4 KiB ahead did no better.
    /// </summary>
    private const int PrefetchAhead = 512;

    /// <summary>C[i0 .. i0+rows, j0 .. j0+cols] (at most 4 × 4) of <see cref="Skinny"/>; missing rows or columns repeat the
    /// first one's operand and are not stored, so the inner loop has no branches.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SkinnyBlock(float* a, float* bt, float* c, GemmParams p, int i0, int rows, int j0, int cols, SkinnyBias e)
    {
        int k = p.K, k8 = k & ~7;
        float* a0 = a + (long)i0 * p.StrideAm;
        float* a1 = rows > 1 ? a0 + p.StrideAm : a0, a2 = rows > 2 ? a0 + 2L * p.StrideAm : a0, a3 = rows > 3 ? a0 + 3L * p.StrideAm : a0;
        float* b0 = bt + (long)j0 * k;
        float* b1 = cols > 1 ? b0 + k : b0, b2 = cols > 2 ? b0 + 2L * k : b0, b3 = cols > 3 ? b0 + 3L * k : b0;
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default,
            c20 = default, c21 = default, c22 = default, c23 = default, c30 = default, c31 = default, c32 = default, c33 = default;
        for (int kk = 0; kk < k8; kk += 8)
        {
            if ((kk & 15) == 0)
            {
                Sse.Prefetch0(a0 + kk + PrefetchAhead);
                Sse.Prefetch0(a1 + kk + PrefetchAhead);
                Sse.Prefetch0(a2 + kk + PrefetchAhead);
                Sse.Prefetch0(a3 + kk + PrefetchAhead);
            }
            var v0 = Vector256.Load(b0 + kk);
            var v1 = Vector256.Load(b1 + kk);
            var v2 = Vector256.Load(b2 + kk);
            var v3 = Vector256.Load(b3 + kk);
            var x = Vector256.Load(a0 + kk);
            c00 = MulAdd(x, v0, c00); c01 = MulAdd(x, v1, c01); c02 = MulAdd(x, v2, c02); c03 = MulAdd(x, v3, c03);
            x = Vector256.Load(a1 + kk);
            c10 = MulAdd(x, v0, c10); c11 = MulAdd(x, v1, c11); c12 = MulAdd(x, v2, c12); c13 = MulAdd(x, v3, c13);
            x = Vector256.Load(a2 + kk);
            c20 = MulAdd(x, v0, c20); c21 = MulAdd(x, v1, c21); c22 = MulAdd(x, v2, c22); c23 = MulAdd(x, v3, c23);
            x = Vector256.Load(a3 + kk);
            c30 = MulAdd(x, v0, c30); c31 = MulAdd(x, v1, c31); c32 = MulAdd(x, v2, c32); c33 = MulAdd(x, v3, c33);
        }
        float* sums = stackalloc float[16];
        sums[0] = Vector256.Sum(c00); sums[1] = Vector256.Sum(c01); sums[2] = Vector256.Sum(c02); sums[3] = Vector256.Sum(c03);
        sums[4] = Vector256.Sum(c10); sums[5] = Vector256.Sum(c11); sums[6] = Vector256.Sum(c12); sums[7] = Vector256.Sum(c13);
        sums[8] = Vector256.Sum(c20); sums[9] = Vector256.Sum(c21); sums[10] = Vector256.Sum(c22); sums[11] = Vector256.Sum(c23);
        sums[12] = Vector256.Sum(c30); sums[13] = Vector256.Sum(c31); sums[14] = Vector256.Sum(c32); sums[15] = Vector256.Sum(c33);
        for (int i = 0; i < rows; i++)
        {
            float* arow = i == 0 ? a0 : i == 1 ? a1 : i == 2 ? a2 : a3;
            for (int j = 0; j < cols; j++)
            {
                float* bcol = j == 0 ? b0 : j == 1 ? b1 : j == 2 ? b2 : b3;
                float dot = sums[i * 4 + j];
                for (int kk = k8; kk < k; kk++)
                    dot += arow[kk] * bcol[kk];
                float* at = c + (long)(i0 + i) * p.N + j0 + j;
                *at = e.Apply(p.Beta == 0 ? p.Alpha * dot : p.Alpha * dot + p.Beta * *at, i0 + i, j0 + j);
            }
        }
    }

    private static void Packed<TPanel>(float* a, float* b, float* c, GemmParams p, bool parallel) where TPanel : struct, IPanel
    {
        int m = p.M, n = p.N, k = p.K;
        int workers = HostParallel.Workers;
        if (parallel && workers > 1 && n <= RowSplitColumns && m >= 4 * MR * workers && (long)m * n * k >= HostParallel.MinParallelWork)
        {
            RowBlocksPerCore<TPanel>(a, b, c, p, workers);
            return;
        }
        for (int jc = 0; jc < n; jc += NC)
        {
            int nc = Math.Min(NC, n - jc), slivers = (nc + TPanel.NR - 1) / TPanel.NR;
            for (int pc = 0; pc < k; pc += KC)
            {
                int kc = Math.Min(KC, k - pc);
                float* bp = HostScratch.Get(0, (long)slivers * TPanel.NR * kc);
                // A small B with contiguous rows is read in place (each k a row, NR floats of it), but for a last sliver
                // narrower than NR, which is packed zero-padded: packing it all cost the TransformerEncoder export's
                // Linear layers (16 rows by 64 × 192) as much time as their micro-kernels.
                bool inPlace = p.StrideBn == 1 && (long)k * n <= InPlaceB;
                int packFrom = inPlace ? nc / TPanel.NR : 0;
                if (parallel && !inPlace && HostParallel.Splits(slivers, TPanel.NR * kc))
                    PackBSplit<TPanel>(b, bp, p, pc, kc, jc, nc, slivers);
                else if (packFrom < slivers)
                    PackB<TPanel>(b, bp, p, pc, kc, jc, nc, packFrom, slivers);
                var (mcTile, nbTile) = TileShape(m, nc, kc, parallel, TPanel.NR);
                var slab = new Slab(a, b, c, bp, p, jc, nc, pc, kc, inPlace, mcTile, nbTile);
                long tileWork = (long)mcTile * nbTile * kc;
                if (parallel && HostParallel.Splits(slab.Tiles, tileWork))
                    SlabTilesSplit<TPanel>(slab, tileWork);
                else
                    SlabTiles<TPanel>(slab, 0, slab.Tiles);
            }
        }
    }

    /// <summary>
    /// Few columns (a convolution layer's pixels): one block of rows per core, each packing B itself and running every K slab
    /// alone — one hand-off in all, where sharing each slab's tiles took two per 256-deep slab (resnet18's 128×64×1152 layer
    /// spent more in ten hand-offs than in its arithmetic).
    /// </summary>
    private static void RowBlocksPerCore<TPanel>(float* a, float* b, float* c, GemmParams p, int workers) where TPanel : struct, IPanel
    {
        int block = RoundUp((p.M + workers - 1) / workers, MR);
        HostParallel.For((p.M + block - 1) / block, (long)block * p.N * p.K, (s, e) =>
        {
            int row = s * block, rows = Math.Min(p.M, e * block) - row;
            Packed<TPanel>(a + (long)row * p.StrideAm, b, c + (long)row * p.N, p with { M = rows }, parallel: false);
        }, oneChunkPerCore: true);
    }

    private static void PackBSplit<TPanel>(float* b, float* bp, GemmParams p, int pc, int kc, int jc, int nc, int slivers) where TPanel : struct, IPanel =>
        HostParallel.For(slivers, TPanel.NR * kc, (s, e) => PackB<TPanel>(b, bp, p, pc, kc, jc, nc, s, e));

    /// <summary>One K slab of one column panel of <see cref="Packed{TPanel}"/>: its packed B (bp; read from b where in place) and
    /// its C tiles of at most MC × NB.</summary>
    private readonly struct Slab(float* a, float* b, float* c, float* bp, GemmParams p, int jc, int nc, int pc, int kc, bool inPlace, int mcTile, int nbTile)
    {
        public readonly float* A = a, B = b, C = c, Bp = bp;
        public readonly GemmParams P = p;
        public readonly int Jc = jc, Nc = nc, Pc = pc, Kc = kc, McTile = mcTile, NbTile = nbTile;
        public readonly bool InPlace = inPlace;
        public int NBlocks => (Nc + NbTile - 1) / NbTile;
        public int Tiles => (P.M + McTile - 1) / McTile * NBlocks;
    }

    private static void SlabTilesSplit<TPanel>(Slab slab, long tileWork) where TPanel : struct, IPanel =>
        HostParallel.For(slab.Tiles, tileWork, (start, end) => SlabTiles<TPanel>(slab, start, end));

    /// <summary>Tiles [start, end) of a slab (row block major).</summary>
    private static void SlabTiles<TPanel>(in Slab s, int start, int end) where TPanel : struct, IPanel
    {
        var p = s.P;
        int n = p.N, kc = s.Kc, nBlocks = s.NBlocks;
        float betaEff = s.Pc == 0 ? p.Beta : 1f;
        // A contiguous along k (every convolution's weights) is read in place: six row pointers instead of a packed copy,
        // which cost a transposing pass over the weights on every call.
        bool direct = p.StrideAk == 1;
        float* ap = direct ? null : HostScratch.Get(1, (long)MC * kc);
        int packed = -1;
        for (int t = start; t < end; t++)
        {
            int ib = t / nBlocks, jb = t % nBlocks;
            int ic = ib * s.McTile, mc = Math.Min(s.McTile, p.M - ic);
            if (!direct && ib != packed)
            {
                PackA(s.A, ap, p, ic, mc, s.Pc, kc);
                packed = ib;
            }
            int jEnd = Math.Min(s.Nc, (jb + 1) * s.NbTile);
            for (int jr = jb * s.NbTile; jr < jEnd; jr += TPanel.NR)
            {
                int nr = Math.Min(TPanel.NR, s.Nc - jr);
                bool fromB = s.InPlace && nr == TPanel.NR;
                float* bs = fromB ? s.B + (long)s.Pc * p.StrideBk + s.Jc + jr : s.Bp + (long)(jr / TPanel.NR) * TPanel.NR * kc;
                int ldb = fromB ? p.StrideBk : TPanel.NR;
                for (int ir = 0; ir < mc; ir += MR)
                {
                    int mr = Math.Min(MR, mc - ir);
                    float* ct = s.C + (long)(ic + ir) * n + s.Jc + jr;
                    float* at = direct ? s.A + (long)(ic + ir) * p.StrideAm + s.Pc : ap + (long)ir * kc;
                    int rowStride = direct ? p.StrideAm : 1, kStride = direct ? 1 : MR, rows = direct ? mr : MR;
                    if (nr == TPanel.NR)
                        TPanel.Micro(kc, at, rowStride, kStride, rows, bs, ldb, ct, n, mr, p.Alpha, betaEff);
                    else
                        MicroEdge<TPanel>(kc, at, rowStride, kStride, rows, bs, ct, n, mr, nr, p.Alpha, betaEff);
                }
            }
        }
    }

    /// <summary>
    /// The C tile the cores share out: at most MC × NB, rows balanced across the row blocks (128 rows as 66 + 62, not 96 + 32,
    /// which left one core idle for two thirds of a 128³ product), and, for a parallel product with fewer than two tiles per
    /// core and at least <see cref="SplitColumnsWork"/> multiply-adds, narrower column blocks (whole NR slivers) until there
    /// are: 128³ ran as two tiles of 96 and 32 rows on two cores in 0.12 ms, as four balanced tiles in 0.083 ms.
    /// </summary>
    private static (int Rows, int Columns) TileShape(int m, int nc, int kc, bool parallel, int nr)
    {
        int mBlocks = (m + MC - 1) / MC;
        int rows = Math.Min(MC, RoundUp((m + mBlocks - 1) / mBlocks, MR));
        int columns = NB, wanted = 2 * HostParallel.Workers;
        if (parallel && (long)m * nc * kc >= SplitColumnsWork && mBlocks * ((nc + NB - 1) / NB) < wanted)
        {
            int nBlocks = (wanted + mBlocks - 1) / mBlocks;
            columns = Math.Clamp(RoundUp((nc + nBlocks - 1) / nBlocks, nr), nr, NB);
        }
        return (rows, columns);
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>B[pc.., jc..] slivers s..e into bp: sliver j holds kc rows of NR consecutive columns (zero past N).</summary>
    private static void PackB<TPanel>(float* b, float* bp, GemmParams p, int pc, int kc, int jc, int nc, int s, int e) where TPanel : struct, IPanel
    {
        for (int sliver = s; sliver < e; sliver++)
        {
            int j0 = sliver * TPanel.NR, cols = Math.Min(TPanel.NR, nc - j0);
            float* dst = bp + (long)sliver * TPanel.NR * kc;
            if (p.StrideBn == 1)
            {
                float* src = b + (long)pc * p.StrideBk + jc + j0;
                if (cols == TPanel.NR)
                    for (int kk = 0; kk < kc; kk++, src += p.StrideBk, dst += TPanel.NR)
                        TPanel.CopyRow(src, dst);
                else
                    for (int kk = 0; kk < kc; kk++, src += p.StrideBk, dst += TPanel.NR)
                    {
                        int j = 0;
                        for (; j < cols; j++)
                            dst[j] = src[j];
                        for (; j < TPanel.NR; j++)
                            dst[j] = 0;
                    }
            }
            else if (p.StrideBk == 1 && TPanel.NR % 16 == 0 && Avx512F.IsSupported)
                PackTransposedSliver(b + (long)(jc + j0) * p.StrideBn + pc, p.StrideBn, cols, kc, TPanel.NR, dst);
            else
            {
                for (int j = 0; j < TPanel.NR; j++)
                {
                    if (j < cols)
                    {
                        float* src = b + (long)(jc + j0 + j) * p.StrideBn + (long)pc * p.StrideBk;
                        for (int kk = 0; kk < kc; kk++)
                            dst[kk * TPanel.NR + j] = src[(long)kk * p.StrideBk];
                    }
                    else
                        for (int kk = 0; kk < kc; kk++)
                            dst[kk * TPanel.NR + j] = 0;
                }
            }
        }
    }

    /// <summary>
    /// One sliver of B whose columns are contiguous along k (a Linear layer's weights, B transposed): column j of the sliver
    /// starts at <paramref name="first"/> + j·<paramref name="columnStride"/>; dst[k·nr + j] for the first <paramref name="cols"/>
    /// columns, zero for the rest. 16 columns × 16 k at a time transposed in registers (<see cref="HostMath.Transpose16"/>):
    /// scalar, this packing cost more than the product itself for the GRU export's input projection (20 × 32 by 32 × 192) and
    /// the TransformerEncoder's Linear layers.
    /// </summary>
    [SkipLocalsInit] // The two blocks are written before they are read: no zeroing per sliver.
    private static void PackTransposedSliver(float* first, int columnStride, int cols, int kc, int nr, float* dst)
    {
        var block = stackalloc Vector512<float>[16];
        for (int j16 = 0; j16 < nr; j16 += 16)
        {
            float* column = first + (long)j16 * columnStride;
            int kk = 0;
            for (; kk + 16 <= kc; kk += 16)
            {
                for (int r = 0; r < 16; r++)
                    block[r] = j16 + r < cols ? Vector512.Load(column + (long)r * columnStride + kk) : Vector512<float>.Zero;
                HostMath.Transpose16(block);
                for (int r = 0; r < 16; r++)
                    block[r].Store(dst + (long)(kk + r) * nr + j16);
            }
            for (; kk < kc; kk++)
                for (int j = 0; j < 16; j++)
                    dst[(long)kk * nr + j16 + j] = j16 + j < cols ? column[(long)j * columnStride + kk] : 0f;
        }
    }

    /// <summary>A[ic.., pc..] into ap: sliver i holds kc columns of MR consecutive rows (zero past M).</summary>
    private static void PackA(float* a, float* ap, GemmParams p, int ic, int mc, int pc, int kc)
    {
        for (int s = 0; s < mc; s += MR)
        {
            int rows = Math.Min(MR, mc - s);
            float* dst = ap + (long)s * kc;
            if (p.StrideAk == 1)
            {
                for (int r = 0; r < MR; r++)
                {
                    if (r < rows)
                    {
                        float* src = a + (long)(ic + s + r) * p.StrideAm + pc;
                        for (int kk = 0; kk < kc; kk++)
                            dst[kk * MR + r] = src[kk];
                    }
                    else
                        for (int kk = 0; kk < kc; kk++)
                            dst[kk * MR + r] = 0;
                }
            }
            else
            {
                for (int kk = 0; kk < kc; kk++)
                {
                    float* src = a + (long)(pc + kk) * p.StrideAk + (long)(ic + s) * p.StrideAm;
                    for (int r = 0; r < MR; r++)
                        dst[kk * MR + r] = r < rows ? src[(long)r * p.StrideAm] : 0f;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> lo, Vector256<float> hi, Vector256<float> alpha, float beta)
    {
        if (beta == 0)
        {
            Vector256.Store(lo * alpha, c);
            Vector256.Store(hi * alpha, c + 8);
        }
        else
        {
            var vb = Vector256.Create(beta);
            Vector256.Store(MulAdd(lo, alpha, Vector256.Load(c) * vb), c);
            Vector256.Store(MulAdd(hi, alpha, Vector256.Load(c + 8) * vb), c + 8);
        }
    }

    /// <summary>A tile of fewer than NR columns (mr ≤ 6 rows, nr &lt; NR): the micro-kernel into a scratch tile, then the valid
    /// part. (Fewer rows alone need no scratch: the micro-kernel stores only the rows asked for.)</summary>
    [SkipLocalsInit] // the micro-kernel writes the rows read back
    private static void MicroEdge<TPanel>(int kc, float* a, int rowStride, int kStride, int rows, float* b, float* c, int ldc, int mr, int nr, float alpha, float beta)
        where TPanel : struct, IPanel
    {
        float* tile = stackalloc float[MR * TPanel.NR];
        TPanel.Micro(kc, a, rowStride, kStride, rows, b, TPanel.NR, tile, TPanel.NR, mr, 1f, 0f);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
            {
                float* at = c + (long)i * ldc + j;
                *at = beta == 0 ? alpha * tile[i * TPanel.NR + j] : alpha * tile[i * TPanel.NR + j] + beta * *at;
            }
    }

    /// <summary>A micro-kernel's width: NR columns of B per sliver, the MR × NR product, and a sliver row's copy.</summary>
    private interface IPanel
    {
        static abstract int NR { get; }

        /// <summary>C[0..storeRows, 0..NR] = alpha·(A sliver · B sliver) + beta·C (C not read when beta = 0). A's element (r, k) is
        /// at a[r·rowStride + k·kStride] (packed: 1, MR; in place: the row stride, 1); rows past <paramref name="rows"/> repeat
        /// the last valid row (their results are not stored), so an edge sliver never reads past A. Row k of the B sliver is
        /// NR floats at b + k·<paramref name="ldb"/> (packed: NR; read in place: B's row stride).</summary>
        static abstract void Micro(int kc, float* a, int rowStride, int kStride, int rows, float* b, int ldb, float* c, int ldc, int storeRows, float alpha, float beta);

        /// <summary>NR floats from src to dst.</summary>
        static abstract void CopyRow(float* src, float* dst);
    }

    /// <summary>6×16 with AVX2: 12 256-bit accumulators (6 rows × 2 vectors); per k two loads of B, six broadcasts of A,
    /// twelve FMAs — 16 of AVX2's 16 vector registers (12 + 2 + the broadcast + a spare), no spills.</summary>
    private readonly struct Panel256 : IPanel
    {
        public static int NR => 16;

        public static void CopyRow(float* src, float* dst)
        {
            Vector256.Store(Vector256.Load(src), dst);
            Vector256.Store(Vector256.Load(src + 8), dst + 8);
        }

        /// <summary>The 6×16 micro-kernel: C[0..6, 0..16] = alpha·(A sliver · B sliver) + beta·C (C not read when beta = 0).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Micro(int kc, float* a, int rowStride, int kStride, int rows, float* b, int ldb, float* c, int ldc, int storeRows, float alpha, float beta)
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            float* a0 = a, a1 = a + (long)Math.Min(1, rows - 1) * rowStride, a2 = a + (long)Math.Min(2, rows - 1) * rowStride,
                a3 = a + (long)Math.Min(3, rows - 1) * rowStride, a4 = a + (long)Math.Min(4, rows - 1) * rowStride, a5 = a + (long)Math.Min(5, rows - 1) * rowStride;
            for (int k = 0, at = 0; k < kc; k++, at += kStride, b += ldb)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var x = Vector256.Create(a0[at]);
                c00 = MulAdd(x, b0, c00); c01 = MulAdd(x, b1, c01);
                x = Vector256.Create(a1[at]);
                c10 = MulAdd(x, b0, c10); c11 = MulAdd(x, b1, c11);
                x = Vector256.Create(a2[at]);
                c20 = MulAdd(x, b0, c20); c21 = MulAdd(x, b1, c21);
                x = Vector256.Create(a3[at]);
                c30 = MulAdd(x, b0, c30); c31 = MulAdd(x, b1, c31);
                x = Vector256.Create(a4[at]);
                c40 = MulAdd(x, b0, c40); c41 = MulAdd(x, b1, c41);
                x = Vector256.Create(a5[at]);
                c50 = MulAdd(x, b0, c50); c51 = MulAdd(x, b1, c51);
            }
            var va = Vector256.Create(alpha);
            Store(c, c00, c01, va, beta);
            if (storeRows > 1) Store(c + ldc, c10, c11, va, beta);
            if (storeRows > 2) Store(c + 2L * ldc, c20, c21, va, beta);
            if (storeRows > 3) Store(c + 3L * ldc, c30, c31, va, beta);
            if (storeRows > 4) Store(c + 4L * ldc, c40, c41, va, beta);
            if (storeRows > 5) Store(c + 5L * ldc, c50, c51, va, beta);
        }

    }

    /// <summary>6×32 with AVX-512: 12 zmm accumulators (6 rows × 2 vectors of 16), the same schedule at twice the width —
    /// 15 of the 32 zmm registers, no spills.</summary>
    private readonly struct Panel512 : IPanel
    {
        public static int NR => 32;

        public static void CopyRow(float* src, float* dst)
        {
            Vector512.Store(Vector512.Load(src), dst);
            Vector512.Store(Vector512.Load(src + 16), dst + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Micro(int kc, float* a, int rowStride, int kStride, int rows, float* b, int ldb, float* c, int ldc, int storeRows, float alpha, float beta)
        {
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            float* a0 = a, a1 = a + (long)Math.Min(1, rows - 1) * rowStride, a2 = a + (long)Math.Min(2, rows - 1) * rowStride,
                a3 = a + (long)Math.Min(3, rows - 1) * rowStride, a4 = a + (long)Math.Min(4, rows - 1) * rowStride, a5 = a + (long)Math.Min(5, rows - 1) * rowStride;
            for (int k = 0, at = 0; k < kc; k++, at += kStride, b += ldb)
            {
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                var x = Vector512.Create(a0[at]);
                c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01);
                x = Vector512.Create(a1[at]);
                c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11);
                x = Vector512.Create(a2[at]);
                c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21);
                x = Vector512.Create(a3[at]);
                c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31);
                x = Vector512.Create(a4[at]);
                c40 = Avx512F.FusedMultiplyAdd(x, b0, c40); c41 = Avx512F.FusedMultiplyAdd(x, b1, c41);
                x = Vector512.Create(a5[at]);
                c50 = Avx512F.FusedMultiplyAdd(x, b0, c50); c51 = Avx512F.FusedMultiplyAdd(x, b1, c51);
            }
            var va = Vector512.Create(alpha);
            Store(c, c00, c01, va, beta);
            if (storeRows > 1) Store(c + ldc, c10, c11, va, beta);
            if (storeRows > 2) Store(c + 2L * ldc, c20, c21, va, beta);
            if (storeRows > 3) Store(c + 3L * ldc, c30, c31, va, beta);
            if (storeRows > 4) Store(c + 4L * ldc, c40, c41, va, beta);
            if (storeRows > 5) Store(c + 5L * ldc, c50, c51, va, beta);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store(float* c, Vector512<float> lo, Vector512<float> hi, Vector512<float> alpha, float beta)
        {
            if (beta == 0)
            {
                Vector512.Store(lo * alpha, c);
                Vector512.Store(hi * alpha, c + 16);
            }
            else
            {
                var vb = Vector512.Create(beta);
                Vector512.Store(Avx512F.FusedMultiplyAdd(lo, alpha, Vector512.Load(c) * vb), c);
                Vector512.Store(Avx512F.FusedMultiplyAdd(hi, alpha, Vector512.Load(c + 16) * vb), c + 16);
            }
        }
    }
}

using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// The elementwise family on the fast CPU device. The output's coalesced shape is walked as rows of its innermost
/// dimension (outer offsets through <see cref="Layout6"/>, once per row); a row whose operands are contiguous (or a
/// broadcast scalar) goes to System.Numerics.Tensors' TensorPrimitives, which vectorizes with the widest SIMD the
/// machine has, and any other row to a scalar loop over the operator struct. The operators are the same structs the
/// GPU kernels take; the well-known ones are recognised by type (the checks fold away when the JIT specializes).
/// </summary>
internal static unsafe class HostElementwise
{
    /// <summary>One row of n outputs: o[i·so] = f(a[i·sa], b[i·sb]).</summary>
    private interface IRowKernel
    {
        void Row(float* a, int sa, float* b, int sb, float* o, int so, int n);
    }

    /// <summary>o = op(a, b) over the broadcast shape of o, given the coalesced dims and strides [o, a, b].</summary>
    public static void MapBinary<TOp>(string name, Tensor a, Tensor b, Tensor o, int[] dims, int[][] st, TOp op) where TOp : struct, IBinaryOp
    {
        if (!GatedRows(a, b, o, dims, st, op))
            Walk(name, a, b, o, dims, st, new BinaryRows<TOp> { Op = op });
    }

    /// <summary>
    /// A per-row scalar (a squeeze-and-excite gate, [rows, 1]) with contiguous rows of 2, 4 or 8 ([rows, L]: a 2×2 map is a
    /// row of 4 per channel) or of whole vectors (4×4 maps and up), in either order, for the arithmetic operators: sixteen
    /// rows at a time, their sixteen gates loaded once and spread over the rows' L vectors by one permute each, or each
    /// row's gate broadcast over its vectors. One masked vector a row used 4 of its 16 lanes, and a row's call and cursor
    /// step cost more than its arithmetic: efficientnet_b0's gates over 1,152 channels at 2×2 ran 10–11 µs each in the
    /// model, over 672 at 4×4 8. False (nothing done) for any other shape or operator, or without AVX-512.
    /// </summary>
    private static bool GatedRows<TOp>(Tensor a, Tensor b, Tensor o, int[] dims, int[][] st, TOp op) where TOp : struct, IBinaryOp
    {
        if (!IsArithmetic<TOp>() || !HostGemm.Wide || !Avx512F.IsSupported || dims.Length != 2 || !(dims[1] is 2 or 4 or 8 || dims[1] % 16 == 0))
            return false;
        int rows = dims[0], inner = dims[1];
        static bool Rows(int[] s, int rows, int inner) => s[1] == 1 && (s[0] == inner || rows == 1);
        static bool Gates(int[] s, int rows) => s[1] == 0 && (s[0] == 1 || rows == 1);
        bool gateFirst = Gates(st[1], rows) && Rows(st[2], rows, inner);
        if (!Rows(st[0], rows, inner) || !(gateFirst || Gates(st[2], rows) && Rows(st[1], rows, inner)))
            return false;
        GatedGroups(HostMemory.Ptr(gateFirst ? b : a), HostMemory.Ptr(gateFirst ? a : b), HostMemory.Ptr(o), rows, inner, gateFirst, op);
        return true;
    }

    /// <summary>The groups of 16 rows of <see cref="GatedRows{TOp}"/>: rows x, their gates g, into po.</summary>
    private static void GatedGroups<TOp>(float* x, float* g, float* po, int rows, int inner, bool gateFirst, TOp op) where TOp : struct, IBinaryOp =>
        HostParallel.For((rows + 15) / 16, 16L * inner, (g0, g1) =>
        {
            // Lane i of the j-th vector of a group belongs to row (16j + i) / L.
            var spread = stackalloc Vector512<int>[8];
            var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            for (int j = 0; j < inner && inner <= 8; j++)
                spread[j] = (lane + Vector512.Create(16 * j)) / Vector512.Create(inner);
            for (int group = g0; group < g1; group++)
            {
                int r0 = group * 16;
                if (r0 + 16 > rows)
                {
                    for (int r = r0; r < rows; r++)
                        for (int c = 0; c < inner; c++)
                        {
                            long at = (long)r * inner + c;
                            po[at] = gateFirst ? op.Apply(g[r], x[at]) : op.Apply(x[at], g[r]);
                        }
                    continue;
                }
                if (inner % 16 == 0)
                {
                    // Whole vectors a row: the row's gate broadcast once.
                    for (int r = r0; r < r0 + 16; r++)
                    {
                        var w = Vector512.Create(g[r]);
                        for (long at = (long)r * inner, end = at + inner; at < end; at += 16)
                        {
                            var v = Vector512.Load(x + at);
                            Vector512.Store(gateFirst ? Arithmetic<TOp>(w, v) : Arithmetic<TOp>(v, w), po + at);
                        }
                    }
                    continue;
                }
                var gates = Vector512.Load(g + r0);
                for (int j = 0; j < inner; j++)
                {
                    long at = (long)r0 * inner + 16 * j;
                    var v = Vector512.Load(x + at);
                    var w = Avx512F.PermuteVar16x32(gates, spread[j]);
                    Vector512.Store(gateFirst ? Arithmetic<TOp>(w, v) : Arithmetic<TOp>(v, w), po + at);
                }
            }
        }, minWork: ParallelElements);

    /// <summary>Whether <typeparamref name="TOp"/> is one of the four arithmetic operators <see cref="Arithmetic{TOp}"/> computes.</summary>
    private static bool IsArithmetic<TOp>() where TOp : struct, IBinaryOp =>
        typeof(TOp) == typeof(ElementwiseOps.Add) || typeof(TOp) == typeof(ElementwiseOps.Sub)
        || typeof(TOp) == typeof(ElementwiseOps.Mul) || typeof(TOp) == typeof(ElementwiseOps.Div);

    /// <summary>x + y, x − y, x · y or x / y lane by lane for the arithmetic operator <typeparamref name="TOp"/> (see
    /// <see cref="IsArithmetic{TOp}"/>; the choice folds away when the JIT specializes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Arithmetic<TOp>(Vector512<float> x, Vector512<float> y) where TOp : struct, IBinaryOp =>
        typeof(TOp) == typeof(ElementwiseOps.Add) ? x + y
        : typeof(TOp) == typeof(ElementwiseOps.Sub) ? x - y
        : typeof(TOp) == typeof(ElementwiseOps.Mul) ? x * y
        : x / y;

    /// <summary>o = op(a) over o's shape, given the coalesced dims and strides [o, a, a].</summary>
    public static void MapUnary<TOp>(string name, Tensor a, Tensor o, int[] dims, int[][] st, TOp op) where TOp : struct, IUnaryOp =>
        Walk(name, a, a, o, dims, st, new UnaryRows<TOp> { Op = op });

    /// <summary>o = op(a, b) for contiguous operands whose element order equals o's; a length-1 operand is a scalar.</summary>
    public static void MapContiguous<TOp>(Tensor a, Tensor b, Tensor o, TOp op) where TOp : struct, IBinaryOp =>
        Flat(HostMemory.Ptr(a), a.Length == 1 && o.Length > 1 ? 0 : 1, HostMemory.Ptr(b), b.Length == 1 && o.Length > 1 ? 0 : 1,
            HostMemory.Ptr(o), o.Length, new BinaryRows<TOp> { Op = op });

    /// <summary>o = op(a) for contiguous operands whose element order equals o's; a length-1 input is broadcast.</summary>
    public static void MapContiguous<TOp>(Tensor a, Tensor o, TOp op) where TOp : struct, IUnaryOp
    {
        int sa = a.Length == 1 && o.Length > 1 ? 0 : 1;
        float* pa = HostMemory.Ptr(a);
        Flat(pa, sa, pa, sa, HostMemory.Ptr(o), o.Length, new UnaryRows<TOp> { Op = op });
    }

    /// <summary>o = op(a, b) over n contiguous elements on the calling thread (o may be a or b).</summary>
    public static void ApplyBinary<TOp>(float* a, float* b, float* o, int n, TOp op) where TOp : struct, IBinaryOp =>
        new BinaryRows<TOp> { Op = op }.Row(a, 1, b, 1, o, 1, n);

    /// <summary>
    /// Elements from which an elementwise pass splits across the cores, whatever its operator costs: 4096, 64 times fewer
    /// than <see cref="HostParallel.MinParallelWork"/>'s work. Its input was most often written by a split loop — half of it in each
    /// core's cache — and split the same way (contiguous halves) each core reads its own half: efficientnet_b0's
    /// squeeze-and-excite gates over 1152 × 2×2 ran 22–25 µs on one core in the model, 10–11 split, and the whole model
    /// 1.71–1.77 → 1.36–1.39 ms of node time.
    /// </summary>
    private const int ParallelElements = 1 << 12;

    /// <summary>One row of n elements, split into cache-line-aligned chunks across the cores when it is long enough: four
    /// chunks per core, so each core's own chunks are one contiguous share.</summary>
    private static void Flat<TRow>(float* pa, int sa, float* pb, int sb, float* po, int n, TRow rows) where TRow : struct, IRowKernel
    {
        if (n < ParallelElements || HostParallel.Workers == 1)
        {
            rows.Row(pa, sa, pb, sb, po, 1, n);
            return;
        }
        FlatSplit(pa, sa, pb, sb, po, n, rows);
    }

    // The split loops' closures live in methods of their own: a lambda over a method's parameters makes C# allocate its
    // closure on entry, on the single-threaded path too (an allocation per elementwise op of an ONNX run).

    private static void FlatSplit<TRow>(float* pa, int sa, float* pb, int sb, float* po, int n, TRow rows) where TRow : struct, IRowKernel
    {
        int chunk = (n + 4 * HostParallel.Workers - 1) / (4 * HostParallel.Workers);
        chunk = (chunk + 15) & ~15;
        HostParallel.For((n + chunk - 1) / chunk, chunk, (s, e) =>
        {
            int start = s * chunk, count = Math.Min(n, e * chunk) - start;
            rows.Row(pa + (long)start * sa, sa, pb + (long)start * sb, sb, po + start, 1, count);
        }, minWork: ParallelElements);
    }

    private static void Walk<TRow>(string name, Tensor a, Tensor b, Tensor o, int[] dims, int[][] st, TRow rows) where TRow : struct, IRowKernel
    {
        float* pa = HostMemory.Ptr(a), pb = HostMemory.Ptr(b), po = HostMemory.Ptr(o);
        if (dims.Length == 0)
        {
            rows.Row(pa, 0, pb, 0, po, 0, 1);
            return;
        }
        int inner = dims[^1], so = st[0][^1], sa = st[1][^1], sb = st[2][^1];
        int count = o.Length / inner;
        if (count == 1 && so == 1)
        {
            Flat(pa, sa, pb, sb, po, inner, rows);
            return;
        }
        var walk = new RowWalk(Layout6.Create(name, dims.AsSpan(0, dims.Length - 1), st[0].AsSpan(0, dims.Length - 1)),
            Layout6.Create(name, dims.AsSpan(0, dims.Length - 1), st[1].AsSpan(0, dims.Length - 1)),
            Layout6.Create(name, dims.AsSpan(0, dims.Length - 1), st[2].AsSpan(0, dims.Length - 1)), pa, sa, pb, sb, po, so, inner);
        if (HostParallel.Splits(count, inner, ParallelElements))
            WalkSplit(walk, count, rows);
        else
            walk.Rows(0, count, rows);
    }

    private static void WalkSplit<TRow>(RowWalk walk, int count, TRow rows) where TRow : struct, IRowKernel =>
        HostParallel.For(count, walk.Inner, (s, e) => walk.Rows(s, e, rows), minWork: ParallelElements);

    /// <summary>The rows of one elementwise walk: where each operand's rows are, and their length and steps.</summary>
    private readonly struct RowWalk(Layout6 lo, Layout6 la, Layout6 lb, float* pa, int sa, float* pb, int sb, float* po, int so, int inner)
    {
        private readonly Layout6 _lo = lo, _la = la, _lb = lb;
        private readonly float* _pa = pa, _pb = pb, _po = po;
        private readonly int _sa = sa, _sb = sb, _so = so;
        public readonly int Inner = inner;

        /// <summary>Rows [start, end).</summary>
        public void Rows<TRow>(int start, int end, TRow rows) where TRow : struct, IRowKernel
        {
            var at = new RowCursor(_lo, _la, _lb, start);
            for (int r = start; r < end; r++, at.Next())
                rows.Row(_pa + at.A, _sa, _pb + at.B, _sb, _po + at.O, _so, Inner);
        }
    }

    /// <summary>
    /// The storage offsets of one row in o, a and b, stepped row by row like an odometer over the outer dimensions: the
    /// position is decoded once per chunk, where <see cref="Layout6.Offset"/> per row and operand cost 10 integer divisions
    /// each — 50 ns a row, most of a squeeze-and-excite gate's time on rows of 4 elements (1,152 of them: 57 µs).
    /// </summary>
    private struct RowCursor
    {
        private fixed int _dims[6], _o[6], _a[6], _b[6], _index[6];

        public long O, A, B;

        public RowCursor(Layout6 lo, Layout6 la, Layout6 lb, int start)
        {
            ReadOnlySpan<int> dims = [lo.D0, lo.D1, lo.D2, lo.D3, lo.D4, lo.D5], so = [lo.S0, lo.S1, lo.S2, lo.S3, lo.S4, lo.S5],
                sa = [la.S0, la.S1, la.S2, la.S3, la.S4, la.S5], sb = [lb.S0, lb.S1, lb.S2, lb.S3, lb.S4, lb.S5];
            int rest = start;
            for (int k = 5; k >= 0; k--)
            {
                _dims[k] = dims[k];
                (_o[k], _a[k], _b[k]) = (so[k], sa[k], sb[k]);
                _index[k] = rest % dims[k];
                rest /= dims[k];
                O += (long)_index[k] * so[k];
                A += (long)_index[k] * sa[k];
                B += (long)_index[k] * sb[k];
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Next()
        {
            for (int k = 5; k >= 0; k--)
            {
                O += _o[k];
                A += _a[k];
                B += _b[k];
                if (++_index[k] < _dims[k])
                    return;
                O -= (long)_o[k] * _dims[k];
                A -= (long)_a[k] * _dims[k];
                B -= (long)_b[k] * _dims[k];
                _index[k] = 0;
            }
        }
    }

    private struct BinaryRows<TOp> : IRowKernel where TOp : struct, IBinaryOp
    {
        public TOp Op;

        public readonly void Row(float* a, int sa, float* b, int sb, float* o, int so, int n)
        {
            // Rows shorter than a few vectors (a broadcast over a 2×2 or 4×4 feature map, row by row) skip TensorPrimitives,
            // whose fixed cost per call (~15 ns) outweighed their arithmetic: efficientnet's squeeze-and-excite scaling ran
            // 1152 calls of 4 elements per layer.
            if (n >= 32 && so == 1 && sa == 1 && (sb == 1 || sb == 0) && Vectorized(a, b, sb == 0, o, n))
                return;
            if (n >= 32 && so == 1 && sa == 0 && sb == 1 && VectorizedScalarA(*a, b, o, n))
                return;
            if (n < 32 && so == 1 && sa <= 1 && sb <= 1 && Masked(a, sa, b, sb, o, n))
                return;
            for (int i = 0; i < n; i++)
                o[(long)i * so] = Op.Apply(a[(long)i * sa], b[(long)i * sb]);
        }

        /// <summary>
        /// A short row (a per-channel gate over a 2×2 or 4×4 map: one row per channel) in masked 16-lane vectors, each operand
        /// contiguous or one scalar, for the arithmetic operators; false for others or without AVX-512. The element loop cost
        /// 2–3 ns an element through the operator struct: efficientnet's 1152 × 2×2 gate 13.7 µs.
        /// </summary>
        private readonly bool Masked(float* a, int sa, float* b, int sb, float* o, int n)
        {
            if (!IsArithmetic<TOp>() || !HostGemm.Wide || !Avx512F.IsSupported)
                return false;
            for (int j = 0; j < n; j += 16)
            {
                var mask = HostMath.FirstLanes(n - j);
                var x = sa == 0 ? Vector512.Create(*a) : Avx512F.MaskLoad(a + j, mask, Vector512<float>.Zero);
                var y = sb == 0 ? Vector512.Create(*b) : Avx512F.MaskLoad(b + j, mask, Vector512<float>.One);
                Avx512F.MaskStore(o + j, mask, Arithmetic<TOp>(x, y));
            }
            return true;
        }

        /// <summary>A scalar a with a row of b (a per-channel gate times its feature map, written gate first).</summary>
        private readonly bool VectorizedScalarA(float x, float* b, float* o, int n)
        {
            var ys = new ReadOnlySpan<float>(b, n);
            var dst = new Span<float>(o, n);
            if (typeof(TOp) == typeof(ElementwiseOps.Add)) TensorPrimitives.Add(ys, x, dst);
            else if (typeof(TOp) == typeof(ElementwiseOps.Sub)) TensorPrimitives.Subtract(x, ys, dst);
            else if (typeof(TOp) == typeof(ElementwiseOps.Mul)) TensorPrimitives.Multiply(ys, x, dst);
            else if (typeof(TOp) == typeof(ElementwiseOps.Div)) TensorPrimitives.Divide(x, ys, dst);
            else return false;
            return true;
        }

        /// <summary>TensorPrimitives for the arithmetic operators; false when the operator has no vector form here.</summary>
        private readonly bool Vectorized(float* a, float* b, bool scalarB, float* o, int n)
        {
            var x = new ReadOnlySpan<float>(a, n);
            var dst = new Span<float>(o, n);
            if (scalarB)
            {
                float y = *b;
                if (typeof(TOp) == typeof(ElementwiseOps.Add)) TensorPrimitives.Add(x, y, dst);
                else if (typeof(TOp) == typeof(ElementwiseOps.Sub)) TensorPrimitives.Subtract(x, y, dst);
                else if (typeof(TOp) == typeof(ElementwiseOps.Mul)) TensorPrimitives.Multiply(x, y, dst);
                else if (typeof(TOp) == typeof(ElementwiseOps.Div)) TensorPrimitives.Divide(x, y, dst);
                else return false;
                return true;
            }
            var ys = new ReadOnlySpan<float>(b, n);
            if (typeof(TOp) == typeof(ElementwiseOps.Add)) TensorPrimitives.Add(x, ys, dst);
            else if (typeof(TOp) == typeof(ElementwiseOps.Sub)) TensorPrimitives.Subtract(x, ys, dst);
            else if (typeof(TOp) == typeof(ElementwiseOps.Mul)) TensorPrimitives.Multiply(x, ys, dst);
            else if (typeof(TOp) == typeof(ElementwiseOps.Div)) TensorPrimitives.Divide(x, ys, dst);
            else if (typeof(TOp) == typeof(ElementwiseOps.Axpy))
            {
                var op = Op;
                TensorPrimitives.MultiplyAdd(x, Unsafe.As<TOp, ElementwiseOps.Axpy>(ref op).Alpha, ys, dst);
            }
            else if (typeof(TOp) == typeof(Activation.Backward<Activation.GeluErf>))
                HostMath.GeluErfBackward(a, b, o, n);
            else if (typeof(TOp) == typeof(Activation.Backward<Activation.Relu>))
                ReluBackward(a, b, o, n);
            else if (typeof(TOp) == typeof(Activation.Backward<Activation.Sigmoid>))
                SigmoidBackward(a, b, o, n, silu: false);
            else if (typeof(TOp) == typeof(Activation.Backward<Activation.Silu>))
                SigmoidBackward(a, b, o, n, silu: true);
            else return false;
            return true;
        }
    }

    private struct UnaryRows<TOp> : IRowKernel where TOp : struct, IUnaryOp
    {
        public TOp Op;

        public readonly void Row(float* a, int sa, float* b, int sb, float* o, int so, int n)
        {
            if (so == 1 && sa == 1)
                ApplyUnary(new ReadOnlySpan<float>(a, n), new Span<float>(o, n), Op);
            else if (so == 1 && sa == 0 && typeof(TOp) != typeof(ElementwiseOps.Constant))
                new Span<float>(o, n).Fill(Op.Apply(*a));
            else
                for (int i = 0; i < n; i++)
                    o[(long)i * so] = Op.Apply(a[(long)i * sa]);
        }
    }

    /// <summary>
    /// dst = op(x) for contiguous spans that are the same memory or do not overlap: TensorPrimitives or a Vector256 loop
    /// for the common operators (written to give the same values as the GPU structs: ReLU maps NaN to 0 as they do), a
    /// scalar loop over the struct otherwise. TensorPrimitives.Tanh is not used: near 0 its relative error reached
    /// 6.7e-5 in the tanh check's ±0.001 case (the struct's tanh stays under 1e-7). The matmul epilogue uses it for the fused activation.
    /// </summary>
    public static void ApplyUnary<TOp>(ReadOnlySpan<float> x, Span<float> dst, TOp op) where TOp : struct, IUnaryOp
    {
        if (typeof(TOp) == typeof(ElementwiseOps.Identity))
        {
            if (!Unsafe.AreSame(ref Unsafe.AsRef(in x[0]), ref dst[0]))
                x.CopyTo(dst);
        }
        else if (typeof(TOp) == typeof(ElementwiseOps.Constant))
            dst.Fill(Unsafe.As<TOp, ElementwiseOps.Constant>(ref op).Value);
        else if (typeof(TOp) == typeof(ElementwiseOps.AddScalar))
            TensorPrimitives.Add(x, Unsafe.As<TOp, ElementwiseOps.AddScalar>(ref op).Value, dst);
        else if (typeof(TOp) == typeof(Activation.Scale))
            TensorPrimitives.Multiply(x, Unsafe.As<TOp, Activation.Scale>(ref op).Factor, dst);
        else if (typeof(TOp) == typeof(Activation.Exp))
        {
            TensorPrimitives.Multiply(x, Unsafe.As<TOp, Activation.Exp>(ref op).Scale, dst);
            fixed (float* p = dst)
                HostMath.ExpShiftedSum(p, p, dst.Length, 0f);
        }
        else if (typeof(TOp) == typeof(Activation.Sigmoid))
        {
            fixed (float* px = x, pd = dst)
                HostMath.Sigmoid(px, pd, x.Length);
        }
        else if (typeof(TOp) == typeof(Activation.GeluErf))
        {
            fixed (float* px = x, pd = dst)
                HostMath.GeluErf(px, pd, x.Length);
        }
        else if (typeof(TOp) == typeof(Activation.Relu))
            Relu(x, dst);
        else if (typeof(TOp) == typeof(Activation.LeakyRelu))
            LeakyRelu(x, dst, Unsafe.As<TOp, Activation.LeakyRelu>(ref op).Slope);
        else if (typeof(TOp) == typeof(Activation.Silu))
            Silu(x, dst);
        else if (typeof(TOp) == typeof(Activation.Relu6))
        {
            TensorPrimitives.Max(x, 0f, dst);
            TensorPrimitives.Min(dst, 6f, dst);
        }
        else if (typeof(TOp) == typeof(UnaryMath) && Unsafe.As<TOp, UnaryMath>(ref op) is { Function: UnaryFunction.Clip } clip)
        {
            // min(max(x, A), B) as the scalar op: both propagate NaN and order −0 below +0 (IEEE 754-2019 maximum/minimum).
            TensorPrimitives.Max(x, clip.A, dst);
            TensorPrimitives.Min(dst, clip.B, dst);
        }
        else
            for (int i = 0; i < x.Length; i++)
                dst[i] = op.Apply(x[i]);
    }

    private static void Relu(ReadOnlySpan<float> x, Span<float> dst)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            fixed (float* px = x, pd = dst)
                for (; i + 8 <= x.Length; i += 8)
                {
                    var v = Vector256.Load(px + i);
                    Vector256.Store(Vector256.ConditionalSelect(Vector256.LessThanOrEqual(v, Vector256<float>.Zero), Vector256<float>.Zero, v), pd + i);
                }
        }
        for (; i < x.Length; i++)
            dst[i] = x[i] <= 0 ? 0f : x[i];
    }

    /// <summary>x where x ≥ 0, else slope·x, as the struct computes it (NaN stays NaN: slope·NaN); the struct's scalar loop
    /// ran 57× slower than ReLU's (0.32 against 0.0056 ms at 64K).</summary>
    private static void LeakyRelu(ReadOnlySpan<float> x, Span<float> dst, float slope)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(slope);
            fixed (float* px = x, pd = dst)
                for (; i + 8 <= x.Length; i += 8)
                {
                    var v = Vector256.Load(px + i);
                    Vector256.Store(Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(v, Vector256<float>.Zero), v, v * s), pd + i);
                }
        }
        for (; i < x.Length; i++)
            dst[i] = x[i] >= 0 ? x[i] : slope * x[i];
    }

    /// <summary>dx = dy where x &gt; 0, else 0 (the struct's derivative, NaN x gives 0 as there).</summary>
    private static void ReluBackward(float* dy, float* x, float* dx, int n)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8)
                Vector256.Store(Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.Load(x + i), Vector256<float>.Zero), Vector256.Load(dy + i), Vector256<float>.Zero), dx + i);
        for (; i < n; i++)
            dx[i] = x[i] > 0 ? dy[i] : 0f;
    }

    /// <summary>
    /// dx = dy·σ(x)·σ(−x) (sigmoid) or dy·σ(x)·(1 + x·σ(−x)) (SiLU) in chunks through stack buffers: both σ(x) and σ(−x) are
    /// computed, as the structs do, so 1 − σ never cancels in the tails. dx may alias dy or x.
    /// </summary>
    private static void SigmoidBackward(float* dy, float* x, float* dx, int n, bool silu)
    {
        const int Chunk = 256;
        float* s = stackalloc float[Chunk];
        float* t = stackalloc float[Chunk];
        for (int i = 0; i < n; i += Chunk)
        {
            int m = Math.Min(Chunk, n - i);
            var xs = new ReadOnlySpan<float>(x + i, m);
            HostMath.Sigmoid(x + i, s, m);
            TensorPrimitives.Negate(xs, new Span<float>(t, m));
            HostMath.Sigmoid(t, t, m);
            var sp = new Span<float>(s, m);
            var tp = new Span<float>(t, m);
            if (silu)
                TensorPrimitives.MultiplyAdd(xs, tp, 1f, tp);
            TensorPrimitives.Multiply(sp, tp, sp);
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(dy + i, m), sp, new Span<float>(dx + i, m));
        }
    }

    /// <summary>x·σ(x) in chunks through a stack buffer, so dst may be x itself.</summary>
    private static void Silu(ReadOnlySpan<float> x, Span<float> dst)
    {
        Span<float> s = stackalloc float[256];
        for (int i = 0; i < x.Length; i += s.Length)
        {
            int n = Math.Min(s.Length, x.Length - i);
            var chunk = s[..n];
            fixed (float* px = x.Slice(i, n), pc = chunk)
                HostMath.Sigmoid(px, pc, n);
            TensorPrimitives.Multiply(chunk, x.Slice(i, n), dst.Slice(i, n));
        }
    }

    /// <summary>
    /// o[b, c, r] = x[b·strideBatch + r·strideRow + c]: blocks of 32×32 so both the reads (along c) and the writes (along r)
    /// stay within a few cache lines per block; batches × row-blocks split across cores.
    /// </summary>
    public static void Transpose(float* x, float* o, int batches, int rows, int cols, int strideBatch, int strideRow)
    {
        const int Block = 32;
        int rowBlocks = (rows + Block - 1) / Block;
        HostParallel.For(batches * rowBlocks, (long)Block * cols, (start, end) =>
        {
            for (int t = start; t < end; t++)
            {
                int b = t / rowBlocks, r0 = t % rowBlocks * Block, r1 = Math.Min(rows, r0 + Block);
                float* src = x + (long)b * strideBatch;
                float* dst = o + (long)b * rows * cols;
                for (int c0 = 0; c0 < cols; c0 += Block)
                {
                    int c1 = Math.Min(cols, c0 + Block);
                    for (int r = r0; r < r1; r++)
                    {
                        float* srow = src + (long)r * strideRow;
                        for (int c = c0; c < c1; c++)
                            dst[(long)c * rows + r] = srow[c];
                    }
                }
            }
        });
    }
}

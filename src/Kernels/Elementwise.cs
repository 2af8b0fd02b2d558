using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>A per-element function of one input. Structs implementing it are passed to the kernels by value, so
    /// fields (a slope, a constant) become kernel parameters and the JIT inlines <see cref="Apply"/>.</summary>
    public interface IUnaryOp
    {
        /// <summary>The function.</summary>
        float Apply(float x);
    }

    /// <summary>A per-element function of two inputs (see <see cref="IUnaryOp"/>).</summary>
    public interface IBinaryOp
    {
        /// <summary>The function.</summary>
        float Apply(float a, float b);
    }

    /// <summary>Built-in elementwise operators.</summary>
    public static class ElementwiseOps
    {
        /// <summary>x (copy).</summary>
        public struct Identity : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x; /// <inheritdoc/>
            public readonly float Derivative(float x) => 1f; }

        /// <summary>A constant (fill).</summary>
        public struct Constant : IUnaryOp { /// <summary>The value.</summary>
            public float Value; /// <inheritdoc/>
            public readonly float Apply(float x) => Value; }

        /// <summary>x + Value.</summary>
        public struct AddScalar : IUnaryOp { /// <summary>The addend.</summary>
            public float Value; /// <inheritdoc/>
            public readonly float Apply(float x) => x + Value; }

        /// <summary>−inf where x ≠ 0, else 0: a 0/1 padding mask turned into an additive attention mask.</summary>
        public struct MaskToNegativeInfinity : IUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x != 0 ? float.NegativeInfinity : 0f; }

        /// <summary>a + b.</summary>
        public struct Add : IBinaryOp { /// <inheritdoc/>
            public readonly float Apply(float a, float b) => a + b; }

        /// <summary>a − b.</summary>
        public struct Sub : IBinaryOp { /// <inheritdoc/>
            public readonly float Apply(float a, float b) => a - b; }

        /// <summary>a · b.</summary>
        public struct Mul : IBinaryOp { /// <inheritdoc/>
            public readonly float Apply(float a, float b) => a * b; }

        /// <summary>a / b (IEEE: x/0 is ±inf, 0/0 is NaN, as in NumPy and PyTorch).</summary>
        public struct Div : IBinaryOp { /// <inheritdoc/>
            public readonly float Apply(float a, float b) => a / b; }

        /// <summary>(1 − Momentum)·a + Momentum·Scale·b: a running statistic a moved toward a batch statistic b.</summary>
        public struct MomentumUpdate : IBinaryOp { /// <summary>Weight of the new value.</summary>
            public float Momentum; /// <summary>Factor applied to the new value (n/(n − 1) for an unbiased variance).</summary>
            public float Scale; /// <inheritdoc/>
            public readonly float Apply(float a, float b) => (1 - Momentum) * a + Momentum * Scale * b; }

        /// <summary>alpha · a + b (BLAS axpy with x = a, y = b).</summary>
        public struct Axpy : IBinaryOp { /// <summary>Scale of the first operand.</summary>
            public float Alpha; /// <inheritdoc/>
            public readonly float Apply(float a, float b) => Alpha * a + b; }
    }

    /// <summary>Lifts a unary operator to the binary kernels: the second operand is never read, so its
    /// load is dead code and the compiler removes it (the PTX of a unary launch has one load per element).</summary>
    public struct UnaryAsBinary<TOp> : IBinaryOp where TOp : struct, IUnaryOp
    {
        /// <summary>The unary operator.</summary>
        public TOp Op;

        /// <inheritdoc/>
        public readonly float Apply(float a, float b) => Op.Apply(a);
    }

    /// <summary>
    /// The elementwise kernel family: two kernels, each generic over its operator (unary operators
    /// ride along through <see cref="UnaryAsBinary{TOp}"/>; fill is the unary <c>Constant</c>, which reads nothing).
    /// <c>Flat</c> serves operands that are contiguous and of equal shape: float4 loads and stores when
    /// all bases are 16-byte aligned, then a scalar tail for the last n mod 4. <c>Strided</c> serves
    /// views and NumPy broadcasting: each operand addressed through a <see cref="Layout6"/>, broadcast
    /// dimensions having stride 0. Both walk the output with a grid-stride loop.
    /// Bytes: 4·n per input read + 4·n written; FLOPs: n per operator application.
    /// </summary>
    public static class ElementwiseKernels
    {
        /// <summary>o[i] = op(a[i], b[i]) over contiguous equal-length views.</summary>
        public static void Flat<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, int vectorized, TOp op)
            where TOp : struct, IBinaryOp
        {
            int n = o.IntLength, tid = Grid.GlobalIndex.X, stride = Grid.DimX * Group.DimX, tail = 0;
            if (vectorized != 0)
            {
                int n4 = n / 4;
                var a4 = a.SubView(0, n4 * 4).Cast<Float4>().AsAligned(16);
                var b4 = b.SubView(0, n4 * 4).Cast<Float4>().AsAligned(16);
                var o4 = o.SubView(0, n4 * 4).Cast<Float4>().AsAligned(16);
                for (int i = tid; i < n4; i += stride)
                {
                    var x = a4[i];
                    var y = b4[i];
                    Float4 r;
                    r.X = op.Apply(x.X, y.X); r.Y = op.Apply(x.Y, y.Y); r.Z = op.Apply(x.Z, y.Z); r.W = op.Apply(x.W, y.W);
                    o4[i] = r;
                }
                tail = n4 * 4;
            }
            for (int i = tail + tid; i < n; i += stride)
                o[i] = op.Apply(a[i], b[i]);
        }

        /// <summary>o[lo(i)] = op(a[la(i)], b[lb(i)]) for any views of one logical shape (broadcast operands have stride 0); n elements.</summary>
        public static void Strided<TOp>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, Layout6 la, Layout6 lb, Layout6 lo, int n, TOp op)
            where TOp : struct, IBinaryOp
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                o[lo.Offset(i)] = op.Apply(a[la.Offset(i)], b[lb.Offset(i)]);
        }

        /// <summary>Launches op over (a) → o; a is read as if broadcast to o's shape.</summary>
        internal static void MapUnary<TOp>(string name, Tensor a, Tensor o, TOp op) where TOp : struct, IUnaryOp
        {
            if (o.Length > 0 && o.Device.IsHostCpu)
            {
                if (o.IsContiguous && a.IsContiguous && (a.Length == o.Length || a.Length == 1))
                {
                    using (o.Device.Profiler.Measure(name))
                        Cpu.HostElementwise.MapContiguous(a, o, op);
                    return;
                }
                var (dims, st) = Coalesced(name, a, a, o);
                using (o.Device.Profiler.Measure(name))
                    Cpu.HostElementwise.MapUnary(name, a, o, dims, st, op);
                return;
            }
            MapBinary(name, a, a, o, new UnaryAsBinary<TOp> { Op = op });
        }

        /// <summary>o's shape with a and b broadcast to it, dimensions merged where all three allow: (dims, strides [o, a, b]).</summary>
        private static (int[] Dims, int[][] Strides) Coalesced(string name, Tensor a, Tensor b, Tensor o)
        {
            var shape = o.ShapeArray();
            var sa = ShapeUtil.BroadcastStrides(name, "a", a.ShapeArray(), a.Strides.ToArray(), shape);
            var sb = ShapeUtil.BroadcastStrides(name, "b", b.ShapeArray(), b.Strides.ToArray(), shape);
            return ShapeUtil.Coalesce(shape, o.Strides.ToArray(), sa, sb);
        }

        /// <summary>Launches op over (a, b) → o; a and b are read as if broadcast to o's shape.</summary>
        internal static void MapBinary<TOp>(string name, Tensor a, Tensor b, Tensor o, TOp op) where TOp : struct, IBinaryOp
        {
            if (o.Length == 0)
                return;
            var device = o.Device;
            if (device.IsHostCpu && o.IsContiguous && a.IsContiguous && b.IsContiguous && (a.Length == o.Length || a.Length == 1)
                && (b.Length == o.Length || b.Length == 1))
            {
                // Same row-major order as o (a shape broadcast to o's with as many elements differs only by leading 1s), or a
                // single element: no broadcasting analysis needed.
                using (device.Profiler.Measure(name))
                    Cpu.HostElementwise.MapContiguous(a, b, o, op);
                return;
            }
            var (dims, st) = Coalesced(name, a, b, o);
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    Cpu.HostElementwise.MapBinary(name, a, b, o, dims, st, op);
                return;
            }
            int group = LaunchShapes.ElementwiseGroup(device);
            bool flat = dims.Length == 0 || (dims.Length == 1 && st.All(s => s[0] == 1));
            if (flat)
            {
                int vec = a.IsAligned(16) && b.IsAligned(16) && o.IsAligned(16) ? 1 : 0;
                device.Launch(name, Flat<TOp>, LaunchShapes.Linear(device, (o.Length + 3) / 4, group),
                    a.StridedView, b.StridedView, o.StridedView, vec, op);
                return;
            }
            device.Launch(name, Strided<TOp>, LaunchShapes.Linear(device, o.Length, group),
                a.StridedView, b.StridedView, o.StridedView, Layout6.Create(name, dims, st[1]), Layout6.Create(name, dims, st[2]),
                Layout6.Create(name, dims, st[0]), o.Length, op);
        }
    }
}

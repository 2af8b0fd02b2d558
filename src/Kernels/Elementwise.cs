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

        /// <summary>The storage a view touches, starting at its first element (strided kernels index from there).</summary>
        internal static ArrayView<float> Span(Tensor t) => t.StridedView;

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
            var device = Validate.DeviceOf(name, "o", o);
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
                Span(a), Span(b), Span(o), Layout6.Create(name, dims, st[1]), Layout6.Create(name, dims, st[2]),
                Layout6.Create(name, dims, st[0]), o.Length, op);
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>The GpuNet operations. Each validates its arguments (typed errors, nothing launched on bad
    /// input), allocates its output from the pool unless one is given, and launches the kernel.</summary>
    public static partial class Ops
    {
        /// <summary>Sets every element of <paramref name="tensor"/> (any view) to <paramref name="value"/>. Kernel <c>fill</c>.</summary>
        public static void Fill(Tensor tensor, float value)
        {
            Validate.Input("fill", "tensor", tensor);
            // Filling a leaf (initializing a parameter) is fine; overwriting a computed tensor would leave its recorded graph lying.
            if (Autograd.IsEnabled && !tensor.IsLeaf)
                throw new NoGradientException("fill", "overwriting a tensor computed by a recorded op is not recorded; fill a new tensor, or under Autograd.NoGrad()");
            ElementwiseKernels.MapUnary("fill", tensor, tensor, new ElementwiseOps.Constant { Value = value });
        }

        /// <summary>A new tensor of <paramref name="shape"/> filled with <paramref name="value"/>.</summary>
        public static Tensor Full(Device device, float value, params int[] shape)
        {
            var t = Tensor.Empty(device, shape);
            Fill(t, value);
            return t;
        }

        /// <summary>
        /// Copies <paramref name="source"/> (any view, broadcast to the destination's shape) into
        /// <paramref name="destination"/> (any view). Kernel <c>copy_strided</c>.
        /// </summary>
        public static void Copy(Tensor source, Tensor destination)
        {
            var device = Validate.DeviceOf("copy", "destination", destination);
            Validate.Input("copy_strided", "destination", destination, device);
            Validate.Input("copy_strided", "source", source, device);
            if (Autograd.IsEnabled && (source.RequiresGrad || !destination.IsLeaf))
                throw new NoGradientException("copy_strided", "a copy into an existing tensor is not recorded, so the gradient would stop here; build a new tensor (Contiguous, Concat) while training, or copy under Autograd.NoGrad()");
            ElementwiseKernels.MapUnary("copy_strided", source, destination, new ElementwiseOps.Identity());
        }

        /// <summary>
        /// A contiguous tensor with the same elements: a new view of the same memory when the tensor
        /// is already contiguous, otherwise a copy (kernel <c>copy_strided</c>). Dispose it either way.
        /// </summary>
        public static Tensor Contiguous(this Tensor tensor)
        {
            Validate.Input("contiguous", "tensor", tensor);
            if (tensor.IsContiguous)
                return tensor.Reshape(tensor.ShapeArray());
            var result = Tensor.Empty(tensor.Device, tensor.ShapeArray());
            ElementwiseKernels.MapUnary("copy_strided", tensor, result, new ElementwiseOps.Identity());
            RecordCopy("contiguous", tensor, result);
            return result;
        }

        /// <summary>a + b with NumPy broadcasting. Kernel <c>add</c>.</summary>
        public static Tensor Add(Tensor a, Tensor b, Tensor? output = null)
        {
            var o = Binary("add", a, b, output, new ElementwiseOps.Add());
            if (Autograd.ShouldRecord(a, b))
            {
                int[] sa = a.ShapeArray(), sb = b.ShapeArray();
                Autograd.Record("add", o, new[] { a, b }, (g, needs) => new[]
                {
                    needs[0] ? GradientTo(g, sa) : null,
                    needs[1] ? GradientTo(g, sb) : null,
                });
            }
            return o;
        }

        /// <summary>a − b with NumPy broadcasting. Kernel <c>sub</c>.</summary>
        public static Tensor Sub(Tensor a, Tensor b, Tensor? output = null)
        {
            var o = Binary("sub", a, b, output, new ElementwiseOps.Sub());
            if (Autograd.ShouldRecord(a, b))
            {
                int[] sa = a.ShapeArray(), sb = b.ShapeArray();
                Autograd.Record("sub", o, new[] { a, b }, (g, needs) => new[]
                {
                    needs[0] ? GradientTo(g, sa) : null,
                    needs[1] ? Negated(GradientTo(g, sb)) : null,
                });
            }
            return o;
        }

        /// <summary>a · b (elementwise) with NumPy broadcasting. Kernel <c>mul</c>.</summary>
        public static Tensor Mul(Tensor a, Tensor b, Tensor? output = null)
        {
            var o = Binary("mul", a, b, output, new ElementwiseOps.Mul());
            if (Autograd.ShouldRecord(a, b))
            {
                bool needA = a.RequiresGrad, needB = b.RequiresGrad;
                var savedA = needB ? Autograd.Save(a) : null;
                var savedB = needA ? Autograd.Save(b) : null;
                int[] sa = a.ShapeArray(), sb = b.ShapeArray();
                Autograd.Record("mul", o, new[] { a, b }, (g, needs) => new[]
                {
                    needs[0] ? ReducedTo(Binary("mul", g, savedB!, null, new ElementwiseOps.Mul()), sa) : null,
                    needs[1] ? ReducedTo(Binary("mul", g, savedA!, null, new ElementwiseOps.Mul()), sb) : null,
                }, new[] { savedA, savedB }.OfType<Tensor>().ToArray());
            }
            return o;
        }

        /// <summary>a / b with NumPy broadcasting. Kernel <c>div</c>.</summary>
        public static Tensor Div(Tensor a, Tensor b, Tensor? output = null)
        {
            var o = Binary("div", a, b, output, new ElementwiseOps.Div());
            if (Autograd.ShouldRecord(a, b))
            {
                // ∂/∂a = g / b, ∂/∂b = −g·a/b² = −(g/b)·o: both from g/b, with o saved instead of a.
                var savedB = Autograd.Save(b);
                var savedO = b.RequiresGrad ? Autograd.Save(o) : null;
                int[] sa = a.ShapeArray(), sb = b.ShapeArray();
                Autograd.Record("div", o, new[] { a, b }, (g, needs) =>
                {
                    using var gOverB = Binary("div", g, savedB, null, new ElementwiseOps.Div());
                    return new[]
                    {
                        needs[0] ? ReducedTo(Autograd.Save(gOverB), sa) : null,
                        needs[1] ? Negated(ReducedTo(Binary("mul", gOverB, savedO!, null, new ElementwiseOps.Mul()), sb)) : null,
                    };
                }, new[] { savedB, savedO }.OfType<Tensor>().ToArray());
            }
            return o;
        }

        /// <summary>
        /// <paramref name="x"/> summed over the dimensions that broadcasting added to or stretched in <paramref name="shape"/>
        /// (the gradient of a broadcast operand): a new tensor of <paramref name="shape"/>. Kernels <c>reduce_sum</c> per reduced axis.
        /// </summary>
        /// <exception cref="ShapeMismatchException"><paramref name="shape"/> does not broadcast to x's shape.</exception>
        public static Tensor SumToShape(Tensor x, int[] shape)
        {
            const string op = "sum_to_shape";
            Validate.Input(op, "x", x);
            Validate.NotNull(op, "shape", shape);
            var xs = x.ShapeArray();
            if (shape.Length > xs.Length || !ShapeUtil.BroadcastShapes(op, shape, xs).SequenceEqual(xs))
                throw new ShapeMismatchException(op, "shape", $"a shape that broadcasts to {GpuNetException.FormatShape(xs)}", GpuNetException.FormatShape(shape));
            Tensor current = x;
            for (int lead = xs.Length - shape.Length; lead > 0; lead--)
                current = Replace(current, x, Sum(current, 0));
            for (int i = 0; i < shape.Length; i++)
                if (shape[i] == 1 && current.Size(i) != 1)
                    current = Replace(current, x, Sum(current, i, keepDim: true));
            return ReferenceEquals(current, x) ? CopyOf(x) : current;

            static Tensor Replace(Tensor old, Tensor? keep, Tensor next)
            {
                if (!ReferenceEquals(old, keep))
                    old.Dispose();
                return next;
            }
        }

        /// <summary>A new contiguous copy of any view (kernel <c>copy_strided</c>).</summary>
        internal static Tensor CopyOf(Tensor t)
        {
            var copy = Tensor.Empty(t.Device, t.ShapeArray());
            Copy(t, copy);
            return copy;
        }

        /// <summary>The gradient for an operand of <paramref name="shape"/>: g itself (a handle on it) when the shapes match, else summed to the shape.</summary>
        private static Tensor GradientTo(Tensor g, int[] shape) => g.Shape.SequenceEqual(shape) ? Autograd.Save(g) : SumToShape(g, shape);

        /// <summary>−t, consuming t.</summary>
        private static Tensor Negated(Tensor t)
        {
            using (t)
                return Unary("neg", t, null, new Activation.Scale { Factor = -1f });
        }

        /// <summary>alpha · x + y, x broadcast to y's shape; a new tensor (or <paramref name="output"/>). Kernel <c>axpy</c>.</summary>
        public static Tensor Axpy(float alpha, Tensor x, Tensor y, Tensor? output = null)
        {
            var device = Validate.DeviceOf("axpy", "y", y);
            Validate.Input("axpy", "y", y, device);
            Validate.Input("axpy", "x", x, device);
            if (output is not null && ReferenceEquals(output, y) && Autograd.ShouldRecord(x, y))
                throw new NoGradientException("axpy", "an in-place axpy (y ← alpha·x + y) overwrites y, which the gradient needs; use a new output while recording");
            var o = Validate.OutputOrNew("axpy", output, device, y.ShapeArray(), requireContiguous: false);
            ElementwiseKernels.MapBinary("axpy", x, y, o, new ElementwiseOps.Axpy { Alpha = alpha });
            if (Autograd.ShouldRecord(x, y))
            {
                int[] sx = x.ShapeArray(), sy = y.ShapeArray();
                Autograd.Record("axpy", o, new[] { x, y }, (g, needs) => new[]
                {
                    needs[0] ? ReducedTo(Unary("axpy_backward", g, null, new Activation.Scale { Factor = alpha }), sx) : null,
                    needs[1] ? Autograd.Save(g) : null,
                });
            }
            return o;
        }

        /// <summary>Records <paramref name="output"/> as a copy of <paramref name="source"/> (same shape): the gradient passes through unchanged.</summary>
        internal static void RecordCopy(string op, Tensor source, Tensor output)
        {
            if (Autograd.ShouldRecord(source))
                Autograd.Record(op, output, new[] { source }, (g, _) => new[] { Autograd.Save(g) });
        }

        /// <summary>y ← alpha · x + y in place, x broadcast to y's shape. Kernel <c>axpy</c>.</summary>
        public static void AxpyInPlace(float alpha, Tensor x, Tensor y) => Axpy(alpha, x, y, y);

        /// <summary>Applies a binary operator with broadcasting: the output has the broadcast shape of a and b.</summary>
        public static Tensor Binary<TOp>(string name, Tensor a, Tensor b, Tensor? output, TOp op) where TOp : struct, IBinaryOp
        {
            var device = Validate.DeviceOf(name, "a", a);
            Validate.Input(name, "a", a, device);
            Validate.Input(name, "b", b, device);
            var shape = ShapeUtil.BroadcastShapes(name, a.ShapeArray(), b.ShapeArray());
            var o = Validate.OutputOrNew(name, output, device, shape, requireContiguous: false);
            ElementwiseKernels.MapBinary(name, a, b, o, op);
            return o;
        }

        /// <summary>Applies a unary operator elementwise: the output has the input's shape.</summary>
        public static Tensor Unary<TOp>(string name, Tensor x, Tensor? output, TOp op) where TOp : struct, IUnaryOp
        {
            var device = Validate.DeviceOf(name, "x", x);
            Validate.Input(name, "x", x, device);
            var o = Validate.OutputOrNew(name, output, device, x.ShapeArray(), requireContiguous: false);
            ElementwiseKernels.MapUnary(name, x, o, op);
            return o;
        }
    }
}

using GpuNet.Kernels;

namespace GpuNet;

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
        var device = Validate.DeviceOf("contiguous", "tensor", tensor);
        if (tensor.DType != DType.Float32)
        {
            // Integer data (labels, ids): the same copy moves each element's four bytes unchanged; nothing to record.
            if (tensor.IsContiguous)
                return tensor.Reshape(tensor.ShapeArray());
            var copy = Tensor.Empty(device, tensor.DType, tensor.ShapeArray());
            ElementwiseKernels.MapUnary("copy_strided", tensor, copy, new ElementwiseOps.Identity());
            return copy;
        }
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
        var device = Validate.Input("axpy", "y", y);
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
        var device = Validate.Input(name, "a", a);
        Validate.Input(name, "b", b, device);
        var shape = ShapeUtil.BroadcastShapes(name, a.ShapeArray(), b.ShapeArray());
        var o = Validate.OutputOrNew(name, output, device, shape, requireContiguous: false);
        ElementwiseKernels.MapBinary(name, a, b, o, op);
        return o;
    }

    /// <summary>Applies a unary operator elementwise: the output has the input's shape.</summary>
    public static Tensor Unary<TOp>(string name, Tensor x, Tensor? output, TOp op) where TOp : struct, IUnaryOp
    {
        var device = Validate.Input(name, "x", x);
        var o = Validate.OutputOrNew(name, output, device, x.ShapeArray(), requireContiguous: false);
        ElementwiseKernels.MapUnary(name, x, o, op);
        return o;
    }
}

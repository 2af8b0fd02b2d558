namespace GpuNet;

/// <summary>
/// The view ops of a <see cref="Tensor"/>: new shapes, strides and offsets over the same memory (no copy), each recording
/// on the tape how its gradient maps back to the source's shape. They live in the op layer because that backward needs
/// kernels (a zero fill and a strided copy for a sub-view, a reduction for a broadcast); the runtime only checks that a
/// view stays inside its storage.
/// </summary>
public static class TensorViews
{
    /// <summary>A view with a new shape over the same elements; one dimension may be -1 (inferred). A strided view takes the
    /// new shape where its strides allow it without moving elements (PyTorch's <c>view</c>: splitting or merging dimensions
    /// that are contiguous among themselves, as a slice of the last axis split into heads).</summary>
    /// <exception cref="ShapeMismatchException">The element count differs, or the tensor is a strided view whose elements
    /// cannot take the shape in place (call <see cref="Ops.Contiguous"/> first).</exception>
    public static Tensor Reshape(this Tensor tensor, params int[] shape)
    {
        Validate.DeviceOf("reshape", "tensor", tensor);
        var resolved = ShapeUtil.ResolveReshape("reshape", shape, tensor.Length);
        var strides = tensor.IsContiguous ? ShapeUtil.ContiguousStrides(resolved) : ShapeUtil.ViewStrides(tensor.ShapeArray(), tensor.Strides.ToArray(), resolved)
            ?? throw new ShapeMismatchException("reshape", "tensor", $"a tensor whose elements can take shape {GpuNetException.FormatShape(resolved)} in place",
                $"a strided view {tensor.Describe()}; call Contiguous() first");
        return View(tensor, "reshape", resolved, strides, tensor.Offset, tensor, static source =>
        {
            var sourceShape = source.ShapeArray();
            return g =>
            {
                using var contiguous = g.IsContiguous ? null : Ops.CopyOf(g);
                return (contiguous ?? g).Reshape(sourceShape);
            };
        });
    }

    /// <summary>A view of <paramref name="length"/> entries of dimension <paramref name="dim"/> starting at <paramref name="start"/>.</summary>
    public static Tensor Slice(this Tensor tensor, int dim, int start, int length)
    {
        Validate.DeviceOf("slice", "tensor", tensor);
        int d = ShapeUtil.NormalizeAxis("slice", dim, tensor.Rank);
        if (start < 0 || length < 0 || (long)start + length > tensor.Shape[d])
            throw new ShapeMismatchException("slice", "range", $"0 ≤ start ≤ start+length ≤ {tensor.Shape[d]} on dimension {d}", $"start {start}, length {length}");
        var shape = tensor.ShapeArray();
        shape[d] = length;
        return View(tensor, "slice", shape, tensor.Strides.ToArray(), tensor.Offset + (long)start * tensor.Strides[d], (tensor, d, start, length),
            static a => ScatterBack(a.tensor, full => full.Slice(a.d, a.start, a.length)));
    }

    /// <summary>PyTorch's <c>narrow</c>: <see cref="Slice"/> whose <paramref name="start"/> may count from the end
    /// (−size ≤ start ≤ size).</summary>
    public static Tensor Narrow(this Tensor tensor, int dim, int start, int length)
    {
        Validate.DeviceOf("narrow", "tensor", tensor);
        int d = ShapeUtil.NormalizeAxis("narrow", dim, tensor.Rank);
        int size = tensor.Shape[d];
        long from = start < 0 ? (long)start + size : start;
        if (from < 0 || length < 0 || from + length > size)
            throw new ShapeMismatchException("narrow", "range", $"-{size} ≤ start, 0 ≤ length, start+length ≤ {size} on dimension {d}", $"start {start}, length {length}");
        return tensor.Slice(d, (int)from, length);
    }

    /// <summary>A view of index <paramref name="index"/> along <paramref name="dim"/>, that dimension removed (PyTorch's <c>select</c>).</summary>
    public static Tensor Select(this Tensor tensor, int dim, int index)
    {
        Validate.DeviceOf("select", "tensor", tensor);
        int d = ShapeUtil.NormalizeAxis("select", dim, tensor.Rank);
        if (index < 0 || index >= tensor.Shape[d])
            throw new ShapeMismatchException("select", "index", $"an index in [0, {tensor.Shape[d]}) on dimension {d}", index.ToString());
        var shape = new int[tensor.Rank - 1];
        var strides = new int[tensor.Rank - 1];
        for (int i = 0, j = 0; i < tensor.Rank; i++)
            if (i != d)
                (shape[j], strides[j++]) = (tensor.Shape[i], tensor.Strides[i]);
        return View(tensor, "select", shape, strides, tensor.Offset + (long)index * tensor.Strides[d], (tensor, d, index),
            static a => ScatterBack(a.tensor, full => full.Select(a.d, a.index)));
    }

    /// <summary>A view with the dimensions reordered: result dimension i is source dimension <paramref name="order"/>[i].</summary>
    public static Tensor Permute(this Tensor tensor, params int[] order)
    {
        Validate.DeviceOf("permute", "tensor", tensor);
        int rank = tensor.Rank;
        if (Validate.NotNull("permute", "order", order).Length != rank)
            throw new ShapeMismatchException("permute", "order", $"{rank} axes", $"{order.Length} axes");
        var seen = new bool[rank];
        var shape = new int[rank];
        var strides = new int[rank];
        var inverse = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int a = ShapeUtil.NormalizeAxis("permute", order[i], rank);
            if (seen[a])
                throw new ShapeMismatchException("permute", "order", "a permutation of the axes", "[" + string.Join(", ", order) + "]");
            seen[a] = true;
            shape[i] = tensor.Shape[a];
            strides[i] = tensor.Strides[a];
            inverse[a] = i;
        }
        return View(tensor, "permute", shape, strides, tensor.Offset, inverse, static inverse => g => g.Permute(inverse));
    }

    /// <summary>A view with dimensions <paramref name="dim0"/> and <paramref name="dim1"/> swapped.</summary>
    public static Tensor Transpose(this Tensor tensor, int dim0 = -2, int dim1 = -1)
    {
        Validate.DeviceOf("transpose", "tensor", tensor);
        var order = Enumerable.Range(0, tensor.Rank).ToArray();
        int a = ShapeUtil.NormalizeAxis("transpose", dim0, tensor.Rank), b = ShapeUtil.NormalizeAxis("transpose", dim1, tensor.Rank);
        (order[a], order[b]) = (order[b], order[a]);
        return tensor.Permute(order);
    }

    /// <summary>A broadcast view: dimensions of size 1 grow to <paramref name="shape"/> with stride 0 (NumPy rules; new leading dimensions allowed).</summary>
    public static Tensor Expand(this Tensor tensor, params int[] shape)
    {
        Validate.DeviceOf("expand", "tensor", tensor);
        var strides = ShapeUtil.BroadcastStrides("expand", "tensor", tensor.ShapeArray(), tensor.Strides.ToArray(), shape);
        return View(tensor, "expand", shape.AsSpan().ToArray(), strides, tensor.Offset, tensor, static source =>
        {
            var sourceShape = source.ShapeArray();
            return g => Ops.SumToShape(g, sourceShape);
        });
    }

    /// <summary>
    /// A view; when the tape records, its backward — built by <paramref name="backward"/> from <paramref name="state"/> —
    /// maps the view's gradient to the source's shape. The backward (and the closure and shape copies it captures) is built
    /// only when the tape records: the view ops built it on every call, a tenth of a TransformerEncoder run's allocations.
    /// </summary>
    private static Tensor View<TState>(Tensor source, string op, int[] shape, int[] strides, long offset, TState state,
        Func<TState, Func<Tensor, Tensor>> backward)
    {
        var view = source.View(op, shape, strides, offset);
        if (Autograd.ShouldRecord(source))
        {
            var map = backward(state);
            Autograd.Record(op, view, new[] { source }, (g, _) => new[] { map(g) });
        }
        return view;
    }

    /// <summary>The backward of a sub-view of <paramref name="source"/> (<see cref="Scatter"/>).</summary>
    private static Func<Tensor, Tensor> ScatterBack(Tensor source, Func<Tensor, Tensor> part)
    {
        var sourceShape = source.ShapeArray();
        return g => Scatter(g, sourceShape, part);
    }

    /// <summary>The gradient of a sub-view: zeros of the source shape with <paramref name="g"/> copied into the part the view saw.</summary>
    private static Tensor Scatter(Tensor g, int[] sourceShape, Func<Tensor, Tensor> part)
    {
        var full = Ops.Full(g.Device, 0f, sourceShape);
        using var target = part(full);
        Ops.Copy(g, target);
        return full;
    }
}

/// <summary>The entry point of the backward pass on a <see cref="Tensor"/>.</summary>
public static class TensorAutograd
{
    /// <summary>
    /// Backpropagates from <paramref name="tensor"/>: every leaf that requires a gradient and that it depends on gets
    /// ∂tensor/∂leaf (times <paramref name="gradOutput"/>) added to its <see cref="Tensor.Grad"/>. A scalar needs no
    /// <paramref name="gradOutput"/>; any other shape does. The graph's saved tensors are freed as the pass goes,
    /// unless <paramref name="retainGraph"/>.
    /// </summary>
    /// <exception cref="NoGradientException">Nothing requires a gradient, or the graph holds an op without a gradient.</exception>
    /// <exception cref="GraphFreedException">An earlier backward already freed this graph.</exception>
    /// <exception cref="ShapeMismatchException">gradOutput's shape differs from the tensor's.</exception>
    public static void Backward(this Tensor tensor, Tensor? gradOutput = null, bool retainGraph = false) =>
        Autograd.Backward(Validate.NotNull("backward", "tensor", tensor), gradOutput, retainGraph);
}

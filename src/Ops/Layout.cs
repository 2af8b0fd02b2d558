using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>A contiguous copy of <paramref name="x"/> with two dimensions swapped. Kernel <c>transpose</c>.</summary>
    public static Tensor Transpose(Tensor x, int dim0 = -2, int dim1 = -1)
    {
        Validate.Input("transpose", "x", x);
        using var view = x.Transpose(dim0, dim1);
        var o = Tensor.Empty(x.Device, view.ShapeArray());
        LayoutKernels.CopyPermuted("transpose", view, o);
        RecordCopy("transpose", view, o);
        return o;
    }

    /// <summary>A contiguous copy of <paramref name="x"/> with its dimensions reordered (result dimension i is source dimension order[i]). Kernel <c>permute</c>.</summary>
    public static Tensor Permute(Tensor x, params int[] order)
    {
        Validate.Input("permute", "x", x);
        using var view = x.Permute(order);
        var o = Tensor.Empty(x.Device, view.ShapeArray());
        LayoutKernels.CopyPermuted("permute", view, o);
        RecordCopy("permute", view, o);
        return o;
    }

    /// <summary>
    /// Constant padding (F.pad's constant mode): <paramref name="padding"/>[i] = (before, after) pads dimension
    /// rank − padding.Length + i — the trailing dimensions, in their natural order (F.pad lists them from the last one) — with
    /// <paramref name="value"/>. Kernels <c>fill</c> and <c>copy_strided</c>; backward: the gradient's interior, copied.
    /// </summary>
    /// <exception cref="ShapeMismatchException">More pairs than dimensions, or a negative pad.</exception>
    public static Tensor Pad(Tensor x, (int Before, int After)[] padding, float value = 0f)
    {
        const string op = "pad";
        var device = Validate.Input(op, "x", x);
        Validate.NotNull(op, "padding", padding);
        if (padding.Length > x.Rank)
            throw new ShapeMismatchException(op, "padding", $"at most {x.Rank} (before, after) pairs for a rank-{x.Rank} tensor", $"{padding.Length} pairs");
        int first = x.Rank - padding.Length;
        var shape = x.ShapeArray();
        for (int i = 0; i < padding.Length; i++)
        {
            if (padding[i].Before < 0 || padding[i].After < 0)
                throw new ShapeMismatchException(op, "padding", "pads ≥ 0", $"({padding[i].Before}, {padding[i].After}) on dimension {first + i}");
            shape[first + i] = (int)Math.Min(int.MaxValue, (long)shape[first + i] + padding[i].Before + padding[i].After);
        }
        var output = Full(device, value, shape);
        using (Autograd.NoGrad())
        using (var interior = Interior(output, x.ShapeArray(), first, padding))
            if (interior.Length > 0)
                Copy(x, interior);
        if (Autograd.ShouldRecord(x))
        {
            var inner = x.ShapeArray();
            Autograd.Record(op, output, new[] { x }, (g, _) =>
            {
                using var view = Interior(g, inner, first, padding);
                return new[] { CopyOf(view) };
            });
        }
        return output;
    }

    /// <summary>The view of <paramref name="padded"/> that holds the unpadded tensor of <paramref name="shape"/>.</summary>
    private static Tensor Interior(Tensor padded, int[] shape, int first, (int Before, int After)[] padding)
    {
        var view = padded.Slice(0, 0, padded.Size(0));
        for (int i = 0; i < padding.Length; i++)
        {
            var next = view.Slice(first + i, padding[i].Before, shape[first + i]);
            view.Dispose();
            view = next;
        }
        return view;
    }

    /// <summary>Joins tensors along <paramref name="axis"/>; all other dimensions must match. Kernel <c>concat</c>.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int axis)
    {
        if (Validate.NotNull("concat", "tensors", tensors).Count == 0)
            throw new ShapeMismatchException("concat", "tensors", "at least one tensor", "an empty list");
        var device = tensors[0].Device;
        for (int i = 0; i < tensors.Count; i++)
            Validate.Input("concat", $"tensors[{i}]", tensors[i], device);
        var first = tensors[0].ShapeArray();
        int a = ShapeUtil.NormalizeAxis("concat", axis, first.Length);
        int total = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var shape = tensors[i].ShapeArray();
            bool fits = shape.Length == first.Length && shape.Select((d, j) => j == a || d == first[j]).All(ok => ok);
            if (!fits)
                throw new ShapeMismatchException("concat", $"tensors[{i}]",
                    $"rank {first.Length} and the dimensions of tensors[0] {GpuNetException.FormatShape(first)} except axis {a}", GpuNetException.FormatShape(shape));
            total += shape[a];
        }
        var outShape = (int[])first.Clone();
        outShape[a] = total;
        var o = Tensor.Empty(device, outShape);
        var sizes = new int[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
            sizes[i] = tensors[i].Size(a);
        if (o.Length > 0 && !LayoutKernels.TryConcatContiguous(tensors, o, a))
            for (int i = 0, at = 0; i < tensors.Count; at += sizes[i], i++)
            {
                using var slot = o.Slice(a, at, sizes[i]);
                ElementwiseKernels.MapUnary("concat", tensors[i], slot, new ElementwiseOps.Identity());
            }
        if (Autograd.ShouldRecord(tensors.ToArray()))
            Autograd.Record("concat", o, tensors.ToArray(), (g, needs) =>
            {
                var grads = new Tensor?[sizes.Length];
                for (int i = 0, start = 0; i < sizes.Length; start += sizes[i], i++)
                    grads[i] = needs[i] ? g.Slice(a, start, sizes[i]) : null;
                return grads;
            });
        return o;
    }

    /// <summary>Cuts <paramref name="x"/> along <paramref name="axis"/> into contiguous pieces of the given sizes (which must add up to the axis). Kernel <c>split</c>.</summary>
    public static Tensor[] Split(Tensor x, IReadOnlyList<int> sizes, int axis)
    {
        Validate.Input("split", "x", x);
        int a = ShapeUtil.NormalizeAxis("split", axis, x.Rank);
        if (sizes.Any(s => s < 0) || sizes.Sum() != x.Size(a))
            throw new ShapeMismatchException("split", "sizes", $"non-negative sizes adding up to {x.Size(a)} (axis {a} of {GpuNetException.FormatShape(x.ShapeArray())})",
                "[" + string.Join(", ", sizes) + "]");
        var pieces = new Tensor[sizes.Count];
        int at = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            using var view = x.Slice(a, at, sizes[i]);
            pieces[i] = Tensor.Empty(x.Device, view.ShapeArray());
            ElementwiseKernels.MapUnary("split", view, pieces[i], new ElementwiseOps.Identity());
            RecordCopy("split", view, pieces[i]);
            at += sizes[i];
        }
        return pieces;
    }

    /// <summary>Cuts <paramref name="x"/> along <paramref name="axis"/> into <paramref name="sections"/> equal contiguous pieces. Kernel <c>split</c>.</summary>
    public static Tensor[] Split(Tensor x, int sections, int axis)
    {
        Validate.Input("split", "x", x);
        int a = ShapeUtil.NormalizeAxis("split", axis, x.Rank);
        if (sections <= 0 || x.Size(a) % sections != 0)
            throw new ShapeMismatchException("split", "sections", $"a positive divisor of {x.Size(a)} (axis {a})", sections.ToString());
        return Split(x, Enumerable.Repeat(x.Size(a) / sections, sections).ToArray(), axis);
    }
}

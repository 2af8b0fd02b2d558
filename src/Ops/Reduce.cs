using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>Sum over the last axis: [..., n] → [...]. Kernel <c>sum_last_axis</c>.</summary>
    public static Tensor SumLastAxis(Tensor x, Tensor? output = null) => Summed("sum_last_axis", x, -1, false, output, mean: false);

    /// <summary>Σ over <paramref name="axis"/>. Kernel <c>reduce_sum</c>.</summary>
    public static Tensor Sum(Tensor x, int axis, bool keepDim = false, Tensor? output = null) => Summed("reduce_sum", x, axis, keepDim, output, mean: false);

    /// <summary>Mean over <paramref name="axis"/>. Kernel <c>reduce_mean</c>.</summary>
    public static Tensor Mean(Tensor x, int axis, bool keepDim = false, Tensor? output = null) => Summed("reduce_mean", x, axis, keepDim, output, mean: true);

    /// <summary>Σ of every element: a tensor of shape [1]. Kernel <c>reduce_sum</c> over the flattened tensor.</summary>
    public static Tensor SumAll(Tensor x) => AllElements("sum_all", x, mean: false);

    /// <summary>Mean of every element: a tensor of shape [1] (NaN for an empty tensor). Kernel <c>reduce_mean</c> over the flattened tensor.</summary>
    public static Tensor MeanAll(Tensor x) => AllElements("mean_all", x, mean: true);

    private static Tensor AllElements(string name, Tensor x, bool mean)
    {
        Validate.Input(name, "x", x);
        using var flat = x.Contiguous();
        using var row = flat.Reshape(1, x.Length);
        return Summed(mean ? "reduce_mean" : "reduce_sum", row, 1, false, null, mean);
    }

    /// <summary>Maximum over <paramref name="axis"/>. Kernel <c>reduce_max</c>.</summary>
    public static Tensor Max(Tensor x, int axis, bool keepDim = false, Tensor? output = null)
    {
        var o = Reduce<float, ReduceOps.Max>("reduce_max", x, axis, keepDim, output, default, requireElements: true);
        if (Autograd.ShouldRecord(x))
        {
            Tensor index;
            using (Autograd.NoGrad())
            using (var argmax = ArgMax(x, axis, keepDim))
                index = Autograd.Save(argmax);
            RecordExtremum("reduce_max", x, axis, o, index);
        }
        return o;
    }

    /// <summary>The backward of a maximum or minimum over an axis: the output gradient routed to the element the saved
    /// <paramref name="index"/> names in each line (kernel <c>reduce_max_backward</c>), zeros elsewhere.</summary>
    private static void RecordExtremum(string op, Tensor x, int axis, Tensor output, Tensor index)
    {
        var shape = x.ShapeArray();
        int a = ShapeUtil.NormalizeAxis(op, axis, x.Rank), reduced = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1));
        Autograd.Record(op, output, new[] { x }, (g, _) =>
        {
            var dx = Tensor.Empty(g.Device, shape);
            if (dx.Length == 0)
                return new[] { dx };
            using var gc = g.Contiguous();
            var (gv, iv, dv, total) = (gc.ContiguousView, index.ContiguousView, dx.ContiguousView, dx.Length);
            ReduceKernels.RunMaxBackward(g.Device, gv, iv, dv, reduced, inner, total);
            return new[] { dx };
        }, index);
    }

    /// <summary>
    /// Sum or mean over an axis, recording the backward: the output gradient broadcast back over the reduced axis
    /// (scaled by 1/n for the mean) — a stride-0 view, no kernel unless scaled.
    /// </summary>
    private static Tensor Summed(string name, Tensor x, int axis, bool keepDim, Tensor? output, bool mean)
    {
        var o = mean
            ? Reduce<float, ReduceOps.Mean>(name, x, axis, keepDim, output, default)
            : Reduce<float, ReduceOps.Sum>(name, x, axis, keepDim, output, default);
        if (Autograd.ShouldRecord(x))
        {
            var shape = x.ShapeArray();
            int a = ShapeUtil.NormalizeAxis(name, axis, x.Rank), count = shape[a];
            var kept = shape.Select((d, i) => i == a ? 1 : d).ToArray();
            Autograd.Record(name, o, new[] { x }, (g, _) =>
            {
                using var scaled = mean ? Scale(g, 1f / count) : g.Contiguous();
                using var column = scaled.Reshape(kept);
                return new[] { column.Expand(shape) };
            });
        }
        return o;
    }

    /// <summary>Minimum over <paramref name="axis"/>. Kernel <c>reduce_min</c>; backward as the maximum's, through the first
    /// minimum's index (the argmax of −x, which breaks ties to the lower index as argmin does).</summary>
    public static Tensor Min(Tensor x, int axis, bool keepDim = false, Tensor? output = null)
    {
        var o = Reduce<float, ReduceOps.Min>("reduce_min", x, axis, keepDim, output, default, requireElements: true);
        if (Autograd.ShouldRecord(x))
        {
            Tensor index;
            using (Autograd.NoGrad())
            using (var negated = Scale(x, -1f))
            using (var argmin = ArgMax(negated, axis, keepDim))
                index = Autograd.Save(argmin);
            RecordExtremum("reduce_min", x, axis, o, index);
        }
        return o;
    }

    /// <summary>Product over <paramref name="axis"/> (inference: no gradient). Kernel <c>reduce_prod</c>.</summary>
    public static Tensor Prod(Tensor x, int axis, bool keepDim = false, Tensor? output = null) =>
        NoGradient("reduce_prod", Reduce<float, ReduceOps.Prod>("reduce_prod", x, axis, keepDim, output, default), x);

    /// <summary>Index of the maximum over <paramref name="axis"/>, ties to the lower index, as float values (exact below 2²⁴). Kernel <c>argmax</c>.</summary>
    public static Tensor ArgMax(Tensor x, int axis, bool keepDim = false, Tensor? output = null) =>
        Reduce<ValueIndex, ReduceOps.ArgMax>("argmax", x, axis, keepDim, output, default, requireElements: true);

    /// <summary>
    /// Reduces <paramref name="x"/> over <paramref name="axis"/> with <paramref name="op"/>; the axis is
    /// removed, or kept with size 1 when <paramref name="keepDim"/>. Strided inputs are made contiguous first.
    /// <paramref name="requireElements"/>: the reduction has no value over no elements (a maximum, a minimum, an
    /// argmax), so an empty axis is an error, as in PyTorch, instead of the identity (−∞, +∞, −1).
    /// </summary>
    public static Tensor Reduce<TAcc, TOp>(string name, Tensor x, int axis, bool keepDim, Tensor? output, TOp op, bool requireElements = false)
        where TAcc : unmanaged where TOp : struct, IReduceOp<TAcc>
    {
        var device = Validate.Input(name, "x", x);
        if (x.Rank == 0)
            throw new ShapeMismatchException(name, "x", "a tensor of rank ≥ 1", "a scalar");
        int a = ShapeUtil.NormalizeAxis(name, axis, x.Rank);
        var shape = x.ShapeArray();
        if (requireElements && shape[a] == 0)
            throw new ShapeMismatchException(name, "x", $"a non-empty axis {a} (a {name} over no elements has no value)", GpuNetException.FormatShape(shape));
        int outer = (int)ShapeUtil.Product(shape.AsSpan(0, a)), reduced = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1));
        var outShape = keepDim ? shape.Select((d, i) => i == a ? 1 : d).ToArray() : shape.Where((_, i) => i != a).ToArray();
        var o = Validate.OutputOrNew(name, output, device, outShape);
        using var xc = x.Contiguous();
        ReduceKernels.Launch<TAcc, TOp>(name, xc, o, outer, reduced, inner, op);
        return o;
    }
}

using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// A reduction with accumulator <typeparamref name="TAcc"/>: lift each element (with its index along the
    /// reduced axis) into an accumulator, combine associatively, map the total to the float result.
    /// </summary>
    public interface IReduceOp<TAcc> : ICombine<TAcc> where TAcc : unmanaged
    {
        /// <summary>The neutral accumulator.</summary>
        TAcc Identity { get; }

        /// <summary>The accumulator of one element at <paramref name="index"/> along the reduced axis.</summary>
        TAcc Lift(float x, int index);

        /// <summary>The result for <paramref name="count"/> reduced elements.</summary>
        float Finish(TAcc acc, int count);
    }

    /// <summary>A value and where it was found.</summary>
    public struct ValueIndex
    {
        /// <summary>The value.</summary>
        public float Value;

        /// <summary>Its index along the reduced axis (−1: none).</summary>
        public int Index;
    }

    /// <summary>Built-in reductions.</summary>
    public static class ReduceOps
    {
        /// <summary>Σ x.</summary>
        public struct Sum : IReduceOp<float>
        {
            /// <inheritdoc/>
            public readonly float Identity => 0f;
            /// <inheritdoc/>
            public readonly float Lift(float x, int index) => x;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => a + b;
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => acc;
        }

        /// <summary>Σ x / n (NaN for an empty reduction, as PyTorch).</summary>
        public struct Mean : IReduceOp<float>
        {
            /// <inheritdoc/>
            public readonly float Identity => 0f;
            /// <inheritdoc/>
            public readonly float Lift(float x, int index) => x;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => a + b;
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => count == 0 ? float.NaN : acc / count;
        }

        /// <summary>max x (−inf for an empty reduction).</summary>
        public struct Max : IReduceOp<float>
        {
            /// <inheritdoc/>
            public readonly float Identity => float.NegativeInfinity;
            /// <inheritdoc/>
            public readonly float Lift(float x, int index) => x;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => IntrinsicMath.Max(a, b);
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => acc;
        }

        /// <summary>min x (+inf for an empty reduction).</summary>
        public struct Min : IReduceOp<float>
        {
            /// <inheritdoc/>
            public readonly float Identity => float.PositiveInfinity;
            /// <inheritdoc/>
            public readonly float Lift(float x, int index) => x;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => IntrinsicMath.Min(a, b);
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => acc;
        }

        /// <summary>Π x (1 for an empty reduction).</summary>
        public struct Prod : IReduceOp<float>
        {
            /// <inheritdoc/>
            public readonly float Identity => 1f;
            /// <inheritdoc/>
            public readonly float Lift(float x, int index) => x;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => a * b;
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => acc;
        }

        /// <summary>Index of the maximum; ties go to the lower index (as NumPy and PyTorch). Result as a float (exact below 2²⁴).</summary>
        public struct ArgMax : IReduceOp<ValueIndex>
        {
            /// <inheritdoc/>
            public readonly ValueIndex Identity => new() { Value = float.NegativeInfinity, Index = -1 };
            /// <inheritdoc/>
            public readonly ValueIndex Lift(float x, int index) => new() { Value = x, Index = index };
            /// <inheritdoc/>
            public readonly ValueIndex Combine(ValueIndex a, ValueIndex b)
            {
                if (a.Index < 0)
                    return b;
                if (b.Index < 0)
                    return a;
                return b.Value > a.Value || (b.Value == a.Value && b.Index < a.Index) ? b : a;
            }
            /// <inheritdoc/>
            public readonly float Finish(ValueIndex acc, int count) => acc.Index;
        }
    }

    /// <summary>
    /// The reduction kernel family, over a contiguous tensor seen as [outer, R, inner] with the
    /// reduced axis in the middle; generic over the accumulator (a float, or a value-index pair for argmax).
    /// <list type="bullet">
    /// <item><c>Rows</c> (inner = 1, e.g. the last axis): one group per row, grid-stride over rows.
    /// Threads stride across the row (coalesced), each keeps a private partial, then the group
    /// combines partials with warp shuffles and one shared-memory slot per warp.</item>
    /// <item><c>Columns</c> (inner &gt; 1): one thread per output element walks R with stride inner,
    /// so a warp reads inner-adjacent (coalesced) addresses at every step.</item>
    /// </list>
    /// Bytes: 4·outer·R·inner read + 4·outer·inner written; FLOPs: outer·R·inner.
    /// </summary>
    public static class ReduceKernels
    {
        /// <summary>o[row] = finish(reduce(x[row·cols .. row·cols+cols])).</summary>
        public static void Rows<TAcc, TOp>(ArrayView<float> x, ArrayView<float> o, int rows, int cols, TOp op)
            where TAcc : unmanaged
            where TOp : struct, IReduceOp<TAcc>
        {
            var slots = SharedMemory.Allocate<TAcc>(32);
            for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
            {
                var acc = op.Identity;
                int baseIndex = row * cols;
                for (int c = Group.IdxX; c < cols; c += Group.DimX)
                    acc = op.Combine(acc, op.Lift(x[baseIndex + c], c));
                acc = GroupReduce.AllReduce(acc, slots, op);
                if (Group.IdxX == 0)
                    o[row] = op.Finish(acc, cols);
            }
        }

        /// <summary>o[p·inner + j] = finish(reduce over r of x[(p·R + r)·inner + j]).</summary>
        public static void Columns<TAcc, TOp>(ArrayView<float> x, ArrayView<float> o, int outer, int reduced, int inner, TOp op)
            where TAcc : unmanaged
            where TOp : struct, IReduceOp<TAcc>
        {
            int total = outer * inner;
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
            {
                int p = i / inner, j = i - p * inner;
                int at = p * reduced * inner + j;
                var acc = op.Identity;
                for (int r = 0; r < reduced; r++, at += inner)
                    acc = op.Combine(acc, op.Lift(x[at], r));
                o[i] = op.Finish(acc, reduced);
            }
        }

        /// <summary>
        /// The backward of max over an axis: the gradient goes to the element argmax picked (the first maximum, as PyTorch's
        /// max(dim)), zero elsewhere — a grid-stride loop over x's elements, each reading its column's saved index.
        /// </summary>
        public static void MaxBackward(ArrayView<float> g, ArrayView<float> index, ArrayView<float> dx, int reduced, int inner, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                MaxBackwardAt(g, index, dx, reduced, inner, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="MaxBackward"/> (shared with the host loop).</summary>
        public static void MaxBackwardAt(ArrayView<float> g, ArrayView<float> index, ArrayView<float> dx, int reduced, int inner, int i)
        {
            int o = i / (reduced * inner), rest = i - o * reduced * inner, r = rest / inner, c = rest - r * inner;
            int column = o * inner + c;
            dx[i] = (int)index[column] == r ? g[column] : 0f;
        }

        /// <summary>Reduces contiguous <paramref name="x"/> seen as [outer, reduced, inner] into contiguous <paramref name="o"/>.</summary>
        internal static void Launch<TAcc, TOp>(string name, Tensor x, Tensor o, int outer, int reduced, int inner, TOp op)
            where TAcc : unmanaged
            where TOp : struct, IReduceOp<TAcc>
        {
            if (o.Length == 0)
                return;
            var device = Validate.DeviceOf(name, "x", x);
            var input = reduced * outer * inner == 0 ? o.ContiguousView : x.ContiguousView;
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    unsafe
                    {
                        Cpu.HostRows.Reduce<TAcc, TOp>(Cpu.HostMemory.Ptr(input), Cpu.HostMemory.Ptr(o.ContiguousView), outer, reduced, inner, op);
                    }
                return;
            }
            if (inner == 1)
            {
                device.Launch(name, Rows<TAcc, TOp>, LaunchShapes.RowPerGroup(device, outer), input, o.ContiguousView, outer, reduced, op);
                return;
            }
            device.Launch(name, Columns<TAcc, TOp>, LaunchShapes.Linear(device, (long)outer * inner, LaunchShapes.ElementwiseGroup(device)),
                input, o.ContiguousView, outer, reduced, inner, op);
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

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
                var shape = x.ShapeArray();
                int a = ShapeUtil.NormalizeAxis("reduce_max", axis, x.Rank), reduced = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1));
                Tensor index;
                using (Autograd.NoGrad())
                using (var argmax = ArgMax(x, axis, keepDim))
                    index = Autograd.Save(argmax);
                Autograd.Record("reduce_max", o, new[] { x }, (g, _) =>
                {
                    var dx = Tensor.Empty(g.Device, shape);
                    if (dx.Length == 0)
                        return new[] { dx };
                    using var gc = g.Contiguous();
                    var (gv, iv, dv, total) = (gc.ContiguousView, index.ContiguousView, dx.ContiguousView, dx.Length);
                    if (g.Device.IsHostCpu)
                        using (g.Device.Profiler.Measure("reduce_max_backward"))
                            unsafe
                            {
                                Kernels.Cpu.HostRows.MaxBackward(Kernels.Cpu.HostMemory.Ptr(gv), Kernels.Cpu.HostMemory.Ptr(iv), Kernels.Cpu.HostMemory.Ptr(dv), total / (reduced * inner), reduced, inner);
                            }
                    else
                    {
                        g.Device.Launch("reduce_max_backward", ReduceKernels.MaxBackward, LaunchShapes.Linear(g.Device, total, LaunchShapes.ElementwiseGroup(g.Device)),
                            gv, iv, dv, reduced, inner, total);
                    }
                    return new[] { dx };
                }, index);
            }
            return o;
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

        /// <summary>Minimum over <paramref name="axis"/> (inference: no gradient). Kernel <c>reduce_min</c>.</summary>
        public static Tensor Min(Tensor x, int axis, bool keepDim = false, Tensor? output = null) =>
            NoGradient("reduce_min", Reduce<float, ReduceOps.Min>("reduce_min", x, axis, keepDim, output, default, requireElements: true), x);

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
            var device = Validate.DeviceOf(name, "x", x);
            Validate.Input(name, "x", x, device);
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
}

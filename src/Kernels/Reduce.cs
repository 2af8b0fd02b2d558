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
            var device = x.Device;
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

        /// <summary>The maximum's backward (<see cref="MaxBackward"/>): the fast CPU device's host loop, else the kernel.</summary>
        internal static void RunMaxBackward(Device device, ArrayView<float> g, ArrayView<float> index, ArrayView<float> dx, int reduced, int inner, int total)
        {
            const string op = "reduce_max_backward";
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostRows.MaxBackward(Cpu.HostMemory.Ptr(g), Cpu.HostMemory.Ptr(index), Cpu.HostMemory.Ptr(dx), total / (reduced * inner), reduced, inner);
                    }
                return;
            }
            device.Launch(op, MaxBackward, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), g, index, dx, reduced, inner, total);
        }
    }
}

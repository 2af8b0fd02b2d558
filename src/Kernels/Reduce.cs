using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>An associative reduction: identity, combine, and a final map (e.g. divide by the count for a mean).</summary>
    public interface IReduceOp
    {
        /// <summary>The neutral element.</summary>
        float Identity { get; }

        /// <summary>Combines two partial results.</summary>
        float Combine(float a, float b);

        /// <summary>Maps the reduced value of <paramref name="count"/> elements to the result.</summary>
        float Finish(float acc, int count);
    }

    /// <summary>Built-in reductions.</summary>
    public static class ReduceOps
    {
        /// <summary>Σ x.</summary>
        public struct Sum : IReduceOp
        {
            /// <inheritdoc/>
            public readonly float Identity => 0f;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => a + b;
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => acc;
        }

        /// <summary>Σ x / n.</summary>
        public struct Mean : IReduceOp
        {
            /// <inheritdoc/>
            public readonly float Identity => 0f;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => a + b;
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => count == 0 ? float.NaN : acc / count;
        }

        /// <summary>max x (−inf for an empty reduction).</summary>
        public struct Max : IReduceOp
        {
            /// <inheritdoc/>
            public readonly float Identity => float.NegativeInfinity;
            /// <inheritdoc/>
            public readonly float Combine(float a, float b) => IntrinsicMath.Max(a, b);
            /// <inheritdoc/>
            public readonly float Finish(float acc, int count) => acc;
        }
    }

    /// <summary>
    /// The reduction kernel family, over a contiguous tensor seen as [outer, R, inner] with the
    /// reduced axis in the middle. Two kernels:
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
        public static void Rows<TOp>(ArrayView<float> x, ArrayView<float> o, int rows, int cols, TOp op)
            where TOp : struct, IReduceOp
        {
            var partials = SharedMemory.Allocate<float>(32);
            for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
            {
                float acc = op.Identity;
                int baseIndex = row * cols;
                for (int c = Group.IdxX; c < cols; c += Group.DimX)
                    acc = op.Combine(acc, x[baseIndex + c]);
                acc = GroupReduce(acc, partials, op);
                if (Group.IdxX == 0)
                    o[row] = op.Finish(acc, cols);
                // The next row reuses the shared slots.
                Group.Barrier();
            }
        }

        /// <summary>o[p·inner + j] = finish(reduce over r of x[(p·R + r)·inner + j]).</summary>
        public static void Columns<TOp>(ArrayView<float> x, ArrayView<float> o, int outer, int reduced, int inner, TOp op)
            where TOp : struct, IReduceOp
        {
            int total = outer * inner;
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
            {
                int p = i / inner, j = i - p * inner;
                int at = p * reduced * inner + j;
                float acc = op.Identity;
                for (int r = 0; r < reduced; r++, at += inner)
                    acc = op.Combine(acc, x[at]);
                o[i] = op.Finish(acc, reduced);
            }
        }

        /// <summary>
        /// Combines one value per thread across the group; the result is valid in thread 0.
        /// Warp shuffles first (no shared memory, no barrier), then warp leaders meet in
        /// <paramref name="partials"/> (one slot per warp, at most 32 warps) and warp 0 finishes.
        /// </summary>
        public static float GroupReduce<TOp>(float value, ArrayView<float> partials, TOp op) where TOp : struct, IReduceOp
        {
            for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
                value = op.Combine(value, Warp.ShuffleDown(value, delta));
            int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
            if (warps == 1)
                return value;
            if (Warp.LaneIdx == 0)
                partials[Warp.WarpIdx] = value;
            Group.Barrier();
            if (Warp.WarpIdx == 0)
            {
                value = Warp.LaneIdx < warps ? partials[Warp.LaneIdx] : op.Identity;
                for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
                    value = op.Combine(value, Warp.ShuffleDown(value, delta));
            }
            return value;
        }

        /// <summary>Reduces contiguous <paramref name="x"/> seen as [outer, reduced, inner] into contiguous <paramref name="o"/>.</summary>
        internal static void Launch<TOp>(string name, Tensor x, Tensor o, int outer, int reduced, int inner, TOp op) where TOp : struct, IReduceOp
        {
            if (o.Length == 0)
                return;
            var device = x.Device;
            var input = reduced * outer * inner == 0 ? o.ContiguousView : x.ContiguousView;
            if (inner == 1)
            {
                // A row of a few hundred elements is one pass of a 256-thread group; shorter rows
                // waste lanes but still read coalesced. On the CPU accelerator every barrier is an
                // OS-level sync, so fewer threads per group are faster there.
                int group = device.Kind == DeviceKind.Cpu ? 32 : Math.Min(256, device.Info.MaxThreadsPerGroup);
                long cap = device.Kind == DeviceKind.Cpu ? 64 : device.Info.Multiprocessors * 16L;
                var config = new KernelConfig((int)Math.Min(outer, cap), group);
                var k = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int, TOp>>(Rows<TOp>);
                using (device.Profiler.Measure(name))
                    k(device.Accelerator.DefaultStream, config, input, o.ContiguousView, outer, reduced, op);
                return;
            }
            var kc = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, int, int, TOp>>(Columns<TOp>);
            using (device.Profiler.Measure(name))
                kc(device.Accelerator.DefaultStream, LaunchShapes.Linear(device, (long)outer * inner, LaunchShapes.ElementwiseGroup(device)),
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
        public static Tensor SumLastAxis(Tensor x, Tensor? output = null) => Reduce("sum_last_axis", x, -1, false, output, new ReduceOps.Sum());

        /// <summary>
        /// Reduces <paramref name="x"/> over <paramref name="axis"/> with <paramref name="op"/>; the axis is
        /// removed, or kept with size 1 when <paramref name="keepDim"/>. Strided inputs are made contiguous first.
        /// </summary>
        public static Tensor Reduce<TOp>(string name, Tensor x, int axis, bool keepDim, Tensor? output, TOp op) where TOp : struct, IReduceOp
        {
            var device = x.Device;
            Validate.Input(name, "x", x, device);
            if (x.Rank == 0)
                throw new ShapeMismatchException(name, "x", "a tensor of rank ≥ 1", "a scalar");
            int a = ShapeUtil.NormalizeAxis(name, axis, x.Rank);
            var shape = x.ShapeArray();
            int outer = (int)ShapeUtil.Product(shape.AsSpan(0, a)), reduced = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1));
            var outShape = keepDim ? shape.Select((d, i) => i == a ? 1 : d).ToArray() : shape.Where((_, i) => i != a).ToArray();
            var o = Validate.OutputOrNew(name, output, device, outShape);
            using var xc = x.Contiguous();
            ReduceKernels.Launch(name, xc, o, outer, reduced, inner, op);
            return o;
        }
    }
}

using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>A running softmax normalizer: the row maximum seen so far and Σ exp(x − max).</summary>
    public struct MaxSum
    {
        /// <summary>Running maximum (−inf when nothing was seen).</summary>
        public float Max;

        /// <summary>Σ exp(x − Max) over what was seen.</summary>
        public float Sum;

        /// <summary>Nothing seen.</summary>
        public static MaxSum Empty
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => new MaxSum { Max = float.NegativeInfinity, Sum = 0 };
        }

        /// <summary>Adds one value: −inf contributes nothing; NaN poisons both fields, so the merge cannot mistake the pair for an
        /// empty one (max still −inf) and drop it — a NaN anywhere in a row makes the whole row NaN, as in PyTorch.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly MaxSum Add(float x)
        {
            if (x == float.NegativeInfinity)
                return this;
            if (float.IsNaN(x))
                return new MaxSum { Max = float.NaN, Sum = float.NaN };
            return x > Max
                ? new MaxSum { Max = x, Sum = Sum * MathF.Exp(Max - x) + 1f }
                : new MaxSum { Max = Max, Sum = Sum + MathF.Exp(x - Max) };
        }

        /// <summary>Merges two partial normalizers; an empty side (max = −inf) contributes nothing, so no exp(−inf + inf).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static MaxSum Merge(MaxSum a, MaxSum b)
        {
            if (a.Max == float.NegativeInfinity)
                return b;
            if (b.Max == float.NegativeInfinity)
                return a;
            float m = IntrinsicMath.Max(a.Max, b.Max);
            return new MaxSum { Max = m, Sum = a.Sum * MathF.Exp(a.Max - m) + b.Sum * MathF.Exp(b.Max - m) };
        }

        /// <summary><see cref="Merge"/> as a group-reduction operator.</summary>
        public struct Merger : ICombine<MaxSum>
        {
            /// <inheritdoc/>
            public readonly MaxSum Combine(MaxSum a, MaxSum b) => Merge(a, b);
        }
    }

    /// <summary>
    /// The softmax family over the last axis: <c>softmax</c>, <c>log_softmax</c>, <c>softmax_causal</c>.
    /// One group per row (grid-stride over rows). Pass 1: each thread folds its strided elements into an
    /// online (max, Σexp) pair — one read of the row, stable for any magnitude — and the group merges the
    /// pairs with warp shuffles and a shared slot per warp. Pass 2 reads the row again (from L2 for rows that
    /// fit) and writes exp(x − max)/Σ, or x − max − log Σ. Causal rows mask column j &gt; i + offset, where i is
    /// the row's index within its [Nq, Nk] matrix; a row with nothing unmasked (or all −inf) gives zeros
    /// (−inf for log-softmax), never NaN. Log-softmax is a compile-time flag.
    /// FLOPs ≈ 5·rows·cols (exp counted as one). Bytes: 8·rows·cols read + 4·rows·cols written.
    /// </summary>
    public static class SoftmaxKernels
    {
        /// <summary>Softmax of each row of contiguous [rows, cols] <paramref name="x"/> into <paramref name="o"/>.</summary>
        public static void Rows<TLog>(ArrayView<float> x, ArrayView<float> o, int rows, int cols, int causal, int rowsPerMatrix, int offset)
            where TLog : struct, IFlag
        {
            var slots = SharedMemory.Allocate<MaxSum>(32);
            for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
            {
                int start = row * cols;
                // Columns beyond `limit` are masked (causal); the whole row otherwise.
                int limit = causal != 0 ? IntrinsicMath.Min(cols, row % rowsPerMatrix + offset + 1) : cols;
                var acc = MaxSum.Empty;
                for (int j = Group.IdxX; j < limit; j += Group.DimX)
                    acc = acc.Add(x[start + j]);
                acc = GroupReduce.AllReduce(acc, slots, default(MaxSum.Merger));

                for (int j = Group.IdxX; j < cols; j += Group.DimX)
                {
                    float v = x[start + j];
                    bool live = j < limit && acc.Max != float.NegativeInfinity;
                    if (default(TLog).Value)
                        o[start + j] = live ? v - acc.Max - MathF.Log(acc.Sum) : float.NegativeInfinity;
                    else
                        o[start + j] = live ? MathF.Exp(v - acc.Max) / acc.Sum : 0f;
                }
            }
        }

        /// <summary>
        /// The backward of each row, from the forward's output y and the output gradient g: softmax dx = y ⊙ (g − Σ g⊙y),
        /// log-softmax dx = g − eʸ·Σ g. One group per row as the forward: the group sums the row's g⊙y (or g) with
        /// warp shuffles, then every thread writes its strided elements. Masked (causal) entries have y = 0 and get 0.
        /// FLOPs ≈ 4·rows·cols. Bytes: 8·rows·cols read twice (the second from cache for rows that fit) + 4·rows·cols written.
        /// </summary>
        public static void BackwardRows<TLog>(ArrayView<float> y, ArrayView<float> g, ArrayView<float> dx, int rows, int cols)
            where TLog : struct, IFlag
        {
            var slots = SharedMemory.Allocate<float>(32);
            for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
            {
                int start = row * cols;
                float dot = 0;
                for (int j = Group.IdxX; j < cols; j += Group.DimX)
                    dot += default(TLog).Value ? g[start + j] : g[start + j] * y[start + j];
                dot = GroupReduce.AllReduce(dot, slots, default(FloatSum));
                for (int j = Group.IdxX; j < cols; j += Group.DimX)
                    dx[start + j] = BackwardAt<TLog>(y[start + j], g[start + j], dot);
            }
        }

        /// <summary>One element of <see cref="BackwardRows{TLog}"/> given the row's Σ g⊙y (softmax) or Σ g (log-softmax); the host loop calls it too.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float BackwardAt<TLog>(float y, float g, float dot) where TLog : struct, IFlag =>
            default(TLog).Value ? g - MathF.Exp(y) * dot : y * (g - dot);

        internal static void LaunchBackward<TLog>(string name, Tensor y, Tensor g, Tensor dx) where TLog : struct, IFlag
        {
            var device = y.Device;
            int cols = y.Size(-1), rows = cols == 0 ? 0 : y.Length / cols;
            if (rows == 0)
                return;
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    unsafe
                    {
                        Cpu.HostRows.SoftmaxBackward(Cpu.HostMemory.Ptr(y.ContiguousView), Cpu.HostMemory.Ptr(g.ContiguousView),
                            Cpu.HostMemory.Ptr(dx.ContiguousView), rows, cols, default(TLog).Value);
                    }
                return;
            }
            device.Launch(name, BackwardRows<TLog>, LaunchShapes.RowPerGroup(device, rows),
                y.ContiguousView, g.ContiguousView, dx.ContiguousView, rows, cols);
        }

        internal static void Launch<TLog>(string name, Tensor x, Tensor o, int causal, int rowsPerMatrix, int offset) where TLog : struct, IFlag
        {
            var device = x.Device;
            int cols = x.Size(-1), rows = cols == 0 ? 0 : x.Length / cols;
            if (rows == 0)
                return;
            // Any offset ≥ cols − 1 shows every column and any ≤ −rowsPerMatrix hides every one; clamped there, the
            // kernels' limit row + offset + 1 cannot wrap in 32 bits (it lies in [−rowsPerMatrix + 1, rowsPerMatrix + cols − 1]).
            rowsPerMatrix = Math.Max(rowsPerMatrix, 1);
            offset = (int)Math.Clamp(offset, -(long)rowsPerMatrix, cols - 1L);
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    unsafe
                    {
                        Cpu.HostRows.Softmax(Cpu.HostMemory.Ptr(x.ContiguousView), Cpu.HostMemory.Ptr(o.ContiguousView), rows, cols,
                            default(TLog).Value, causal != 0, rowsPerMatrix, offset);
                    }
                return;
            }
            device.Launch(name, Rows<TLog>, LaunchShapes.RowPerGroup(device, rows),
                x.ContiguousView, o.ContiguousView, rows, cols, causal, rowsPerMatrix, offset);
        }
    }
}

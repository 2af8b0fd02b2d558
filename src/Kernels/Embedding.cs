using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using GpuNet.Kernels.Cpu;

namespace GpuNet.Kernels
{
    /// <summary>
    /// The embedding family: <c>embedding</c> (row gather from token ids), <c>sinusoidal_position</c> (the
    /// Transformer's table), <c>timestep_embedding</c> (diffusion), and <c>patchify</c>/<c>unpatchify</c> for ViT/DiT
    /// (layout permutations through the layout kernels). One thread per output element. The frequencies depend only on
    /// the column, so the launcher computes them once in double on the host (a device double exp/log is a slow CORDIC
    /// loop in ILGPU); the kernel multiplies in double and reduces the angle modulo 2π before the float sine/cosine,
    /// so positions in the thousands keep float accuracy on every backend (a GPU's fast sine degrades on large arguments). Bytes: 4·n·D written (+ the gathered rows read).
    /// </summary>
    public static class EmbeddingKernels
    {
        /// <summary>sin or cos of <paramref name="angle"/> (double), reduced to [−π, π] first.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float SinCos(double angle, bool cosine)
        {
            const double TwoPi = 2 * Math.PI;
            double reduced = angle - TwoPi * Math.Floor(angle / TwoPi + 0.5);
            return cosine ? MathF.Cos((float)reduced) : MathF.Sin((float)reduced);
        }

        /// <summary>o[i, c] = weight[ids[i], c].</summary>
        public static void Gather(ArrayView<float> weight, ArrayView<int> ids, ArrayView<float> o, int dim, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                GatherAt(weight, ids, o, dim, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Gather"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void GatherAt(ArrayView<float> weight, ArrayView<int> ids, ArrayView<float> o, int dim, int i)
        {
            int row = i / dim;
            o[i] = weight[ids[row] * dim + i - row * dim];
        }

        /// <summary>
        /// o[i, c] = weight[indices[i], c] with device-side indices stored as floats (the output of <c>vq_nearest</c>,
        /// <c>argmax</c>, top-k gating). An index that is not an integer in [0, rows) cannot be rejected before the
        /// launch without a host round trip, so its row is written as NaN: visible, never silently another row.
        /// </summary>
        public static void GatherIndexed(ArrayView<float> weight, ArrayView<float> indices, ArrayView<float> o, int rows, int dim, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                GatherIndexedAt(weight, indices, o, rows, dim, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="GatherIndexed"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void GatherIndexedAt(ArrayView<float> weight, ArrayView<float> indices, ArrayView<float> o, int rows, int dim, int i)
        {
            int row = i / dim;
            float f = indices[row];
            int id = (int)f;
            o[i] = id >= 0 && id < rows && id == f ? weight[id * dim + i - row * dim] : float.NaN;
        }

        /// <summary>
        /// The embedding backward as a deterministic scatter-add: the ids' positions grouped by row on the host (a counting
        /// sort), then one thread per (distinct row, column) sums its positions' gradients in position order into dW — no
        /// float atomics, so the same input gives a bit-identical gradient on every run. Rows no id touched stay zero.
        /// </summary>
        public static void ScatterSegments(ArrayView<float> dy, ArrayView<int> order, ArrayView<int> starts, ArrayView<int> rows, ArrayView<float> dw, int dim, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                ScatterSegmentsAt(dy, order, starts, rows, dw, dim, i);
        }

        /// <summary>Element <paramref name="i"/> (segment i / dim, column i mod dim) of <see cref="ScatterSegments"/> (shared with the host loop).</summary>
        public static void ScatterSegmentsAt(ArrayView<float> dy, ArrayView<int> order, ArrayView<int> starts, ArrayView<int> rows, ArrayView<float> dw, int dim, int i)
        {
            int segment = i / dim, c = i - segment * dim;
            float sum = 0f;
            for (int k = starts[segment]; k < starts[segment + 1]; k++)
                sum += dy[order[k] * dim + c];
            dw[rows[segment] * dim + c] = sum;
        }

        /// <summary>pe[pos, 2i] = sin(pos·f_i), pe[pos, 2i+1] = cos(pos·f_i) with f_i = base^(−2i/D) given per pair (Vaswani et al.).</summary>
        public static void Sinusoidal(ArrayView<float> o, ArrayView<double> frequencies, int dim, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                SinusoidalAt(o, frequencies, dim, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Sinusoidal"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void SinusoidalAt(ArrayView<float> o, ArrayView<double> frequencies, int dim, int i)
        {
            int pos = i / dim, c = i - pos * dim;
            o[i] = SinCos(pos * frequencies[c / 2], (c & 1) == 1);
        }

        /// <summary>
        /// emb[b, j] = cos(t_b·f_j) for j &lt; half, sin(t_b·f_(j−half)) for half ≤ j &lt; 2·half, 0 for an odd last column;
        /// f_j = exp(−ln(maxPeriod)·j/half) given per j (the DDPM/ADM timestep embedding, cos first).
        /// </summary>
        public static void Timestep(ArrayView<float> t, ArrayView<double> frequencies, ArrayView<float> o, int dim, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                TimestepAt(t, frequencies, o, dim, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Timestep"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void TimestepAt(ArrayView<float> t, ArrayView<double> frequencies, ArrayView<float> o, int dim, int i)
        {
            int half = dim / 2, b = i / dim, c = i - b * dim;
            o[i] = c >= 2 * half ? 0f : SinCos(t[b] * frequencies[c < half ? c : c - half], c < half);
        }

        /// <summary>Embedding rows gathered by token id: the fast CPU's parallel loop over <see cref="GatherAt"/>, else the kernel <see cref="Gather"/>.</summary>
        internal static void RunGather(string op, Device device, ArrayView<float> weight, ArrayView<int> ids, ArrayView<float> o, int dim, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 1, i => GatherAt(weight, ids, o, dim, i)))
                return;
            device.Launch(op, Gather, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), weight, ids, o, dim, total);
        }

        /// <summary>Embedding rows gathered by float indices: the fast CPU's parallel loop over <see cref="GatherIndexedAt"/>, else the kernel <see cref="GatherIndexed"/>.</summary>
        internal static void RunGatherIndexed(string op, Device device, ArrayView<float> weight, ArrayView<float> indices, ArrayView<float> o, int rows, int dim, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 1, i => GatherIndexedAt(weight, indices, o, rows, dim, i)))
                return;
            device.Launch(op, GatherIndexed, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), weight, indices, o, rows, dim, total);
        }

        /// <summary>Each used row's gradient summed over its segment of positions: the fast CPU's parallel loop over
        /// <see cref="ScatterSegmentsAt"/> (<paramref name="positionsPerRow"/> reads per element), else the kernel <see cref="ScatterSegments"/>.</summary>
        internal static void RunScatterSegments(string op, Device device, ArrayView<float> dy, ArrayView<int> order, ArrayView<int> starts, ArrayView<int> rows,
            ArrayView<float> dw, int dim, int total, int positionsPerRow)
        {
            if (Cpu.HostParallel.Elements(device, op, total, positionsPerRow, i => ScatterSegmentsAt(dy, order, starts, rows, dw, dim, i)))
                return;
            device.Launch(op, ScatterSegments, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), dy, order, starts, rows, dw, dim, total);
        }

        /// <summary>Sinusoidal position encodings: the fast CPU's parallel loop over <see cref="SinusoidalAt"/>, else the kernel <see cref="Sinusoidal"/>.</summary>
        internal static void RunSinusoidal(string op, Device device, ArrayView<float> o, ArrayView<double> frequencies, int dim, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 16, i => SinusoidalAt(o, frequencies, dim, i)))
                return;
            device.Launch(op, Sinusoidal, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), o, frequencies, dim, total);
        }

        /// <summary>Timestep embeddings: the fast CPU's parallel loop over <see cref="TimestepAt"/>, else the kernel <see cref="Timestep"/>.</summary>
        internal static void RunTimestep(string op, Device device, ArrayView<float> t, ArrayView<double> frequencies, ArrayView<float> o, int dim, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 16, i => TimestepAt(t, frequencies, o, dim, i)))
                return;
            device.Launch(op, Timestep, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), t, frequencies, o, dim, total);
        }
    }
}

using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// The layout family: <c>transpose</c>, <c>permute</c>, <c>concat</c>, <c>split</c>. Every permutation is
    /// first reduced (<see cref="ShapeUtil.Coalesce"/>) to its simplest description. When that is a batched
    /// swap of the two innermost dimensions — input [B, R, C] read along C, output [B, C, R] written along R —
    /// a strided copy would read or write with stride R, so <see cref="Transpose"/> stages 32×32 tiles through
    /// shared memory: the group reads tile rows coalesced, and writes tile columns coalesced. Rows are padded
    /// to 33 floats so the column reads hit 32 different banks. Every other permutation (inner dimension
    /// unchanged) is already coalesced and goes to the strided copy. Concat and split copy through slice views.
    /// FLOPs: 0. Bytes: 8 per element.
    /// </summary>
    public static class LayoutKernels
    {
        /// <summary>Tile edge.</summary>
        public const int Tile = 32;

        /// <summary>Rows of threads per group: each thread moves Tile/RowsPerPass elements of a tile.</summary>
        public const int RowsPerPass = 8;

        /// <summary>o[b, c, r] = x[b·sB + r·sR + c] for x seen as [batches, rows, cols].</summary>
        public static void Transpose(ArrayView<float> x, ArrayView<float> o, int rows, int cols, int strideBatch, int strideRow)
        {
            var tile = SharedMemory.Allocate<float>(Tile * (Tile + 1));
            int b = Grid.IdxZ, tx = Group.IdxX, ty = Group.IdxY;
            int r0 = Grid.IdxY * Tile, c0 = Grid.IdxX * Tile;
            int inBase = b * strideBatch;
            for (int i = ty; i < Tile; i += RowsPerPass)
            {
                int r = r0 + i, c = c0 + tx;
                if (r < rows && c < cols)
                    tile[i * (Tile + 1) + tx] = x[inBase + r * strideRow + c];
            }
            Group.Barrier();
            int outBase = b * rows * cols;
            for (int i = ty; i < Tile; i += RowsPerPass)
            {
                int c = c0 + i, r = r0 + tx;
                if (r < rows && c < cols)
                    o[outBase + c * rows + r] = tile[tx * (Tile + 1) + i];
            }
        }

        /// <summary>A new contiguous copy of <paramref name="t"/> (kernel <c>copy_strided</c>), for a launcher whose kernel needs
        /// one contiguous direction the view lacks. Not recorded: the op that launches records its own gradient.</summary>
        internal static Tensor ContiguousCopy(Tensor t)
        {
            var copy = Tensor.Empty(t.Device, t.ShapeArray());
            ElementwiseKernels.MapUnary("copy_strided", t, copy, new ElementwiseOps.Identity());
            return copy;
        }

        /// <summary>
        /// On the fast CPU, <paramref name="tensors"/> (each contiguous) concatenated along <paramref name="axis"/> into
        /// contiguous <paramref name="o"/> as block copies — per index before the axis, each input's run of size(axis) ×
        /// inner floats — and true; false elsewhere or when an input is a strided view (the caller copies through the
        /// elementwise kernel). A strided copy per input walked its view's dimensions for a few hundred floats (an LSTM's
        /// two directions, 1–2 µs a concatenation). Arguments are validated by the op.
        /// </summary>
        internal static unsafe bool TryConcatContiguous(IReadOnlyList<Tensor> tensors, Tensor o, int axis)
        {
            var device = o.Device;
            if (!device.IsHostCpu)
                return false;
            for (int i = 0; i < tensors.Count; i++)
                if (!tensors[i].IsContiguous)
                    return false;
            var shape = o.ShapeArray();
            long outer = 1, inner = 1;
            for (int d = 0; d < axis; d++)
                outer *= shape[d];
            for (int d = axis + 1; d < shape.Length; d++)
                inner *= shape[d];
            long row = shape[axis] * inner;
            using (device.Profiler.Measure("concat"))
            {
                float* to = Cpu.HostMemory.Ptr(o.ContiguousView);
                long at = 0;
                foreach (var t in tensors)
                {
                    long run = t.Size(axis) * inner;
                    if (run > 0)
                    {
                        float* from = Cpu.HostMemory.Ptr(t.ContiguousView);
                        for (long k = 0; k < outer; k++)
                            Buffer.MemoryCopy(from + k * run, to + k * row + at, run * sizeof(float), run * sizeof(float));
                    }
                    at += run;
                }
            }
            return true;
        }

        /// <summary>
        /// Copies <paramref name="view"/> into contiguous <paramref name="o"/> of the same shape: through the tiled
        /// transpose when the copy is a batched inner transpose, the strided copy otherwise.
        /// </summary>
        internal static void CopyPermuted(string name, Tensor view, Tensor o)
        {
            if (o.Length == 0)
                return;
            var (dims, strides) = ShapeUtil.Coalesce(view.ShapeArray(), o.Strides.ToArray(), view.Strides.ToArray());
            int r = dims.Length;
            var s = strides[1];
            // Output [.., C, R] (R innermost); the input is contiguous along C (stride 1) with row stride s[r-1].
            bool tiled = (r == 2 || r == 3) && s[r - 2] == 1 && s[r - 1] != 1;
            if (!tiled)
            {
                ElementwiseKernels.MapUnary(name, view, o, new ElementwiseOps.Identity());
                return;
            }
            int cols = dims[r - 2], rows = dims[r - 1], batches = r == 3 ? dims[0] : 1, strideBatch = r == 3 ? s[0] : 0;
            var device = o.Device;
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    unsafe
                    {
                        Cpu.HostElementwise.Transpose(Cpu.HostMemory.Ptr(view), Cpu.HostMemory.Ptr(o), batches, rows, cols, strideBatch, s[r - 1]);
                    }
                return;
            }
            var grid = new Index3D((cols + Tile - 1) / Tile, (rows + Tile - 1) / Tile, batches);
            device.Launch(name, Transpose, new KernelConfig(grid, new Index3D(Tile, RowsPerPass, 1)),
                view.StridedView, o.ContiguousView, rows, cols, strideBatch, s[r - 1]);
        }
    }
}

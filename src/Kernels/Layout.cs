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
            var device = Validate.DeviceOf(name, "o", o);
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

namespace GpuNet
{
    using GpuNet.Kernels;

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
            int at = 0;
            var sizes = new int[tensors.Count];
            for (int i = 0; i < tensors.Count; i++)
            {
                var t = tensors[i];
                sizes[i] = t.Size(a);
                using var slot = o.Slice(a, at, t.Size(a));
                ElementwiseKernels.MapUnary("concat", t, slot, new ElementwiseOps.Identity());
                at += t.Size(a);
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
}

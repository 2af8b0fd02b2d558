using GpuNet.Kernels.Cpu;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// Cumulative sum along one axis (torch.cumsum, ONNX CumSum with exclusive and reverse). The tensor is seen as
    /// [outer, n, inner]; one thread per (outer, inner) line walks its n elements with stride inner — neighbouring
    /// threads read neighbouring addresses, so the walk is coalesced when inner is large, and the sum is compensated
    /// (Kahan), so long lines keep float32's precision instead of losing it linearly in n.
    /// </summary>
    public static class ScanKernels
    {
        /// <summary>Every line of <see cref="CumSumAt"/>.</summary>
        public static void CumSum(ArrayView<float> x, ArrayView<float> y, int lines, int n, int inner, int exclusive, int reverse)
        {
            for (int line = Grid.GlobalIndex.X; line < lines; line += Grid.DimX * Group.DimX)
                CumSumAt(x, y, n, inner, exclusive, reverse, line);
        }

        /// <summary>One line: its GPU loop and the fast CPU device's host loop share this body.</summary>
        public static void CumSumAt(ArrayView<float> x, ArrayView<float> y, int n, int inner, int exclusive, int reverse, int line)
        {
            int outer = line / inner, at = line % inner;
            long start = (long)outer * n * inner + at;
            float sum = 0f, carry = 0f;
            for (int t = 0; t < n; t++)
            {
                int step = reverse != 0 ? n - 1 - t : t;
                long i = start + (long)step * inner;
                float v = x[i];
                if (exclusive != 0)
                    y[i] = sum;
                float term = v - carry;
                float next = sum + term;
                carry = (next - sum) - term;
                sum = next;
                if (exclusive == 0)
                    y[i] = sum;
            }
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    public static partial class Ops
    {
        /// <summary>Cumulative sum along <paramref name="axis"/>; <paramref name="exclusive"/> leaves each element out of its own sum, <paramref name="reverse"/> sums from the end. Inference only. Kernel <c>cumsum</c>.</summary>
        public static Tensor CumSum(Tensor x, int axis, bool exclusive = false, bool reverse = false)
        {
            const string op = "cumsum";
            var device = Validate.DeviceOf(op, "x", x);
            Validate.Input(op, "x", x, device);
            if (x.Rank < 1)
                throw new ShapeMismatchException(op, "x", "a tensor of rank ≥ 1", "a scalar");
            int a = ShapeUtil.NormalizeAxis(op, axis, x.Rank);
            var shape = x.ShapeArray();
            int n = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1)), lines = (int)(x.Length / Math.Max(n, 1));
            var y = Tensor.Empty(device, shape);
            if (y.Length > 0)
            {
                using var xc = x.Contiguous();
                var (xv, yv) = (xc.ContiguousView, y.ContiguousView);
                int ex = exclusive ? 1 : 0, rev = reverse ? 1 : 0;
                if (!HostParallel.Elements(device, op, lines, n, line => ScanKernels.CumSumAt(xv, yv, n, inner, ex, rev, line)))
                {
                    device.Launch(op, ScanKernels.CumSum, LaunchShapes.Linear(device, lines, LaunchShapes.ElementwiseGroup(device)),
                        xv, yv, lines, n, inner, ex, rev);
                }
            }
            return NoGradient(op, y, x);
        }
    }
}

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

        /// <summary>Cumulative sums of <paramref name="lines"/> lines of n elements: the fast CPU's parallel loop over <see cref="CumSumAt"/>, else the kernel <see cref="CumSum"/>.</summary>
        internal static void RunCumSum(string op, Device device, ArrayView<float> x, ArrayView<float> y, int lines, int n, int inner, int exclusive, int reverse)
        {
            if (Cpu.HostParallel.Elements(device, op, lines, n, line => CumSumAt(x, y, n, inner, exclusive, reverse, line)))
                return;
            device.Launch(op, CumSum, LaunchShapes.Linear(device, lines, LaunchShapes.ElementwiseGroup(device)), x, y, lines, n, inner, exclusive, reverse);
        }
    }
}

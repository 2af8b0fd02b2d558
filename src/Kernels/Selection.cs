using System.Runtime.CompilerServices;
using GpuNet.Kernels.Cpu;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// General top-k along the last axis (ONNX TopK, torch.topk): for each row the k largest (or smallest) values in
    /// order, ties to the lower index, with their indices. One thread per row selects k times, each pass taking the best
    /// element that comes after the previous pick in the total order (value, then index) — O(k·n) reads per row, no
    /// scratch memory and no sort, exact for any n and k ≤ n. Rows are independent, so a GPU fills with many rows; a few
    /// very long rows would want a block-wide radix select instead (not written: MoE routing has its own warp kernel).
    /// </summary>
    public static class SelectionKernels
    {
        /// <summary>Every row of <see cref="TopKAt"/>.</summary>
        public static void TopK(ArrayView<float> x, ArrayView<float> values, ArrayView<float> indices, int rows, int n, int k, int largest)
        {
            for (int row = Grid.GlobalIndex.X; row < rows; row += Grid.DimX * Group.DimX)
                TopKAt(x, values, indices, n, k, largest, row);
        }

        /// <summary>One row: its GPU loop and the fast CPU device's host loop share this body.</summary>
        public static void TopKAt(ArrayView<float> x, ArrayView<float> values, ArrayView<float> indices, int n, int k, int largest, int row)
        {
            int start = row * n;
            float previous = 0f;
            int previousIndex = -1;
            for (int t = 0; t < k; t++)
            {
                float best = 0f;
                int bestIndex = -1;
                for (int j = 0; j < n; j++)
                {
                    float v = x[start + j];
                    if (previousIndex >= 0 && !After(v, j, previous, previousIndex, largest))
                        continue;
                    if (bestIndex < 0 || Before(v, j, best, bestIndex, largest))
                    {
                        best = v;
                        bestIndex = j;
                    }
                }
                values[row * k + t] = best;
                indices[row * k + t] = bestIndex;
                (previous, previousIndex) = (best, bestIndex);
            }
        }

        /// <summary>(v, j) precedes (w, i) in the output order: better value first, then the lower index.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool Before(float v, int j, float w, int i, int largest) => (largest != 0 ? v > w : v < w) || v == w && j < i;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool After(float v, int j, float w, int i, int largest) => Before(w, i, v, j, largest);

        /// <summary>The top k of each of <paramref name="rows"/> rows of n: the fast CPU's parallel loop over <see cref="TopKAt"/>, else the kernel <see cref="TopK"/>.</summary>
        internal static void RunTopK(string op, Device device, ArrayView<float> x, ArrayView<float> values, ArrayView<float> indices, int rows, int n, int k, int largest)
        {
            if (Cpu.HostParallel.Elements(device, op, rows, (long)n * k, row => TopKAt(x, values, indices, n, k, largest, row)))
                return;
            device.Launch(op, TopK, LaunchShapes.Linear(device, rows, LaunchShapes.ElementwiseGroup(device)), x, values, indices, rows, n, k, largest);
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>The k best values of each row and their indices (as floats, exact below 2²⁴).</summary>
    /// <param name="Values">[..., k] values in order.</param>
    /// <param name="Indices">[..., k] positions along the last axis.</param>
    public sealed record TopKResult(Tensor Values, Tensor Indices) : IDisposable
    {
        /// <summary>Disposes both tensors.</summary>
        public void Dispose()
        {
            Values.Dispose();
            Indices.Dispose();
        }
    }
}

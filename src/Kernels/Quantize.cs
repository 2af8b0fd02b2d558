using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// Vector quantization, <c>vq_nearest</c>: for each input row x [N, D], the index of the nearest codebook vector
    /// of E [K, D] by squared Euclidean distance, ties to the lower index (VQ-VAE, Best-RQ's random-projection quantizer,
    /// HuBERT's k-means labels). One group per input row: threads stride over codes, each summing (x − e)² over D (the
    /// row of x is read from L1/L2 by every thread), then a group arg-min. Computing the difference directly, rather
    /// than ‖e‖² − 2x·e, keeps near-ties exact enough to agree with a double reference.
    /// FLOPs: 3·N·K·D. Bytes: 4·(N·D + K·D) (the codebook is re-read per row from cache) + 4·N.
    /// </summary>
    public static class QuantizeKernels
    {
        /// <summary>Arg-min with ties to the lower index.</summary>
        public struct ArgMin : ICombine<ValueIndex>
        {
            /// <inheritdoc/>
            public readonly ValueIndex Combine(ValueIndex a, ValueIndex b)
            {
                if (a.Index < 0)
                    return b;
                if (b.Index < 0)
                    return a;
                return b.Value < a.Value || (b.Value == a.Value && b.Index < a.Index) ? b : a;
            }
        }

        /// <summary>o[n] = argmin_k Σ_d (x[n, d] − codebook[k, d])².</summary>
        public static void Nearest(ArrayView<float> x, ArrayView<float> codebook, ArrayView<float> o, int rows, int codes, int dim)
        {
            var slots = SharedMemory.Allocate<ValueIndex>(32);
            for (int n = Grid.IdxX; n < rows; n += Grid.DimX)
            {
                var best = new ValueIndex { Value = float.PositiveInfinity, Index = -1 };
                for (int k = Group.IdxX; k < codes; k += Group.DimX)
                {
                    float dist = 0f;
                    for (int d = 0; d < dim; d++)
                    {
                        float diff = x[n * dim + d] - codebook[k * dim + d];
                        dist += diff * diff;
                    }
                    best = default(ArgMin).Combine(best, new ValueIndex { Value = dist, Index = k });
                }
                best = GroupReduce.AllReduce(best, slots, default(ArgMin));
                if (Group.IdxX == 0)
                    o[n] = best.Index;
            }
        }

        /// <summary>The nearest code of each of <paramref name="rows"/> rows: the fast CPU device's host loop, else <see cref="Nearest"/>.</summary>
        internal static void RunNearest(string op, Device device, Tensor x, Tensor codebook, Tensor o, int rows, int codes, int dim)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostSelect.Nearest(Cpu.HostMemory.Ptr(x), Cpu.HostMemory.Ptr(codebook), Cpu.HostMemory.Ptr(o), rows, codes, dim);
                    }
                return;
            }
            device.Launch(op, Nearest, LaunchShapes.RowPerGroup(device, rows), x.ContiguousView, codebook.ContiguousView, o.ContiguousView, rows, codes, dim);
        }
    }
}

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
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    public static partial class Ops
    {
        /// <summary>Index of the nearest codebook row (squared distance, ties to the lower index) for each row of x [N, D]; codebook [K, D]. Returns [N] as floats. Kernel <c>vq_nearest</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>vq_nearest</c>.</remarks>
        public static Tensor VqNearest(Tensor x, Tensor codebook)
        {
            var r = VqNearestCore(x, codebook);
            Autograd.RecordNoGradient("vq_nearest", r, x, codebook);
            return r;
        }

        private static Tensor VqNearestCore(Tensor x, Tensor codebook)
        {
            const string op = "vq_nearest";
            var device = Validate.DeviceOf(op, "x", x);
            Validate.Input(op, "x", x, device);
            Validate.Input(op, "codebook", codebook, device);
            Validate.Rank(op, "x", x, 2);
            Validate.Rank(op, "codebook", codebook, 2);
            if (codebook.Size(1) != x.Size(1))
                throw new ShapeMismatchException(op, "codebook", $"[K, {x.Size(1)}] (the dimension of x)", GpuNetException.FormatShape(codebook.ShapeArray()));
            if (codebook.Size(0) < 1)
                throw new ShapeMismatchException(op, "codebook", "at least one code", GpuNetException.FormatShape(codebook.ShapeArray()));
            var o = Tensor.Empty(device, x.Size(0));
            if (o.Length == 0)
                return o;
            using var xc = x.Contiguous();
            using var cc = codebook.Contiguous();
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Kernels.Cpu.HostSelect.Nearest(Kernels.Cpu.HostMemory.Ptr(xc), Kernels.Cpu.HostMemory.Ptr(cc), Kernels.Cpu.HostMemory.Ptr(o),
                            x.Size(0), codebook.Size(0), x.Size(1));
                    }
                return o;
            }
            device.Launch(op, QuantizeKernels.Nearest, LaunchShapes.RowPerGroup(device, x.Size(0)),
                xc.ContiguousView, cc.ContiguousView, o.ContiguousView, x.Size(0), codebook.Size(0), x.Size(1));
            return o;
        }
    }
}

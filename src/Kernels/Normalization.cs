using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>Welford running statistics: count, mean and the sum of squared deviations (M2).</summary>
    public struct Welford
    {
        /// <summary>Values seen.</summary>
        public float Count;

        /// <summary>Their mean.</summary>
        public float Mean;

        /// <summary>Σ (x − mean)².</summary>
        public float M2;

        /// <summary>Adds one value.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly Welford Add(float x)
        {
            float n = Count + 1f, delta = x - Mean, mean = Mean + delta / n;
            return new Welford { Count = n, Mean = mean, M2 = M2 + delta * (x - mean) };
        }

        /// <summary>Chan et al.'s pairwise merge of two partial statistics.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Welford Merge(Welford a, Welford b)
        {
            float n = a.Count + b.Count;
            if (n == 0)
                return a;
            float delta = b.Mean - a.Mean, fb = b.Count / n;
            return new Welford { Count = n, Mean = a.Mean + delta * fb, M2 = a.M2 + b.M2 + delta * delta * a.Count * fb };
        }

        /// <summary><see cref="Merge"/> as a group-reduction operator.</summary>
        public struct Merger : ICombine<Welford>
        {
            /// <inheritdoc/>
            public readonly Welford Combine(Welford a, Welford b) => Merge(a, b);
        }
    }

    /// <summary>
    /// LayerNorm and RMSNorm over the last axis, one kernel: one group per row (grid-stride over rows).
    /// Pass 1 folds the row, shifted by its first element, into per-thread Welford statistics (numerically
    /// stable for large common offsets, one read), merged across the group with warp shuffles and a shared
    /// slot per warp. Pass 2 reads the row again and writes
    /// y = (x − mean)·rstd·γ + β (LayerNorm) or y = x·rstd·γ with rstd = 1/√(mean(x²) + ε) (RMSNorm, a
    /// compile-time flag). The per-row mean and rstd are written out too: the backward pass needs them.
    /// FLOPs ≈ 8·rows·cols. Bytes: 8·rows·cols read + 4·rows·cols written + 8·cols (γ, β) + 8·rows (stats).
    /// </summary>
    public static class NormalizationKernels
    {
        /// <summary>Normalizes each row of contiguous [rows, cols] x.</summary>
        public static void Rows<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
            ArrayView<float> meanOut, ArrayView<float> rstdOut, int rows, int cols, float eps, int hasGamma, int hasBeta)
            where TRms : struct, IFlag
        {
            var slots = SharedMemory.Allocate<Welford>(32);
            for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
            {
                int start = row * cols;
                // Shifted data: statistics of x − K with K the row's first element. For rows sitting on a
                // large common offset, x − K is exact and small, so the float mean no longer drifts by an
                // ulp of the offset (which LayerNorm's output would amplify by rstd).
                float shift = x[start];
                var w = default(Welford);
                for (int j = Group.IdxX; j < cols; j += Group.DimX)
                    w = w.Add(x[start + j] - shift);
                w = GroupReduce.AllReduce(w, slots, default(Welford.Merger));

                float variance = w.M2 / w.Count, mean = shift + w.Mean, center, rstd;
                if (default(TRms).Value)
                {
                    // mean(x²) = var + mean²: two non-negative terms, no cancellation.
                    center = -shift;
                    rstd = 1f / MathF.Sqrt(variance + mean * mean + eps);
                }
                else
                {
                    center = w.Mean;
                    rstd = 1f / MathF.Sqrt(variance + eps);
                }
                for (int j = Group.IdxX; j < cols; j += Group.DimX)
                {
                    float v = (x[start + j] - shift - center) * rstd;
                    if (hasGamma != 0)
                        v *= gamma[j];
                    if (hasBeta != 0)
                        v += beta[j];
                    y[start + j] = v;
                }
                if (Group.IdxX == 0)
                {
                    meanOut[row] = mean;
                    rstdOut[row] = rstd;
                }
            }
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>A normalization's output with the per-row statistics the backward pass needs.</summary>
    /// <param name="Output">The normalized tensor (input's shape).</param>
    /// <param name="Mean">Per-row mean, shape = input shape without the last axis (for RMSNorm the row mean, which RMSNorm does not subtract).</param>
    /// <param name="Rstd">Per-row 1/√(var + ε) (LayerNorm) or 1/√(mean(x²) + ε) (RMSNorm).</param>
    public sealed record NormResult(Tensor Output, Tensor Mean, Tensor Rstd) : IDisposable
    {
        /// <summary>Disposes all three tensors.</summary>
        public void Dispose()
        {
            Output.Dispose();
            Mean.Dispose();
            Rstd.Dispose();
        }
    }

    public static partial class Ops
    {
        /// <summary>LayerNorm over the last axis: (x − mean)/√(var + ε)·γ + β (biased variance, as PyTorch). γ, β optional [C]. Kernel <c>layernorm</c>.</summary>
        public static NormResult LayerNorm(Tensor x, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f) =>
            Normalize<Flags.No>("layernorm", x, gamma, beta, eps);

        /// <summary>RMSNorm over the last axis: x/√(mean(x²) + ε)·γ. γ optional [C]. Kernel <c>rmsnorm</c>.</summary>
        public static NormResult RmsNorm(Tensor x, Tensor? gamma = null, float eps = 1e-6f) =>
            Normalize<Flags.Yes>("rmsnorm", x, gamma, null, eps);

        private static NormResult Normalize<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, float eps) where TRms : struct, IFlag
        {
            var device = x.Device;
            Validate.Input(name, "x", x, device);
            if (x.Rank < 1)
                throw new ShapeMismatchException(name, "x", "a tensor of rank ≥ 1", "a scalar");
            int cols = x.Size(-1);
            foreach (var (arg, t) in new[] { ("gamma", gamma), ("beta", beta) })
            {
                if (t is null)
                    continue;
                Validate.Input(name, arg, t, device);
                if (t.Rank != 1 || t.Length != cols || !t.IsContiguous)
                    throw new ShapeMismatchException(name, arg, $"a contiguous vector [{cols}] (the last axis of x)", t.Describe());
            }
            if (!(eps >= 0))
                throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{name}: eps must be ≥ 0");
            var statShape = x.ShapeArray()[..^1];
            var y = Tensor.Empty(device, x.ShapeArray());
            var mean = Tensor.Empty(device, statShape);
            var rstd = Tensor.Empty(device, statShape);
            int rows = cols == 0 ? 0 : x.Length / cols;
            if (rows > 0)
            {
                using var xc = x.Contiguous();
                var k = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                    ArrayView<float>, ArrayView<float>, int, int, float, int, int>>(NormalizationKernels.Rows<TRms>);
                using (device.Profiler.Measure(name))
                    k(device.Accelerator.DefaultStream, LaunchShapes.RowPerGroup(device, rows), xc.ContiguousView,
                        gamma?.ContiguousView ?? xc.ContiguousView, beta?.ContiguousView ?? xc.ContiguousView, y.ContiguousView,
                        mean.ContiguousView, rstd.ContiguousView, rows, cols, eps, gamma is null ? 0 : 1, beta is null ? 0 : 1);
            }
            return new NormResult(y, mean, rstd);
        }
    }
}

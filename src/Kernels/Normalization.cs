using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// Welford running statistics of shifted values (count, mean, sum of squared deviations M2), plus the plain sum of
    /// the unshifted values. The shifted mean and M2 give a variance that is exact for rows on a large offset; the plain
    /// sum gives a mean that stays accurate relative to itself when it is small next to the spread (where shift + shifted
    /// mean would carry an error of about ε·σ).
    /// </summary>
    public struct Welford
    {
        /// <summary>Values seen.</summary>
        public float Count;

        /// <summary>Mean of the shifted values.</summary>
        public float Mean;

        /// <summary>Σ (x − mean)².</summary>
        public float M2;

        /// <summary>Σ x of the unshifted values.</summary>
        public float Sum;

        /// <summary>Adds one value, given shifted (for the moments) and as it is (for the sum).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly Welford Add(float shifted, float raw)
        {
            float n = Count + 1f, delta = shifted - Mean, mean = Mean + delta / n;
            return new Welford { Count = n, Mean = mean, M2 = M2 + delta * (shifted - mean), Sum = Sum + raw };
        }

        /// <summary>Chan et al.'s pairwise merge of two partial statistics.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Welford Merge(Welford a, Welford b)
        {
            float n = a.Count + b.Count;
            if (n == 0)
                return a;
            float delta = b.Mean - a.Mean, fb = b.Count / n;
            return new Welford { Count = n, Mean = a.Mean + delta * fb, M2 = a.M2 + b.M2 + delta * delta * a.Count * fb, Sum = a.Sum + b.Sum };
        }

        /// <summary><see cref="Merge"/> as a group-reduction operator.</summary>
        public struct Merger : ICombine<Welford>
        {
            /// <inheritdoc/>
            public readonly Welford Combine(Welford a, Welford b) => Merge(a, b);
        }
    }

    /// <summary>
    /// Which elements form a normalized row and which γ/β entry each uses (kernel parameter). Element j of row r
    /// is at r·RowStride + ⌊j/SegLen⌋·SegStride + j mod SegLen; its affine index is (r mod AffineGroups)·(Cols/Spatial) + ⌊j/Spatial⌋.
    /// LayerNorm: one segment per row, affine by j. GroupNorm: rows (n, g), affine by channel. BatchNorm: rows are channels,
    /// gathered across the batch in segments of H·W, affine by row.
    /// </summary>
    public struct NormLayout
    {
        /// <summary>Rows normalized and their length.</summary>
        public int Rows, Cols;

        /// <summary>Addressing of a row's elements.</summary>
        public int RowStride, SegLen, SegStride;

        /// <summary>Affine (γ/β) indexing.</summary>
        public int AffineGroups, Spatial;

        /// <summary>1 when γ / β are given and when the biased variance is written out.</summary>
        public int HasGamma, HasBeta, HasVar;

        /// <summary>Rows of <paramref name="cols"/> contiguous elements, γ/β per element (LayerNorm, RMSNorm).</summary>
        public static NormLayout LastAxis(int rows, int cols) =>
            new() { Rows = rows, Cols = cols, RowStride = cols, SegLen = Math.Max(cols, 1), AffineGroups = 1, Spatial = 1 };
    }

    /// <summary>
    /// LayerNorm, RMSNorm, GroupNorm and BatchNorm statistics: one kernel, one group per normalized row (grid-stride
    /// over rows), rows addressed through a <see cref="NormLayout"/>. Pass 1 folds the row, shifted by its first
    /// element, into per-thread Welford statistics (numerically stable for large common offsets, one read), merged
    /// across the group with warp shuffles and a shared slot per warp. Pass 2 reads the row again and writes
    /// y = (x − mean)·rstd·γ + β, or x·rstd·γ with rstd = 1/√(mean(x²) + ε) for RMSNorm (a compile-time flag).
    /// The per-row mean and rstd (and optionally the biased variance) are written out: the backward pass and
    /// BatchNorm's running statistics need them.
    /// FLOPs ≈ 8·rows·cols. Bytes: 8·rows·cols read + 4·rows·cols written + 8·(affine entries) + 12·rows.
    /// </summary>
    public static class NormalizationKernels
    {
        /// <summary>Normalizes every row of <paramref name="layout"/>; y has x's layout.</summary>
        public static void Rows<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
            ArrayView<float> meanOut, ArrayView<float> rstdOut, ArrayView<float> varOut, NormLayout layout, float eps)
            where TRms : struct, IFlag
        {
            var slots = SharedMemory.Allocate<Welford>(32);
            int perAffine = layout.Cols / layout.Spatial;
            for (int row = Grid.IdxX; row < layout.Rows; row += Grid.DimX)
            {
                int start = row * layout.RowStride;
                // Shifted data: statistics of x − K with K the row's first element. For rows sitting on a
                // large common offset, x − K is exact and small, so the float mean no longer drifts by an
                // ulp of the offset (which LayerNorm's output would amplify by rstd).
                float shift = x[start];
                var w = default(Welford);
                for (int j = Group.IdxX; j < layout.Cols; j += Group.DimX)
                {
                    float v = x[start + j / layout.SegLen * layout.SegStride + j % layout.SegLen];
                    w = w.Add(v - shift, v);
                }
                w = GroupReduce.AllReduce(w, slots, default(Welford.Merger));

                float variance = w.M2 / w.Count, mean = w.Sum / w.Count, center, rstd;
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
                int affineBase = row % layout.AffineGroups * perAffine;
                for (int j = Group.IdxX; j < layout.Cols; j += Group.DimX)
                {
                    int at = start + j / layout.SegLen * layout.SegStride + j % layout.SegLen;
                    int a = affineBase + j / layout.Spatial;
                    float v = (x[at] - shift - center) * rstd;
                    if (layout.HasGamma != 0)
                        v *= gamma[a];
                    if (layout.HasBeta != 0)
                        v += beta[a];
                    y[at] = v;
                }
                if (Group.IdxX == 0)
                {
                    meanOut[row] = mean;
                    rstdOut[row] = rstd;
                    if (layout.HasVar != 0)
                        varOut[row] = variance;
                }
            }
        }

        /// <summary>
        /// The backward of <see cref="Rows{TRms}"/> for every layout, one group per row as the forward. From the saved mean and
        /// rstd each thread rebuilds x̂ = (x − mean)·rstd (x·rstd for RMSNorm) and dŷ = dy·γ; the group sums Σdŷ, Σdŷ·x̂ and Σx̂
        /// (one shuffle reduction of the triple), then writes dx = rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)) (RMSNorm drops the
        /// mean(dŷ) term) and, in x's layout, the products dy·x̂ whose sums over the rows are dγ — left to a deterministic
        /// column reduction instead of float atomics. The saved float mean of a row on a large offset is off by up to an ulp
        /// of the offset, which shifts every x̂ by the same c (≈ 1e-5 at 100 ± 1); x̂ of LayerNorm, GroupNorm and BatchNorm sums
        /// to zero exactly, so c = mean(x̂) is measured and taken out (x̂ − c, Σdŷ·x̂ − c·Σdŷ) and the backward is as exact as
        /// on centred data. FLOPs ≈ 11·rows·cols. Bytes: 12·rows·cols read twice + 8·rows·cols written.
        /// </summary>
        public static void BackwardRows<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> dy, ArrayView<float> mean, ArrayView<float> rstd,
            ArrayView<float> dx, ArrayView<float> product, NormLayout layout) where TRms : struct, IFlag
        {
            var slots = SharedMemory.Allocate<Float3>(32);
            int perAffine = layout.Cols / layout.Spatial;
            for (int row = Grid.IdxX; row < layout.Rows; row += Grid.DimX)
            {
                int start = row * layout.RowStride, affineBase = row % layout.AffineGroups * perAffine;
                var sums = default(Float3);
                for (int j = Group.IdxX; j < layout.Cols; j += Group.DimX)
                    sums = sums.Add(BackwardTerms<TRms>(x, gamma, dy, mean, rstd, layout, row, start, affineBase, j));
                sums = GroupReduce.AllReduce(sums, slots, default(Float3.Sum));
                for (int j = Group.IdxX; j < layout.Cols; j += Group.DimX)
                    BackwardWrite<TRms>(x, gamma, dy, mean, rstd, dx, product, layout, row, start, affineBase, j, sums);
            }
        }

        internal static void LaunchBackward<TRms>(string name, Tensor x, Tensor? gamma, Tensor dy, Tensor mean, Tensor rstd, Tensor dx, Tensor product, NormLayout layout)
            where TRms : struct, IFlag
        {
            var device = x.Device;
            layout.HasGamma = gamma is null ? 0 : 1;
            var (xv, gv, dv, mv, rv, ov, pv) = (x.ContiguousView, (gamma ?? x).ContiguousView, dy.ContiguousView, mean.ContiguousView, rstd.ContiguousView,
                dx.ContiguousView, product.ContiguousView);
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    unsafe
                    {
                        Cpu.HostRows.NormalizeBackward(Cpu.HostMemory.Ptr(xv), gamma is null ? null : Cpu.HostMemory.Ptr(gv), Cpu.HostMemory.Ptr(dv),
                            Cpu.HostMemory.Ptr(mv), Cpu.HostMemory.Ptr(rv), Cpu.HostMemory.Ptr(ov), Cpu.HostMemory.Ptr(pv), layout, default(TRms).Value);
                    }
                return;
            }
            device.Launch(name, BackwardRows<TRms>, LaunchShapes.RowPerGroup(device, layout.Rows), xv, gv, dv, mv, rv, ov, pv, layout);
        }

        /// <summary>(dŷ, dŷ·x̂, x̂) of element j of a row: the three terms the backward sums.</summary>
        public static Float3 BackwardTerms<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> dy, ArrayView<float> mean, ArrayView<float> rstd,
            NormLayout layout, int row, int start, int affineBase, int j) where TRms : struct, IFlag
        {
            int at = start + j / layout.SegLen * layout.SegStride + j % layout.SegLen;
            float xHat = (default(TRms).Value ? x[at] : x[at] - mean[row]) * rstd[row];
            float dyHat = layout.HasGamma != 0 ? dy[at] * gamma[affineBase + j / layout.Spatial] : dy[at];
            return new Float3 { X = dyHat, Y = dyHat * xHat, Z = xHat };
        }

        /// <summary>Writes dx and dy·x̂ of element j given the row's sums: the part the GPU kernel and the host loop share.</summary>
        public static void BackwardWrite<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> dy, ArrayView<float> mean, ArrayView<float> rstd,
            ArrayView<float> dx, ArrayView<float> product, NormLayout layout, int row, int start, int affineBase, int j, Float3 sums) where TRms : struct, IFlag
        {
            int at = start + j / layout.SegLen * layout.SegStride + j % layout.SegLen;
            float r = rstd[row];
            bool rms = default(TRms).Value;
            // RMSNorm's x̂ has no mean to lose and no zero sum: no correction.
            float drift = rms ? 0f : sums.Z / layout.Cols;
            float xHat = (rms ? x[at] : x[at] - mean[row]) * r - drift;
            float dyHat = layout.HasGamma != 0 ? dy[at] * gamma[affineBase + j / layout.Spatial] : dy[at];
            float meanDyHat = rms ? 0f : sums.X / layout.Cols;
            dx[at] = r * (dyHat - meanDyHat - xHat * ((sums.Y - drift * sums.X) / layout.Cols));
            product[at] = dy[at] * xHat;
        }

        /// <summary>BatchNorm inference fold: scale[c] = γ[c]/√(var[c] + ε), shift[c] = β[c] − mean[c]·scale[c].</summary>
        public static void FoldBatchNorm(ArrayView<float> mean, ArrayView<float> var, ArrayView<float> gamma, ArrayView<float> beta,
            ArrayView<float> scale, ArrayView<float> shift, int channels, float eps, int hasGamma, int hasBeta)
        {
            for (int c = Grid.GlobalIndex.X; c < channels; c += Grid.DimX * Group.DimX)
            {
                float s = 1f / MathF.Sqrt(var[c] + eps);
                if (hasGamma != 0)
                    s *= gamma[c];
                scale[c] = s;
                shift[c] = (hasBeta != 0 ? beta[c] : 0f) - mean[c] * s;
            }
        }

        /// <summary>y = x·scale[c] + shift[c] over [N, C, HW] (one pass; the channel of element i is ⌊i/HW⌋ mod C).</summary>
        public static void ChannelAffine(ArrayView<float> x, ArrayView<float> scale, ArrayView<float> shift, ArrayView<float> y, int channels, int spatial, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
            {
                int c = i / spatial % channels;
                y[i] = x[i] * scale[c] + shift[c];
            }
        }

        /// <summary>
        /// Inference batch normalization of a contiguous x [N, C, H, W] with running statistics (validated by the op): on the fast CPU
        /// device one host pass per channel plane; elsewhere <see cref="FoldBatchNorm"/> folds the statistics and the affine
        /// into a scale and shift per channel, then <see cref="ChannelAffine"/> applies them.
        /// </summary>
        internal static Tensor RunBatchNormInfer(string op, Device device, Tensor x, Tensor runningMean, Tensor runningVar, Tensor? gamma, Tensor? beta, float eps)
        {
            int c = x.Size(1), spatial = x.Size(2) * x.Size(3);
            if (device.IsHostCpu)
            {
                var yh = Tensor.Empty(device, x.ShapeArray());
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostRows.BatchNormInfer(Cpu.HostMemory.Ptr(x), Cpu.HostMemory.Ptr(yh), Cpu.HostMemory.Ptr(runningMean), Cpu.HostMemory.Ptr(runningVar),
                            gamma is null ? null : Cpu.HostMemory.Ptr(gamma), beta is null ? null : Cpu.HostMemory.Ptr(beta), x.Size(0), c, spatial, eps);
                    }
                return yh;
            }
            using var scale = Tensor.Empty(device, c);
            using var shift = Tensor.Empty(device, c);
            device.Launch(op, FoldBatchNorm, LaunchShapes.Linear(device, c, LaunchShapes.ElementwiseGroup(device)),
                runningMean.ContiguousView, runningVar.ContiguousView, (gamma ?? runningMean).ContiguousView, (beta ?? runningMean).ContiguousView,
                scale.ContiguousView, shift.ContiguousView, c, eps, gamma is null ? 0 : 1, beta is null ? 0 : 1);
            var y = Tensor.Empty(device, x.ShapeArray());
            if (y.Length == 0)
                return y;
            device.Launch(op, ChannelAffine, LaunchShapes.Linear(device, y.Length, LaunchShapes.ElementwiseGroup(device)),
                x.ContiguousView, scale.ContiguousView, shift.ContiguousView, y.ContiguousView, c, spatial, y.Length);
            return y;
        }

        /// <summary>LayerNorm/RMSNorm rows of a contiguous x into y and the row statistics: the fast CPU device's host loop,
        /// else <see cref="Rows{TRms}"/>.</summary>
        internal static void RunRows<TRms>(string name, Device device, Tensor x, Tensor? gamma, Tensor? beta, Tensor y, Tensor mean, Tensor rstd,
            Tensor? variance, NormLayout layout, float eps) where TRms : struct, IFlag
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    unsafe
                    {
                        Cpu.HostRows.Normalize(Cpu.HostMemory.Ptr(x), gamma is null ? null : Cpu.HostMemory.Ptr(gamma), beta is null ? null : Cpu.HostMemory.Ptr(beta),
                            Cpu.HostMemory.Ptr(y), Cpu.HostMemory.Ptr(mean), Cpu.HostMemory.Ptr(rstd), variance is null ? null : Cpu.HostMemory.Ptr(variance),
                            layout, eps, default(TRms).Value);
                    }
                return;
            }
            device.Launch(name, Rows<TRms>, LaunchShapes.RowPerGroup(device, layout.Rows),
                x.ContiguousView, (gamma ?? x).ContiguousView, (beta ?? x).ContiguousView, y.ContiguousView, mean.ContiguousView,
                rstd.ContiguousView, (variance ?? rstd).ContiguousView, layout, eps);
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
}

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
        /// rstd each thread rebuilds x̂ = (x − mean)·rstd (x·rstd for RMSNorm) and dŷ = dy·γ; the group sums Σdŷ and Σdŷ·x̂
        /// (one shuffle reduction of the pair), then writes dx = rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)) (RMSNorm drops the
        /// mean(dŷ) term) and, in x's layout, the products dy·x̂ whose sums over the rows are dγ — left to a deterministic
        /// column reduction instead of float atomics. FLOPs ≈ 10·rows·cols. Bytes: 12·rows·cols read twice + 8·rows·cols written.
        /// </summary>
        public static void BackwardRows<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> dy, ArrayView<float> mean, ArrayView<float> rstd,
            ArrayView<float> dx, ArrayView<float> product, NormLayout layout) where TRms : struct, IFlag
        {
            var slots = SharedMemory.Allocate<Float2>(32);
            int perAffine = layout.Cols / layout.Spatial;
            for (int row = Grid.IdxX; row < layout.Rows; row += Grid.DimX)
            {
                int start = row * layout.RowStride, affineBase = row % layout.AffineGroups * perAffine;
                var sums = default(Float2);
                for (int j = Group.IdxX; j < layout.Cols; j += Group.DimX)
                    sums = sums.Add(BackwardTerms<TRms>(x, gamma, dy, mean, rstd, layout, row, start, affineBase, j));
                sums = GroupReduce.AllReduce(sums, slots, default(Float2.Sum));
                for (int j = Group.IdxX; j < layout.Cols; j += Group.DimX)
                    BackwardWrite<TRms>(x, gamma, dy, mean, rstd, dx, product, layout, row, start, affineBase, j, sums);
            }
        }

        internal static void LaunchBackward<TRms>(string name, Tensor x, Tensor? gamma, Tensor dy, Tensor mean, Tensor rstd, Tensor dx, Tensor product, NormLayout layout)
            where TRms : struct, IFlag
        {
            var device = Validate.DeviceOf(name, "x", x);
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

        /// <summary>(dŷ, dŷ·x̂) of element j of a row: the two terms the backward sums.</summary>
        public static Float2 BackwardTerms<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> dy, ArrayView<float> mean, ArrayView<float> rstd,
            NormLayout layout, int row, int start, int affineBase, int j) where TRms : struct, IFlag
        {
            int at = start + j / layout.SegLen * layout.SegStride + j % layout.SegLen;
            float xHat = (default(TRms).Value ? x[at] : x[at] - mean[row]) * rstd[row];
            float dyHat = layout.HasGamma != 0 ? dy[at] * gamma[affineBase + j / layout.Spatial] : dy[at];
            return new Float2 { X = dyHat, Y = dyHat * xHat };
        }

        /// <summary>Writes dx and dy·x̂ of element j given the row's sums: the part the GPU kernel and the host loop share.</summary>
        public static void BackwardWrite<TRms>(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> dy, ArrayView<float> mean, ArrayView<float> rstd,
            ArrayView<float> dx, ArrayView<float> product, NormLayout layout, int row, int start, int affineBase, int j, Float2 sums) where TRms : struct, IFlag
        {
            int at = start + j / layout.SegLen * layout.SegStride + j % layout.SegLen;
            float r = rstd[row];
            float xHat = (default(TRms).Value ? x[at] : x[at] - mean[row]) * r;
            float dyHat = layout.HasGamma != 0 ? dy[at] * gamma[affineBase + j / layout.Spatial] : dy[at];
            float meanDyHat = default(TRms).Value ? 0f : sums.X / layout.Cols;
            dx[at] = r * (dyHat - meanDyHat - xHat * (sums.Y / layout.Cols));
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
            NormalizeLastAxis<Flags.No>("layernorm", x, gamma, beta, eps);

        /// <summary>RMSNorm over the last axis: x/√(mean(x²) + ε)·γ. γ optional [C]. Kernel <c>rmsnorm</c>.</summary>
        public static NormResult RmsNorm(Tensor x, Tensor? gamma = null, float eps = 1e-6f) =>
            NormalizeLastAxis<Flags.Yes>("rmsnorm", x, gamma, null, eps);

        private static NormResult NormalizeLastAxis<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, float eps) where TRms : struct, IFlag
        {
            Validate.Input(name, "x", x);
            if (x.Rank < 1)
                throw new ShapeMismatchException(name, "x", "a tensor of rank ≥ 1", "a scalar");
            int cols = x.Size(-1), rows = cols == 0 ? 0 : x.Length / cols;
            return Normalize<TRms>(name, x, gamma, beta, eps, NormLayout.LastAxis(rows, cols), cols, x.ShapeArray()[..^1]);
        }

        /// <summary>
        /// GroupNorm of x [N, C, *] over <paramref name="groups"/> groups of C/groups channels (and all spatial positions),
        /// γ and β per channel. Mean and rstd are [N, groups]. Kernel <c>groupnorm</c>.
        /// </summary>
        public static NormResult GroupNorm(Tensor x, int groups, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f)
        {
            const string op = "groupnorm";
            Validate.Input(op, "x", x);
            if (x.Rank < 2)
                throw new ShapeMismatchException(op, "x", "[N, C, *] (rank ≥ 2)", GpuNetException.FormatShape(x.ShapeArray()));
            int n = x.Size(0), c = x.Size(1), spatial = (int)ShapeUtil.Product(x.ShapeArray().AsSpan(2));
            if (groups < 1 || c % groups != 0)
                throw new ShapeMismatchException(op, "groups", $"a divisor of C = {c}", groups.ToString());
            int cols = c / groups * spatial;
            var layout = new NormLayout { Rows = n * groups, Cols = cols, RowStride = cols, SegLen = Math.Max(cols, 1), AffineGroups = groups, Spatial = Math.Max(spatial, 1) };
            return Normalize<Flags.No>(op, x, gamma, beta, eps, layout, c, new[] { n, groups });
        }

        /// <summary>
        /// BatchNorm2d in training mode: per-channel statistics over N·H·W of x [N, C, H, W], normalize with them,
        /// and update <paramref name="runningMean"/> / <paramref name="runningVar"/> in place with
        /// <paramref name="momentum"/> (running var uses the unbiased batch variance, as PyTorch). Mean and rstd are [C]. Kernel <c>batchnorm2d_train</c>.
        /// </summary>
        public static NormResult BatchNorm2dTrain(Tensor x, Tensor? gamma = null, Tensor? beta = null, Tensor? runningMean = null, Tensor? runningVar = null,
            float momentum = 0.1f, float eps = 1e-5f)
        {
            const string op = "batchnorm2d_train";
            var device = Validate.DeviceOf(op, "x", x);
            Validate.Input(op, "x", x, device);
            Validate.Rank(op, "x", x, 4);
            int n = x.Size(0), c = x.Size(1), spatial = x.Size(2) * x.Size(3), count = n * spatial;
            if (count < 2 && runningVar is not null)
                throw new ShapeMismatchException(op, "x", "more than one value per channel (N·H·W ≥ 2) to estimate a variance", GpuNetException.FormatShape(x.ShapeArray()));
            CheckChannelVector(op, "running_mean", runningMean, c, device);
            CheckChannelVector(op, "running_var", runningVar, c, device);
            var layout = new NormLayout
            {
                Rows = c, Cols = count, RowStride = spatial, SegLen = Math.Max(spatial, 1), SegStride = c * spatial, AffineGroups = c, Spatial = Math.Max(count, 1), HasVar = 1,
            };
            using var variance = Tensor.Empty(device, c);
            var result = Normalize<Flags.No>(op, x, gamma, beta, eps, layout, c, new[] { c }, variance);
            if (runningMean is not null)
                ElementwiseKernels.MapBinary(op, runningMean, result.Mean, runningMean, new ElementwiseOps.MomentumUpdate { Momentum = momentum, Scale = 1 });
            if (runningVar is not null)
                ElementwiseKernels.MapBinary(op, runningVar, variance, runningVar, new ElementwiseOps.MomentumUpdate { Momentum = momentum, Scale = count / (count - 1f) });
            return result;
        }

        /// <summary>
        /// BatchNorm2d in inference mode: the running statistics and γ/β are folded into a per-channel scale and shift,
        /// then one pass computes y = x·scale[c] + shift[c]. Kernel <c>batchnorm2d_infer</c>.
        /// </summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>batchnorm2d_infer</c>.</remarks>
        public static Tensor BatchNorm2dInfer(Tensor x, Tensor runningMean, Tensor runningVar, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f)
        {
            var r = BatchNorm2dInferCore(x, runningMean, runningVar, gamma, beta, eps);
            Autograd.RecordNoGradient("batchnorm2d_infer", r, x, runningMean, runningVar, gamma, beta);
            return r;
        }

        private static Tensor BatchNorm2dInferCore(Tensor x, Tensor runningMean, Tensor runningVar, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f)
        {
            const string op = "batchnorm2d_infer";
            var device = Validate.DeviceOf(op, "x", x);
            Validate.Input(op, "x", x, device);
            Validate.Rank(op, "x", x, 4);
            int c = x.Size(1), spatial = x.Size(2) * x.Size(3);
            CheckChannelVector(op, "running_mean", runningMean, c, device);
            CheckChannelVector(op, "running_var", runningVar, c, device);
            CheckChannelVector(op, "gamma", gamma, c, device);
            CheckChannelVector(op, "beta", beta, c, device);
            if (device.IsHostCpu)
            {
                var yh = Tensor.Empty(device, x.ShapeArray());
                using var xh = x.Contiguous();
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Kernels.Cpu.HostRows.BatchNormInfer(Ptr(xh), Ptr(yh), Ptr(runningMean), Ptr(runningVar), gamma is null ? null : Ptr(gamma),
                            beta is null ? null : Ptr(beta), x.Size(0), c, spatial, eps);
                    }
                return yh;
            }
            using var scale = Tensor.Empty(device, c);
            using var shift = Tensor.Empty(device, c);
            device.Launch(op, NormalizationKernels.FoldBatchNorm, LaunchShapes.Linear(device, c, LaunchShapes.ElementwiseGroup(device)),
                runningMean.ContiguousView, runningVar.ContiguousView, (gamma ?? runningMean).ContiguousView, (beta ?? runningMean).ContiguousView,
                scale.ContiguousView, shift.ContiguousView, c, eps, gamma is null ? 0 : 1, beta is null ? 0 : 1);
            var y = Tensor.Empty(device, x.ShapeArray());
            if (y.Length == 0)
                return y;
            using var xc = x.Contiguous();
            device.Launch(op, NormalizationKernels.ChannelAffine, LaunchShapes.Linear(device, y.Length, LaunchShapes.ElementwiseGroup(device)),
                xc.ContiguousView, scale.ContiguousView, shift.ContiguousView, y.ContiguousView, c, spatial, y.Length);
            return y;
        }

        /// <summary>Host address of a tensor's first element (fast CPU device only).</summary>
        private static unsafe float* Ptr(Tensor t) => Kernels.Cpu.HostMemory.Ptr(t);

        private static void CheckChannelVector(string op, string name, Tensor? t, int channels, Device device)
        {
            if (t is null)
                return;
            Validate.Input(op, name, t, device);
            if (t.Rank != 1 || t.Length != channels || !t.IsContiguous)
                throw new ShapeMismatchException(op, name, $"a contiguous vector [{channels}] (one per channel)", t.Describe());
        }

        /// <summary>
        /// Records the backward of a normalization: dx by the backward kernel, dγ and dβ by deterministic sums of dy·x̂ and dy
        /// over everything but the affine index — the leading axes for LayerNorm/RMSNorm ([..., C]), batch and spatial axes for
        /// GroupNorm/BatchNorm ([N, C, spatial]).
        /// </summary>
        private static void RecordNormalize<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, NormLayout layout, NormResult result) where TRms : struct, IFlag
        {
            Autograd.RecordNoGradient(name + " (statistics output)", result.Mean, x, gamma, beta);
            Autograd.RecordNoGradient(name + " (statistics output)", result.Rstd, x, gamma, beta);
            var saved = new[] { Autograd.Save(x), Autograd.Save(result.Mean), Autograd.Save(result.Rstd) }
                .Concat(gamma is null ? Array.Empty<Tensor>() : new[] { Autograd.Save(gamma) }).ToArray();
            var shape = x.ShapeArray();
            bool lastAxis = layout.AffineGroups == 1 && layout.Spatial == 1;
            int channels = gamma?.Length ?? beta?.Length ?? 0;
            Autograd.Record(name, result.Output, new[] { x, gamma, beta }, (g, needs) =>
            {
                using var xc = saved[0].Contiguous();
                using var gc = g.Contiguous();
                var dx = Tensor.Empty(xc.Device, shape);
                using var product = Tensor.Empty(xc.Device, shape);
                if (layout.Rows > 0 && layout.Cols > 0)
                    NormalizationKernels.LaunchBackward<TRms>(name + "_backward", xc, gamma is null ? null : saved[3], gc, saved[1], saved[2], dx, product, layout);
                Tensor? AffineSum(Tensor t)
                {
                    if (lastAxis)
                        return SumToShape(t, new[] { channels });
                    using var grouped = t.Reshape(shape[0], shape[1], -1);
                    using var summed = SumToShape(grouped, new[] { 1, channels, 1 });
                    return summed.Reshape(channels);
                }
                return new[] { needs[0] ? dx : Dispose(dx), needs[1] ? AffineSum(product) : null, needs[2] ? AffineSum(gc) : null };
            }, saved);
        }

        private static Tensor? Dispose(Tensor t)
        {
            t.Dispose();
            return null;
        }

        /// <summary>Runs the normalization kernel over <paramref name="layout"/>; γ/β have <paramref name="affineLength"/> entries, the statistics <paramref name="statShape"/>.</summary>
        private static NormResult Normalize<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, float eps, NormLayout layout, int affineLength,
            int[] statShape, Tensor? variance = null) where TRms : struct, IFlag
        {
            var device = Validate.DeviceOf(name, "x", x);
            CheckChannelVector(name, "gamma", gamma, affineLength, device);
            CheckChannelVector(name, "beta", beta, affineLength, device);
            if (!(eps >= 0))
                throw new InvalidArgumentException(name, "eps", "eps ≥ 0", eps.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var result = NormalizeRows<TRms>(name, x, gamma, beta, eps, layout, statShape, variance);
            if (Autograd.ShouldRecord(x, gamma, beta))
                RecordNormalize<TRms>(name, x, gamma, beta, layout, result);
            return result;
        }

        private static NormResult NormalizeRows<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, float eps, NormLayout layout,
            int[] statShape, Tensor? variance) where TRms : struct, IFlag
        {
            var device = Validate.DeviceOf(name, "x", x);
            var y = Tensor.Empty(device, x.ShapeArray());
            var mean = Tensor.Empty(device, statShape);
            var rstd = Tensor.Empty(device, statShape);
            if (layout.Rows > 0 && layout.Cols > 0)
            {
                using var xc = x.Contiguous();
                layout.HasGamma = gamma is null ? 0 : 1;
                layout.HasBeta = beta is null ? 0 : 1;
                if (device.IsHostCpu)
                {
                    using (device.Profiler.Measure(name))
                        unsafe
                        {
                            Kernels.Cpu.HostRows.Normalize(Ptr(xc), gamma is null ? null : Ptr(gamma), beta is null ? null : Ptr(beta), Ptr(y),
                                Ptr(mean), Ptr(rstd), variance is null ? null : Ptr(variance), layout, eps, default(TRms).Value);
                        }
                    return new NormResult(y, mean, rstd);
                }
                device.Launch(name, NormalizationKernels.Rows<TRms>, LaunchShapes.RowPerGroup(device, layout.Rows),
                    xc.ContiguousView, (gamma ?? xc).ContiguousView, (beta ?? xc).ContiguousView, y.ContiguousView, mean.ContiguousView,
                    rstd.ContiguousView, (variance ?? rstd).ContiguousView, layout, eps);
            }
            return new NormResult(y, mean, rstd);
        }
    }
}

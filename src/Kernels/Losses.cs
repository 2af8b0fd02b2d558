using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>A row's softmax normalizer and the plain sum of its logits (label smoothing needs Σx).</summary>
    public struct LogitStats
    {
        /// <summary>(max, Σ exp(x − max)).</summary>
        public MaxSum Norm;

        /// <summary>Σ x.</summary>
        public float Total;

        /// <summary>Nothing seen.</summary>
        public static LogitStats Empty => new() { Norm = MaxSum.Empty, Total = 0 };

        /// <summary>Adds one logit.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly LogitStats Add(float x) => new() { Norm = Norm.Add(x), Total = Total + x };

        /// <summary>Merges partials.</summary>
        public struct Merger : ICombine<LogitStats>
        {
            /// <inheritdoc/>
            public readonly LogitStats Combine(LogitStats a, LogitStats b) => new() { Norm = MaxSum.Merge(a.Norm, b.Norm), Total = a.Total + b.Total };
        }
    }

    /// <summary>
    /// Cross-entropy of logits [rows, C] against class indices, fused: log-softmax and the negative log-likelihood in one pass
    /// over each row, with label smoothing ε (the target distribution (1 − ε)·onehot + ε/C) and an ignored class id.
    /// Forward: one group per row folds (max, Σeˣ, Σx) with warp shuffles, as the softmax kernel; thread 0 writes
    /// loss = lse − (1 − ε)·x_t − (ε/C)·Σx, the row's log-sum-exp lse (saved for the backward) and its weight (0 when
    /// ignored, else 1). Backward: elementwise over [rows, C] from the saved lse — dx = g_row·(e^(x − lse) − (1 − ε)·[j = t] − ε/C),
    /// 0 on ignored rows — a grid-stride loop, nothing reduced, nothing stored but lse.
    /// FLOPs ≈ 4·rows·C forward, 4·rows·C backward. Bytes: 4·rows·C read forward; 8·rows·C read + 4·rows·C written backward.
    /// </summary>
    public static class CrossEntropyKernels
    {
        /// <summary>Per-row loss, log-sum-exp and weight.</summary>
        public static void Rows(ArrayView<float> x, ArrayView<float> target, ArrayView<float> loss, ArrayView<float> lse, ArrayView<float> weight,
            int rows, int classes, int ignoreIndex, float smoothing)
        {
            var slots = SharedMemory.Allocate<LogitStats>(32);
            for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
            {
                int start = row * classes;
                var acc = LogitStats.Empty;
                for (int j = Group.IdxX; j < classes; j += Group.DimX)
                    acc = acc.Add(x[start + j]);
                acc = GroupReduce.AllReduce(acc, slots, default(LogitStats.Merger));
                if (Group.IdxX == 0)
                    RowAt(x, target, loss, lse, weight, acc, row, classes, ignoreIndex, smoothing);
            }
        }

        /// <summary>Writes row <paramref name="row"/>'s outputs from its statistics: the part the GPU kernel and the host loop share.</summary>
        public static void RowAt(ArrayView<float> x, ArrayView<float> target, ArrayView<float> loss, ArrayView<float> lse, ArrayView<float> weight,
            LogitStats stats, int row, int classes, int ignoreIndex, float smoothing)
        {
            int t = (int)target[row];
            float logSumExp = stats.Norm.Max + MathF.Log(stats.Norm.Sum);
            lse[row] = logSumExp;
            if (t == ignoreIndex)
            {
                loss[row] = 0f;
                weight[row] = 0f;
                return;
            }
            loss[row] = logSumExp - (1f - smoothing) * x[row * classes + t] - smoothing / classes * stats.Total;
            weight[row] = 1f;
        }

        /// <summary>dx over [rows, C]: a grid-stride loop over <see cref="BackwardAt"/>.</summary>
        public static void Backward(ArrayView<float> x, ArrayView<float> target, ArrayView<float> lse, ArrayView<float> g, ArrayView<float> dx,
            int classes, int ignoreIndex, float smoothing, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                BackwardAt(x, target, lse, g, dx, classes, ignoreIndex, smoothing, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Backward"/> (shared with the host loop).</summary>
        public static void BackwardAt(ArrayView<float> x, ArrayView<float> target, ArrayView<float> lse, ArrayView<float> g, ArrayView<float> dx,
            int classes, int ignoreIndex, float smoothing, int i)
        {
            int row = i / classes, j = i - row * classes;
            int t = (int)target[row];
            if (t == ignoreIndex)
            {
                dx[i] = 0f;
                return;
            }
            float p = MathF.Exp(x[i] - lse[row]);
            dx[i] = g[row] * (p - (j == t ? 1f - smoothing : 0f) - smoothing / classes);
        }

        internal static void LaunchRows(Tensor x, Tensor target, Tensor loss, Tensor lse, Tensor weight, int ignoreIndex, float smoothing)
        {
            const string name = "cross_entropy";
            var device = x.Device;
            int rows = x.Size(0), classes = x.Size(1);
            var (xv, tv, lv, sv, wv) = (x.ContiguousView, target.ContiguousView, loss.ContiguousView, lse.ContiguousView, weight.ContiguousView);
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    Cpu.HostParallel.For(rows, 2L * classes, (start, end) =>
                    {
                        for (int r = start; r < end; r++)
                        {
                            var stats = LogitStats.Empty;
                            for (int j = 0; j < classes; j++)
                                stats = stats.Add(xv[r * classes + j]);
                            RowAt(xv, tv, lv, sv, wv, stats, r, classes, ignoreIndex, smoothing);
                        }
                    });
                return;
            }
            var k = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float>>(Rows);
            using (device.Profiler.Measure(name))
                k(device.Accelerator.DefaultStream, LaunchShapes.RowPerGroup(device, rows), xv, tv, lv, sv, wv, rows, classes, ignoreIndex, smoothing);
        }

        internal static void LaunchBackward(Tensor x, Tensor target, Tensor lse, Tensor g, Tensor dx, int ignoreIndex, float smoothing)
        {
            const string name = "cross_entropy_backward";
            var device = x.Device;
            int classes = x.Size(1), n = x.Length;
            var (xv, tv, sv, gv, dv) = (x.ContiguousView, target.ContiguousView, lse.ContiguousView, g.ContiguousView, dx.ContiguousView);
            if (Cpu.HostParallel.Elements(device, name, n, 8, i => BackwardAt(xv, tv, sv, gv, dv, classes, ignoreIndex, smoothing, i)))
                return;
            var k = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float, int>>(Backward);
            using (device.Profiler.Measure(name))
                k(device.Accelerator.DefaultStream, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), xv, tv, sv, gv, dv, classes, ignoreIndex, smoothing, n);
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>How a loss reduces its per-element (or per-row) values, as torch.nn.functional's <c>reduction</c>.</summary>
    public enum Reduction
    {
        /// <summary>The mean (over the counted rows for cross-entropy with ignored targets).</summary>
        Mean,
        /// <summary>The sum.</summary>
        Sum,
        /// <summary>No reduction: one value per element (or row).</summary>
        None,
    }

    public static partial class Ops
    {
        /// <summary>
        /// Cross-entropy of logits [N, C] against class indices [N] (held as floats), as torch.nn.functional.cross_entropy:
        /// label smoothing ε mixes the one-hot target with the uniform distribution; rows whose target is
        /// <paramref name="ignoreIndex"/> contribute nothing and do not count in the mean. Fused kernels
        /// <c>cross_entropy</c> (forward) and <c>cross_entropy_backward</c>; the mean is Σ loss / Σ weight by ops that record too.
        /// </summary>
        /// <exception cref="ShapeMismatchException">Shapes do not fit, or a target is not a class index in [0, C) nor the ignored one.</exception>
        public static Tensor CrossEntropy(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean, int ignoreIndex = -100, float labelSmoothing = 0f)
        {
            const string op = "cross_entropy";
            var device = logits.Device;
            Validate.Input(op, "logits", logits, device);
            Validate.Input(op, "target", target, device);
            Validate.Rank(op, "logits", logits, 2);
            int rows = logits.Size(0), classes = logits.Size(1);
            if (target.Rank != 1 || target.Length != rows)
                throw new ShapeMismatchException(op, "target", $"class indices [{rows}]", GpuNetException.FormatShape(target.ShapeArray()));
            if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
                throw new ShapeMismatchException(op, "labelSmoothing", "a value in [0, 1]", labelSmoothing.ToString());
            if (target.RequiresGrad)
                throw new NoGradientException(op, "argument 'target' (class indices) has no gradient; Detach() it");
            // Checked on the host before anything runs: a bad index would otherwise read outside its row on the device.
            var ids = target.ToArray();
            for (int i = 0; i < ids.Length; i++)
                if (ids[i] != ignoreIndex && !(ids[i] >= 0 && ids[i] < classes && ids[i] == MathF.Floor(ids[i])))
                    throw new ShapeMismatchException(op, "target", $"class indices in [0, {classes}) or the ignore index {ignoreIndex}", $"{ids[i]} at row {i}");

            var loss = Tensor.Empty(device, rows);
            using var weight = Tensor.Empty(device, rows);
            var lse = Tensor.Empty(device, rows);
            using (var xc = logits.Contiguous())
            using (var tc = target.Contiguous())
                if (rows > 0)
                    CrossEntropyKernels.LaunchRows(xc, tc, loss, lse, weight, ignoreIndex, labelSmoothing);
            if (Autograd.ShouldRecord(logits))
            {
                var savedX = Autograd.Save(logits);
                var savedT = Autograd.Save(target);
                var savedLse = Autograd.Save(lse);
                Autograd.Record(op, loss, new[] { logits }, (g, _) =>
                {
                    using var xc = savedX.Contiguous();
                    using var tc = savedT.Contiguous();
                    using var gc = g.Contiguous();
                    var dx = Tensor.Empty(xc.Device, xc.ShapeArray());
                    if (dx.Length > 0)
                        CrossEntropyKernels.LaunchBackward(xc, tc, savedLse, gc, dx, ignoreIndex, labelSmoothing);
                    return new[] { dx };
                }, savedX, savedT, savedLse);
            }
            lse.Dispose();
            return Reduce(loss, weight, reduction);
        }

        /// <summary>
        /// Cross-entropy against target probabilities [N, C] (soft labels): −Σ_j p_j·log_softmax(x)_j per row, with label
        /// smoothing applied to p. Composed of recorded ops (log_softmax, mul, sums), so its gradient flows to the logits and to p.
        /// </summary>
        public static Tensor CrossEntropyWithProbabilities(Tensor logits, Tensor probabilities, Reduction reduction = Reduction.Mean, float labelSmoothing = 0f)
        {
            const string op = "cross_entropy";
            Validate.Input(op, "logits", logits, logits.Device);
            Validate.Input(op, "probabilities", probabilities, logits.Device);
            Validate.Rank(op, "logits", logits, 2);
            if (!probabilities.Shape.SequenceEqual(logits.Shape))
                throw new ShapeMismatchException(op, "probabilities", GpuNetException.FormatShape(logits.ShapeArray()), GpuNetException.FormatShape(probabilities.ShapeArray()));
            using var logp = LogSoftmax(logits);
            using var scaled = labelSmoothing == 0f ? null : Scale(probabilities, 1f - labelSmoothing);
            using var smoothed = scaled is null ? null : AddScalarValue(scaled, labelSmoothing / logits.Size(1));
            using var product = Mul(smoothed ?? probabilities, logp);
            using var rowSum = SumLastAxis(product);
            var perRow = Scale(rowSum, -1f);
            return Reduce(perRow, null, reduction);
        }

        /// <summary>
        /// Mean squared error (pred − target)², as torch.nn.functional.mse_loss (target broadcast to pred's shape).
        /// Composed of recorded ops: sub, mul, then the reduction.
        /// </summary>
        public static Tensor MseLoss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
        {
            const string op = "mse_loss";
            Validate.Input(op, "prediction", prediction, prediction.Device);
            Validate.Input(op, "target", target, prediction.Device);
            using var diff = Sub(prediction, target);
            return Reduce(Mul(diff, diff), null, reduction);
        }

        /// <summary>
        /// Binary cross-entropy of logits against targets in [0, 1], as torch.nn.functional.binary_cross_entropy_with_logits:
        /// softplus(x) − x·t per element (stable for any |x|). Composed of recorded ops.
        /// </summary>
        public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean)
        {
            const string op = "binary_cross_entropy_with_logits";
            Validate.Input(op, "logits", logits, logits.Device);
            Validate.Input(op, "target", target, logits.Device);
            using var soft = Softplus(logits);
            using var xt = Mul(logits, target);
            return Reduce(Sub(soft, xt), null, reduction);
        }

        /// <summary>
        /// KL divergence of a VAE's diagonal Gaussian N(μ, e^logvar) from N(0, I): −½·Σ(1 + logvar − μ² − e^logvar) over the last
        /// axis, then the batch reduction (mean over rows for <see cref="Reduction.Mean"/>, as the seed VAE's loss). Composed of recorded ops.
        /// </summary>
        public static Tensor GaussianKl(Tensor mu, Tensor logvar, Reduction reduction = Reduction.Mean)
        {
            const string op = "gaussian_kl";
            Validate.Input(op, "mu", mu, mu.Device);
            Validate.Input(op, "logvar", logvar, mu.Device);
            if (!mu.Shape.SequenceEqual(logvar.Shape))
                throw new ShapeMismatchException(op, "logvar", GpuNetException.FormatShape(mu.ShapeArray()), GpuNetException.FormatShape(logvar.ShapeArray()));
            using var mu2 = Mul(mu, mu);
            using var variance = Exp(logvar);
            using var a = Sub(logvar, mu2);
            using var b = Sub(a, variance);
            using var c = AddScalarValue(b, 1f);
            using var rowSum = SumLastAxis(c);
            return Reduce(Scale(rowSum, -0.5f), null, reduction);
        }

        /// <summary>x + value, recording (the gradient passes through unchanged).</summary>
        private static Tensor AddScalarValue(Tensor x, float value)
        {
            var y = Unary("add_scalar", x, null, new ElementwiseOps.AddScalar { Value = value });
            if (Autograd.ShouldRecord(x))
                Autograd.Record("add_scalar", y, new[] { x }, (g, _) => new[] { Autograd.Save(g) });
            return y;
        }

        /// <summary>Applies a loss reduction to per-element values, consuming them; with weights, the mean is Σ values / Σ weights.</summary>
        private static Tensor Reduce(Tensor values, Tensor? weights, Reduction reduction)
        {
            if (reduction == Reduction.None)
                return values;
            using (values)
            {
                if (reduction == Reduction.Sum)
                    return SumAll(values);
                if (weights is null)
                    return MeanAll(values);
                using var total = SumAll(values);
                using var count = SumAll(weights);
                return Div(total, count);
            }
        }
    }
}

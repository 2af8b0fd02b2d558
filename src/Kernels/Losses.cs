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
            // Without smoothing the Σx term is absent, not 0·Σx: a row holding a −∞ logit has Σx = −∞ and 0·(−∞) = NaN.
            float smoothed = smoothing == 0f ? 0f : smoothing / classes * stats.Total;
            loss[row] = logSumExp - (1f - smoothing) * x[row * classes + t] - smoothed;
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
                    Cpu.HostRows.CrossEntropy(xv, tv, lv, sv, wv, rows, classes, ignoreIndex, smoothing);
                return;
            }
            device.Launch(name, Rows, LaunchShapes.RowPerGroup(device, rows), xv, tv, lv, sv, wv, rows, classes, ignoreIndex, smoothing);
        }

        internal static void LaunchBackward(Tensor x, Tensor target, Tensor lse, Tensor g, Tensor dx, int ignoreIndex, float smoothing)
        {
            const string name = "cross_entropy_backward";
            var device = x.Device;
            int classes = x.Size(1), n = x.Length;
            var (xv, tv, sv, gv, dv) = (x.ContiguousView, target.ContiguousView, lse.ContiguousView, g.ContiguousView, dx.ContiguousView);
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(name))
                    unsafe
                    {
                        Cpu.HostRows.CrossEntropyBackward(Cpu.HostMemory.Ptr(xv), Cpu.HostMemory.Ptr(tv), Cpu.HostMemory.Ptr(sv), Cpu.HostMemory.Ptr(gv),
                            Cpu.HostMemory.Ptr(dv), x.Size(0), classes, ignoreIndex, smoothing);
                    }
                return;
            }
            device.Launch(name, Backward, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)),
                xv, tv, sv, gv, dv, classes, ignoreIndex, smoothing, n);
        }
    }
}

namespace GpuNet.Kernels
{
    /// <summary>Per-element loss functions with their derivatives (the activation backward kernel differentiates them).</summary>
    public static class LossOps
    {
        /// <summary>|x|; derivative sign(x) (0 at 0, as PyTorch).</summary>
        public struct Abs : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => MathF.Abs(x); /// <inheritdoc/>
            public readonly float Derivative(float x) => x > 0 ? 1f : x < 0 ? -1f : 0f; }

        /// <summary>Smooth L1: ½x²/β for |x| &lt; β, else |x| − ½β (torch's smooth_l1_loss; β = 0 is L1).</summary>
        public struct SmoothL1 : IDifferentiableUnaryOp { /// <summary>The threshold β.</summary>
            public float Beta; /// <inheritdoc/>
            public readonly float Apply(float x) { float a = MathF.Abs(x); return a < Beta ? 0.5f * x * x / Beta : a - 0.5f * Beta; } /// <inheritdoc/>
            public readonly float Derivative(float x) => MathF.Abs(x) < Beta ? x / Beta : x > 0 ? 1f : x < 0 ? -1f : 0f; }

        /// <summary>Huber: ½x² for |x| ≤ δ, else δ(|x| − ½δ) (torch's huber_loss).</summary>
        public struct Huber : IDifferentiableUnaryOp { /// <summary>The threshold δ.</summary>
            public float Delta; /// <inheritdoc/>
            public readonly float Apply(float x) { float a = MathF.Abs(x); return a <= Delta ? 0.5f * x * x : Delta * (a - 0.5f * Delta); } /// <inheritdoc/>
            public readonly float Derivative(float x) => MathF.Abs(x) <= Delta ? x : x > 0 ? Delta : -Delta; }

        /// <summary>x·log x with 0·log 0 = 0 (torch.xlogy(x, x)); derivative log x + 1.</summary>
        public struct XLogX : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x == 0f ? 0f : x * MathF.Log(x); /// <inheritdoc/>
            public readonly float Derivative(float x) => MathF.Log(x) + 1f; }
    }

    /// <summary>
    /// The negative log-likelihood of log-probabilities [rows, C] at class indices: forward one thread per row picks −x[r, t_r]
    /// (0 and weight 0 for the ignored class); backward elementwise over [rows, C]: −g_r where j = t_r, else 0.
    /// FLOPs ≈ rows forward, rows·C backward. Bytes: 12·rows forward, 4·rows·C written backward.
    /// </summary>
    public static class NllKernels
    {
        /// <summary>Per-row loss and weight.</summary>
        public static void Rows(ArrayView<float> x, ArrayView<float> target, ArrayView<float> loss, ArrayView<float> weight, int classes, int ignoreIndex, int rows)
        {
            for (int r = Grid.GlobalIndex.X; r < rows; r += Grid.DimX * Group.DimX)
                RowAt(x, target, loss, weight, classes, ignoreIndex, r);
        }

        /// <summary>Row <paramref name="r"/> of <see cref="Rows"/> (shared with the host loop).</summary>
        public static void RowAt(ArrayView<float> x, ArrayView<float> target, ArrayView<float> loss, ArrayView<float> weight, int classes, int ignoreIndex, int r)
        {
            int t = (int)target[r];
            bool ignored = t == ignoreIndex;
            loss[r] = ignored ? 0f : -x[r * classes + t];
            weight[r] = ignored ? 0f : 1f;
        }

        /// <summary>dx over [rows, C].</summary>
        public static void Backward(ArrayView<float> target, ArrayView<float> g, ArrayView<float> dx, int classes, int ignoreIndex, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                BackwardAt(target, g, dx, classes, ignoreIndex, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Backward"/> (shared with the host loop).</summary>
        public static void BackwardAt(ArrayView<float> target, ArrayView<float> g, ArrayView<float> dx, int classes, int ignoreIndex, int i)
        {
            int r = i / classes, t = (int)target[r];
            dx[i] = t != ignoreIndex && i - r * classes == t ? -g[r] : 0f;
        }

        /// <summary>The loss of each of <paramref name="rows"/> rows: the fast CPU's parallel loop over <see cref="RowAt"/>, else the kernel <see cref="Rows"/>.</summary>
        internal static void RunRows(string op, Device device, ArrayView<float> x, ArrayView<float> target, ArrayView<float> loss, ArrayView<float> weight, int classes, int ignoreIndex, int rows)
        {
            if (Cpu.HostParallel.Elements(device, op, rows, 4, r => RowAt(x, target, loss, weight, classes, ignoreIndex, r)))
                return;
            device.Launch(op, Rows, LaunchShapes.Linear(device, rows, LaunchShapes.ElementwiseGroup(device)), x, target, loss, weight, classes, ignoreIndex, rows);
        }

        /// <summary>The gradient of n log-probabilities: the fast CPU's parallel loop over <see cref="BackwardAt"/>, else the kernel <see cref="Backward"/>.</summary>
        internal static void RunBackward(string op, Device device, ArrayView<float> target, ArrayView<float> g, ArrayView<float> dx, int classes, int ignoreIndex, int n)
        {
            if (Cpu.HostParallel.Elements(device, op, n, 2, i => BackwardAt(target, g, dx, classes, ignoreIndex, i)))
                return;
            device.Launch(op, Backward, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), target, g, dx, classes, ignoreIndex, n);
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
        /// <summary>The sum divided by the batch size (the first dimension): kl_div's 'batchmean', the true KL per sample.</summary>
        BatchMean,
    }
}

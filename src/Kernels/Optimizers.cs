using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>Hyper-parameters of one Adam/AdamW step (bias corrections precomputed on the host for the step number).</summary>
    public struct AdamStep
    {
        /// <summary>Learning rate.</summary>
        public float Lr;
        /// <summary>β₁, β₂.</summary>
        public float Beta1, Beta2;
        /// <summary>ε added to the denominator.</summary>
        public float Eps;
        /// <summary>Weight decay: L2 added to the gradient (Adam) or decoupled p ← p·(1 − lr·wd) (AdamW).</summary>
        public float WeightDecay;
        /// <summary>1 − β₁ᵗ and √(1 − β₂ᵗ).</summary>
        public float BiasCorrection1, BiasCorrection2Sqrt;
        /// <summary>1 for AdamW's decoupled weight decay.</summary>
        public int Decoupled;
        /// <summary>1 for AMSGrad (the running maximum of v in the denominator).</summary>
        public int AmsGrad;
    }

    /// <summary>Hyper-parameters of one SGD step.</summary>
    public struct SgdStep
    {
        /// <summary>Learning rate, momentum, dampening, L2 weight decay.</summary>
        public float Lr, Momentum, Dampening, WeightDecay;
        /// <summary>1 for Nesterov momentum; 1 on the first step (the momentum buffer starts as the gradient).</summary>
        public int Nesterov, FirstStep;
    }

    /// <summary>Hyper-parameters of one RMSprop step.</summary>
    public struct RmsPropStep
    {
        /// <summary>Learning rate, smoothing α, ε, momentum, L2 weight decay.</summary>
        public float Lr, Alpha, Eps, Momentum, WeightDecay;
        /// <summary>1 for the centered variant (variance estimate minus the squared mean gradient).</summary>
        public int Centered;
    }

    /// <summary>Hyper-parameters of one Adagrad step.</summary>
    public struct AdagradStep
    {
        /// <summary>The decayed learning rate lr/(1 + (t − 1)·lr_decay), ε, L2 weight decay.</summary>
        public float Lr, Eps, WeightDecay;
    }

    /// <summary>
    /// The optimizer family: each step is one fused elementwise kernel per parameter that reads the parameter, its gradient
    /// and its state once and writes parameter and state back in place (PyTorch's foreach/fused formulas, same order of
    /// operations). Grid-stride loops over a per-element body that the fast CPU device's host loop shares.
    /// Bytes per element: Adam 16 read + 12 written (AMSGrad +8); SGD with momentum 12 + 8; RMSprop 12–16 + 8–12; Adagrad 12 + 8.
    /// </summary>
    public static class OptimizerKernels
    {
        /// <summary>Adam/AdamW over n elements.</summary>
        public static void Adam(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, ArrayView<float> vMax, AdamStep h, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                AdamAt(p, g, m, v, vMax, h, i);
        }

        /// <summary>One element of <see cref="Adam"/>.</summary>
        public static void AdamAt(ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v, ArrayView<float> vMax, AdamStep h, int i)
        {
            float param = p[i], grad = g[i];
            if (h.Decoupled != 0)
                param *= 1f - h.Lr * h.WeightDecay;
            else
                grad += h.WeightDecay * param;
            float mi = h.Beta1 * m[i] + (1f - h.Beta1) * grad;
            float vi = h.Beta2 * v[i] + (1f - h.Beta2) * grad * grad;
            m[i] = mi;
            v[i] = vi;
            if (h.AmsGrad != 0)
            {
                vi = IntrinsicMath.Max(vMax[i], vi);
                vMax[i] = vi;
            }
            float denom = MathF.Sqrt(vi) / h.BiasCorrection2Sqrt + h.Eps;
            p[i] = param - h.Lr / h.BiasCorrection1 * mi / denom;
        }

        /// <summary>SGD (momentum, dampening, Nesterov, weight decay) over n elements.</summary>
        public static void Sgd(ArrayView<float> p, ArrayView<float> g, ArrayView<float> buffer, SgdStep h, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                SgdAt(p, g, buffer, h, i);
        }

        /// <summary>One element of <see cref="Sgd"/>.</summary>
        public static void SgdAt(ArrayView<float> p, ArrayView<float> g, ArrayView<float> buffer, SgdStep h, int i)
        {
            float param = p[i];
            float d = g[i] + h.WeightDecay * param;
            if (h.Momentum != 0f)
            {
                float b = h.FirstStep != 0 ? d : h.Momentum * buffer[i] + (1f - h.Dampening) * d;
                buffer[i] = b;
                d = h.Nesterov != 0 ? d + h.Momentum * b : b;
            }
            p[i] = param - h.Lr * d;
        }

        /// <summary>RMSprop over n elements.</summary>
        public static void RmsProp(ArrayView<float> p, ArrayView<float> g, ArrayView<float> square, ArrayView<float> mean, ArrayView<float> buffer, RmsPropStep h, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                RmsPropAt(p, g, square, mean, buffer, h, i);
        }

        /// <summary>One element of <see cref="RmsProp"/>.</summary>
        public static void RmsPropAt(ArrayView<float> p, ArrayView<float> g, ArrayView<float> square, ArrayView<float> mean, ArrayView<float> buffer, RmsPropStep h, int i)
        {
            float param = p[i];
            float grad = g[i] + h.WeightDecay * param;
            float sq = h.Alpha * square[i] + (1f - h.Alpha) * grad * grad;
            square[i] = sq;
            float avg;
            if (h.Centered != 0)
            {
                float gm = h.Alpha * mean[i] + (1f - h.Alpha) * grad;
                mean[i] = gm;
                avg = MathF.Sqrt(sq - gm * gm) + h.Eps;
            }
            else
                avg = MathF.Sqrt(sq) + h.Eps;
            if (h.Momentum > 0f)
            {
                float b = h.Momentum * buffer[i] + grad / avg;
                buffer[i] = b;
                p[i] = param - h.Lr * b;
            }
            else
                p[i] = param - h.Lr * grad / avg;
        }

        /// <summary>Adagrad over n elements.</summary>
        public static void Adagrad(ArrayView<float> p, ArrayView<float> g, ArrayView<float> sum, AdagradStep h, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                AdagradAt(p, g, sum, h, i);
        }

        /// <summary>One element of <see cref="Adagrad"/>.</summary>
        public static void AdagradAt(ArrayView<float> p, ArrayView<float> g, ArrayView<float> sum, AdagradStep h, int i)
        {
            float param = p[i];
            float grad = g[i] + h.WeightDecay * param;
            float s = sum[i] + grad * grad;
            sum[i] = s;
            p[i] = param - h.Lr * grad / (MathF.Sqrt(s) + h.Eps);
        }
    }

    /// <summary>min(1, max_norm / (√Σg² + 1e-6)) from the squared global norm: the factor that clips gradients.</summary>
    public struct ClipCoefficient : IUnaryOp
    {
        /// <summary>The largest allowed global norm.</summary>
        public float MaxNorm;

        /// <inheritdoc/>
        public readonly float Apply(float sumOfSquares) => IntrinsicMath.Min(1f, MaxNorm / (MathF.Sqrt(sumOfSquares) + 1e-6f));
    }

    /// <summary>√x.</summary>
    public struct SquareRoot : IUnaryOp
    {
        /// <inheritdoc/>
        public readonly float Apply(float x) => MathF.Sqrt(x);
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    public static partial class Ops
    {
        private static void CheckState(string op, Tensor p, Tensor g, params (string Name, Tensor? T)[] state)
        {
            var device = Validate.DeviceOf(op, "param", p);
            Validate.Input(op, "param", p, device);
            Validate.Input(op, "grad", g, device);
            if (!p.IsContiguous)
                throw new ShapeMismatchException(op, "param", "a contiguous parameter", p.Describe());
            if (!g.Shape.SequenceEqual(p.Shape) || !g.IsContiguous)
                throw new ShapeMismatchException(op, "grad", $"a contiguous {GpuNetException.FormatShape(p.ShapeArray())}", g.Describe());
            foreach (var (name, t) in state)
                if (t is not null)
                {
                    Validate.Input(op, name, t, device);
                    if (!t.Shape.SequenceEqual(p.Shape) || !t.IsContiguous)
                        throw new ShapeMismatchException(op, name, $"a contiguous {GpuNetException.FormatShape(p.ShapeArray())}", t.Describe());
                }
        }

        /// <summary>One Adam/AdamW step in place on <paramref name="param"/> and its moments (and running max for AMSGrad). Kernel <c>adam_step</c>.</summary>
        public static void AdamUpdate(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? vMax, AdamStep step)
        {
            const string op = "adam_step";
            CheckState(op, param, grad, ("exp_avg", Validate.NotNull(op, "exp_avg", m)), ("exp_avg_sq", Validate.NotNull(op, "exp_avg_sq", v)), ("max_exp_avg_sq", vMax));
            if (step.AmsGrad != 0 && vMax is null)
                throw new MissingArgumentException(op, "max_exp_avg_sq", "the max_exp_avg_sq state (AMSGrad)");
            var (pv, gv, mv, vv, xv, n) = (param.ContiguousView, grad.ContiguousView, m.ContiguousView, v.ContiguousView, (vMax ?? v).ContiguousView, param.Length);
            var device = Validate.DeviceOf(op, "param", param);
            if (n == 0)
                return;
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    Kernels.Cpu.HostOptimizers.Adam(pv, gv, mv, vv, xv, step, n);
                return;
            }
            device.Launch(op, OptimizerKernels.Adam, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)),
                pv, gv, mv, vv, xv, step, n);
        }

        /// <summary>One SGD step in place (momentum buffer may be null when momentum is 0). Kernel <c>sgd_step</c>.</summary>
        public static void SgdUpdate(Tensor param, Tensor grad, Tensor? buffer, SgdStep step)
        {
            const string op = "sgd_step";
            CheckState(op, param, grad, ("momentum_buffer", buffer));
            if (step.Momentum != 0f && buffer is null)
                throw new MissingArgumentException(op, "momentum_buffer", "the momentum_buffer state (momentum ≠ 0)");
            var (pv, gv, bv, n) = (param.ContiguousView, grad.ContiguousView, (buffer ?? grad).ContiguousView, param.Length);
            var device = Validate.DeviceOf(op, "param", param);
            if (n == 0)
                return;
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    Kernels.Cpu.HostOptimizers.Sgd(pv, gv, bv, step, n);
                return;
            }
            device.Launch(op, OptimizerKernels.Sgd, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)),
                pv, gv, bv, step, n);
        }

        /// <summary>One RMSprop step in place (mean for the centered variant, buffer for momentum; null otherwise). Kernel <c>rmsprop_step</c>.</summary>
        public static void RmsPropUpdate(Tensor param, Tensor grad, Tensor square, Tensor? mean, Tensor? buffer, RmsPropStep step)
        {
            const string op = "rmsprop_step";
            CheckState(op, param, grad, ("square_avg", Validate.NotNull(op, "square_avg", square)), ("grad_avg", mean), ("momentum_buffer", buffer));
            if ((step.Centered != 0 && mean is null) || (step.Momentum > 0 && buffer is null))
                throw new MissingArgumentException(op, mean is null && step.Centered != 0 ? "grad_avg" : "momentum_buffer",
                    "grad_avg for the centered variant and momentum_buffer for momentum > 0");
            var (pv, gv, sv, mv, bv, n) = (param.ContiguousView, grad.ContiguousView, square.ContiguousView, (mean ?? square).ContiguousView, (buffer ?? square).ContiguousView, param.Length);
            if (n == 0 || Kernels.Cpu.HostParallel.Elements(param.Device, op, n, 8, i => OptimizerKernels.RmsPropAt(pv, gv, sv, mv, bv, step, i)))
                return;
            var device = Validate.DeviceOf(op, "param", param);
            device.Launch(op, OptimizerKernels.RmsProp, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)),
                pv, gv, sv, mv, bv, step, n);
        }

        /// <summary>One Adagrad step in place. Kernel <c>adagrad_step</c>.</summary>
        public static void AdagradUpdate(Tensor param, Tensor grad, Tensor sum, AdagradStep step)
        {
            const string op = "adagrad_step";
            CheckState(op, param, grad, ("sum", Validate.NotNull(op, "sum", sum)));
            var (pv, gv, sv, n) = (param.ContiguousView, grad.ContiguousView, sum.ContiguousView, param.Length);
            if (n == 0 || Kernels.Cpu.HostParallel.Elements(param.Device, op, n, 6, i => OptimizerKernels.AdagradAt(pv, gv, sv, step, i)))
                return;
            var device = Validate.DeviceOf(op, "param", param);
            device.Launch(op, OptimizerKernels.Adagrad, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)),
                pv, gv, sv, step, n);
        }

        /// <summary>
        /// Scales <paramref name="grads"/> in place so their global L2 norm is at most <paramref name="maxNorm"/>
        /// (torch.nn.utils.clip_grad_norm_): Σg² per tensor and their total on the device, the clip factor by one tiny
        /// kernel, then one broadcast multiply per tensor — no host round-trip. Returns the norm before clipping, shape [1].
        /// </summary>
        public static Tensor ClipGradNorm(IReadOnlyList<Tensor> grads, float maxNorm)
        {
            const string op = "clip_grad_norm";
            if (Validate.NotNull(op, "grads", grads).Count == 0)
                throw new ShapeMismatchException(op, "grads", "at least one gradient", "an empty list");
            var device = grads[0].Device;
            using var _ = Autograd.NoGrad();
            Tensor? total = null;
            foreach (var g in grads)
            {
                Validate.Input(op, "grad", g, device);
                using var sq = Mul(g, g);
                var s = SumAll(sq);
                if (total is null)
                    total = s;
                else
                    using (s)
                        Add(total, s, total);
            }
            using (total)
            {
                using var factor = Unary("clip_coefficient", total!, null, new ClipCoefficient { MaxNorm = maxNorm });
                foreach (var g in grads)
                    Mul(g, factor, g);
                return Unary("sqrt", total!, null, new SquareRoot());
            }
        }
    }
}

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

        /// <summary>One Adam step over n elements: the fast CPU device's host loop, else <see cref="Adam"/>.</summary>
        internal static void RunAdam(string op, Device device, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
            ArrayView<float> vMax, AdamStep h, int n)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    Cpu.HostOptimizers.Adam(p, g, m, v, vMax, h, n);
                return;
            }
            device.Launch(op, Adam, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), p, g, m, v, vMax, h, n);
        }

        /// <summary>One SGD step over n elements: the fast CPU device's host loop, else <see cref="Sgd"/>.</summary>
        internal static void RunSgd(string op, Device device, ArrayView<float> p, ArrayView<float> g, ArrayView<float> buffer, SgdStep h, int n)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    Cpu.HostOptimizers.Sgd(p, g, buffer, h, n);
                return;
            }
            device.Launch(op, Sgd, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), p, g, buffer, h, n);
        }

        /// <summary>One RMSprop step over n elements: the fast CPU's parallel loop over <see cref="RmsPropAt"/>, else the kernel <see cref="RmsProp"/>.</summary>
        internal static void RunRmsProp(string op, Device device, ArrayView<float> p, ArrayView<float> g, ArrayView<float> square, ArrayView<float> mean, ArrayView<float> buffer, RmsPropStep h, int n)
        {
            if (Cpu.HostParallel.Elements(device, op, n, 8, i => RmsPropAt(p, g, square, mean, buffer, h, i)))
                return;
            device.Launch(op, RmsProp, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), p, g, square, mean, buffer, h, n);
        }

        /// <summary>One Adagrad step over n elements: the fast CPU's parallel loop over <see cref="AdagradAt"/>, else the kernel <see cref="Adagrad"/>.</summary>
        internal static void RunAdagrad(string op, Device device, ArrayView<float> p, ArrayView<float> g, ArrayView<float> sum, AdagradStep h, int n)
        {
            if (Cpu.HostParallel.Elements(device, op, n, 6, i => AdagradAt(p, g, sum, h, i)))
                return;
            device.Launch(op, Adagrad, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), p, g, sum, h, n);
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

using System.Runtime.CompilerServices;

namespace GpuNet.Kernels
{
    /// <summary>
    /// The activation functions, as <see cref="IUnaryOp"/> structs for the elementwise kernels and the
    /// matmul epilogue. Each is written for float32 accuracy over the whole real line using only
    /// exp and log (which every backend has): no cancellation near 0, no overflow to NaN for large |x|.
    /// </summary>
    public static class Activation
    {
        /// <summary>max(x, 0).</summary>
        public struct Relu : IUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x > 0 ? x : 0f; }

        /// <summary>x for x ≥ 0, slope·x otherwise (PyTorch default slope 0.01).</summary>
        public struct LeakyRelu : IUnaryOp { /// <summary>Slope for negative inputs.</summary>
            public float Slope; /// <inheritdoc/>
            public readonly float Apply(float x) => x >= 0 ? x : Slope * x; }

        /// <summary>x·Φ(x) = ½x(1 + erf(x/√2)), the exact GELU.</summary>
        public struct GeluErf : IUnaryOp
        {
            /// <inheritdoc/>
            public readonly float Apply(float x)
            {
                // Written with erfc so both tails keep full relative precision: for x < 0 the
                // result is ½x·erfc(|x|/√2) directly, never 1 − (something close to 1).
                float z = x * 0.70710678118654752f;
                return z >= 0 ? 0.5f * x * (2f - MathFn.Erfc(z)) : 0.5f * x * MathFn.Erfc(-z);
            }
        }

        /// <summary>½x(1 + tanh(√(2/π)(x + 0.044715x³))), the tanh approximation of GELU.</summary>
        public struct GeluTanh : IUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => 0.5f * x * (1f + MathFn.Tanh(0.7978845608028654f * (x + 0.044715f * x * x * x))); }

        /// <summary>x·σ(x).</summary>
        public struct Silu : IUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x * MathFn.Sigmoid(x); }

        /// <summary>1 / (1 + e^−x).</summary>
        public struct Sigmoid : IUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => MathFn.Sigmoid(x); }

        /// <summary>tanh x.</summary>
        public struct Tanh : IUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => MathFn.Tanh(x); }

        /// <summary>log(1 + eˣ), linear above 20 as PyTorch's default threshold.</summary>
        public struct Softplus : IUnaryOp
        {
            /// <inheritdoc/>
            public readonly float Apply(float x) =>
                x > 20f ? x : x < -15f ? MathF.Exp(x) : MathFn.Log1p(MathF.Exp(x));
        }

        /// <summary>x for x &gt; 0, alpha·(eˣ − 1) otherwise (PyTorch default alpha 1).</summary>
        public struct Elu : IUnaryOp { /// <summary>Scale of the negative branch.</summary>
            public float Alpha; /// <inheritdoc/>
            public readonly float Apply(float x) => x > 0 ? x : Alpha * MathFn.Expm1(x); }

        /// <summary>e^(Scale·x): a VAE's standard deviation exp(½·logvar) in one pass.</summary>
        public struct Exp : IUnaryOp { /// <summary>Factor applied before the exponential.</summary>
            public float Scale; /// <inheritdoc/>
            public readonly float Apply(float x) => MathF.Exp(Scale * x); }

        /// <summary>Scale·x: the diffusion samplers' per-step coefficients.</summary>
        public struct Scale : IUnaryOp { /// <summary>The factor.</summary>
            public float Factor; /// <inheritdoc/>
            public readonly float Apply(float x) => Factor * x; }
    }

    /// <summary>Float32 special functions built from exp and log, accurate to a few ulp in relative terms.</summary>
    public static class MathFn
    {
        /// <summary>σ(x), computed from e^−|x| so it never overflows.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Sigmoid(float x)
        {
            float e = MathF.Exp(-MathF.Abs(x));
            return x >= 0 ? 1f / (1f + e) : e / (1f + e);
        }

        /// <summary>tanh x: an odd Taylor polynomial below |x| = 0.25 (where 1 − e^−2|x| would cancel), e^−2|x| above.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Tanh(float x)
        {
            float ax = MathF.Abs(x);
            if (ax < 0.25f)
            {
                float x2 = x * x;
                // x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835; the next term is below 1e-8 relative here.
                return x * (1f + x2 * (-0.33333333f + x2 * (0.13333333f + x2 * (-0.053968254f + x2 * 0.021869488f))));
            }
            float t = MathF.Exp(-2f * ax);
            float r = (1f - t) / (1f + t);
            return x < 0 ? -r : r;
        }

        /// <summary>log(1 + u) without losing u when it is small (Goldberg: log(w)·u/(w − 1) with w = 1 + u).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Log1p(float u)
        {
            float w = 1f + u;
            return w == 1f ? u : MathF.Log(w) * u / (w - 1f);
        }

        /// <summary>eˣ − 1 without cancellation near 0 (Kahan: (w − 1)·x/log w with w = eˣ).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Expm1(float x)
        {
            if (x < -20f)
                return -1f;
            float w = MathF.Exp(x);
            if (w == 1f)
                return x;
            float wm1 = w - 1f;
            return wm1 * x / MathF.Log(w);
        }

        /// <summary>
        /// erfc(z) for z ≥ 0 with fractional error below 1.2e-7 (the Chebyshev-fitted form of
        /// Press et al., Numerical Recipes §6.2); erfc(−z) = 2 − erfc(z).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Erfc(float z)
        {
            float az = MathF.Abs(z);
            float t = 1f / (1f + 0.5f * az);
            float poly = -az * az - 1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f +
                t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
            float r = t * MathF.Exp(poly);
            return z >= 0 ? r : 2f - r;
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    public static partial class Ops
    {
        /// <summary>max(x, 0). Kernel <c>relu</c>.</summary>
        public static Tensor Relu(Tensor x, Tensor? output = null) => Unary("relu", x, output, new Activation.Relu());

        /// <summary>x ≥ 0 ? x : slope·x. Kernel <c>leaky_relu</c>.</summary>
        public static Tensor LeakyRelu(Tensor x, float slope = 0.01f, Tensor? output = null) => Unary("leaky_relu", x, output, new Activation.LeakyRelu { Slope = slope });

        /// <summary>Exact GELU, ½x(1 + erf(x/√2)). Kernel <c>gelu_erf</c>.</summary>
        public static Tensor GeluErf(Tensor x, Tensor? output = null) => Unary("gelu_erf", x, output, new Activation.GeluErf());

        /// <summary>Tanh-approximated GELU. Kernel <c>gelu_tanh</c>.</summary>
        public static Tensor GeluTanh(Tensor x, Tensor? output = null) => Unary("gelu_tanh", x, output, new Activation.GeluTanh());

        /// <summary>x·σ(x). Kernel <c>silu</c>.</summary>
        public static Tensor Silu(Tensor x, Tensor? output = null) => Unary("silu", x, output, new Activation.Silu());

        /// <summary>σ(x). Kernel <c>sigmoid</c>.</summary>
        public static Tensor Sigmoid(Tensor x, Tensor? output = null) => Unary("sigmoid", x, output, new Activation.Sigmoid());

        /// <summary>tanh x. Kernel <c>tanh</c>.</summary>
        public static Tensor Tanh(Tensor x, Tensor? output = null) => Unary("tanh", x, output, new Activation.Tanh());

        /// <summary>log(1 + eˣ) (linear above 20). Kernel <c>softplus</c>.</summary>
        public static Tensor Softplus(Tensor x, Tensor? output = null) => Unary("softplus", x, output, new Activation.Softplus());

        /// <summary>x &gt; 0 ? x : alpha(eˣ − 1). Kernel <c>elu</c>.</summary>
        public static Tensor Elu(Tensor x, float alpha = 1f, Tensor? output = null) => Unary("elu", x, output, new Activation.Elu { Alpha = alpha });

        /// <summary>e^(scale·x). Kernel <c>exp</c>.</summary>
        public static Tensor Exp(Tensor x, float scale = 1f, Tensor? output = null) => Unary("exp", x, output, new Activation.Exp { Scale = scale });

        /// <summary>factor·x. Kernel <c>scale</c>.</summary>
        public static Tensor Scale(Tensor x, float factor, Tensor? output = null) => Unary("scale", x, output, new Activation.Scale { Factor = factor });
    }
}

using System.Runtime.CompilerServices;

namespace GpuNet.Kernels
{
    /// <summary>A unary operator with its derivative, so one backward kernel (<see cref="Activation.Backward{TOp}"/>) serves every activation.</summary>
    public interface IDifferentiableUnaryOp : IUnaryOp
    {
        /// <summary>df/dx at x.</summary>
        float Derivative(float x);
    }

    /// <summary>
    /// The activation functions, as <see cref="IUnaryOp"/> structs for the elementwise kernels and the
    /// matmul epilogue. Each is written for float32 accuracy over the whole real line using only
    /// exp and log (which every backend has): no cancellation near 0, no overflow to NaN for large |x|.
    /// </summary>
    public static class Activation
    {
        /// <summary>max(x, 0); NaN stays NaN, as PyTorch's (x ≤ 0 is false for NaN).</summary>
        public struct Relu : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x <= 0 ? 0f : x; /// <inheritdoc/>
            public readonly float Derivative(float x) => x > 0 ? 1f : 0f; }

        /// <summary>min(max(x, 0), 6) (MobileNet's ReLU6, ONNX Clip(0, 6)); NaN stays NaN.</summary>
        public struct Relu6 : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x <= 0 ? 0f : x >= 6 ? 6f : x; /// <inheritdoc/>
            public readonly float Derivative(float x) => x > 0 && x < 6 ? 1f : 0f; }

        /// <summary>x for x ≥ 0, slope·x otherwise (PyTorch default slope 0.01).</summary>
        public struct LeakyRelu : IDifferentiableUnaryOp { /// <summary>Slope for negative inputs.</summary>
            public float Slope; /// <inheritdoc/>
            public readonly float Apply(float x) => x >= 0 ? x : Slope * x; /// <inheritdoc/>
            public readonly float Derivative(float x) => x > 0 ? 1f : Slope; }

        /// <summary>x·Φ(x) = ½x(1 + erf(x/√2)), the exact GELU.</summary>
        public struct GeluErf : IDifferentiableUnaryOp
        {
            /// <inheritdoc/>
            public readonly float Apply(float x)
            {
                // Written with erfc so both tails keep full relative precision: for x < 0 the
                // result is ½x·erfc(|x|/√2) directly, never 1 − (something close to 1).
                float z = x * 0.70710678118654752f;
                return z >= 0 ? 0.5f * x * (2f - MathFn.Erfc(z)) : 0.5f * x * MathFn.Erfc(-z);
            }

            /// <summary>Φ(x) + x·φ(x), Φ from erfc as in the forward.</summary>
            public readonly float Derivative(float x)
            {
                float z = x * 0.70710678118654752f;
                float cdf = z >= 0 ? 1f - 0.5f * MathFn.Erfc(z) : 0.5f * MathFn.Erfc(-z);
                return cdf + x * 0.3989422804014327f * MathF.Exp(-0.5f * x * x);
            }
        }

        /// <summary>½x(1 + tanh(√(2/π)(x + 0.044715x³))), the tanh approximation of GELU.</summary>
        public struct GeluTanh : IDifferentiableUnaryOp
        {
            /// <inheritdoc/>
            public readonly float Apply(float x) => 0.5f * x * (1f + MathFn.Tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));

            /// <summary>½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²) with t the forward's tanh.</summary>
            public readonly float Derivative(float x)
            {
                float t = MathFn.Tanh(0.7978845608028654f * (x + 0.044715f * x * x * x));
                return 0.5f * (1f + t) + 0.5f * x * (1f - t * t) * 0.7978845608028654f * (1f + 0.134145f * x * x);
            }
        }

        /// <summary>x·σ(x).</summary>
        public struct Silu : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => x * MathFn.Sigmoid(x); /// <summary>σ(x)·(1 + x·(1 − σ(x))).</summary>
            public readonly float Derivative(float x) { float s = MathFn.Sigmoid(x); return s * (1f + x * (1f - s)); } }

        /// <summary>1 / (1 + e^−x).</summary>
        public struct Sigmoid : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => MathFn.Sigmoid(x); /// <summary>σ(x)·σ(−x): both factors from e^−|x|, so no 1 − σ cancellation in the tails.</summary>
            public readonly float Derivative(float x) => MathFn.Sigmoid(x) * MathFn.Sigmoid(-x); }

        /// <summary>tanh x.</summary>
        public struct Tanh : IDifferentiableUnaryOp { /// <inheritdoc/>
            public readonly float Apply(float x) => MathFn.Tanh(x); /// <summary>1 − tanh²x.</summary>
            public readonly float Derivative(float x) { float t = MathFn.Tanh(x); return 1f - t * t; } }

        /// <summary>log(1 + eˣ), linear above 20 as PyTorch's default threshold.</summary>
        public struct Softplus : IDifferentiableUnaryOp
        {
            /// <inheritdoc/>
            public readonly float Apply(float x) =>
                x > 20f ? x : x < -15f ? MathF.Exp(x) : MathFn.Log1p(MathF.Exp(x));

            /// <summary>σ(x), and 1 above the threshold where the forward is x.</summary>
            public readonly float Derivative(float x) => x > 20f ? 1f : MathFn.Sigmoid(x);
        }

        /// <summary>x for x &gt; 0, alpha·(eˣ − 1) otherwise (PyTorch default alpha 1).</summary>
        public struct Elu : IDifferentiableUnaryOp { /// <summary>Scale of the negative branch.</summary>
            public float Alpha; /// <inheritdoc/>
            public readonly float Apply(float x) => x > 0 ? x : Alpha * MathFn.Expm1(x); /// <inheritdoc/>
            public readonly float Derivative(float x) => x > 0 ? 1f : Alpha * MathF.Exp(x); }

        /// <summary>e^(Scale·x): a VAE's standard deviation exp(½·logvar) in one pass.</summary>
        public struct Exp : IDifferentiableUnaryOp { /// <summary>Factor applied before the exponential.</summary>
            public float Scale; /// <inheritdoc/>
            public readonly float Apply(float x) => MathF.Exp(Scale * x); /// <inheritdoc/>
            public readonly float Derivative(float x) => Scale * MathF.Exp(Scale * x); }

        /// <summary>Scale·x: the diffusion samplers' per-step coefficients.</summary>
        public struct Scale : IDifferentiableUnaryOp { /// <summary>The factor.</summary>
            public float Factor; /// <inheritdoc/>
            public readonly float Apply(float x) => Factor * x; /// <inheritdoc/>
            public readonly float Derivative(float x) => Factor; }

        /// <summary>
        /// The backward of an activation as a binary elementwise operator: dx = dy·f′(x), a = dy, b = x. One kernel
        /// specialized per activation (kernels <c>relu_backward</c>, ...); f′ recomputes from x what the forward computed.
        /// </summary>
        public struct Backward<TOp> : IBinaryOp where TOp : struct, IDifferentiableUnaryOp
        {
            /// <summary>The activation (with its parameter).</summary>
            public TOp Op;

            /// <inheritdoc/>
            public readonly float Apply(float dy, float x) => dy * Op.Derivative(x);
        }
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

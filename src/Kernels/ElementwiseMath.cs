using System.Runtime.CompilerServices;

namespace GpuNet.Kernels
{
    /// <summary>The functions of <see cref="UnaryMath"/> (ONNX's elementwise math and activation ops that have no kernel of their own).</summary>
    public enum UnaryFunction
    {
        /// <summary>|x|.</summary>
        Abs,
        /// <summary>−x.</summary>
        Neg,
        /// <summary>√x (NaN below 0).</summary>
        Sqrt,
        /// <summary>1/x.</summary>
        Reciprocal,
        /// <summary>ln x.</summary>
        Log,
        /// <summary>eˣ.</summary>
        Exp,
        /// <summary>⌊x⌋.</summary>
        Floor,
        /// <summary>⌈x⌉.</summary>
        Ceil,
        /// <summary>x rounded half to even.</summary>
        Round,
        /// <summary>−1, 0 or 1 (NaN stays NaN).</summary>
        Sign,
        /// <summary>The error function.</summary>
        Erf,
        /// <summary>sin x.</summary>
        Sin,
        /// <summary>cos x.</summary>
        Cos,
        /// <summary>tan x.</summary>
        Tan,
        /// <summary>arcsin x.</summary>
        Asin,
        /// <summary>arccos x.</summary>
        Acos,
        /// <summary>arctan x.</summary>
        Atan,
        /// <summary>sinh x.</summary>
        Sinh,
        /// <summary>cosh x.</summary>
        Cosh,
        /// <summary>arsinh x.</summary>
        Asinh,
        /// <summary>arcosh x.</summary>
        Acosh,
        /// <summary>artanh x.</summary>
        Atanh,
        /// <summary>x / (1 + |x|).</summary>
        Softsign,
        /// <summary>max(0, min(1, A·x + B)).</summary>
        HardSigmoid,
        /// <summary>x · max(0, min(1, x/6 + 1/2)).</summary>
        HardSwish,
        /// <summary>B·x for x &gt; 0, else B·A·(eˣ − 1) (A = alpha, B = gamma).</summary>
        Selu,
        /// <summary>max(0, x) + min(0, A·(e^(x/A) − 1)).</summary>
        Celu,
        /// <summary>x where x &gt; A, else 0.</summary>
        ThresholdedRelu,
        /// <summary>x − B where x &gt; A, x + B where x &lt; −A, else 0 (A = lambd, B = bias).</summary>
        Shrink,
        /// <summary>1 where x = 0, else 0 (logical not of a 0/1 mask).</summary>
        Not,
        /// <summary>1 where x is NaN, else 0.</summary>
        IsNaN,
        /// <summary>1 where x is +∞ (A ≠ 0) or −∞ (B ≠ 0), else 0.</summary>
        IsInf,
        /// <summary>min(max(x, A), B).</summary>
        Clip,
        /// <summary>x^A.</summary>
        PowScalar,
    }

    /// <summary>The functions of <see cref="BinaryMath"/>; comparisons and logic produce 0/1.</summary>
    public enum BinaryFunction
    {
        /// <summary>aᵇ.</summary>
        Pow,
        /// <summary>min(a, b) (NaN if either is NaN).</summary>
        Min,
        /// <summary>max(a, b) (NaN if either is NaN).</summary>
        Max,
        /// <summary>a mod b with the sign of b (Python's %).</summary>
        Mod,
        /// <summary>a mod b with the sign of a (C's fmod).</summary>
        Fmod,
        /// <summary>a = b.</summary>
        Equal,
        /// <summary>a &lt; b.</summary>
        Less,
        /// <summary>a ≤ b.</summary>
        LessOrEqual,
        /// <summary>a &gt; b.</summary>
        Greater,
        /// <summary>a ≥ b.</summary>
        GreaterOrEqual,
        /// <summary>a where a ≥ 0, else a·b (b the slope).</summary>
        PRelu,
        /// <summary>a ≠ 0 and b ≠ 0.</summary>
        And,
        /// <summary>a ≠ 0 or b ≠ 0.</summary>
        Or,
        /// <summary>exactly one of a, b nonzero.</summary>
        Xor,
    }

    /// <summary>
    /// One elementwise function chosen by <see cref="Function"/> at run time: a single specialization of the elementwise
    /// kernels serves every math op (the branch is uniform across a launch, so a GPU pays one predictable jump per
    /// element; these ops are memory-bound). Parameters A and B are the function's attributes.
    /// </summary>
    public struct UnaryMath : IDifferentiableUnaryOp
    {
        /// <summary>The function.</summary>
        public UnaryFunction Function;

        /// <summary>First and second parameter (see <see cref="UnaryFunction"/>).</summary>
        public float A, B;

        /// <inheritdoc/>
        public readonly float Apply(float x) => Function switch
        {
            UnaryFunction.Abs => MathF.Abs(x),
            UnaryFunction.Neg => -x,
            UnaryFunction.Sqrt => MathF.Sqrt(x),
            UnaryFunction.Reciprocal => 1f / x,
            UnaryFunction.Log => MathF.Log(x),
            UnaryFunction.Exp => MathF.Exp(x),
            UnaryFunction.Floor => MathF.Floor(x),
            UnaryFunction.Ceil => MathF.Ceiling(x),
            UnaryFunction.Round => ElementwiseMath.RoundHalfEven(x),
            UnaryFunction.Sign => x > 0 ? 1f : x < 0 ? -1f : x,
            UnaryFunction.Erf => ElementwiseMath.Erf(x),
            UnaryFunction.Sin => ElementwiseMath.SinCos(x, cosine: false),
            UnaryFunction.Cos => ElementwiseMath.SinCos(x, cosine: true),
            UnaryFunction.Tan => ElementwiseMath.SinCos(x, cosine: false) / ElementwiseMath.SinCos(x, cosine: true),
            UnaryFunction.Asin => ElementwiseMath.Atan(x / MathF.Sqrt((1f - x) * (1f + x))),
            UnaryFunction.Acos => 2f * ElementwiseMath.Atan(MathF.Sqrt((1f - x) / (1f + x))),
            UnaryFunction.Atan => ElementwiseMath.Atan(x),
            UnaryFunction.Sinh => ElementwiseMath.Sinh(x),
            UnaryFunction.Cosh => 0.5f * (MathF.Exp(x) + MathF.Exp(-x)),
            UnaryFunction.Asinh => ElementwiseMath.Asinh(x),
            UnaryFunction.Acosh => MathF.Log(x + MathF.Sqrt((x - 1f) * (x + 1f))),
            UnaryFunction.Atanh => 0.5f * (MathFn.Log1p(x) - MathFn.Log1p(-x)),
            UnaryFunction.Softsign => x / (1f + MathF.Abs(x)),
            UnaryFunction.HardSigmoid => MathF.Max(0f, MathF.Min(1f, A * x + B)),
            // PyTorch's form: x + 3 is exact near -3 (where x/6 + 0.5 cancels), so the result keeps its relative accuracy there.
            UnaryFunction.HardSwish => x * MathF.Max(0f, MathF.Min(6f, x + 3f)) / 6f,
            UnaryFunction.Selu => x > 0 ? B * x : B * A * MathFn.Expm1(x),
            UnaryFunction.Celu => MathF.Max(0f, x) + MathF.Min(0f, A * MathFn.Expm1(x / A)),
            UnaryFunction.ThresholdedRelu => x > A ? x : 0f,
            UnaryFunction.Shrink => x > A ? x - B : x < -A ? x + B : 0f,
            UnaryFunction.Not => x == 0 ? 1f : 0f,
            UnaryFunction.IsNaN => float.IsNaN(x) ? 1f : 0f,
            UnaryFunction.IsInf => x == float.PositiveInfinity && A != 0 || x == float.NegativeInfinity && B != 0 ? 1f : 0f,
            UnaryFunction.Clip => MathF.Min(MathF.Max(x, A), B),
            UnaryFunction.PowScalar => ElementwiseMath.Pow(x, A),
            _ => float.NaN,
        };

        /// <summary>
        /// f′(x), as PyTorch's autograd defines it: 0 for the step functions (floor, ceil, round, sign), sign(x) for |x| (0 at 0),
        /// the clip's pass-through on [A, B] inclusive, the one-sided derivative at the kinks of the piecewise functions.
        /// NaN for the logical functions, which have no gradient (the op refuses to record them).
        /// </summary>
        public readonly float Derivative(float x) => Function switch
        {
            UnaryFunction.Abs => x > 0 ? 1f : x < 0 ? -1f : 0f,
            UnaryFunction.Neg => -1f,
            UnaryFunction.Sqrt => 0.5f / MathF.Sqrt(x),
            UnaryFunction.Reciprocal => -1f / (x * x),
            UnaryFunction.Log => 1f / x,
            UnaryFunction.Exp => MathF.Exp(x),
            UnaryFunction.Floor or UnaryFunction.Ceil or UnaryFunction.Round or UnaryFunction.Sign => 0f,
            UnaryFunction.Erf => 1.1283791671f * MathF.Exp(-x * x),
            UnaryFunction.Sin => ElementwiseMath.SinCos(x, cosine: true),
            UnaryFunction.Cos => -ElementwiseMath.SinCos(x, cosine: false),
            UnaryFunction.Tan => 1f / (ElementwiseMath.SinCos(x, cosine: true) * ElementwiseMath.SinCos(x, cosine: true)),
            UnaryFunction.Asin => 1f / MathF.Sqrt((1f - x) * (1f + x)),
            UnaryFunction.Acos => -1f / MathF.Sqrt((1f - x) * (1f + x)),
            UnaryFunction.Atan => 1f / (1f + x * x),
            UnaryFunction.Sinh => 0.5f * (MathF.Exp(x) + MathF.Exp(-x)),
            UnaryFunction.Cosh => ElementwiseMath.Sinh(x),
            UnaryFunction.Asinh => 1f / MathF.Sqrt(x * x + 1f),
            UnaryFunction.Acosh => 1f / MathF.Sqrt((x - 1f) * (x + 1f)),
            UnaryFunction.Atanh => 1f / ((1f - x) * (1f + x)),
            UnaryFunction.Softsign => 1f / ((1f + MathF.Abs(x)) * (1f + MathF.Abs(x))),
            UnaryFunction.HardSigmoid => A * x + B > 0f && A * x + B < 1f ? A : 0f,
            UnaryFunction.HardSwish => x < -3f ? 0f : x > 3f ? 1f : x / 3f + 0.5f,
            UnaryFunction.Selu => x > 0 ? B : B * A * MathF.Exp(x),
            UnaryFunction.Celu => x > 0 ? 1f : MathF.Exp(x / A),
            UnaryFunction.ThresholdedRelu => x > A ? 1f : 0f,
            UnaryFunction.Shrink => x > A || x < -A ? 1f : 0f,
            UnaryFunction.Clip => x >= A && x <= B ? 1f : 0f,
            UnaryFunction.PowScalar => A * ElementwiseMath.Pow(x, A - 1f),
            _ => float.NaN,
        };
    }

    /// <summary>Two-input elementwise math chosen at run time (see <see cref="UnaryMath"/>), with NumPy broadcasting from the launcher.</summary>
    public struct BinaryMath : IBinaryOp
    {
        /// <summary>The function.</summary>
        public BinaryFunction Function;

        /// <inheritdoc/>
        public readonly float Apply(float a, float b) => Function switch
        {
            BinaryFunction.Pow => ElementwiseMath.Pow(a, b),
            BinaryFunction.Min => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : MathF.Min(a, b),
            BinaryFunction.Max => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : MathF.Max(a, b),
            BinaryFunction.Mod => ElementwiseMath.FloorMod(a, b),
            BinaryFunction.Fmod => a % b,
            BinaryFunction.Equal => a == b ? 1f : 0f,
            BinaryFunction.Less => a < b ? 1f : 0f,
            BinaryFunction.LessOrEqual => a <= b ? 1f : 0f,
            BinaryFunction.Greater => a > b ? 1f : 0f,
            BinaryFunction.GreaterOrEqual => a >= b ? 1f : 0f,
            BinaryFunction.PRelu => a >= 0 ? a : a * b,
            BinaryFunction.And => a != 0 && b != 0 ? 1f : 0f,
            BinaryFunction.Or => a != 0 || b != 0 ? 1f : 0f,
            BinaryFunction.Xor => (a != 0) != (b != 0) ? 1f : 0f,
            _ => float.NaN,
        };
    }

    /// <summary>
    /// ∂f/∂a (or ∂f/∂b with <see cref="WithRespectToB"/>) of a <see cref="BinaryMath"/> function, elementwise: what its backward
    /// multiplies the output gradient by. Pow: b·a^(b−1) and a^b·ln a; minimum and maximum route to the chosen input and split a
    /// tie in halves (PyTorch's rule); PReLU: 1 or the slope, and a or 0; mod: 1, and −⌊a/b⌋ (−trunc(a/b) for fmod). The
    /// comparisons and logic have no gradient (the op refuses to record them).
    /// </summary>
    public struct BinaryMathPartial : IBinaryOp
    {
        /// <summary>The function.</summary>
        public BinaryFunction Function;

        /// <summary>1 for the partial with respect to b, 0 for a.</summary>
        public int WithRespectToB;

        /// <inheritdoc/>
        public readonly float Apply(float a, float b)
        {
            bool db = WithRespectToB != 0;
            return Function switch
            {
                BinaryFunction.Pow => db ? (a > 0f ? ElementwiseMath.Pow(a, b) * MathF.Log(a) : a == 0f && b > 0f ? 0f : ElementwiseMath.Pow(a, b) * MathF.Log(a))
                                         : b * ElementwiseMath.Pow(a, b - 1f),
                BinaryFunction.Min => (db ? b < a : a < b) ? 1f : a == b ? 0.5f : 0f,
                BinaryFunction.Max => (db ? b > a : a > b) ? 1f : a == b ? 0.5f : 0f,
                BinaryFunction.PRelu => db ? (a >= 0 ? 0f : a) : (a >= 0 ? 1f : b),
                BinaryFunction.Mod => db ? -MathF.Floor(a / b) : 1f,
                BinaryFunction.Fmod => db ? -MathF.Truncate(a / b) : 1f,
                _ => float.NaN,
            };
        }
    }

    /// <summary>
    /// Half of <c>where</c>: v where the condition c is nonzero (<see cref="WhereNonzero"/> = 1) or zero (0), else −0 — the
    /// additive identity of every float, ±0, ±∞ and NaN included, so the two halves added give exactly the chosen values.
    /// </summary>
    public struct Select : IBinaryOp
    {
        /// <summary>1: keep v where c ≠ 0; 0: keep v where c = 0.</summary>
        public int WhereNonzero;

        /// <inheritdoc/>
        public readonly float Apply(float c, float v) => (c != 0f) == (WhereNonzero != 0) ? v : -0f;
    }

    /// <summary>
    /// Scalar helpers of the math functions, written with the few intrinsics every backend compiles to instructions
    /// (exp, log, sqrt, floor). Sine, cosine and arctangent are our own: ILGPU.Algorithms' versions iterate CORDIC
    /// through local memory on PTX.
    /// </summary>
    public static class ElementwiseMath
    {
        /// <summary>
        /// sin x or cos x: reduce by the nearest multiple k of π/2 (Cody–Waite, π/2 split in three parts so the reduction is
        /// exact for |x| up to ~10⁴), then the minimax polynomials of sine and cosine on [−π/4, π/4]; k mod 4 picks which
        /// polynomial and sign. |error| ≲ 1e-7 in the reduced range.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float SinCos(float x, bool cosine)
        {
            float k = MathF.Floor(x * 0.636619772f + 0.5f);
            float r = x - k * 1.5703125f;
            r -= k * 4.83751297e-4f;
            r -= k * 7.54978995e-8f;
            int quadrant = ((int)(k - 4f * MathF.Floor(k * 0.25f)) + (cosine ? 1 : 0)) & 3;
            float z = r * r;
            float sin = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
            float cos = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z - 0.5f * z + 1f;
            float v = (quadrant & 1) == 0 ? sin : cos;
            return (quadrant & 2) == 0 ? v : -v;
        }

        /// <summary>arctan x: fold |x| into [0, tan(π/8)] by the identities at tan(3π/8) and tan(π/8), then an odd polynomial.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Atan(float x)
        {
            float a = MathF.Abs(x), offset = 0f;
            if (a > 2.414213562f)
            {
                offset = 1.570796327f;
                a = -1f / a;
            }
            else if (a > 0.414213562f)
            {
                offset = 0.785398163f;
                a = (a - 1f) / (a + 1f);
            }
            float z = a * a;
            float r = offset + ((((8.05374449538e-2f * z - 1.38776856032e-1f) * z + 1.99777106478e-1f) * z - 3.33329491539e-1f) * z * a + a);
            return x < 0 ? -r : r;
        }

        /// <summary>erf(x): a series near 0, else 1 − erfc(x) with erfc from the activation family's rational approximation (|error| &lt; 1.2e-7).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Erf(float x)
        {
            // 1 − erfc(x) cancels as x → 0 (erf(1e-3) came out 6e-5 off relative): below 1/2 the Maclaurin series
            // 2x/√π · Σ (−x²)ⁿ / (n!(2n + 1)), whose eighth term is under 1e-9 of the first there.
            if (MathF.Abs(x) < 0.5f)
            {
                float x2 = x * x;
                float series = 1f - x2 * (1f / 3f - x2 * (1f / 10f - x2 * (1f / 42f - x2 * (1f / 216f - x2 * (1f / 1320f - x2 * (1f / 9360f))))));
                return 1.1283791671f * x * series;
            }
            return x >= 0 ? 1f - MathFn.Erfc(x) : MathFn.Erfc(-x) - 1f;
        }

        /// <summary>sinh through expm1, exact near 0.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Sinh(float x)
        {
            float e = MathFn.Expm1(MathF.Abs(x));
            float s = 0.5f * (e + e / (e + 1f));
            return x < 0 ? -s : s;
        }

        /// <summary>arsinh with the sign folded out so large negative inputs do not cancel.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Asinh(float x)
        {
            float a = MathF.Abs(x);
            float r = a < 1f ? MathFn.Log1p(a + a * a / (1f + MathF.Sqrt(1f + a * a))) : MathF.Log(a + MathF.Sqrt(a * a + 1f));
            return x < 0 ? -r : r;
        }

        /// <summary>Round half to even (IEEE, NumPy).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float RoundHalfEven(float x)
        {
            if (!(MathF.Abs(x) < 8388608f))
                return x;   // 2^23 and beyond (and NaN, ±inf) are already integers; x + 0.5 would round
            float r = MathF.Floor(x + 0.5f);
            // Exactly halfway and r odd: step back to the even neighbour.
            if (r - x == 0.5f && r - 2f * MathF.Floor(r * 0.5f) != 0)
                r -= 1f;
            return r;
        }

        /// <summary>aᵇ with C's pow semantics for negative bases: an integer exponent keeps the sign, any other gives NaN.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Pow(float a, float b)
        {
            if (b == 0)
                return 1f;
            if (b == 1)
                return a;
            if (b == 2)
                return a * a;
            if (a > 0)
                return MathF.Exp(b * MathF.Log(a));
            if (a == 0)
                return b > 0 ? 0f : float.PositiveInfinity;
            if (b != MathF.Floor(b))
                return float.NaN;
            float m = MathF.Exp(b * MathF.Log(-a));
            return b - 2f * MathF.Floor(b * 0.5f) != 0 ? -m : m;
        }

        /// <summary>a mod b with the sign of b.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float FloorMod(float a, float b)
        {
            float r = a % b;   // exact (IEEE fmod); a − b·trunc(a/b) would be off by b where a/b rounds to an integer
            return r != 0 && (r < 0) != (b < 0) ? r + b : r;
        }
    }
}

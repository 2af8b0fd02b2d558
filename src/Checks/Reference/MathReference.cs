namespace GpuNet.Kernels.Reference;

/// <summary>Double-precision references of <see cref="UnaryMath"/> and <see cref="BinaryMath"/>, from the functions' definitions.</summary>
public static class MathReference
{
    /// <summary>The reference of a unary function with parameters a, b.</summary>
    public static Func<double, double> Of(UnaryFunction f, double a = 0, double b = 0) => f switch
    {
        UnaryFunction.Abs => Math.Abs,
        UnaryFunction.Neg => x => -x,
        UnaryFunction.Sqrt => Math.Sqrt,
        UnaryFunction.Reciprocal => x => 1 / x,
        UnaryFunction.Log => Math.Log,
        UnaryFunction.Exp => Math.Exp,
        UnaryFunction.Floor => Math.Floor,
        UnaryFunction.Ceil => Math.Ceiling,
        UnaryFunction.Round => x => Math.Round(x, MidpointRounding.ToEven),
        UnaryFunction.Sign => x => double.IsNaN(x) ? x : Math.Sign(x),
        UnaryFunction.Erf => ActivationReference.Erf,
        UnaryFunction.Sin => Math.Sin,
        UnaryFunction.Cos => Math.Cos,
        UnaryFunction.Tan => Math.Tan,
        UnaryFunction.Asin => Math.Asin,
        UnaryFunction.Acos => Math.Acos,
        UnaryFunction.Atan => Math.Atan,
        UnaryFunction.Sinh => Math.Sinh,
        UnaryFunction.Cosh => Math.Cosh,
        UnaryFunction.Asinh => Math.Asinh,
        UnaryFunction.Acosh => Math.Acosh,
        UnaryFunction.Atanh => Math.Atanh,
        UnaryFunction.Softsign => x => x / (1 + Math.Abs(x)),
        UnaryFunction.HardSigmoid => x => Math.Max(0, Math.Min(1, a * x + b)),
        UnaryFunction.HardSwish => x => x * Math.Max(0, Math.Min(1, x / 6 + 0.5)),
        UnaryFunction.Selu => x => x > 0 ? b * x : b * a * (Math.Exp(x) - 1),
        UnaryFunction.Celu => x => Math.Max(0, x) + Math.Min(0, a * (Math.Exp(x / a) - 1)),
        UnaryFunction.ThresholdedRelu => x => x > a ? x : 0,
        UnaryFunction.Shrink => x => x > a ? x - b : x < -a ? x + b : 0,
        UnaryFunction.Not => x => x == 0 ? 1 : 0,
        UnaryFunction.IsNaN => x => double.IsNaN(x) ? 1 : 0,
        UnaryFunction.IsInf => x => double.IsPositiveInfinity(x) && a != 0 || double.IsNegativeInfinity(x) && b != 0 ? 1 : 0,
        UnaryFunction.Clip => x => Math.Min(Math.Max(x, a), b),
        UnaryFunction.PowScalar => x => Math.Pow(x, a),
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    /// <summary>f′(x) of a unary function, analytic in double (PyTorch's conventions at the kinks: see UnaryMath.Derivative).</summary>
    public static Func<double, double> Derivative(UnaryFunction f, double a = 0, double b = 0) => f switch
    {
        UnaryFunction.Abs => x => Math.Sign(x),
        UnaryFunction.Neg => _ => -1,
        UnaryFunction.Sqrt => x => 0.5 / Math.Sqrt(x),
        UnaryFunction.Reciprocal => x => -1 / (x * x),
        UnaryFunction.Log => x => 1 / x,
        UnaryFunction.Exp => Math.Exp,
        UnaryFunction.Floor or UnaryFunction.Ceil or UnaryFunction.Round or UnaryFunction.Sign => _ => 0,
        UnaryFunction.Erf => x => 2 / Math.Sqrt(Math.PI) * Math.Exp(-x * x),
        UnaryFunction.Sin => Math.Cos,
        UnaryFunction.Cos => x => -Math.Sin(x),
        UnaryFunction.Tan => x => 1 / (Math.Cos(x) * Math.Cos(x)),
        UnaryFunction.Asin => x => 1 / Math.Sqrt(1 - x * x),
        UnaryFunction.Acos => x => -1 / Math.Sqrt(1 - x * x),
        UnaryFunction.Atan => x => 1 / (1 + x * x),
        UnaryFunction.Sinh => Math.Cosh,
        UnaryFunction.Cosh => Math.Sinh,
        UnaryFunction.Asinh => x => 1 / Math.Sqrt(x * x + 1),
        UnaryFunction.Acosh => x => 1 / Math.Sqrt(x * x - 1),
        UnaryFunction.Atanh => x => 1 / (1 - x * x),
        UnaryFunction.Softsign => x => 1 / ((1 + Math.Abs(x)) * (1 + Math.Abs(x))),
        UnaryFunction.HardSigmoid => x => a * x + b > 0 && a * x + b < 1 ? a : 0,
        UnaryFunction.HardSwish => x => x < -3 ? 0 : x > 3 ? 1 : x / 3 + 0.5,
        UnaryFunction.Selu => x => x > 0 ? b : b * a * Math.Exp(x),
        UnaryFunction.Celu => x => x > 0 ? 1 : Math.Exp(x / a),
        UnaryFunction.ThresholdedRelu => x => x > a ? 1 : 0,
        UnaryFunction.Shrink => x => x > a || x < -a ? 1 : 0,
        UnaryFunction.Clip => x => x >= a && x <= b ? 1 : 0,
        UnaryFunction.PowScalar => x => a * Math.Pow(x, a - 1),
        _ => throw new ArgumentOutOfRangeException(nameof(f), $"{f} has no gradient"),
    };

    /// <summary>∂f/∂a (or ∂f/∂b) of a binary function, analytic in double; ties of minimum and maximum split in halves.</summary>
    public static Func<double, double, double> Partial(BinaryFunction f, bool withRespectToB) => f switch
    {
        BinaryFunction.Pow => withRespectToB ? (x, y) => Math.Pow(x, y) * Math.Log(x) : (x, y) => y * Math.Pow(x, y - 1),
        BinaryFunction.Min => (x, y) => (withRespectToB ? y < x : x < y) ? 1 : x == y ? 0.5 : 0,
        BinaryFunction.Max => (x, y) => (withRespectToB ? y > x : x > y) ? 1 : x == y ? 0.5 : 0,
        BinaryFunction.PRelu => withRespectToB ? (x, _) => x >= 0 ? 0 : x : (x, y) => x >= 0 ? 1 : y,
        BinaryFunction.Mod => withRespectToB ? (x, y) => -Math.Floor(x / y) : (_, _) => 1,
        BinaryFunction.Fmod => withRespectToB ? (x, y) => -Math.Truncate(x / y) : (_, _) => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(f), $"{f} has no gradient"),
    };

    /// <summary>The reference of a binary function.</summary>
    public static Func<double, double, double> Of(BinaryFunction f) => f switch
    {
        BinaryFunction.Pow => Math.Pow,
        BinaryFunction.Min => Math.Min,
        BinaryFunction.Max => Math.Max,
        BinaryFunction.Mod => FloorMod,
        BinaryFunction.Fmod => (x, y) => x % y,
        BinaryFunction.Equal => (x, y) => x == y ? 1 : 0,
        BinaryFunction.Less => (x, y) => x < y ? 1 : 0,
        BinaryFunction.LessOrEqual => (x, y) => x <= y ? 1 : 0,
        BinaryFunction.Greater => (x, y) => x > y ? 1 : 0,
        BinaryFunction.GreaterOrEqual => (x, y) => x >= y ? 1 : 0,
        BinaryFunction.PRelu => (x, y) => x >= 0 ? x : x * y,
        BinaryFunction.And => (x, y) => x != 0 && y != 0 ? 1 : 0,
        BinaryFunction.Or => (x, y) => x != 0 || y != 0 ? 1 : 0,
        BinaryFunction.Xor => (x, y) => (x != 0) != (y != 0) ? 1 : 0,
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    /// <summary>Python's x % y: the exact remainder of truncation (fmod), moved into the divisor's sign.</summary>
    private static double FloorMod(double x, double y)
    {
        double m = x % y;
        return m != 0 && (m < 0) != (y < 0) ? m + y : m;
    }
}

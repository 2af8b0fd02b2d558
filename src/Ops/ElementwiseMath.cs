using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// f(x) elementwise for one of the <see cref="UnaryFunction"/>s with parameters A, B. Kernel <c>unary_math</c>. Backward
    /// (<c>unary_math_backward</c>): dy·f′(x) (<see cref="UnaryMath.Derivative"/>); the logical functions (not, isnan, isinf)
    /// have none.
    /// </summary>
    public static Tensor Unary(Tensor x, UnaryFunction function, float a = 0f, float b = 0f, Tensor? output = null)
    {
        var op = new UnaryMath { Function = function, A = a, B = b };
        if (function is UnaryFunction.Not or UnaryFunction.IsNaN or UnaryFunction.IsInf)
            return NoGradient("unary_math (" + function.ToString().ToLowerInvariant() + ")", Unary("unary_math", x, output, op), x);
        return Activate("unary_math", x, output, op);
    }

    /// <summary>
    /// f(a, b) elementwise with broadcasting for one of the <see cref="BinaryFunction"/>s. Kernel <c>binary_math</c>. Backward
    /// (<c>binary_math_backward</c>) for pow, minimum, maximum, PReLU, mod and fmod: dy times ∂f/∂a and ∂f/∂b
    /// (<see cref="BinaryMathPartial"/>), summed over broadcast dimensions; the comparisons and logic have none.
    /// </summary>
    public static Tensor Binary(Tensor a, Tensor b, BinaryFunction function, Tensor? output = null)
    {
        var y = Binary("binary_math", a, b, output, new BinaryMath { Function = function });
        if (function is not (BinaryFunction.Pow or BinaryFunction.Min or BinaryFunction.Max or BinaryFunction.PRelu or BinaryFunction.Mod or BinaryFunction.Fmod))
            return NoGradient("binary_math (" + function.ToString().ToLowerInvariant() + ")", y, a, b);
        if (Autograd.ShouldRecord(a, b))
        {
            var (savedA, savedB) = (Autograd.Save(a), Autograd.Save(b));
            int[] shapeA = a.ShapeArray(), shapeB = b.ShapeArray();
            Autograd.Record("binary_math", y, new[] { a, b }, (g, needs) => new[]
            {
                needs[0] ? BinaryMathGradient(g, savedA, savedB, function, false, shapeA) : null,
                needs[1] ? BinaryMathGradient(g, savedA, savedB, function, true, shapeB) : null,
            }, savedA, savedB);
        }
        return y;
    }

    /// <summary>One input's gradient of <see cref="Binary(Tensor, Tensor, BinaryFunction, Tensor?)"/>: dy ⊙ ∂f/∂input, summed to its shape.</summary>
    private static Tensor BinaryMathGradient(Tensor g, Tensor a, Tensor b, BinaryFunction function, bool withRespectToB, int[] shape)
    {
        using var partial = Binary("binary_math_backward", a, b, null, new BinaryMathPartial { Function = function, WithRespectToB = withRespectToB ? 1 : 0 });
        using var full = Mul(g, partial);
        return full.Shape.SequenceEqual(shape) ? CopyOf(full) : SumToShape(full, shape);
    }

    /// <summary>
    /// The straight-through estimator (VQ-VAE's z + (z_q − z).detach()): the values of <paramref name="quantized"/>, with the
    /// gradient passed to <paramref name="x"/> unchanged, as if the quantization were the identity; <paramref name="quantized"/>
    /// gets none. Kernel <c>copy_strided</c>.
    /// </summary>
    public static Tensor StraightThrough(Tensor x, Tensor quantized)
    {
        const string op = "straight_through";
        var device = Validate.Input(op, "x", x);
        Validate.Input(op, "quantized", quantized, device);
        if (!x.Shape.SequenceEqual(quantized.Shape))
            throw new ShapeMismatchException(op, "quantized", GpuNetException.FormatShape(x.ShapeArray()) + " (the shape of x)", GpuNetException.FormatShape(quantized.ShapeArray()));
        Tensor y;
        using (Autograd.NoGrad())
            y = CopyOf(quantized);
        if (Autograd.ShouldRecord(x))
            Autograd.Record(op, y, new[] { x }, (g, _) => new[] { CopyOf(g) });
        return y;
    }

    /// <summary>These ops have no gradient: asking for one is a typed error naming the op.</summary>
    private static Tensor NoGradient(string op, Tensor output, params Tensor[] inputs)
    {
        Autograd.RecordNoGradient(op, output, inputs);
        return output;
    }
}

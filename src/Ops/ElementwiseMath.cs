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
    /// torch.where: <paramref name="a"/> where <paramref name="condition"/> is nonzero, else <paramref name="b"/>, the three
    /// broadcast NumPy-style. Kernel <c>where</c>: each input's half (the other positions −0) and their sum, exact for every value.
    /// Backward: the gradient routed to a where the condition holds and to b elsewhere, summed over broadcast dimensions; the
    /// condition has none.
    /// </summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        const string op = "where";
        var device = Validate.Input(op, "condition", condition);
        Validate.Input(op, "a", a, device);
        Validate.Input(op, "b", b, device);
        ShapeUtil.BroadcastShapes(op, ShapeUtil.BroadcastShapes(op, condition.ShapeArray(), a.ShapeArray()), b.ShapeArray());
        Tensor y;
        using (Autograd.NoGrad())
        using (var fromA = Binary(op, condition, a, null, new Select { WhereNonzero = 1 }))
        using (var fromB = Binary(op, condition, b, null, new Select { WhereNonzero = 0 }))
            y = Add(fromA, fromB);
        if (Autograd.ShouldRecord(a, b))
        {
            var saved = Autograd.Save(condition);
            int[] shapeA = a.ShapeArray(), shapeB = b.ShapeArray();
            Autograd.Record(op, y, new[] { condition, a, b }, (g, needs) => new[]
            {
                null,
                needs[1] ? Routed(g, saved, 1, shapeA) : null,
                needs[2] ? Routed(g, saved, 0, shapeB) : null,
            }, saved);
        }
        return y;

        static Tensor Routed(Tensor g, Tensor condition, int whereNonzero, int[] shape)
        {
            // −0 where the other input was chosen adds nothing to the sum over broadcast dimensions.
            var half = Binary("where_backward", condition, g, null, new Select { WhereNonzero = whereNonzero });
            if (half.Shape.SequenceEqual(shape))
                return half;
            using (half)
                return SumToShape(half, shape);
        }
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

using GpuNet.Kernels;

namespace GpuNet.Onnx.Operators;

/// <summary>
/// Elementwise operators: arithmetic, math functions, activations, comparisons, logic, Cast, Clip, Where and the
/// variadic Sum/Mean/Min/Max. Float data runs on the device (the elementwise, activation and math kernels, NumPy
/// broadcasting in the launcher); integer and bool data runs on the host, where ONNX graphs keep shapes and masks.
/// </summary>
internal static class ElementwiseOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return Binary("Add", (a, b) => Ops.Add(a, b), (x, y) => x + y);
        yield return Binary("Sub", (a, b) => Ops.Sub(a, b), (x, y) => x - y);
        yield return Binary("Mul", (a, b) => Ops.Mul(a, b), (x, y) => x * y);
        yield return Binary("Div", (a, b) => Ops.Div(a, b), (x, y) => y == 0 ? 0 : x / y);
        yield return new OpSpec("Pow", Pow);
        yield return new OpSpec("Mod", (c, i) => c.Int("fmod", 0) != 0
            ? BinaryRun(c, i, (a, b) => Ops.Binary(a, b, BinaryFunction.Fmod), (x, y) => y == 0 ? 0 : x % y)
            : BinaryRun(c, i, (a, b) => Ops.Binary(a, b, BinaryFunction.Mod), (x, y) => y == 0 ? 0 : ((x % y) + y) % y), 10);
        yield return Compare("Equal", BinaryFunction.Equal, (x, y) => x == y);
        yield return Compare("Less", BinaryFunction.Less, (x, y) => x < y);
        yield return Compare("LessOrEqual", BinaryFunction.LessOrEqual, (x, y) => x <= y);
        yield return Compare("Greater", BinaryFunction.Greater, (x, y) => x > y);
        yield return Compare("GreaterOrEqual", BinaryFunction.GreaterOrEqual, (x, y) => x >= y);
        yield return Logic("And", (x, y) => x && y);
        yield return Logic("Or", (x, y) => x || y);
        yield return Logic("Xor", (x, y) => x ^ y);
        yield return new OpSpec("Not", (c, i) => new[] { OnnxTensor.Integers(OnnxElementType.Bool, Array.ConvertAll(i[0]!.Ints, v => v == 0 ? 1L : 0L), i[0]!.Shape) });
        yield return new OpSpec("BitShift", (c, i) =>
        {
            bool left = c.String("direction", "") == "LEFT";
            return BinaryRun(c, i, null, (x, y) => left ? (long)((ulong)x << (int)y) : (long)((ulong)x >> (int)y));
        }, 11);

        yield return Variadic("Sum", BinaryFunction.Max, sum: true);
        yield return Variadic("Mean", BinaryFunction.Max, sum: true, mean: true);
        yield return Variadic("Max", BinaryFunction.Max);
        yield return Variadic("Min", BinaryFunction.Min);

        yield return Unary("Relu", x => Ops.Relu(x), v => System.Math.Max(v, 0));
        yield return Unary("Sigmoid", x => Ops.Sigmoid(x));
        yield return Unary("Tanh", x => Ops.Tanh(x));
        yield return Unary("Exp", x => Ops.Exp(x));
        yield return Unary("Softplus", x => Ops.Softplus(x));
        yield return new OpSpec("Elu", (c, i) => FloatUnary(c, i[0]!, x => Ops.Elu(x, c.Float("alpha", 1f))));
        yield return new OpSpec("LeakyRelu", (c, i) => FloatUnary(c, i[0]!, x => Ops.LeakyRelu(x, c.Float("alpha", 0.01f))));
        yield return MathOp("Abs", UnaryFunction.Abs, System.Math.Abs);
        yield return MathOp("Neg", UnaryFunction.Neg, v => -v);
        yield return MathOp("Sign", UnaryFunction.Sign, v => System.Math.Sign(v));
        yield return MathOp("Sqrt", UnaryFunction.Sqrt);
        yield return MathOp("Reciprocal", UnaryFunction.Reciprocal);
        yield return MathOp("Log", UnaryFunction.Log);
        yield return MathOp("Floor", UnaryFunction.Floor);
        yield return MathOp("Ceil", UnaryFunction.Ceil);
        yield return MathOp("Round", UnaryFunction.Round);
        yield return MathOp("Erf", UnaryFunction.Erf);
        yield return MathOp("Sin", UnaryFunction.Sin);
        yield return MathOp("Cos", UnaryFunction.Cos);
        yield return MathOp("Tan", UnaryFunction.Tan);
        yield return MathOp("Asin", UnaryFunction.Asin);
        yield return MathOp("Acos", UnaryFunction.Acos);
        yield return MathOp("Atan", UnaryFunction.Atan);
        yield return MathOp("Sinh", UnaryFunction.Sinh);
        yield return MathOp("Cosh", UnaryFunction.Cosh);
        yield return MathOp("Asinh", UnaryFunction.Asinh);
        yield return MathOp("Acosh", UnaryFunction.Acosh);
        yield return MathOp("Atanh", UnaryFunction.Atanh);
        yield return MathOp("Softsign", UnaryFunction.Softsign);
        yield return MathOp("HardSwish", UnaryFunction.HardSwish);
        yield return new OpSpec("HardSigmoid", (c, i) => MathRun(c, i[0]!, UnaryFunction.HardSigmoid, c.Float("alpha", 0.2f), c.Float("beta", 0.5f)));
        yield return new OpSpec("Selu", (c, i) => MathRun(c, i[0]!, UnaryFunction.Selu, c.Float("alpha", 1.67326319217681884765625f), c.Float("gamma", 1.05070102214813232421875f)));
        yield return new OpSpec("Celu", (c, i) => MathRun(c, i[0]!, UnaryFunction.Celu, c.Float("alpha", 1f)), 12);
        yield return new OpSpec("ThresholdedRelu", (c, i) => MathRun(c, i[0]!, UnaryFunction.ThresholdedRelu, c.Float("alpha", 1f)), 10);
        yield return new OpSpec("Shrink", (c, i) => MathRun(c, i[0]!, UnaryFunction.Shrink, c.Float("lambd", 0.5f), c.Float("bias", 0f)), 9);
        yield return new OpSpec("PRelu", PRelu);
        yield return new OpSpec("IsNaN", (c, i) => new[] { Values.ToBool(Ops.Unary(i[0]!.On(c.Device), UnaryFunction.IsNaN), i[0]!.Shape) }, 9);
        yield return new OpSpec("IsInf", (c, i) => new[]
        {
            Values.ToBool(Ops.Unary(i[0]!.On(c.Device), UnaryFunction.IsInf, c.Int("detect_positive", 1), c.Int("detect_negative", 1)), i[0]!.Shape),
        }, 10);
        yield return new OpSpec("Clip", Clip);
        yield return new OpSpec("Cast", Cast, Check: c => CastTarget(c) is var t && OnnxTensor.ElementSize(t) == 0 ? $"Cast to {t} is not supported (float32, the integer types and bool are)" : null);
        yield return new OpSpec("CastLike", (c, i) => new[] { CastTo(c, i[0]!, i[1]!.ElementType) }, 15);
        yield return new OpSpec("Where", Where, 9);
    }

    // ------------------------------------------------------------------ building blocks

    private static OpSpec Binary(string name, Func<Tensor, Tensor, Tensor> device, Func<long, long, long> host) =>
        new(name, (c, i) => BinaryRun(c, i, device, host));

    /// <summary>Float inputs on the device (an integer operand is uploaded), two integer inputs on the host.</summary>
    internal static OnnxTensor[] BinaryRun(OpContext c, OnnxTensor?[] inputs, Func<Tensor, Tensor, Tensor>? device, Func<long, long, long> host)
    {
        var (a, b) = (inputs[0]!, inputs[1]!);
        var dims = Values.Broadcast(c, a.Shape, b.Shape);
        if (!a.IsFloat && !b.IsFloat || device is null)
        {
            var (x, y) = (a.Ints, b.Ints);
            var (ma, mb) = (Values.BroadcastMap(a.Dims, dims), Values.BroadcastMap(b.Dims, dims));
            var r = new long[ma.Length];
            for (int k = 0; k < r.Length; k++)
                r[k] = host(x[ma[k]], y[mb[k]]);
            return new[] { OnnxTensor.Integers(a.ElementType, r, dims) };
        }
        return new[] { Values.Float(device(Values.Upload(c, a), Values.Upload(c, b)), dims) };
    }

    private static OpSpec Compare(string name, BinaryFunction f, Func<long, long, bool> host) => new(name, (c, i) =>
    {
        var (a, b) = (i[0]!, i[1]!);
        var dims = Values.Broadcast(c, a.Shape, b.Shape);
        if (a.IsFloat || b.IsFloat)
            return new[] { Values.ToBool(Ops.Binary(Values.Upload(c, a), Values.Upload(c, b), f), dims) };
        var r = BinaryRun(c, i, null, (x, y) => host(x, y) ? 1 : 0)[0];
        return new[] { OnnxTensor.Integers(OnnxElementType.Bool, r.Ints, dims) };
    }, 7);

    private static OpSpec Logic(string name, Func<bool, bool, bool> f) =>
        new(name, (c, i) => BinaryRun(c, i, null, (x, y) => f(x != 0, y != 0) ? 1 : 0));

    /// <summary>Sum/Mean/Max/Min of any number of inputs with broadcasting, folded pairwise.</summary>
    private static OpSpec Variadic(string name, BinaryFunction f, bool sum = false, bool mean = false) => new(name, (c, inputs) =>
    {
        var present = inputs.Where(x => x is not null).Select(x => x!).ToList();
        if (present.Count == 1)
            return new[] { present[0].Share() };
        if (present.All(x => !x.IsFloat))
        {
            var acc = present[0];
            foreach (var next in present.Skip(1))
                acc = BinaryRun(c, new[] { acc, next }, null, sum ? (x, y) => x + y : f == BinaryFunction.Max ? System.Math.Max : System.Math.Min)[0];
            return new[] { acc };
        }
        var dims = Values.Broadcast(c, present.Select(x => x.Shape).ToArray());
        var t = Values.Upload(c, present[0]);
        foreach (var next in present.Skip(1))
            t = sum ? Ops.Add(t, Values.Upload(c, next)) : Ops.Binary(t, Values.Upload(c, next), f);
        if (mean)
            t = Ops.Scale(t, 1f / present.Count);
        return new[] { Values.Float(t, dims) };
    });

    private static OpSpec Unary(string name, Func<Tensor, Tensor> device, Func<long, long>? host = null) =>
        new(name, (c, i) => host is not null && !i[0]!.IsFloat ? HostUnary(i[0]!, host) : FloatUnary(c, i[0]!, device));

    private static OpSpec MathOp(string name, UnaryFunction f, Func<long, long>? host = null) =>
        new(name, (c, i) => host is not null && !i[0]!.IsFloat ? HostUnary(i[0]!, host) : MathRun(c, i[0]!, f));

    private static OnnxTensor[] MathRun(OpContext c, OnnxTensor x, UnaryFunction f, float a = 0f, float b = 0f) =>
        FloatUnary(c, x, t => Ops.Unary(t, f, a, b));

    private static OnnxTensor[] FloatUnary(OpContext c, OnnxTensor x, Func<Tensor, Tensor> f) =>
        new[] { Values.Float(f(x.On(c.Device)), x.Shape) };

    private static OnnxTensor[] HostUnary(OnnxTensor x, Func<long, long> f) =>
        new[] { OnnxTensor.Integers(x.ElementType, Array.ConvertAll(x.Ints, v => f(v)), x.Shape) };

    /// <summary>Pow: the result has the base's type; an integer base with a float exponent is computed on the host.</summary>
    private static OnnxTensor[] Pow(OpContext c, OnnxTensor?[] i)
    {
        var (a, b) = (i[0]!, i[1]!);
        if (a.IsFloat)
            return BinaryRun(c, i, (x, y) => Ops.Binary(x, y, BinaryFunction.Pow), (x, y) => 0);
        var dims = Values.Broadcast(c, a.Shape, b.Shape);
        var (x, y) = (a.Ints, b.Floats);
        var (ma, mb) = (Values.BroadcastMap(a.Dims, dims), Values.BroadcastMap(b.Dims, dims));
        var r = new long[ma.Length];
        for (int k = 0; k < r.Length; k++)
            r[k] = (long)System.Math.Pow(x[ma[k]], y[mb[k]]);
        return new[] { OnnxTensor.Integers(a.ElementType, r, dims) };
    }

    /// <summary>PRelu: the slope broadcasts to X; a [C] slope that does not (opsets before 7 put it on axis 1) goes to the channel axis.</summary>
    private static OnnxTensor[] PRelu(OpContext c, OnnxTensor?[] i)
    {
        var (x, slope) = (i[0]!, i[1]!);
        var s = slope.On(c.Device);
        if (slope.Rank == 1 && x.Rank > 2 && slope.Dims[0] == x.Dims[1] && slope.Dims[0] != x.Dims[^1] && slope.Dims[0] != 1)
            s = s.Reshape(new[] { slope.Dims[0] }.Concat(Enumerable.Repeat(1, x.Rank - 2)).ToArray());
        return new[] { Values.Float(Ops.Binary(x.On(c.Device), s, BinaryFunction.PRelu), x.Shape) };
    }

    // ------------------------------------------------------------------ Clip, Cast, Where

    /// <summary>Clip: bounds are attributes before opset 11, optional scalar inputs from 11 (absent: unbounded).</summary>
    private static OnnxTensor[] Clip(OpContext c, OnnxTensor?[] i)
    {
        float lo, hi;
        if (c.Opset < 11)
            (lo, hi) = (c.Float("min", float.NegativeInfinity), c.Float("max", float.PositiveInfinity));
        else
            (lo, hi) = (i.Length > 1 && i[1] is { } a ? a.Floats[0] : float.NegativeInfinity, i.Length > 2 && i[2] is { } b ? b.Floats[0] : float.PositiveInfinity);
        var x = i[0]!;
        if (!x.IsFloat)
        {
            long l = i.Length > 1 && i[1] is { } a ? a.Ints[0] : long.MinValue, h = i.Length > 2 && i[2] is { } b ? b.Ints[0] : long.MaxValue;
            return HostUnary(x, v => System.Math.Min(System.Math.Max(v, l), h));
        }
        return MathRun(c, x, UnaryFunction.Clip, lo, hi);
    }

    private static OnnxElementType CastTarget(OpContext c) => (OnnxElementType)c.Int("to", 0);

    private static OnnxTensor[] Cast(OpContext c, OnnxTensor?[] i) => new[] { CastTo(c, i[0]!, CastTarget(c)) };

    /// <summary>Float to integer truncates toward zero (NaN to 0), integer narrowing wraps, anything nonzero is true.</summary>
    private static OnnxTensor CastTo(OpContext c, OnnxTensor x, OnnxElementType to)
    {
        if (to == OnnxElementType.Float)
            return x.IsFloat ? x.Share() : OnnxTensor.Device(Values.Upload(c, x), x.Shape);
        long[] v = x.IsFloat ? Array.ConvertAll(x.Floats, f => float.IsNaN(f) ? 0L : (long)System.Math.Truncate((double)f)) : x.Ints;
        Func<long, long> narrow = to switch
        {
            OnnxElementType.Bool => n => n != 0 ? 1 : 0,
            OnnxElementType.Int32 => n => (int)n,
            OnnxElementType.Int16 => n => (short)n,
            OnnxElementType.Int8 => n => (sbyte)n,
            OnnxElementType.UInt8 => n => (byte)n,
            OnnxElementType.UInt16 => n => (ushort)n,
            OnnxElementType.UInt32 => n => (uint)n,
            _ => n => n,
        };
        if (x.IsFloat && to == OnnxElementType.Bool)
            v = Array.ConvertAll(x.Floats, f => f != 0 ? 1L : 0L);
        return OnnxTensor.Integers(to, Array.ConvertAll(v, n => narrow(n)), x.Shape);
    }

    /// <summary>Where(cond, X, Y): an index map into [X; Y] (their own shapes, broadcast by the map), so ±inf and NaN pass through untouched.</summary>
    private static OnnxTensor[] Where(OpContext c, OnnxTensor?[] i)
    {
        var (cond, x, y) = (i[0]!, i[1]!, i[2]!);
        var dims = Values.Broadcast(c, cond.Shape, x.Shape, y.Shape);
        var (mc, mx, my) = (Values.BroadcastMap(cond.Dims, dims), Values.BroadcastMap(x.Dims, dims), Values.BroadcastMap(y.Dims, dims));
        var cv = cond.IsFloat ? Array.ConvertAll(cond.Floats, f => f != 0 ? 1L : 0L) : cond.Ints;
        if (!x.IsFloat && !y.IsFloat)
        {
            var (xv, yv) = (x.Ints, y.Ints);
            var r = new long[mc.Length];
            for (int k = 0; k < r.Length; k++)
                r[k] = cv[mc[k]] != 0 ? xv[mx[k]] : yv[my[k]];
            return new[] { OnnxTensor.Integers(x.ElementType, r, dims) };
        }
        var xt = Values.AsShape(Values.Upload(c, x), -1, 1);
        var yt = Values.AsShape(Values.Upload(c, y), -1, 1);
        long offset = xt.Length;
        var map = new long[mc.Length];
        for (int k = 0; k < map.Length; k++)
            map[k] = cv[mc[k]] != 0 ? mx[k] : offset + my[k];
        return new[] { Values.Float(Values.GatherFlat(c, Ops.Concat(new[] { xt, yt }, 0), map), dims) };
    }
}

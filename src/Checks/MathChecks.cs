using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of the elementwise math family (unary_math, binary_math): every function on its domain, odd shapes, strided and broadcast inputs.</summary>
internal static class MathChecks
{
    private const string FamilyName = "math";

    /// <summary>Inputs for a function: uniform in [low, high], or small integers (so comparisons meet equality and logic meets zeros).</summary>
    private readonly record struct Domain(double Low, double High, bool Integers = false)
    {
        /// <summary>Seeded inputs; each element is redrawn until <paramref name="accept"/> takes it (when given).</summary>
        public Tensor Make(Device d, ulong seed, int[] shape, Func<double, bool>? accept = null)
        {
            var rng = new Random((int)(seed % int.MaxValue));
            var v = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < v.Length; i++)
                do
                    v[i] = Integers ? (float)Math.Floor(Low + rng.NextDouble() * (High - Low)) : (float)(Low + rng.NextDouble() * (High - Low));
                while (accept is not null && !accept(v[i]));
            return Tensor.FromArray(d, v, shape);
        }
    }

    internal static IEnumerable<CheckCase> Cases()
    {
        var wide = new Domain(-6, 6);
        var unary = new (UnaryFunction F, float A, float B, Domain Domain)[]
        {
            (UnaryFunction.Abs, 0, 0, wide), (UnaryFunction.Neg, 0, 0, wide), (UnaryFunction.Sqrt, 0, 0, new(0, 50)),
            (UnaryFunction.Reciprocal, 0, 0, new(0.05, 20)), (UnaryFunction.Log, 0, 0, new(1e-3, 100)), (UnaryFunction.Exp, 0, 0, new(-20, 20)),
            (UnaryFunction.Floor, 0, 0, wide), (UnaryFunction.Ceil, 0, 0, wide), (UnaryFunction.Round, 0, 0, new(-8, 8)),
            (UnaryFunction.Sign, 0, 0, new(-2, 2, true)), (UnaryFunction.Erf, 0, 0, new(-4, 4)), (UnaryFunction.Sin, 0, 0, new(-10, 10)),
            (UnaryFunction.Cos, 0, 0, new(-10, 10)), (UnaryFunction.Tan, 0, 0, new(-1.4, 1.4)), (UnaryFunction.Asin, 0, 0, new(-0.99, 0.99)),
            (UnaryFunction.Acos, 0, 0, new(-0.99, 0.99)), (UnaryFunction.Atan, 0, 0, new(-20, 20)), (UnaryFunction.Sinh, 0, 0, new(-10, 10)),
            (UnaryFunction.Cosh, 0, 0, new(-10, 10)), (UnaryFunction.Asinh, 0, 0, new(-50, 50)), (UnaryFunction.Acosh, 0, 0, new(1.01, 50)),
            (UnaryFunction.Atanh, 0, 0, new(-0.99, 0.99)), (UnaryFunction.Softsign, 0, 0, wide), (UnaryFunction.HardSigmoid, 0.2f, 0.5f, wide),
            (UnaryFunction.HardSwish, 0, 0, wide), (UnaryFunction.Selu, 1.6732632f, 1.050701f, wide), (UnaryFunction.Celu, 1.5f, 0, wide),
            (UnaryFunction.ThresholdedRelu, 1f, 0, wide), (UnaryFunction.Shrink, 1.5f, 0.5f, wide), (UnaryFunction.Not, 0, 0, new(0, 2, true)),
            (UnaryFunction.IsNaN, 0, 0, wide), (UnaryFunction.IsInf, 1, 1, wide), (UnaryFunction.Clip, -1.5f, 2f, wide),
            (UnaryFunction.PowScalar, 3f, 0, wide), (UnaryFunction.PowScalar, 0.5f, 0, new(0, 9)),
        };
        foreach (var (f, a, b, domain) in unary)
        {
            var reference = MathReference.Of(f, a, b);
            string name = f.ToString().ToLowerInvariant() + (f == UnaryFunction.PowScalar ? "_" + a : "");
            // One element has no norm to absorb the rounding of a result that cancels to near zero (hardsigmoid's
            // 0.2x + 0.5 at x ≈ −2.5 is off by ulp(0.5) whatever the kernel does): its input is redrawn until the result is
            // zero or not tiny. Relative accuracy near a function's zero at 0 has the near_zero cases below.
            Func<double, bool> notCancelling = x => reference(x) is var y && (y == 0 || Math.Abs(y) >= 1e-3 * Math.Max(1, Math.Abs(x)));
            foreach (var shape in new[] { new[] { 1 }, new[] { 37, 53 }, new[] { 64, 1031 } })
                yield return new CheckCase(FamilyName, "unary_math", $"{name}_{string.Join("x", shape)}", $"{Shapes(shape)} in [{domain.Low}, {domain.High}]", CheckCase.Fp32Tolerance, (d, seed) =>
                {
                    using var x = domain.Make(d, seed, shape, shape.Length == 1 && shape[0] == 1 ? notCancelling : null);
                    using var o = Poisoned(d, shape);
                    Ops.Unary(x, f, a, b, o);
                    return new(o.ToArray(), Host(x).Select(reference).ToArray());
                });
        }
        // Functions with a simple zero at 0: results there must keep their relative accuracy (erf as 1 − erfc lost it).
        var nearZero = new Domain(-1e-3, 1e-3);
        foreach (var f in new[] { UnaryFunction.Erf, UnaryFunction.Sin, UnaryFunction.Tan, UnaryFunction.Asin, UnaryFunction.Atan, UnaryFunction.Sinh,
                     UnaryFunction.Asinh, UnaryFunction.Atanh, UnaryFunction.Softsign, UnaryFunction.HardSwish, UnaryFunction.Selu, UnaryFunction.Celu })
        {
            var (a, b) = f switch { UnaryFunction.Selu => (1.6732632f, 1.050701f), UnaryFunction.Celu => (1.5f, 0f), _ => (0f, 0f) };
            var reference = MathReference.Of(f, a, b);
            yield return new CheckCase(FamilyName, "unary_math", $"{f.ToString().ToLowerInvariant()}_near_zero", "[257] in [-1e-3, 1e-3]", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = nearZero.Make(d, seed, [257]);
                using var o = Poisoned(d, 257);
                Ops.Unary(x, f, a, b, o);
                return new(o.ToArray(), Host(x).Select(reference).ToArray());
            }) { Bound = new ElementBound(2e-5, 0) };
        }
        yield return new CheckCase(FamilyName, "unary_math", "special_values", "[8] ±inf, NaN, ±0", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            // IsNaN, IsInf and Sign on the values random inputs never produce, packed as one output per (function, value).
            var values = new[] { float.PositiveInfinity, float.NegativeInfinity, float.NaN, 0f, -0f, 1f, -2.5f, 3.5f };
            using var x = Tensor.FromArray(d, values, values.Length);
            var got = new List<float>();
            var expected = new List<double>();
            foreach (var (f, a, b) in new[] { (UnaryFunction.IsNaN, 0f, 0f), (UnaryFunction.IsInf, 1f, 0f), (UnaryFunction.IsInf, 0f, 1f), (UnaryFunction.Round, 0f, 0f) })
            {
                using var o = Poisoned(d, values.Length);
                Ops.Unary(x, f, a, b, o);
                got.AddRange(o.ToArray());
                expected.AddRange(values.Select(v => MathReference.Of(f, a, b)(v)));
            }
            return new(got.ToArray(), expected.ToArray());
        });
        yield return new CheckCase(FamilyName, "unary_math", "strided", "[19, 23]ᵀ erf", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = Tensor.RandomUniform(d, new[] { 19, 23 }, seed, -3, 3);
            using var xt = x.Transpose(0, 1);
            using var o = Poisoned(d, 23, 19);
            Ops.Unary(xt, UnaryFunction.Erf, output: o);
            var h = ElementwiseReference.StridedView(Host(x), new[] { 23, 19 }, new[] { 1, 23 }, 0);
            return new(o.ToArray(), h.Select(MathReference.Of(UnaryFunction.Erf)).ToArray());
        });

        var comparisons = new Domain(-3, 3, true);
        var binary = new (BinaryFunction F, Domain A, Domain B)[]
        {
            (BinaryFunction.Pow, new(0.05, 4), new(-3, 3)), (BinaryFunction.Pow, new(-4, 4), new(-3, 4, true)),
            (BinaryFunction.Min, wide, wide), (BinaryFunction.Max, wide, wide), (BinaryFunction.Mod, new(-20, 20), new(0.5, 4)),
            (BinaryFunction.Mod, new(-20, 20), new(-4, -0.5)), (BinaryFunction.Fmod, new(-20, 20), new(0.5, 4)),
            (BinaryFunction.Equal, comparisons, comparisons), (BinaryFunction.Less, comparisons, comparisons),
            (BinaryFunction.LessOrEqual, comparisons, comparisons), (BinaryFunction.Greater, comparisons, comparisons),
            (BinaryFunction.GreaterOrEqual, comparisons, comparisons), (BinaryFunction.PRelu, wide, new(0, 1)),
            (BinaryFunction.And, new(0, 2, true), new(0, 2, true)), (BinaryFunction.Or, new(0, 2, true), new(0, 2, true)),
            (BinaryFunction.Xor, new(0, 2, true), new(0, 2, true)),
        };
        var shapes = new (string Name, int[] A, int[] B)[]
        {
            ("tiny", new[] { 1 }, new[] { 1 }), ("odd", new[] { 37, 53 }, new[] { 37, 53 }),
            ("broadcast", new[] { 7, 1, 5 }, new[] { 3, 1 }), ("moderate", new[] { 64, 1031 }, new[] { 1031 }),
        };
        foreach (var (f, da, db) in binary)
        {
            var reference = MathReference.Of(f);
            string name = f.ToString().ToLowerInvariant() + (db.High < 0 ? "_negative_divisor" : db.Integers && f == BinaryFunction.Pow ? "_integer_exponent" : "");
            foreach (var (shapeName, sa, sb) in shapes)
                yield return new CheckCase(FamilyName, "binary_math", $"{name}_{shapeName}", Shapes(sa, sb), CheckCase.Fp32Tolerance, (d, seed) =>
                {
                    using var a = da.Make(d, seed, sa);
                    using var b = db.Make(d, seed + 1, sb);
                    using var o = Poisoned(d, ElementwiseReference.BroadcastShape(sa, sb));
                    Ops.Binary(a, b, f, o);
                    return new(o.ToArray(), ElementwiseReference.Binary(Host(a), sa, Host(b), sb, reference));
                });
        }
    }

    /// <summary>torch.where in double with broadcasting of all three operands.</summary>
    private static double[] WhereReference(double[] c, int[] sc, double[] a, int[] sa, double[] b, int[] sb)
    {
        var shape = ElementwiseReference.BroadcastShape(ElementwiseReference.BroadcastShape(sc, sa), sb);
        var zeros = new double[shape.Aggregate(1, (p, q) => p * q)];
        double[] Full(double[] v, int[] s) => ElementwiseReference.Binary(v, s, zeros, shape, (x, _) => x);
        var (cf, af, bf) = (Full(c, sc), Full(a, sa), Full(b, sb));
        return cf.Select((v, i) => v != 0 ? af[i] : bf[i]).ToArray();
    }

    /// <summary>where's forward on random and special values (±0, ±∞, NaN), broadcast.</summary>
    internal static IEnumerable<CheckCase> WhereCases()
    {
        foreach (var (name, sc, sa, sb) in new[] { ("same_shape", new[] { 37, 53 }, new[] { 37, 53 }, new[] { 37, 53 }), ("broadcast", new[] { 5, 1, 4 }, new[] { 1, 6, 4 }, new[] { 4 }) })
            yield return new CheckCase(FamilyName, "where", name, Shapes(sc, sa, sb), CheckCase.Fp32Tolerance, (d, seed) =>
            {
                var cv = Enumerable.Range(0, sc.Aggregate(1, (p, q) => p * q)).Select(i => (float)(Philox.Word(seed, i) % 3 == 0 ? 0 : 1)).ToArray();
                using var c = Tensor.FromArray(d, cv, sc);
                using var a = Random(d, seed, 1, sa);
                using var b = Random(d, seed, 2, sb);
                using var y = Ops.Where(c, a, b);
                return new(y.ToArray(), WhereReference(Host(c), sc, Host(a), sa, Host(b), sb));
            });
        yield return new CheckCase(FamilyName, "where", "special_values", "[8] ±0, ±inf, NaN", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            var values = new[] { -0f, 0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1f, -2f, 3f };
            using var c = Tensor.FromArray(d, new[] { 1f, 1f, 1f, 1f, 1f, 0f, 0f, 0f });
            using var a = Tensor.FromArray(d, values);
            using var b = Tensor.FromArray(d, values.Reverse().ToArray());
            using var y = Ops.Where(c, a, b);
            var got = y.ToArray();
            // The chosen values exactly, negative zero's sign included (compared as bits: −0 = +0 numerically).
            var expected = values.Take(5).Concat(values.Reverse().Skip(5)).ToArray();
            bool exact = got.Select(BitConverter.SingleToInt32Bits).SequenceEqual(expected.Select(BitConverter.SingleToInt32Bits));
            return new(new[] { exact ? 1f : 0f }, new[] { 1.0 });
        });
    }

    /// <summary>A 0/1 condition of n fair coin flips.</summary>
    private static Tensor Coin(Device d, ulong seed, int n) =>
        Tensor.FromArray(d, Enumerable.Range(0, n).Select(i => (float)(Philox.Word(seed, i) & 1)).ToArray());

    /// <summary>Inputs drawn uniformly from [low, high).</summary>
    /// <summary>Uniform values in [low, high) passed through <paramref name="snap"/> (to keep them off a function's jumps).</summary>
    private static GradientInput Snapped(int[] shape, Func<float, float> snap, double low, double high)
    {
        var uniform = In(shape, low, high).Values!;
        return new(shape, Values: (k, seed) => uniform(k, seed).Select(snap).ToArray());
    }

    private static GradientInput In(int[] shape, double low, double high) => new(shape, Values: (k, seed) =>
    {
        var v = new float[ShapeUtil.Product(shape)];
        Philox.FillUniform(v, seed + (ulong)k * 0x9E3779B97F4A7C15UL, (float)low, (float)high);
        return v;
    });

    /// <summary>
    /// Backward cases of the math ops that losses and generative models use: every differentiable unary function (log, sqrt,
    /// abs, clamp, pow by a scalar and the rest) on its domain, pow/minimum/maximum/PReLU/mod with broadcasting, the minimum
    /// over an axis, and the straight-through estimator (whose gradient is the identity by definition, so it is checked
    /// directly rather than by finite differences).
    /// </summary>
    internal static IEnumerable<CheckCase> BackwardMath()
    {
        var shape = new[] { 7, 13 };
        var unary = new (UnaryFunction F, float A, float B, double Low, double High)[]
        {
            (UnaryFunction.Abs, 0, 0, -3, 3), (UnaryFunction.Neg, 0, 0, -3, 3), (UnaryFunction.Sqrt, 0, 0, 0.1, 9), (UnaryFunction.Reciprocal, 0, 0, 0.2, 5),
            (UnaryFunction.Log, 0, 0, 0.05, 20), (UnaryFunction.Exp, 0, 0, -4, 4), (UnaryFunction.Floor, 0, 0, -3, 3), (UnaryFunction.Sign, 0, 0, -3, 3),
            (UnaryFunction.Erf, 0, 0, -3, 3), (UnaryFunction.Sin, 0, 0, -6, 6), (UnaryFunction.Cos, 0, 0, -6, 6), (UnaryFunction.Tan, 0, 0, -1.2, 1.2),
            (UnaryFunction.Asin, 0, 0, -0.9, 0.9), (UnaryFunction.Acos, 0, 0, -0.9, 0.9), (UnaryFunction.Atan, 0, 0, -5, 5), (UnaryFunction.Sinh, 0, 0, -3, 3),
            (UnaryFunction.Cosh, 0, 0, -3, 3), (UnaryFunction.Asinh, 0, 0, -5, 5), (UnaryFunction.Acosh, 0, 0, 1.1, 6), (UnaryFunction.Atanh, 0, 0, -0.9, 0.9),
            (UnaryFunction.Softsign, 0, 0, -4, 4), (UnaryFunction.HardSigmoid, 0.2f, 0.5f, -4, 4), (UnaryFunction.HardSwish, 0, 0, -5, 5),
            (UnaryFunction.Selu, 1.6732632f, 1.050701f, -3, 3), (UnaryFunction.Celu, 1.5f, 0, -3, 3), (UnaryFunction.ThresholdedRelu, 1f, 0, -3, 3),
            (UnaryFunction.Shrink, 1.5f, 0.5f, -3, 3), (UnaryFunction.Clip, -1.5f, 2f, -3, 3), (UnaryFunction.PowScalar, 3f, 0, -2, 2),
            (UnaryFunction.PowScalar, 0.5f, 0, 0.1, 9),
        };
        foreach (var (f, a, b, low, high) in unary)
        {
            var forward = MathReference.Of(f, a, b);
            var derivative = MathReference.Derivative(f, a, b);
            string name = f.ToString().ToLowerInvariant() + (f == UnaryFunction.PowScalar ? "_" + a : "");
            yield return GradientCheck.Case("unary_math_backward", name, new[] { In(shape, low, high) }, t => Ops.Unary(t[0], f, a, b),
                x => x[0].Select(forward).ToArray(), (x, g) => new[] { x[0].Select((v, i) => g[i] * derivative(v)).ToArray() });
        }
        var binary = new (BinaryFunction F, double ALow, double AHigh, double BLow, double BHigh)[]
        {
            (BinaryFunction.Pow, 0.2, 3, -2, 2), (BinaryFunction.Min, -3, 3, -3, 3), (BinaryFunction.Max, -3, 3, -3, 3),
            (BinaryFunction.PRelu, -3, 3, 0, 1), (BinaryFunction.Mod, -20, 20, 0.5, 4), (BinaryFunction.Fmod, -20, 20, 0.5, 4),
        };
        int[] sa = { 7, 1, 5 }, sb = { 3, 1 };
        var outShape = ElementwiseReference.BroadcastShape(sa, sb);
        foreach (var (f, aLow, aHigh, bLow, bHigh) in binary)
        {
            var forward = MathReference.Of(f);
            var (pa, pb) = (MathReference.Partial(f, false), MathReference.Partial(f, true));
            // mod and fmod jump where a / b is a whole number: within the finite-difference step of one, the proof of the
            // reference gradient failed (1 seed in 200). There b is one of 0.5, 1, 2 and a stays 0.1 or more from any
            // multiple of 0.5, so a / b stays 0.05 or more from a whole number.
            bool jumps = f is BinaryFunction.Mod or BinaryFunction.Fmod;
            var inputs = jumps
                ? new[] { Snapped(sa, x => 0.5f * MathF.Floor(x) + 0.1f + 0.3f * (x - MathF.Floor(x)), -40, 40), Snapped(sb, x => MathF.Pow(2, MathF.Floor(x)), -1, 2) }
                : new[] { In(sa, aLow, aHigh), In(sb, bLow, bHigh) };
            yield return GradientCheck.Case("binary_math_backward", f.ToString().ToLowerInvariant() + "_broadcast", inputs,
                t => Ops.Binary(t[0], t[1], f), x => ElementwiseReference.Binary(x[0], sa, x[1], sb, forward),
                (x, g) =>
                {
                    // dy times the partial at every output element, summed back over the dimensions each operand was broadcast along.
                    var da = ElementwiseReference.Binary(x[0], sa, x[1], sb, pa).Select((v, i) => v * g[i]).ToArray();
                    var db = ElementwiseReference.Binary(x[0], sa, x[1], sb, pb).Select((v, i) => v * g[i]).ToArray();
                    return new[] { GradientReference.SumToShape(da, outShape, sa), GradientReference.SumToShape(db, outShape, sb) };
                });
        }
        // where: a 0/1 condition [5, 1, 4] broadcast against a [1, 6, 4] and b [4]; the condition gets no gradient.
        int[] sc = { 5, 1, 4 }, swa = { 1, 6, 4 }, swb = { 4 };
        var whereShape = ElementwiseReference.BroadcastShape(ElementwiseReference.BroadcastShape(sc, swa), swb);
        var condition = new GradientInput(sc, Differentiable: false, Values: (k, seed) => Enumerable.Range(0, 20).Select(i => (float)(Philox.Word(seed + 5, i) & 1)).ToArray());
        yield return GradientCheck.Case("where_backward", "broadcast", new[] { condition, new GradientInput(swa), new GradientInput(swb) },
            t => Ops.Where(t[0], t[1], t[2]),
            x => WhereReference(x[0], sc, x[1], swa, x[2], swb),
            (x, g) =>
            {
                var c = ElementwiseReference.Binary(x[0], sc, new double[whereShape.Aggregate(1, (p, q) => p * q)], whereShape, (v, _) => v);
                var ga = g.Select((v, i) => c[i] != 0 ? v : 0).ToArray();
                var gb = g.Select((v, i) => c[i] != 0 ? 0 : v).ToArray();
                return new[] { null, GradientReference.SumToShape(ga, whereShape, swa), GradientReference.SumToShape(gb, whereShape, swb) };
            });
        var rows = new[] { 5, 9, 3 };
        yield return GradientCheck.Case("reduce_min_backward", "axis1", new[] { new GradientInput(rows) }, t => Ops.Min(t[0], 1),
            x => ReduceReference.Reduce(x[0], rows[0], rows[1], rows[2], double.PositiveInfinity, Math.Min),
            (x, g) =>
            {
                var dx = new double[x[0].Length];
                for (int i = 0; i < rows[0]; i++)
                    for (int k = 0; k < rows[2]; k++)
                    {
                        int best = 0;
                        for (int j = 1; j < rows[1]; j++)
                            if (x[0][(i * rows[1] + j) * rows[2] + k] < x[0][(i * rows[1] + best) * rows[2] + k])
                                best = j;
                        dx[(i * rows[1] + best) * rows[2] + k] = g[i * rows[2] + k];
                    }
                return new[] { dx };
            });
        yield return new CheckCase("backward", "straight_through_backward", "vq", "[4, 6]", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = Random(d, seed, 0, 4, 6);
            using var q = Random(d, seed, 1, 4, 6);
            using var g = Random(d, seed, 2, 4, 6);
            x.RequiresGrad = true;
            using (var y = Ops.StraightThrough(x, q))
            {
                y.Backward(g);
                // The output carries the quantized values; the gradient reaches x unchanged.
                return new(y.ToArray().Concat(x.Grad!.ToArray()).ToArray(), Host(q).Concat(Host(g)).ToArray());
            }
        });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new(FamilyName, () => Cases().Concat(WhereCases()).Concat(BackwardMath()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants() =>
        Elementwise("unary_math", Unary(typeof(UnaryMath))).Concat(Elementwise("binary_math", typeof(BinaryMath)))
            .Concat(Elementwise("unary_math_backward", typeof(Activation.Backward<UnaryMath>)))
            .Concat(Elementwise("binary_math_backward", typeof(BinaryMathPartial)))
            .Concat(new[] { Flat("binary_math_backward", "times_gradient", typeof(ElementwiseOps.Mul)) })
            .Concat(new[] { Strided("straight_through_backward", "copy", Unary(typeof(ElementwiseOps.Identity))) })
            .Concat(Elementwise("where", typeof(Select))).Concat(new[] { Flat("where", "sum", typeof(ElementwiseOps.Add)) })
            .Concat(Elementwise("where_backward", typeof(Select)))
            .Concat(new[] { new KernelVariant("reduce_min_backward", "argmin", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), typeof(ValueIndex), typeof(ReduceOps.ArgMax))),
                            Method("reduce_min_backward", "route", typeof(ReduceKernels), nameof(ReduceKernels.MaxBackward)) });

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, n, _, _) in Tiers)
        {
            // One function per case (the function is a run-time field, so these time the same kernel).
            foreach (var (function, f) in new[] { (UnaryFunction.Erf, 25.0), (UnaryFunction.Sin, 12.0), (UnaryFunction.Sqrt, 1.0) })
                yield return C("unary_math", S(n) + " " + function.ToString().ToLowerInvariant(), f * n, 8.0 * n, presets, (d, s) => { var x = R(d, s, n); return new(() => Ops.Unary(x, function).Dispose(), x); });
            foreach (var (function, f) in new[] { (BinaryFunction.Pow, 10.0), (BinaryFunction.Max, 1.0) })
                yield return C("binary_math", S(n) + " " + function.ToString().ToLowerInvariant(), f * n, 12.0 * n, presets, (d, s) => { var a = R(d, s, n); var b = R(d, s + 1, n); return new(() => Ops.Binary(a, b, function).Dispose(), a, b); });
            // Training steps: the forward, then dy·f′(x) (unary) or the two partials times dy (binary).
            yield return Step("unary_math_backward", S(n) + " log", 3.0 * n, 20.0 * n, presets, (d, s) =>
                (new[] { Tensor.RandomUniform(d, new[] { n }, s, 0.1f, 2f) }, Trained(1), t => Ops.Unary(t[0], UnaryFunction.Log)));
            yield return Step("binary_math_backward", S(n) + " max", 5.0 * n, 52.0 * n, presets, (d, s) =>
                (new[] { R(d, s, n), R(d, s + 1, n) }, Trained(2), t => Ops.Binary(t[0], t[1], BinaryFunction.Max)));
            yield return C("where", S(n), n, 16.0 * n, presets, (d, s) =>
            { var c = Coin(d, s, n); var a = R(d, s + 1, n); var b = R(d, s + 2, n); return new(() => Ops.Where(c, a, b).Dispose(), c, a, b); });
            yield return Step("where_backward", S(n), n, 40.0 * n, presets, (d, s) =>
                (new[] { Coin(d, s, n), R(d, s + 1, n), R(d, s + 2, n) }, new[] { false, true, true }, t => Ops.Where(t[0], t[1], t[2])));
            yield return Step("straight_through_backward", S(n), 0, 16.0 * n, presets, (d, s) =>
                (new[] { R(d, s, n), R(d, s + 1, n) }, new[] { true, false }, t => Ops.StraightThrough(t[0], t[1])));
        }
        foreach (var (presets, _, rows, cols) in Tiers)
        {
            double rc = (double)rows * cols;
            yield return Step("reduce_min_backward", S(rows, cols), 2 * rc, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, Trained(1), t => Ops.Min(t[0], -1)));
        }
    }
}

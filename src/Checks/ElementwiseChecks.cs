using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of the elementwise family: fill, copy_strided, add/sub/mul/div, axpy.</summary>
internal static class ElementwiseChecks
{
    private const string FamilyName = "elementwise";

    private static CheckCase Case(string kernel, string name, string shape, Func<Device, ulong, CheckOutput> run) =>
        new(FamilyName, kernel, name, shape, CheckCase.Fp32Tolerance, run);

    internal static IEnumerable<CheckCase> Cases()
    {
        foreach (var shape in new[] { new[] { 1 }, new[] { 37, 53 }, new[] { 3, 5, 7 }, new[] { 256, 1031 } })
            yield return Case("fill", "contiguous_" + string.Join("x", shape), Shapes(shape), (d, seed) =>
            {
                float value = ToValue(seed);
                using var t = Poisoned(d, shape);
                Ops.Fill(t, value);
                return new(t.ToArray(), Enumerable.Repeat((double)value, t.Length).ToArray());
            });
        yield return Case("fill", "strided_view", "[13, 17] cols 3..12", (d, seed) =>
        {
            // Only the view's elements change: the rest of the base keeps its random values.
            float value = ToValue(seed);
            using var t = Random(d, seed, 0, 13, 17);
            var expected = Host(t);
            using (var view = t.Slice(1, 3, 9))
                Ops.Fill(view, value);
            for (int r = 0; r < 13; r++)
                for (int c = 3; c < 12; c++)
                    expected[r * 17 + c] = value;
            return new(t.ToArray(), expected);
        });

        yield return StridedCopy("transpose_2d", new[] { 37, 29 }, t => t.Transpose(0, 1));
        yield return StridedCopy("permute_3d", new[] { 5, 7, 11 }, t => t.Permute(2, 0, 1));
        yield return StridedCopy("slice_offset", new[] { 9, 31 }, t => t.Slice(1, 3, 23));
        yield return StridedCopy("slice_then_transpose", new[] { 4, 13, 6 }, t => t.Slice(1, 2, 9).Transpose(0, 2));
        yield return StridedCopy("permute_rank7", new[] { 2, 3, 1, 2, 3, 2, 5 }, t => t.Permute(6, 5, 4, 3, 2, 1, 0));
        yield return StridedCopy("expand_broadcast", new[] { 1, 19 }, t => t.Expand(23, 19));
        yield return StridedCopy("size_one", new[] { 1 }, t => t.Reshape(1, 1));

        var ops = new (string Kernel, Func<Tensor, Tensor, Tensor, Tensor> Op, Func<double, double, double> Ref)[]
        {
            ("add", (a, b, o) => Ops.Add(a, b, o), (x, y) => x + y),
            ("sub", (a, b, o) => Ops.Sub(a, b, o), (x, y) => x - y),
            ("mul", (a, b, o) => Ops.Mul(a, b, o), (x, y) => x * y),
            ("div", (a, b, o) => Ops.Div(a, b, o), (x, y) => x / y),
        };
        var shapes = new (string Name, int[] A, int[] B)[]
        {
            ("tiny", new[] { 1 }, new[] { 1 }),
            ("odd_same_shape", new[] { 37, 53 }, new[] { 37, 53 }),
            ("broadcast_row", new[] { 37, 53 }, new[] { 53 }),
            ("broadcast_column", new[] { 29, 1 }, new[] { 29, 31 }),
            // A per-row scalar on either side, rows short and long (the fast CPU's scalar rows below 32, vector rows above).
            ("broadcast_column_wide", new[] { 9, 1 }, new[] { 9, 70 }),
            ("broadcast_column_b", new[] { 29, 31 }, new[] { 29, 1 }),
            ("broadcast_column_b_wide", new[] { 9, 70 }, new[] { 9, 1 }),
            ("broadcast_both", new[] { 7, 1, 5 }, new[] { 3, 1 }),
            // A per-channel gate over 2×2 maps (squeeze-and-excite): rows of 4, one masked vector each on the fast CPU, 2306 of
            // them (past the fast CPU's 4096 elements an elementwise pass splits across the cores).
            ("channel_gate_rows_of_4", new[] { 2, 1153, 4 }, new[] { 2, 1153, 1 }),
            // The same sixteen rows at a time over rows of 2 and, gate first, of 8 (a tail of 15 rows in the second).
            ("channel_gate_rows_of_2", new[] { 1, 999, 2, 1 }, new[] { 1, 999, 1, 1 }),
            ("gate_first_rows_of_8", new[] { 3, 77, 1 }, new[] { 3, 77, 8 }),
            // Rows of whole vectors (4×4 and 8×8 maps): each row's gate broadcast; tails of 10 and 8 rows.
            ("channel_gate_rows_of_64", new[] { 2, 37, 8, 8 }, new[] { 2, 37, 1, 1 }),
            ("gate_first_rows_of_16", new[] { 1, 40, 1, 1 }, new[] { 1, 40, 4, 4 }),
            // Broadcasts that do not coalesce: four and six dimensions, so the row walk carries across three and five outer ones.
            ("broadcast_rank4", new[] { 3, 4, 5, 6 }, new[] { 3, 1, 5, 1 }),
            ("broadcast_rank6", new[] { 2, 1, 3, 1, 2, 5 }, new[] { 1, 3, 1, 4, 2, 1 }),
            ("scalar", new[] { 13, 17 }, new[] { 1 }),
            ("moderate", new[] { 256, 1031 }, new[] { 256, 1031 }),
        };
        foreach (var (kernel, op, reference) in ops)
        {
            foreach (var (name, sa, sb) in shapes)
                yield return Case(kernel, name, Shapes(sa, sb), (d, seed) =>
                {
                    using var a = Random(d, seed, 0, sa);
                    using var b = Random(d, seed, 1, sb);
                    using var o = Poisoned(d, ElementwiseReference.BroadcastShape(sa, sb));
                    op(a, b, o);
                    return new(o.ToArray(), ElementwiseReference.Binary(Host(a), sa, Host(b), sb, reference));
                });
            yield return Case(kernel, "unaligned_views", "[11, 67] cols 1..66 + transposed [66, 11]", (d, seed) =>
            {
                // Offsets that are not multiples of 4 force the scalar path; a transposed operand the strided one.
                using var baseA = Random(d, seed, 0, 11, 67);
                using var baseB = Random(d, seed, 1, 66, 11);
                using var a = baseA.Slice(1, 1, 66);
                using var b = baseB.Transpose(0, 1);
                using var o = Poisoned(d, 11, 66);
                op(a, b, o);
                var ha = ElementwiseReference.StridedView(Host(baseA), new[] { 11, 66 }, new[] { 67, 1 }, 1);
                var hb = ElementwiseReference.StridedView(Host(baseB), new[] { 11, 66 }, new[] { 1, 11 }, 0);
                return new(o.ToArray(), ElementwiseReference.Binary(ha, new[] { 11, 66 }, hb, new[] { 11, 66 }, reference));
            });
        }

        foreach (var (name, sx, sy) in new[] { ("same_shape", new[] { 37, 53 }, new[] { 37, 53 }), ("broadcast_x", new[] { 53 }, new[] { 37, 53 }), ("moderate", new[] { 100003 }, new[] { 100003 }) })
            yield return Case("axpy", name, Shapes(sx, sy), (d, seed) =>
            {
                float alpha = ToValue(seed) * 3;
                using var x = Random(d, seed, 0, sx);
                using var y = Random(d, seed, 1, sy);
                using var o = Poisoned(d, sy);
                Ops.Axpy(alpha, x, y, o);
                return new(o.ToArray(), ElementwiseReference.Binary(Host(x), sx, Host(y), sy, (a, b) => alpha * a + b));
            });
        yield return Case("axpy", "in_place", "[61, 7]", (d, seed) =>
        {
            float alpha = ToValue(seed) * 3;
            using var x = Random(d, seed, 0, 61, 7);
            using var y = Random(d, seed, 1, 61, 7);
            var expected = ElementwiseReference.Binary(Host(x), new[] { 61, 7 }, Host(y), new[] { 61, 7 }, (a, b) => alpha * a + b);
            Ops.AxpyInPlace(alpha, x, y);
            return new(y.ToArray(), expected);
        });
    }

    private static CheckCase StridedCopy(string name, int[] baseShape, Func<Tensor, Tensor> view) =>
        Case("copy_strided", name, Shapes(baseShape), (d, seed) =>
        {
            using var t = Random(d, seed, 0, baseShape);
            using var v = view(t);
            using var o = Poisoned(d, v.ShapeArray());
            Ops.Copy(v, o);
            var expected = ElementwiseReference.StridedView(Host(t), v.ShapeArray(), v.Strides.ToArray(), v.Offset);
            return new(o.ToArray(), expected);
        });

    private static float ToValue(ulong seed) => Philox.ToUniform(Philox.Word(seed, 0)) * 2 - 1;

    internal static IEnumerable<CheckCase> BackwardElementwise()
    {
        // Divisors kept away from 0: |b| in [0.5, 1.5] with random sign.
        static float[] Divisor(int[] shape, ulong seed)
        {
            var v = new float[ShapeUtil.Product(shape)];
            Philox.FillUniform(v, seed, -1f, 1f);
            return Array.ConvertAll(v, u => MathF.CopySign(0.5f + MathF.Abs(u), u));
        }
        var ops = new (string Name, Func<Tensor, Tensor, Tensor> Op, Func<double, double, double> F, Func<double, double, double> Da, Func<double, double, double> Db)[]
        {
            ("add", (a, b) => Ops.Add(a, b), (a, b) => a + b, (_, _) => 1, (_, _) => 1),
            ("sub", (a, b) => Ops.Sub(a, b), (a, b) => a - b, (_, _) => 1, (_, _) => -1),
            ("mul", (a, b) => Ops.Mul(a, b), (a, b) => a * b, (_, b) => b, (a, _) => a),
            ("div", (a, b) => Ops.Div(a, b), (a, b) => a / b, (_, b) => 1 / b, (a, b) => -a / (b * b)),
        };
        var shapes = new (string Name, int[] A, int[] B)[]
        {
            ("same", new[] { 37, 53 }, new[] { 37, 53 }),
            ("row_broadcast", new[] { 37, 53 }, new[] { 53 }),
            ("both_broadcast", new[] { 7, 1, 5 }, new[] { 3, 5 }),
            ("scalar", new[] { 1 }, new[] { 19 }),
        };
        foreach (var (name, op, f, da, db) in ops)
            foreach (var (shapeName, a, b) in shapes)
                yield return GradientCheck.Case(name + "_backward", shapeName,
                    new[] { new GradientInput(a), new GradientInput(b, Values: name == "div" ? (k, seed) => Divisor(b, seed + (ulong)k) : null) },
                    t => op(t[0], t[1]),
                    x => ElementwiseReference.Binary(x[0], a, x[1], b, f),
                    (x, g) =>
                    {
                        var (ga, gb) = GradientReference.Binary(x[0], a, x[1], b, g, da, db);
                        return new[] { ga, gb };
                    });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new(FamilyName, () => Cases().Concat(BackwardElementwise()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants()
    {
        var variants = Elementwise("fill", Unary(typeof(ElementwiseOps.Constant)))
            .Concat(Elementwise("copy_strided", Unary(typeof(ElementwiseOps.Identity))))
            .Concat(Elementwise("add", typeof(ElementwiseOps.Add)))
            .Concat(Elementwise("sub", typeof(ElementwiseOps.Sub)))
            .Concat(Elementwise("mul", typeof(ElementwiseOps.Mul)))
            .Concat(Elementwise("div", typeof(ElementwiseOps.Div)))
            .Concat(Elementwise("axpy", typeof(ElementwiseOps.Axpy)));
        foreach (var v in variants)
            yield return v;
        foreach (var (kernel, op) in new[] { ("add_backward", typeof(ElementwiseOps.Add)), ("sub_backward", typeof(ElementwiseOps.Sub)), ("mul_backward", typeof(ElementwiseOps.Mul)), ("div_backward", typeof(ElementwiseOps.Div)) })
        {
            yield return new KernelVariant(kernel, "columns", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Columns), typeof(float), typeof(ReduceOps.Sum)));
            yield return Strided(kernel, "strided", op);
        }
    }

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, n, rows, cols) in Tiers)
        {
            yield return C("fill", S(n), 0, 4.0 * n, presets, (d, s) => { var a = R(d, s, n); return new(() => Ops.Fill(a, 1.5f), a); });
            yield return C("copy_strided", S(rows, cols) + "ᵀ", 0, 8.0 * rows * cols, presets, (d, s) =>
            {
                var a = R(d, s, rows, cols);
                var o = Tensor.Empty(d, cols, rows);
                return new(() => { using var t = a.Transpose(); Ops.Copy(t, o); }, a, o);
            });
            var binary = new (string, Func<Tensor, Tensor, Tensor>)[] { ("add", (a, b) => Ops.Add(a, b)), ("sub", (a, b) => Ops.Sub(a, b)), ("mul", (a, b) => Ops.Mul(a, b)), ("div", (a, b) => Ops.Div(a, b)) };
            foreach (var (name, op) in binary)
                yield return C(name, S(n), n, 12.0 * n, presets, (d, s) => { var a = R(d, s, n); var b = R(d, s + 1, n); return new(() => op(a, b).Dispose(), a, b); });
            yield return C("axpy", S(n), 2.0 * n, 12.0 * n, presets, (d, s) => { var x = R(d, s, n); var y = R(d, s + 1, n); return new(() => Ops.AxpyInPlace(0.5f, x, y), x, y); });
            foreach (var (name, op) in binary)
                yield return Step(name + "_backward", S(n), 4.0 * n, 36.0 * n, presets, (d, s) => (new[] { R(d, s, n), Tensor.RandomUniform(d, new[] { n }, s + 1, 0.5f, 1.5f) }, Trained(2), t => op(t[0], t[1])));
        }
        // The fast CPU's comparison shape (the small tier has 64K).
        int m = 1 << 20;
        yield return C("add", S(m), m, 12.0 * m, CpuPreset, (d, s) => { var a = R(d, s, m); var b = R(d, s + 1, m); return new(() => Ops.Add(a, b).Dispose(), a, b); });
    }
}

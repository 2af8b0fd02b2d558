using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of the reduction family: sum_last_axis, reduce_sum/mean/max and argmax over every axis.</summary>
internal static class ReduceChecks
{
    /// <summary>A reduction of a [outer, reduced, inner]-shaped input; <paramref name="ties"/> rounds inputs to {−2..2} so argmax meets ties.</summary>
    private static CheckCase AxisCase(string kernel, int[] shape, int axis, bool keepDim, Func<Tensor, Tensor> op,
        Func<double[], int, int, int, double[]> reference, bool ties = false) =>
        new("reduce", kernel, $"axis{axis}_{string.Join("x", shape)}{(keepDim ? "_keepdim" : "")}{(ties ? "_ties" : "")}", $"{Shapes(shape)} axis {axis}", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            var host = new float[ShapeUtil.Product(shape)];
            Philox.FillUniform(host, seed, -1, 1);
            if (ties)
                for (int i = 0; i < host.Length; i++)
                    host[i] = MathF.Round(host[i] * 2);
            using var x = Tensor.FromArray(d, host, shape);
            int a = axis < 0 ? axis + shape.Length : axis;
            int outer = (int)ShapeUtil.Product(shape.AsSpan(0, a)), reduced = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1));
            using var o = op(x);
            return new(o.ToArray(), reference(Host(x), outer, reduced, inner));
        });

    internal static IEnumerable<CheckCase> Cases()
    {
        foreach (var shape in new[] { new[] { 1, 1 }, new[] { 37, 53 }, new[] { 3, 1 }, new[] { 5, 7, 257 }, new[] { 2, 5000 }, new[] { 64, 1024 } })
            yield return new CheckCase("reduce", "sum_last_axis", string.Join("x", shape), Shapes(shape), CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, shape);
                using var o = Poisoned(d, shape[..^1]);
                Ops.SumLastAxis(x, o);
                int cols = shape[^1];
                return new(o.ToArray(), ReduceReference.SumLastAxis(Host(x), x.Length / cols, cols));
            });
        yield return new CheckCase("reduce", "sum_last_axis", "strided_input", "[23, 41]ᵀ", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = Random(d, seed, 0, 23, 41);
            using var xt = x.Transpose(0, 1);
            using var o = Poisoned(d, 41);
            Ops.SumLastAxis(xt, o);
            var h = ElementwiseReference.StridedView(Host(x), new[] { 41, 23 }, new[] { 1, 41 }, 0);
            return new(o.ToArray(), ReduceReference.SumLastAxis(h, 41, 23));
        });

        foreach (var (shape, axis, keep) in new[] { (new[] { 7, 13, 5 }, 0, false), (new[] { 7, 13, 5 }, 1, true), (new[] { 7, 13, 5 }, 2, false), (new[] { 37, 53 }, -1, false), (new[] { 1 }, 0, false), (new[] { 3, 3000 }, 1, false) })
        {
            yield return AxisCase("reduce_sum", shape, axis, keep, x => Ops.Sum(x, axis, keep),
                (h, o, r, i) => ReduceReference.Reduce(h, o, r, i, 0, (p, q) => p + q));
            yield return AxisCase("reduce_mean", shape, axis, keep, x => Ops.Mean(x, axis, keep),
                (h, o, r, i) => ReduceReference.Reduce(h, o, r, i, 0, (p, q) => p + q, (acc, n) => acc / n));
            yield return AxisCase("reduce_max", shape, axis, keep, x => Ops.Max(x, axis, keep),
                (h, o, r, i) => ReduceReference.Reduce(h, o, r, i, double.NegativeInfinity, Math.Max));
            yield return AxisCase("reduce_min", shape, axis, keep, x => Ops.Min(x, axis, keep),
                (h, o, r, i) => ReduceReference.Reduce(h, o, r, i, double.PositiveInfinity, Math.Min));
            // Products of many factors in (−1, 1) vanish; 1 + x/8 keeps a 3000-long product finite and sensitive to every factor.
            yield return AxisCase("reduce_prod", shape, axis, keep, x =>
                {
                    using var ones = Ops.Full(x.Device, 1f, x.ShapeArray());
                    using var factors = Ops.Axpy(0.0625f, x, ones);
                    return Ops.Prod(factors, axis, keep);
                },
                (h, o, r, i) => ReduceReference.Reduce(h.Select(v => (double)(float)(0.0625 * v + 1)).ToArray(), o, r, i, 1, (p, q) => p * q));
            foreach (bool ties in new[] { false, true })
                yield return AxisCase("argmax", shape, axis, keep, x => Ops.ArgMax(x, axis, keep), ReduceReference.ArgMax, ties);
        }
    }
}

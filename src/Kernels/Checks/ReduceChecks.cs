using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of the reduction family.</summary>
internal static class ReduceChecks
{
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
    }
}

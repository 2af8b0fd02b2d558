using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of topk (selection) and cumsum (scan): odd row lengths, k from 1 to n, ties, both directions.</summary>
internal static class SelectionChecks
{
    internal static IEnumerable<CheckCase> Cases()
    {
        foreach (var (rows, n, k, largest, ties) in new[] { (1, 1, 1, true, false), (37, 53, 5, true, false), (37, 53, 53, false, false), (7, 1031, 16, true, false), (13, 29, 7, true, true), (13, 29, 4, false, true) })
            yield return new CheckCase("selection", "topk", $"{rows}x{n}_k{k}{(largest ? "" : "_smallest")}{(ties ? "_ties" : "")}", $"{Shapes(new[] { rows, n })} k {k}", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                // Ties: values from a few integers, so equal values compete and the lower index must win.
                using var raw = Random(d, seed, 0, rows, n);
                using var x = ties ? Ops.Unary(Ops.Scale(raw, 3f), UnaryFunction.Round) : raw.Contiguous();
                using var r = Ops.TopK(x, k, largest);
                // Values and indices each on their own: joined, the indices (up to n − 1) would hide value errors ~600× larger.
                var expected = SelectionReference.TopK(Host(x), rows, n, k, largest);
                return new(r.Values.ToArray(), expected[..(rows * k)]) { Also = [("indices", r.Indices.ToArray(), expected[(rows * k)..])] };
            });
        foreach (var (shape, axis, exclusive, reverse) in new[] { (new[] { 1 }, 0, false, false), (new[] { 37, 53 }, 1, false, false), (new[] { 37, 53 }, 0, true, false),
                     (new[] { 5, 7, 11 }, 1, false, true), (new[] { 5, 7, 11 }, 2, true, true), (new[] { 3, 4099 }, 1, false, false) })
            yield return new CheckCase("scan", "cumsum", $"{string.Join("x", shape)}_axis{axis}{(exclusive ? "_exclusive" : "")}{(reverse ? "_reverse" : "")}", $"{Shapes(shape)} axis {axis}", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, shape);
                using var y = Ops.CumSum(x, axis, exclusive, reverse);
                int outer = shape[..axis].Aggregate(1, (a, b) => a * b), inner = shape[(axis + 1)..].Aggregate(1, (a, b) => a * b);
                return new(y.ToArray(), SelectionReference.CumSum(Host(x), outer, shape[axis], inner, exclusive, reverse));
            });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>): top-k and the scan.</summary>
    internal static KernelFamily Family { get; } = new("selection", Cases, Variants, Bench);

    private static IEnumerable<KernelVariant> Variants() => new[]
    {
        Method("topk", "rows", typeof(SelectionKernels), nameof(SelectionKernels.TopK)),
        Method("cumsum", "lines", typeof(ScanKernels), nameof(ScanKernels.CumSum)),
    };

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, _, rows, cols) in Tiers)
        {
            double rc = (double)rows * cols;
            yield return C("topk", S(rows, cols) + " k8", 8 * rc, 4 * rc + 64.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.TopK(x, 8).Dispose(), x); });
            yield return C("cumsum", S(rows, cols) + " axis1", 4 * rc, 8 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.CumSum(x, 1).Dispose(), x); });
        }
    }
}

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
                return new(r.Values.ToArray().Concat(r.Indices.ToArray()).ToArray(), SelectionReference.TopK(Host(x), rows, n, k, largest));
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
}

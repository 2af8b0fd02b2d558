using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>Cumulative sum along <paramref name="axis"/>; <paramref name="exclusive"/> leaves each element out of its own sum, <paramref name="reverse"/> sums from the end. Inference only. Kernel <c>cumsum</c>.</summary>
    public static Tensor CumSum(Tensor x, int axis, bool exclusive = false, bool reverse = false)
    {
        const string op = "cumsum";
        var device = Validate.Input(op, "x", x);
        if (x.Rank < 1)
            throw new ShapeMismatchException(op, "x", "a tensor of rank ≥ 1", "a scalar");
        int a = ShapeUtil.NormalizeAxis(op, axis, x.Rank);
        var shape = x.ShapeArray();
        int n = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1)), lines = (int)(x.Length / Math.Max(n, 1));
        var y = Tensor.Empty(device, shape);
        if (y.Length > 0)
        {
            using var xc = x.Contiguous();
            var (xv, yv) = (xc.ContiguousView, y.ContiguousView);
            int ex = exclusive ? 1 : 0, rev = reverse ? 1 : 0;
            ScanKernels.RunCumSum(op, device, xv, yv, lines, n, inner, ex, rev);
        }
        return NoGradient(op, y, x);
    }
}

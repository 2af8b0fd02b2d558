using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// The <paramref name="k"/> largest (or smallest) entries along the last axis, in order, ties to the lower index
    /// (torch.topk, ONNX TopK with sorted output). Inference only. Kernel <c>topk</c>.
    /// </summary>
    public static TopKResult TopK(Tensor x, int k, bool largest = true)
    {
        const string op = "topk";
        var device = Validate.Input(op, "x", x);
        if (x.Rank < 1)
            throw new ShapeMismatchException(op, "x", "a tensor of rank ≥ 1", "a scalar");
        int n = x.Size(-1);
        if (k < 0 || k > n)
            throw new ShapeMismatchException(op, "k", $"0 ≤ k ≤ {n} (the last dimension)", k.ToString());
        var shape = x.ShapeArray();
        shape[^1] = k;
        var values = Tensor.Empty(device, shape);
        var indices = Tensor.Empty(device, shape);
        int rows = n == 0 ? 0 : (int)(x.Length / n);
        if (values.Length > 0)
        {
            using var xc = x.Contiguous();
            var (xv, vv, iv) = (xc.ContiguousView, values.ContiguousView, indices.ContiguousView);
            int flag = largest ? 1 : 0;
            SelectionKernels.RunTopK(op, device, xv, vv, iv, rows, n, k, flag);
        }
        NoGradient(op, values, x);
        return new TopKResult(values, indices);
    }
}

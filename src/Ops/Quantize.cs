using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>Index of the nearest codebook row (squared distance, ties to the lower index) for each row of x [N, D]; codebook [K, D]. Returns [N] as floats. Kernel <c>vq_nearest</c>.</summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>vq_nearest</c>.</remarks>
    public static Tensor VqNearest(Tensor x, Tensor codebook)
    {
        var r = VqNearestCore(x, codebook);
        Autograd.RecordNoGradient("vq_nearest", r, x, codebook);
        return r;
    }

    private static Tensor VqNearestCore(Tensor x, Tensor codebook)
    {
        const string op = "vq_nearest";
        var device = Validate.Input(op, "x", x);
        Validate.Input(op, "codebook", codebook, device);
        Validate.Rank(op, "x", x, 2);
        Validate.Rank(op, "codebook", codebook, 2);
        if (codebook.Size(1) != x.Size(1))
            throw new ShapeMismatchException(op, "codebook", $"[K, {x.Size(1)}] (the dimension of x)", GpuNetException.FormatShape(codebook.ShapeArray()));
        if (codebook.Size(0) < 1)
            throw new ShapeMismatchException(op, "codebook", "at least one code", GpuNetException.FormatShape(codebook.ShapeArray()));
        var o = Tensor.Empty(device, x.Size(0));
        if (o.Length == 0)
            return o;
        using var xc = x.Contiguous();
        using var cc = codebook.Contiguous();
        QuantizeKernels.RunNearest(op, device, xc, cc, o, x.Size(0), codebook.Size(0), x.Size(1));
        return o;
    }
}

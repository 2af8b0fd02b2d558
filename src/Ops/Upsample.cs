using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>Nearest-neighbour upsampling of x [N, C, H, W] to [N, C, OH, OW]. Kernel <c>upsample_nearest2d</c>.</summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>upsample_nearest2d</c>.</remarks>
    public static Tensor UpsampleNearest2d(Tensor x, (int H, int W) size)
    {
        var r = UpsampleNearest2dCore(x, size);
        Autograd.RecordNoGradient("upsample_nearest2d", r, x);
        return r;
    }

    private static Tensor UpsampleNearest2dCore(Tensor x, (int H, int W) size)
    {
        var (xc, y) = UpsampleSetup("upsample_nearest2d", x, size);
        using (xc)
        {
            if (y.Length == 0)
                return y;
            var device = Validate.DeviceOf("upsample_nearest2d", "x", x);
            var (xv, yv, h, w, total) = (xc.ContiguousView, y.ContiguousView, x.Size(2), x.Size(3), y.Length);
            UpsampleKernels.RunNearest("upsample_nearest2d", device, xv, yv, h, w, size.H, size.W, total);
            return y;
        }
    }

    /// <summary>Bilinear upsampling of x [N, C, H, W] to [N, C, OH, OW] (PyTorch's align_corners semantics). Kernel <c>upsample_bilinear2d</c>.</summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>upsample_bilinear2d</c>.</remarks>
    public static Tensor UpsampleBilinear2d(Tensor x, (int H, int W) size, bool alignCorners = false)
    {
        var r = UpsampleBilinear2dCore(x, size, alignCorners);
        Autograd.RecordNoGradient("upsample_bilinear2d", r, x);
        return r;
    }

    private static Tensor UpsampleBilinear2dCore(Tensor x, (int H, int W) size, bool alignCorners = false)
    {
        var (xc, y) = UpsampleSetup("upsample_bilinear2d", x, size);
        using (xc)
        {
            if (y.Length == 0)
                return y;
            var device = Validate.DeviceOf("upsample_bilinear2d", "x", x);
            var (xv, yv, h, w, total, align) = (xc.ContiguousView, y.ContiguousView, x.Size(2), x.Size(3), y.Length, alignCorners ? 1 : 0);
            UpsampleKernels.RunBilinear("upsample_bilinear2d", device, xv, yv, h, w, size.H, size.W, align, total);
            return y;
        }
    }

    private static (Tensor Input, Tensor Output) UpsampleSetup(string op, Tensor x, (int H, int W) size)
    {
        Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 4);
        if (size.H < 1 || size.W < 1)
            throw new ShapeMismatchException(op, "size", "an output size ≥ 1×1", size.ToString());
        if (x.Size(2) < 1 || x.Size(3) < 1)
            throw new ShapeMismatchException(op, "x", "a non-empty plane (H, W ≥ 1)", GpuNetException.FormatShape(x.ShapeArray()));
        return (x.Contiguous(), Tensor.Empty(x.Device, x.Size(0), x.Size(1), size.H, size.W));
    }
}

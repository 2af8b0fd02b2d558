using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>Nearest-neighbour upsampling of x [N, C, H, W] to [N, C, OH, OW]. Kernel <c>upsample_nearest2d</c>.</summary>
    /// <remarks>Backward: kernel <c>upsample_nearest2d_backward</c>, a gather over the outputs each input fed.</remarks>
    public static Tensor UpsampleNearest2d(Tensor x, (int H, int W) size)
    {
        var r = UpsampleNearest2dCore(x, size);
        RecordUpsample("upsample_nearest2d", x, r, (op, device, gv, dv, h, w, total) => UpsampleKernels.RunNearestBackward(op, device, gv, dv, h, w, size.H, size.W, total));
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
    /// <remarks>Backward: kernel <c>upsample_bilinear2d_backward</c>, a gather of the interpolation weights each input received.</remarks>
    public static Tensor UpsampleBilinear2d(Tensor x, (int H, int W) size, bool alignCorners = false)
    {
        var r = UpsampleBilinear2dCore(x, size, alignCorners);
        int align = alignCorners ? 1 : 0;
        RecordUpsample("upsample_bilinear2d", x, r, (op, device, gv, dv, h, w, total) => UpsampleKernels.RunBilinearBackward(op, device, gv, dv, h, w, size.H, size.W, align, total));
        return r;
    }

    /// <summary>Records an upsampling's backward: <paramref name="gather"/> (op, device, dy, dx, H, W, total) fills dx [N, C, H, W] from dy.</summary>
    private static void RecordUpsample(string op, Tensor x, Tensor y, Action<string, Device, ILGPU.ArrayView<float>, ILGPU.ArrayView<float>, int, int, int> gather)
    {
        if (!Autograd.ShouldRecord(x))
            return;
        var shape = x.ShapeArray();
        Autograd.Record(op, y, new[] { x }, (g, _) =>
        {
            var dx = Tensor.Empty(g.Device, shape);
            if (dx.Length > 0)
            {
                using var gc = g.Contiguous();
                gather(op + "_backward", g.Device, gc.ContiguousView, dx.ContiguousView, shape[2], shape[3], dx.Length);
            }
            return new[] { dx };
        });
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

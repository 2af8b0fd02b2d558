using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>2-D max pooling of x [N, C, H, W] (PyTorch's nn.MaxPool2d; stride defaults to the kernel). Kernel <c>maxpool2d</c>.</summary>
    /// <remarks>Backward (kernel <c>maxpool2d_backward</c>) routes each output's gradient to the input its index names.</remarks>
    public static PoolResult MaxPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W) padding = default,
        (int H, int W)? dilation = null, bool ceilMode = false)
    {
        var q = PoolGeometry("maxpool2d", x, kernel, stride ?? kernel, padding, dilation ?? (1, 1), ceilMode);
        return RunMaxPool("maxpool2d", x, q);
    }

    /// <summary>
    /// <see cref="MaxPool2d"/>'s output alone (what inference and nn.MaxPool2d without return_indices use): while the tape
    /// records, the same kernel with its indices kept for the backward; otherwise on the fast CPU a separable loop that tracks no
    /// index (resnet18's stem pool in the model 60 → 44 µs), on other devices the kernel with scratch indices. Kernel <c>maxpool2d</c>.
    /// </summary>
    public static Tensor MaxPool2dValues(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W) padding = default,
        (int H, int W)? dilation = null, bool ceilMode = false)
    {
        const string op = "maxpool2d";
        var q = PoolGeometry(op, x, kernel, stride ?? kernel, padding, dilation ?? (1, 1), ceilMode);
        if (Autograd.ShouldRecord(x))
        {
            var r = RunMaxPool(op, x, q);
            r.Indices.Dispose();
            return r.Output;
        }
        var output = Tensor.Empty(x.Device, x.Size(0), x.Size(1), q.OH, q.OW);
        if (output.Length > 0 && q.H * q.W > 0)
        {
            using var xc = x.Contiguous();
            PoolingKernels.RunMaxPoolValues(op, x.Device, xc.ContiguousView, output.ContiguousView, q, output.Length);
        }
        return output;
    }

    /// <summary>2-D average pooling of x [N, C, H, W] (PyTorch's nn.AvgPool2d). Kernel <c>avgpool2d</c>.</summary>
    /// <remarks>Backward (kernel <c>avgpool2d_backward</c>) spreads each output's gradient over its window by the same divisor.</remarks>
    public static Tensor AvgPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W) padding = default,
        bool ceilMode = false, bool countIncludePad = true)
    {
        var q = PoolGeometry("avgpool2d", x, kernel, stride ?? kernel, padding, (1, 1), ceilMode);
        q.CountIncludePad = countIncludePad ? 1 : 0;
        return RunAvgPool("avgpool2d", x, q);
    }

    /// <summary>Adaptive average pooling to [OH, OW] with PyTorch's bins. Kernel <c>adaptive_avgpool2d</c>.</summary>
    /// <remarks>Backward: kernel <c>adaptive_avgpool2d_backward</c>.</remarks>
    public static Tensor AdaptiveAvgPool2d(Tensor x, (int H, int W) outputSize) =>
        RunAvgPool("adaptive_avgpool2d", x, AdaptiveGeometry("adaptive_avgpool2d", x, outputSize));

    /// <summary>Adaptive max pooling to [OH, OW] with PyTorch's bins, with argmax indices. Kernel <c>adaptive_maxpool2d</c>.</summary>
    /// <remarks>Backward: kernel <c>adaptive_maxpool2d_backward</c>, through the indices.</remarks>
    public static PoolResult AdaptiveMaxPool2d(Tensor x, (int H, int W) outputSize) =>
        RunMaxPool("adaptive_maxpool2d", x, AdaptiveGeometry("adaptive_maxpool2d", x, outputSize));

    /// <summary>Mean over the spatial dimensions: [N, C, H, W] → [N, C, 1, 1] (a row mean). Kernel <c>global_avgpool</c>.</summary>
    /// <remarks>Backward: the gradient broadcast over the plane, scaled by 1/(H·W) (kernel <c>scale</c> on the broadcast view).</remarks>
    public static Tensor GlobalAvgPool(Tensor x)
    {
        Validate.Input("global_avgpool", "x", x);
        Validate.Rank("global_avgpool", "x", x, 4);
        Tensor result;
        using (Autograd.NoGrad())
        {
            using var xc = x.Contiguous();
            using var rows = xc.Reshape(x.Size(0), x.Size(1), x.Size(2) * x.Size(3));
            using var means = Reduce<float, ReduceOps.Mean>("global_avgpool", rows, -1, keepDim: true, null, default);
            result = means.Reshape(x.Size(0), x.Size(1), 1, 1);
        }
        if (Autograd.ShouldRecord(x))
        {
            var shape = x.ShapeArray();
            float scale = 1f / Math.Max(1, shape[2] * shape[3]);
            Autograd.Record("global_avgpool", result, new[] { x }, (g, _) =>
            {
                using var spread = g.Expand(shape);
                return new[] { Scale(spread, scale) };
            });
        }
        return result;
    }

    private static PoolIndex PoolGeometry(string op, Tensor x, (int H, int W) k, (int H, int W) s, (int H, int W) p, (int H, int W) d, bool ceil)
    {
        Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 4);
        if (k.H < 1 || k.W < 1)
            throw new ShapeMismatchException(op, "kernel_size", "sizes ≥ 1", k.ToString());
        if (s.H < 1 || s.W < 1)
            throw new ShapeMismatchException(op, "stride", "strides ≥ 1", s.ToString());
        if (d.H < 1 || d.W < 1)
            throw new ShapeMismatchException(op, "dilation", "dilations ≥ 1", d.ToString());
        if (p.H < 0 || p.W < 0 || p.H > k.H / 2 || p.W > k.W / 2)
            throw new ShapeMismatchException(op, "padding", $"0 ≤ padding ≤ half the kernel {k}", p.ToString());
        int h = x.Size(2), w = x.Size(3);
        int OutSize(int size, int kk, int ss, int pp, int dd)
        {
            int span = size + 2 * pp - dd * (kk - 1) - 1;
            if (span < 0)
                return 0;
            int o = (span + (ceil ? ss - 1 : 0)) / ss + 1;
            // Ceil mode: the last window must start inside the input or its left padding.
            if (ceil && (o - 1) * ss >= size + pp)
                o--;
            return o;
        }
        int oh = OutSize(h, k.H, s.H, p.H, d.H), ow = OutSize(w, k.W, s.W, p.W, d.W);
        if (oh < 1 || ow < 1)
            throw new ShapeMismatchException(op, "kernel_size", $"a dilated kernel that fits the padded input {h + 2 * p.H}×{w + 2 * p.W}", $"{k} with dilation {d}");
        return new PoolIndex
        {
            H = h, W = w, OH = oh, OW = ow, KH = k.H, KW = k.W, StrideH = s.H, StrideW = s.W, PadH = p.H, PadW = p.W,
            DilationH = d.H, DilationW = d.W,
        };
    }

    private static PoolIndex AdaptiveGeometry(string op, Tensor x, (int H, int W) size)
    {
        Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 4);
        if (size.H < 1 || size.W < 1)
            throw new ShapeMismatchException(op, "output_size", "sizes ≥ 1", size.ToString());
        return new PoolIndex { H = x.Size(2), W = x.Size(3), OH = size.H, OW = size.W, Adaptive = 1 };
    }

    /// <summary>Max pooling with indices, recording its backward through them.</summary>
    private static PoolResult RunMaxPool(string op, Tensor x, PoolIndex q)
    {
        var (output, indices) = RunPool<Flags.Yes>(op, x, q);
        if (Autograd.ShouldRecord(x))
        {
            Autograd.RecordNoGradient(op + " (indices output)", indices!, x);
            var saved = Autograd.Save(indices!);
            RecordPool<Flags.Yes>(op, x, output, saved, q);
        }
        return new PoolResult(output, indices!);
    }

    /// <summary>Average pooling, recording its backward.</summary>
    private static Tensor RunAvgPool(string op, Tensor x, PoolIndex q)
    {
        var output = RunPool<Flags.No>(op, x, q).Output;
        if (Autograd.ShouldRecord(x))
            RecordPool<Flags.No>(op, x, output, null, q);
        return output;
    }

    /// <summary>Records a pooling's backward: the gather of <see cref="PoolingKernels.Pool2dBackwardAt"/> over the input
    /// (kernel <c>{op}_backward</c>), from the saved argmax indices for max pooling.</summary>
    private static void RecordPool<TMax>(string op, Tensor x, Tensor output, Tensor? savedIndices, PoolIndex q) where TMax : struct, IFlag
    {
        var shape = x.ShapeArray();
        Autograd.Record(op, output, new[] { x }, (g, _) =>
        {
            var device = g.Device;
            var dx = Tensor.Empty(device, shape);
            if (dx.Length == 0)
                return new[] { dx };
            using var gc = g.Contiguous();
            PoolingKernels.RunPool2dBackward<TMax>(op + "_backward", device, gc.ContiguousView, (savedIndices ?? gc).ContiguousView, dx.ContiguousView, q, dx.Length);
            return new[] { dx };
        }, savedIndices is null ? Array.Empty<Tensor>() : new[] { savedIndices });
    }

    /// <summary>Runs the pooling kernel; the indices tensor exists for max pooling only.</summary>
    private static (Tensor Output, Tensor? Indices) RunPool<TMax>(string op, Tensor x, PoolIndex q) where TMax : struct, IFlag
    {
        var device = Validate.DeviceOf(op, "x", x);
        var output = Tensor.Empty(device, x.Size(0), x.Size(1), q.OH, q.OW);
        var indices = default(TMax).Value ? Tensor.Empty(device, output.ShapeArray()) : null;
        if (output.Length > 0 && q.H * q.W > 0)
        {
            using var xc = x.Contiguous();
            var (xv, ov, iv, total) = (xc.ContiguousView, output.ContiguousView, (indices ?? output).ContiguousView, output.Length);
            PoolingKernels.RunPool2d<TMax>(op, device, xv, ov, iv, q, total);
        }
        return (output, indices);
    }
}

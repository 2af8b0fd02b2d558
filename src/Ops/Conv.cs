using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// 2-D convolution, NCHW: x [N, C_in, H, W], weight [C_out, C_in/groups, KH, KW], optional bias [C_out].
    /// Kernel <c>conv2d</c> (its column paths also register <c>im2col</c>).
    /// </summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>conv2d</c>.</remarks>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, Conv2dOptions? options = null)
    {
        var r = Conv2dCore(x, weight, bias, options);
        Autograd.RecordNoGradient("conv2d", r, x, weight, bias);
        return r;
    }

    private static Tensor Conv2dCore(Tensor x, Tensor weight, Tensor? bias = null, Conv2dOptions? options = null)
    {
        const string op = "conv2d";
        options ??= new Conv2dOptions();
        var device = Validate.Input(op, "x", x);
        Validate.Input(op, "weight", weight, device);
        var g = Conv2dGeometry.Create(op, x.ShapeArray(), weight.ShapeArray(), options);
        if (bias is not null)
        {
            Validate.Input(op, "bias", bias, device);
            if (bias.Rank != 1 || bias.Length != g.K || !bias.IsContiguous)
                throw new ShapeMismatchException(op, "bias", $"a contiguous vector [{g.K}] (C_out)", bias.Describe());
        }
        var output = Tensor.Empty(device, g.N, g.K, g.OH, g.OW);
        if (output.Length == 0)
            return output;
        using var scope = device.Scope();
        var xc = x.Contiguous();
        var w = options.Mask == ConvMask.None ? weight.Contiguous() : Mul(weight, MaskTensor(device, g.KH, g.KW, options.Mask));
        ConvKernels.RunConv2d(device, xc, w, bias, output, g, options.Algorithm, options.ColumnBudgetBytes, options.Activation);
        return output;
    }

    /// <summary>
    /// Unfold (PyTorch's F.unfold): x [N, C, H, W] → columns [N, C·KH·KW, OH·OW] for a kernel of
    /// [KH, KW] with the stride, padding and dilation of <paramref name="options"/> (groups ignored). Kernel <c>im2col</c>.
    /// </summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>im2col</c>.</remarks>
    public static Tensor Im2Col(Tensor x, int kh, int kw, Conv2dOptions? options = null)
    {
        var r = Im2ColCore(x, kh, kw, options);
        Autograd.RecordNoGradient("im2col", r, x);
        return r;
    }

    private static Tensor Im2ColCore(Tensor x, int kh, int kw, Conv2dOptions? options = null)
    {
        const string op = "im2col";
        options = (options ?? new Conv2dOptions()) with { Groups = 1 };
        Validate.Input(op, "x", x);
        var g = Conv2dGeometry.Create(op, x.ShapeArray(), new[] { 1, x.Rank == 4 ? x.Size(1) : 0, kh, kw }, options);
        var col = Tensor.Empty(x.Device, g.N, g.C * kh * kw, g.OH * g.OW);
        using var xc = x.Contiguous();
        ConvKernels.RunIm2Col(x.Device, xc, col, g);
        return col;
    }

    /// <summary>
    /// Fold (PyTorch's F.fold), the adjoint of <see cref="Im2Col"/>: columns [N, C·KH·KW, L] → image [N, C, outH, outW],
    /// summing overlapping taps; L must equal the number of kernel positions over the padded image. Kernel <c>col2im</c>.
    /// </summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>col2im</c>.</remarks>
    public static Tensor Col2Im(Tensor col, int outH, int outW, int kh, int kw, int stride = 1, int padding = 0, int dilation = 1)
    {
        var r = Col2ImCore(col, outH, outW, kh, kw, stride, padding, dilation);
        Autograd.RecordNoGradient("col2im", r, col);
        return r;
    }

    private static Tensor Col2ImCore(Tensor col, int outH, int outW, int kh, int kw, int stride = 1, int padding = 0, int dilation = 1)
    {
        const string op = "col2im";
        var device = Validate.Input(op, "col", col);
        // The positions are the output of a convolution of the image with this kernel.
        var g = Conv2dGeometry.Create(op, new[] { 1, 1, outH, outW }, new[] { 1, 1, kh, kw }, Conv2dOptions.Of(stride, padding, dilation));
        if (col.Rank != 3 || col.Size(1) % (kh * kw) != 0 || col.Size(2) != g.OH * g.OW)
            throw new ShapeMismatchException(op, "col", $"[N, C·{kh * kw}, {g.OH * g.OW}] ({g.OH}×{g.OW} kernel positions)", GpuNetException.FormatShape(col.ShapeArray()));
        int n = col.Size(0), c = col.Size(1) / (kh * kw);
        var output = Tensor.Empty(device, n, c, outH, outW);
        if (output.Length == 0)
            return output;
        using var cc = col.Contiguous();
        // In the transposed view, the kernel positions are the "input" pixels and the image is the output.
        var index = new ConvIndex
        {
            H = g.OH, W = g.OW, KH = kh, KW = kw, OW = outW, StrideH = stride, StrideW = stride, PadTop = padding, PadLeft = padding,
            DilationH = dilation, DilationW = dilation,
        };
        ConvKernels.RunCol2Im(device, cc, null, output, index, outH, outW, c, 1, FusedActivation.None);
        return output;
    }

    /// <summary>PixelCNN mask [KH, KW]: taps before the centre in raster order are 1; the centre is 1 for type B.</summary>
    private static Tensor MaskTensor(Device device, int kh, int kw, ConvMask type)
    {
        var mask = new float[kh * kw];
        int centre = kh / 2 * kw + kw / 2;
        for (int i = 0; i < mask.Length; i++)
            mask[i] = i < centre || (i == centre && type == ConvMask.B) ? 1f : 0f;
        return Tensor.FromArray(device, mask, kh, kw);
    }

    /// <summary>
    /// 1-D convolution: x [N, C_in, L], weight [C_out, C_in/groups, K]; stride, padding (left, right),
    /// dilation, groups, bias and activation as conv2d. Kernel <c>conv1d</c> (conv2d with height 1).
    /// </summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>conv1d</c>.</remarks>
    public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, (int Left, int Right) padding = default, int dilation = 1,
        int groups = 1, FusedActivation activation = FusedActivation.None, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
    {
        var r = Conv1dCore(x, weight, bias, stride, padding, dilation, groups, activation, algorithm);
        Autograd.RecordNoGradient("conv1d", r, x, weight, bias);
        return r;
    }

    private static Tensor Conv1dCore(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, (int Left, int Right) padding = default, int dilation = 1,
        int groups = 1, FusedActivation activation = FusedActivation.None, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
    {
        Validate.Input("conv1d", "x", x);
        Validate.Input("conv1d", "weight", weight, x.Device);
        if (x.Rank != 3)
            throw new ShapeMismatchException("conv1d", "x", "[N, C, L]", GpuNetException.FormatShape(x.ShapeArray()));
        if (weight.Rank != 3)
            throw new ShapeMismatchException("conv1d", "weight", "[C_out, C_in/groups, K]", GpuNetException.FormatShape(weight.ShapeArray()));
        using var scope = x.Device.Scope();
        var x4 = x.Contiguous().Reshape(x.Size(0), x.Size(1), 1, x.Size(2));
        var w4 = weight.Contiguous().Reshape(weight.Size(0), weight.Size(1), 1, weight.Size(2));
        var options = new Conv2dOptions
        {
            Stride = (1, stride), Padding = (0, 0, padding.Left, padding.Right), Dilation = (1, dilation), Groups = groups,
            Activation = activation, Algorithm = algorithm,
        };
        var y = Conv2d(x4, w4, bias, options);
        return scope.Keep(y.Reshape(y.Size(0), y.Size(1), y.Size(3)));
    }

    /// <summary>
    /// Transposed 2-D convolution (PyTorch's nn.ConvTranspose2d): x [N, C_in, H, W], weight [C_in, C_out/groups, KH, KW];
    /// output size (H − 1)·stride − 2·padding + dilation·(KH − 1) + output_padding + 1. Kernels <c>conv_transpose2d</c> and <c>col2im</c>.
    /// </summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>conv_transpose2d</c>.</remarks>
    public static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0,
        int dilation = 1, int groups = 1, FusedActivation activation = FusedActivation.None)
    {
        var r = ConvTranspose2dCore(x, weight, bias, stride, padding, outputPadding, dilation, groups, activation);
        Autograd.RecordNoGradient("conv_transpose2d", r, x, weight, bias);
        return r;
    }

    private static Tensor ConvTranspose2dCore(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0,
        int dilation = 1, int groups = 1, FusedActivation activation = FusedActivation.None)
    {
        const string op = "conv_transpose2d";
        var device = Validate.Input(op, "x", x);
        Validate.Input(op, "weight", weight, device);
        if (x.Rank != 4)
            throw new ShapeMismatchException(op, "x", "[N, C_in, H, W]", GpuNetException.FormatShape(x.ShapeArray()));
        if (weight.Rank != 4)
            throw new ShapeMismatchException(op, "weight", "[C_in, C_out/groups, KH, KW]", GpuNetException.FormatShape(weight.ShapeArray()));
        if (groups < 1 || x.Size(1) % groups != 0)
            throw new ShapeMismatchException(op, "groups", $"a divisor of C_in = {x.Size(1)}", groups.ToString());
        if (weight.Size(0) != x.Size(1))
            throw new ShapeMismatchException(op, "weight", $"[{x.Size(1)}, C_out/groups, KH, KW] (C_in first)", GpuNetException.FormatShape(weight.ShapeArray()));
        if (stride < 1 || dilation < 1 || padding < 0)
            throw new ShapeMismatchException(op, stride < 1 ? "stride" : dilation < 1 ? "dilation" : "padding", "stride ≥ 1, dilation ≥ 1, padding ≥ 0", $"stride {stride}, dilation {dilation}, padding {padding}");
        if (outputPadding < 0 || outputPadding >= Math.Max(stride, dilation))
            throw new ShapeMismatchException(op, "output_padding", $"0 ≤ output_padding < max(stride, dilation) = {Math.Max(stride, dilation)}", outputPadding.ToString());
        int n = x.Size(0), cin = x.Size(1), h = x.Size(2), w = x.Size(3);
        int coutG = weight.Size(1), kh = weight.Size(2), kw = weight.Size(3), cout = coutG * groups, cinG = cin / groups;
        int oh = (h - 1) * stride - 2 * padding + dilation * (kh - 1) + outputPadding + 1;
        int ow = (w - 1) * stride - 2 * padding + dilation * (kw - 1) + outputPadding + 1;
        if (oh < 1 || ow < 1)
            throw new ShapeMismatchException(op, "padding", "an output size ≥ 1", $"{oh}×{ow} from padding {padding}");
        if (bias is not null)
        {
            Validate.Input(op, "bias", bias, device);
            if (bias.Rank != 1 || bias.Length != cout || !bias.IsContiguous)
                throw new ShapeMismatchException(op, "bias", $"a contiguous vector [{cout}] (C_out)", bias.Describe());
        }
        var output = Tensor.Empty(device, n, cout, oh, ow);
        if (output.Length == 0)
            return output;
        using var scope = device.Scope();
        // col[n, g] = W_gᵀ · x[n, g]: [C_out/g·KH·KW, H·W] on the batched matmul, W broadcast over n.
        var wg = weight.Contiguous().Reshape(1, groups, cinG, coutG * kh * kw);
        var xg = x.Contiguous().Reshape(n, groups, cinG, h * w);
        var col = MatMul(wg, xg, transposeA: true);
        var index = new ConvIndex
        {
            H = h, W = w, KH = kh, KW = kw, OW = ow, StrideH = stride, StrideW = stride, PadTop = padding, PadLeft = padding,
            DilationH = dilation, DilationW = dilation,
        };
        ConvKernels.RunCol2Im(device, col, bias, output, index, oh, ow, cout, groups, activation);
        return output;
    }
}

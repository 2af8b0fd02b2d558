using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// 2-D convolution, NCHW: x [N, C_in, H, W], weight [C_out, C_in/groups, KH, KW], optional bias [C_out].
    /// Kernel <c>conv2d</c> (its column paths also register <c>im2col</c>).
    /// </summary>
    /// <remarks>
    /// Backward (<c>conv2d_backward</c>), in every form the forward takes: dX = col2im(W_gᵀ·dY) — a batched GEMM, then each input
    /// pixel gathers its taps; dW = Σ_n dY_ng·col_ngᵀ — a GEMM over the im2col columns; dbias = Σ dY over batch and pixels. No
    /// atomics, so every run sums in the same order. A masked weight's gradient is masked; a fused activation records as its
    /// own op while training (the pre-activation is what its derivative needs).
    /// </remarks>
    /// <param name="x">Input [N, C_in, H, W].</param>
    /// <param name="weight">Weights [C_out, C_in/groups, KH, KW].</param>
    /// <param name="bias">Optional bias [C_out].</param>
    /// <param name="options">Stride, padding, dilation, groups, fused activation.</param>
    /// <param name="residual">Optional tensor shaped like the output [N, C_out, OH, OW], added before the activation:
    /// act(conv(x) + bias + residual), as a residual block ends (one pass over the output on the fast CPU, in its stores).</param>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, Conv2dOptions? options = null, Tensor? residual = null)
    {
        options ??= new Conv2dOptions();
        if (residual is not null && Autograd.ShouldRecord(x, weight, bias, residual))
        {
            using var z = Conv2d(x, weight, bias, options with { Activation = FusedActivation.None });
            if (options.Activation == FusedActivation.None)
                return Add(z, residual);
            using var sum = Add(z, residual);
            return ApplyFused(sum, options.Activation, null);
        }
        if (options.Activation != FusedActivation.None && Autograd.ShouldRecord(x, weight, bias))
        {
            using var z = Conv2d(x, weight, bias, options with { Activation = FusedActivation.None });
            return ApplyFused(z, options.Activation, null);
        }
        return Conv2dCore(x, weight, null, bias, options, residual);
    }

    /// <summary>
    /// <see cref="Conv2d(Tensor, Tensor, Tensor?, Conv2dOptions?, Tensor?)"/> with weights packed once by
    /// <see cref="PackConv2dWeight"/>, for running the same convolution many times (inference): the fast CPU then skips
    /// repacking the weights on every call. While autograd records, it runs as the unpacked form (gradients reach
    /// <see cref="PackedConv2dWeight.Weight"/>).
    /// </summary>
    public static Tensor Conv2d(Tensor x, PackedConv2dWeight weight, Tensor? bias = null, Conv2dOptions? options = null, Tensor? residual = null)
    {
        const string op = "conv2d";
        Validate.NotNull(op, "weight", weight).EnsureAlive(op);
        options ??= new Conv2dOptions();
        if (options.Groups != weight.Groups)
            throw new InvalidArgumentException(op, "options.Groups", $"the groups the weight was packed for ({weight.Groups})", options.Groups.ToString());
        if (Autograd.ShouldRecord(x, weight.Weight, bias, residual) || options.Mask != ConvMask.None)
            return Conv2d(x, weight.Weight, bias, options, residual);
        return Conv2dCore(x, weight.Weight, weight.Packed, bias, options, residual);
    }

    /// <summary>
    /// A 1×1 convolution and the depthwise convolution that alone reads its output, as MobileNet's and EfficientNet's
    /// inverted residual blocks begin: depthwise(act₁(conv1x1(x) + b₁)) with <paramref name="depthwiseOptions"/>. On the fast
    /// CPU (AVX-512), with activations it applies in registers (none, ReLU, ReLU6, SiLU), each core expands the channels it
    /// then convolves: for depthwise maps of up to 64 output pixels blocks of 16 channels straight into the depthwise
    /// convolution's channels-last input, and for 3×3 kernels at stride 1 or 2 with one column of left padding four planes
    /// at a time into a scratch the convolution reads while they are in L1 — the expanded tensor is never written;
    /// elsewhere, or while autograd records, the two convolutions run one after the other. Kernel <c>conv2d</c>.
    /// </summary>
    /// <param name="x">Input [N, C_in, H, W].</param>
    /// <param name="expand">Packed 1×1 weights [E, C_in, 1, 1] (one group).</param>
    /// <param name="expandBias">Optional bias [E].</param>
    /// <param name="expandActivation">The expansion's activation.</param>
    /// <param name="depthwise">Packed depthwise weights [E, 1, KH, KW] (E groups).</param>
    /// <param name="depthwiseBias">Optional bias [E].</param>
    /// <param name="depthwiseOptions">The depthwise convolution's stride, padding, dilation, groups (E) and activation.</param>
    /// <returns>[N, E, OH, OW].</returns>
    public static Tensor Conv2dExpandDepthwise(Tensor x, PackedConv2dWeight expand, Tensor? expandBias, FusedActivation expandActivation,
        PackedConv2dWeight depthwise, Tensor? depthwiseBias, Conv2dOptions depthwiseOptions)
    {
        var (device, g) = ExpandDepthwiseGeometry(x, expand, expandBias, depthwise, depthwiseBias, depthwiseOptions);
        var ew = expand.Weight;
        bool fused = expand.Packed is not null && depthwise.Packed is not null && x.IsContiguous && ew.IsContiguous && depthwise.Weight.IsContiguous
            && depthwiseOptions.Mask == ConvMask.None && ConvKernels.FusesExpandDepthwise(device, g, expandActivation, depthwiseOptions.Activation)
            && !Autograd.ShouldRecord(x, ew, depthwise.Weight, expandBias, depthwiseBias);
        if (fused)
        {
            var output = Tensor.Empty(device, g.N, g.K, g.OH, g.OW);
            if (output.Length > 0)
                ConvKernels.RunExpandDepthwise(device, x, ew, expand.Packed!, expandBias, expandActivation, depthwise.Weight, depthwise.Packed!,
                    depthwiseBias, output, g, depthwiseOptions.Activation);
            return output;
        }
        using var expanded = Conv2d(x, expand, expandBias, new Conv2dOptions { Activation = expandActivation });
        return Conv2d(expanded, depthwise, depthwiseBias, depthwiseOptions);
    }

    /// <summary>
    /// An inverted residual block whole, as MobileNetV2 has them: projection(depthwise(act₁(conv1x1(x) + b₁))) + b₃ + residual,
    /// then <paramref name="projectActivation"/>, with the projection a 1×1 convolution of one group. On the fast CPU (AVX-512),
    /// where <see cref="Conv2dExpandDepthwise"/> runs the depthwise convolution channels-last (≤ 64 output pixels) and the
    /// activations apply in registers, one pass: each core expands and convolves its share of the channels and sums their
    /// part of every projected output as it goes, so neither the expanded nor the depthwise tensor is written; elsewhere,
    /// or while autograd records, <see cref="Conv2dExpandDepthwise"/> then the projection. Kernel <c>conv2d</c>.
    /// </summary>
    /// <param name="x">Input [N, C_in, H, W].</param>
    /// <param name="expand">Packed 1×1 weights [E, C_in, 1, 1] (one group).</param>
    /// <param name="expandBias">Optional bias [E].</param>
    /// <param name="expandActivation">The expansion's activation.</param>
    /// <param name="depthwise">Packed depthwise weights [E, 1, KH, KW] (E groups).</param>
    /// <param name="depthwiseBias">Optional bias [E].</param>
    /// <param name="depthwiseOptions">The depthwise convolution's stride, padding, dilation, groups (E) and activation.</param>
    /// <param name="project">Packed 1×1 weights [C_out, E, 1, 1] (one group).</param>
    /// <param name="projectBias">Optional bias [C_out].</param>
    /// <param name="projectActivation">The activation applied last, after the residual.</param>
    /// <param name="residual">Optional tensor shaped like the output [N, C_out, OH, OW] (the block's input where the shapes
    /// match), added before <paramref name="projectActivation"/>.</param>
    /// <returns>[N, C_out, OH, OW].</returns>
    public static Tensor Conv2dExpandDepthwiseProject(Tensor x, PackedConv2dWeight expand, Tensor? expandBias, FusedActivation expandActivation,
        PackedConv2dWeight depthwise, Tensor? depthwiseBias, Conv2dOptions depthwiseOptions,
        PackedConv2dWeight project, Tensor? projectBias = null, FusedActivation projectActivation = FusedActivation.None, Tensor? residual = null)
    {
        const string op = "conv2d";
        var (device, g) = ExpandDepthwiseGeometry(x, expand, expandBias, depthwise, depthwiseBias, depthwiseOptions);
        Validate.NotNull(op, "project", project).EnsureAlive(op);
        var pw = project.Weight;
        Validate.Input(op, "project", pw, device);
        if (project.Groups != 1 || pw.Rank != 4 || pw.Size(1) != g.K || pw.Size(2) != 1 || pw.Size(3) != 1)
            throw new ShapeMismatchException(op, "project", $"1×1 weights [C_out, {g.K}, 1, 1] packed for one group", $"{pw.Describe()} packed for {project.Groups} groups");
        int k = pw.Size(0);
        var shape = new[] { g.N, k, g.OH, g.OW };
        if (projectBias is not null)
        {
            Validate.Input(op, "projectBias", projectBias, device);
            if (projectBias.Rank != 1 || projectBias.Length != k || !projectBias.IsContiguous)
                throw new ShapeMismatchException(op, "projectBias", $"a contiguous vector [{k}] (C_out)", projectBias.Describe());
        }
        if (residual is not null)
        {
            Validate.Input(op, "residual", residual, device);
            if (!residual.Shape.SequenceEqual(shape))
                throw new ShapeMismatchException(op, "residual", $"the output's shape {GpuNetException.FormatShape(shape)}", residual.Describe());
        }
        var ew = expand.Weight;
        bool fused = expand.Packed is not null && depthwise.Packed is not null && project.Packed is not null && x.IsContiguous && ew.IsContiguous
            && depthwise.Weight.IsContiguous && pw.IsContiguous && (residual is null || residual.IsContiguous) && depthwiseOptions.Mask == ConvMask.None
            && ConvKernels.FusesExpandDepthwiseProject(device, g, expandActivation, depthwiseOptions.Activation, projectActivation)
            && !Autograd.ShouldRecord(x, ew, depthwise.Weight, pw, expandBias, depthwiseBias, projectBias, residual);
        if (fused)
        {
            var output = Tensor.Empty(device, shape);
            if (output.Length > 0)
                ConvKernels.RunExpandDepthwiseProject(device, x, expand.Packed!, expandBias, expandActivation, depthwise.Packed!, depthwiseBias, g,
                    depthwiseOptions.Activation, project.Packed!, projectBias, k, projectActivation, residual, output);
            return output;
        }
        using var hidden = Conv2dExpandDepthwise(x, expand, expandBias, expandActivation, depthwise, depthwiseBias, depthwiseOptions);
        return Conv2d(hidden, project, projectBias, new Conv2dOptions { Activation = projectActivation }, residual);
    }

    /// <summary>
    /// Squeeze-and-excitation as torchvision's <c>SqueezeExcitation</c> computes it (EfficientNet's and MobileNetV3's blocks):
    /// x · σ(conv1x1₂(act(conv1x1₁(mean_hw(x)) + b₁)) + b₂), one gate per image and channel. On the fast CPU (AVX-512), with
    /// an activation it applies in registers (none, ReLU, ReLU6, SiLU), one call: the means and the first product on the
    /// calling thread, then the second product, its sigmoid and the scaling per 64 channels across the cores, from the
    /// weights as <see cref="PackConv2dWeight"/> packs them; elsewhere, or while autograd records, the pooling, the two
    /// 1×1 convolutions, the sigmoid and the product one after the other. Kernel <c>squeeze_excite</c>.
    /// </summary>
    /// <param name="x">Input [N, C, H, W].</param>
    /// <param name="reduce">Packed 1×1 weights [R, C, 1, 1] (one group).</param>
    /// <param name="reduceBias">Optional bias [R].</param>
    /// <param name="activation">The activation after the first convolution.</param>
    /// <param name="expand">Packed 1×1 weights [C, R, 1, 1] (one group).</param>
    /// <param name="expandBias">Optional bias [C].</param>
    /// <returns>[N, C, H, W].</returns>
    public static Tensor SqueezeExcite(Tensor x, PackedConv2dWeight reduce, Tensor? reduceBias, FusedActivation activation, PackedConv2dWeight expand, Tensor? expandBias)
    {
        const string op = "squeeze_excite";
        Validate.NotNull(op, "reduce", reduce).EnsureAlive(op);
        Validate.NotNull(op, "expand", expand).EnsureAlive(op);
        var device = Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 4);
        int c = x.Size(1);
        var (rw, ew) = (reduce.Weight, expand.Weight);
        Validate.Input(op, "reduce", rw, device);
        Validate.Input(op, "expand", ew, device);
        if (reduce.Groups != 1 || rw.Rank != 4 || rw.Size(1) != c || rw.Size(2) != 1 || rw.Size(3) != 1)
            throw new ShapeMismatchException(op, "reduce", $"1×1 weights [R, {c}, 1, 1] packed for one group", $"{rw.Describe()} packed for {reduce.Groups} groups");
        int r = rw.Size(0);
        if (expand.Groups != 1 || ew.Rank != 4 || ew.Size(0) != c || ew.Size(1) != r || ew.Size(2) != 1 || ew.Size(3) != 1)
            throw new ShapeMismatchException(op, "expand", $"1×1 weights [{c}, {r}, 1, 1] packed for one group", $"{ew.Describe()} packed for {expand.Groups} groups");
        foreach (var (name, b, length) in new[] { ("reduceBias", reduceBias, r), ("expandBias", expandBias, c) })
            if (b is not null)
            {
                Validate.Input(op, name, b, device);
                if (b.Rank != 1 || b.Length != length || !b.IsContiguous)
                    throw new ShapeMismatchException(op, name, $"a contiguous vector [{length}]", b.Describe());
            }
        bool fused = reduce.Packed is not null && expand.Packed is not null && x.IsContiguous && ConvKernels.FusesSqueezeExcite(device, activation)
            && !Autograd.ShouldRecord(x, rw, ew, reduceBias, expandBias);
        if (fused)
        {
            var output = Tensor.Empty(device, x.ShapeArray());
            if (output.Length > 0)
                ConvKernels.RunSqueezeExcite(device, x, reduce.Packed!, reduceBias, r, activation, expand.Packed!, expandBias, output);
            return output;
        }
        using var pooled = GlobalAvgPool(x);
        using var hidden = Conv2d(pooled, reduce, reduceBias, new Conv2dOptions { Activation = activation });
        using var logits = Conv2d(hidden, expand, expandBias);
        using var gate = Sigmoid(logits);
        return Mul(x, gate);
    }

    /// <summary>The checks <see cref="Conv2dExpandDepthwise"/> and <see cref="Conv2dExpandDepthwiseProject"/> share: a 1×1
    /// expansion of one group, a depthwise convolution over its channels, biases [E]; the device and the depthwise
    /// convolution's geometry.</summary>
    private static (Device Device, Conv2dGeometry G) ExpandDepthwiseGeometry(Tensor x, PackedConv2dWeight expand, Tensor? expandBias,
        PackedConv2dWeight depthwise, Tensor? depthwiseBias, Conv2dOptions depthwiseOptions)
    {
        const string op = "conv2d";
        Validate.NotNull(op, "expand", expand).EnsureAlive(op);
        Validate.NotNull(op, "depthwise", depthwise).EnsureAlive(op);
        Validate.NotNull(op, "depthwiseOptions", depthwiseOptions);
        var device = Validate.Input(op, "x", x);
        var ew = expand.Weight;
        Validate.Input(op, "expand", ew, device);
        Validate.Input(op, "depthwise", depthwise.Weight, device);
        if (expand.Groups != 1 || ew.Rank != 4 || ew.Size(2) != 1 || ew.Size(3) != 1)
            throw new ShapeMismatchException(op, "expand", "1×1 weights [E, C_in, 1, 1] packed for one group", $"{ew.Describe()} packed for {expand.Groups} groups");
        var g1 = Conv2dGeometry.Create(op, x.ShapeArray(), ew.ShapeArray(), new Conv2dOptions());
        if (depthwiseOptions.Groups != g1.K || depthwise.Groups != g1.K)
            throw new InvalidArgumentException(op, "depthwiseOptions.Groups", $"the expansion's output channels ({g1.K}), with weights packed so",
                $"{depthwiseOptions.Groups} (weights packed for {depthwise.Groups})");
        var g = Conv2dGeometry.Create(op, new[] { g1.N, g1.K, g1.OH, g1.OW }, depthwise.Weight.ShapeArray(), depthwiseOptions);
        foreach (var (name, b) in new[] { ("expandBias", expandBias), ("depthwiseBias", depthwiseBias) })
            if (b is not null)
            {
                Validate.Input(op, name, b, device);
                if (b.Rank != 1 || b.Length != g1.K || !b.IsContiguous)
                    throw new ShapeMismatchException(op, name, $"a contiguous vector [{g1.K}]", b.Describe());
            }
        return (device, g);
    }

    /// <summary>
    /// Packs conv2d weights [C_out, C_in/groups, KH, KW] once for <see cref="Conv2d(Tensor, PackedConv2dWeight, Tensor?, Conv2dOptions?, Tensor?)"/>:
    /// on the fast CPU (with AVX-512) transposed per group to [taps, C_out/groups] rounded up to whole vectors, the layout its
    /// direct convolution reads (a depthwise weight [C, 1, KH, KW]: sixteen channels interleaved per tap, as its channels-last
    /// form reads them), and 3×3 weights of one group with at most 128 × 128 channels also as their Winograd transform (16
    /// floats a kernel), which stride-1 convolutions from 16 input channels read instead; on other devices nothing is
    /// copied. The result refers to <paramref name="weight"/> (keep
    /// it alive; writing to it afterwards is not seen by the packed copy) and owns the packed copy: dispose it.
    /// </summary>
    public static PackedConv2dWeight PackConv2dWeight(Tensor weight, int groups = 1)
    {
        const string op = "conv2d_pack";
        var device = Validate.Input(op, "weight", weight);
        Validate.Rank(op, "weight", weight, 4);
        if (groups < 1 || weight.Size(0) % groups != 0)
            throw new InvalidArgumentException(op, "groups", $"a divisor of C_out ({weight.Size(0)})", groups.ToString());
        if (!ConvKernels.PacksConv2dWeights(device))
            return new PackedConv2dWeight(weight, groups, null);
        int kg = weight.Size(0) / groups;
        // Owned by the result, which the caller disposes: not a temporary of any enclosing scope.
        var packed = TensorScope.Escape(Tensor.Empty(device, checked((int)ConvKernels.PackedConv2dLength(groups, kg, weight.Size(1), weight.Size(2), weight.Size(3)))));
        using (var wc = weight.Contiguous())
            ConvKernels.PackConv2dWeight(device, wc, packed, groups, kg);
        return new PackedConv2dWeight(weight, groups, packed);
    }

    private static Tensor Conv2dCore(Tensor x, Tensor weight, Tensor? packed, Tensor? bias, Conv2dOptions options, Tensor? residual)
    {
        const string op = "conv2d";
        var device = Validate.Input(op, "x", x);
        Validate.Input(op, "weight", weight, device);
        var g = Conv2dGeometry.Create(op, x.ShapeArray(), weight.ShapeArray(), options);
        if (bias is not null)
        {
            Validate.Input(op, "bias", bias, device);
            if (bias.Rank != 1 || bias.Length != g.K || !bias.IsContiguous)
                throw new ShapeMismatchException(op, "bias", $"a contiguous vector [{g.K}] (C_out)", bias.Describe());
        }
        if (residual is not null)
        {
            Validate.Input(op, "residual", residual, device);
            if (!residual.Shape.SequenceEqual(new[] { g.N, g.K, g.OH, g.OW }))
                throw new ShapeMismatchException(op, "residual", $"the output's shape {GpuNetException.FormatShape(new[] { g.N, g.K, g.OH, g.OW })}", residual.Describe());
        }
        var output = Tensor.Empty(device, g.N, g.K, g.OH, g.OW);
        bool record = Autograd.ShouldRecord(x, weight, bias);
        if (!record && options.Mask == ConvMask.None && x.IsContiguous && weight.IsContiguous && (residual is null || residual.IsContiguous))
        {
            // Inference on contiguous tensors (every node of an imported CNN): no scope and no contiguous views to make —
            // they were a few hundred ns of each small convolution.
            if (output.Length > 0)
                ConvKernels.RunConv2d(device, x, weight, bias, output, g, options.Algorithm, options.ColumnBudgetBytes, options.Activation, packed, residual);
            return output;
        }
        using var _ = Autograd.NoGrad();
        using var scope = device.Scope();
        var xc = x.Contiguous();
        var mask = options.Mask == ConvMask.None ? null : MaskTensor(device, g.KH, g.KW, options.Mask);
        var w = mask is null ? weight.Contiguous() : Mul(weight, mask);
        if (output.Length > 0)
            ConvKernels.RunConv2d(device, xc, w, bias, output, g, options.Algorithm, options.ColumnBudgetBytes, options.Activation,
                mask is null ? packed : null, residual?.Contiguous());
        if (record)
            RecordConv2d(x, weight, bias, output, g, xc, w, mask);
        return output;
    }

    /// <summary>Records conv2d's backward (see <see cref="Conv2d(Tensor, Tensor, Tensor?, Conv2dOptions?, Tensor?)"/>): saves the contiguous input for dW, the (masked) weight
    /// for dX and the mask for the masked weight's gradient, each only when a gradient needs it.</summary>
    private static void RecordConv2d(Tensor x, Tensor weight, Tensor? bias, Tensor output, Conv2dGeometry g, Tensor xc, Tensor w, Tensor? mask)
    {
        var savedX = weight.RequiresGrad ? Autograd.Save(xc) : null;
        var savedW = x.RequiresGrad ? Autograd.Save(w) : null;
        var savedMask = mask is not null && weight.RequiresGrad ? Autograd.Save(mask) : null;
        Autograd.Record("conv2d", output, new[] { x, weight, bias }, (dy, needs) =>
        {
            using var gc = dy.Contiguous();
            return new[]
            {
                needs[0] ? Conv2dInputGradient(gc, savedW!, g) : null,
                needs[1] ? Conv2dWeightGradient(gc, savedX!, g, savedMask) : null,
                needs[2] ? ChannelGradient(gc, g.K) : null,
            };
        }, new[] { savedX, savedW, savedMask }.OfType<Tensor>().ToArray());
    }

    /// <summary>dX [N, C, H, W] = col2im(W_gᵀ·dY_g): per (sample, group) the GEMM [Cg·KH·KW, Kg]·[Kg, OH·OW] (W broadcast over the
    /// batch), then each input pixel gathers the column entries of the taps that read it.</summary>
    private static Tensor Conv2dInputGradient(Tensor dy, Tensor w, Conv2dGeometry g)
    {
        if (dy.Length == 0)
            return Tensor.Zeros(dy.Device, g.N, g.C, g.H, g.W);
        var dx = Tensor.Empty(dy.Device, g.N, g.C, g.H, g.W);
        int groups = g.Options.Groups, cgkk = g.Cg * g.KH * g.KW, pixels = g.OH * g.OW;
        using var wv = w.Reshape(1, groups, g.Kg, cgkk);
        using var gv = dy.Reshape(g.N, groups, g.Kg, pixels);
        using var dcol = MatMul(wv, gv, transposeA: true);
        // The fold sees the conv's output positions as its input grid and the image as its output.
        var index = g.Index with { H = g.OH, W = g.OW, OW = g.W };
        ConvKernels.RunCol2Im(dy.Device, dcol, null, dx, index, g.H, g.W, g.C, groups, FusedActivation.None);
        return dx;
    }

    /// <summary>dW [K, Cg, KH, KW] = Σ_n dY_ng·col_ngᵀ: the batched GEMM [Kg, OH·OW]·[OH·OW, Cg·KH·KW] over the im2col columns of
    /// x, summed over the batch; masked like the forward's weight.</summary>
    private static Tensor Conv2dWeightGradient(Tensor dy, Tensor xc, Conv2dGeometry g, Tensor? mask)
    {
        int groups = g.Options.Groups, cgkk = g.Cg * g.KH * g.KW, pixels = g.OH * g.OW;
        if (dy.Length == 0 || xc.Length == 0)
            return Tensor.Zeros(dy.Device, g.K, g.Cg, g.KH, g.KW);
        using var col = Tensor.Empty(dy.Device, g.N, g.C * g.KH * g.KW, pixels);
        ConvKernels.RunIm2Col(dy.Device, xc, col, g);
        using var colv = col.Reshape(g.N, groups, cgkk, pixels);
        using var gv = dy.Reshape(g.N, groups, g.Kg, pixels);
        using var perSample = MatMul(gv, colv, transposeB: true);
        using var summed = g.N == 1 ? perSample.Reshape(groups, g.Kg, cgkk) : Sum(perSample, 0);
        var dw = summed.Reshape(g.K, g.Cg, g.KH, g.KW);
        if (mask is null)
            return dw;
        using (dw)
            return Mul(dw, mask);
    }

    /// <summary>The gradient of a per-channel bias of an [N, K, ...] output: dY summed over every axis but the channel.</summary>
    private static Tensor ChannelGradient(Tensor dy, int channels)
    {
        var shape = Enumerable.Repeat(1, dy.Rank).ToArray();
        shape[1] = channels;
        using var summed = SumToShape(dy, shape);
        return summed.Reshape(channels);
    }

    /// <summary>
    /// Unfold (PyTorch's F.unfold): x [N, C, H, W] → columns [N, C·KH·KW, OH·OW] for a kernel of
    /// [KH, KW] with the stride, padding and dilation of <paramref name="options"/> (groups ignored). Kernel <c>im2col</c>.
    /// </summary>
    /// <remarks>Backward: the fold of the gradient (kernel <c>col2im</c>), the unfold's adjoint.</remarks>
    public static Tensor Im2Col(Tensor x, int kh, int kw, Conv2dOptions? options = null)
    {
        const string op = "im2col";
        options = (options ?? new Conv2dOptions()) with { Groups = 1 };
        Validate.Input(op, "x", x);
        var g = Conv2dGeometry.Create(op, x.ShapeArray(), new[] { 1, x.Rank == 4 ? x.Size(1) : 0, kh, kw }, options);
        return Unfold(x, g);
    }

    /// <summary>
    /// Fold (PyTorch's F.fold), the adjoint of <see cref="Im2Col"/>: columns [N, C·KH·KW, L] → image [N, C, outH, outW],
    /// summing overlapping taps; L must equal the number of kernel positions over the padded image. Kernel <c>col2im</c>.
    /// </summary>
    /// <remarks>Backward: the unfold of the gradient (kernel <c>im2col</c>).</remarks>
    public static Tensor Col2Im(Tensor col, int outH, int outW, int kh, int kw, int stride = 1, int padding = 0, int dilation = 1)
    {
        const string op = "col2im";
        Validate.Input(op, "col", col);
        // The positions are the output of a convolution of the image with this kernel.
        var pg = Conv2dGeometry.Create(op, new[] { 1, 1, outH, outW }, new[] { 1, 1, kh, kw }, Conv2dOptions.Of(stride, padding, dilation));
        if (col.Rank != 3 || col.Size(1) % (kh * kw) != 0 || col.Size(2) != pg.OH * pg.OW)
            throw new ShapeMismatchException(op, "col", $"[N, C·{kh * kw}, {pg.OH * pg.OW}] ({pg.OH}×{pg.OW} kernel positions)", GpuNetException.FormatShape(col.ShapeArray()));
        return Fold(col, pg with { N = col.Size(0), C = col.Size(1) / (kh * kw) }, 1);
    }

    /// <summary>
    /// The unfold of contiguous-or-not x [N, C, H, W] into columns [N, C·KH·KW, OH·OW] for geometry <paramref name="g"/> (its
    /// K and groups unused), recording as its backward the fold of the gradient.
    /// </summary>
    private static Tensor Unfold(Tensor x, Conv2dGeometry g)
    {
        var col = Tensor.Empty(x.Device, g.N, g.C * g.KH * g.KW, g.OH * g.OW);
        using (var xc = NoGradContiguous(x))
            ConvKernels.RunIm2Col(x.Device, xc, col, g);
        if (Autograd.ShouldRecord(x))
            Autograd.Record("im2col", col, new[] { x }, (dy, _) =>
            {
                using var gc = dy.Contiguous();
                return new[] { FoldInto(gc, g, 1) };
            });
        return col;
    }

    /// <summary>
    /// The fold of columns [N, groups, (C/groups)·KH·KW, OH·OW] (any shape with that element order) into the image
    /// [N, C, H, W] of geometry <paramref name="g"/>, whose output positions OH×OW index the columns; records as its backward the
    /// unfold of the gradient.
    /// </summary>
    private static Tensor Fold(Tensor col, Conv2dGeometry g, int groups)
    {
        Tensor image;
        using (var cc = NoGradContiguous(col))
            image = FoldInto(cc, g, groups);
        if (Autograd.ShouldRecord(col))
        {
            var colShape = col.ShapeArray();
            Autograd.Record("col2im", image, new[] { col }, (dy, _) =>
            {
                using var gc = dy.Contiguous();
                var dcol = Tensor.Empty(dy.Device, g.N, g.C * g.KH * g.KW, g.OH * g.OW);
                ConvKernels.RunIm2Col(dy.Device, gc, dcol, g);
                using (dcol)
                    return new[] { dcol.Reshape(colShape) };
            });
        }
        return image;
    }

    /// <summary>The fold itself (see <see cref="Fold"/>): each image pixel gathers the column entries of the taps that land on it.</summary>
    private static Tensor FoldInto(Tensor col, Conv2dGeometry g, int groups)
    {
        var image = Tensor.Empty(col.Device, g.N, g.C, g.H, g.W);
        if (image.Length == 0)
            return image;
        // In the transposed view the kernel positions are the "input" pixels and the image is the output.
        var index = g.Index with { H = g.OH, W = g.OW, OW = g.W };
        ConvKernels.RunCol2Im(col.Device, col, null, image, index, g.H, g.W, g.C, groups, FusedActivation.None);
        return image;
    }

    /// <summary>A contiguous tensor with t's elements, not recorded (the caller records the op it is part of).</summary>
    private static Tensor NoGradContiguous(Tensor t)
    {
        using var _ = Autograd.NoGrad();
        return t.Contiguous();
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
    /// <remarks>Backward through conv2d's (the views to and from height 1 record their own).</remarks>
    public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, (int Left, int Right) padding = default, int dilation = 1,
        int groups = 1, FusedActivation activation = FusedActivation.None, ConvAlgorithm algorithm = ConvAlgorithm.Auto) =>
        Conv1dCore(x, weight, bias, stride, padding, dilation, groups, activation, algorithm);

    private static Tensor Conv1dCore(Tensor x, Tensor weight, Tensor? bias, int stride, (int Left, int Right) padding, int dilation,
        int groups, FusedActivation activation, ConvAlgorithm algorithm)
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
    /// <remarks>
    /// Backward (<c>conv_transpose2d_backward</c>): while training the op records as its parts — col = W_gᵀ·x on the batched
    /// matmul, the fold of col (whose backward is the unfold of the gradient), the bias add and the activation — so dX is a
    /// conv2d of the gradient (unfold, then the matmul's dB) and dW a GEMM (the matmul's dA).
    /// </remarks>
    public static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0,
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
        // The image [N, C_out, OH, OW] with its kernel positions H×W: the geometry of the conv2d this op is the adjoint of.
        var image = new Conv2dGeometry(n, cout, oh, ow, cin, kh, kw, h, w,
            Conv2dOptions.Of(stride, padding, dilation) with { Groups = groups });
        using var scope = device.Scope();
        // col[n, g] = W_gᵀ · x[n, g]: [C_out/g·KH·KW, H·W] on the batched matmul, W broadcast over n.
        var wg = weight.Contiguous().Reshape(1, groups, cinG, coutG * kh * kw);
        var xg = x.Contiguous().Reshape(n, groups, cinG, h * w);
        var col = MatMul(wg, xg, transposeA: true);
        if (Autograd.ShouldRecord(x, weight, bias))
        {
            var y = Fold(col, image, groups);
            if (bias is not null)
                y = Add(y, bias.Reshape(1, cout, 1, 1));
            return scope.Keep(activation == FusedActivation.None ? y : ApplyFused(y, activation, null));
        }
        var output = Tensor.Empty(device, n, cout, oh, ow);
        if (output.Length > 0)
        {
            var index = image.Index with { H = h, W = w, OW = ow };
            ConvKernels.RunCol2Im(device, col, bias, output, index, oh, ow, cout, groups, activation);
        }
        return scope.Keep(output);
    }
}

/// <summary>
/// Conv2d weights packed once by <see cref="Ops.PackConv2dWeight"/> for repeated convolutions with
/// <see cref="Ops.Conv2d(Tensor, PackedConv2dWeight, Tensor?, Conv2dOptions?, Tensor?)"/>. It owns the packed copy (dispose
/// it) and refers to the weights it was packed from.
/// </summary>
public sealed class PackedConv2dWeight : IDisposable
{
    private bool _disposed;

    internal PackedConv2dWeight(Tensor weight, int groups, Tensor? packed)
    {
        Weight = weight;
        Groups = groups;
        Packed = packed;
    }

    /// <summary>The weights [C_out, C_in/groups, KH, KW] this was packed from.</summary>
    public Tensor Weight { get; }

    /// <summary>The groups the weights were packed for.</summary>
    public int Groups { get; }

    /// <summary>The packed copy on devices that read one (the fast CPU with AVX-512), else null.</summary>
    internal Tensor? Packed { get; }

    /// <summary>Throws <see cref="TensorDisposedException"/> naming <paramref name="op"/> if this or its weights were disposed.</summary>
    internal void EnsureAlive(string op)
    {
        if (_disposed)
            throw new TensorDisposedException(op, "argument 'weight' (packed conv2d weights, disposed)");
        Weight.EnsureAlive(op, "weight");
    }

    /// <summary>Frees the packed copy (not <see cref="Weight"/>).</summary>
    public void Dispose()
    {
        _disposed = true;
        Packed?.Dispose();
    }
}

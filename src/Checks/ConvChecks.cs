using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of conv2d (both column paths), conv1d, masked conv, conv_transpose2d, im2col and col2im.</summary>
internal static class ConvChecks
{
    private const string FamilyName = "conv";

    private static CheckCase Conv2d(string name, int n, int c, int h, int w, int k, int kh, int kw, Conv2dOptions o, bool bias = false)
    {
        var xs = new[] { n, c, h, w };
        var ws = new[] { k, c / o.Groups, kh, kw };
        string algo = o.Algorithm == ConvAlgorithm.ImplicitGemm ? "implicit" : "im2col";
        return new CheckCase(FamilyName, "conv2d", $"{name}_{algo}", $"{Shapes(xs, ws)} s{o.Stride} p{o.Padding} d{o.Dilation} g{o.Groups}", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = Random(d, seed, 0, xs);
            using var wt = Random(d, seed, 1, ws);
            using var b = bias ? Random(d, seed, 2, k) : null;
            using var y = Ops.Conv2d(x, wt, b, o);
            var hw = Host(wt);
            if (o.Mask != ConvMask.None)
                for (int i = 0; i < hw.Length; i++)
                {
                    int tap = i % (kh * kw), centre = kh / 2 * kw + kw / 2;
                    if (tap > centre || (tap == centre && o.Mask == ConvMask.A))
                        hw[i] = 0;
                }
            Func<double, double>? act = o.Activation == FusedActivation.None ? null : ActivationReference.Of(MatMulChecks.ActivationKernel(o.Activation));
            return new(y.ToArray(), ConvReference.Conv2d(Host(x), xs, hw, ws, b is null ? null : Host(b), o.Stride, o.Padding, o.Dilation, o.Groups, act));
        });
    }

    /// <summary>
    /// act(conv2d(x, w) + bias + residual) through the packed-weight form (<see cref="Ops.PackConv2dWeight"/>) or, with
    /// <paramref name="packed"/> false, the plain one with a residual; on the fast CPU both run its direct tiles (64 output
    /// channels × 6 pixels over a zero-bordered copy of the image), elsewhere the packed form is the plain one.
    /// </summary>
    private static CheckCase Conv2dResidual(string name, int n, int c, int h, int w, int k, int kh, int kw, Conv2dOptions o, bool packed)
    {
        var xs = new[] { n, c, h, w };
        var ws = new[] { k, c / o.Groups, kh, kw };
        int oh = (h + o.Padding.Top + o.Padding.Bottom - o.Dilation.H * (kh - 1) - 1) / o.Stride.H + 1;
        int ow = (w + o.Padding.Left + o.Padding.Right - o.Dilation.W * (kw - 1) - 1) / o.Stride.W + 1;
        var ys = new[] { n, k, oh, ow };
        return new CheckCase(FamilyName, "conv2d", $"{name}_{(packed ? "packed" : "plain")}_residual", $"{Shapes(xs, ws)} s{o.Stride} p{o.Padding} d{o.Dilation} g{o.Groups}",
            CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, xs);
                using var wt = Random(d, seed, 1, ws);
                using var b = Random(d, seed, 2, k);
                using var r = Random(d, seed, 3, ys);
                using var pw = packed ? Ops.PackConv2dWeight(wt, o.Groups) : null;
                using var y = pw is null ? Ops.Conv2d(x, wt, b, o, r) : Ops.Conv2d(x, pw, b, o, r);
                var expected = ConvReference.Conv2d(Host(x), xs, Host(wt), ws, Host(b), o.Stride, o.Padding, o.Dilation, o.Groups);
                var hr = Host(r);
                Func<double, double> act = o.Activation == FusedActivation.None ? v => v : ActivationReference.Of(MatMulChecks.ActivationKernel(o.Activation));
                for (int i = 0; i < expected.Length; i++)
                    expected[i] = act(expected[i] + hr[i]);
                return new(y.ToArray(), expected);
            });
    }

    /// <summary>
    /// depthwise(act₁(conv1x1(x) + b₁)) through <see cref="Ops.Conv2dExpandDepthwise"/> (on the fast CPU one fused pass: the
    /// expansion computed straight into the depthwise layer's channels-last blocks), against the two reference convolutions;
    /// with <paramref name="project"/> output channels, the block whole through <see cref="Ops.Conv2dExpandDepthwiseProject"/>:
    /// a 1×1 projection after, the block's input added where <paramref name="residual"/> (then the projection keeps x's
    /// shape), <paramref name="projectActivation"/> last, against a third reference convolution.
    /// </summary>
    private static CheckCase ExpandDepthwise(string name, int n, int c, int h, int w, int e, int kh, int kw, FusedActivation expandActivation, Conv2dOptions o, bool biases,
        int project = 0, FusedActivation projectActivation = FusedActivation.None, bool residual = false)
    {
        var xs = new[] { n, c, h, w };
        var ws1 = new[] { e, c, 1, 1 };
        var ws2 = new[] { e, 1, kh, kw };
        var ws3 = new[] { project, e, 1, 1 };
        var options = o with { Groups = e };
        string kernel = project == 0 ? "expand_depthwise" : residual ? "inverted_residual" : "expand_depthwise_project";
        string shapes = $"{Shapes(xs, ws1)} → {Shapes(ws2)} s{o.Stride} p{o.Padding} d{o.Dilation} g{e}" + (project == 0 ? "" : $" → {Shapes(ws3)}{(residual ? " + x" : "")}");
        return new CheckCase(FamilyName, "conv2d", $"{name}_{kernel}", shapes, CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, xs);
                using var w1 = Random(d, seed, 1, ws1);
                using var w2 = Random(d, seed, 2, ws2);
                using var b1 = biases ? Random(d, seed, 3, e) : null;
                using var b2 = biases ? Random(d, seed, 4, e) : null;
                using var p1 = Ops.PackConv2dWeight(w1);
                using var p2 = Ops.PackConv2dWeight(w2, e);
                Func<double, double>? Act(FusedActivation a) => a == FusedActivation.None ? null : ActivationReference.Of(MatMulChecks.ActivationKernel(a));
                var expanded = ConvReference.Conv2d(Host(x), xs, Host(w1), ws1, b1 is null ? null : Host(b1), (1, 1), (0, 0, 0, 0), (1, 1), 1, Act(expandActivation));
                var hidden = ConvReference.Conv2d(expanded, new[] { n, e, h, w }, Host(w2), ws2, b2 is null ? null : Host(b2), o.Stride, o.Padding, o.Dilation, e, Act(o.Activation));
                if (project == 0)
                {
                    using var y = Ops.Conv2dExpandDepthwise(x, p1, b1, expandActivation, p2, b2, options);
                    return new(y.ToArray(), hidden);
                }
                int oh = (h + o.Padding.Top + o.Padding.Bottom - o.Dilation.H * (kh - 1) - 1) / o.Stride.H + 1, ow = (w + o.Padding.Left + o.Padding.Right - o.Dilation.W * (kw - 1) - 1) / o.Stride.W + 1;
                using var w3 = Random(d, seed, 5, ws3);
                using var b3 = biases ? Random(d, seed, 6, project) : null;
                using var p3 = Ops.PackConv2dWeight(w3);
                using var z = Ops.Conv2dExpandDepthwiseProject(x, p1, b1, expandActivation, p2, b2, options, p3, b3, projectActivation, residual ? x : null);
                var projected = ConvReference.Conv2d(hidden, new[] { n, e, oh, ow }, Host(w3), ws3, b3 is null ? null : Host(b3), (1, 1), (0, 0, 0, 0), (1, 1), 1, null);
                var hx = Host(x);
                var last = Act(projectActivation) ?? (v => v);
                for (int i = 0; i < projected.Length; i++)
                    projected[i] = last(projected[i] + (residual ? hx[i] : 0));
                return new(z.ToArray(), projected);
            });
    }

    /// <summary>
    /// x·σ(W₂·act(W₁·mean_hw(x) + b₁) + b₂) through <see cref="Ops.SqueezeExcite"/> (on the fast CPU one call from the packed
    /// 1×1 weights), against the pooling, the two products, the sigmoid and the scaling in double.
    /// </summary>
    private static CheckCase SqueezeExcite(string name, int n, int c, int h, int w, int r, FusedActivation activation, bool biases) =>
        new(FamilyName, "squeeze_excite", name, $"[{n}, {c}, {h}, {w}] → {r} {activation}{(biases ? "" : " no biases")}", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            var xs = new[] { n, c, h, w };
            using var x = Random(d, seed, 0, xs);
            using var w1 = Random(d, seed, 1, r, c, 1, 1);
            using var w2 = Random(d, seed, 2, c, r, 1, 1);
            using var b1 = biases ? Random(d, seed, 3, r) : null;
            using var b2 = biases ? Random(d, seed, 4, c) : null;
            using var p1 = Ops.PackConv2dWeight(w1);
            using var p2 = Ops.PackConv2dWeight(w2);
            using var y = Ops.SqueezeExcite(x, p1, b1, activation, p2, b2);
            double[] hx = Host(x), hw1 = Host(w1), hw2 = Host(w2);
            double[]? hb1 = b1 is null ? null : Host(b1), hb2 = b2 is null ? null : Host(b2);
            Func<double, double> act = activation == FusedActivation.None ? v => v : ActivationReference.Of(MatMulChecks.ActivationKernel(activation));
            int pixels = h * w;
            var expected = new double[hx.Length];
            for (int img = 0; img < n; img++)
            {
                var mean = new double[c];
                for (int k = 0; k < c; k++)
                {
                    for (int p = 0; p < pixels; p++)
                        mean[k] += hx[((long)img * c + k) * pixels + p];
                    mean[k] /= pixels;
                }
                var hidden = new double[r];
                for (int j = 0; j < r; j++)
                {
                    double z = hb1?[j] ?? 0;
                    for (int k = 0; k < c; k++)
                        z += hw1[j * c + k] * mean[k];
                    hidden[j] = act(z);
                }
                for (int k = 0; k < c; k++)
                {
                    double z = hb2?[k] ?? 0;
                    for (int j = 0; j < r; j++)
                        z += hw2[k * r + j] * hidden[j];
                    double gate = 1 / (1 + Math.Exp(-z));
                    for (int p = 0; p < pixels; p++)
                        expected[((long)img * c + k) * pixels + p] = hx[((long)img * c + k) * pixels + p] * gate;
                }
            }
            return new(y.ToArray(), expected);
        });

    internal static IEnumerable<CheckCase> Cases()
    {
        // Squeeze-and-excitation: efficientnet_b0's 96 channels at 4×4 into 4 with SiLU and its 1,152 at 2×2 into 48; 70
        // channels (a tile of 64 and one of 16 holding 6) at 3×5 (a masked last vector a row) in a batch of two into 10 with
        // ReLU, no biases; 131 channels (odd: the first product's last input alone) at 7×9 into 70 (two tiles of the first
        // product) with ReLU6; 24 at 32×32 into 6 with no activation.
        yield return SqueezeExcite("se_4x4_96_to_4_silu", 1, 96, 4, 4, 4, FusedActivation.Silu, true);
        yield return SqueezeExcite("se_2x2_1152_to_48_silu", 1, 1152, 2, 2, 48, FusedActivation.Silu, true);
        yield return SqueezeExcite("se_3x5_batch2_70_to_10_relu", 2, 70, 3, 5, 10, FusedActivation.Relu, false);
        yield return SqueezeExcite("se_7x9_131_to_70_relu6", 1, 131, 7, 9, 70, FusedActivation.Relu6, true);
        yield return SqueezeExcite("se_32x32_24_to_6", 1, 24, 32, 32, 6, FusedActivation.None, true);

        // Expansion then depthwise, fused on the fast CPU where the depthwise map has ≤ 64 output pixels: from 16 blocks of
        // expanded channels 64 at a time (2×2 over 260: four 64s and a block of 4 lanes, in a batch of two, ReLU6 after both
        // as mobilenet's; 7×7 over 270: 49 pixels, twelve tiles of four and one alone), with fewer one block at a time (4×4
        // over 70 from 24 with SiLU and 5×5 taps as efficientnet's, no biases; 8×8 to 4×4 at stride 2 from 3 channels to 50;
        // 7×7 over 16; 2×2 over 37). Over more than 64 output pixels with 3×3 taps, four expanded planes at a time go through
        // a scratch: 20×18 to 10×9 at stride 2 (70 channels: a last group of two); 16×16; 33×31 to 16×16 at stride 2 in a
        // batch of two with no top padding, SiLU then ReLU6, 37 channels; 18×20 at stride 1 with no expansion activation and
        // SiLU after, no biases. A 5×5 map of more than 64 pixels runs as two layers.
        yield return ExpandDepthwise("2x2_relu6", 2, 19, 2, 2, 260, 3, 3, FusedActivation.Relu6, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu6 }, true);
        yield return ExpandDepthwise("2x2_37_channels", 1, 9, 2, 2, 37, 3, 3, FusedActivation.Relu6, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu6 }, true);
        yield return ExpandDepthwise("4x4_k5_silu", 1, 24, 4, 4, 70, 5, 5, FusedActivation.Silu, Conv2dOptions.Of(padding: 2) with { Activation = FusedActivation.Silu }, false);
        yield return ExpandDepthwise("8x8_stride2_relu", 1, 3, 8, 8, 50, 3, 3, FusedActivation.Relu, Conv2dOptions.Of(stride: 2, padding: 1) with { Activation = FusedActivation.Relu }, true);
        yield return ExpandDepthwise("7x7_no_activation", 1, 9, 7, 7, 270, 3, 3, FusedActivation.None, Conv2dOptions.Of(padding: 1), true);
        yield return ExpandDepthwise("7x7_16_channels", 1, 9, 7, 7, 16, 3, 3, FusedActivation.Relu, Conv2dOptions.Of(padding: 1), true);
        yield return ExpandDepthwise("20x18_stride2_relu6", 1, 5, 20, 18, 70, 3, 3, FusedActivation.Relu6, Conv2dOptions.Of(stride: 2, padding: 1) with { Activation = FusedActivation.Relu6 }, true);
        yield return ExpandDepthwise("16x16", 1, 8, 16, 16, 24, 3, 3, FusedActivation.Relu6, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu6 }, true);
        yield return ExpandDepthwise("33x31_stride2_silu_batch2", 2, 6, 33, 31, 37, 3, 3, FusedActivation.Silu,
            new Conv2dOptions { Stride = (2, 2), Padding = (0, 1, 1, 0), Activation = FusedActivation.Relu6 }, true);
        yield return ExpandDepthwise("18x20_no_expand_activation", 1, 10, 18, 20, 21, 3, 3, FusedActivation.None, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Silu }, false);
        yield return ExpandDepthwise("12x12_k5_apart", 1, 7, 12, 12, 20, 5, 5, FusedActivation.Relu, Conv2dOptions.Of(padding: 2) with { Activation = FusedActivation.Relu }, true);

        // The block whole, projected as the depthwise loop leaves each block of 16 channels (≤ 64 output pixels): mobilenet_v2's
        // 96 → 576 → 96 at 4×4 with its input added (a projection tile of 64 and one of 32); 260 expanded channels at 2×2 in a
        // batch of two (a last block of 4) into 70 (a tile of 64, one of 16 holding 6); 8×8 to 4×4 at stride 2 into 24 with
        // ReLU last; 7×7 (49 pixels: a last tile of one) over 270 into 37 plus the input, SiLU last, no biases; 5×3 in a batch
        // of three with 5×5 taps into 100 (15 pixels: three left over, for a tile of 64 and one of three vectors); 960 into
        // 320 at 2×2 (five tiles). Over more than 64 output pixels the projection runs after the fused pair (16×16 with the
        // input added).
        var relu6 = Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu6 };
        yield return ExpandDepthwise("4x4_576_to_96", 1, 96, 4, 4, 576, 3, 3, FusedActivation.Relu6, relu6, true, 96, FusedActivation.None, residual: true);
        yield return ExpandDepthwise("2x2_batch2_260_to_70", 2, 19, 2, 2, 260, 3, 3, FusedActivation.Relu6, relu6, true, 70);
        yield return ExpandDepthwise("8x8_stride2_50_to_24_relu", 1, 3, 8, 8, 50, 3, 3, FusedActivation.Relu,
            Conv2dOptions.Of(stride: 2, padding: 1) with { Activation = FusedActivation.Relu }, true, 24, FusedActivation.Relu);
        yield return ExpandDepthwise("7x7_270_to_37_silu", 1, 37, 7, 7, 270, 3, 3, FusedActivation.Silu, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Silu },
            false, 37, FusedActivation.Silu, residual: true);
        yield return ExpandDepthwise("5x3_k5_batch3_70_to_100", 3, 24, 5, 3, 70, 5, 5, FusedActivation.Silu, Conv2dOptions.Of(padding: 2) with { Activation = FusedActivation.Silu }, true, 100);
        yield return ExpandDepthwise("2x2_960_to_320", 1, 160, 2, 2, 960, 3, 3, FusedActivation.Relu6, relu6, true, 320);
        yield return ExpandDepthwise("16x16_projection_apart", 1, 8, 16, 16, 24, 3, 3, FusedActivation.Relu6, relu6, true, 8, FusedActivation.None, residual: true);

        // The direct tiles' edges: 70 output channels (a block of 64 and one of 16 holding 6), pixels not a multiple of 6, a
        // batch; 37 channels (three vectors) with stride (2, 1), dilation (2, 1) and padding on two sides only; groups of 8
        // channels (one vector, half used) with SiLU applied after the tiles; a 1×1 layer over 96 channels into 130; a 2×2
        // map (one tile of 4 pixels); a strided 7×7 stem; and 1,150 output pixels, where the plain form packs per call.
        var residual = new (string Name, int N, int C, int H, int W, int K, int KH, int KW, Conv2dOptions O)[]
        {
            ("3x3_70_channels_relu", 2, 5, 11, 13, 70, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu }),
            ("stride2x1_dilation2x1_asymmetric_relu6", 1, 7, 17, 15, 37, 3, 2,
                new Conv2dOptions { Stride = (2, 1), Dilation = (2, 1), Padding = (0, 2, 1, 0), Activation = FusedActivation.Relu6 }),
            ("groups3_silu", 2, 9, 7, 8, 24, 3, 3, Conv2dOptions.Of(padding: 1, groups: 3) with { Activation = FusedActivation.Silu }),
            ("1x1_96_to_130", 1, 96, 5, 5, 130, 1, 1, Conv2dOptions.Of()),
            ("four_pixels_relu", 1, 33, 2, 2, 65, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu }),
            ("stem_7x7_stride2_relu", 1, 3, 20, 18, 16, 7, 7, Conv2dOptions.Of(stride: 2, padding: 3) with { Activation = FusedActivation.Relu }),
            ("1150_pixels_silu", 2, 5, 23, 25, 21, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Silu }),
            // Stems over 1,024–4,096 output pixels, which the fast CPU runs as outer products of their columns: 7×7 stride 2 to
            // 38×35 pixels and 37 outputs (9 groups of four and one); 5×5 over 4 channels in a batch of two with SiLU after.
            ("stem_7x7_stride2_1330_pixels_relu", 1, 3, 75, 69, 37, 7, 7, Conv2dOptions.Of(stride: 2, padding: 3) with { Activation = FusedActivation.Relu }),
            ("stem_5x5_4_channels_silu", 2, 4, 33, 32, 20, 5, 5, Conv2dOptions.Of(padding: 2) with { Activation = FusedActivation.Silu }),
            // More stems the fast CPU runs as outer products of each core's columns: resnet's 7×7 stride-2 stem at 64×64 into 37
            // channels; 3 × 3 at stride 2 to 31 rows of 48 (one core's pixels end in a part block of 64), a batch of two; and
            // stride (1, 2) with dilation 2 along W, three columns of left padding (the first input column in the odd phase)
            // and none on the right, 36 rows of 32.
            ("stem_7x7_stride2_64x64_relu", 1, 3, 64, 64, 37, 7, 7, Conv2dOptions.Of(stride: 2, padding: 3) with { Activation = FusedActivation.Relu }),
            ("stem_3x3_stride2_48_columns_relu6", 2, 3, 61, 96, 20, 3, 3, Conv2dOptions.Of(stride: 2, padding: 1) with { Activation = FusedActivation.Relu6 }),
            ("stem_stride1x2_dilation2_odd_padding_gelu", 1, 5, 37, 64, 6, 3, 3,
                new Conv2dOptions { Stride = (1, 2), Dilation = (1, 2), Padding = (1, 0, 3, 0), Activation = FusedActivation.Gelu }),
            // Columns at stride 2 built from the rows' two column phases: dilation 2 along W, three columns of left padding
            // (odd: the first input column lands in the odd phase), two of right padding, one row on top only; 14 × 12 outputs.
            ("columns_stride2_dilation2_odd_padding", 1, 6, 15, 23, 20, 3, 3,
                new Conv2dOptions { Stride = (1, 2), Dilation = (1, 2), Padding = (1, 0, 3, 2), Activation = FusedActivation.Relu }),
            // Direct tiles over many runs of a bordered image: stride 2 and dilation 2 along H, asymmetric padding, a batch of two.
            ("direct_many_runs_dilated", 2, 80, 29, 31, 40, 3, 3,
                new Conv2dOptions { Stride = (2, 1), Dilation = (2, 1), Padding = (2, 1, 1, 2), Activation = FusedActivation.Relu }),
            // One image, one block of 48 channels (three vectors of a tile) over 437 pixels in runs of tiles.
            ("one_block_48_channels", 1, 12, 19, 23, 48, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu }),
            // A strided 1×1 layer with few inputs (resnet's downsampling), which the fast CPU runs as direct tiles: 90 pixels.
            ("1x1_stride2_40_to_70", 1, 40, 19, 17, 70, 1, 1, Conv2dOptions.Of(stride: 2)),
            // Depthwise maps of ≤ 64 output pixels run channels-last, 16 channels a vector, from weights the packing interleaves
            // that way: 37 channels (two blocks and 5 lanes of a third) in a batch of two with 5×5 taps; stride 2 with dilation
            // and padding on two sides; 8×8 outputs (groups of four pixels spanning rows) with ReLU6.
            ("depthwise_37_channels_k5_silu", 2, 37, 5, 6, 37, 5, 5, Conv2dOptions.Of(padding: 2, groups: 37) with { Activation = FusedActivation.Silu }),
            ("depthwise_stride2_dilation2_asymmetric", 1, 20, 9, 8, 20, 3, 3,
                new Conv2dOptions { Stride = (2, 2), Dilation = (2, 2), Padding = (1, 2, 0, 1), Groups = 20 }),
            ("depthwise_8x8_relu6", 1, 16, 8, 8, 16, 3, 3, Conv2dOptions.Of(padding: 1, groups: 16) with { Activation = FusedActivation.Relu6 }),
            // More channels-last depthwise maps, as late stages have them: 2×2 outputs (four pixels, one group of four) over 37
            // channels in a batch of two; 4×4 to 2×2 at stride 2; 8×8 to 4×4 at stride 2 with 5×5 taps; one output pixel over
            // 40 channels (two full blocks and half of one); 7×7 (49 pixels: twelve groups of four and one alone).
            ("depthwise_2x2_relu6", 2, 37, 2, 2, 37, 3, 3, Conv2dOptions.Of(padding: 1, groups: 37) with { Activation = FusedActivation.Relu6 }),
            ("depthwise_4x4_stride2", 1, 21, 4, 4, 21, 3, 3, Conv2dOptions.Of(stride: 2, padding: 1, groups: 21)),
            ("depthwise_8x8_stride2_k5_silu", 1, 19, 8, 8, 19, 5, 5, Conv2dOptions.Of(stride: 2, padding: 2, groups: 19) with { Activation = FusedActivation.Silu }),
            ("depthwise_one_pixel_relu", 1, 40, 3, 3, 40, 3, 3, Conv2dOptions.Of(groups: 40) with { Activation = FusedActivation.Relu }),
            ("depthwise_7x7_relu", 2, 18, 7, 7, 18, 3, 3, Conv2dOptions.Of(padding: 1, groups: 18) with { Activation = FusedActivation.Relu }),
            // Stride 2 with one column of left padding, which the fast CPU splits into even and odd columns in registers: 36
            // outputs a row (vectors of 16, 16 and 4), no top padding, two columns of right padding, a batch of two.
            ("depthwise_stride2_wide_asymmetric_relu6", 2, 5, 11, 70, 5, 3, 3,
                new Conv2dOptions { Stride = (2, 2), Padding = (0, 1, 1, 2), Groups = 5, Activation = FusedActivation.Relu6 }),
            // Right padding past a whole vector: the second vector's outputs (16 to 20) read only padding.
            ("depthwise_stride2_wide_right_padding", 1, 3, 9, 8, 3, 3, 3, new Conv2dOptions { Stride = (2, 2), Padding = (1, 1, 1, 35), Groups = 3 }),
            // One output pixel per image (a squeeze-and-excite block's convolutions on a pooled map): 70 channels (a block of 64
            // and one of 6 in 16 lanes) in a batch of two; and a 3×3 kernel over a 3×3 image without padding (a column of 63).
            ("one_pixel_1x1_70_channels_silu", 2, 45, 1, 1, 70, 1, 1, Conv2dOptions.Of() with { Activation = FusedActivation.Silu }),
            ("one_pixel_3x3_valid_relu", 1, 7, 3, 3, 37, 3, 3, Conv2dOptions.Of() with { Activation = FusedActivation.Relu }),
            // 1×1 layers the fast CPU runs as outer products with the residual in their stores: few outputs over many inputs,
            // 81 pixels (a block of 64 and a tail of 17); and 70 outputs from 100 inputs with SiLU after.
            ("1x1_outer_96_to_37_relu6", 2, 96, 9, 9, 37, 1, 1, Conv2dOptions.Of() with { Activation = FusedActivation.Relu6 }),
            ("1x1_outer_100_to_70_silu", 1, 100, 8, 9, 70, 1, 1, Conv2dOptions.Of() with { Activation = FusedActivation.Silu }),
            // 3×3 stride-1 layers from ≥ 16 input channels over ≥ 16 tiles of 2×2 outputs, which the fast CPU runs as Winograd
            // F(2×2, 3×3) from packed weights: resnet's 64 → 64 at 16×16 (tile rows of 8, bands of two rows: 6 + 6 + 4 tiles);
            // 13×11 outputs (half tiles at the bottom and right) into 70 channels (a block of 64 and one of 6) in a batch of two;
            // padding on two sides only, 20 columns (tile rows padded from 10 to 16 tiles); 40 columns of 20 tiles (two vectors
            // a tile row) with GELU applied after the stores; 5 columns (3 tiles, four tile rows a vector) over 31 rows.
            ("winograd_16x16_64_relu", 1, 64, 16, 16, 64, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu }),
            ("winograd_13x11_70_channels_relu6", 2, 20, 13, 11, 70, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu6 }),
            ("winograd_asymmetric_silu", 1, 17, 12, 21, 24, 3, 3, new Conv2dOptions { Padding = (0, 2, 1, 0), Activation = FusedActivation.Silu }),
            ("winograd_40_columns_gelu", 1, 16, 9, 40, 33, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Gelu }),
            ("winograd_5_columns", 1, 24, 31, 5, 20, 3, 3, Conv2dOptions.Of(padding: 1)),
            // Direct tiles (packed) on small maps whose last 64-channel block is partial: 96 outputs (64 + 32) over 3 tiles, 1×1
            // and 3×3 at 4×5 (the last tile of 2 pixels); three images of 80 outputs (64 + 16) at 4×4.
            ("direct_96_channels_4x4", 1, 200, 4, 4, 96, 1, 1, Conv2dOptions.Of() with { Activation = FusedActivation.Relu6 }),
            ("direct_96_channels_3x3_4x5", 1, 24, 4, 5, 96, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu }),
            ("direct_batch3_80_channels", 3, 36, 4, 4, 80, 3, 3, Conv2dOptions.Of(padding: 1)),
        };
        foreach (var (name, n, c, h, w, k, kh, kw, o) in residual)
            foreach (bool packed in new[] { true, false })
                yield return Conv2dResidual(name, n, c, h, w, k, kh, kw, o, packed);

        var shapes = new (string Name, int N, int C, int H, int W, int K, int KH, int KW, Conv2dOptions O, bool Bias)[]
        {
            ("1x1", 1, 5, 13, 11, 7, 1, 1, Conv2dOptions.Of(), false),
            ("3x3_pad1_bias", 3, 5, 13, 11, 7, 3, 3, Conv2dOptions.Of(padding: 1), true),
            ("7x7_stride2_pad3", 1, 3, 17, 15, 6, 7, 7, Conv2dOptions.Of(stride: 2, padding: 3), true),
            ("3x3_dilation2", 1, 4, 13, 11, 5, 3, 3, Conv2dOptions.Of(padding: 2, dilation: 2), false),
            ("groups2", 3, 6, 9, 7, 10, 3, 3, Conv2dOptions.Of(padding: 1, groups: 2), true),
            ("depthwise", 1, 8, 13, 11, 8, 3, 3, Conv2dOptions.Of(stride: 2, padding: 1, groups: 8), true),
            ("asymmetric_padding_relu", 2, 3, 10, 9, 4, 3, 2, new Conv2dOptions { Padding = (0, 2, 1, 0), Stride = (1, 2), Activation = FusedActivation.Relu }, true),
            ("tiny", 1, 1, 1, 1, 1, 1, 1, Conv2dOptions.Of(), false),
            ("resnet_like", 2, 16, 14, 14, 24, 3, 3, Conv2dOptions.Of(padding: 1), true),
            // One image with 0.4M multiply-adds: the fast CPU splits its output rows across the cores (odd row chunks, stride
            // in H, grouped, bias and ReLU in the chunk's own GEMM, rows copied back).
            ("one_image_row_split", 1, 8, 45, 41, 12, 3, 3,
                new Conv2dOptions { Stride = (2, 1), Padding = (1, 0, 2, 1), Groups = 2, Activation = FusedActivation.Relu }, true),
            // The fast CPU's direct paths: depthwise planes (channel multiplier 2, 5×5, SiLU; dilated at stride 1; strided with
            // asymmetric padding), a 1×1 convolution on the image itself, and few output pixels (the GEMM split by weight rows).
            ("depthwise_multiplier2_k5_silu", 2, 6, 11, 9, 12, 5, 5, Conv2dOptions.Of(padding: 2, groups: 6) with { Activation = FusedActivation.Silu }, true),
            ("depthwise_dilation2", 1, 5, 10, 7, 5, 3, 3, Conv2dOptions.Of(padding: 2, dilation: 2, groups: 5), false),
            ("depthwise_stride2_asymmetric_relu", 1, 7, 12, 9, 7, 3, 3,
                new Conv2dOptions { Stride = (2, 2), Padding = (0, 1, 1, 2), Groups = 7, Activation = FusedActivation.Relu }, true),
            ("depthwise_19_channels_batch2_relu", 2, 19, 6, 5, 19, 3, 3, Conv2dOptions.Of(padding: 1, groups: 19) with { Activation = FusedActivation.Relu }, true),
            ("depthwise_large_plane", 1, 3, 20, 19, 3, 3, 3, Conv2dOptions.Of(padding: 1, groups: 3), true),
            // Stride 1 on a padded copy of the plane: padding on two sides only, 13 output columns (a vector and a tail), a batch.
            ("depthwise_asymmetric_pad_relu6", 2, 5, 11, 13, 5, 3, 3,
                new Conv2dOptions { Padding = (0, 2, 1, 0), Groups = 5, Activation = FusedActivation.Relu6 }, true),
            // Strided on the padded copy (its columns split into stride phases): 3×3 at stride 2, 5×5 at stride 2 with a channel
            // multiplier, and different strides along H and W.
            ("depthwise_stride2_large_relu", 1, 6, 23, 21, 6, 3, 3, Conv2dOptions.Of(stride: 2, padding: 1, groups: 6) with { Activation = FusedActivation.Relu }, true),
            // 5×5 taps on the padded copy, ReLU6 clamped in the registers of its generic tap loop.
            ("depthwise_k5_relu6_large", 1, 6, 20, 18, 6, 5, 5, Conv2dOptions.Of(padding: 2, groups: 6) with { Activation = FusedActivation.Relu6 }, true),
            ("depthwise_k5_stride2_multiplier2_silu", 2, 4, 25, 19, 8, 5, 5, Conv2dOptions.Of(stride: 2, padding: 2, groups: 4) with { Activation = FusedActivation.Silu }, true),
            // 3×3 taps on the padded copy with SiLU in the registers of the nine-tap plane loop (a tail of 1 column a row).
            ("depthwise_3x3_silu_large", 1, 7, 18, 17, 7, 3, 3, Conv2dOptions.Of(padding: 1, groups: 7) with { Activation = FusedActivation.Silu }, true),
            ("depthwise_stride1x3", 1, 3, 17, 29, 3, 3, 3, new Conv2dOptions { Stride = (1, 3), Padding = (1, 1, 1, 1), Groups = 3 }, false),
            // Dilated and strided: the bounded row form, reading stride phases.
            ("depthwise_dilation2_stride2", 1, 4, 23, 21, 4, 3, 3, Conv2dOptions.Of(stride: 2, padding: 2, dilation: 2, groups: 4), true),
            // A stem the fast CPU runs as outer products of its columns, ReLU in their stores (the residual form above adds after).
            ("stem_7x7_stride2_1330_pixels_relu", 1, 3, 75, 69, 37, 7, 7, Conv2dOptions.Of(stride: 2, padding: 3) with { Activation = FusedActivation.Relu }, true),
            // The stems above without a residual: their activation in the products' stores (ReLU, ReLU6) or after them (GELU).
            ("stem_7x7_stride2_64x64_relu", 1, 3, 64, 64, 37, 7, 7, Conv2dOptions.Of(stride: 2, padding: 3) with { Activation = FusedActivation.Relu }, true),
            ("stem_3x3_stride2_48_columns_relu6", 2, 3, 61, 96, 20, 3, 3, Conv2dOptions.Of(stride: 2, padding: 1) with { Activation = FusedActivation.Relu6 }, true),
            ("stem_stride1x2_dilation2_odd_padding_gelu", 1, 5, 37, 64, 6, 3, 3,
                new Conv2dOptions { Stride = (1, 2), Dilation = (1, 2), Padding = (1, 0, 3, 0), Activation = FusedActivation.Gelu }, false),
            ("1x1_batched_bias", 3, 9, 5, 6, 11, 1, 1, Conv2dOptions.Of(), true),
            ("1x1_relu6", 2, 8, 7, 6, 9, 1, 1, Conv2dOptions.Of() with { Activation = FusedActivation.Relu6 }, true),
            ("depthwise_relu6", 1, 12, 6, 6, 12, 3, 3, Conv2dOptions.Of(padding: 1, groups: 12) with { Activation = FusedActivation.Relu6 }, true),
            ("1x1_stride2", 1, 6, 9, 7, 5, 1, 1, Conv2dOptions.Of(stride: 2), true),
            // Few input channels over many pixels (the fast CPU's outer products from the image): 135 pixels (two blocks of 64 and
            // a tail of 7), 38 output channels (a partial group of 4), a batch.
            ("1x1_few_channels_many_pixels_relu6", 2, 24, 9, 15, 38, 1, 1, Conv2dOptions.Of() with { Activation = FusedActivation.Relu6 }, true),
            ("1x1_few_channels_silu", 1, 12, 8, 9, 10, 1, 1, Conv2dOptions.Of() with { Activation = FusedActivation.Silu }, true),
            ("few_pixels_many_channels", 1, 40, 3, 2, 37, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu }, true),
            // A 4×4 map (16 pixels: the columns are the skinny product's B in place) with 21 output channels (a partial block
            // of 8 rows), and a 3×4 map in a batch of two (12 pixels, padded to 16).
            ("sixteen_pixels_relu6", 1, 19, 4, 4, 21, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu6 }, true),
            ("twelve_pixels_batch2_silu", 2, 11, 3, 4, 13, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Silu }, true),
            // One image of more than 64 pixels and more than 64 column rows: the fast CPU splits the output rows across the
            // cores and unfolds each core's rows from a zero-bordered copy of the plane (rows r0 … r1 plus the taps' reach);
            // uneven padding and a dilation move where the border falls.
            // (Over 2¹⁸ multiply-adds, so the rows do split; a smaller layer stays on one core and unfolds from row 0.)
            ("one_image_rows_split_relu", 1, 16, 18, 16, 16, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu }, true),
            ("one_image_rows_split_dilation2_asymmetric", 1, 16, 20, 17, 12, 3, 3, new Conv2dOptions { Padding = (2, 1, 0, 3), Dilation = (2, 2) }, true),
        };
        foreach (var (name, n, c, h, w, k, kh, kw, o, bias) in shapes)
            foreach (var algo in new[] { ConvAlgorithm.Im2Col, ConvAlgorithm.ImplicitGemm })
                yield return Conv2d(name, n, c, h, w, k, kh, kw, o with { Algorithm = algo }, bias);
        foreach (var mask in new[] { ConvMask.A, ConvMask.B })
            yield return Conv2d($"pixelcnn_mask{mask}", 2, 3, 8, 8, 5, 5, 5, Conv2dOptions.Of(padding: 2) with { Mask = mask }, true);
        yield return Conv2d("auto_over_budget", 1, 4, 9, 9, 3, 3, 3, Conv2dOptions.Of(padding: 1) with { ColumnBudgetBytes = 16 }, true);

        foreach (var (name, stride, pad, dil, groups) in new[] { ("k5", 1, (2, 2), 1, 1), ("stride2_dilation2", 2, (3, 1), 2, 1), ("groups3", 1, (0, 0), 1, 3) })
            yield return new CheckCase(FamilyName, "conv1d", name, $"[2, 6, 29] k5 s{stride} p{pad} d{dil} g{groups}", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                var xs = new[] { 2, 6, 29 };
                var ws = new[] { 9, 6 / groups, 5 };
                using var x = Random(d, seed, 0, xs);
                using var wt = Random(d, seed, 1, ws);
                using var b = Random(d, seed, 2, 9);
                using var y = Ops.Conv1d(x, wt, b, stride, pad, dil, groups);
                var expected = ConvReference.Conv2d(Host(x), new[] { 2, 6, 1, 29 }, Host(wt), new[] { 9, 6 / groups, 1, 5 }, Host(b), (1, stride), (0, 0, pad.Item1, pad.Item2), (1, dil), groups);
                return new(y.ToArray(), expected);
            });

        var transposed = new (string Name, int N, int Cin, int H, int W, int CoutG, int K, int Stride, int Pad, int OutPad, int Dil, int Groups, bool Bias)[]
        {
            ("unet_up_k2s2", 2, 6, 5, 7, 4, 2, 2, 0, 0, 1, 1, true),
            ("k3_s2_p1_outpad1", 1, 3, 6, 5, 5, 3, 2, 1, 1, 1, 1, true),
            ("dilation2_groups2", 2, 4, 5, 4, 3, 3, 1, 1, 0, 2, 2, false),
            ("stride3", 1, 2, 4, 3, 2, 4, 3, 1, 2, 1, 1, true),
        };
        foreach (var t in transposed)
            yield return new CheckCase(FamilyName, "conv_transpose2d", t.Name, $"[{t.N}, {t.Cin}, {t.H}, {t.W}] k{t.K} s{t.Stride} p{t.Pad} op{t.OutPad} d{t.Dil} g{t.Groups}", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                var xs = new[] { t.N, t.Cin, t.H, t.W };
                var ws = new[] { t.Cin, t.CoutG, t.K, t.K };
                using var x = Random(d, seed, 0, xs);
                using var wt = Random(d, seed, 1, ws);
                using var b = t.Bias ? Random(d, seed, 2, t.CoutG * t.Groups) : null;
                using var y = Ops.ConvTranspose2d(x, wt, b, t.Stride, t.Pad, t.OutPad, t.Dil, t.Groups);
                return new(y.ToArray(), ConvReference.ConvTranspose2d(Host(x), xs, Host(wt), ws, b is null ? null : Host(b), t.Stride, t.Pad, t.OutPad, t.Dil, t.Groups));
            });

        foreach (var (name, xs, k, stride, pad, dil) in new[] { ("k3_p1", new[] { 2, 3, 7, 6 }, 3, 1, 1, 1), ("k2_s2", new[] { 1, 4, 8, 6 }, 2, 2, 0, 1), ("k3_d2", new[] { 1, 2, 9, 9 }, 3, 1, 2, 2) })
        {
            yield return new CheckCase(FamilyName, "im2col", name, Shapes(xs), CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, xs);
                using var col = Ops.Im2Col(x, k, k, Conv2dOptions.Of(stride, pad, dil));
                return new(col.ToArray(), ConvReference.Unfold(Host(x), xs, k, k, stride, pad, dil));
            });
            yield return new CheckCase(FamilyName, "col2im", name, Shapes(xs), CheckCase.Fp32Tolerance, (d, seed) =>
            {
                int oh = (xs[2] + 2 * pad - dil * (k - 1) - 1) / stride + 1, ow = (xs[3] + 2 * pad - dil * (k - 1) - 1) / stride + 1;
                var cs = new[] { xs[0], xs[1] * k * k, oh * ow };
                using var col = Random(d, seed, 0, cs);
                using var y = Ops.Col2Im(col, xs[2], xs[3], k, k, stride, pad, dil);
                return new(y.ToArray(), ConvReference.Fold(Host(col), xs[0], xs[1], xs[2], xs[3], k, k, stride, pad, dil));
            });
        }
    }

    /// <summary>The PixelCNN mask applied to a host weight [K, Cg, KH, KW] (taps after the centre, and the centre for type A, zeroed).</summary>
    private static double[] Masked(double[] w, int kh, int kw, ConvMask mask)
    {
        if (mask == ConvMask.None)
            return w;
        var m = (double[])w.Clone();
        int centre = kh / 2 * kw + kw / 2;
        for (int i = 0; i < m.Length; i++)
        {
            int tap = i % (kh * kw);
            if (tap > centre || (tap == centre && mask == ConvMask.A))
                m[i] = 0;
        }
        return m;
    }

    /// <summary>
    /// Backward cases of conv2d in every form the forward accepts — stride, asymmetric padding, dilation, groups (depthwise
    /// too), bias, fused ReLU and GELU, PixelCNN masks A and B, both column paths — on shapes that are not tile multiples;
    /// conv1d through it.
    /// </summary>
    internal static IEnumerable<CheckCase> BackwardConvs()
    {
        var shapes = new (string Name, int N, int C, int H, int W, int K, int KH, int KW, Conv2dOptions O, bool Bias)[]
        {
            ("1x1", 2, 5, 7, 6, 7, 1, 1, Conv2dOptions.Of(), false),
            ("3x3_pad1_bias", 3, 5, 9, 7, 7, 3, 3, Conv2dOptions.Of(padding: 1), true),
            ("7x7_stride2_pad3", 1, 3, 13, 11, 6, 7, 7, Conv2dOptions.Of(stride: 2, padding: 3), true),
            ("3x3_dilation2", 2, 4, 11, 9, 5, 3, 3, Conv2dOptions.Of(padding: 2, dilation: 2), false),
            ("groups2", 3, 6, 7, 5, 10, 3, 3, Conv2dOptions.Of(padding: 1, groups: 2), true),
            ("depthwise_stride2", 2, 8, 9, 7, 8, 3, 3, Conv2dOptions.Of(stride: 2, padding: 1, groups: 8), true),
            ("asymmetric_padding_relu", 2, 3, 10, 9, 4, 3, 2, new Conv2dOptions { Padding = (0, 2, 1, 0), Stride = (1, 2), Activation = FusedActivation.Relu }, true),
            ("gelu_implicit", 2, 4, 8, 7, 6, 3, 3, Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Gelu, Algorithm = ConvAlgorithm.ImplicitGemm }, true),
            ("tiny", 1, 1, 1, 1, 1, 1, 1, Conv2dOptions.Of(), true),
            ("pixelcnn_maskA", 2, 3, 8, 8, 5, 5, 5, Conv2dOptions.Of(padding: 2) with { Mask = ConvMask.A }, true),
            ("pixelcnn_maskB", 2, 3, 8, 8, 5, 5, 5, Conv2dOptions.Of(padding: 2) with { Mask = ConvMask.B }, true),
        };
        foreach (var (name, n, c, h, w, k, kh, kw, o, bias) in shapes)
        {
            var xs = new[] { n, c, h, w };
            var ws = new[] { k, c / o.Groups, kh, kw };
            // One element (tiny): x·w + b cancels to ~0 now and then (4 seeds in 3,000 failed), so its three values are drawn
            // positive; the other cases' outputs have norms to share their elements' rounding.
            Func<int, ulong, float[]>? Values(int[] shape) => name == "tiny" ? GradientCheck.Uniform(shape.Aggregate(1, (a, b) => a * b), 0.5f, 1.5f) : null;
            var inputs = bias
                ? new[] { new GradientInput(xs, Values: Values(xs)), new GradientInput(ws, Values: Values(ws)), new GradientInput(new[] { k }, Values: Values(new[] { k })) }
                : new[] { new GradientInput(xs, Values: Values(xs)), new GradientInput(ws, Values: Values(ws)) };
            var act = o.Activation == FusedActivation.None ? null : MatMulChecks.ActivationKernel(o.Activation);
            yield return GradientCheck.Case("conv2d_backward", name, inputs, t => Ops.Conv2d(t[0], t[1], bias ? t[2] : null, o),
                x => ConvReference.Conv2d(x[0], xs, Masked(x[1], kh, kw, o.Mask), ws, bias ? x[2] : null, o.Stride, o.Padding, o.Dilation, o.Groups,
                    act is null ? null : ActivationReference.Of(act)),
                (x, g) =>
                {
                    var mw = Masked(x[1], kh, kw, o.Mask);
                    if (act is not null)
                    {
                        // Through the activation: g ⊙ act′(z) with z the pre-activation.
                        var z = ConvReference.Conv2d(x[0], xs, mw, ws, bias ? x[2] : null, o.Stride, o.Padding, o.Dilation, o.Groups);
                        var derivative = GradientReference.ActivationDerivative(act);
                        g = g.Select((v, i) => v * derivative(z[i])).ToArray();
                    }
                    var (dx, dw, db) = ConvReference.Conv2dBackward(x[0], xs, mw, ws, g, o.Stride, o.Padding, o.Dilation, o.Groups);
                    dw = Masked(dw, kh, kw, o.Mask);
                    return bias ? new[] { dx, dw, db } : new[] { dx, dw };
                });
        }
        foreach (var (name, stride, pad, dil, groups) in new[] { ("k5", 1, (2, 2), 1, 1), ("stride2_dilation2", 2, (3, 1), 2, 1), ("groups3", 1, (0, 0), 1, 3) })
        {
            var xs = new[] { 2, 6, 29 };
            var ws = new[] { 9, 6 / groups, 5 };
            yield return GradientCheck.Case("conv1d_backward", name, new[] { new GradientInput(xs), new GradientInput(ws), new GradientInput(new[] { 9 }) },
                t => Ops.Conv1d(t[0], t[1], t[2], stride, pad, dil, groups),
                x => ConvReference.Conv2d(x[0], new[] { 2, 6, 1, 29 }, x[1], new[] { 9, 6 / groups, 1, 5 }, x[2], (1, stride), (0, 0, pad.Item1, pad.Item2), (1, dil), groups),
                (x, g) =>
                {
                    var (dx, dw, db) = ConvReference.Conv2dBackward(x[0], new[] { 2, 6, 1, 29 }, x[1], new[] { 9, 6 / groups, 1, 5 }, g, (1, stride), (0, 0, pad.Item1, pad.Item2), (1, dil), groups);
                    return new[] { dx, dw, db };
                });
        }
        var transposed = new (string Name, int N, int Cin, int H, int W, int CoutG, int K, int Stride, int Pad, int OutPad, int Dil, int Groups, bool Bias, FusedActivation Act)[]
        {
            ("unet_up_k2s2", 2, 6, 5, 7, 4, 2, 2, 0, 0, 1, 1, true, FusedActivation.None),
            ("k3_s2_p1_outpad1", 1, 3, 6, 5, 5, 3, 2, 1, 1, 1, 1, true, FusedActivation.None),
            ("dilation2_groups2", 2, 4, 5, 4, 3, 3, 1, 1, 0, 2, 2, false, FusedActivation.None),
            ("stride3_relu", 1, 2, 4, 3, 2, 4, 3, 1, 2, 1, 1, true, FusedActivation.Relu),
            ("dilation3_outpad2", 1, 2, 4, 5, 3, 3, 2, 1, 2, 3, 1, true, FusedActivation.None),
        };
        foreach (var t in transposed)
        {
            var xs = new[] { t.N, t.Cin, t.H, t.W };
            var ws = new[] { t.Cin, t.CoutG, t.K, t.K };
            int cout = t.CoutG * t.Groups;
            var inputs = t.Bias ? new[] { new GradientInput(xs), new GradientInput(ws), new GradientInput(new[] { cout }) } : new[] { new GradientInput(xs), new GradientInput(ws) };
            yield return GradientCheck.Case("conv_transpose2d_backward", t.Name, inputs,
                u => Ops.ConvTranspose2d(u[0], u[1], t.Bias ? u[2] : null, t.Stride, t.Pad, t.OutPad, t.Dil, t.Groups, t.Act),
                x =>
                {
                    var z = ConvReference.ConvTranspose2d(x[0], xs, x[1], ws, t.Bias ? x[2] : null, t.Stride, t.Pad, t.OutPad, t.Dil, t.Groups);
                    return t.Act == FusedActivation.Relu ? z.Select(v => Math.Max(v, 0)).ToArray() : z;
                },
                (x, g) =>
                {
                    if (t.Act == FusedActivation.Relu)
                    {
                        var z = ConvReference.ConvTranspose2d(x[0], xs, x[1], ws, t.Bias ? x[2] : null, t.Stride, t.Pad, t.OutPad, t.Dil, t.Groups);
                        g = g.Select((v, i) => z[i] > 0 ? v : 0).ToArray();
                    }
                    var (dx, dw, db) = ConvReference.ConvTranspose2dBackward(x[0], xs, x[1], ws, g, t.Stride, t.Pad, t.OutPad, t.Dil, t.Groups);
                    return t.Bias ? new[] { dx, dw, db } : new[] { dx, dw };
                });
        }
        foreach (var (name, xs, k, stride, pad, dil) in new[] { ("k3_p1", new[] { 2, 3, 7, 6 }, 3, 1, 1, 1), ("k2_s2", new[] { 1, 4, 8, 6 }, 2, 2, 0, 1), ("k3_d2", new[] { 1, 2, 9, 9 }, 3, 1, 2, 2) })
        {
            int oh = (xs[2] + 2 * pad - dil * (k - 1) - 1) / stride + 1, ow = (xs[3] + 2 * pad - dil * (k - 1) - 1) / stride + 1;
            var cs = new[] { xs[0], xs[1] * k * k, oh * ow };
            yield return GradientCheck.Case("im2col_backward", name, new[] { new GradientInput(xs) }, t => Ops.Im2Col(t[0], k, k, Conv2dOptions.Of(stride, pad, dil)),
                x => ConvReference.Unfold(x[0], xs, k, k, stride, pad, dil),
                (x, g) => new[] { ConvReference.Fold(g, xs[0], xs[1], xs[2], xs[3], k, k, stride, pad, dil) });
            yield return GradientCheck.Case("col2im_backward", name, new[] { new GradientInput(cs) }, t => Ops.Col2Im(t[0], xs[2], xs[3], k, k, stride, pad, dil),
                x => ConvReference.Fold(x[0], xs[0], xs[1], xs[2], xs[3], k, k, stride, pad, dil),
                (x, g) => new[] { ConvReference.Unfold(g, xs, k, k, stride, pad, dil) });
        }
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new(FamilyName, () => Cases().Concat(BackwardConvs()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants()
    {
        KernelVariant Gemm(string kernel, string variant, Type tile, Type source, Type act) =>
            new(kernel, variant, Closed(typeof(MatMulKernels), nameof(MatMulKernels.Tiled), tile, typeof(Flags.Yes), source, act, typeof(Flags.No)));
        yield return Gemm("conv2d", "implicit_gemm", typeof(MatMulTiles.Large), typeof(Im2ColB), typeof(ElementwiseOps.Identity));
        yield return Gemm("conv2d", "im2col_gemm", typeof(MatMulTiles.Large), typeof(DenseB<Flags.No>), typeof(Activation.Relu));
        yield return Method("im2col", "gather", typeof(ConvKernels), nameof(ConvKernels.Im2Col));
        yield return new KernelVariant("col2im", "gather", Closed(typeof(ConvKernels), nameof(ConvKernels.Col2Im), typeof(ElementwiseOps.Identity)));
        yield return new KernelVariant("conv_transpose2d", "col2im", Closed(typeof(ConvKernels), nameof(ConvKernels.Col2Im), typeof(Activation.Relu)));
        yield return Gemm("conv1d", "implicit_gemm", typeof(MatMulTiles.Small), typeof(Im2ColB), typeof(ElementwiseOps.Identity));
        // The backward: dX's GEMM W_gᵀ·dY (A transposed) and its fold, dW's GEMM dY·colᵀ over the unfolded input, the batch and bias sums.
        var id = typeof(ElementwiseOps.Identity);
        foreach (var kernel in new[] { "conv2d_backward", "conv1d_backward", "conv_transpose2d_backward" })
        {
            yield return Tiled(kernel, "dx_gemm_large_at_b", typeof(MatMulTiles.Large), false, false, id);
            yield return Tiled(kernel, "dw_gemm_large_a_bt", typeof(MatMulTiles.Large), true, true, id);
            yield return new KernelVariant(kernel, "col2im", Closed(typeof(ConvKernels), nameof(ConvKernels.Col2Im), id));
            yield return Method(kernel, "im2col", typeof(ConvKernels), nameof(ConvKernels.Im2Col));
            yield return new KernelVariant(kernel, "batch_sum", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Columns), typeof(float), typeof(ReduceOps.Sum)));
        }
        yield return new KernelVariant("im2col_backward", "col2im", Closed(typeof(ConvKernels), nameof(ConvKernels.Col2Im), id));
        yield return Method("col2im_backward", "im2col", typeof(ConvKernels), nameof(ConvKernels.Im2Col));
        // Squeeze-and-excitation is one host call on the fast CPU; on a GPU it launches the pooling, the two 1×1 convolutions,
        // the sigmoid and the broadcast product.
        yield return new KernelVariant("squeeze_excite", "pool", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), typeof(float), typeof(ReduceOps.Mean)));
        yield return Gemm("squeeze_excite", "conv1x1", typeof(MatMulTiles.Large), typeof(Im2ColB), typeof(ElementwiseOps.Identity));
        yield return Flat("squeeze_excite", "sigmoid", Unary(typeof(Activation.Sigmoid)));
        yield return Strided("squeeze_excite", "scale", typeof(ElementwiseOps.Mul));
    }

    private static IEnumerable<(string[] Presets, string Label, int N, int C, int H, int W, int K, int KH, int Stride, int Pad)> ConvShapes()
    {
        yield return (Small, "3x3", 1, 16, 16, 16, 16, 3, 1, 1);
        yield return (Small, "7x7/2", 1, 3, 32, 32, 16, 7, 2, 3);
        yield return (Medium, "resnet50 conv3_x b8", 8, 128, 28, 28, 128, 3, 1, 1);
        foreach (var (c, h, name) in new[] { (64, 56, "conv2_x"), (128, 28, "conv3_x"), (256, 14, "conv4_x"), (512, 7, "conv5_x") })
            yield return (Large, $"resnet50 {name} b32", 32, c, h, h, c, 3, 1, 1);
        // The fast CPU's comparison shape (the small 3x3 case is the other).
        yield return (CpuPreset, "3x3", 1, 64, 56, 56, 64, 3, 1, 1);
    }

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var conv in ConvShapes())
            foreach (var (algo, impl) in new[] { (ConvAlgorithm.ImplicitGemm, "gpunet"), (ConvAlgorithm.Im2Col, "im2col") })
            {
                var (presets, label, nb, c, h, w, kout, kh, stride, pad) = conv;
                if (presets == CpuPreset && algo == ConvAlgorithm.Im2Col)
                    continue;
                int oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kh) / stride + 1;
                double flops = 2.0 * nb * kout * oh * ow * c * kh * kh;
                double bytes = 4.0 * ((double)nb * c * h * w + (double)kout * c * kh * kh + (double)nb * kout * oh * ow);
                if (algo == ConvAlgorithm.Im2Col)
                    bytes += 8.0 * nb * c * kh * kh * oh * ow;
                var options = Conv2dOptions.Of(stride, pad) with { Algorithm = presets == CpuPreset ? ConvAlgorithm.Auto : algo };
                yield return C("conv2d", $"{label} {S(nb, c, h, w)} k{kh} s{stride} → {kout}", flops, bytes, presets, (d, s) =>
                { var x = R(d, s, nb, c, h, w); var wt = R(d, s + 1, kout, c, kh, kh); var b = R(d, s + 2, kout); return new(() => Ops.Conv2d(x, wt, b, options).Dispose(), x, wt, b); })
                with { Implementation = impl, PeerOf = impl == "gpunet" ? null : "conv2d" };
                // The training step: forward, then dX and dW (two GEMMs of the forward's size) and dbias; the columns are
                // unfolded (written, read) and dX's columns folded (written, read).
                if (algo == ConvAlgorithm.ImplicitGemm && presets != CpuPreset)
                {
                    double columns = 4.0 * nb * c * kh * kh * oh * ow;
                    yield return Step("conv2d_backward", $"{label} {S(nb, c, h, w)} k{kh} s{stride} → {kout}", 3 * flops, 3 * bytes + 4 * columns, presets, (d, s) =>
                        (new[] { R(d, s, nb, c, h, w), R(d, s + 1, kout, c, kh, kh), R(d, s + 2, kout) }, Trained(3), t => Ops.Conv2d(t[0], t[1], t[2], options)));
                }
            }
        foreach (var (presets, nb, c, l, kout, kk) in new[] { (Small, 2, 16, 256, 32, 5), (MediumLarge, 16, 256, 4096, 256, 5) })
            yield return C("conv1d", S(nb, c, l) + $" k{kk} → {kout}", 2.0 * nb * kout * l * c * kk, 4.0 * ((double)nb * c * l + (double)kout * c * kk + (double)nb * kout * l), presets, (d, s) =>
            { var x = R(d, s, nb, c, l); var w = R(d, s + 1, kout, c, kk); return new(() => Ops.Conv1d(x, w, null, 1, (kk / 2, kk / 2)).Dispose(), x, w); });
        foreach (var (presets, nb, c, l, kout, kk) in new[] { (Small, 2, 16, 256, 32, 5), (MediumLarge, 16, 256, 4096, 256, 5) })
            yield return Step("conv1d_backward", S(nb, c, l) + $" k{kk} → {kout}", 6.0 * nb * kout * l * c * kk, 12.0 * ((double)nb * c * l + (double)kout * c * kk + (double)nb * kout * l) + 16.0 * nb * c * kk * l, presets, (d, s) =>
                (new[] { R(d, s, nb, c, l), R(d, s + 1, kout, c, kk) }, Trained(2), t => Ops.Conv1d(t[0], t[1], null, 1, (kk / 2, kk / 2))));
        foreach (var (presets, nb, cin, h, cout) in new[] { (Small, 2, 32, 16, 16), (MediumLarge, 16, 256, 32, 128) })
            yield return C("conv_transpose2d", S(nb, cin, h, h) + $" k2 s2 → {cout}", 2.0 * nb * cin * h * h * cout * 4, 4.0 * ((double)nb * cin * h * h + (double)cin * cout * 4 + (double)nb * cout * 4 * h * h), presets, (d, s) =>
            { var x = R(d, s, nb, cin, h, h); var w = R(d, s + 1, cin, cout, 2, 2); return new(() => Ops.ConvTranspose2d(x, w, null, stride: 2).Dispose(), x, w); });
        foreach (var (presets, nb, cin, h, cout) in new[] { (Small, 2, 32, 16, 16), (MediumLarge, 16, 256, 32, 128) })
            yield return Step("conv_transpose2d_backward", S(nb, cin, h, h) + $" k2 s2 → {cout}", 6.0 * nb * cin * h * h * cout * 4,
                12.0 * ((double)nb * cin * h * h + (double)cin * cout * 4 + (double)nb * cout * 4 * h * h) + 16.0 * nb * cout * 4 * h * h, presets, (d, s) =>
                (new[] { R(d, s, nb, cin, h, h), R(d, s + 1, cin, cout, 2, 2) }, Trained(2), t => Ops.ConvTranspose2d(t[0], t[1], null, stride: 2)));
        // Squeeze-and-excitation as efficientnet_b0 has it at 64×64 inputs (1,152 channels at 2×2 into 48, 672 at 4×4 into 28)
        // and a batch at 14×14: the two products' weights and a read and a write of the input.
        foreach (var (presets, nb, c, h, r) in new[] { (Small, 1, 1152, 2, 48), (CpuPreset, 1, 1152, 2, 48), (CpuPreset, 1, 672, 4, 28), (MediumLarge, 32, 672, 14, 28) })
            yield return C("squeeze_excite", S(nb, c, h, h) + $" → {r} silu", 4.0 * nb * c * r + 2.0 * nb * c * h * h, 4.0 * (2.0 * c * r + 2.0 * nb * c * h * h), presets, (d, s) =>
            {
                var x = R(d, s, nb, c, h, h);
                var (w1, w2) = (R(d, s + 1, r, c, 1, 1), R(d, s + 2, c, r, 1, 1));
                var (b1, b2) = (R(d, s + 3, r), R(d, s + 4, c));
                var (p1, p2) = (Ops.PackConv2dWeight(w1), Ops.PackConv2dWeight(w2));
                return new(() => Ops.SqueezeExcite(x, p1, b1, FusedActivation.Silu, p2, b2).Dispose(), p1, p2, x, w1, w2, b1, b2);
            });
        foreach (var (presets, nb, c, h) in new[] { (Small, 2, 16, 32), (MediumLarge, 32, 64, 112) })
        {
            double input = (double)nb * c * h * h;
            yield return C("im2col", S(nb, c, h, h) + " k3 p1", 0, 4 * input + 8 * input * 9, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.Im2Col(x, 3, 3, Conv2dOptions.Of(padding: 1)).Dispose(), x); });
            yield return C("col2im", S(nb, c, h, h) + " k3 p1", input * 9, 4 * input * 9 + 4 * input, presets, (d, s) => { var col = R(d, s, nb, c * 9, h * h); return new(() => Ops.Col2Im(col, h, h, 3, 3, 1, 1).Dispose(), col); });
            yield return Step("im2col_backward", S(nb, c, h, h) + " k3 p1", input * 9, 8 * input + 16 * input * 9, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.Im2Col(t[0], 3, 3, Conv2dOptions.Of(padding: 1))));
            yield return Step("col2im_backward", S(nb, c, h, h) + " k3 p1", input * 9, 16 * input * 9 + 8 * input, presets, (d, s) =>
                (new[] { R(d, s, nb, c * 9, h * h) }, Trained(1), t => Ops.Col2Im(t[0], h, h, 3, 3, 1, 1)));
        }
    }
}

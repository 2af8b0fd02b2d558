using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of pooling and upsampling.</summary>
internal static class PoolingChecks
{
    /// <summary>A pooling case: the output and, when the op returns them, its argmax indices from the same launch.</summary>
    private static CheckCase Case(string kernel, string name, int[] xs, Func<Tensor, (Tensor Output, Tensor? Indices)> op, Func<double[], (double[] Values, double[]? Indices)> reference) =>
        new("pooling", kernel, name, Shapes(xs), CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = Random(d, seed, 0, xs);
            var (o, idx) = op(x);
            try
            {
                var (values, refIndices) = reference(Host(x));
                return new(o.ToArray(), values) { Also = idx is null ? [] : [("indices", idx.ToArray(), refIndices!)] };
            }
            finally
            {
                o.Dispose();
                idx?.Dispose();
            }
        });

    internal static IEnumerable<CheckCase> Cases()
    {
        var maxCases = new (string Name, int[] X, (int, int) K, (int, int) S, (int, int) P, (int, int) D, bool Ceil)[]
        {
            ("k2s2", new[] { 2, 3, 8, 6 }, (2, 2), (2, 2), (0, 0), (1, 1), false),
            ("k3s2p1_odd", new[] { 1, 4, 13, 11 }, (3, 3), (2, 2), (1, 1), (1, 1), false),
            ("k3s2_ceil", new[] { 3, 2, 10, 9 }, (3, 3), (2, 2), (0, 0), (1, 1), true),
            ("dilation2", new[] { 1, 2, 11, 12 }, (3, 2), (1, 2), (1, 1), (2, 2), false),
            ("k3s3p1_ceil", new[] { 1, 1, 7, 8 }, (3, 3), (3, 3), (1, 1), (1, 1), true),
            // Rows wide enough for the fast CPU's vectors over interior columns (8 outputs at a time, the edges per output):
            // resnet's stem pool at stride 2, and stride 1.
            ("k3s2p1_wide", new[] { 2, 3, 9, 41 }, (3, 3), (2, 2), (1, 1), (1, 1), false),
            ("k3s1p1_wide", new[] { 1, 2, 5, 30 }, (3, 3), (1, 1), (1, 1), (1, 1), false),
            // resnet18's stem pool at 64×64 input (64 × 32×32 planes), and a wide stride-3 row with a ragged right edge.
            ("k3s2p1_stem", new[] { 1, 64, 32, 32 }, (3, 3), (2, 2), (1, 1), (1, 1), false),
            ("k2s3_wide", new[] { 1, 3, 6, 61 }, (2, 2), (3, 3), (0, 0), (1, 1), true),
        };
        foreach (var c in maxCases)
        {
            yield return Case("maxpool2d", c.Name, c.X, x => { var r = Ops.MaxPool2d(x, c.K, c.S, c.P, c.D, c.Ceil); return (r.Output, r.Indices); },
                h => PoolingReference.MaxPool(h, c.X[0] * c.X[1], c.X[2], c.X[3], c.K, c.S, c.P, c.D, c.Ceil));
            // The values alone (inference: the fast CPU's separable loop, which tracks no index).
            yield return Case("maxpool2d", c.Name + "_values", c.X, x => (Ops.MaxPool2dValues(x, c.K, c.S, c.P, c.D, c.Ceil), null),
                h => (PoolingReference.MaxPool(h, c.X[0] * c.X[1], c.X[2], c.X[3], c.K, c.S, c.P, c.D, c.Ceil).Values, null));
        }
        // Ties everywhere (inputs in {-1, 0, 1}): the index must be the window's first maximum in row-major order.
        int[] tied = [1, 2, 7, 37];
        yield return new CheckCase("pooling", "maxpool2d", "k3s2p1_ties", Shapes(tied), CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var random = Random(d, seed, 0, tied);
            var values = random.ToArray().Select(v => MathF.Round(v)).ToArray();
            using var x = Tensor.FromArray(d, values, tied);
            var r = Ops.MaxPool2d(x, (3, 3), (2, 2), (1, 1));
            using var o = r.Output;
            using var idx = r.Indices;
            var (want, wantIndices) = PoolingReference.MaxPool(Array.ConvertAll(values, v => (double)v), 2, 7, 37, (3, 3), (2, 2), (1, 1), (1, 1), false);
            return new(o.ToArray(), want) { Also = [("indices", idx.ToArray(), wantIndices)] };
        });

        // NaNs planted at every 23rd input (a window with one returns NaN, with its index, as PyTorch's does), on a row wide
        // enough for the fast CPU's 16-output vectors and their padded edges.
        int[] withNaN = [2, 3, 9, 41];
        foreach (bool values in new[] { false, true })
            yield return new CheckCase("pooling", "maxpool2d", values ? "k3s2p1_nan_values" : "k3s2p1_nan", Shapes(withNaN), CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var random = Random(d, seed, 0, withNaN);
                var input = random.ToArray();
                for (int i = 5; i < input.Length; i += 23)
                    input[i] = float.NaN;
                using var x = Tensor.FromArray(d, input, withNaN);
                var (want, wantIndices) = PoolingReference.MaxPool(Array.ConvertAll(input, v => (double)v), 6, 9, 41, (3, 3), (2, 2), (1, 1), (1, 1), false);
                if (values)
                {
                    using var v = Ops.MaxPool2dValues(x, (3, 3), (2, 2), (1, 1));
                    return new(v.ToArray(), want);
                }
                var r = Ops.MaxPool2d(x, (3, 3), (2, 2), (1, 1));
                using var o = r.Output;
                using var idx = r.Indices;
                return new(o.ToArray(), want) { Also = [("indices", idx.ToArray(), wantIndices)] };
            });

        var avgCases = new (string Name, int[] X, (int, int) K, (int, int) S, (int, int) P, bool Ceil)[]
        {
            ("k2s2", new[] { 2, 3, 8, 6 }, (2, 2), (2, 2), (0, 0), false),
            ("k3s2p1", new[] { 1, 4, 13, 11 }, (3, 3), (2, 2), (1, 1), false),
            ("k3s2p1_ceil", new[] { 3, 2, 10, 9 }, (3, 3), (2, 2), (1, 1), true),
            ("k5s1p2", new[] { 1, 2, 7, 5 }, (5, 5), (1, 1), (2, 2), false),
        };
        foreach (var c in avgCases)
            foreach (bool include in new[] { true, false })
                yield return Case("avgpool2d", c.Name + (include ? "_include_pad" : "_exclude_pad"), c.X, x => (Ops.AvgPool2d(x, c.K, c.S, c.P, c.Ceil, include), null),
                    h => (PoolingReference.AvgPool(h, c.X[0] * c.X[1], c.X[2], c.X[3], c.K, c.S, c.P, c.Ceil, include), null));

        foreach (var (name, xs, size) in new[] { ("7x7_to_1x1", new[] { 2, 3, 7, 7 }, (1, 1)), ("13x11_to_5x4", new[] { 1, 2, 13, 11 }, (5, 4)), ("upsizing_3x2_to_5x7", new[] { 1, 2, 3, 2 }, (5, 7)) })
        {
            yield return Case("adaptive_avgpool2d", name, xs, x => (Ops.AdaptiveAvgPool2d(x, size), null),
                h => (PoolingReference.Adaptive(h, xs[0] * xs[1], xs[2], xs[3], size.Item1, size.Item2, false).Values, null));
            yield return Case("adaptive_maxpool2d", name, xs, x => { var r = Ops.AdaptiveMaxPool2d(x, size); return (r.Output, r.Indices); },
                h => PoolingReference.Adaptive(h, xs[0] * xs[1], xs[2], xs[3], size.Item1, size.Item2, true));
        }
        foreach (var xs in new[] { new[] { 2, 3, 7, 5 }, new[] { 1, 16, 1, 1 }, new[] { 3, 2, 32, 33 } })
            yield return Case("global_avgpool", string.Join("x", xs), xs, x => (Ops.GlobalAvgPool(x), null),
                h => (PoolingReference.Adaptive(h, xs[0] * xs[1], xs[2], xs[3], 1, 1, false).Values, null));

        foreach (var (name, xs, size) in new[] { ("2x", new[] { 2, 3, 5, 4 }, (10, 8)), ("odd_ratio", new[] { 1, 2, 7, 5 }, (11, 13)), ("down", new[] { 1, 2, 9, 8 }, (4, 3)), ("to_1x1", new[] { 1, 1, 4, 4 }, (1, 1)) })
        {
            yield return Case("upsample_nearest2d", name, xs, x => (Ops.UpsampleNearest2d(x, size), null),
                h => (PoolingReference.Nearest(h, xs[0] * xs[1], xs[2], xs[3], size.Item1, size.Item2), null));
            foreach (bool align in new[] { false, true })
                yield return Case("upsample_bilinear2d", name + (align ? "_align_corners" : ""), xs, x => (Ops.UpsampleBilinear2d(x, size, align), null),
                    h => (PoolingReference.Bilinear(h, xs[0] * xs[1], xs[2], xs[3], size.Item1, size.Item2, align), null));
        }
    }

    /// <summary>Backward cases: every pooling and upsampling with the attribute combinations of the forward cases (stride,
    /// padding, dilation, ceil mode, count_include_pad both ways, adaptive up- and down-sizing, align_corners both ways).</summary>
    internal static IEnumerable<CheckCase> BackwardPooling()
    {
        GradientInput[] In(int[] xs) => new[] { new GradientInput(xs) };
        var maxCases = new (string Name, int[] X, (int, int) K, (int, int) S, (int, int) P, (int, int) D, bool Ceil)[]
        {
            ("k2s2", new[] { 2, 3, 8, 6 }, (2, 2), (2, 2), (0, 0), (1, 1), false),
            ("k3s2p1_odd", new[] { 1, 4, 13, 11 }, (3, 3), (2, 2), (1, 1), (1, 1), false),
            ("k3s1_overlap", new[] { 1, 2, 7, 9 }, (3, 3), (1, 1), (1, 1), (1, 1), false),
            ("k3s2_ceil", new[] { 3, 2, 10, 9 }, (3, 3), (2, 2), (0, 0), (1, 1), true),
            ("dilation2", new[] { 1, 2, 11, 12 }, (3, 2), (1, 2), (1, 1), (2, 2), false),
        };
        foreach (var c in maxCases)
        {
            int planes = c.X[0] * c.X[1];
            yield return GradientCheck.Case("maxpool2d_backward", c.Name, In(c.X), t => Ops.MaxPool2d(t[0], c.K, c.S, c.P, c.D, c.Ceil).Output,
                x => PoolingReference.MaxPool(x[0], planes, c.X[2], c.X[3], c.K, c.S, c.P, c.D, c.Ceil).Values,
                (x, g) => new[] { PoolingReference.MaxPoolBackward(PoolingReference.MaxPool(x[0], planes, c.X[2], c.X[3], c.K, c.S, c.P, c.D, c.Ceil).Indices, g, planes, c.X[2], c.X[3]) });
        }
        var avgCases = new (string Name, int[] X, (int, int) K, (int, int) S, (int, int) P, bool Ceil)[]
        {
            ("k2s2", new[] { 2, 3, 8, 6 }, (2, 2), (2, 2), (0, 0), false),
            ("k3s2p1", new[] { 1, 4, 13, 11 }, (3, 3), (2, 2), (1, 1), false),
            ("k3s2p1_ceil", new[] { 3, 2, 10, 9 }, (3, 3), (2, 2), (1, 1), true),
            ("k5s1p2", new[] { 1, 2, 7, 5 }, (5, 5), (1, 1), (2, 2), false),
        };
        foreach (var c in avgCases)
            foreach (bool include in new[] { true, false })
            {
                int planes = c.X[0] * c.X[1];
                yield return GradientCheck.Case("avgpool2d_backward", c.Name + (include ? "_include_pad" : "_exclude_pad"), In(c.X), t => Ops.AvgPool2d(t[0], c.K, c.S, c.P, c.Ceil, include),
                    x => PoolingReference.AvgPool(x[0], planes, c.X[2], c.X[3], c.K, c.S, c.P, c.Ceil, include),
                    (x, g) => new[] { PoolingReference.AvgPoolBackward(g, planes, c.X[2], c.X[3], c.K, c.S, c.P, c.Ceil, include) });
            }
        foreach (var (name, xs, size) in new[] { ("7x7_to_1x1", new[] { 2, 3, 7, 7 }, (1, 1)), ("13x11_to_5x4", new[] { 1, 2, 13, 11 }, (5, 4)), ("upsizing_3x2_to_5x7", new[] { 1, 2, 3, 2 }, (5, 7)) })
        {
            int planes = xs[0] * xs[1];
            yield return GradientCheck.Case("adaptive_avgpool2d_backward", name, In(xs), t => Ops.AdaptiveAvgPool2d(t[0], size),
                x => PoolingReference.Adaptive(x[0], planes, xs[2], xs[3], size.Item1, size.Item2, false).Values,
                (x, g) => new[] { PoolingReference.AdaptiveAvgBackward(g, planes, xs[2], xs[3], size.Item1, size.Item2) });
            yield return GradientCheck.Case("adaptive_maxpool2d_backward", name, In(xs), t => Ops.AdaptiveMaxPool2d(t[0], size).Output,
                x => PoolingReference.Adaptive(x[0], planes, xs[2], xs[3], size.Item1, size.Item2, true).Values,
                (x, g) => new[] { PoolingReference.MaxPoolBackward(PoolingReference.Adaptive(x[0], planes, xs[2], xs[3], size.Item1, size.Item2, true).Indices, g, planes, xs[2], xs[3]) });
        }
        foreach (var xs in new[] { new[] { 2, 3, 7, 5 }, new[] { 1, 16, 1, 1 } })
        {
            int planes = xs[0] * xs[1];
            yield return GradientCheck.Case("global_avgpool_backward", string.Join("x", xs), In(xs), t => Ops.GlobalAvgPool(t[0]),
                x => PoolingReference.Adaptive(x[0], planes, xs[2], xs[3], 1, 1, false).Values,
                (x, g) => new[] { PoolingReference.AdaptiveAvgBackward(g, planes, xs[2], xs[3], 1, 1) });
        }
        foreach (var (name, xs, size) in new[] { ("2x", new[] { 2, 3, 5, 4 }, (10, 8)), ("odd_ratio", new[] { 1, 2, 7, 5 }, (11, 13)), ("down", new[] { 1, 2, 9, 8 }, (4, 3)), ("to_1x1", new[] { 1, 1, 4, 4 }, (1, 1)),
                     ("unet_4x3_to_8x6", new[] { 2, 16, 4, 3 }, (8, 6)), ("unet_9x7_to_18x14", new[] { 2, 8, 9, 7 }, (18, 14)) })
        {
            int planes = xs[0] * xs[1];
            yield return GradientCheck.Case("upsample_nearest2d_backward", name, In(xs), t => Ops.UpsampleNearest2d(t[0], size),
                x => PoolingReference.Nearest(x[0], planes, xs[2], xs[3], size.Item1, size.Item2),
                (x, g) => new[] { PoolingReference.NearestBackward(g, planes, xs[2], xs[3], size.Item1, size.Item2) });
            foreach (bool align in new[] { false, true })
                yield return GradientCheck.Case("upsample_bilinear2d_backward", name + (align ? "_align_corners" : ""), In(xs), t => Ops.UpsampleBilinear2d(t[0], size, align),
                    x => PoolingReference.Bilinear(x[0], planes, xs[2], xs[3], size.Item1, size.Item2, align),
                    (x, g) => new[] { PoolingReference.BilinearBackward(g, planes, xs[2], xs[3], size.Item1, size.Item2, align) });
        }
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>): pooling and upsampling.</summary>
    internal static KernelFamily Family { get; } = new("pooling", () => Cases().Concat(BackwardPooling()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants()
    {
        KernelVariant Pool(string kernel, bool max) => new(kernel, "window", Closed(typeof(PoolingKernels), nameof(PoolingKernels.Pool2d), max ? typeof(Flags.Yes) : typeof(Flags.No)));
        yield return Pool("maxpool2d", true);
        yield return Pool("adaptive_maxpool2d", true);
        yield return Pool("avgpool2d", false);
        yield return Pool("adaptive_avgpool2d", false);
        yield return new KernelVariant("global_avgpool", "rows", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), typeof(float), typeof(ReduceOps.Mean)));
        yield return Method("upsample_nearest2d", "gather", typeof(UpsampleKernels), nameof(UpsampleKernels.Nearest));
        yield return Method("upsample_bilinear2d", "gather", typeof(UpsampleKernels), nameof(UpsampleKernels.Bilinear));
        KernelVariant PoolBackward(string kernel, bool max) =>
            new(kernel, "gather", Closed(typeof(PoolingKernels), nameof(PoolingKernels.Pool2dBackward), max ? typeof(Flags.Yes) : typeof(Flags.No)));
        yield return PoolBackward("maxpool2d_backward", true);
        yield return PoolBackward("adaptive_maxpool2d_backward", true);
        yield return PoolBackward("avgpool2d_backward", false);
        yield return PoolBackward("adaptive_avgpool2d_backward", false);
        yield return Flat("global_avgpool_backward", "scale", Unary(typeof(Activation.Scale)));
        yield return Strided("global_avgpool_backward", "scale_broadcast", Unary(typeof(Activation.Scale)));
        yield return Method("upsample_nearest2d_backward", "gather", typeof(UpsampleKernels), nameof(UpsampleKernels.NearestBackward));
        yield return Method("upsample_bilinear2d_backward", "gather", typeof(UpsampleKernels), nameof(UpsampleKernels.BilinearBackward));
    }

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, nb, c, h) in new[] { (Small, 2, 16, 32), (MediumLarge, 32, 64, 112) })
        {
            double input = (double)nb * c * h * h;
            yield return C("maxpool2d", S(nb, c, h, h) + " k3 s2 p1", input * 9 / 4, 4 * input + 8 * input / 4, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.MaxPool2d(x, (3, 3), (2, 2), (1, 1)).Dispose(), x); });
            yield return C("avgpool2d", S(nb, c, h, h) + " k2 s2", input, 4 * input + 4 * input / 4, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.AvgPool2d(x, (2, 2)).Dispose(), x); });
            yield return C("adaptive_avgpool2d", S(nb, c, h, h) + " → 7x7", input, 4 * input + 4.0 * nb * c * 49, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.AdaptiveAvgPool2d(x, (7, 7)).Dispose(), x); });
            yield return C("adaptive_maxpool2d", S(nb, c, h, h) + " → 7x7", input, 4 * input + 8.0 * nb * c * 49, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.AdaptiveMaxPool2d(x, (7, 7)).Dispose(), x); });
            yield return C("global_avgpool", S(nb, c, h, h), input, 4 * input + 4.0 * nb * c, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.GlobalAvgPool(x).Dispose(), x); });
            yield return C("upsample_nearest2d", S(nb, c, h, h) + " ×2", 0, 4 * input + 16 * input, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.UpsampleNearest2d(x, (2 * h, 2 * h)).Dispose(), x); });
            yield return C("upsample_bilinear2d", S(nb, c, h, h) + " ×2", 11 * 4 * input, 4 * input + 16 * input, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.UpsampleBilinear2d(x, (2 * h, 2 * h)).Dispose(), x); });
            // Training steps (forward + backward): the backward reads dy once per window tap (cached) and writes dx.
            yield return Step("maxpool2d_backward", S(nb, c, h, h) + " k3 s2 p1", input * 9 / 4 + input * 9, 4 * input + 8 * input / 4 + 8 * input / 4 + 4 * input, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.MaxPool2d(t[0], (3, 3), (2, 2), (1, 1)).Output));
            yield return Step("avgpool2d_backward", S(nb, c, h, h) + " k2 s2", 2 * input, 4 * input + 4 * input / 4 + 4 * input / 4 + 4 * input, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.AvgPool2d(t[0], (2, 2))));
            yield return Step("adaptive_avgpool2d_backward", S(nb, c, h, h) + " → 7x7", 2 * input, 8 * input + 8.0 * nb * c * 49, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.AdaptiveAvgPool2d(t[0], (7, 7))));
            yield return Step("adaptive_maxpool2d_backward", S(nb, c, h, h) + " → 7x7", 2 * input, 8 * input + 12.0 * nb * c * 49, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.AdaptiveMaxPool2d(t[0], (7, 7)).Output));
            yield return Step("global_avgpool_backward", S(nb, c, h, h), 2 * input, 8 * input + 8.0 * nb * c, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.GlobalAvgPool(t[0])));
            yield return Step("upsample_nearest2d_backward", S(nb, c, h, h) + " ×2", 4 * input, 8 * input + 32 * input, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.UpsampleNearest2d(t[0], (2 * h, 2 * h))));
            yield return Step("upsample_bilinear2d_backward", S(nb, c, h, h) + " ×2", 11 * 4 * input + 3 * 16 * input, 8 * input + 32 * input, presets, (d, s) =>
                (new[] { R(d, s, nb, c, h, h) }, Trained(1), t => Ops.UpsampleBilinear2d(t[0], (2 * h, 2 * h))));
        }
    }
}

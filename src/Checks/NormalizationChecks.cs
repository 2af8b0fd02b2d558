using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of layernorm, rmsnorm, batch and group norm: the output and, from the same launch, the saved statistics
/// (and batch norm's running ones), with and without γ/β, and rows with a large common offset.</summary>
internal static class NormalizationChecks
{
    internal static IEnumerable<CheckCase> Cases()
    {
        var shapes = new (string Name, int[] Shape, float Offset)[]
        {
            ("tiny", new[] { 1, 1 }, 0), ("odd", new[] { 37, 53 }, 0), ("rank3", new[] { 3, 5, 129 }, 0),
            ("wide", new[] { 4, 4099 }, 0), ("offset_1000", new[] { 9, 300 }, 1000),
        };
        foreach (bool rms in new[] { false, true })
        {
            string kernel = rms ? "rmsnorm" : "layernorm";
            foreach (var (name, shape, offset) in shapes)
                foreach (bool affine in new[] { true, false })
                    yield return new CheckCase("normalization", kernel, $"{name}{(affine ? "" : "_no_affine")}", Shapes(shape) + (offset != 0 ? $" + {offset}" : ""),
                        CheckCase.Fp32Tolerance, (d, seed) =>
                        {
                            int cols = shape[^1], rows = (int)(ShapeUtil.Product(shape) / cols);
                            using var x = Tensor.RandomNormal(d, shape, seed, offset, 1f);
                            using var gamma = affine ? Tensor.RandomUniform(d, new[] { cols }, seed + 1, 0.5f, 1.5f) : null;
                            using var beta = affine && !rms ? Random(d, seed, 2, cols) : null;
                            const float eps = 1e-5f;
                            using var r = rms ? Ops.RmsNorm(x, gamma, eps) : Ops.LayerNorm(x, gamma, beta, eps);
                            var (y, mean, rstd) = NormalizationReference.Normalize(Host(x), rows, cols, gamma is null ? null : Host(gamma), beta is null ? null : Host(beta), eps, rms);
                            var stats = new List<(string, float[], double[])> { ("rstd", r.Rstd.ToArray(), rstd) };
                            if (!rms)
                                stats.Insert(0, ("mean", r.Mean.ToArray(), mean));
                            return new(r.Output.ToArray(), y) { Also = stats };
                        });
        }

        foreach (var (name, xs, eps) in new[] { ("small", new[] { 3, 5, 4, 3 }, 1e-5f), ("one_sample", new[] { 1, 7, 5, 5 }, 1e-3f), ("offset", new[] { 4, 3, 6, 7 }, 1e-5f) })
            yield return new CheckCase("normalization", "batchnorm2d_train", name, Shapes(xs), CheckCase.Fp32Tolerance, (d, seed) =>
                {
                    int n = xs[0], c = xs[1], hw = xs[2] * xs[3];
                    using var x = Tensor.RandomNormal(d, xs, seed, name == "offset" ? 50 : 0, 2f);
                    using var gamma = Tensor.RandomUniform(d, new[] { c }, seed + 1, 0.5f, 1.5f);
                    using var beta = Random(d, seed, 2, c);
                    using var rm = Random(d, seed, 3, c);
                    using var rv = Tensor.RandomUniform(d, new[] { c }, seed + 4, 0.5f, 2f);
                    var (hrm, hrv) = (Host(rm), Host(rv));
                    const float momentum = 0.1f;
                    using var r = Ops.BatchNorm2dTrain(x, gamma, beta, rm, rv, momentum, eps);
                    var (y, mean, var) = NormalizationReference.BatchNorm(Host(x), n, c, hw, Host(gamma), Host(beta), eps);
                    int count = n * hw;
                    return new(r.Output.ToArray(), y)
                    {
                        Also =
                        [
                            ("mean", r.Mean.ToArray(), mean),
                            ("rstd", r.Rstd.ToArray(), var.Select(v => 1 / Math.Sqrt(v + eps)).ToArray()),
                            ("running_mean", rm.ToArray(), hrm.Select((m, i) => (1 - momentum) * m + momentum * mean[i]).ToArray()),
                            ("running_var", rv.ToArray(), hrv.Select((v, i) => (1 - momentum) * v + momentum * var[i] * count / (count - 1)).ToArray()),
                        ],
                    };
                });
        foreach (var (name, xs, affine) in new[] { ("affine", new[] { 2, 5, 7, 3 }, true), ("plain", new[] { 3, 4, 1, 9 }, false) })
            yield return new CheckCase("normalization", "batchnorm2d_infer", name, Shapes(xs), CheckCase.Fp32Tolerance, (d, seed) =>
            {
                int c = xs[1];
                using var x = Random(d, seed, 0, xs);
                using var rm = Random(d, seed, 1, c);
                using var rv = Tensor.RandomUniform(d, new[] { c }, seed + 2, 0.25f, 2f);
                using var gamma = affine ? Random(d, seed, 3, c) : null;
                using var beta = affine ? Random(d, seed, 4, c) : null;
                using var y = Ops.BatchNorm2dInfer(x, rm, rv, gamma, beta, 1e-5f);
                var (hx, hm, hv) = (Host(x), Host(rm), Host(rv));
                var hg = gamma is null ? null : Host(gamma);
                var hb = beta is null ? null : Host(beta);
                int hw = xs[2] * xs[3];
                var expected = hx.Select((v, i) => { int ch = i / hw % c; return (v - hm[ch]) / Math.Sqrt(hv[ch] + 1e-5) * (hg?[ch] ?? 1) + (hb?[ch] ?? 0); }).ToArray();
                return new(y.ToArray(), expected);
            });
        foreach (var (name, xs, groups) in new[] { ("g2", new[] { 2, 6, 5, 4 }, 2), ("g1_layernorm_like", new[] { 3, 4, 3, 3 }, 1), ("depth_groups", new[] { 1, 8, 7, 7 }, 8), ("unet_32", new[] { 2, 64, 4, 4 }, 32) })
            yield return new CheckCase("normalization", "groupnorm", name, Shapes(xs) + $" groups {groups}", CheckCase.Fp32Tolerance, (d, seed) =>
                {
                    int n = xs[0], c = xs[1], hw = xs[2] * xs[3];
                    using var x = Tensor.RandomNormal(d, xs, seed, 3, 1.5f);
                    using var gamma = Random(d, seed, 1, c);
                    using var beta = Random(d, seed, 2, c);
                    using var r = Ops.GroupNorm(x, groups, gamma, beta, 1e-5f);
                    var (y, mean, rstd) = NormalizationReference.GroupNorm(Host(x), n, c, hw, groups, Host(gamma), Host(beta), 1e-5);
                    return new(r.Output.ToArray(), y) { Also = [("mean", r.Mean.ToArray(), mean), ("rstd", r.Rstd.ToArray(), rstd)] };
                });
    }

    internal static IEnumerable<CheckCase> BackwardNormalizations()
    {
        const double eps = 1e-5;
        foreach (var (name, rows, cols, offset) in new[] { ("tiny", 1, 1, 0f), ("odd", 37, 53, 0f), ("offset", 16, 257, 100f), ("wide", 8, 4099, 0f) })
            foreach (var rms in new[] { false, true })
            {
                // Inputs on a common offset test that the backward's x̂ is as exact as the forward's.
                float[] Shifted(int k, ulong seed)
                {
                    var v = new float[rows * cols];
                    Philox.FillUniform(v, seed, -1f, 1f);
                    return v.Select(u => u + offset).ToArray();
                }
                var inputs = rms
                    ? new[] { new GradientInput(new[] { rows, cols }, Values: Shifted), new GradientInput(new[] { cols }) }
                    : new[] { new GradientInput(new[] { rows, cols }, Values: Shifted), new GradientInput(new[] { cols }), new GradientInput(new[] { cols }) };
                yield return GradientCheck.Case(rms ? "rmsnorm_backward" : "layernorm_backward", name, inputs,
                    t => rms ? KeepOutput(Ops.RmsNorm(t[0], t[1], (float)eps)) : KeepOutput(Ops.LayerNorm(t[0], t[1], t[2], (float)eps)),
                    x => NormalizationReference.Normalize(x[0], rows, cols, x[1], rms ? null : x[2], eps, rms).Y,
                    (x, g) =>
                    {
                        var (dx, dg, db) = GradientReference.Normalize(x[0], x[1], g, rows, cols, (r, j) => r * cols + j, (_, j) => j, cols, eps, rms);
                        return rms ? new[] { dx, dg } : new[] { dx, dg, db };
                    });
            }
        // GroupNorm [N, C, H, W] with 3 groups and BatchNorm2d (training statistics) [N, C, H, W].
        int n = 2, c = 6, h = 5, w = 3, hw = h * w, groups = 3, per = c / groups;
        var shape = new[] { n, c, h, w };
        yield return GradientCheck.Case("groupnorm_backward", "g3", new[] { new GradientInput(shape), new GradientInput(new[] { c }), new GradientInput(new[] { c }) },
            t => KeepOutput(Ops.GroupNorm(t[0], groups, t[1], t[2], (float)eps)),
            x => NormalizationReference.GroupNorm(x[0], n, c, hw, groups, x[1], x[2], eps).Y,
            (x, g) =>
            {
                var (dx, dg, db) = GradientReference.Normalize(x[0], x[1], g, n * groups, per * hw, (r, j) => r * per * hw + j, (r, j) => r % groups * per + j / hw, c, eps, false);
                return new[] { dx, dg, db };
            });
        yield return GradientCheck.Case("batchnorm2d_train_backward", "n2_c6", new[] { new GradientInput(shape), new GradientInput(new[] { c }), new GradientInput(new[] { c }) },
            t => KeepOutput(Ops.BatchNorm2dTrain(t[0], t[1], t[2], eps: (float)eps)),
            x => NormalizationReference.BatchNorm(x[0], n, c, hw, x[1], x[2], eps).Y,
            (x, g) =>
            {
                var (dx, dg, db) = GradientReference.Normalize(x[0], x[1], g, c, n * hw, (r, j) => (j / hw * c + r) * hw + j % hw, (r, _) => r, c, eps, false);
                return new[] { dx, dg, db };
            });
    }

    private static Tensor KeepOutput(NormResult r)
    {
        r.Mean.Dispose();
        r.Rstd.Dispose();
        return r.Output;
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new("normalization", () => Cases().Concat(BackwardNormalizations()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants()
    {
        KernelVariant Rows(string kernel, string variant, bool rms) =>
            new(kernel, variant, Closed(typeof(NormalizationKernels), nameof(NormalizationKernels.Rows), rms ? typeof(Flags.Yes) : typeof(Flags.No)));
        yield return Rows("layernorm", "rows", false);
        yield return Rows("groupnorm", "rows", false);
        yield return Rows("batchnorm2d_train", "channel_rows", false);
        yield return Flat("batchnorm2d_train", "running_update", typeof(ElementwiseOps.MomentumUpdate));
        yield return Method("batchnorm2d_infer", "fold", typeof(NormalizationKernels), nameof(NormalizationKernels.FoldBatchNorm));
        yield return Method("batchnorm2d_infer", "channel_affine", typeof(NormalizationKernels), nameof(NormalizationKernels.ChannelAffine));
        yield return Rows("rmsnorm", "rows", true);
        foreach (var (kernel, rms) in new[] { ("layernorm_backward", false), ("rmsnorm_backward", true), ("groupnorm_backward", false), ("batchnorm2d_train_backward", false) })
            yield return new KernelVariant(kernel, "rows", Closed(typeof(NormalizationKernels), nameof(NormalizationKernels.BackwardRows), rms ? typeof(Flags.Yes) : typeof(Flags.No)));
    }

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, _, rows, cols) in Tiers)
        {
            double rc = (double)rows * cols;
            yield return C("layernorm", S(rows, cols), 8 * rc, 12 * rc + 8.0 * cols + 8.0 * rows, presets, (d, s) =>
            { var x = R(d, s, rows, cols); var g = R(d, s + 1, cols); var b = R(d, s + 2, cols); return new(() => Ops.LayerNorm(x, g, b).Dispose(), x, g, b); });
            yield return C("rmsnorm", S(rows, cols), 6 * rc, 12 * rc + 4.0 * cols + 8.0 * rows, presets, (d, s) =>
            { var x = R(d, s, rows, cols); var g = R(d, s + 1, cols); return new(() => Ops.RmsNorm(x, g).Dispose(), x, g); });
            yield return Step("layernorm_backward", S(rows, cols), 18 * rc, 40 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols), R(d, s + 1, cols), R(d, s + 2, cols) }, Trained(3),
                t => { var r = Ops.LayerNorm(t[0], t[1], t[2]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
            yield return Step("rmsnorm_backward", S(rows, cols), 16 * rc, 40 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols), R(d, s + 1, cols) }, Trained(2),
                t => { var r = Ops.RmsNorm(t[0], t[1]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
        }
        foreach (var (presets, nb, c, h) in new[] { (Small, 2, 16, 32), (MediumLarge, 32, 64, 112) })
        {
            double input = (double)nb * c * h * h;
            yield return C("batchnorm2d_train", S(nb, c, h, h), 8 * input, 12 * input, presets, (d, s) =>
            { var x = R(d, s, nb, c, h, h); var g = R(d, s + 1, c); var b = R(d, s + 2, c); var rm = R(d, s + 3, c); var rv = Tensor.RandomUniform(d, new[] { c }, s + 4, 0.5f, 1.5f);
              return new(() => Ops.BatchNorm2dTrain(x, g, b, rm, rv).Dispose(), x, g, b, rm, rv); });
            yield return C("batchnorm2d_infer", S(nb, c, h, h), 2 * input, 8 * input, presets, (d, s) =>
            { var x = R(d, s, nb, c, h, h); var rm = R(d, s + 1, c); var rv = Tensor.RandomUniform(d, new[] { c }, s + 2, 0.5f, 1.5f);
              return new(() => Ops.BatchNorm2dInfer(x, rm, rv).Dispose(), x, rm, rv); });
            yield return C("groupnorm", S(nb, c, h, h) + " g8", 8 * input, 12 * input, presets, (d, s) =>
            { var x = R(d, s, nb, c, h, h); var g = R(d, s + 1, c); var b = R(d, s + 2, c); return new(() => Ops.GroupNorm(x, 8, g, b).Dispose(), x, g, b); });
            yield return Step("groupnorm_backward", S(nb, c, h, h) + " g8", 18 * input, 40 * input, presets, (d, s) => (new[] { R(d, s, nb, c, h, h), R(d, s + 1, c), R(d, s + 2, c) }, Trained(3),
                t => { var r = Ops.GroupNorm(t[0], 8, t[1], t[2]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
            yield return Step("batchnorm2d_train_backward", S(nb, c, h, h), 18 * input, 40 * input, presets, (d, s) => (new[] { R(d, s, nb, c, h, h), R(d, s + 1, c), R(d, s + 2, c) }, Trained(3),
                t => { var r = Ops.BatchNorm2dTrain(t[0], t[1], t[2]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
        }
    }
}

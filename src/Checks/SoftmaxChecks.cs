using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of softmax, log_softmax and softmax_causal: widths from 1 to 65,536, magnitudes to 1e4, −inf entries, masked rows.</summary>
internal static class SoftmaxChecks
{
    private static CheckCase Case(string kernel, string name, int[] shape, float scale, Func<Tensor, Tensor, Tensor> op, Func<double[], int, int, double[]> reference, double negInfFraction = 0) =>
        new("softmax", kernel, name, $"{Shapes(shape)} in ±{scale}" + (negInfFraction > 0 ? " with −inf" : ""), CheckCase.Fp32Tolerance, (d, seed) =>
        {
            var host = new float[ShapeUtil.Product(shape)];
            Philox.FillUniform(host, seed, -scale, scale);
            int cols = shape[^1], rows = host.Length / cols;
            if (negInfFraction > 0)
            {
                // Scatter −inf entries, and make the last row entirely −inf.
                for (int i = 0; i < host.Length; i++)
                    if (Philox.ToUniform(Philox.Word(seed + 1, i)) < negInfFraction || i >= (rows - 1) * cols)
                        host[i] = float.NegativeInfinity;
            }
            using var x = Tensor.FromArray(d, host, shape);
            using var o = Poisoned(d, shape);
            op(x, o);
            return new(o.ToArray(), reference(Host(x), rows, cols));
        });

    internal static IEnumerable<CheckCase> Cases()
    {
        var plain = new (string Name, int[] Shape, float Scale)[]
        {
            ("tiny", new[] { 1, 1 }, 1), ("odd", new[] { 37, 53 }, 4), ("rank3", new[] { 3, 5, 7 }, 4),
            ("row_1000", new[] { 13, 1000 }, 4), ("wide_65536", new[] { 3, 65536 }, 4), ("magnitude_1e4", new[] { 17, 129 }, 1e4f),
        };
        foreach (var (name, shape, scale) in plain)
        {
            yield return Case("softmax", name, shape, scale, (x, o) => Ops.Softmax(x, o), (h, r, c) => SoftmaxReference.Softmax(h, r, c));
            yield return Case("log_softmax", name, shape, scale, (x, o) => Ops.LogSoftmax(x, o), (h, r, c) => SoftmaxReference.Softmax(h, r, c, log: true));
        }
        yield return Case("softmax", "neg_inf", new[] { 11, 67 }, 8, (x, o) => Ops.Softmax(x, o), (h, r, c) => SoftmaxReference.Softmax(h, r, c), 0.3);
        yield return Case("log_softmax", "neg_inf", new[] { 11, 67 }, 8, (x, o) => Ops.LogSoftmax(x, o), (h, r, c) => SoftmaxReference.Softmax(h, r, c, log: true), 0.3);

        var causal = new (string Name, int[] Shape, int Offset, float Scale)[]
        {
            ("square", new[] { 2, 7, 7 }, 0, 4), ("nq_lt_nk_aligned_end", new[] { 3, 5, 9 }, 4, 4),
            ("negative_offset_masks_rows", new[] { 1, 6, 6 }, -2, 4), ("large", new[] { 2, 129, 129 }, 0, 1e4f),
        };
        foreach (var (name, shape, offset, scale) in causal)
            yield return Case("softmax_causal", name + $"_offset{offset}", shape, scale, (x, o) => Ops.SoftmaxCausal(x, offset, o),
                (h, r, c) => SoftmaxReference.Softmax(h, r, c, causal: true, rowsPerMatrix: shape[^2], offset: offset));
    }

    internal static IEnumerable<CheckCase> BackwardSoftmaxes()
    {
        var shapes = new (string Name, int Rows, int Cols, float Scale)[]
        {
            ("tiny", 1, 1, 1f),
            ("odd", 37, 53, 4f),
            ("moderate", 64, 1031, 8f),
        };
        foreach (var log in new[] { false, true })
            foreach (var (name, rows, cols, scale) in shapes)
                yield return GradientCheck.Case(log ? "log_softmax_backward" : "softmax_backward", name, new[] { new GradientInput(new[] { rows, cols }, Scale: scale) },
                    t => log ? Ops.LogSoftmax(t[0]) : Ops.Softmax(t[0]),
                    x => SoftmaxReference.Softmax(x[0], rows, cols, log),
                    (x, g) => new[] { GradientReference.Softmax(SoftmaxReference.Softmax(x[0], rows, cols, log), g, rows, cols, log) });
        yield return GradientCheck.Case("softmax_backward", "causal", new[] { new GradientInput(new[] { 2, 13, 13 }, Scale: 3f) },
            t => Ops.SoftmaxCausal(t[0]),
            x => SoftmaxReference.Softmax(x[0], 26, 13, causal: true, rowsPerMatrix: 13),
            (x, g) => new[] { GradientReference.Softmax(SoftmaxReference.Softmax(x[0], 26, 13, causal: true, rowsPerMatrix: 13), g, 26, 13, false) });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new("softmax", () => Cases().Concat(BackwardSoftmaxes()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants() => new[]
    {
        new KernelVariant("softmax", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.Rows), typeof(Flags.No))),
        new KernelVariant("log_softmax", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.Rows), typeof(Flags.Yes))),
        new KernelVariant("softmax_causal", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.Rows), typeof(Flags.No))),
        new KernelVariant("softmax_backward", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.BackwardRows), typeof(Flags.No))),
        new KernelVariant("log_softmax_backward", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.BackwardRows), typeof(Flags.Yes))),
    };

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, _, rows, cols) in Tiers)
        {
            double rc = (double)rows * cols;
            yield return C("softmax", S(rows, cols), 5 * rc, 12 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Softmax(x).Dispose(), x); });
            yield return C("log_softmax", S(rows, cols), 5 * rc, 12 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.LogSoftmax(x).Dispose(), x); });
            int sq = Math.Min(cols, presets == Small ? 256 : 2048), heads = (int)(rc / ((double)sq * sq)) is var h && h > 0 ? h : 1;
            yield return C("softmax_causal", S(heads, sq, sq), 2.5 * heads * sq * sq, 6.0 * heads * sq * sq + 6.0 * heads * sq * sq, presets, (d, s) =>
            { var x = R(d, s, heads, sq, sq); return new(() => Ops.SoftmaxCausal(x).Dispose(), x); });
            yield return Step("softmax_backward", S(rows, cols), 9 * rc, 28 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, Trained(1), t => Ops.Softmax(t[0])));
            yield return Step("log_softmax_backward", S(rows, cols), 9 * rc, 28 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, Trained(1), t => Ops.LogSoftmax(t[0])));
        }
        double big = 1024.0 * 1024;
        yield return C("softmax", S(1024, 1024), 5 * big, 12 * big, CpuPreset, (d, s) => { var x = R(d, s, 1024, 1024); return new(() => Ops.Softmax(x).Dispose(), x); });
    }
}

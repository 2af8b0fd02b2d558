using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of layernorm and rmsnorm: the output and the saved statistics, with and without γ/β, and rows with a large common offset.</summary>
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
                    foreach (string output in new[] { "y", "mean", "rstd" })
                    {
                        if (output == "mean" && rms)
                            continue;
                        if (output != "y" && !affine)
                            continue;
                        yield return new CheckCase("normalization", kernel, $"{name}{(affine ? "" : "_no_affine")}_{output}", Shapes(shape) + (offset != 0 ? $" + {offset}" : ""),
                            CheckCase.Fp32Tolerance, (d, seed) =>
                            {
                                int cols = shape[^1], rows = (int)(ShapeUtil.Product(shape) / cols);
                                using var x = Tensor.RandomNormal(d, shape, seed, offset, 1f);
                                using var gamma = affine ? Tensor.RandomUniform(d, new[] { cols }, seed + 1, 0.5f, 1.5f) : null;
                                using var beta = affine && !rms ? Random(d, seed, 2, cols) : null;
                                const float eps = 1e-5f;
                                using var r = rms ? Ops.RmsNorm(x, gamma, eps) : Ops.LayerNorm(x, gamma, beta, eps);
                                var (y, mean, rstd) = NormalizationReference.Normalize(Host(x), rows, cols, gamma is null ? null : Host(gamma), beta is null ? null : Host(beta), eps, rms);
                                return output switch
                                {
                                    "mean" => new(r.Mean.ToArray(), mean),
                                    "rstd" => new(r.Rstd.ToArray(), rstd),
                                    _ => new(r.Output.ToArray(), y),
                                };
                            });
                    }
        }
    }
}

using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of the activation family: each function over a wide input range (both tails, and near 0).</summary>
internal static class ActivationChecks
{
    internal static IEnumerable<CheckCase> Cases()
    {
        var kernels = new (string Name, double Parameter, Func<Tensor, Tensor, Tensor> Op)[]
        {
            ("relu", 0, (x, o) => Ops.Relu(x, o)),
            ("relu6", 0, (x, o) => Ops.Relu6(x, o)),
            ("leaky_relu", 0.05, (x, o) => Ops.LeakyRelu(x, 0.05f, o)),
            ("gelu_erf", 0, (x, o) => Ops.GeluErf(x, o)),
            ("gelu_tanh", 0, (x, o) => Ops.GeluTanh(x, o)),
            ("silu", 0, (x, o) => Ops.Silu(x, o)),
            ("sigmoid", 0, (x, o) => Ops.Sigmoid(x, o)),
            ("tanh", 0, (x, o) => Ops.Tanh(x, o)),
            ("softplus", 0, (x, o) => Ops.Softplus(x, o)),
            ("elu", 1.5, (x, o) => Ops.Elu(x, 1.5f, o)),
            ("exp", 0.5, (x, o) => Ops.Exp(x, 0.5f, o)),
            ("scale", -1.75, (x, o) => Ops.Scale(x, -1.75f, o)),
        };
        var ranges = new (string Name, int[] Shape, float Scale)[]
        {
            ("tiny", new[] { 1 }, 1f),
            ("odd_wide", new[] { 37, 53 }, 12f),
            ("near_zero", new[] { 1031 }, 1e-3f),
            ("moderate", new[] { 64, 4099 }, 30f),
        };
        foreach (var (name, parameter, op) in kernels)
        {
            var reference = ActivationReference.Of(name, parameter);
            foreach (var (range, shape, scale) in ranges)
                yield return new CheckCase("activation", name, range, $"{Shapes(shape)} in ±{scale}", CheckCase.Fp32Tolerance, (d, seed) =>
                {
                    using var x = Tensor.RandomUniform(d, shape, seed, -scale, scale);
                    using var o = Poisoned(d, shape);
                    op(x, o);
                    return new(o.ToArray(), Host(x).Select(reference).ToArray());
                });
            yield return new CheckCase("activation", name, "strided", "[19, 23]ᵀ", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Tensor.RandomUniform(d, new[] { 19, 23 }, seed, -6, 6);
                using var xt = x.Transpose(0, 1);
                using var o = Poisoned(d, 23, 19);
                op(xt, o);
                var h = ElementwiseReference.StridedView(Host(x), new[] { 23, 19 }, new[] { 1, 23 }, 0);
                return new(o.ToArray(), h.Select(reference).ToArray());
            });
        }
    }

    internal static IEnumerable<CheckCase> BackwardActivations()
    {
        var kernels = new (string Name, double Parameter, Func<Tensor, Tensor> Op)[]
        {
            ("relu", 0, x => Ops.Relu(x)),
            ("relu6", 0, x => Ops.Relu6(x)),
            ("leaky_relu", 0.05, x => Ops.LeakyRelu(x, 0.05f)),
            ("gelu_erf", 0, x => Ops.GeluErf(x)),
            ("gelu_tanh", 0, x => Ops.GeluTanh(x)),
            ("silu", 0, x => Ops.Silu(x)),
            ("sigmoid", 0, x => Ops.Sigmoid(x)),
            ("tanh", 0, x => Ops.Tanh(x)),
            ("softplus", 0, x => Ops.Softplus(x)),
            ("elu", 1.5, x => Ops.Elu(x, 1.5f)),
            ("exp", 0.5, x => Ops.Exp(x, 0.5f)),
            ("scale", -1.75, x => Ops.Scale(x, -1.75f)),
        };
        // The one-element case draws from [0.25, 1]: a lone element near a zero of f′ (GELU's at −0.75, SiLU's at −1.28) would
        // turn float rounding into an unbounded relative error; the wide cases cover the whole line.
        static float[] Positive(int _, ulong seed)
        {
            var v = new float[1];
            Philox.FillUniform(v, seed, 0.25f, 1f);
            return v;
        }
        var shapes = new (string Name, int[] Shape, float Scale, Func<int, ulong, float[]>? Values)[]
        {
            ("tiny", new[] { 1 }, 1f, Positive),
            ("odd_wide", new[] { 37, 53 }, 6f, null),
            ("moderate", new[] { 64, 1031 }, 10f, null),
        };
        foreach (var (name, parameter, op) in kernels)
        {
            var f = ActivationReference.Of(name, parameter);
            var df = GradientReference.ActivationDerivative(name, parameter);
            foreach (var (shapeName, shape, scale, values) in shapes)
                yield return GradientCheck.Case(name + "_backward", shapeName, new[] { new GradientInput(shape, Scale: scale, Values: values) }, t => op(t[0]),
                    x => x[0].Select(f).ToArray(),
                    (x, g) => new[] { x[0].Select((v, i) => g[i] * df(v)).ToArray() });
        }
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new("activation", () => Cases().Concat(BackwardActivations()), Variants, Bench);

    /// <summary>Each activation: its kernel name, struct type, FLOPs per element and the op.</summary>
    private static readonly (string Name, Type Op, double Flops, Func<Tensor, Tensor> Run)[] Activations =
    {
        ("relu", typeof(Activation.Relu), 1, x => Ops.Relu(x)), ("relu6", typeof(Activation.Relu6), 2, x => Ops.Relu6(x)),
        ("leaky_relu", typeof(Activation.LeakyRelu), 2, x => Ops.LeakyRelu(x)),
        ("gelu_erf", typeof(Activation.GeluErf), 25, x => Ops.GeluErf(x)), ("gelu_tanh", typeof(Activation.GeluTanh), 14, x => Ops.GeluTanh(x)),
        ("silu", typeof(Activation.Silu), 5, x => Ops.Silu(x)), ("sigmoid", typeof(Activation.Sigmoid), 4, x => Ops.Sigmoid(x)),
        ("tanh", typeof(Activation.Tanh), 8, x => Ops.Tanh(x)), ("softplus", typeof(Activation.Softplus), 8, x => Ops.Softplus(x)),
        ("elu", typeof(Activation.Elu), 8, x => Ops.Elu(x)), ("exp", typeof(Activation.Exp), 5, x => Ops.Exp(x, 0.5f)),
        ("scale", typeof(Activation.Scale), 1, x => Ops.Scale(x, 1.5f)),
    };

    private static IEnumerable<KernelVariant> Variants() =>
        Activations.SelectMany(a => KernelCatalog.Activation(a.Name, a.Op)).Concat(Activations.SelectMany(a => ActivationBackward(a.Name, a.Op)));

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, n, _, _) in Tiers)
        {
            foreach (var (name, _, f, op) in Activations)
                yield return C(name, S(n), f * n, 8.0 * n, presets, (d, s) => { var x = R(d, s, n); return new(() => op(x).Dispose(), x); });
            foreach (var (name, _, f, op) in Activations)
                yield return Step(name + "_backward", S(n), (2 * f + 1) * n, 20.0 * n, presets, (d, s) => (new[] { R(d, s, n) }, Trained(1), t => op(t[0])));
        }
    }
}

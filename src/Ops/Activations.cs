using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>max(x, 0). Kernel <c>relu</c>.</summary>
    public static Tensor Relu(Tensor x, Tensor? output = null) => Activate("relu", x, output, new Activation.Relu());

    /// <summary>min(max(x, 0), 6). Kernel <c>relu6</c>.</summary>
    public static Tensor Relu6(Tensor x, Tensor? output = null) => Activate("relu6", x, output, new Activation.Relu6());

    /// <summary>x ≥ 0 ? x : slope·x. Kernel <c>leaky_relu</c>.</summary>
    public static Tensor LeakyRelu(Tensor x, float slope = 0.01f, Tensor? output = null) => Activate("leaky_relu", x, output, new Activation.LeakyRelu { Slope = slope });

    /// <summary>Exact GELU, ½x(1 + erf(x/√2)). Kernel <c>gelu_erf</c>.</summary>
    public static Tensor GeluErf(Tensor x, Tensor? output = null) => Activate("gelu_erf", x, output, new Activation.GeluErf());

    /// <summary>Tanh-approximated GELU. Kernel <c>gelu_tanh</c>.</summary>
    public static Tensor GeluTanh(Tensor x, Tensor? output = null) => Activate("gelu_tanh", x, output, new Activation.GeluTanh());

    /// <summary>x·σ(x). Kernel <c>silu</c>.</summary>
    public static Tensor Silu(Tensor x, Tensor? output = null) => Activate("silu", x, output, new Activation.Silu());

    /// <summary>σ(x). Kernel <c>sigmoid</c>.</summary>
    public static Tensor Sigmoid(Tensor x, Tensor? output = null) => Activate("sigmoid", x, output, new Activation.Sigmoid());

    /// <summary>tanh x. Kernel <c>tanh</c>.</summary>
    public static Tensor Tanh(Tensor x, Tensor? output = null) => Activate("tanh", x, output, new Activation.Tanh());

    /// <summary>log(1 + eˣ) (linear above 20). Kernel <c>softplus</c>.</summary>
    public static Tensor Softplus(Tensor x, Tensor? output = null) => Activate("softplus", x, output, new Activation.Softplus());

    /// <summary>x &gt; 0 ? x : alpha(eˣ − 1). Kernel <c>elu</c>.</summary>
    public static Tensor Elu(Tensor x, float alpha = 1f, Tensor? output = null) => Activate("elu", x, output, new Activation.Elu { Alpha = alpha });

    /// <summary>e^(scale·x). Kernel <c>exp</c>.</summary>
    public static Tensor Exp(Tensor x, float scale = 1f, Tensor? output = null) => Activate("exp", x, output, new Activation.Exp { Scale = scale });

    /// <summary>factor·x. Kernel <c>scale</c>.</summary>
    public static Tensor Scale(Tensor x, float factor, Tensor? output = null) => Activate("scale", x, output, new Activation.Scale { Factor = factor });

    /// <summary>
    /// Applies an activation elementwise and, when the tape records, its backward: dx = dy·f′(x) by the activation's
    /// backward kernel (<c>NAME_backward</c>), from x saved by the forward.
    /// </summary>
    public static Tensor Activate<TOp>(string name, Tensor x, Tensor? output, TOp op) where TOp : struct, IDifferentiableUnaryOp
    {
        var y = Unary(name, x, output, op);
        if (Autograd.ShouldRecord(x))
        {
            var saved = Autograd.Save(x);
            Autograd.Record(name, y, new[] { x }, (g, _) => new[] { ActivationBackward(name, g, saved, op) }, saved);
        }
        return y;
    }

    /// <summary>dx = dy·f′(x) for the activation <paramref name="op"/> (kernel <c>NAME_backward</c>): the gradient of <see cref="Activate{TOp}"/>.</summary>
    public static Tensor ActivationBackward<TOp>(string name, Tensor dy, Tensor x, TOp op, Tensor? output = null) where TOp : struct, IDifferentiableUnaryOp
    {
        if (!dy.Shape.SequenceEqual(x.Shape))
            throw new ShapeMismatchException(name + "_backward", "dy", GpuNetException.FormatShape(x.ShapeArray()), GpuNetException.FormatShape(dy.ShapeArray()));
        return Binary(name + "_backward", dy, x, output, new Activation.Backward<TOp> { Op = op });
    }
}

using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>Softmax over the last axis. Kernel <c>softmax</c>.</summary>
    /// <remarks>A row whose entries are all −∞ gives all zeros, where PyTorch gives NaN: a chosen difference, the same as a
    /// fully masked row of <see cref="SoftmaxCausal"/> and of attention (a padded query attends to nothing and contributes
    /// nothing, instead of spreading NaN through the batch). A row holding NaN gives NaN, as in PyTorch.</remarks>
    public static Tensor Softmax(Tensor x, Tensor? output = null) => SoftmaxLastAxis<Flags.No>("softmax", x, output, causal: false, 0);

    /// <summary>log(softmax(x)) over the last axis, computed as x − max − log Σ exp(x − max). Kernel <c>log_softmax</c>.</summary>
    public static Tensor LogSoftmax(Tensor x, Tensor? output = null) => SoftmaxLastAxis<Flags.Yes>("log_softmax", x, output, causal: false, 0);

    /// <summary>
    /// Softmax over the last axis of [..., Nq, Nk] scores with column j masked out of row i when
    /// j &gt; i + <paramref name="offset"/> (offset = Nk − Nq aligns the diagonal to the end, as for a
    /// query block at the end of a longer key sequence). A fully masked row is all zeros. Kernel <c>softmax_causal</c>.
    /// </summary>
    public static Tensor SoftmaxCausal(Tensor x, int offset = 0, Tensor? output = null) => SoftmaxLastAxis<Flags.No>("softmax_causal", x, output, causal: true, offset);

    private static Tensor SoftmaxLastAxis<TLog>(string name, Tensor x, Tensor? output, bool causal, int offset) where TLog : struct, IFlag
    {
        var device = Validate.Input(name, "x", x);
        if (x.Rank < (causal ? 2 : 1))
            throw new ShapeMismatchException(name, "x", causal ? "scores [..., Nq, Nk] (rank ≥ 2)" : "a tensor of rank ≥ 1", GpuNetException.FormatShape(x.ShapeArray()));
        var o = Validate.OutputOrNew(name, output, device, x.ShapeArray());
        using (var xc = x.Contiguous())
            SoftmaxKernels.Launch<TLog>(name, xc, o, causal ? 1 : 0, causal ? x.Size(-2) : 1, offset);
        if (Autograd.ShouldRecord(x))
        {
            var y = Autograd.Save(o);
            Autograd.Record(name, o, new[] { x }, (g, _) => new[] { SoftmaxBackward<TLog>(default(TLog).Value ? "log_softmax_backward" : "softmax_backward", y, g) }, y);
        }
        return o;
    }

    /// <summary>
    /// The gradient of softmax over the last axis from its output <paramref name="y"/> and the output gradient
    /// <paramref name="dy"/>: y ⊙ (dy − Σ dy⊙y). Causal softmax has the same backward (masked entries have y = 0).
    /// Kernel <c>softmax_backward</c>.
    /// </summary>
    public static Tensor SoftmaxBackward(Tensor y, Tensor dy, Tensor? output = null) => SoftmaxBackward<Flags.No>("softmax_backward", y, dy, output);

    /// <summary>The gradient of log-softmax from its output y and dy: dy − eʸ·Σ dy. Kernel <c>log_softmax_backward</c>.</summary>
    public static Tensor LogSoftmaxBackward(Tensor y, Tensor dy, Tensor? output = null) => SoftmaxBackward<Flags.Yes>("log_softmax_backward", y, dy, output);

    private static Tensor SoftmaxBackward<TLog>(string name, Tensor y, Tensor dy, Tensor? output = null) where TLog : struct, IFlag
    {
        var device = Validate.Input(name, "y", y);
        Validate.Input(name, "dy", dy, device);
        if (!dy.Shape.SequenceEqual(y.Shape))
            throw new ShapeMismatchException(name, "dy", GpuNetException.FormatShape(y.ShapeArray()), GpuNetException.FormatShape(dy.ShapeArray()));
        if (y.Rank < 1)
            throw new ShapeMismatchException(name, "y", "a tensor of rank ≥ 1", "a scalar");
        var dx = Validate.OutputOrNew(name, output, device, y.ShapeArray());
        using var yc = y.Contiguous();
        using var gc = dy.Contiguous();
        SoftmaxKernels.LaunchBackward<TLog>(name, yc, gc, dx);
        Autograd.RecordNoGradient(name, dx, y, dy);
        return dx;
    }
}

using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>LayerNorm over the last axis: (x − mean)/√(var + ε)·γ + β (biased variance, as PyTorch). γ, β optional [C]. Kernel <c>layernorm</c>.</summary>
    public static NormResult LayerNorm(Tensor x, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f) =>
        NormalizeLastAxis<Flags.No>("layernorm", x, gamma, beta, eps);

    /// <summary>RMSNorm over the last axis: x/√(mean(x²) + ε)·γ. γ optional [C]. Kernel <c>rmsnorm</c>.</summary>
    public static NormResult RmsNorm(Tensor x, Tensor? gamma = null, float eps = 1e-6f) =>
        NormalizeLastAxis<Flags.Yes>("rmsnorm", x, gamma, null, eps);

    private static NormResult NormalizeLastAxis<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, float eps) where TRms : struct, IFlag
    {
        Validate.Input(name, "x", x);
        if (x.Rank < 1)
            throw new ShapeMismatchException(name, "x", "a tensor of rank ≥ 1", "a scalar");
        int cols = x.Size(-1), rows = cols == 0 ? 0 : x.Length / cols;
        return Normalize<TRms>(name, x, gamma, beta, eps, NormLayout.LastAxis(rows, cols), cols, x.ShapeArray()[..^1]);
    }

    /// <summary>
    /// GroupNorm of x [N, C, *] over <paramref name="groups"/> groups of C/groups channels (and all spatial positions),
    /// γ and β per channel. Mean and rstd are [N, groups]. Kernel <c>groupnorm</c>.
    /// </summary>
    public static NormResult GroupNorm(Tensor x, int groups, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f)
    {
        const string op = "groupnorm";
        Validate.Input(op, "x", x);
        if (x.Rank < 2)
            throw new ShapeMismatchException(op, "x", "[N, C, *] (rank ≥ 2)", GpuNetException.FormatShape(x.ShapeArray()));
        int n = x.Size(0), c = x.Size(1), spatial = (int)ShapeUtil.Product(x.ShapeArray().AsSpan(2));
        if (groups < 1 || c % groups != 0)
            throw new ShapeMismatchException(op, "groups", $"a divisor of C = {c}", groups.ToString());
        int cols = c / groups * spatial;
        var layout = new NormLayout { Rows = n * groups, Cols = cols, RowStride = cols, SegLen = Math.Max(cols, 1), AffineGroups = groups, Spatial = Math.Max(spatial, 1) };
        return Normalize<Flags.No>(op, x, gamma, beta, eps, layout, c, new[] { n, groups });
    }

    /// <summary>
    /// BatchNorm2d in training mode: per-channel statistics over N·H·W of x [N, C, H, W], normalize with them,
    /// and update <paramref name="runningMean"/> / <paramref name="runningVar"/> in place with
    /// <paramref name="momentum"/> (running var uses the unbiased batch variance, as PyTorch). Mean and rstd are [C]. Kernel <c>batchnorm2d_train</c>.
    /// </summary>
    public static NormResult BatchNorm2dTrain(Tensor x, Tensor? gamma = null, Tensor? beta = null, Tensor? runningMean = null, Tensor? runningVar = null,
        float momentum = 0.1f, float eps = 1e-5f)
    {
        const string op = "batchnorm2d_train";
        var device = Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 4);
        int n = x.Size(0), c = x.Size(1), spatial = x.Size(2) * x.Size(3), count = n * spatial;
        if (count < 2 && runningVar is not null)
            throw new ShapeMismatchException(op, "x", "more than one value per channel (N·H·W ≥ 2) to estimate a variance", GpuNetException.FormatShape(x.ShapeArray()));
        CheckChannelVector(op, "running_mean", runningMean, c, device);
        CheckChannelVector(op, "running_var", runningVar, c, device);
        var layout = new NormLayout
        {
            Rows = c, Cols = count, RowStride = spatial, SegLen = Math.Max(spatial, 1), SegStride = c * spatial, AffineGroups = c, Spatial = Math.Max(count, 1), HasVar = 1,
        };
        using var variance = Tensor.Empty(device, c);
        var result = Normalize<Flags.No>(op, x, gamma, beta, eps, layout, c, new[] { c }, variance);
        if (runningMean is not null)
            ElementwiseKernels.MapBinary(op, runningMean, result.Mean, runningMean, new ElementwiseOps.MomentumUpdate { Momentum = momentum, Scale = 1 });
        if (runningVar is not null)
            ElementwiseKernels.MapBinary(op, runningVar, variance, runningVar, new ElementwiseOps.MomentumUpdate { Momentum = momentum, Scale = count / (count - 1f) });
        return result;
    }

    /// <summary>
    /// BatchNorm2d in inference mode: the running statistics and γ/β are folded into a per-channel scale and shift,
    /// then one pass computes y = x·scale[c] + shift[c]. Kernel <c>batchnorm2d_infer</c>.
    /// </summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>batchnorm2d_infer</c>.</remarks>
    public static Tensor BatchNorm2dInfer(Tensor x, Tensor runningMean, Tensor runningVar, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f)
    {
        var r = BatchNorm2dInferCore(x, runningMean, runningVar, gamma, beta, eps);
        Autograd.RecordNoGradient("batchnorm2d_infer", r, x, runningMean, runningVar, gamma, beta);
        return r;
    }

    private static Tensor BatchNorm2dInferCore(Tensor x, Tensor runningMean, Tensor runningVar, Tensor? gamma = null, Tensor? beta = null, float eps = 1e-5f)
    {
        const string op = "batchnorm2d_infer";
        var device = Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 4);
        int c = x.Size(1), spatial = x.Size(2) * x.Size(3);
        CheckChannelVector(op, "running_mean", runningMean, c, device);
        CheckChannelVector(op, "running_var", runningVar, c, device);
        CheckChannelVector(op, "gamma", gamma, c, device);
        CheckChannelVector(op, "beta", beta, c, device);
        using var xc = x.Contiguous();
        return NormalizationKernels.RunBatchNormInfer(op, device, xc, runningMean, runningVar, gamma, beta, eps);
    }

    private static void CheckChannelVector(string op, string name, Tensor? t, int channels, Device device)
    {
        if (t is null)
            return;
        Validate.Input(op, name, t, device);
        if (t.Rank != 1 || t.Length != channels || !t.IsContiguous)
            throw new ShapeMismatchException(op, name, $"a contiguous vector [{channels}] (one per channel)", t.Describe());
    }

    /// <summary>
    /// Records the backward of a normalization: dx by the backward kernel, dγ and dβ by deterministic sums of dy·x̂ and dy
    /// over everything but the affine index — the leading axes for LayerNorm/RMSNorm ([..., C]), batch and spatial axes for
    /// GroupNorm/BatchNorm ([N, C, spatial]).
    /// </summary>
    private static void RecordNormalize<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, NormLayout layout, NormResult result) where TRms : struct, IFlag
    {
        Autograd.RecordNoGradient(name + " (statistics output)", result.Mean, x, gamma, beta);
        Autograd.RecordNoGradient(name + " (statistics output)", result.Rstd, x, gamma, beta);
        var saved = new[] { Autograd.Save(x), Autograd.Save(result.Mean), Autograd.Save(result.Rstd) }
            .Concat(gamma is null ? Array.Empty<Tensor>() : new[] { Autograd.Save(gamma) }).ToArray();
        var shape = x.ShapeArray();
        bool lastAxis = layout.AffineGroups == 1 && layout.Spatial == 1;
        int channels = gamma?.Length ?? beta?.Length ?? 0;
        Autograd.Record(name, result.Output, new[] { x, gamma, beta }, (g, needs) =>
        {
            using var xc = saved[0].Contiguous();
            using var gc = g.Contiguous();
            var dx = Tensor.Empty(xc.Device, shape);
            using var product = Tensor.Empty(xc.Device, shape);
            if (layout.Rows > 0 && layout.Cols > 0)
                NormalizationKernels.LaunchBackward<TRms>(name + "_backward", xc, gamma is null ? null : saved[3], gc, saved[1], saved[2], dx, product, layout);
            Tensor? AffineSum(Tensor t)
            {
                if (lastAxis)
                    return SumToShape(t, new[] { channels });
                using var grouped = t.Reshape(shape[0], shape[1], -1);
                using var summed = SumToShape(grouped, new[] { 1, channels, 1 });
                return summed.Reshape(channels);
            }
            return new[] { needs[0] ? dx : Dispose(dx), needs[1] ? AffineSum(product) : null, needs[2] ? AffineSum(gc) : null };
        }, saved);
    }

    private static Tensor? Dispose(Tensor t)
    {
        t.Dispose();
        return null;
    }

    /// <summary>Runs the normalization kernel over <paramref name="layout"/>; γ/β have <paramref name="affineLength"/> entries, the statistics <paramref name="statShape"/>.</summary>
    private static NormResult Normalize<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, float eps, NormLayout layout, int affineLength,
        int[] statShape, Tensor? variance = null) where TRms : struct, IFlag
    {
        var device = Validate.DeviceOf(name, "x", x);
        CheckChannelVector(name, "gamma", gamma, affineLength, device);
        CheckChannelVector(name, "beta", beta, affineLength, device);
        if (!(eps >= 0))
            throw new InvalidArgumentException(name, "eps", "eps ≥ 0", eps.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var result = NormalizeRows<TRms>(name, x, gamma, beta, eps, layout, statShape, variance);
        if (Autograd.ShouldRecord(x, gamma, beta))
            RecordNormalize<TRms>(name, x, gamma, beta, layout, result);
        return result;
    }

    private static NormResult NormalizeRows<TRms>(string name, Tensor x, Tensor? gamma, Tensor? beta, float eps, NormLayout layout,
        int[] statShape, Tensor? variance) where TRms : struct, IFlag
    {
        var device = Validate.DeviceOf(name, "x", x);
        var y = Tensor.Empty(device, x.ShapeArray());
        var mean = Tensor.Empty(device, statShape);
        var rstd = Tensor.Empty(device, statShape);
        if (layout.Rows > 0 && layout.Cols > 0)
        {
            using var xc = x.Contiguous();
            layout.HasGamma = gamma is null ? 0 : 1;
            layout.HasBeta = beta is null ? 0 : 1;
            NormalizationKernels.RunRows<TRms>(name, device, xc, gamma, beta, y, mean, rstd, variance, layout, eps);
        }
        return new NormResult(y, mean, rstd);
    }
}

using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// Cross-entropy of logits [N, C] against class indices [N] (held as floats), as torch.nn.functional.cross_entropy:
    /// label smoothing ε mixes the one-hot target with the uniform distribution; rows whose target is
    /// <paramref name="ignoreIndex"/> contribute nothing and do not count in the mean. Fused kernels
    /// <c>cross_entropy</c> (forward) and <c>cross_entropy_backward</c>; the mean is Σ loss / Σ weight by ops that record too.
    /// </summary>
    /// <exception cref="ShapeMismatchException">Shapes do not fit.</exception>
    /// <exception cref="InvalidArgumentException">A target is not a class index in [0, C) nor the ignored one, or the smoothing is outside [0, 1].</exception>
    public static Tensor CrossEntropy(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean, int ignoreIndex = -100, float labelSmoothing = 0f)
    {
        const string op = "cross_entropy";
        var device = Validate.DeviceOf(op, "logits", logits);
        if (!(labelSmoothing >= 0f && labelSmoothing <= 1f))
            throw new InvalidArgumentException(op, "labelSmoothing", "a value in [0, 1]", labelSmoothing.ToString());
        var (rows, _, labels) = CheckClassTargets(op, logits, target, ignoreIndex);
        using var _labels = labels;
        target = labels ?? target;

        var loss = Tensor.Empty(device, rows);
        using var weight = Tensor.Empty(device, rows);
        var lse = Tensor.Empty(device, rows);
        using (var xc = logits.Contiguous())
        using (var tc = target.Contiguous())
            if (rows > 0)
                CrossEntropyKernels.LaunchRows(xc, tc, loss, lse, weight, ignoreIndex, labelSmoothing);
        if (Autograd.ShouldRecord(logits))
        {
            var savedX = Autograd.Save(logits);
            var savedT = Autograd.Save(target);
            var savedLse = Autograd.Save(lse);
            Autograd.Record(op, loss, new[] { logits }, (g, _) =>
            {
                using var xc = savedX.Contiguous();
                using var tc = savedT.Contiguous();
                using var gc = g.Contiguous();
                var dx = Tensor.Empty(xc.Device, xc.ShapeArray());
                if (dx.Length > 0)
                    CrossEntropyKernels.LaunchBackward(xc, tc, savedLse, gc, dx, ignoreIndex, labelSmoothing);
                return new[] { dx };
            }, savedX, savedT, savedLse);
        }
        lse.Dispose();
        return Reduce(loss, weight, reduction);
    }

    /// <summary>
    /// Cross-entropy against target probabilities [N, C] (soft labels): −Σ_j p_j·log_softmax(x)_j per row, with label
    /// smoothing applied to p. Composed of recorded ops (log_softmax, mul, sums), so its gradient flows to the logits and to p.
    /// </summary>
    public static Tensor CrossEntropyWithProbabilities(Tensor logits, Tensor probabilities, Reduction reduction = Reduction.Mean, float labelSmoothing = 0f)
    {
        const string op = "cross_entropy";
        Validate.Input(op, "logits", logits);
        Validate.Input(op, "probabilities", probabilities, logits.Device);
        Validate.Rank(op, "logits", logits, 2);
        if (!probabilities.Shape.SequenceEqual(logits.Shape))
            throw new ShapeMismatchException(op, "probabilities", GpuNetException.FormatShape(logits.ShapeArray()), GpuNetException.FormatShape(probabilities.ShapeArray()));
        using var logp = LogSoftmax(logits);
        using var scaled = labelSmoothing == 0f ? null : Scale(probabilities, 1f - labelSmoothing);
        using var smoothed = scaled is null ? null : AddScalarValue(scaled, labelSmoothing / logits.Size(1));
        using var product = Mul(smoothed ?? probabilities, logp);
        using var rowSum = SumLastAxis(product);
        var perRow = Scale(rowSum, -1f);
        return Reduce(perRow, null, reduction);
    }

    /// <summary>
    /// Mean squared error (pred − target)², as torch.nn.functional.mse_loss (target broadcast to pred's shape).
    /// Composed of recorded ops: sub, mul, then the reduction.
    /// </summary>
    public static Tensor MseLoss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        const string op = "mse_loss";
        Validate.Input(op, "prediction", prediction);
        Validate.Input(op, "target", target, prediction.Device);
        using var diff = Sub(prediction, target);
        return Reduce(Mul(diff, diff), null, reduction);
    }

    /// <summary>
    /// Binary cross-entropy of logits against targets in [0, 1], as torch.nn.functional.binary_cross_entropy_with_logits:
    /// softplus(x) − x·t per element (stable for any |x|). Composed of recorded ops.
    /// </summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean)
    {
        const string op = "binary_cross_entropy_with_logits";
        Validate.Input(op, "logits", logits);
        Validate.Input(op, "target", target, logits.Device);
        using var soft = Softplus(logits);
        using var xt = Mul(logits, target);
        return Reduce(Sub(soft, xt), null, reduction);
    }

    /// <summary>
    /// KL divergence of a VAE's diagonal Gaussian N(μ, e^logvar) from N(0, I): −½·Σ(1 + logvar − μ² − e^logvar) over the last
    /// axis, then the batch reduction (mean over rows for <see cref="Reduction.Mean"/>, as the seed VAE's loss). Composed of recorded ops.
    /// </summary>
    public static Tensor GaussianKl(Tensor mu, Tensor logvar, Reduction reduction = Reduction.Mean)
    {
        const string op = "gaussian_kl";
        Validate.Input(op, "mu", mu);
        Validate.Input(op, "logvar", logvar, mu.Device);
        if (!mu.Shape.SequenceEqual(logvar.Shape))
            throw new ShapeMismatchException(op, "logvar", GpuNetException.FormatShape(mu.ShapeArray()), GpuNetException.FormatShape(logvar.ShapeArray()));
        using var mu2 = Mul(mu, mu);
        using var variance = Exp(logvar);
        using var a = Sub(logvar, mu2);
        using var b = Sub(a, variance);
        using var c = AddScalarValue(b, 1f);
        using var rowSum = SumLastAxis(c);
        return Reduce(Scale(rowSum, -0.5f), null, reduction);
    }

    /// <summary>Mean absolute error |pred − target| (torch.nn.functional.l1_loss). Kernel <c>l1_loss</c> and its backward sign(d).</summary>
    public static Tensor L1Loss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean) =>
        PointwiseLoss("l1_loss", prediction, target, reduction, new LossOps.Abs());

    /// <summary>Smooth L1 (torch.nn.functional.smooth_l1_loss): ½d²/β below β, |d| − ½β above. Kernel <c>smooth_l1_loss</c>.</summary>
    public static Tensor SmoothL1Loss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean, float beta = 1f) =>
        beta <= 0 ? L1Loss(prediction, target, reduction) : PointwiseLoss("smooth_l1_loss", prediction, target, reduction, new LossOps.SmoothL1 { Beta = beta });

    /// <summary>Huber loss (torch.nn.functional.huber_loss): ½d² up to δ, δ(|d| − ½δ) beyond. Kernel <c>huber_loss</c>.</summary>
    public static Tensor HuberLoss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean, float delta = 1f)
    {
        if (!(delta > 0))
            throw new InvalidArgumentException("huber_loss", "delta", "a positive threshold", delta.ToString());
        return PointwiseLoss("huber_loss", prediction, target, reduction, new LossOps.Huber { Delta = delta });
    }

    private static Tensor PointwiseLoss<TOp>(string op, Tensor prediction, Tensor target, Reduction reduction, TOp f) where TOp : struct, IDifferentiableUnaryOp
    {
        Validate.Input(op, "prediction", prediction);
        Validate.Input(op, "target", target, prediction.Device);
        using var diff = Sub(prediction, target);
        return Reduce(Activate(op, diff, null, f), null, reduction);
    }

    /// <summary>
    /// KL divergence of log-probabilities <paramref name="input"/> from probabilities <paramref name="target"/>, pointwise
    /// target·(log target − input) with 0·log 0 = 0 (torch.nn.functional.kl_div, log_target false); use
    /// <see cref="Reduction.BatchMean"/> for the true KL per sample. Composed of recorded ops (kernel <c>kl_div</c> for t·log t).
    /// </summary>
    public static Tensor KlDiv(Tensor input, Tensor target, Reduction reduction = Reduction.Mean)
    {
        const string op = "kl_div";
        Validate.Input(op, "input", input);
        Validate.Input(op, "target", target, input.Device);
        using var entropyTerm = Activate(op, target, null, new LossOps.XLogX());
        using var cross = Mul(target, input);
        return Reduce(Sub(entropyTerm, cross), null, reduction);
    }

    /// <summary>
    /// Negative log-likelihood of log-probabilities [N, C] at class indices [N] (torch.nn.functional.nll_loss), ignored class
    /// excluded from the mean. Kernels <c>nll_loss</c> and <c>nll_loss_backward</c>.
    /// </summary>
    public static Tensor NllLoss(Tensor logProbabilities, Tensor target, Reduction reduction = Reduction.Mean, int ignoreIndex = -100)
    {
        const string op = "nll_loss";
        var device = Validate.DeviceOf(op, "logProbabilities", logProbabilities);
        var (rows, classes, labels) = CheckClassTargets(op, logProbabilities, target, ignoreIndex);
        using var _labels = labels;
        target = labels ?? target;
        var loss = Tensor.Empty(device, rows);
        using var weight = Tensor.Empty(device, rows);
        if (rows > 0)
        {
            using var xc = logProbabilities.Contiguous();
            using var tc = target.Contiguous();
            var (xv, tv, lv, wv) = (xc.ContiguousView, tc.ContiguousView, loss.ContiguousView, weight.ContiguousView);
            NllKernels.RunRows(op, device, xv, tv, lv, wv, classes, ignoreIndex, rows);
        }
        if (Autograd.ShouldRecord(logProbabilities))
        {
            var savedT = Autograd.Save(target);
            var shape = logProbabilities.ShapeArray();
            Autograd.Record(op, loss, new[] { logProbabilities }, (g, _) =>
            {
                var dx = Tensor.Empty(g.Device, shape);
                if (dx.Length == 0)
                    return new[] { dx };
                using var gc = g.Contiguous();
                using var tc = savedT.Contiguous();
                var (tv, gv, dv, n) = (tc.ContiguousView, gc.ContiguousView, dx.ContiguousView, dx.Length);
                NllKernels.RunBackward(op + "_backward", g.Device, tv, gv, dv, classes, ignoreIndex, n);
                return new[] { dx };
            }, savedT);
        }
        return Reduce(loss, weight, reduction);
    }

    /// <summary>Σ|p| over every tensor given (an L1 penalty on parameters), recorded: add λ· it to a loss.</summary>
    public static Tensor L1Penalty(IEnumerable<Tensor> parameters) => Penalty("l1_penalty", parameters, p => Activate("l1_penalty", p, null, new LossOps.Abs()));

    /// <summary>Σp² over every tensor given (an L2 penalty on parameters), recorded.</summary>
    public static Tensor L2Penalty(IEnumerable<Tensor> parameters) => Penalty("l2_penalty", parameters, p => Mul(p, p));

    private static Tensor Penalty(string op, IEnumerable<Tensor> parameters, Func<Tensor, Tensor> term)
    {
        Tensor? total = null;
        foreach (var p in Validate.NotNull(op, "parameters", parameters))
        {
            Validate.Input(op, "parameter", p, total?.Device ?? p.Device);
            using var t = term(p);
            var s = SumAll(t);
            if (total is null)
                total = s;
            else
                using (s)
                using (var previous = total)
                    total = Add(previous, s);
        }
        return total ?? throw new ShapeMismatchException(op, "parameters", "at least one parameter", "an empty list");
    }

    /// <summary>
    /// Shapes and class ids of a classification loss, checked on the host before anything runs: each target a class index in
    /// [0, C) or the ignore index. Int32 labels are checked as integers and come back as the float32 values the loss kernels
    /// read (exact: class counts stay far below 2²⁴), for the caller to dispose; float labels come back null.
    /// </summary>
    private static (int Rows, int Classes, Tensor? FloatLabels) CheckClassTargets(string op, Tensor x, Tensor target, int ignoreIndex)
    {
        var device = Validate.DeviceOf(op, "x", x);
        Validate.Input(op, "input", x, device);
        Validate.DeviceOf(op, "target", target);
        bool integers = target.DType == DType.Int32;
        Validate.Input(op, "target", target, device, integers ? DType.Int32 : DType.Float32);
        Validate.Rank(op, "input", x, 2);
        int rows = x.Size(0), classes = x.Size(1);
        if (target.Rank != 1 || target.Length != rows)
            throw new ShapeMismatchException(op, "target", $"class indices [{rows}]", integers ? target.Describe() : GpuNetException.FormatShape(target.ShapeArray()));
        if (!integers && target.RequiresGrad)
            throw new NoGradientException(op, "argument 'target' (class indices) has no gradient; Detach() it");
        int[]? ints = integers ? target.ToInt32Array() : null;
        float[] ids = ints is null ? target.ToArray() : Array.ConvertAll(ints, v => (float)v);
        for (int i = 0; i < ids.Length; i++)
        {
            bool valid = ints is null
                ? ids[i] == ignoreIndex || ids[i] >= 0 && ids[i] < classes && ids[i] == MathF.Floor(ids[i])
                : ints[i] == ignoreIndex || ints[i] >= 0 && ints[i] < classes;
            if (!valid)
                throw new InvalidArgumentException(op, "target", $"class indices in [0, {classes}) or the ignore index {ignoreIndex}",
                    $"{(ints is null ? ids[i].ToString() : ints[i].ToString())} at row {i}");
        }
        return (rows, classes, ints is null ? null : Tensor.FromArray(device, ids, rows));
    }

    /// <summary>x + value, recording (the gradient passes through unchanged).</summary>
    private static Tensor AddScalarValue(Tensor x, float value)
    {
        var y = Unary("add_scalar", x, null, new ElementwiseOps.AddScalar { Value = value });
        RecordCopy("add_scalar", x, y);
        return y;
    }

    /// <summary>Applies a loss reduction to per-element values, consuming them; with weights, the mean is Σ values / Σ weights.</summary>
    private static Tensor Reduce(Tensor values, Tensor? weights, Reduction reduction)
    {
        if (reduction == Reduction.None)
            return values;
        using (values)
        {
            if (reduction == Reduction.Sum)
                return SumAll(values);
            if (reduction == Reduction.BatchMean)
            {
                using var sum = SumAll(values);
                return Scale(sum, 1f / Math.Max(values.Rank == 0 ? 1 : values.Size(0), 1));
            }
            if (weights is null)
                return MeanAll(values);
            using var total = SumAll(values);
            using var count = SumAll(weights);
            return Div(total, count);
        }
    }
}

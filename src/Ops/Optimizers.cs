using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    private static void CheckState(string op, Tensor p, Tensor g, params (string Name, Tensor? T)[] state)
    {
        var device = Validate.Input(op, "param", p);
        Validate.Input(op, "grad", g, device);
        if (!p.IsContiguous)
            throw new ShapeMismatchException(op, "param", "a contiguous parameter", p.Describe());
        if (!g.Shape.SequenceEqual(p.Shape) || !g.IsContiguous)
            throw new ShapeMismatchException(op, "grad", $"a contiguous {GpuNetException.FormatShape(p.ShapeArray())}", g.Describe());
        foreach (var (name, t) in state)
            if (t is not null)
            {
                Validate.Input(op, name, t, device);
                if (!t.Shape.SequenceEqual(p.Shape) || !t.IsContiguous)
                    throw new ShapeMismatchException(op, name, $"a contiguous {GpuNetException.FormatShape(p.ShapeArray())}", t.Describe());
            }
    }

    /// <summary>One Adam/AdamW step in place on <paramref name="param"/> and its moments (and running max for AMSGrad). Kernel <c>adam_step</c>.</summary>
    public static void AdamUpdate(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? vMax, AdamStep step)
    {
        const string op = "adam_step";
        CheckState(op, param, grad, ("exp_avg", Validate.NotNull(op, "exp_avg", m)), ("exp_avg_sq", Validate.NotNull(op, "exp_avg_sq", v)), ("max_exp_avg_sq", vMax));
        if (step.AmsGrad != 0 && vMax is null)
            throw new MissingArgumentException(op, "max_exp_avg_sq", "the max_exp_avg_sq state (AMSGrad)");
        var (pv, gv, mv, vv, xv, n) = (param.ContiguousView, grad.ContiguousView, m.ContiguousView, v.ContiguousView, (vMax ?? v).ContiguousView, param.Length);
        var device = Validate.DeviceOf(op, "param", param);
        if (n == 0)
            return;
        OptimizerKernels.RunAdam(op, device, pv, gv, mv, vv, xv, step, n);
    }

    /// <summary>One SGD step in place (momentum buffer may be null when momentum is 0). Kernel <c>sgd_step</c>.</summary>
    public static void SgdUpdate(Tensor param, Tensor grad, Tensor? buffer, SgdStep step)
    {
        const string op = "sgd_step";
        CheckState(op, param, grad, ("momentum_buffer", buffer));
        if (step.Momentum != 0f && buffer is null)
            throw new MissingArgumentException(op, "momentum_buffer", "the momentum_buffer state (momentum ≠ 0)");
        var (pv, gv, bv, n) = (param.ContiguousView, grad.ContiguousView, (buffer ?? grad).ContiguousView, param.Length);
        var device = Validate.DeviceOf(op, "param", param);
        if (n == 0)
            return;
        OptimizerKernels.RunSgd(op, device, pv, gv, bv, step, n);
    }

    /// <summary>One RMSprop step in place (mean for the centered variant, buffer for momentum; null otherwise). Kernel <c>rmsprop_step</c>.</summary>
    public static void RmsPropUpdate(Tensor param, Tensor grad, Tensor square, Tensor? mean, Tensor? buffer, RmsPropStep step)
    {
        const string op = "rmsprop_step";
        CheckState(op, param, grad, ("square_avg", Validate.NotNull(op, "square_avg", square)), ("grad_avg", mean), ("momentum_buffer", buffer));
        if ((step.Centered != 0 && mean is null) || (step.Momentum > 0 && buffer is null))
            throw new MissingArgumentException(op, mean is null && step.Centered != 0 ? "grad_avg" : "momentum_buffer",
                "grad_avg for the centered variant and momentum_buffer for momentum > 0");
        var (pv, gv, sv, mv, bv, n) = (param.ContiguousView, grad.ContiguousView, square.ContiguousView, (mean ?? square).ContiguousView, (buffer ?? square).ContiguousView, param.Length);
        if (n > 0)
            OptimizerKernels.RunRmsProp(op, param.Device, pv, gv, sv, mv, bv, step, n);
    }

    /// <summary>One Adagrad step in place. Kernel <c>adagrad_step</c>.</summary>
    public static void AdagradUpdate(Tensor param, Tensor grad, Tensor sum, AdagradStep step)
    {
        const string op = "adagrad_step";
        CheckState(op, param, grad, ("sum", Validate.NotNull(op, "sum", sum)));
        var (pv, gv, sv, n) = (param.ContiguousView, grad.ContiguousView, sum.ContiguousView, param.Length);
        if (n > 0)
            OptimizerKernels.RunAdagrad(op, param.Device, pv, gv, sv, step, n);
    }

    /// <summary>
    /// Scales <paramref name="grads"/> in place so their global L2 norm is at most <paramref name="maxNorm"/>
    /// (torch.nn.utils.clip_grad_norm_): Σg² per tensor and their total on the device, the clip factor by one tiny
    /// kernel, then one broadcast multiply per tensor — no host round-trip. Returns the norm before clipping, shape [1].
    /// </summary>
    public static Tensor ClipGradNorm(IReadOnlyList<Tensor> grads, float maxNorm)
    {
        const string op = "clip_grad_norm";
        if (Validate.NotNull(op, "grads", grads).Count == 0)
            throw new ShapeMismatchException(op, "grads", "at least one gradient", "an empty list");
        var device = grads[0].Device;
        using var _ = Autograd.NoGrad();
        Tensor? total = null;
        foreach (var g in grads)
        {
            Validate.Input(op, "grad", g, device);
            using var sq = Mul(g, g);
            var s = SumAll(sq);
            if (total is null)
                total = s;
            else
                using (s)
                    Add(total, s, total);
        }
        using (total)
        {
            using var factor = Unary("clip_coefficient", total!, null, new ClipCoefficient { MaxNorm = maxNorm });
            foreach (var g in grads)
                Mul(g, factor, g);
            return Unary("sqrt", total!, null, new SquareRoot());
        }
    }
}

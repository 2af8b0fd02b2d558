using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>Router logits [T, E] → softmax → the k largest (ties to the lower expert) → weights renormalized over them. k ≤ 8, E ≤ 256. Kernel <c>topk_gating</c>.</summary>
    public static GatingResult TopKGating(Tensor logits, int k)
    {
        var r = TopKGatingCore(logits, k);
        if (Autograd.ShouldRecord(logits))
        {
            Autograd.RecordNoGradient("topk_gating (indices output)", r.Indices, logits);
            var (w, idx) = (Autograd.Save(r.Weights), Autograd.Save(r.Indices));
            int tokens = logits.Size(0), experts = logits.Size(1);
            Autograd.Record("topk_gating", r.Weights, new[] { logits }, (g, _) =>
            {
                const string name = "topk_gating_backward";
                var device = Validate.DeviceOf(name, "g", g);
                var dLogits = Tensor.Empty(device, tokens, experts);
                using var gc = g.Contiguous();
                var (wv, iv, gv, dv, total) = (w.ContiguousView, idx.ContiguousView, gc.ContiguousView, dLogits.ContiguousView, dLogits.Length);
                if (total > 0)
                    RoutingKernels.RunTopKGatingBackward(name, device, wv, iv, gv, dv, k, experts, total);
                return new[] { dLogits };
            }, w, idx);
        }
        return r;
    }

    private static GatingResult TopKGatingCore(Tensor logits, int k)
    {
        const string op = "topk_gating";
        var device = Validate.Input(op, "logits", logits);
        Validate.Rank(op, "logits", logits, 2);
        int tokens = logits.Size(0), experts = logits.Size(1);
        if (experts < 1 || experts > 256)
            throw new ShapeMismatchException(op, "logits", "1..256 experts (the last dimension)", experts.ToString());
        if (k < 1 || k > 8 || k > experts)
            throw new ShapeMismatchException(op, "k", $"1 ≤ k ≤ min(8, experts = {experts})", k.ToString());
        var weights = Tensor.Empty(device, tokens, k);
        var indices = Tensor.Empty(device, tokens, k);
        if (tokens > 0)
        {
            using var lc = logits.Contiguous();
            RoutingKernels.RunTopKGating(op, device, lc, weights, indices, tokens, experts, k);
        }
        return new GatingResult(weights, indices);
    }

    /// <summary>
    /// Routes the expert indices [T, k] of a gating to <paramref name="experts"/> experts: kept counts, offsets, the row of
    /// every assignment and the token of every row. With a capacity factor, each expert keeps at most
    /// ⌈factor·T·k/E⌉ assignments, the earliest tokens first. Kernel <c>moe_route</c>.
    /// </summary>
    public static MoeRouting MoeRoute(Tensor indices, int experts, float? capacityFactor = null)
    {
        const string op = "moe_route";
        var device = Validate.Input(op, "indices", indices);
        Validate.Rank(op, "indices", indices, 2);
        if (experts < 1)
            throw new ShapeMismatchException(op, "experts", "at least one expert", experts.ToString());
        if (capacityFactor is <= 0)
            throw new InvalidArgumentException(op, "capacity_factor", "a positive factor", capacityFactor.Value.ToString());
        int tokens = indices.Size(0), k = indices.Size(1), assignments = tokens * k;
        int capacity = capacityFactor is { } f ? (int)Math.Ceiling(f * assignments / experts) : assignments;
        var routing = new MoeRouting(device, tokens, k, experts, capacity);
        using var ic = indices.Contiguous();
        RoutingKernels.RunRoute(op, device, ic, routing, assignments, experts, k, capacity);
        return routing;
    }

    /// <summary>Gathers token rows x [T, D] into expert order: [T·k, D], rows past the kept total are zero. Kernel <c>moe_dispatch</c>.</summary>
    public static Tensor MoeDispatch(Tensor x, MoeRouting routing)
    {
        var r = MoeDispatchCore(x, routing);
        if (Autograd.ShouldRecord(x))
        {
            // dx[t] = Σ of the gradients of t's dispatched rows: the combine gather with unit weights.
            var (positions, k, d) = (Autograd.Save(routing.Positions), routing.K, x.Size(1));
            Autograd.Record("moe_dispatch", r, new[] { x }, (g, _) =>
            {
                using var ones = Full(g.Device, 1f, positions.Length / k, k);
                return new[] { CombineRows("moe_dispatch_backward", g, ones, positions, k, d) };
            }, positions);
        }
        return r;
    }

    private static Tensor MoeDispatchCore(Tensor x, MoeRouting routing)
    {
        const string op = "moe_dispatch";
        var device = Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 2);
        if (x.Size(0) != routing.Tokens)
            throw new ShapeMismatchException(op, "x", $"[{routing.Tokens}, D] (one row per routed token)", GpuNetException.FormatShape(x.ShapeArray()));
        int d = x.Size(1);
        var output = Tensor.Empty(device, routing.Tokens * routing.K, d);
        if (output.Length == 0)
            return output;
        using var xc = x.Contiguous();
        var (xv, tokenOf, offsets, ov, total) = (xc.ContiguousView, MoeRouting.Ints(routing.TokenOf), MoeRouting.Ints(routing.Offsets), output.ContiguousView, output.Length);
        RoutingKernels.RunDispatch(op, device, xv, tokenOf, offsets, ov, routing.Experts, d, total);
        return output;
    }

    /// <summary>y[t] = Σ_s weights[t, s]·expertOutput[row(t, s)] (dropped slots contribute nothing): [T, D]. Kernel <c>moe_combine</c>.</summary>
    public static Tensor MoeCombine(Tensor expertOutput, Tensor weights, MoeRouting routing)
    {
        var r = MoeCombineCore(expertOutput, weights, routing);
        if (Autograd.ShouldRecord(expertOutput, weights))
        {
            var saved = new[] { Autograd.Save(expertOutput), Autograd.Save(weights), Autograd.Save(routing.TokenOf), Autograd.Save(routing.Positions), Autograd.Save(routing.Offsets) };
            var (k, experts, d, rows) = (routing.K, routing.Experts, expertOutput.Size(1), expertOutput.Size(0));
            Autograd.Record("moe_combine", r, new[] { expertOutput, weights }, (g, needs) =>
            {
                using var gc = g.Contiguous();
                using var wc = saved[1].Contiguous();
                Tensor? dOut = null, dWeights = null;
                if (needs[0])
                {
                    dOut = Tensor.Empty(g.Device, rows, d);
                    var (gv, wv, tv, pv, ov, dv) = (gc.ContiguousView, wc.ContiguousView, MoeRouting.Ints(saved[2]), MoeRouting.Ints(saved[3]), MoeRouting.Ints(saved[4]), dOut.ContiguousView);
                    if (dOut.Length > 0)
                        RoutingKernels.RunCombineBackwardRows("moe_combine_backward", g.Device, gv, wv, tv, pv, ov, dv, k, experts, d, dOut.Length);
                }
                if (needs[1])
                {
                    dWeights = Tensor.Empty(g.Device, wc.ShapeArray());
                    using var oc = saved[0].Contiguous();
                    var (gv, xv, pv, dv) = (gc.ContiguousView, oc.ContiguousView, MoeRouting.Ints(saved[3]), dWeights.ContiguousView);
                    if (dWeights.Length > 0)
                        RoutingKernels.RunCombineBackwardWeights("moe_combine_backward", g.Device, gv, xv, pv, dv, k, d, dWeights.Length);
                }
                return new[] { dOut, dWeights };
            }, saved);
        }
        return r;
    }

    /// <summary>y[t] = Σ_s w[t, s]·rows[positions[t·k + s]] through the combine kernel: moe_combine, and dispatch's backward with unit weights.</summary>
    private static Tensor CombineRows(string op, Tensor rows, Tensor weights, Tensor positions, int k, int d)
    {
        var device = Validate.DeviceOf(op, "rows", rows);
        int tokens = positions.Length / k;
        var y = Tensor.Empty(device, tokens, d);
        if (y.Length == 0)
            return y;
        using var rc = rows.Contiguous();
        using var wc = weights.Contiguous();
        var (ov, wv, pv, yv, total) = (rc.ContiguousView, wc.ContiguousView, MoeRouting.Ints(positions), y.ContiguousView, y.Length);
        RoutingKernels.RunCombine(op, device, ov, wv, pv, yv, k, d, total);
        return y;
    }

    private static Tensor MoeCombineCore(Tensor expertOutput, Tensor weights, MoeRouting routing)
    {
        const string op = "moe_combine";
        var device = Validate.DeviceOf(op, "expertOutput", expertOutput);
        Validate.Input(op, "expert_output", expertOutput, device);
        Validate.Input(op, "weights", weights, device);
        Validate.Rank(op, "expert_output", expertOutput, 2);
        if (expertOutput.Size(0) != routing.Tokens * routing.K)
            throw new ShapeMismatchException(op, "expert_output", $"[{routing.Tokens * routing.K}, D] (the dispatched rows)", GpuNetException.FormatShape(expertOutput.ShapeArray()));
        if (weights.Rank != 2 || weights.Size(0) != routing.Tokens || weights.Size(1) != routing.K)
            throw new ShapeMismatchException(op, "weights", $"[{routing.Tokens}, {routing.K}]", GpuNetException.FormatShape(weights.ShapeArray()));
        return CombineRows(op, expertOutput, weights, routing.Positions, routing.K, expertOutput.Size(1));
    }
}

using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of top-k gating and MoE routing: exact indices (with ties), capacity drops, dispatch and combine.</summary>
internal static class RoutingChecks
{
    /// <summary>Router logits; with <paramref name="ties"/> they are rounded to steps of 0.5 so equal probabilities are common.</summary>
    private static Tensor Logits(Device d, ulong seed, int tokens, int experts, bool ties)
    {
        var host = new float[tokens * experts];
        Philox.FillUniform(host, seed, -2, 2);
        if (ties)
            for (int i = 0; i < host.Length; i++)
                host[i] = MathF.Round(host[i] * 2) / 2;
        return Tensor.FromArray(d, host, tokens, experts);
    }

    /// <summary>Each (token, choice)'s slot in its expert's rows, from the reference top-k and the reference assignment
    /// (capacity ⌈factor·tokens·k / experts⌉, or every assignment without a factor).</summary>
    private static int[] ReferencePositions(double[] logits, int tokens, int experts, int k, float? factor)
    {
        var indices = RoutingReference.TopK(logits, tokens, experts, k).Indices.Select(v => (int)v).ToArray();
        int capacity = factor is { } f ? (int)Math.Ceiling(f * tokens * k / experts) : tokens * k;
        return RoutingReference.Route(indices, experts, capacity).Positions;
    }

    internal static IEnumerable<CheckCase> Cases()
    {
        foreach (var (name, tokens, experts, k, ties) in new[] { ("t1_e2_k1", 1, 2, 1, false), ("t37_e8_k2", 37, 8, 2, false), ("t37_e8_k2_ties", 37, 8, 2, true),
                     ("t64_e256_k8", 64, 256, 8, false), ("t50_e61_k3_ties", 50, 61, 3, true) })
            yield return new CheckCase("routing", "topk_gating", name, $"[{tokens}, {experts}] k {k}", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var logits = Logits(d, seed, tokens, experts, ties);
                using var g = Ops.TopKGating(logits, k);
                var (w, idx) = RoutingReference.TopK(Host(logits), tokens, experts, k);
                return new(g.Weights.ToArray(), w) { Also = [("indices", g.Indices.ToArray(), idx)] };
            });

        foreach (var (name, tokens, experts, k, factor) in new[] { ("unlimited", 45, 8, 2, (float?)null), ("capacity_1_0", 45, 8, 2, 1.0f), ("capacity_0_5_ties", 64, 6, 3, 0.5f) })
        {
            yield return new CheckCase("routing", "moe_route", name, $"[{tokens}, {k}] to {experts} experts, capacity factor {factor?.ToString() ?? "none"}", 0, (d, seed) =>
            {
                using var logits = Logits(d, seed, tokens, experts, ties: true);
                using var g = Ops.TopKGating(logits, k);
                using var r = Ops.MoeRoute(g.Indices, experts, factor);
                var hostIdx = g.Indices.ToArray().Select(v => (int)v).ToArray();
                var (positions, counts) = RoutingReference.Route(hostIdx, experts, r.Capacity);
                var got = r.ReadPositions().Concat(r.ReadCounts()).Select(v => (float)v).ToArray();
                return new(got, positions.Concat(counts).Select(v => (double)v).ToArray());
            });
            yield return new CheckCase("routing", "moe_dispatch", name, $"[{tokens}, 24] by top-{k} of {experts}", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var logits = Logits(d, seed, tokens, experts, ties: false);
                using var x = Random(d, seed, 1, tokens, 24);
                using var g = Ops.TopKGating(logits, k);
                using var r = Ops.MoeRoute(g.Indices, experts, factor);
                using var dispatched = Ops.MoeDispatch(x, r);
                // The expectation is routed on the host (reference top-k, reference slot assignment), not read back from the
                // device's routing under test.
                var positions = ReferencePositions(Host(logits), tokens, experts, k, factor);
                var hx = Host(x);
                var expected = new double[tokens * k * 24];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        Array.Copy(hx, a / k * 24, expected, positions[a] * 24, 24);
                return new(dispatched.ToArray(), expected);
            });
            yield return new CheckCase("routing", "moe_combine", name, $"[{tokens}·{k}, 24] to [{tokens}, 24]", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var logits = Logits(d, seed, tokens, experts, ties: false);
                using var g = Ops.TopKGating(logits, k);
                using var r = Ops.MoeRoute(g.Indices, experts, factor);
                using var expertOut = Random(d, seed, 2, tokens * k, 24);
                using var y = Ops.MoeCombine(expertOut, g.Weights, r);
                var positions = ReferencePositions(Host(logits), tokens, experts, k, factor);
                var (hw, ho) = (RoutingReference.TopK(Host(logits), tokens, experts, k).Weights, Host(expertOut));
                var expected = new double[tokens * 24];
                for (int t = 0; t < tokens; t++)
                    for (int s = 0; s < k; s++)
                        if (positions[t * k + s] >= 0)
                            for (int c = 0; c < 24; c++)
                                expected[t * 24 + c] += hw[t * k + s] * ho[positions[t * k + s] * 24 + c];
                return new(y.ToArray(), expected);
            });
        }
    }

    internal static IEnumerable<CheckCase> BackwardRouting()
    {
        const int tokens = 13, experts = 5, k = 2, d = 7;
        const float factor = 0.8f; // capacity ⌈0.8·26/5⌉ = 5: busy experts drop their later assignments
        // A fixed routing with repeats: expert (t·3 + s·2) mod 5 over tokens and slots, the two slots always distinct.
        var ids = Enumerable.Range(0, tokens * k).Select(a => (a / k * 3 + a % k * 2) % experts).ToArray();
        int capacity = (int)Math.Ceiling(factor * tokens * k / experts);
        var (positions, _) = RoutingReference.Route(ids, experts, capacity);
        MoeRouting Route(Device device)
        {
            using var indices = Tensor.FromArray(device, ids.Select(i => (float)i).ToArray(), tokens, k);
            return Ops.MoeRoute(indices, experts, factor);
        }
        yield return GradientCheck.Case("moe_dispatch_backward", "capacity_0_8", new[] { new GradientInput(new[] { tokens, d }) },
            t =>
            {
                using var routing = Route(t[0].Device);
                return Ops.MoeDispatch(t[0], routing);
            },
            x =>
            {
                var o = new double[tokens * k * d];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        Array.Copy(x[0], a / k * d, o, positions[a] * d, d);
                return o;
            },
            (x, g) =>
            {
                var dx = new double[tokens * d];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        for (int c = 0; c < d; c++)
                            dx[a / k * d + c] += g[positions[a] * d + c];
                return new[] { dx };
            });
        yield return GradientCheck.Case("moe_combine_backward", "capacity_0_8", new[] { new GradientInput(new[] { tokens * k, d }), new GradientInput(new[] { tokens, k }) },
            t =>
            {
                using var routing = Route(t[0].Device);
                return Ops.MoeCombine(t[0], t[1], routing);
            },
            x =>
            {
                var y = new double[tokens * d];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        for (int c = 0; c < d; c++)
                            y[a / k * d + c] += x[1][a] * x[0][positions[a] * d + c];
                return y;
            },
            (x, g) =>
            {
                var dOut = new double[tokens * k * d];
                var dW = new double[tokens * k];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        for (int c = 0; c < d; c++)
                        {
                            dOut[positions[a] * d + c] += x[1][a] * g[a / k * d + c];
                            dW[a] += g[a / k * d + c] * x[0][positions[a] * d + c];
                        }
                return new[] { dOut, dW };
            });
        foreach (var (name, t, e, kk) in new[] { ("t13_e5_k2", 13, 5, 2), ("t37_e8_k3", 37, 8, 3) })
            yield return GradientCheck.Case("topk_gating_backward", name, new[] { new GradientInput(new[] { t, e }, Scale: 3f) },
                x =>
                {
                    var r = Ops.TopKGating(x[0], kk);
                    r.Indices.Dispose();
                    return r.Weights;
                },
                x => RoutingReference.TopK(x[0], t, e, kk).Weights,
                (x, g) =>
                {
                    var (w, idx) = RoutingReference.TopK(x[0], t, e, kk);
                    var dl = new double[t * e];
                    for (int tok = 0; tok < t; tok++)
                    {
                        double dot = 0;
                        for (int s = 0; s < kk; s++)
                            dot += w[tok * kk + s] * g[tok * kk + s];
                        for (int s = 0; s < kk; s++)
                            dl[tok * e + (int)idx[tok * kk + s]] = w[tok * kk + s] * (g[tok * kk + s] - dot);
                    }
                    return new[] { dl };
                });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new("routing", () => Cases().Concat(BackwardRouting()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants() => new[]
    {
        Method("topk_gating", "warp_per_token", typeof(RoutingKernels), nameof(RoutingKernels.TopKGating)),
        Method("moe_route", "count", typeof(RoutingKernels), nameof(RoutingKernels.RouteCount)),
        Method("moe_route", "scan", typeof(RoutingKernels), nameof(RoutingKernels.RouteScan)),
        Method("moe_route", "assign", typeof(RoutingKernels), nameof(RoutingKernels.RouteAssign)),
        Method("moe_dispatch", "gather", typeof(RoutingKernels), nameof(RoutingKernels.Dispatch)),
        Method("moe_combine", "gather", typeof(RoutingKernels), nameof(RoutingKernels.Combine)),
        Method("topk_gating_backward", "elements", typeof(RoutingKernels), nameof(RoutingKernels.TopKGatingBackward)),
        Method("moe_dispatch_backward", "combine_unit_weights", typeof(RoutingKernels), nameof(RoutingKernels.Combine)),
        Method("moe_combine_backward", "rows", typeof(RoutingKernels), nameof(RoutingKernels.CombineBackwardRows)),
        Method("moe_combine_backward", "weights", typeof(RoutingKernels), nameof(RoutingKernels.CombineBackwardWeights)),
    };

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, t, e, k, dm) in new[] { (Small, 64, 8, 2, 64), (MediumLarge, 16384, 64, 2, 1024) })
        {
            yield return C("topk_gating", $"T{t} E{e} k{k}", (k + 3.0) * t * e, 4.0 * t * e + 8.0 * t * k, presets, (d, s) => { var x = R(d, s, t, e); return new(() => Ops.TopKGating(x, k).Dispose(), x); });
            yield return C("moe_route", $"T{t} E{e} k{k}", 0, 8.0 * t * k, presets, (d, s) =>
            { var g = Ops.TopKGating(R(d, s, t, e), k); return new(() => Ops.MoeRoute(g.Indices, e, 1.25f).Dispose(), g.Weights, g.Indices); });
            yield return C("moe_dispatch", $"T{t} k{k} D{dm}", 0, 8.0 * t * k * dm, presets, (d, s) =>
            { var g = Ops.TopKGating(R(d, s, t, e), k); var x = R(d, s + 1, t, dm); var r = Ops.MoeRoute(g.Indices, e);
              return new(() => Ops.MoeDispatch(x, r).Dispose(), g.Weights, g.Indices, x, r); });
            yield return C("moe_combine", $"T{t} k{k} D{dm}", 2.0 * t * k * dm, 8.0 * t * k * dm, presets, (d, s) =>
            { var g = Ops.TopKGating(R(d, s, t, e), k); var o = R(d, s + 1, t * k, dm); var r = Ops.MoeRoute(g.Indices, e);
              return new(() => Ops.MoeCombine(o, g.Weights, r).Dispose(), g.Weights, g.Indices, o, r); });
            yield return Step("topk_gating_backward", $"T{t} E{e} k{k}", (k + 3.0) * t * e + 4.0 * t * e, 4.0 * t * e * 3, presets, (d, s) => (new[] { R(d, s, t, e) }, Trained(1),
                x => { var r = Ops.TopKGating(x[0], k); r.Indices.Dispose(); return r.Weights; }));
            yield return Step("moe_dispatch_backward", $"T{t} k{k} D{dm}", 2.0 * t * k * dm, 16.0 * t * k * dm, presets, (d, s) => (new[] { R(d, s, t, dm) }, Trained(1), x =>
            {
                using var logits = R(d, s + 1, t, e);
                using var g = Ops.TopKGating(logits, k);
                using var r = Ops.MoeRoute(g.Indices, e);
                return Ops.MoeDispatch(x[0], r);
            }));
            yield return Step("moe_combine_backward", $"T{t} k{k} D{dm}", 6.0 * t * k * dm, 24.0 * t * k * dm, presets, (d, s) => (new[] { R(d, s, t * k, dm), R(d, s + 1, t, k) }, Trained(2), x =>
            {
                using var logits = R(d, s + 2, t, e);
                using var g = Ops.TopKGating(logits, k);
                using var r = Ops.MoeRoute(g.Indices, e);
                return Ops.MoeCombine(x[0], x[1], r);
            }));
        }
    }
}

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
                var positions = r.ReadPositions();
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
                var positions = r.ReadPositions();
                var (hw, ho) = (Host(g.Weights), Host(expertOut));
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
}

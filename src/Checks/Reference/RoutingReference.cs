namespace GpuNet.Kernels.Reference;

/// <summary>MoE gating and routing references: a softmax, a stable sort, and counting in token order.</summary>
public static class RoutingReference
{
    /// <summary>(weights [T·k], indices [T·k]): the k most probable experts per token, ties to the lower index, renormalized.</summary>
    public static (double[] Weights, double[] Indices) TopK(double[] logits, int tokens, int experts, int k)
    {
        var w = new double[tokens * k];
        var idx = new double[tokens * k];
        for (int t = 0; t < tokens; t++)
        {
            var row = logits.Skip(t * experts).Take(experts).ToArray();
            double max = row.Max();
            var p = row.Select(x => Math.Exp(x - max)).ToArray();
            double sum = p.Sum();
            // Ranking compares the float32 probabilities the kernel compares, so exact ties are ties in both.
            var order = Enumerable.Range(0, experts).OrderByDescending(j => (float)(p[j] / sum)).ThenBy(j => j).Take(k).ToArray();
            double picked = order.Sum(j => p[j] / sum);
            for (int r = 0; r < k; r++)
            {
                w[t * k + r] = p[order[r]] / sum / picked;
                idx[t * k + r] = order[r];
            }
        }
        return (w, idx);
    }

    /// <summary>Row of every assignment (−1 past capacity) and the kept counts, assignments taken in token order.</summary>
    public static (int[] Positions, int[] Counts) Route(int[] indices, int experts, int capacity)
    {
        var counts = new int[experts];
        foreach (int e in indices)
            counts[e]++;
        var kept = counts.Select(c => Math.Min(c, capacity)).ToArray();
        var offsets = new int[experts];
        for (int e = 1; e < experts; e++)
            offsets[e] = offsets[e - 1] + kept[e - 1];
        var rank = new int[experts];
        var positions = new int[indices.Length];
        for (int a = 0; a < indices.Length; a++)
        {
            int e = indices[a];
            positions[a] = rank[e] < capacity ? offsets[e] + rank[e] : -1;
            rank[e]++;
        }
        return (positions, kept);
    }
}

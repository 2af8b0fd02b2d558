namespace GpuNet.Kernels.Reference;

/// <summary>Attention in double precision, the textbook way: every score, every mask, softmax, weighted sum.</summary>
public static class AttentionReference
{
    /// <summary>
    /// softmax(q·kᵀ·scale + mask)·v over row-major [B, H, Nq, d] / [B, H, Nk, d] (masks: causal with the diagonal at the
    /// end, key lengths per batch, additive mask [B, H, Nq, Nk] already broadcast). Returns the output and the logsumexp;
    /// a row with no visible key gives zeros and −inf.
    /// </summary>
    public static (double[] Output, double[] Lse) Attention(double[] q, double[] k, double[] v, int b, int h, int nq, int nk, int d, double scale,
        bool causal, double[]? lengths, double[]? mask)
    {
        var o = new double[b * h * nq * d];
        var lse = new double[b * h * nq];
        var s = new double[nk];
        for (int bi = 0; bi < b; bi++)
            for (int hi = 0; hi < h; hi++)
                for (int i = 0; i < nq; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < nk; j++)
                    {
                        bool hidden = (causal && j > i + nk - nq) || (lengths is not null && j >= lengths[bi]);
                        double dot = 0;
                        for (int c = 0; c < d; c++)
                            dot += q[((bi * h + hi) * nq + i) * d + c] * k[((bi * h + hi) * nk + j) * d + c];
                        s[j] = hidden ? double.NegativeInfinity : dot * scale + (mask?[((bi * h + hi) * nq + i) * nk + j] ?? 0);
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < nk && max > double.NegativeInfinity; j++)
                        sum += Math.Exp(s[j] - max);
                    int row = (bi * h + hi) * nq + i;
                    lse[row] = sum > 0 ? max + Math.Log(sum) : double.NegativeInfinity;
                    for (int c = 0; c < d; c++)
                    {
                        double acc = 0;
                        for (int j = 0; j < nk && sum > 0; j++)
                            acc += Math.Exp(s[j] - max) / sum * v[((bi * h + hi) * nk + j) * d + c];
                        o[row * d + c] = acc;
                    }
                }
        return (o, lse);
    }

    /// <summary>[B, N, H, d] ↔ [B, H, N, d] (the same swap both ways).</summary>
    private static double[] SwapHeads(double[] x, int b, int n, int h, int d)
    {
        var o = new double[x.Length];
        for (int bi = 0; bi < b; bi++)
            for (int i = 0; i < n; i++)
                for (int hi = 0; hi < h; hi++)
                    Array.Copy(x, ((bi * n + i) * h + hi) * d, o, ((bi * h + hi) * n + i) * d, d);
        return o;
    }

    /// <summary>The mask [B, 1, Nq, Nk] broadcast over heads.</summary>
    private static double[]? Heads(double[]? mask, int b, int h, int nq, int nk)
    {
        if (mask is null)
            return null;
        var o = new double[b * h * nq * nk];
        for (int bi = 0; bi < b; bi++)
            for (int hi = 0; hi < h; hi++)
                Array.Copy(mask, bi * nq * nk, o, (bi * h + hi) * nq * nk, nq * nk);
        return o;
    }

    /// <summary>The output of <see cref="Attention"/> for inputs q, k, v in either layout (BNHD when <paramref name="bnhd"/>), a mask [B, 1, Nq, Nk] and key lengths per batch.</summary>
    public static double[] Forward(double[][] x, int b, int h, int nq, int nk, int d, double scale, bool causal, double[]? mask, bool bnhd, double[]? lengths = null)
    {
        double[] q = bnhd ? SwapHeads(x[0], b, nq, h, d) : x[0], k = bnhd ? SwapHeads(x[1], b, nk, h, d) : x[1], v = bnhd ? SwapHeads(x[2], b, nk, h, d) : x[2];
        var o = Attention(q, k, v, b, h, nq, nk, d, scale, causal, lengths, Heads(mask, b, h, nq, nk)).Output;
        return bnhd ? SwapHeads(o, b, h, nq, d) : o;
    }

    /// <summary>
    /// Gradients of <see cref="Forward"/> for the output gradient g: with P = softmax(S), dV = Pᵀ·dO, dP = dO·Vᵀ,
    /// dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q, dmask = dS summed over heads. Returns
    /// [dq, dk, dv] (and dmask when a mask is given), in the inputs' layout.
    /// </summary>
    public static double[]?[] Backward(double[][] x, double[] g, int b, int h, int nq, int nk, int d, double scale, bool causal, double[]? mask, bool bnhd,
        double[]? lengths = null)
    {
        double[] q = bnhd ? SwapHeads(x[0], b, nq, h, d) : x[0], k = bnhd ? SwapHeads(x[1], b, nk, h, d) : x[1], v = bnhd ? SwapHeads(x[2], b, nk, h, d) : x[2];
        var go = bnhd ? SwapHeads(g, b, nq, h, d) : g;
        var fullMask = Heads(mask, b, h, nq, nk);
        double[] dq = new double[q.Length], dk = new double[k.Length], dv = new double[v.Length];
        var dmask = mask is null ? null : new double[mask.Length];
        var p = new double[nk];
        var dp = new double[nk];
        for (int bi = 0; bi < b; bi++)
            for (int hi = 0; hi < h; hi++)
                for (int i = 0; i < nq; i++)
                {
                    int bh = bi * h + hi, row = bh * nq + i;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < nk; j++)
                    {
                        double dot = 0;
                        for (int c = 0; c < d; c++)
                            dot += q[row * d + c] * k[(bh * nk + j) * d + c];
                        bool hidden = (causal && j > i + nk - nq) || (lengths is not null && j >= lengths[bi]);
                        p[j] = hidden ? double.NegativeInfinity : dot * scale + (fullMask?[row * nk + j] ?? 0);
                        max = Math.Max(max, p[j]);
                    }
                    if (max == double.NegativeInfinity)
                        continue;
                    double sum = 0;
                    for (int j = 0; j < nk; j++)
                        sum += p[j] = Math.Exp(p[j] - max);
                    double rowDot = 0;
                    for (int j = 0; j < nk; j++)
                    {
                        p[j] /= sum;
                        double t = 0;
                        for (int c = 0; c < d; c++)
                        {
                            t += go[row * d + c] * v[(bh * nk + j) * d + c];
                            dv[(bh * nk + j) * d + c] += p[j] * go[row * d + c];
                        }
                        dp[j] = t;
                        rowDot += p[j] * t;
                    }
                    for (int j = 0; j < nk; j++)
                    {
                        double ds = p[j] * (dp[j] - rowDot);
                        if (dmask is not null)
                            dmask[(bi * nq + i) * nk + j] += ds;
                        for (int c = 0; c < d; c++)
                        {
                            dq[row * d + c] += scale * ds * k[(bh * nk + j) * d + c];
                            dk[(bh * nk + j) * d + c] += scale * ds * q[row * d + c];
                        }
                    }
                }
        var grads = new List<double[]?> { bnhd ? SwapHeads(dq, b, h, nq, d) : dq, bnhd ? SwapHeads(dk, b, h, nk, d) : dk, bnhd ? SwapHeads(dv, b, h, nk, d) : dv };
        if (dmask is not null)
            grads.Add(dmask);
        return grads.ToArray();
    }
}

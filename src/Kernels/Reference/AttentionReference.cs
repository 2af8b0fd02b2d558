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
}

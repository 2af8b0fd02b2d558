namespace GpuNet.Kernels.Reference;

/// <summary>References for embeddings, positional tables, patches, sampling filters and vector quantization, in double.</summary>
public static class SequenceReference
{
    /// <summary>pe[pos, 2i] = sin(pos/base^(2i/D)), pe[pos, 2i+1] = cos(…).</summary>
    public static double[] Sinusoidal(int positions, int dim, double baseValue = 10000)
    {
        var pe = new double[positions * dim];
        for (int pos = 0; pos < positions; pos++)
            for (int c = 0; c < dim; c++)
            {
                double angle = pos / Math.Pow(baseValue, 2.0 * (c / 2) / dim);
                pe[pos * dim + c] = c % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle);
            }
        return pe;
    }

    /// <summary>[cos(t·f), sin(t·f)] with f_j = maxPeriod^(−j/half), zero-padded to an odd dim.</summary>
    public static double[] Timestep(double[] t, int dim, double maxPeriod = 10000)
    {
        int half = dim / 2;
        var e = new double[t.Length * dim];
        for (int b = 0; b < t.Length; b++)
            for (int j = 0; j < half; j++)
            {
                double arg = t[b] * Math.Exp(-Math.Log(maxPeriod) * j / half);
                e[b * dim + j] = Math.Cos(arg);
                e[b * dim + half + j] = Math.Sin(arg);
            }
        return e;
    }

    /// <summary>Patches of x [N, C, H, W] in raster order, each flattened (c, py, px).</summary>
    public static double[] Patchify(double[] x, int n, int c, int h, int w, int p)
    {
        var o = new List<double>();
        for (int b = 0; b < n; b++)
            for (int i = 0; i < h / p; i++)
                for (int j = 0; j < w / p; j++)
                    for (int ch = 0; ch < c; ch++)
                        for (int a = 0; a < p; a++)
                            for (int e = 0; e < p; e++)
                                o.Add(x[((b * c + ch) * h + i * p + a) * w + j * p + e]);
        return o.ToArray();
    }

    /// <summary>The image [N, C, H, W] from patches [N, T, p·p·C] flattened (py, px, c).</summary>
    public static double[] Unpatchify(double[] x, int n, int c, int h, int w, int p)
    {
        var img = new double[n * c * h * w];
        int wp = w / p;
        for (int b = 0; b < n; b++)
            for (int t = 0; t < h / p * wp; t++)
                for (int a = 0; a < p; a++)
                    for (int e = 0; e < p; e++)
                        for (int ch = 0; ch < c; ch++)
                            img[((b * c + ch) * h + t / wp * p + a) * w + t % wp * p + e] = x[(b * (h / p * wp) + t) * p * p * c + (a * p + e) * c + ch];
        return img;
    }

    /// <summary>The tokens a filtered sampler may return for one row: the top-k by weight (ties kept), then the smallest top set reaching top-p of their mass.</summary>
    public static bool[] Allowed(double[] logits, double temperature, int topK, double topP)
    {
        double max = logits.Max();
        var e = logits.Select(x => Math.Exp((x - max) / temperature)).ToArray();
        var order = Enumerable.Range(0, e.Length).OrderByDescending(j => e[j]).ToArray();
        double kth = topK > 0 && topK < e.Length ? e[order[topK - 1]] : 0;
        var allowed = e.Select(v => v >= kth).ToArray();
        double total = e.Where((v, j) => allowed[j]).Sum(), mass = 0, threshold = 0;
        foreach (int j in order.Where(j => allowed[j]))
        {
            mass += e[j];
            threshold = e[j];
            if (mass >= topP * total)
                break;
        }
        // Slack of 1e-5 relative keeps tokens that tie the threshold in float32.
        return e.Select((v, j) => allowed[j] && v >= threshold * (1 - 1e-5)).ToArray();
    }

    /// <summary>Index of the nearest codebook row per input row, ties to the lower index.</summary>
    public static double[] Nearest(double[] x, double[] codebook, int rows, int codes, int dim)
    {
        var o = new double[rows];
        for (int n = 0; n < rows; n++)
        {
            double best = double.PositiveInfinity;
            for (int k = 0; k < codes; k++)
            {
                double dist = 0;
                for (int d = 0; d < dim; d++)
                    dist += Math.Pow(x[n * dim + d] - codebook[k * dim + d], 2);
                if (dist < best)
                {
                    best = dist;
                    o[n] = k;
                }
            }
        }
        return o;
    }
}

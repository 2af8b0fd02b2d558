namespace GpuNet.Kernels.Reference;

/// <summary>Double-precision LayerNorm/RMSNorm references over the last axis of row-major [rows, cols], two-pass statistics.</summary>
public static class NormalizationReference
{
    /// <summary>Returns (y, mean, rstd); for RMSNorm rstd = 1/√(mean(x²) + ε) and nothing is subtracted.</summary>
    public static (double[] Y, double[] Mean, double[] Rstd) Normalize(double[] x, int rows, int cols, double[]? gamma, double[]? beta, double eps, bool rms)
    {
        var y = new double[x.Length];
        var means = new double[rows];
        var rstds = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0;
            for (int j = 0; j < cols; j++)
                mean += x[r * cols + j];
            mean /= cols;
            double var = 0, ms = 0;
            for (int j = 0; j < cols; j++)
            {
                double v = x[r * cols + j];
                var += (v - mean) * (v - mean);
                ms += v * v;
            }
            double rstd = 1 / Math.Sqrt((rms ? ms : var) / cols + eps);
            for (int j = 0; j < cols; j++)
            {
                double v = ((x[r * cols + j] - (rms ? 0 : mean)) * rstd) * (gamma?[j] ?? 1) + (beta?[j] ?? 0);
                y[r * cols + j] = v;
            }
            means[r] = mean;
            rstds[r] = rstd;
        }
        return (y, means, rstds);
    }

    /// <summary>BatchNorm over [N, C, HW] with batch statistics: (y, mean[C], biased var[C]).</summary>
    public static (double[] Y, double[] Mean, double[] Var) BatchNorm(double[] x, int n, int c, int hw, double[]? gamma, double[]? beta, double eps)
    {
        var y = new double[x.Length];
        var means = new double[c];
        var vars = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            double mean = 0, var = 0;
            for (int b = 0; b < n; b++)
                for (int j = 0; j < hw; j++)
                    mean += x[(b * c + ch) * hw + j];
            mean /= n * hw;
            for (int b = 0; b < n; b++)
                for (int j = 0; j < hw; j++)
                    var += Math.Pow(x[(b * c + ch) * hw + j] - mean, 2);
            var /= n * hw;
            for (int b = 0; b < n; b++)
                for (int j = 0; j < hw; j++)
                    y[(b * c + ch) * hw + j] = (x[(b * c + ch) * hw + j] - mean) / Math.Sqrt(var + eps) * (gamma?[ch] ?? 1) + (beta?[ch] ?? 0);
            means[ch] = mean;
            vars[ch] = var;
        }
        return (y, means, vars);
    }

    /// <summary>GroupNorm over [N, C, HW] with γ/β per channel: (y, mean[N·G], rstd[N·G]).</summary>
    public static (double[] Y, double[] Mean, double[] Rstd) GroupNorm(double[] x, int n, int c, int hw, int groups, double[]? gamma, double[]? beta, double eps)
    {
        int cg = c / groups, len = cg * hw;
        var (y, mean, rstd) = Normalize(x, n * groups, len, null, null, eps, rms: false);
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int j = 0; j < hw; j++)
                {
                    int at = (b * c + ch) * hw + j;
                    y[at] = y[at] * (gamma?[ch] ?? 1) + (beta?[ch] ?? 0);
                }
        return (y, mean, rstd);
    }
}

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
}

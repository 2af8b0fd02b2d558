namespace GpuNet.Kernels.Reference;

/// <summary>Double-precision softmax references over the last axis of row-major [rows, cols].</summary>
public static class SoftmaxReference
{
    /// <summary>Softmax (or log-softmax); with <paramref name="causal"/>, column j of row r is masked when j &gt; (r mod rowsPerMatrix) + offset.
    /// A row with nothing unmasked or all −inf gives 0 (−inf for log).</summary>
    public static double[] Softmax(double[] x, int rows, int cols, bool log = false, bool causal = false, int rowsPerMatrix = 1, int offset = 0)
    {
        var y = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            int limit = causal ? Math.Clamp(r % rowsPerMatrix + offset + 1, 0, cols) : cols;
            double max = double.NegativeInfinity;
            for (int j = 0; j < limit; j++)
                max = Math.Max(max, x[r * cols + j]);
            double sum = 0;
            for (int j = 0; j < limit && max > double.NegativeInfinity; j++)
                sum += Math.Exp(x[r * cols + j] - max);
            for (int j = 0; j < cols; j++)
            {
                bool live = j < limit && max > double.NegativeInfinity;
                y[r * cols + j] = log
                    ? live ? x[r * cols + j] - max - Math.Log(sum) : double.NegativeInfinity
                    : live ? Math.Exp(x[r * cols + j] - max) / sum : 0;
            }
        }
        return y;
    }
}

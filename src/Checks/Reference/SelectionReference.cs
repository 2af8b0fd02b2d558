namespace GpuNet.Kernels.Reference;

/// <summary>References of top-k (a full sort of each row) and cumulative sums (a double-precision running sum).</summary>
public static class SelectionReference
{
    /// <summary>Values then indices of the k best of each row of [rows, n], best first, ties to the lower index.</summary>
    public static double[] TopK(double[] x, int rows, int n, int k, bool largest)
    {
        var values = new double[rows * k];
        var indices = new double[rows * k];
        for (int r = 0; r < rows; r++)
        {
            var order = Enumerable.Range(0, n).OrderBy(j => largest ? -x[r * n + j] : x[r * n + j]).ThenBy(j => j).Take(k).ToArray();
            for (int t = 0; t < k; t++)
            {
                values[r * k + t] = x[r * n + order[t]];
                indices[r * k + t] = order[t];
            }
        }
        return values.Concat(indices).ToArray();
    }

    /// <summary>Cumulative sums of [outer, n, inner] along the middle axis.</summary>
    public static double[] CumSum(double[] x, int outer, int n, int inner, bool exclusive, bool reverse)
    {
        var y = new double[x.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double sum = 0;
                for (int t = 0; t < n; t++)
                {
                    int step = reverse ? n - 1 - t : t;
                    long at = ((long)o * n + step) * inner + i;
                    if (exclusive)
                        y[at] = sum;
                    sum += x[at];
                    if (!exclusive)
                        y[at] = sum;
                }
            }
        return y;
    }
}

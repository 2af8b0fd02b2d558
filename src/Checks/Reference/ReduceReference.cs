namespace GpuNet.Kernels.Reference;

/// <summary>CPU references for reductions, in double precision.</summary>
public static class ReduceReference
{
    /// <summary>Reduces a row-major [outer, reduced, inner] array over the middle axis.</summary>
    public static double[] Reduce(double[] x, int outer, int reduced, int inner, double identity, Func<double, double, double> combine, Func<double, int, double>? finish = null)
    {
        var result = new double[outer * inner];
        for (int p = 0; p < outer; p++)
            for (int j = 0; j < inner; j++)
            {
                double acc = identity;
                for (int r = 0; r < reduced; r++)
                    acc = combine(acc, x[(p * reduced + r) * inner + j]);
                result[p * inner + j] = finish is null ? acc : finish(acc, reduced);
            }
        return result;
    }

    /// <summary>Sum over the last axis of a row-major [rows, cols] array.</summary>
    public static double[] SumLastAxis(double[] x, int rows, int cols) => Reduce(x, rows, cols, 1, 0, (a, b) => a + b);

    /// <summary>Index of the first maximum along the middle axis of [outer, reduced, inner].</summary>
    public static double[] ArgMax(double[] x, int outer, int reduced, int inner)
    {
        var result = new double[outer * inner];
        for (int p = 0; p < outer; p++)
            for (int j = 0; j < inner; j++)
            {
                int best = 0;
                for (int r = 1; r < reduced; r++)
                    if (x[(p * reduced + r) * inner + j] > x[(p * reduced + best) * inner + j])
                        best = r;
                result[p * inner + j] = best;
            }
        return result;
    }
}

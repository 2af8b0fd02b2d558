namespace GpuNet.Kernels.Reference;

/// <summary>The matmul reference: triple loops in double over broadcast batches.</summary>
public static class MatMulReference
{
    /// <summary>
    /// C = act(alpha·op(A)·op(B) + beta·C0 + bias) for row-major A of <paramref name="aShape"/> and B of
    /// <paramref name="bShape"/> ([..., rows, cols]); batch dimensions broadcast; C0 may be null (beta ignored).
    /// </summary>
    public static double[] MatMul(double[] a, int[] aShape, bool transA, double[] b, int[] bShape, bool transB,
        double alpha = 1, double beta = 0, double[]? c0 = null, double[]? bias = null, Func<double, double>? act = null)
    {
        int ar = aShape[^2], ac = aShape[^1], br = bShape[^2], bc = bShape[^1];
        int m = transA ? ac : ar, k = transA ? ar : ac, n = transB ? br : bc;
        var batchA = aShape[..^2];
        var batchB = bShape[..^2];
        var batch = ElementwiseReference.BroadcastShape(batchA, batchB);
        long batches = ShapeUtil.Product(batch);
        var c = new double[batches * m * n];
        for (long z = 0; z < batches; z++)
        {
            var idx = ElementwiseReference.Unravel(z, batch);
            long aOff = BatchOffset(idx, batchA) * ar * ac, bOff = BatchOffset(idx, batchB) * br * bc;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double sum = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double av = transA ? a[aOff + p * ac + i] : a[aOff + i * ac + p];
                        double bv = transB ? b[bOff + j * bc + p] : b[bOff + p * bc + j];
                        sum += av * bv;
                    }
                    long at = (z * m + i) * n + j;
                    double r = alpha * sum + (c0 is null ? 0 : beta * c0[at]) + (bias is null ? 0 : bias[j]);
                    c[at] = act is null ? r : act(r);
                }
        }
        return c;
    }

    /// <summary>Flat index into an array of <paramref name="shape"/> for the broadcast index <paramref name="idx"/> (size-1 and missing leading dimensions read index 0).</summary>
    internal static long BatchOffset(int[] idx, int[] shape)
    {
        int lead = idx.Length - shape.Length;
        long flat = 0;
        for (int d = 0; d < shape.Length; d++)
            flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[lead + d]);
        return flat;
    }
}

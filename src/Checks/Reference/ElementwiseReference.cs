namespace GpuNet.Kernels.Reference;

/// <summary>CPU references for the elementwise family: plain index loops in double precision.</summary>
public static class ElementwiseReference
{
    /// <summary>Row-major multi-index of position <paramref name="linear"/> in <paramref name="shape"/>.</summary>
    public static int[] Unravel(long linear, int[] shape)
    {
        var idx = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            idx[d] = (int)(linear % shape[d]);
            linear /= shape[d];
        }
        return idx;
    }

    /// <summary>Reads element <paramref name="outIndex"/> (an index into the broadcast shape) of a row-major array of <paramref name="shape"/>.</summary>
    public static double ReadBroadcast(double[] data, int[] shape, int[] outIndex)
    {
        int lead = outIndex.Length - shape.Length;
        long flat = 0;
        for (int d = 0; d < shape.Length; d++)
            flat = flat * shape[d] + (shape[d] == 1 ? 0 : outIndex[lead + d]);
        return data[flat];
    }

    /// <summary>The NumPy broadcast shape of two shapes.</summary>
    public static int[] BroadcastShape(int[] a, int[] b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            int db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            r[i] = Math.Max(da, db);
        }
        return r;
    }

    /// <summary>f(a, b) elementwise with NumPy broadcasting.</summary>
    public static double[] Binary(double[] a, int[] shapeA, double[] b, int[] shapeB, Func<double, double, double> f)
    {
        var shape = BroadcastShape(shapeA, shapeB);
        long n = ShapeUtil.Product(shape);
        var result = new double[n];
        for (long i = 0; i < n; i++)
        {
            var idx = Unravel(i, shape);
            result[i] = f(ReadBroadcast(a, shapeA, idx), ReadBroadcast(b, shapeB, idx));
        }
        return result;
    }

    /// <summary>The elements of a strided view over <paramref name="storage"/>, in row-major order of its shape.</summary>
    public static double[] StridedView(double[] storage, int[] shape, int[] strides, int offset)
    {
        long n = ShapeUtil.Product(shape);
        var result = new double[n];
        for (long i = 0; i < n; i++)
        {
            var idx = Unravel(i, shape);
            long at = offset;
            for (int d = 0; d < shape.Length; d++)
                at += (long)idx[d] * strides[d];
            result[i] = storage[at];
        }
        return result;
    }
}

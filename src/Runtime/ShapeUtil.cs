namespace GpuNet;

/// <summary>Shape and stride arithmetic shared by tensors and kernel launchers.</summary>
public static class ShapeUtil
{
    /// <summary>Product of the dimensions (1 for a scalar shape).</summary>
    public static long Product(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
            n *= d;
        return n;
    }

    /// <summary>Rejects negative dimensions.</summary>
    public static void Validate(string op, ReadOnlySpan<int> shape)
    {
        foreach (int d in shape)
            if (d < 0)
                throw new ShapeMismatchException(op, "shape", "non-negative dimensions", GpuNetException.FormatShape(shape));
    }

    /// <summary>Row-major strides of a contiguous tensor of <paramref name="shape"/>.</summary>
    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var strides = new int[shape.Length];
        int s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= Math.Max(shape[i], 1);
        }
        return strides;
    }

    /// <summary>True when <paramref name="strides"/> are row-major contiguous for <paramref name="shape"/> (size-1 dimensions may have any stride).</summary>
    public static bool IsContiguous(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 0)
                return true;
            if (shape[i] != 1 && strides[i] != expected)
                return false;
            expected *= shape[i];
        }
        return true;
    }

    /// <summary>Maps a possibly negative axis to 0..rank-1.</summary>
    public static int NormalizeAxis(string op, int axis, int rank)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank)
            throw new ShapeMismatchException(op, "axis", $"an axis in [-{rank}, {rank - 1}]", axis.ToString());
        return a;
    }

    /// <summary>Resolves a reshape target with at most one -1 against <paramref name="length"/> elements.</summary>
    public static int[] ResolveReshape(string op, ReadOnlySpan<int> shape, int length)
    {
        var result = shape.ToArray();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < result.Length; i++)
        {
            if (result[i] == -1)
            {
                if (infer >= 0)
                    throw new ShapeMismatchException(op, "shape", "at most one -1", GpuNetException.FormatShape(shape));
                infer = i;
            }
            else if (result[i] < 0)
                throw new ShapeMismatchException(op, "shape", "non-negative dimensions or one -1", GpuNetException.FormatShape(shape));
            else
                known *= result[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || length % known != 0)
                throw new ShapeMismatchException(op, "shape", $"a shape whose element count divides {length}", GpuNetException.FormatShape(shape));
            result[infer] = (int)(length / known);
        }
        else if (known != length)
            throw new ShapeMismatchException(op, "shape", $"{length} elements", $"{GpuNetException.FormatShape(shape)} = {known} elements");
        return result;
    }

    /// <summary>Lowest and highest storage index a view touches (strides are never negative).</summary>
    public static (int Lo, int Hi) Extent(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, int offset)
    {
        long hi = offset;
        for (int i = 0; i < shape.Length; i++)
            hi += (long)(shape[i] - 1) * strides[i];
        return (offset, (int)hi);
    }

    /// <summary>Copies a strided view out of <paramref name="src"/> into row-major <paramref name="dest"/>.</summary>
    public static void Gather(ReadOnlySpan<float> src, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, int offset, Span<float> dest)
    {
        int rank = shape.Length;
        Span<int> idx = stackalloc int[Math.Max(rank, 1)];
        idx.Clear();
        int pos = offset;
        for (int n = 0; n < dest.Length; n++)
        {
            dest[n] = src[pos];
            for (int d = rank - 1; d >= 0; d--)
            {
                pos += strides[d];
                if (++idx[d] < shape[d])
                    break;
                pos -= strides[d] * shape[d];
                idx[d] = 0;
            }
        }
    }

    /// <summary>NumPy broadcast of two shapes.</summary>
    /// <exception cref="ShapeMismatchException">A dimension differs and neither is 1.</exception>
    public static int[] BroadcastShapes(string op, ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ShapeMismatchException(op, "b", $"a shape broadcastable with {GpuNetException.FormatShape(a)}", GpuNetException.FormatShape(b));
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Strides that read a tensor of <paramref name="shape"/>/<paramref name="strides"/> as if it had <paramref name="target"/> shape (0 on broadcast dimensions).</summary>
    public static int[] BroadcastStrides(string op, string argument, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, ReadOnlySpan<int> target)
    {
        if (shape.Length > target.Length)
            throw new ShapeMismatchException(op, argument, $"a shape broadcastable to {GpuNetException.FormatShape(target)}", GpuNetException.FormatShape(shape));
        var result = new int[target.Length];
        int lead = target.Length - shape.Length;
        for (int i = 0; i < target.Length; i++)
        {
            if (i < lead)
                continue;
            int d = shape[i - lead];
            if (d == target[i])
                result[i] = d == 1 ? 0 : strides[i - lead];
            else if (d == 1)
                result[i] = 0;
            else
                throw new ShapeMismatchException(op, argument, $"a shape broadcastable to {GpuNetException.FormatShape(target)}", GpuNetException.FormatShape(shape));
        }
        return result;
    }

    /// <summary>
    /// Merges neighbouring dimensions that every operand walks as one (stride[i] = stride[i+1]·size[i+1]
    /// for all operands) and drops size-1 dimensions, so launchers see the lowest rank that
    /// describes the same access pattern. Returns the merged shape and one stride list per operand.
    /// </summary>
    public static (int[] Shape, int[][] Strides) Coalesce(ReadOnlySpan<int> shape, params int[][] strides)
    {
        var dims = new List<int>();
        var outStrides = strides.Select(_ => new List<int>()).ToArray();
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 1)
                continue;
            bool merge = dims.Count > 0;
            for (int k = 0; merge && k < strides.Length; k++)
                merge = outStrides[k][^1] == strides[k][i] * shape[i];
            if (merge)
            {
                dims[^1] *= shape[i];
                for (int k = 0; k < strides.Length; k++)
                    outStrides[k][^1] = strides[k][i];
            }
            else
            {
                dims.Add(shape[i]);
                for (int k = 0; k < strides.Length; k++)
                    outStrides[k].Add(strides[k][i]);
            }
        }
        return (dims.ToArray(), outStrides.Select(s => s.ToArray()).ToArray());
    }
}

namespace GpuNet;

/// <summary>Shape and stride arithmetic shared by tensors and kernel launchers.</summary>
public static class ShapeUtil
{
    /// <summary>
    /// Product of the dimensions (1 for a scalar shape) of a shape without negative dimensions. Never wraps: a product
    /// past <see cref="long.MaxValue"/> saturates there (a shape holding a 0 is 0 however large the rest), so a caller
    /// comparing it with a limit sees it is too large. Negative dimensions give a negative result; reject them first
    /// with <see cref="Validate"/>.
    /// </summary>
    public static long Product(ReadOnlySpan<int> shape)
    {
        long n = 1;
        bool saturated = false;
        foreach (int d in shape)
        {
            if (d == 0)
                return 0;
            if (saturated)
                continue;
            if (d > 0 && n > long.MaxValue / d)
            {
                saturated = true;
                n = long.MaxValue;
                continue;
            }
            n *= d;
        }
        return n;
    }

    /// <summary>Rejects negative dimensions.</summary>
    public static void Validate(string op, ReadOnlySpan<int> shape, string argument = "shape")
    {
        foreach (int d in shape)
            if (d < 0)
                throw new ShapeMismatchException(op, argument, "non-negative dimensions", GpuNetException.FormatShape(shape));
    }

    /// <summary>
    /// The element count of <paramref name="shape"/>, which must have no negative dimension and at most
    /// <see cref="int.MaxValue"/> elements (kernels index with 32-bit arithmetic).
    /// </summary>
    /// <exception cref="ShapeMismatchException">A negative dimension, or more than <see cref="int.MaxValue"/> elements.</exception>
    public static int ElementCount(string op, string argument, ReadOnlySpan<int> shape)
    {
        Validate(op, shape, argument);
        long n = Product(shape);
        if (n > int.MaxValue)
            throw new ShapeMismatchException(op, argument, $"at most {int.MaxValue} elements",
                $"{GpuNetException.FormatShape(shape)} = {(n == long.MaxValue ? "more than 2^63" : n.ToString())} elements");
        return (int)n;
    }

    /// <summary>
    /// Checks that a view of <paramref name="shape"/>/<paramref name="strides"/> starting at <paramref name="offset"/>
    /// reaches only elements 0..<paramref name="capacity"/>−1 of its storage: offset and strides non-negative, at most
    /// <see cref="int.MaxValue"/> elements, and offset + Σ (size−1)·stride below the capacity, all in 64-bit arithmetic
    /// (a sum that could wrap in 32 bits is exactly what this rejects). An empty view reaches nothing, so its offset
    /// is not checked. Returns how many storage elements the view reaches, from its first element to its last (0 when empty).
    /// </summary>
    /// <exception cref="ShapeMismatchException">The view would read or write outside its storage.</exception>
    public static long CheckView(string op, string argument, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, long offset, long capacity)
    {
        int length = ElementCount(op, argument, shape);
        if (strides.Length != shape.Length)
            throw new ShapeMismatchException(op, argument, $"{shape.Length} strides for shape {GpuNetException.FormatShape(shape)}", GpuNetException.FormatShape(strides));
        foreach (int s in strides)
            if (s < 0)
                throw new ShapeMismatchException(op, argument, "non-negative strides", GpuNetException.FormatShape(strides));
        if (length == 0)
            return 0;   // reaches nothing, wherever it starts (Tensor stores an empty view's offset as 0)
        if (offset < 0 || offset >= capacity)
            throw new ShapeMismatchException(op, argument, $"a view inside its storage of {capacity} elements", $"offset {offset}");
        long distance = 0;   // Σ (size−1)·stride: each term < 2^62 and the rank is small, so the sum cannot wrap
        for (int i = 0; i < shape.Length; i++)
            distance += (long)(shape[i] - 1) * strides[i];
        long last = offset + distance;
        if (last >= capacity)
            throw new ShapeMismatchException(op, argument, $"a view inside its storage of {capacity} elements",
                $"shape {GpuNetException.FormatShape(shape)} strides {GpuNetException.FormatShape(strides)} offset {offset}, reaching element {last}");
        return distance + 1;
    }

    /// <summary>Row-major strides of a contiguous tensor of <paramref name="shape"/>.</summary>
    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var strides = new int[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            // An empty tensor's outer strides can pass int range ([0, 65536, 65536]); no element is reached through them.
            strides[i] = (int)Math.Min(s, int.MaxValue);
            s = Math.Min(s * Math.Max(shape[i], 1), (long)int.MaxValue + 1);
        }
        return strides;
    }

    /// <summary>
    /// Strides under which the elements of a tensor of <paramref name="shape"/> and <paramref name="strides"/>, in row-major
    /// order, take <paramref name="newShape"/> without moving (PyTorch's <c>view</c>): each run of dimensions that is contiguous
    /// within itself may be split or merged, never two runs into one. Null when no such strides exist (a transposed matrix
    /// read as a vector).
    /// </summary>
    public static int[]? ViewStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides, ReadOnlySpan<int> newShape)
    {
        if (Product(shape) == 0 || shape.Length == 0)
            return ContiguousStrides(newShape);
        var result = new int[newShape.Length];
        int view = newShape.Length - 1;
        long chunkStride = strides[^1], tensorCount = 1, viewCount = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            tensorCount *= shape[d];
            // A run ends where the next outer dimension does not continue it (size-1 dimensions always do).
            if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensorCount * chunkStride))
            {
                while (view >= 0 && (viewCount < tensorCount || newShape[view] == 1))
                {
                    result[view] = (int)(viewCount * chunkStride);
                    viewCount *= newShape[view];
                    view--;
                }
                if (viewCount != tensorCount)
                    return null;
                if (d > 0)
                {
                    chunkStride = strides[d - 1];
                    tensorCount = viewCount = 1;
                }
            }
        }
        return view == -1 ? result : null;
    }

    /// <summary>True when <paramref name="strides"/> are row-major contiguous for <paramref name="shape"/> (size-1 dimensions may have any stride).</summary>
    public static bool IsContiguous(ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        if (shape.Contains(0))
            return true;   // an empty tensor reads nothing, in any layout
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
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
        // Arrays of the full rank filled in place and cut to length once: the lists and projections this used to build were
        // most of a small elementwise op's host time (every ONNX Add, Transpose and Slice of a small model).
        int rank = shape.Length, count = 0;
        var dims = new int[rank];
        var outStrides = new int[strides.Length][];
        for (int k = 0; k < strides.Length; k++)
            outStrides[k] = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            if (shape[i] == 1)
                continue;
            bool merge = count > 0;
            for (int k = 0; merge && k < strides.Length; k++)
                merge = outStrides[k][count - 1] == strides[k][i] * shape[i];
            if (merge)
            {
                dims[count - 1] *= shape[i];
                for (int k = 0; k < strides.Length; k++)
                    outStrides[k][count - 1] = strides[k][i];
            }
            else
            {
                dims[count] = shape[i];
                for (int k = 0; k < strides.Length; k++)
                    outStrides[k][count] = strides[k][i];
                count++;
            }
        }
        if (count < rank)
        {
            Array.Resize(ref dims, count);
            for (int k = 0; k < strides.Length; k++)
                Array.Resize(ref outStrides[k], count);
        }
        return (dims, outStrides);
    }
}

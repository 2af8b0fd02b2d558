namespace GpuNet.Onnx.Operators;

/// <summary>
/// Shapes, index maps and the conversions between the host (integers, bools) and the device (floats) that every
/// operator family uses. Layout ops describe their result as an index map — for each output element the flat index
/// of its source element (−1: a padding value) — which is applied by one code path to host integers and, through
/// the gather_rows kernel, to device floats.
/// </summary>
internal static class Values
{
    /// <summary>Largest float tensor an index map may address: the gather kernel takes indices as floats, exact to 2^24.</summary>
    public const int MaxMappedElements = 1 << 24;

    public static int[] Strides(ReadOnlySpan<int> dims) => ShapeUtil.ContiguousStrides(dims);

    /// <summary>Elements of a shape; beyond 2^31 (a corrupt or hostile shape) a typed error instead of an overflowing count.</summary>
    public static int Count(ReadOnlySpan<int> dims)
    {
        long n = OnnxTensor.Product(dims);
        return n <= int.MaxValue ? (int)n : throw new OnnxRunException($"a tensor of shape {GpuNetException.FormatShape(dims)} ({n} elements) exceeds 2^31 elements");
    }

    /// <summary>An axis attribute in [−rank, rank) made non-negative; out of range is a typed error naming the node.</summary>
    public static int Axis(OpContext c, long axis, int rank, string what = "axis")
    {
        if (axis < -rank || axis >= Math.Max(rank, 1))
            throw c.Shape(what, $"an axis in [{-rank}, {rank})", axis.ToString());
        return (int)(axis < 0 ? axis + rank : axis);
    }

    /// <summary>The NumPy broadcast of several shapes.</summary>
    public static int[] Broadcast(OpContext c, params int[][] shapes) =>
        TryBroadcast(shapes) ?? throw c.Shape("inputs", "shapes that broadcast", string.Join(" and ", shapes.Select(x => GpuNetException.FormatShape(x))));

    /// <summary>The NumPy broadcast of several shapes, or null when they do not broadcast (load-time shape inference asks).</summary>
    public static int[]? TryBroadcast(IReadOnlyList<int[]> shapes)
    {
        int rank = shapes.Max(s => s.Length);
        var r = Enumerable.Repeat(1, rank).ToArray();
        foreach (var s in shapes)
            for (int i = 0; i < s.Length; i++)
            {
                int d = s[i], at = rank - s.Length + i;
                if (d == r[at] || d == 1)
                    continue;
                if (r[at] != 1)
                    return null;
                r[at] = d;
            }
        return r;
    }

    /// <summary>For each element of <paramref name="to"/>, the flat index of the element of <paramref name="from"/> broadcasting reads.</summary>
    public static long[] BroadcastMap(ReadOnlySpan<int> from, int[] to)
    {
        int n = Count(to), lead = to.Length - from.Length;
        var srcStrides = Strides(from);
        var map = new long[n];
        var idx = new int[to.Length];
        for (int i = 0; i < n; i++)
        {
            long s = 0;
            for (int d = 0; d < from.Length; d++)
                if (from[d] != 1)
                    s += (long)idx[lead + d] * srcStrides[d];
            map[i] = s;
            Increment(idx, to);
        }
        return map;
    }

    /// <summary>An index map from a function of the output multi-index (−1: padding).</summary>
    public static long[] Map(int[] outDims, Func<int[], long> source)
    {
        int n = Count(outDims);
        var map = new long[n];
        var idx = new int[outDims.Length];
        for (int k = 0; k < n; k++)
        {
            map[k] = source(idx);
            Increment(idx, outDims);
        }
        return map;
    }

    /// <summary>Advances a row-major multi-index.</summary>
    public static void Increment(int[] idx, ReadOnlySpan<int> dims)
    {
        for (int d = idx.Length - 1; d >= 0; d--)
        {
            if (++idx[d] < dims[d])
                return;
            idx[d] = 0;
        }
    }

    /// <summary>Applies an index map: host integers directly, device floats through gather_rows (−1 reads <paramref name="pad"/>).</summary>
    public static OnnxTensor Remap(OpContext c, OnnxTensor x, long[] map, int[] outDims, float pad = 0f)
    {
        if (!x.IsFloat)
        {
            var src = x.Ints;
            var r = new long[map.Length];
            for (int i = 0; i < map.Length; i++)
                r[i] = map[i] < 0 ? (long)pad : src[map[i]];
            return OnnxTensor.Integers(x.ElementType, r, outDims);
        }
        return Float(GatherFlat(c, x.On(c.Device), map, pad), outDims);
    }

    /// <summary>out[i] = flat(x)[map[i]] on the device (map −1: <paramref name="pad"/>), shaped as the device shape of the map's length.</summary>
    public static Tensor GatherFlat(OpContext c, Tensor x, long[] map, float pad = 0f)
    {
        int n = (int)x.Length;
        bool padded = map.Any(m => m < 0);
        if (n + 1 > MaxMappedElements)
            throw new OnnxRunException($"{c.Label}: a layout change of {n} elements exceeds the 2^24 the float-indexed gather addresses exactly");
        if (map.Length == 0)
            return Tensor.Empty(c.Device, 0);
        using var flat = x.Contiguous().Reshape(n, 1);
        Tensor source = flat;
        if (padded)
            source = Ops.Concat(new[] { flat, Ops.Full(c.Device, pad, 1, 1) }, 0);
        var indices = Tensor.FromArray(c.Device, Array.ConvertAll(map, m => m < 0 ? (float)n : m), map.Length);
        return Ops.GatherRows(source, indices).Reshape(map.Length);
    }

    /// <summary>
    /// <paramref name="t"/>'s elements under <paramref name="shape"/> (−1 allowed once) as an op's input, with as few new handles as
    /// it takes: <see cref="Dense"/> of it, and a view of that only when the shape differs. <c>Contiguous().Reshape(…)</c> made two views of a contiguous tensor (LayerNorm's
    /// input, scale and bias: six per node). Not for outputs (see <see cref="Float"/>).
    /// </summary>
    public static Tensor AsShape(Tensor t, params int[] shape)
    {
        var dense = Dense(t);
        return HasShape(dense, shape) ? dense : dense.Reshape(shape);
    }

    /// <summary><paramref name="t"/> itself when it is contiguous, else a contiguous copy (an op's input, not an output).</summary>
    public static Tensor Dense(Tensor t) => t.IsContiguous ? t : t.Contiguous();

    /// <summary>Whether <paramref name="t"/>'s dimensions are <paramref name="shape"/> (a −1 in it never matches).</summary>
    private static bool HasShape(Tensor t, int[] shape)
    {
        if (t.Rank != shape.Length)
            return false;
        for (int d = 0; d < shape.Length; d++)
            if (t.Size(d) != shape[d])
                return false;
        return true;
    }

    /// <summary>
    /// A device result with ONNX dimensions through a handle of its own: <paramref name="t"/> may be an input's own tensor (a
    /// reshape), and the result's lifetime must not be tied to it. A tensor the node made itself (<see cref="TensorScope.IsTemporary"/>,
    /// or the contiguous copy of a strided one) is that handle when its shape fits, and escapes the node's scope now, so a
    /// second output of the same tensor gets a view of its own; any other gets one view (a contiguous copy and then a view of
    /// it made two handles per output, ~0.5 µs of every node). Temporaries are freed by the node's scope.
    /// </summary>
    public static OnnxTensor Float(Tensor t, int[] dims)
    {
        var shape = OnnxTensor.DeviceShape(dims);
        var own = t.IsContiguous ? (TensorScope.IsTemporary(t) ? t : null) : t.Contiguous();
        if (own is not null && HasShape(own, shape))
            return OnnxTensor.Device(TensorScope.Escape(own), dims);
        return OnnxTensor.Device((own ?? t).Reshape(shape), dims);
    }

    /// <summary>The same elements under new dimensions (Reshape, Squeeze, Flatten...): no copy for host data or contiguous device data.</summary>
    public static OnnxTensor Reshaped(OpContext c, OnnxTensor x, int[] dims)
    {
        if (OnnxTensor.Product(dims) != x.Length)
            throw c.Shape("shape", $"{x.Length} elements", GpuNetException.FormatShape(dims));
        if (!x.IsFloat)
            return OnnxTensor.Integers(x.ElementType, x.Ints, dims);
        return Float(x.On(c.Device), dims);
    }

    /// <summary>Integers of an input that must be known (shapes, axes, pads): host int64/int32 data.</summary>
    public static long[] Longs(OpContext c, OnnxTensor? x, string what)
    {
        if (x is null)
            throw c.Shape(what, "an integer tensor", "none");
        if (x.IsFloat)
            throw c.Shape(what, "an integer tensor", "float data");
        return x.Ints;
    }

    /// <summary>A 0/1 float device tensor as a host bool tensor (comparisons of floats).</summary>
    public static OnnxTensor ToBool(Tensor zeroOne, int[] dims)
    {
        var v = zeroOne.ToArray();
        return OnnxTensor.Integers(OnnxElementType.Bool, Array.ConvertAll(v, f => f != 0 ? 1L : 0L), dims);
    }

    /// <summary>Host integer data as a float device tensor.</summary>
    public static Tensor Upload(OpContext c, OnnxTensor x) =>
        x.IsFloat ? x.On(c.Device) : Tensor.FromArray(c.Device, Array.ConvertAll(x.Ints, v => (float)v), OnnxTensor.DeviceShape(x.Dims));
}

using GpuNet.Onnx.Proto;

namespace GpuNet.Onnx.Operators;

/// <summary>
/// Shape and layout operators: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice,
/// Gather, GatherElements, Expand, Tile, Pad, Trilu, DepthToSpace, SpaceToDepth, CumSum, Constant, ConstantOfShape,
/// Range, Identity, Dropout. Reshapes are free (same storage); Transpose, Concat, unit-step Slice and Expand use device
/// views; the rest are index maps (see <see cref="Values"/>).
/// </summary>
internal static class ShapeOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return new OpSpec("Shape", (c, i) =>
        {
            var dims = i[0]!.Shape;
            int start = Clamp(c.Int("start", 0), dims.Length), end = Clamp(c.Int("end", dims.Length), dims.Length);
            var r = dims[start..Math.Max(start, end)].Select(d => (long)d).ToArray();
            return new[] { OnnxTensor.Integers(OnnxElementType.Int64, r, new[] { r.Length }) };
        });
        yield return new OpSpec("Size", (c, i) => new[] { OnnxTensor.Integers(OnnxElementType.Int64, new[] { i[0]!.Length }, Array.Empty<int>()) });
        yield return new OpSpec("Reshape", Reshape, 5);
        yield return new OpSpec("Flatten", (c, i) =>
        {
            var d = i[0]!.Shape;
            int axis = c.Int("axis", 1) is var a && a < 0 ? (int)a + d.Length : (int)a;
            if (axis < 0 || axis > d.Length)
                throw c.Shape("axis", $"an axis in [{-d.Length}, {d.Length}]", c.Int("axis", 1).ToString());
            return new[] { Values.Reshaped(c, i[0]!, new[] { Values.Count(d[..axis]), Values.Count(d[axis..]) }) };
        });
        yield return new OpSpec("Squeeze", Squeeze);
        yield return new OpSpec("Unsqueeze", Unsqueeze);
        yield return new OpSpec("Transpose", Transpose);
        yield return new OpSpec("Concat", Concat, 4);
        yield return new OpSpec("Split", Split, 2);
        yield return new OpSpec("Slice", Slice);
        yield return new OpSpec("Gather", Gather);
        yield return new OpSpec("GatherElements", GatherElements, 11);
        yield return new OpSpec("Expand", Expand, 8);
        yield return new OpSpec("Tile", Tile, 6);
        yield return new OpSpec("Pad", Pad, 2, c => c.String("mode", "constant") is "constant" or "reflect" or "edge" ? null : $"Pad mode '{c.String("mode", "")}' is not supported");
        yield return new OpSpec("Trilu", Trilu, 14);
        yield return new OpSpec("DepthToSpace", DepthToSpace);
        yield return new OpSpec("SpaceToDepth", SpaceToDepth);
        yield return new OpSpec("CumSum", CumSum, 11);
        yield return new OpSpec("Constant", Constant, 1, c =>
            c.Has("sparse_value") ? "Constant with a sparse_value is not supported" : c.Has("value_string") || c.Has("value_strings") ? "string constants are not supported" : null);
        yield return new OpSpec("ConstantOfShape", ConstantOfShape, 9);
        yield return new OpSpec("Range", Range, 11);
        yield return new OpSpec("Identity", (c, i) => new[] { i[0]!.Share() });
        yield return new OpSpec("Dropout", Dropout, 1, Deterministic: true);
    }

    private static int Clamp(long v, int rank) => (int)Math.Clamp(v < 0 ? v + rank : v, 0, rank);

    private static long Flat(int[] idx, int[] strides)
    {
        long s = 0;
        for (int d = 0; d < idx.Length; d++)
            s += (long)idx[d] * strides[d];
        return s;
    }

    private static OnnxTensor[] Reshape(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var dims = ReshapeDims(c, Values.Longs(c, i[1], "shape"), c.Int("allowzero", 0) != 0, x.Dims, x.Length);
        return new[] { Values.Reshaped(c, x, dims) };
    }

    /// <summary>Reshape's target dimensions for an input of <paramref name="inputDims"/> (<paramref name="length"/> elements):
    /// −1 inferred, 0 the input's dimension unless <paramref name="allowZero"/>.</summary>
    internal static int[] ReshapeDims(OpContext c, long[] target, bool allowZero, ReadOnlySpan<int> inputDims, long length)
    {
        var dims = new int[target.Length];
        int infer = -1;
        for (int d = 0; d < dims.Length; d++)
        {
            long t = target[d];
            if (t == -1)
            {
                if (infer >= 0)
                    throw c.Shape("shape", "at most one −1", "[" + string.Join(", ", target) + "]");
                infer = d;
                dims[d] = 1;
            }
            else if (t == 0 && !allowZero)
                dims[d] = d < inputDims.Length ? inputDims[d] : throw c.Shape("shape", $"0 only where the input has dimension {d}", "[" + string.Join(", ", target) + "]");
            else if (t < 0)
                throw c.Shape("shape", "dimensions ≥ −1", "[" + string.Join(", ", target) + "]");
            else
                dims[d] = (int)t;
        }
        if (infer >= 0)
        {
            long rest = OnnxTensor.Product(dims);
            if (rest == 0 || length % rest != 0)
                throw c.Shape("shape", $"a shape for {length} elements", "[" + string.Join(", ", target) + "]");
            dims[infer] = (int)(length / rest);
        }
        return dims;
    }

    private static long[]? AxesOf(OpContext c, OnnxTensor?[] i, int inputIndex) =>
        c.Opset >= 13 ? (i.Length > inputIndex && i[inputIndex] is { } a ? Values.Longs(c, a, "axes") : null) : c.Ints("axes");

    private static OnnxTensor[] Squeeze(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var axes = AxesOf(c, i, 1)?.Select(a => Values.Axis(c, a, x.Rank, "axes")).ToHashSet();
        foreach (var a in axes ?? new HashSet<int>())
            if (x.Dims[a] != 1)
                throw c.Shape("axes", "axes of size 1", $"axis {a} of {GpuNetException.FormatShape(x.Dims)}");
        var dims = x.Shape.Where((d, k) => axes is null ? d != 1 : !axes.Contains(k)).ToArray();
        return new[] { Values.Reshaped(c, x, dims) };
    }

    private static OnnxTensor[] Unsqueeze(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var given = AxesOf(c, i, 1) ?? throw c.Shape("axes", "axes to insert", "none");
        int rank = x.Rank + given.Length;
        var axes = given.Select(a => Values.Axis(c, a, rank, "axes")).ToHashSet();
        if (axes.Count != given.Length)
            throw c.Shape("axes", "distinct axes", "[" + string.Join(", ", given) + "]");
        var dims = new int[rank];
        for (int d = 0, k = 0; d < rank; d++)
            dims[d] = axes.Contains(d) ? 1 : x.Dims[k++];
        return new[] { Values.Reshaped(c, x, dims) };
    }

    /// <summary>Whether <paramref name="perm"/> (axes already in [0, rank)) names each of <paramref name="rank"/> axes once.</summary>
    private static bool IsPermutation(int[] perm, int rank)
    {
        if (perm.Length != rank)
            return false;
        Span<bool> seen = stackalloc bool[rank];
        foreach (int axis in perm)
        {
            if (seen[axis])
                return false;
            seen[axis] = true;
        }
        return true;
    }

    private static OnnxTensor[] Transpose(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var perm = c.Ints("perm")?.Select(p => Values.Axis(c, p, x.Rank, "perm")).ToArray() ?? Enumerable.Range(0, x.Rank).Reverse().ToArray();
        if (!IsPermutation(perm, x.Rank))
            throw c.Shape("perm", $"a permutation of {x.Rank} axes", "[" + string.Join(", ", perm) + "]");
        var dims = perm.Select(p => x.Dims[p]).ToArray();
        if (x.IsFloat && x.Rank > 0)
            return new[] { Values.Float(x.On(c.Device).Permute(perm).Contiguous(), dims) };
        var strides = Values.Strides(x.Dims);
        return new[] { Values.Remap(c, x, Values.Map(dims, idx => { long s = 0; for (int d = 0; d < idx.Length; d++) s += (long)idx[d] * strides[perm[d]]; return s; }), dims) };
    }

    private static OnnxTensor[] Concat(OpContext c, OnnxTensor?[] i)
    {
        var parts = i.Select(x => x!).ToList();
        int rank = parts[0].Rank;
        int axis = Values.Axis(c, c.Int("axis", c.Opset < 4 ? 1 : 0), rank);
        foreach (var p in parts)
            if (p.Rank != rank || Enumerable.Range(0, rank).Any(d => d != axis && p.Dims[d] != parts[0].Dims[d]))
                throw c.Shape("inputs", $"shapes equal but on axis {axis}", string.Join(", ", parts.Select(q => GpuNetException.FormatShape(q.Dims))));
        var dims = parts[0].Shape;
        dims[axis] = parts.Sum(p => p.Dims[axis]);
        if (parts.Any(p => p.IsFloat))
        {
            var nonEmpty = parts.Where(p => p.Length > 0).Select(p => Values.Upload(c, p)).ToList();
            if (nonEmpty.Count == 0)
                return new[] { OnnxTensor.Device(Tensor.Empty(c.Device, OnnxTensor.DeviceShape(dims)), dims) };
            return new[] { Values.Float(nonEmpty.Count == 1 ? nonEmpty[0].Contiguous() : Ops.Concat(nonEmpty, axis), dims) };
        }
        // Host: walk the output; each position along the axis belongs to one part.
        var owner = new (int Part, int Offset)[dims[axis]];
        for (int p = 0, at = 0; p < parts.Count; p++)
            for (int k = 0; k < parts[p].Dims[axis]; k++)
                owner[at++] = (p, k);
        var strides = parts.Select(p => Values.Strides(p.Dims)).ToList();
        var data = parts.Select(p => p.Ints).ToList();
        int n = Values.Count(dims);
        var r = new long[n];
        var idx = new int[rank];
        for (int k = 0; k < n; k++)
        {
            var (part, offset) = owner[idx[axis]];
            long s = 0;
            for (int d = 0; d < rank; d++)
                s += (long)(d == axis ? offset : idx[d]) * strides[part][d];
            r[k] = data[part][s];
            Values.Increment(idx, dims);
        }
        return new[] { OnnxTensor.Integers(parts[0].ElementType, r, dims) };
    }

    private static OnnxTensor[] Split(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        int axis = Values.Axis(c, c.Int("axis", 0), x.Rank);
        int outputs = c.Node.Outputs.Count;
        var sizes = (c.Opset >= 13 ? (i.Length > 1 && i[1] is { } s ? Values.Longs(c, s, "split") : null) : c.Ints("split"))?.Select(v => (int)v).ToArray();
        if (sizes is null)
        {
            if (x.Dims[axis] % outputs != 0)
                throw c.Shape("input", $"dimension {axis} divisible into {outputs} equal parts", GpuNetException.FormatShape(x.Dims));
            sizes = Enumerable.Repeat(x.Dims[axis] / outputs, outputs).ToArray();
        }
        if (sizes.Sum() != x.Dims[axis] || sizes.Any(v => v < 0))
            throw c.Shape("split", $"sizes summing to {x.Dims[axis]}", "[" + string.Join(", ", sizes) + "]");
        var result = new OnnxTensor[sizes.Length];
        for (int p = 0, start = 0; p < sizes.Length; start += sizes[p], p++)
            result[p] = SliceAxis(c, x, axis, start, sizes[p]);
        return result;
    }

    /// <summary>Elements [start, start + length) along one axis: a device view copied out, or a host index map.</summary>
    private static OnnxTensor SliceAxis(OpContext c, OnnxTensor x, int axis, int start, int length)
    {
        var dims = x.Shape;
        dims[axis] = length;
        if (x.IsFloat)
            return Values.Float(length == 0 ? Tensor.Empty(c.Device, OnnxTensor.DeviceShape(dims)) : x.On(c.Device).Slice(axis, start, length).Contiguous(), dims);
        var strides = Values.Strides(x.Dims);
        return Values.Remap(c, x, Values.Map(dims, idx => Flat(idx, strides) + (long)start * strides[axis]), dims);
    }

    private static OnnxTensor[] Slice(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        // The window for this input shape and these starts/ends/axes/steps values (the same constant tensors run after run),
        // worked out once: parsing them and building the arrays was most of a small slice's time (a TransformerEncoder's
        // 16×64 query, key and value slices: ~2 µs each).
        if (c.Memo is SliceMemo memo && memo.Fits(x, i))
            return SliceWindow(c, x, memo.First, memo.Step, memo.Dims.AsSpan().ToArray());
        var (first, step, dims) = SliceParameters(c, x, i);
        c.Memo = new SliceMemo(x.Shape, i.Skip(1).ToArray(), first, step, dims.AsSpan().ToArray());
        return SliceWindow(c, x, first, step, dims);
    }

    /// <summary>A slice node's window for one input shape and one set of parameter tensors (<see cref="OpContext.Memo"/>).</summary>
    private sealed record SliceMemo(int[] Input, OnnxTensor?[] Parameters, int[] First, int[] Step, int[] Dims)
    {
        public bool Fits(OnnxTensor x, OnnxTensor?[] i)
        {
            if (!Input.AsSpan().SequenceEqual(x.Dims) || i.Length - 1 != Parameters.Length)
                return false;
            for (int k = 0; k < Parameters.Length; k++)
                if (!ReferenceEquals(Parameters[k], i[k + 1]))
                    return false;
            return true;
        }
    }

    private static OnnxTensor[] SliceWindow(OpContext c, OnnxTensor x, int[] first, int[] step, int[] dims)
    {
        if (x.IsFloat && step.All(s => s == 1))
        {
            if (dims.Contains(0))
                return new[] { OnnxTensor.Device(Tensor.Empty(c.Device, OnnxTensor.DeviceShape(dims)), dims) };
            var view = x.On(c.Device);
            for (int d = 0; d < x.Rank; d++)
                if (dims[d] != x.Dims[d])
                    view = view.Slice(d, first[d], dims[d]);
            return new[] { Values.Float(view.Contiguous(), dims) };
        }
        var strides = Values.Strides(x.Dims);
        return new[] { Values.Remap(c, x, Values.Map(dims, idx => { long s = 0; for (int d = 0; d < idx.Length; d++) s += (long)(first[d] + idx[d] * step[d]) * strides[d]; return s; }), dims) };
    }

    /// <summary>The first index and count that Slice's start <paramref name="b"/>, end <paramref name="e"/> and nonzero step
    /// <paramref name="st"/> select along a dimension of <paramref name="dim"/> (negative ends count from the end, both clamped).</summary>
    internal static (int First, int Count) SliceRange(long b, long e, long st, long dim)
    {
        if (b < 0) b += dim;
        if (e < 0) e += dim;
        if (st > 0)
        {
            b = Math.Clamp(b, 0, dim);
            e = Math.Clamp(e, 0, dim);
        }
        else
        {
            b = Math.Clamp(b, 0, dim - 1);
            e = Math.Clamp(e, -1, dim - 1);
        }
        long count = st > 0 ? Math.Max(0, (e - b + st - 1) / st) : Math.Max(0, (b - e + (-st) - 1) / (-st));
        return ((int)b, (int)count);
    }

    /// <summary>The first index, step and count along every axis of x that Slice's starts, ends, axes and steps select.</summary>
    private static (int[] First, int[] Step, int[] Dims) SliceParameters(OpContext c, OnnxTensor x, OnnxTensor?[] i)
    {
        long[] starts, ends, axes, steps;
        if (c.Opset < 10)
        {
            starts = c.Ints("starts") ?? throw c.Shape("starts", "the starts attribute", "none");
            ends = c.Ints("ends") ?? throw c.Shape("ends", "the ends attribute", "none");
            axes = c.Ints("axes") ?? Enumerable.Range(0, starts.Length).Select(a => (long)a).ToArray();
            steps = Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        else
        {
            starts = Values.Longs(c, i[1], "starts");
            ends = Values.Longs(c, i[2], "ends");
            axes = i.Length > 3 && i[3] is { } a ? Values.Longs(c, a, "axes") : Enumerable.Range(0, starts.Length).Select(v => (long)v).ToArray();
            steps = i.Length > 4 && i[4] is { } s ? Values.Longs(c, s, "steps") : Enumerable.Repeat(1L, starts.Length).ToArray();
        }
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
            throw c.Shape("starts/ends/axes/steps", "equal lengths", $"{starts.Length}, {ends.Length}, {axes.Length}, {steps.Length}");
        var dims = x.Shape;
        var first = new int[x.Rank];
        var step = Enumerable.Repeat(1, x.Rank).ToArray();
        for (int k = 0; k < starts.Length; k++)
        {
            int axis = Values.Axis(c, axes[k], x.Rank, "axes");
            long dim = x.Dims[axis], st = steps[k];
            if (st == 0)
                throw c.Shape("steps", "nonzero steps", "0");
            var (b0, count) = SliceRange(starts[k], ends[k], st, dim);
            (first[axis], step[axis], dims[axis]) = (b0, (int)st, count);
        }
        return (first, step, dims);
    }

    private static OnnxTensor[] Gather(OpContext c, OnnxTensor?[] i)
    {
        var (x, ind) = (i[0]!, i[1]!);
        int axis = Values.Axis(c, c.Int("axis", 0), x.Rank);
        var indices = Values.Longs(c, ind, "indices");
        long dim = x.Dims[axis];
        var fixedIdx = new long[indices.Length];
        for (int k = 0; k < indices.Length; k++)
        {
            long v = indices[k] < 0 ? indices[k] + dim : indices[k];
            if (v < 0 || v >= dim)
                throw c.Shape("indices", $"indices in [{-dim}, {dim})", indices[k].ToString());
            fixedIdx[k] = v;
        }
        var dims = x.Shape[..axis].Concat(ind.Shape).Concat(x.Shape[(axis + 1)..]).ToArray();
        if (x.IsFloat && axis == 0 && x.Length > 0 && fixedIdx.Length > 0)
        {
            var rows = Values.AsShape(x.On(c.Device), x.Dims[0], (int)(x.Length / x.Dims[0]));
            var picked = Ops.GatherRows(rows, Tensor.FromArray(c.Device, Array.ConvertAll(fixedIdx, v => (float)v), fixedIdx.Length));
            return new[] { Values.Float(picked, dims) };
        }
        var strides = Values.Strides(x.Dims);
        int q = ind.Rank;
        var indStrides = Values.Strides(ind.Dims);
        return new[] { Values.Remap(c, x, Values.Map(dims, idx =>
        {
            long s = 0;
            for (int d = 0; d < axis; d++) s += (long)idx[d] * strides[d];
            long at = 0;
            for (int d = 0; d < q; d++) at += (long)idx[axis + d] * indStrides[d];
            s += fixedIdx[at] * strides[axis];
            for (int d = axis + 1; d < x.Rank; d++) s += (long)idx[d + q - 1] * strides[d];
            return s;
        }), dims) };
    }

    private static OnnxTensor[] GatherElements(OpContext c, OnnxTensor?[] i)
    {
        var (x, ind) = (i[0]!, i[1]!);
        int axis = Values.Axis(c, c.Int("axis", 0), x.Rank);
        var indices = Values.Longs(c, ind, "indices");
        if (ind.Rank != x.Rank)
            throw c.Shape("indices", $"rank {x.Rank}", GpuNetException.FormatShape(ind.Dims));
        var strides = Values.Strides(x.Dims);
        long dim = x.Dims[axis];
        int k = 0;
        return new[] { Values.Remap(c, x, Values.Map(ind.Shape, idx =>
        {
            long v = indices[k++];
            if (v < 0) v += dim;
            if (v < 0 || v >= dim)
                throw c.Shape("indices", $"indices in [{-dim}, {dim})", indices[k - 1].ToString());
            long s = 0;
            for (int d = 0; d < idx.Length; d++) s += (d == axis ? v : idx[d]) * strides[d];
            return s;
        }), ind.Shape) };
    }

    private static OnnxTensor[] Expand(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var shape = Values.Longs(c, i[1], "shape").Select(v => (int)v).ToArray();
        var dims = Values.Broadcast(c, x.Shape, shape);
        if (x.IsFloat && x.Length > 0 && Values.Count(dims) > 0)
        {
            var t = x.On(c.Device);
            var lifted = t.Reshape(Enumerable.Repeat(1, dims.Length - x.Rank).Concat(OnnxTensor.DeviceShape(x.Dims).Take(x.Rank)).DefaultIfEmpty(1).ToArray());
            return new[] { Values.Float(lifted.Expand(OnnxTensor.DeviceShape(dims)).Contiguous(), dims) };
        }
        return new[] { Values.Remap(c, x, Values.BroadcastMap(x.Dims, dims), dims) };
    }

    private static OnnxTensor[] Tile(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var repeats = Values.Longs(c, i[1], "repeats");
        if (repeats.Length != x.Rank || repeats.Any(r => r < 0))
            throw c.Shape("repeats", $"{x.Rank} non-negative repeats", "[" + string.Join(", ", repeats) + "]");
        var dims = x.Shape.Select((d, k) => d * (int)repeats[k]).ToArray();
        var strides = Values.Strides(x.Dims);
        return new[] { Values.Remap(c, x, Values.Map(dims, idx => { long s = 0; for (int d = 0; d < idx.Length; d++) s += (long)(idx[d] % x.Dims[d]) * strides[d]; return s; }), dims) };
    }

    /// <summary>Pad (constant, reflect, edge): pads before opset 11 are an attribute, from 11 an input; negative pads crop.</summary>
    private static OnnxTensor[] Pad(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        long[] pads;
        float value;
        if (c.Opset < 11)
        {
            pads = c.Ints("pads") ?? c.Ints("paddings") ?? throw c.Shape("pads", "the pads attribute", "none");
            value = c.Float("value", 0f);
        }
        else
        {
            pads = Values.Longs(c, i[1], "pads");
            value = i.Length > 2 && i[2] is { } v && v.Length > 0 ? v.Floats[0] : 0f;
        }
        int rank = x.Rank;
        if (pads.Length != 2 * rank)
            throw c.Shape("pads", $"{2 * rank} values (begin and end of each axis)", pads.Length.ToString());
        string mode = c.String("mode", "constant");
        var dims = x.Shape.Select((d, k) => d + (int)pads[k] + (int)pads[k + rank]).ToArray();
        if (dims.Any(d => d < 0))
            throw c.Shape("pads", "pads that leave every dimension ≥ 0", "[" + string.Join(", ", pads) + "]");
        if (mode == "reflect" && x.Shape.Select((d, k) => (d, k)).Any(t => (pads[t.k] > 0 || pads[t.k + rank] > 0) && (t.d < 2 || pads[t.k] >= t.d || pads[t.k + rank] >= t.d)))
            throw c.Shape("pads", "reflect pads smaller than each padded dimension", "[" + string.Join(", ", pads) + "] on " + GpuNetException.FormatShape(x.Dims));
        if (mode == "edge" && x.Length == 0 && dims.Any(d => d > 0))
            throw c.Shape("input", "a non-empty input for edge padding", GpuNetException.FormatShape(x.Dims));
        var strides = Values.Strides(x.Dims);
        var map = Values.Map(dims, idx =>
        {
            long s = 0;
            for (int d = 0; d < rank; d++)
            {
                int p = idx[d] - (int)pads[d], n = x.Dims[d];
                if (p < 0 || p >= n)
                {
                    if (mode == "constant")
                        return -1;
                    p = mode == "edge" ? Math.Clamp(p, 0, n - 1) : p < 0 ? -p : 2 * (n - 1) - p;
                }
                s += (long)p * strides[d];
            }
            return s;
        });
        return new[] { Values.Remap(c, x, map, dims, value) };
    }

    private static OnnxTensor[] Trilu(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        long k = i.Length > 1 && i[1] is { } kk ? Values.Longs(c, kk, "k")[0] : 0;
        bool upper = c.Int("upper", 1) != 0;
        if (x.Rank < 2)
            throw c.Shape("input", "rank ≥ 2", GpuNetException.FormatShape(x.Dims));
        var strides = Values.Strides(x.Dims);
        var dims = x.Shape;
        return new[] { Values.Remap(c, x, Values.Map(dims, idx =>
        {
            long row = idx[^2], col = idx[^1];
            bool keep = upper ? col - row >= k : col - row <= k;
            return keep ? Flat(idx, strides) : -1;
        }), dims) };
    }

    private static OnnxTensor[] DepthToSpace(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        int b = (int)c.Int("blocksize", 0);
        if (x.Rank != 4 || b <= 0 || x.Dims[1] % (b * b) != 0)
            throw c.Shape("input", $"[N, C, H, W] with C divisible by blocksize² ({b}²)", GpuNetException.FormatShape(x.Dims));
        bool crd = c.String("mode", "DCR") == "CRD";
        int n = x.Dims[0], ch = x.Dims[1] / (b * b), h = x.Dims[2], w = x.Dims[3];
        var dims = new[] { n, ch, h * b, w * b };
        var strides = Values.Strides(x.Dims);
        return new[] { Values.Remap(c, x, Values.Map(dims, idx =>
        {
            int oc = idx[1], bi = idx[2] % b, bj = idx[3] % b;
            int channel = crd ? oc * b * b + bi * b + bj : (bi * b + bj) * ch + oc;
            return (long)idx[0] * strides[0] + (long)channel * strides[1] + (long)(idx[2] / b) * strides[2] + idx[3] / b;
        }), dims) };
    }

    private static OnnxTensor[] SpaceToDepth(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        int b = (int)c.Int("blocksize", 0);
        if (x.Rank != 4 || b <= 0 || x.Dims[2] % b != 0 || x.Dims[3] % b != 0)
            throw c.Shape("input", $"[N, C, H, W] with H and W divisible by blocksize {b}", GpuNetException.FormatShape(x.Dims));
        int ch = x.Dims[1];
        var dims = new[] { x.Dims[0], ch * b * b, x.Dims[2] / b, x.Dims[3] / b };
        var strides = Values.Strides(x.Dims);
        return new[] { Values.Remap(c, x, Values.Map(dims, idx =>
        {
            int block = idx[1] / ch, ic = idx[1] % ch;
            return (long)idx[0] * strides[0] + (long)ic * strides[1] + (long)(idx[2] * b + block / b) * strides[2] + idx[3] * b + block % b;
        }), dims) };
    }

    /// <summary>CumSum along an axis (exclusive / reverse) on the cumsum kernel; integer data on the host.</summary>
    private static OnnxTensor[] CumSum(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        int axis = Values.Axis(c, Values.Longs(c, i[1], "axis")[0], x.Rank);
        bool exclusive = c.Int("exclusive", 0) != 0, reverse = c.Int("reverse", 0) != 0;
        if (x.IsFloat)
            return new[] { Values.Float(Ops.CumSum(x.On(c.Device), axis, exclusive, reverse), x.Shape) };
        var data = x.Ints;
        var result = new long[data.Length];
        int dim = x.Dims[axis], inner = Values.Count(x.Dims[(axis + 1)..]), outer = Values.Count(x.Dims[..axis]);
        for (int o = 0; o < outer; o++)
            for (int inn = 0; inn < inner; inn++)
            {
                long sum = 0;
                for (int t = 0; t < dim; t++)
                {
                    long at = ((long)o * dim + (reverse ? dim - 1 - t : t)) * inner + inn;
                    if (exclusive)
                        result[at] = sum;
                    sum += data[at];
                    if (!exclusive)
                        result[at] = sum;
                }
            }
        return new[] { OnnxTensor.Integers(x.ElementType, result, x.Shape) };
    }

    private static OnnxTensor[] Constant(OpContext c, OnnxTensor?[] i)
    {
        if (c.TensorAttribute("value") is { } t)
            return new[] { OnnxTensor.FromProto(t, null, "Constant value") };
        if (c.Has("value_float"))
            return new[] { OnnxTensor.HostFloats(new[] { c.Float("value_float", 0) }, Array.Empty<int>()) };
        if (c.Floats("value_floats") is { } fs)
            return new[] { OnnxTensor.HostFloats(fs, new[] { fs.Length }) };
        if (c.Has("value_int"))
            return new[] { OnnxTensor.Integers(OnnxElementType.Int64, new[] { c.Int("value_int", 0) }, Array.Empty<int>()) };
        if (c.Ints("value_ints") is { } ints)
            return new[] { OnnxTensor.Integers(OnnxElementType.Int64, ints, new[] { ints.Length }) };
        throw c.Shape("value", "a value attribute", "none");
    }

    private static OnnxTensor[] ConstantOfShape(OpContext c, OnnxTensor?[] i)
    {
        var dims = Values.Longs(c, i[0], "shape").Select(v => v >= 0 && v <= int.MaxValue ? (int)v : throw c.Shape("shape", "non-negative dimensions", v.ToString())).ToArray();
        var value = c.TensorAttribute("value") is { } t ? OnnxTensor.FromProto(t, null, "ConstantOfShape value") : OnnxTensor.HostFloats(new[] { 0f }, new[] { 1 });
        int n = Values.Count(dims);
        if (value.IsFloat)
            return new[] { OnnxTensor.Device(n == 0 ? Tensor.Empty(c.Device, OnnxTensor.DeviceShape(dims)) : Ops.Full(c.Device, value.Floats[0], OnnxTensor.DeviceShape(dims)), dims) };
        return new[] { OnnxTensor.Integers(value.ElementType, Enumerable.Repeat(value.Ints[0], n).ToArray(), dims) };
    }

    private static OnnxTensor[] Range(OpContext c, OnnxTensor?[] i)
    {
        var (start, limit, delta) = (i[0]!, i[1]!, i[2]!);
        if (start.IsFloat)
        {
            float s = start.Floats[0], l = limit.Floats[0], d = delta.Floats[0];
            int n = (int)Math.Max(Math.Ceiling((l - s) / (double)d), 0);
            var v = new float[n];
            for (int k = 0; k < n; k++)
                v[k] = s + k * d;
            return new[] { OnnxTensor.HostFloats(v, new[] { n }) };
        }
        long si = start.Ints[0], li = limit.Ints[0], di = delta.Ints[0];
        if (di == 0)
            throw c.Shape("delta", "a nonzero delta", "0");
        int count = (int)Math.Max(Math.Ceiling((li - si) / (double)di), 0);
        return new[] { OnnxTensor.Integers(start.ElementType, Enumerable.Range(0, count).Select(k => si + k * di).ToArray(), new[] { count }) };
    }

    /// <summary>Dropout at inference is the identity (its mask all true); training mode with a nonzero ratio is refused, being random.</summary>
    private static OnnxTensor[] Dropout(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        bool training = c.Opset >= 12 && i.Length > 2 && i[2] is { } t && t.Ints[0] != 0;
        float ratio = c.Opset >= 12 ? (i.Length > 1 && i[1] is { } r ? r.Floats[0] : 0.5f) : c.Float("ratio", 0.5f);
        if (training && ratio > 0)
            throw new OnnxRunException($"{c.Label}: Dropout in training mode draws random masks; GpuNet's ONNX import runs inference only");
        return new[] { x.Share(), OnnxTensor.Integers(OnnxElementType.Bool, Enumerable.Repeat(1L, (int)x.Length).ToArray(), x.Shape) };
    }
}

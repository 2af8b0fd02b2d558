namespace GpuNet.Onnx.Operators;

/// <summary>
/// Indexing and scattering: OneHot, EyeLike, GatherND, ScatterElements/Scatter and ScatterND (plain scatter as an index
/// map into [data; updates] on the device; add/mul reductions on the host), Compress, NonZero, ReverseSequence; and the
/// composite normalizations MeanVarianceNormalization and LRN on the reduce and pooling kernels.
/// </summary>
internal static class IndexOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return new OpSpec("OneHot", OneHot, 9);
        yield return new OpSpec("EyeLike", EyeLike, 9, c => c.Has("dtype") && OnnxTensor.ElementSize((OnnxElementType)c.Int("dtype", 1)) == 0 ? $"EyeLike to {(OnnxElementType)c.Int("dtype", 1)} is not supported" : null);
        yield return new OpSpec("GatherND", GatherNd, 11);
        yield return new OpSpec("ScatterElements", Scatter, 11, ReductionCheck);
        yield return new OpSpec("Scatter", Scatter, 9);
        yield return new OpSpec("ScatterND", ScatterNd, 11, ReductionCheck);
        yield return new OpSpec("Compress", Compress, 9);
        yield return new OpSpec("NonZero", NonZero, 9);
        yield return new OpSpec("ReverseSequence", ReverseSequence, 10);
        yield return new OpSpec("MeanVarianceNormalization", MeanVariance, 9);
        yield return new OpSpec("LRN", Lrn);
    }

    private static string? ReductionCheck(OpContext c) =>
        c.String("reduction", "none") is "none" or "add" or "mul" ? null : $"reduction '{c.String("reduction", "")}' is not supported (none, add, mul are)";

    private static long[] Integers(OnnxTensor t) => t.IsFloat ? Array.ConvertAll(t.Floats, f => (long)f) : t.Ints;

    /// <summary>A host result in the element type of <paramref name="like"/> (floats stay host floats until a kernel needs them).</summary>
    private static OnnxTensor Host(OnnxTensor like, double[] values, int[] dims) => like.IsFloat
        ? OnnxTensor.HostFloats(Array.ConvertAll(values, v => (float)v), dims)
        : OnnxTensor.Integers(like.ElementType, Array.ConvertAll(values, v => (long)v), dims);

    private static double[] Doubles(OnnxTensor t) => t.IsFloat ? Array.ConvertAll(t.Floats, v => (double)v) : Array.ConvertAll(t.Ints, v => (double)v);

    private static OnnxTensor[] OneHot(OpContext c, OnnxTensor?[] i)
    {
        var indices = Integers(i[0]!);
        long depth = Integers(i[1]!)[0];
        var values = Doubles(i[2]!);
        if (depth <= 0 || values.Length != 2)
            throw c.Shape("depth/values", "depth ≥ 1 and values [off, on]", $"depth {depth}, {values.Length} values");
        int rank = i[0]!.Rank + 1;
        int axis = Values.Axis(c, c.Int("axis", -1), rank);
        var dims = i[0]!.Shape.ToList();
        dims.Insert(axis, (int)depth);
        var outDims = dims.ToArray();
        int inner = Values.Count(outDims[(axis + 1)..]);
        var result = new double[Values.Count(outDims)];
        Array.Fill(result, values[0]);
        for (int k = 0; k < indices.Length; k++)
        {
            long v = indices[k] < 0 ? indices[k] + depth : indices[k];
            if (v < 0 || v >= depth)
                continue;
            int outer = k / inner, rest = k % inner;
            result[((long)outer * depth + v) * inner + rest] = values[1];
        }
        return new[] { Host(i[2]!, result, outDims) };
    }

    private static OnnxTensor[] EyeLike(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        if (x.Rank != 2)
            throw c.Shape("input", "a matrix", GpuNetException.FormatShape(x.Dims));
        long k = c.Int("k", 0);
        var type = c.Has("dtype") ? (OnnxElementType)c.Int("dtype", 1) : x.ElementType;
        int rows = x.Dims[0], cols = x.Dims[1];
        var v = new double[rows * cols];
        for (int r = 0; r < rows; r++)
            if (r + k >= 0 && r + k < cols)
                v[r * cols + r + k] = 1;
        return new[] { type == OnnxElementType.Float ? OnnxTensor.HostFloats(Array.ConvertAll(v, d => (float)d), x.Shape) : OnnxTensor.Integers(type, Array.ConvertAll(v, d => (long)d), x.Shape) };
    }

    private static OnnxTensor[] GatherNd(OpContext c, OnnxTensor?[] i)
    {
        var (x, ind) = (i[0]!, i[1]!);
        var indices = Values.Longs(c, ind, "indices");
        int b = (int)c.Int("batch_dims", 0), q = ind.Rank, r = x.Rank, last = ind.Dims[^1];
        if (q < 1 || b >= Math.Min(q, r) || last > r - b || !ind.Dims[..b].SequenceEqual(x.Dims[..b]))
            throw c.Shape("indices", $"[batch..., ..., k] with k ≤ {r - b} and batch dimensions of data", GpuNetException.FormatShape(ind.Dims));
        var dims = ind.Shape[..^1].Concat(x.Shape[(b + last)..]).ToArray();
        var strides = Values.Strides(x.Dims);
        int slice = Values.Count(x.Dims[(b + last)..]);
        int perBatch = Values.Count(ind.Dims[b..^1]);
        var map = new long[Values.Count(dims)];
        for (int t = 0; t < map.Length / Math.Max(slice, 1); t++)
        {
            int batch = t / Math.Max(perBatch, 1);
            long at = 0;
            var bIdx = batch;
            for (int d = b - 1; d >= 0; d--)
            {
                at += (long)(bIdx % x.Dims[d]) * strides[d];
                bIdx /= x.Dims[d];
            }
            for (int j = 0; j < last; j++)
            {
                long v = indices[(long)t * last + j];
                int dim = x.Dims[b + j];
                if (v < 0) v += dim;
                if (v < 0 || v >= dim)
                    throw c.Shape("indices", $"indices in [{-dim}, {dim})", indices[(long)t * last + j].ToString());
                at += v * strides[b + j];
            }
            for (int e = 0; e < slice; e++)
                map[(long)t * slice + e] = at + e;
        }
        return new[] { Values.Remap(c, x, map, dims) };
    }

    /// <summary>
    /// Scatter targets: for each update, the flat position of data it writes (ScatterElements' and ScatterND's index
    /// rules); the result then is [data; updates] through an index map (plain scatter, the last write wins) or a host
    /// reduction (add, mul).
    /// </summary>
    private static OnnxTensor Scattered(OpContext c, OnnxTensor data, OnnxTensor updates, long[] targets, int slice)
    {
        string reduction = c.String("reduction", "none");
        int n = (int)data.Length;
        if (reduction == "none")
        {
            var map = new long[n];
            for (int k = 0; k < n; k++)
                map[k] = k;
            for (int u = 0; u < targets.Length; u++)
                for (int e = 0; e < slice; e++)
                    map[targets[u] + e] = n + (long)u * slice + e;
            if (!data.IsFloat)
            {
                var all = data.Ints.Concat(updates.Ints).ToArray();
                return OnnxTensor.Integers(data.ElementType, Array.ConvertAll(map, m => all[m]), data.Shape);
            }
            var both = Ops.Concat(new[] { data.On(c.Device).Contiguous().Reshape(-1, 1), Values.Upload(c, updates).Contiguous().Reshape(-1, 1) }, 0);
            return Values.Float(Values.GatherFlat(c, both, map), data.Shape);
        }
        var result = Doubles(data);
        var up = Doubles(updates);
        for (int u = 0; u < targets.Length; u++)
            for (int e = 0; e < slice; e++)
                result[targets[u] + e] = reduction == "add" ? result[targets[u] + e] + up[(long)u * slice + e] : result[targets[u] + e] * up[(long)u * slice + e];
        return Host(data, result, data.Shape);
    }

    private static OnnxTensor[] Scatter(OpContext c, OnnxTensor?[] i)
    {
        var (data, ind, updates) = (i[0]!, i[1]!, i[2]!);
        int axis = Values.Axis(c, c.Int("axis", 0), data.Rank);
        var indices = Values.Longs(c, ind, "indices");
        if (!ind.Shape.SequenceEqual(updates.Shape) || ind.Rank != data.Rank)
            throw c.Shape("indices/updates", $"equal shapes of rank {data.Rank}", $"{GpuNetException.FormatShape(ind.Dims)} and {GpuNetException.FormatShape(updates.Dims)}");
        var strides = Values.Strides(data.Dims);
        var targets = new long[indices.Length];
        var idx = new int[ind.Rank];
        for (int k = 0; k < indices.Length; k++)
        {
            long v = indices[k] < 0 ? indices[k] + data.Dims[axis] : indices[k];
            if (v < 0 || v >= data.Dims[axis])
                throw c.Shape("indices", $"indices in [{-data.Dims[axis]}, {data.Dims[axis]})", indices[k].ToString());
            long at = 0;
            for (int d = 0; d < idx.Length; d++)
                at += (d == axis ? v : idx[d]) * strides[d];
            targets[k] = at;
            Values.Increment(idx, ind.Dims);
        }
        return new[] { Scattered(c, data, updates, targets, 1) };
    }

    private static OnnxTensor[] ScatterNd(OpContext c, OnnxTensor?[] i)
    {
        var (data, ind, updates) = (i[0]!, i[1]!, i[2]!);
        var indices = Values.Longs(c, ind, "indices");
        int last = ind.Dims[^1];
        if (last > data.Rank)
            throw c.Shape("indices", $"a last dimension ≤ {data.Rank}", GpuNetException.FormatShape(ind.Dims));
        var strides = Values.Strides(data.Dims);
        int slice = Values.Count(data.Dims[last..]);
        var targets = new long[indices.Length / Math.Max(last, 1)];
        for (int t = 0; t < targets.Length; t++)
        {
            long at = 0;
            for (int j = 0; j < last; j++)
            {
                long v = indices[(long)t * last + j];
                if (v < 0) v += data.Dims[j];
                if (v < 0 || v >= data.Dims[j])
                    throw c.Shape("indices", $"indices in [{-data.Dims[j]}, {data.Dims[j]})", indices[(long)t * last + j].ToString());
                at += v * strides[j];
            }
            targets[t] = at;
        }
        return new[] { Scattered(c, data, updates, targets, slice) };
    }

    private static OnnxTensor[] Compress(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var keep = Integers(i[1]!);
        if (!c.Has("axis"))
        {
            var positions = Enumerable.Range(0, (int)Math.Min(keep.Length, x.Length)).Where(k => keep[k] != 0).Select(k => (long)k).ToArray();
            return new[] { Values.Remap(c, x, positions, new[] { positions.Length }) };
        }
        int axis = Values.Axis(c, c.Int("axis", 0), x.Rank);
        var kept = Enumerable.Range(0, Math.Min(keep.Length, x.Dims[axis])).Where(k => keep[k] != 0).ToArray();
        var dims = x.Shape;
        dims[axis] = kept.Length;
        var strides = Values.Strides(x.Dims);
        return new[] { Values.Remap(c, x, Values.Map(dims, idx =>
        {
            long s = 0;
            for (int d = 0; d < idx.Length; d++) s += (long)(d == axis ? kept[idx[d]] : idx[d]) * strides[d];
            return s;
        }), dims) };
    }

    private static OnnxTensor[] NonZero(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var v = Doubles(x);
        var hits = Enumerable.Range(0, v.Length).Where(k => v[k] != 0).ToList();
        var result = new long[x.Rank * hits.Count];
        var strides = Values.Strides(x.Dims);
        for (int h = 0; h < hits.Count; h++)
            for (int d = 0, rest = hits[h]; d < x.Rank; d++)
            {
                result[(long)d * hits.Count + h] = rest / strides[d];
                rest %= strides[d];
            }
        return new[] { OnnxTensor.Integers(OnnxElementType.Int64, result, new[] { x.Rank, hits.Count }) };
    }

    private static OnnxTensor[] ReverseSequence(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var lengths = Values.Longs(c, i[1], "sequence_lens");
        int batchAxis = Values.Axis(c, c.Int("batch_axis", 1), x.Rank), timeAxis = Values.Axis(c, c.Int("time_axis", 0), x.Rank);
        var strides = Values.Strides(x.Dims);
        return new[] { Values.Remap(c, x, Values.Map(x.Shape, idx =>
        {
            long len = lengths[idx[batchAxis]], s = 0;
            for (int d = 0; d < idx.Length; d++)
                s += (d == timeAxis && idx[d] < len ? len - 1 - idx[d] : idx[d]) * strides[d];
            return s;
        }), x.Shape) };
    }

    /// <summary>(x − mean) / √(var + 1e-9) over the axes (default N, H, W), on the reduce kernels.</summary>
    private static OnnxTensor[] MeanVariance(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var axes = (c.Ints("axes") ?? new long[] { 0, 2, 3 }).Select(a => Values.Axis(c, a, x.Rank, "axes")).ToArray();
        var t = x.On(c.Device);
        var mean = axes.Aggregate(t, (acc, a) => Ops.Mean(acc, a, true));
        var centered = Ops.Sub(t, mean);
        var variance = axes.Aggregate(Ops.Mul(centered, centered), (acc, a) => Ops.Mean(acc, a, true));
        var std = Ops.Unary(Ops.Add(variance, Ops.Full(c.Device, 1e-9f, 1)), Kernels.UnaryFunction.Sqrt);
        return new[] { Values.Float(Ops.Div(centered, std), x.Shape) };
    }

    /// <summary>LRN: x / (bias + α/size · Σ x² over the size channels around)^β; the channel window sum is an average pool over [N, 1, C, H·W].</summary>
    private static OnnxTensor[] Lrn(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        int size = (int)c.Int("size", 0);
        float alpha = c.Float("alpha", 1e-4f), beta = c.Float("beta", 0.75f), bias = c.Float("bias", 1f);
        if (x.Rank < 3 || size < 1)
            throw c.Shape("input/size", "[N, C, ...] and size ≥ 1", $"{GpuNetException.FormatShape(x.Dims)}, size {size}");
        int n = x.Dims[0], ch = x.Dims[1], rest = Values.Count(x.Dims[2..]);
        var t = x.On(c.Device).Contiguous();
        var squares = Ops.Mul(t, t).Reshape(n, 1, ch, rest);
        int before = (size - 1) / 2, after = size - 1 - before;
        var padDims = new[] { n, 1, ch + size - 1, rest };
        var src = Values.Strides(new[] { n, 1, ch, rest });
        var padded = Values.GatherFlat(c, squares, Values.Map(padDims, idx =>
        {
            int cc = idx[2] - before;
            return cc < 0 || cc >= ch ? -1 : (long)idx[0] * src[0] + (long)cc * src[2] + idx[3];
        })).Reshape(padDims);
        var sums = Ops.Scale(Ops.AvgPool2d(padded, (size, 1), (1, 1)), size);
        var denominator = Ops.Binary(Ops.Add(Ops.Scale(sums, alpha / size), Ops.Full(c.Device, bias, 1)), Ops.Full(c.Device, beta, 1), Kernels.BinaryFunction.Pow);
        return new[] { Values.Float(Ops.Div(t, denominator.Reshape(x.Shape)), x.Shape) };
    }
}

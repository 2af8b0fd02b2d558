using GpuNet.Kernels;

namespace GpuNet.Onnx.Operators;

/// <summary>
/// Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp), ArgMax/ArgMin, TopK, Softmax,
/// LogSoftmax, Hardmax, the normalizations (BatchNormalization, InstanceNormalization, LayerNormalization) and
/// pooling (MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool). Float reductions run one axis at a time through the
/// reduce kernels, TopK on the topk kernel; Hardmax's one-hot is built on the host.
/// </summary>
internal static class ReduceOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return Reduction("ReduceSum", (x, a) => Ops.Sum(x, a, true), null, null, (v, w) => v + w, 0, 13);
        yield return Reduction("ReduceMean", (x, a) => Ops.Mean(x, a, true), null, null, (v, w) => v + w, 0, mean: true);
        yield return Reduction("ReduceMax", (x, a) => Ops.Max(x, a, true), null, null, Math.Max, double.NegativeInfinity);
        yield return Reduction("ReduceMin", (x, a) => Ops.Min(x, a, true), null, null, Math.Min, double.PositiveInfinity);
        yield return Reduction("ReduceSumSquare", (x, a) => Ops.Sum(x, a, true), x => Ops.Mul(x, x), null, (v, w) => v + w * w, 0);
        yield return Reduction("ReduceL1", (x, a) => Ops.Sum(x, a, true), x => Ops.Unary(x, UnaryFunction.Abs), null, (v, w) => v + Math.Abs(w), 0);
        yield return Reduction("ReduceL2", (x, a) => Ops.Sum(x, a, true), x => Ops.Mul(x, x), y => Ops.Unary(y, UnaryFunction.Sqrt), (v, w) => v + w * w, 0, hostPost: Math.Sqrt);
        yield return Reduction("ReduceLogSum", (x, a) => Ops.Sum(x, a, true), null, y => Ops.Unary(y, UnaryFunction.Log), (v, w) => v + w, 0, hostPost: Math.Log);
        yield return new OpSpec("ReduceLogSumExp", (c, i) => ReduceRun(c, i, 18, (x, axes) =>
        {
            var max = axes.Aggregate(x, (t, a) => Ops.Max(t, a, true));
            var safe = Ops.Unary(max, UnaryFunction.Clip, float.MinValue, float.MaxValue);
            var sum = axes.Aggregate(Ops.Exp(Ops.Sub(x, safe)), (t, a) => Ops.Sum(t, a, true));
            return Ops.Add(Ops.Unary(sum, UnaryFunction.Log), safe);
        }, null));
        yield return Reduction("ReduceProd", (x, a) => Ops.Prod(x, a, true), null, null, (v, w) => v * w, 1);
        yield return ArgReduce("ArgMax", max: true);
        yield return ArgReduce("ArgMin", max: false);
        yield return new OpSpec("TopK", TopK);
        yield return new OpSpec("Softmax", (c, i) => Softmax(c, i[0]!, x => Ops.Softmax(x)));
        yield return new OpSpec("LogSoftmax", (c, i) => Softmax(c, i[0]!, x => Ops.LogSoftmax(x)));
        yield return new OpSpec("Hardmax", (c, i) => Softmax(c, i[0]!, x =>
        {
            int cols = x.Size(-1);
            var arg = Ops.ArgMax(x, -1).ToArray();
            var onehot = new float[x.Length];
            for (int r = 0; r < arg.Length; r++)
                onehot[r * cols + (int)arg[r]] = 1f;
            return Tensor.FromArray(x.Device, onehot, x.ShapeArray());
        }));
        yield return new OpSpec("BatchNormalization", BatchNorm, 1, c => c.Int("training_mode", 0) != 0 ? "BatchNormalization in training mode is not supported (inference only)" : null);
        yield return new OpSpec("InstanceNormalization", InstanceNorm);
        yield return new OpSpec("LayerNormalization", LayerNorm, 17);
        yield return new OpSpec("MaxPool", (c, i) => Pool(c, i, max: true), 1, c => PoolCheck(c, "MaxPool"));
        yield return new OpSpec("AveragePool", (c, i) => Pool(c, i, max: false), 1, c => PoolCheck(c, "AveragePool"));
        yield return new OpSpec("GlobalAveragePool", (c, i) => GlobalPool(c, i[0]!, (x, a) => Ops.Mean(x, a, true)));
        yield return new OpSpec("GlobalMaxPool", (c, i) => GlobalPool(c, i[0]!, (x, a) => Ops.Max(x, a, true)));
    }

    // ------------------------------------------------------------------ reductions

    /// <summary>
    /// A reduction: <paramref name="pre"/> maps the input (|x|, x²), <paramref name="reduce"/> runs per axis keeping
    /// dimensions, <paramref name="post"/> maps the result (√, log). Axes come from the attribute before opset
    /// <paramref name="axesInputFrom"/> and from the second input after.
    /// </summary>
    private static OpSpec Reduction(string name, Func<Tensor, int, Tensor> reduce, Func<Tensor, Tensor>? pre, Func<Tensor, Tensor>? post,
        Func<double, double, double>? host, double seed, int axesInputFrom = 18, bool mean = false, Func<double, double>? hostPost = null) =>
        new(name, (c, i) => ReduceRun(c, i, axesInputFrom, (x, axes) =>
        {
            var t = pre is null ? x : pre(x);
            t = axes.Aggregate(t, reduce);
            return post is null ? t : post(t);
        }, host, seed, mean, hostPost));

    private static OnnxTensor[] ReduceRun(OpContext c, OnnxTensor?[] i, int axesInputFrom, Func<Tensor, int[], Tensor>? device, Func<double, double, double>? host,
        double seed = 0, bool mean = false, Func<double, double>? hostPost = null)
    {
        var x = i[0]!;
        var given = c.Opset >= axesInputFrom ? (i.Length > 1 && i[1] is { } a ? Values.Longs(c, a, "axes") : null) : c.Ints("axes");
        bool keep = c.Int("keepdims", 1) != 0;
        if ((given is null || given.Length == 0) && c.Int("noop_with_empty_axes", 0) != 0)
            return new[] { x.Share() };
        var axes = (given is null || given.Length == 0 ? Enumerable.Range(0, x.Rank) : given.Select(v => Values.Axis(c, v, x.Rank, "axes"))).Distinct().OrderBy(v => v).ToArray();
        var keptDims = x.Shape.Select((d, k) => axes.Contains(k) ? 1 : d).ToArray();
        var dims = keep ? keptDims : x.Shape.Where((_, k) => !axes.Contains(k)).ToArray();
        if (x.IsFloat && device is not null && x.Length > 0)
            return new[] { Values.Float(x.Rank == 0 ? device(x.On(c.Device), Array.Empty<int>()) : device(x.On(c.Device), axes), dims) };
        // Host: integers, ReduceProd, and empty inputs (whose reductions are the identity element).
        var data = x.IsFloat ? Array.ConvertAll(x.Floats, v => (double)v) : Array.ConvertAll(x.Ints, v => (double)v);
        var acc = new double[Values.Count(keptDims)];
        var counts = new long[acc.Length];
        var outStrides = Values.Strides(keptDims);
        var idx = new int[x.Rank];
        var f = host ?? throw new OnnxRunException($"{c.Label}: this reduction has no host path for {x.ElementType} data");
        for (int k = 0; k < data.Length; k++)
        {
            long at = 0;
            for (int d = 0; d < x.Rank; d++)
                at += axes.Contains(d) ? 0 : (long)idx[d] * outStrides[d];
            acc[at] = counts[at] == 0 ? f(seed, data[k]) : f(acc[at], data[k]);
            counts[at]++;
            Values.Increment(idx, x.Dims);
        }
        for (int k = 0; k < acc.Length; k++)
            if (counts[k] == 0)
                acc[k] = seed;
            else if (mean)
                acc[k] /= counts[k];
        if (hostPost is not null)
            for (int k = 0; k < acc.Length; k++)
                acc[k] = hostPost(acc[k]);
        return new[] { x.IsFloat ? OnnxTensor.HostFloats(Array.ConvertAll(acc, v => (float)v), dims) : OnnxTensor.Integers(x.ElementType, Array.ConvertAll(acc, v => (long)v), dims) };
    }

    /// <summary>ArgMax/ArgMin to int64: the first extreme on the device; the last (select_last_index) by a host scan.</summary>
    private static OpSpec ArgReduce(string name, bool max) => new(name, (c, i) =>
    {
        var x = i[0]!;
        int axis = Values.Axis(c, c.Int("axis", 0), x.Rank);
        bool keep = c.Int("keepdims", 1) != 0, last = c.Int("select_last_index", 0) != 0;
        var dims = keep ? x.Shape.Select((d, k) => k == axis ? 1 : d).ToArray() : x.Shape.Where((_, k) => k != axis).ToArray();
        long[] result;
        if (x.IsFloat && !last)
        {
            var t = x.On(c.Device);
            result = Array.ConvertAll(Ops.ArgMax(max ? t : Ops.Unary(t, UnaryFunction.Neg), axis).ToArray(), v => (long)v);
        }
        else
        {
            var data = x.IsFloat ? Array.ConvertAll(x.Floats, v => (double)v) : Array.ConvertAll(x.Ints, v => (double)v);
            int dim = x.Dims[axis], inner = Values.Count(x.Dims[(axis + 1)..]), outer = Values.Count(x.Dims[..axis]);
            result = new long[outer * inner];
            for (int o = 0; o < outer; o++)
                for (int k = 0; k < inner; k++)
                {
                    int best = 0;
                    for (int t = 1; t < dim; t++)
                    {
                        double v = data[((long)o * dim + t) * inner + k], b = data[((long)o * dim + best) * inner + k];
                        if (max ? v > b || last && v == b : v < b || last && v == b)
                            best = t;
                    }
                    result[o * inner + k] = best;
                }
        }
        return new[] { OnnxTensor.Integers(OnnxElementType.Int64, result, dims) };
    });

    /// <summary>TopK along an axis on the topk kernel (the axis moved last and back): values, and indices as int64 on the host.</summary>
    private static OnnxTensor[] TopK(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        int axis = Values.Axis(c, c.Int("axis", -1), x.Rank);
        long k = c.Opset >= 10 ? Values.Longs(c, i[1], "K")[0] : c.Int("k", 0);
        int dim = x.Dims[axis];
        if (k < 0 || k > dim)
            throw c.Shape("K", $"0 ≤ K ≤ {dim}", k.ToString());
        var dims = x.Shape;
        dims[axis] = (int)k;
        var order = Enumerable.Range(0, x.Rank).Where(d => d != axis).Append(axis).ToArray();
        var inverse = new int[x.Rank];
        for (int d = 0; d < x.Rank; d++)
            inverse[order[d]] = d;
        var moved = Values.Upload(c, x).Permute(order);
        var r = Ops.TopK(moved, (int)k, c.Int("largest", 1) != 0);
        var values = r.Values.Permute(inverse).Contiguous();
        var indices = Array.ConvertAll(r.Indices.Permute(inverse).Contiguous().ToArray(), v => (long)v);
        var valueResult = x.IsFloat ? Values.Float(values, dims) : OnnxTensor.Integers(x.ElementType, Array.ConvertAll(values.ToArray(), v => (long)v), dims);
        return new[] { valueResult, OnnxTensor.Integers(OnnxElementType.Int64, indices, dims) };
    }

    /// <summary>
    /// Softmax-like ops: before opset 13 over the input coerced to 2-D at <c>axis</c> (default 1); from 13 over the one
    /// axis (default −1), moved last for the row kernel and back.
    /// </summary>
    private static OnnxTensor[] Softmax(OpContext c, OnnxTensor x, Func<Tensor, Tensor> rows)
    {
        var t = x.On(c.Device);
        if (x.Rank == 0)
            return new[] { Values.Float(rows(t), x.Shape) };
        if (c.Opset < 13)
        {
            int axis = Values.Axis(c, c.Int("axis", 1), x.Rank);
            var flat = Values.AsShape(t, Values.Count(x.Dims[..axis]), Values.Count(x.Dims[axis..]));
            return new[] { Values.Float(rows(flat), x.Shape) };
        }
        int a = Values.Axis(c, c.Int("axis", -1), x.Rank);
        if (a == x.Rank - 1)
            return new[] { Values.Float(rows(t), x.Shape) };
        var order = Enumerable.Range(0, x.Rank).Where(d => d != a).Append(a).ToArray();
        var inverse = new int[x.Rank];
        for (int d = 0; d < x.Rank; d++)
            inverse[order[d]] = d;
        return new[] { Values.Float(rows(t.Permute(order).Contiguous()).Permute(inverse).Contiguous(), x.Shape) };
    }

    // ------------------------------------------------------------------ normalization

    /// <summary>[N, C, ...] as [N, C, L, 1] for the channel kernels.</summary>
    private static Tensor Nc11(Tensor x) => Values.AsShape(x, x.Size(0), x.Size(1), x.Rank > 2 ? (int)(x.Length / x.Size(0) / x.Size(1)) : 1, 1);

    private static OnnxTensor[] BatchNorm(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!.On(c.Device);
        var y = Ops.BatchNorm2dInfer(Nc11(x), i[3]!.On(c.Device), i[4]!.On(c.Device), i[1]!.On(c.Device), i[2]!.On(c.Device), c.Float("epsilon", 1e-5f));
        return new[] { Values.Float(y, i[0]!.Shape) };
    }

    private static OnnxTensor[] InstanceNorm(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!.On(c.Device);
        var r = Ops.GroupNorm(Nc11(x), x.Size(1), i[1]!.On(c.Device), i[2]!.On(c.Device), c.Float("epsilon", 1e-5f));
        return new[] { Values.Float(r.Output, i[0]!.Shape) };
    }

    /// <summary>LayerNormalization over the axes from <c>axis</c> on: rows × cols through the layernorm kernel; Mean and InvStdDev keep dimensions.</summary>
    private static OnnxTensor[] LayerNorm(OpContext c, OnnxTensor?[] i)
    {
        var xi = i[0]!;
        int axis = Values.Axis(c, c.Int("axis", -1), xi.Rank);
        int rows = Values.Count(xi.Dims[..axis]), cols = Values.Count(xi.Dims[axis..]);
        var x = Values.AsShape(xi.On(c.Device), rows, cols);
        Tensor Flat(OnnxTensor t) => t.Length == cols ? Values.AsShape(t.On(c.Device), cols) : Ops.Add(Ops.Full(c.Device, 0f, xi.Shape[axis..]), t.On(c.Device)).Reshape(cols);
        var r = Ops.LayerNorm(x, Flat(i[1]!), i.Length > 2 && i[2] is { } b ? Flat(b) : null, c.Float("epsilon", 1e-5f));
        // Mean and InvStdDev only when the node names them (a model's LayerNorm rarely does: two wrapped outputs per node).
        if (c.Node.Outputs.Count < 2)
            return new[] { Values.Float(r.Output, xi.Shape) };
        var stats = xi.Shape.Select((d, k) => k < axis ? d : 1).ToArray();
        return new[] { Values.Float(r.Output, xi.Shape), Values.Float(r.Mean, stats), Values.Float(r.Rstd, stats) };
    }

    // ------------------------------------------------------------------ pooling

    internal static string? PoolCheck(OpContext c, string op) =>
        c.Ints("kernel_shape") is not { } k ? $"{op} without kernel_shape" : k.Length > 2 ? $"{op} with {k.Length} spatial dimensions is not supported (1-D and 2-D are)" : null;

    /// <summary>
    /// MaxPool/AveragePool over 1 or 2 spatial dimensions (1-D as a height of 1). Asymmetric pads of a max pool pad the
    /// input with −inf first; an average pool needs symmetric ones. Indices (MaxPool's second output) are flat
    /// row-major positions in the input, as ONNX defines them.
    /// </summary>
    private static OnnxTensor[] Pool(OpContext c, OnnxTensor?[] i, bool max)
    {
        var xi = i[0]!;
        int spatial = xi.Rank - 2;
        if (spatial is < 1 or > 2)
            throw new OnnxRunException($"{c.Label}: {spatial}-D pooling is not supported (1-D and 2-D are)");
        var kernel = c.Ints("kernel_shape")!.Select(v => (int)v).ToArray();
        var (strides, dilations, pads) = LinearOperators.WindowGeometry(c, spatial, xi.Shape[2..], kernel);
        bool ceil = c.Int("ceil_mode", 0) != 0;
        var x = xi.On(c.Device);
        if (spatial == 1)
        {
            x = x.Reshape(x.Size(0), x.Size(1), 1, x.Size(2));
            (kernel, strides, dilations, pads) = (new[] { 1, kernel[0] }, new[] { 1, strides[0] }, new[] { 1, dilations[0] }, new[] { 0, pads[0], 0, pads[1] });
        }
        (int H, int W) k2 = (kernel[0], kernel[1]), s2 = (strides[0], strides[1]), d2 = (dilations[0], dilations[1]);
        bool includePad = c.Int("count_include_pad", 0) != 0;
        (int, int) shift = (0, 0);
        Tensor? coverage = null;
        if (pads[0] != pads[2] || pads[1] != pads[3] || pads[0] > k2.H / 2 || pads[1] > k2.W / 2)
        {
            // Pads the kernel cannot take (asymmetric, or beyond half the window): pad the input first — with −inf for a
            // max pool (padding never wins; indices shift back by the top/left pad), with 0 for an average pool, whose
            // count-excluding divisor is then the average pool of the padded ones (the share of real cells in each window).
            if (!max && !includePad)
                coverage = PadSpatial(c, Ops.Full(c.Device, 1f, x.ShapeArray()), pads, 0f);
            x = PadSpatial(c, x, pads, max ? float.NegativeInfinity : 0f);
            shift = (pads[0], pads[1]);
            pads = new int[4];
            includePad = true;
        }
        (int H, int W) p2 = (pads[0], pads[1]);
        Tensor y;
        OnnxTensor? indices = null;
        if (max && c.Node.Outputs.Count == 1)
            y = Ops.MaxPool2dValues(x, k2, s2, p2, d2, ceil);
        else if (max)
        {
            // Pool indices are ih·W + iw in the (padded) plane; ONNX wants the flat position in the input tensor.
            var r = Ops.MaxPool2d(x, k2, s2, p2, d2, ceil);
            y = r.Output;
            int h = spatial == 1 ? 1 : xi.Dims[2], w = xi.Dims[^1], wp = x.Size(3);
            bool columnMajor = c.Int("storage_order", 0) != 0;
            float[] raw;
            using (r.Indices)
                raw = r.Indices.ToArray();
            int plane = y.Size(2) * y.Size(3);
            var flat = new long[raw.Length];
            for (int k = 0; k < raw.Length; k++)
            {
                long nc = k / plane;
                int ih = (int)raw[k] / wp - shift.Item1, iw = (int)raw[k] % wp - shift.Item2;
                flat[k] = nc * h * w + (columnMajor ? (long)iw * h + ih : (long)ih * w + iw);
            }
            var outDims = spatial == 1 ? new[] { y.Size(0), y.Size(1), y.Size(3) } : y.ShapeArray();
            indices = OnnxTensor.Integers(OnnxElementType.Int64, flat, outDims);
        }
        else
        {
            y = Ops.AvgPool2d(x, k2, s2, p2, ceil, includePad);
            if (coverage is not null)
                y = Ops.Div(y, Ops.AvgPool2d(coverage, k2, s2, p2, ceil, true));
        }
        var yDims = spatial == 1 ? new[] { y.Size(0), y.Size(1), y.Size(3) } : y.ShapeArray();
        var output = Values.Float(y, yDims);
        return indices is null ? new[] { output } : new[] { output, indices };
    }

    /// <summary>[N, C, H, W] padded by (top, left, bottom, right) = pads[0], pads[1], pads[2], pads[3] with <paramref name="fill"/>.</summary>
    private static Tensor PadSpatial(OpContext c, Tensor x, int[] pads, float fill)
    {
        int h = x.Size(2), w = x.Size(3);
        var dims = new[] { x.Size(0), x.Size(1), h + pads[0] + pads[2], w + pads[1] + pads[3] };
        var src = Values.Strides(new[] { x.Size(0), x.Size(1), h, w });
        return Values.GatherFlat(c, x, Values.Map(dims, idx =>
        {
            int ph = idx[2] - pads[0], pw = idx[3] - pads[1];
            return ph < 0 || ph >= h || pw < 0 || pw >= w ? -1 : (long)idx[0] * src[0] + (long)idx[1] * src[1] + (long)ph * src[2] + pw;
        }), fill).Reshape(dims);
    }

    private static OnnxTensor[] GlobalPool(OpContext c, OnnxTensor x, Func<Tensor, int, Tensor> reduce)
    {
        var t = x.On(c.Device).Contiguous();
        var flat = t.Reshape(x.Dims[0], x.Dims[1], (int)(x.Length / x.Dims[0] / x.Dims[1]));
        var dims = x.Shape.Select((d, k) => k < 2 ? d : 1).ToArray();
        return new[] { Values.Float(reduce(flat, 2), dims) };
    }
}

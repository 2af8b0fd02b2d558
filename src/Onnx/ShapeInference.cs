using GpuNet.Onnx.Proto;

namespace GpuNet.Onnx;

/// <summary>
/// Static output shapes of the common shape-preserving and shape-changing ops, from input shapes known at load (fixed
/// graph inputs, declared value_info, constants) and constant integer inputs (Reshape's shape, Unsqueeze's and Squeeze's axes,
/// Slice's bounds). They
/// let Shape nodes of intermediates fold like those of declared values; a shape a fold relied on is verified when the
/// value is produced, so a wrong inference is a typed error, never a wrong result. Unknown cases return null.
/// </summary>
internal static class ShapeInference
{
    private static readonly HashSet<string> Preserving = new()
    {
        "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Erf", "Softplus", "Elu", "LeakyRelu", "Softmax", "LogSoftmax", "Identity",
        "Cast", "Dropout", "LayerNormalization", "BatchNormalization", "InstanceNormalization", "Clip", "Reciprocal", "Floor", "Ceil", "HardSigmoid", "HardSwish",
    };

    private static readonly HashSet<string> Broadcasting = new() { "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Where", "Equal", "Less", "Greater", "And", "Or" };

    /// <summary>The static shape of <paramref name="node"/>'s first output, or null when it is not known at load.</summary>
    public static int[]? Output(NodeProto node, int opset, Func<string, int[]?> shapeOf, Func<string, long[]?> constantInts)
    {
        int[]? In(int k) => k < node.Inputs.Count && node.Inputs[k].Length > 0 ? shapeOf(node.Inputs[k]) : null;
        long[]? Attr(string name) => node.Attributes.TryGetValue(name, out var a) ? a.Ints.ToArray() : null;
        if (Preserving.Contains(node.OpType))
            return In(0);
        if (Broadcasting.Contains(node.OpType))
        {
            var shapes = Enumerable.Range(0, node.Inputs.Count).Select(In).ToList();
            return shapes.Any(s => s is null) ? null : Operators.Values.TryBroadcast(shapes!);
        }
        var x = In(0);
        if (x is null)
            return null;
        switch (node.OpType)
        {
            case "Transpose":
            {
                var perm = Attr("perm") ?? Enumerable.Range(0, x.Length).Reverse().Select(v => (long)v).ToArray();
                return perm.Length == x.Length && perm.All(p => p >= 0 && p < x.Length) ? perm.Select(p => x[p]).ToArray() : null;
            }
            case "Reshape":
            {
                if (node.Inputs.Count < 2 || constantInts(node.Inputs[1]) is not { } target || node.Attributes.TryGetValue("allowzero", out var z) && z.I != 0)
                    return null;
                var dims = target.Select((t, d) => t == 0 && d < x.Length ? x[d] : (int)t).ToArray();
                long known = dims.Where(d => d != -1).Aggregate(1L, (a, b) => a * b), total = x.Aggregate(1L, (a, b) => a * b);
                int infer = Array.IndexOf(dims, -1);
                if (infer >= 0)
                {
                    if (known == 0 || total % known != 0 || dims.Count(d => d == -1) > 1)
                        return null;
                    dims[infer] = (int)(total / known);
                }
                return dims.Aggregate(1L, (a, b) => a * b) == total && dims.All(d => d >= 0) ? dims : null;
            }
            case "Unsqueeze":
            {
                var axes = opset >= 13 ? (node.Inputs.Count > 1 ? constantInts(node.Inputs[1]) : null) : Attr("axes");
                if (axes is null)
                    return null;
                int rank = x.Length + axes.Length;
                var set = axes.Select(a => (int)(a < 0 ? a + rank : a)).ToHashSet();
                if (set.Count != axes.Length || set.Any(a => a < 0 || a >= rank))
                    return null;
                var r = new int[rank];
                for (int d = 0, k = 0; d < rank; d++)
                    r[d] = set.Contains(d) ? 1 : x[k++];
                return r;
            }
            case "Squeeze":
            {
                // No axes: every dimension of 1 goes. An axis whose dimension is not 1 is the op's error at run time, not ours.
                var axes = opset >= 13 ? (node.Inputs.Count > 1 ? constantInts(node.Inputs[1]) : Array.Empty<long>()) : Attr("axes") ?? Array.Empty<long>();
                if (axes is null)
                    return null;
                var set = axes.Select(a => (int)(a < 0 ? a + x.Length : a)).ToHashSet();
                if (set.Any(a => a < 0 || a >= x.Length || x[a] != 1))
                    return null;
                return x.Where((d, k) => set.Count == 0 ? d != 1 : !set.Contains(k)).ToArray();
            }
            case "Flatten":
            {
                long axis = node.Attributes.TryGetValue("axis", out var a) ? a.I : 1;
                if (axis < 0) axis += x.Length;
                if (axis < 0 || axis > x.Length)
                    return null;
                return new[] { x[..(int)axis].Aggregate(1, (p, q) => p * q), x[(int)axis..].Aggregate(1, (p, q) => p * q) };
            }
            case "MatMul":
            {
                // NumPy's matmul: the last two dimensions multiply, the ones before broadcast; a vector is a row (first) or a
                // column (second) whose dimension is dropped again.
                var w = In(1);
                if (w is null || x.Length == 0 || w.Length == 0)
                    return null;
                var a = x.Length == 1 ? new[] { 1, x[0] } : x;
                var b = w.Length == 1 ? new[] { w[0], 1 } : w;
                if (a[^1] != b[^2] || Operators.Values.TryBroadcast(new List<int[]> { a[..^2], b[..^2] }) is not { } batch)
                    return null;
                var r = batch.Concat(new[] { a[^2], b[^1] }).ToList();
                if (w.Length == 1)
                    r.RemoveAt(r.Count - 1);
                if (x.Length == 1)
                    r.RemoveAt(r.Count - (w.Length == 1 ? 1 : 2));
                return r.ToArray();
            }
            case "Slice":
            {
                long[]? Input(int k) => k < node.Inputs.Count && node.Inputs[k].Length > 0 ? constantInts(node.Inputs[k]) : null;
                var starts = opset >= 10 ? Input(1) : Attr("starts");
                var ends = opset >= 10 ? Input(2) : Attr("ends");
                if (starts is null || ends is null || starts.Length != ends.Length)
                    return null;
                var axes = (opset >= 10 ? Input(3) : Attr("axes")) ?? Enumerable.Range(0, starts.Length).Select(v => (long)v).ToArray();
                var steps = (opset >= 10 ? Input(4) : null) ?? Enumerable.Repeat(1L, starts.Length).ToArray();
                if (axes.Length != starts.Length || steps.Length != starts.Length || steps.Any(v => v == 0))
                    return null;
                var r = (int[])x.Clone();
                for (int i = 0; i < axes.Length; i++)
                {
                    int axis = (int)(axes[i] < 0 ? axes[i] + x.Length : axes[i]);
                    if (axis < 0 || axis >= x.Length)
                        return null;
                    long dim = x[axis], step = steps[i];
                    long start = starts[i] < 0 ? starts[i] + dim : starts[i], end = ends[i] < 0 ? ends[i] + dim : ends[i];
                    (start, end) = step > 0 ? (Math.Clamp(start, 0, dim), Math.Clamp(end, 0, dim)) : (Math.Clamp(start, 0, dim - 1), Math.Clamp(end, -1, dim - 1));
                    r[axis] = (int)Math.Max(0, step > 0 ? (end - start + step - 1) / step : (start - end - step - 1) / -step);
                }
                return r;
            }
            case "Gemm":
            {
                var b = In(1);
                if (b is null || x.Length != 2 || b.Length != 2)
                    return null;
                bool ta = node.Attributes.TryGetValue("transA", out var tA) && tA.I != 0, tb = node.Attributes.TryGetValue("transB", out var tB) && tB.I != 0;
                int m = ta ? x[1] : x[0], k = ta ? x[0] : x[1], kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1];
                return k == kb ? new[] { m, n } : null;
            }
            case "LSTM" or "GRU" or "RNN":
            {
                // Y: [seq, directions, batch, hidden], or [batch, seq, directions, hidden] with layout 1.
                if (x.Length != 3 || !node.Attributes.TryGetValue("hidden_size", out var h) || h.I <= 0)
                    return null;
                int dirs = node.Attributes.TryGetValue("direction", out var dir) && System.Text.Encoding.UTF8.GetString(dir.S.Span) == "bidirectional" ? 2 : 1;
                bool batchFirst = node.Attributes.TryGetValue("layout", out var l) && l.I != 0;
                return batchFirst ? new[] { x[0], x[1], dirs, (int)h.I } : new[] { x[0], dirs, x[1], (int)h.I };
            }
            default:
                return null;
        }
    }
}

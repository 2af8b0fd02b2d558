using GpuNet.Onnx.Proto;

namespace GpuNet.Onnx;

/// <summary>
/// Static output shapes of the common shape-preserving and shape-changing ops, from input shapes known at load (fixed
/// graph inputs, declared value_info, constants) and constant integer inputs (Reshape's shape, Unsqueeze's axes). They
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
                var w = In(1);
                if (w is null || x.Length < 2 || w.Length != 2 || x[^1] != w[0])
                    return null;
                var r = (int[])x.Clone();
                r[^1] = w[1];
                return r;
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

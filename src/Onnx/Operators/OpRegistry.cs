namespace GpuNet.Onnx.Operators;

/// <summary>Every operator GpuNet's ONNX import runs, by op type (default domain).</summary>
internal static class OpRegistry
{
    private static readonly Lazy<IReadOnlyDictionary<string, OpSpec>> _all = new(() =>
        ElementwiseOperators.Specs()
            .Concat(ShapeOperators.Specs())
            .Concat(LinearOperators.Specs())
            .Concat(ReduceOperators.Specs())
            .Concat(LossOperators.Specs())
            .Concat(ResizeOperators.Specs())
            .Concat(RecurrentOperators.Specs())
            .Concat(IndexOperators.Specs())
            .ToDictionary(s => s.Name));

    public static IReadOnlyDictionary<string, OpSpec> All => _all.Value;

    private const int Many = int.MaxValue;

    /// <summary>How many inputs each op takes (required first, then optional); ops not listed take exactly one.</summary>
    private static readonly Dictionary<string, (int Required, int Max)> _arity = new()
    {
        ["Add"] = (2, 2), ["Sub"] = (2, 2), ["Mul"] = (2, 2), ["Div"] = (2, 2), ["Pow"] = (2, 2), ["Mod"] = (2, 2), ["PRelu"] = (2, 2),
        ["Equal"] = (2, 2), ["Less"] = (2, 2), ["LessOrEqual"] = (2, 2), ["Greater"] = (2, 2), ["GreaterOrEqual"] = (2, 2),
        ["And"] = (2, 2), ["Or"] = (2, 2), ["Xor"] = (2, 2), ["BitShift"] = (2, 2), ["CastLike"] = (2, 2), ["Where"] = (3, 3),
        ["Sum"] = (1, Many), ["Mean"] = (1, Many), ["Max"] = (1, Many), ["Min"] = (1, Many), ["Concat"] = (1, Many), ["Clip"] = (1, 3),
        ["Reshape"] = (2, 2), ["Squeeze"] = (1, 2), ["Unsqueeze"] = (1, 2), ["Split"] = (1, 2), ["Slice"] = (1, 5), ["Gather"] = (2, 2),
        ["GatherElements"] = (2, 2), ["Expand"] = (2, 2), ["Tile"] = (2, 2), ["Pad"] = (1, 3), ["Trilu"] = (1, 2), ["CumSum"] = (2, 2),
        ["Constant"] = (0, 0), ["Range"] = (3, 3), ["Dropout"] = (1, 3), ["MatMul"] = (2, 2), ["Gemm"] = (2, 3), ["Conv"] = (2, 3),
        ["ConvTranspose"] = (2, 3), ["ReduceSum"] = (1, 2), ["ReduceMean"] = (1, 2), ["ReduceMax"] = (1, 2), ["ReduceMin"] = (1, 2),
        ["ReduceProd"] = (1, 2), ["ReduceL1"] = (1, 2), ["ReduceL2"] = (1, 2), ["ReduceLogSum"] = (1, 2), ["ReduceLogSumExp"] = (1, 2),
        ["ReduceSumSquare"] = (1, 2), ["TopK"] = (1, 2), ["BatchNormalization"] = (5, 5), ["InstanceNormalization"] = (3, 3),
        ["LayerNormalization"] = (2, 3), ["NegativeLogLikelihoodLoss"] = (2, 3), ["SoftmaxCrossEntropyLoss"] = (2, 3), ["Resize"] = (1, 4),
        ["Upsample"] = (1, 2), ["RNN"] = (3, 6), ["GRU"] = (3, 6), ["LSTM"] = (3, 8), ["OneHot"] = (3, 3), ["GatherND"] = (2, 2),
        ["ScatterElements"] = (3, 3), ["Scatter"] = (3, 3), ["ScatterND"] = (3, 3), ["Compress"] = (2, 2), ["ReverseSequence"] = (2, 2), ["Einsum"] = (1, 2),
    };

    /// <summary>What is wrong with a node's inputs (too few, too many, a required one left empty), or null.</summary>
    public static string? CheckInputs(Proto.NodeProto node)
    {
        var (required, max) = _arity.GetValueOrDefault(node.OpType, (1, 1));
        int count = node.Inputs.Count;
        if (count < required || count > max)
            return $"has {count} input{(count == 1 ? "" : "s")}, {node.OpType} takes {(required == max ? required.ToString() : max == Many ? $"at least {required}" : $"{required} to {max}")}";
        for (int k = 0; k < required; k++)
            if (node.Inputs[k].Length == 0)
                return $"leaves its required input {k} empty";
        return null;
    }
}

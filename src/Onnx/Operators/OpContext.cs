using GpuNet.Onnx.Proto;

namespace GpuNet.Onnx.Operators;

/// <summary>Runs one node: its inputs (null for an omitted optional input) to its outputs.</summary>
internal delegate OnnxTensor[] OpRun(OpContext c, OnnxTensor?[] inputs);

/// <summary>
/// An operator GpuNet runs: the opset versions it implements (ONNX's versioned semantics are decided inside
/// <see cref="Run"/> by <see cref="OpContext.Opset"/>), an optional load-time check that returns what is unsupported
/// about a node (an attribute value), and the implementation.
/// </summary>
internal sealed record OpSpec(string Name, OpRun Run, int MinOpset = 1, Func<OpContext, string?>? Check = null, bool Deterministic = true);

/// <summary>The node being run or checked: its attributes with ONNX defaults, the opset, the device.</summary>
internal sealed class OpContext(NodeProto node, int index, int opset, Device device)
{
    public NodeProto Node => node;
    public int Opset => opset;
    public Device Device => device;

    /// <summary>The node as messages name it (made once: the fused convolutions name their node in every run's geometry check).</summary>
    public string Label => _label ??= node.Label(index);

    private string? _label;

    public bool Has(string name) => node.Attributes.ContainsKey(name);

    /// <summary>Whether the graph reads output <paramref name="output"/> (a later node or a graph output): an op may skip
    /// computing an output nothing reads and return null in its place (an LSTM's final states, which PyTorch's exports
    /// list and drop). True unless the executor's plan said otherwise.</summary>
    public bool Uses(int output) => _unread is null || output >= _unread.Length || !_unread[output];

    /// <summary>Per output, whether nothing reads it (set once by the executor when it plans the run).</summary>
    internal bool[]? Unread { set => _unread = value; }

    private bool[]? _unread;

    /// <summary>What an op derived from this node's attributes for the input shapes it last saw (a convolution's options), kept
    /// between runs: the executor keeps one context per planned node. Ops check that it fits before they use it.</summary>
    public object? Memo { get; set; }

    public long Int(string name, long fallback) => node.Attributes.TryGetValue(name, out var a) ? a.I : fallback;

    public float Float(string name, float fallback) => node.Attributes.TryGetValue(name, out var a) ? a.F : fallback;

    public string String(string name, string fallback) =>
        node.Attributes.TryGetValue(name, out var a) ? System.Text.Encoding.UTF8.GetString(a.S.Span) : fallback;

    public long[]? Ints(string name) => node.Attributes.TryGetValue(name, out var a) ? a.Ints.ToArray() : null;

    public float[]? Floats(string name) => node.Attributes.TryGetValue(name, out var a) ? a.Floats.ToArray() : null;

    public TensorProto? TensorAttribute(string name) => node.Attributes.TryGetValue(name, out var a) ? a.T : null;

    /// <summary>A typed error about this node's data at run time (a shape the op cannot take).</summary>
    public ShapeMismatchException Shape(string argument, string expected, string actual) => new(Label, argument, expected, actual);
}

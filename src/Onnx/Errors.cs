namespace GpuNet.Onnx;

/// <summary>An ONNX file (or a serialized tensor) is malformed or truncated: the message names the message and field that failed.</summary>
public sealed class OnnxFormatException(string message, Exception? inner = null) : GpuNetException("onnx", "onnx: " + message, inner);

/// <summary>
/// A model uses what GpuNet cannot run: the message lists every unsupported node at once (its name, op, and what is
/// missing — the op, its opset version, an attribute value, an element type), found at load time before anything runs.
/// </summary>
public sealed class OnnxUnsupportedException : GpuNetException
{
    /// <summary>Creates the exception from one line per problem.</summary>
    public OnnxUnsupportedException(IReadOnlyList<string> problems)
        : base("onnx", $"onnx: the model uses {problems.Count} unsupported construct{(problems.Count == 1 ? "" : "s")}:\n  " + string.Join("\n  ", problems)) =>
        Problems = problems;

    /// <summary>One line per unsupported node or construct.</summary>
    public IReadOnlyList<string> Problems { get; }
}

/// <summary>The inputs given to <see cref="OnnxModel.Run"/> do not fit the model (unknown or missing name, element type, shape).</summary>
public sealed class OnnxInputException(string message) : GpuNetException("onnx run", "onnx run: " + message);

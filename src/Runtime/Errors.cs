namespace GpuNet;

/// <summary>
/// Base of every error GpuNet raises on bad input. The message always names the operation
/// (<see cref="Op"/>) and, where it applies, the argument and the expected versus actual value.
/// Raising one never leaves other tensors or the device in a corrupted state: checks run
/// before any kernel is launched or any memory is written.
/// </summary>
public abstract class GpuNetException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="op">The operation that rejected its input (e.g. <c>add</c>, <c>reshape</c>).</param>
    /// <param name="message">The full message, already naming the op.</param>
    /// <param name="inner">The underlying cause, if any.</param>
    protected GpuNetException(string op, string message, Exception? inner = null)
        : base(message, inner) => Op = op;

    /// <summary>The operation that raised the error.</summary>
    public string Op { get; }

    /// <summary>Formats a shape the way every GpuNet message prints it: <c>[2, 3, 4]</c>.</summary>
    public static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}

/// <summary>An argument does not fit the operation: the message reads
/// <c>op: argument 'name' (what is wrong): expected X, got Y</c>.</summary>
public abstract class ArgumentMismatchException : GpuNetException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="op">The operation.</param>
    /// <param name="argument">The offending argument.</param>
    /// <param name="problem">What is wrong, e.g. <c>has the wrong shape</c>.</param>
    /// <param name="expected">What the operation expected.</param>
    /// <param name="actual">What it got.</param>
    protected ArgumentMismatchException(string op, string argument, string problem, string expected, string actual)
        : base(op, $"{op}: argument '{argument}' {problem}: expected {expected}, got {actual}")
    {
        Argument = argument;
        Expected = expected;
        Actual = actual;
    }

    /// <summary>The offending argument.</summary>
    public string Argument { get; }

    /// <summary>What was expected.</summary>
    public string Expected { get; }

    /// <summary>What was given.</summary>
    public string Actual { get; }
}

/// <summary>A tensor's shape (or a geometry parameter) does not fit the operation.</summary>
public sealed class ShapeMismatchException(string op, string argument, string expected, string actual)
    : ArgumentMismatchException(op, argument, "has the wrong shape", expected, actual);

/// <summary>A required argument was null.</summary>
public sealed class MissingArgumentException(string op, string argument, string expected)
    : ArgumentMismatchException(op, argument, "is missing", expected, "null");

/// <summary>A scalar argument is out of its range (a negative epsilon, an unknown enum value).</summary>
public sealed class InvalidArgumentException(string op, string argument, string expected, string actual)
    : ArgumentMismatchException(op, argument, "is out of range", expected, actual);

/// <summary>Tensors from different devices were mixed in one operation; Expected and Actual are device labels.</summary>
public sealed class DeviceMismatchException(string op, string argument, string expectedDevice, string actualDevice)
    : ArgumentMismatchException(op, argument, "is on the wrong device", expectedDevice, actualDevice);

/// <summary>A tensor's element type does not fit the operation.</summary>
public sealed class DTypeMismatchException(string op, string argument, DType expected, DType actual)
    : ArgumentMismatchException(op, argument, "has the wrong dtype", expected.ToString(), actual.ToString());

/// <summary>A tensor (or a device) was used after it was disposed.</summary>
public sealed class TensorDisposedException : GpuNetException
{
    /// <summary>Creates the exception.</summary>
    public TensorDisposedException(string op, string what)
        : base(op, $"{op}: {what} was used after it was disposed") => What = what;

    /// <summary>What was disposed (e.g. <c>argument 'a' (tensor [3, 4] on cpu:0)</c>).</summary>
    public string What { get; }
}

/// <summary>The device could not serve an allocation, even after the pool's cache was released.</summary>
public sealed class DeviceOutOfMemoryException : GpuNetException
{
    /// <summary>Creates the exception.</summary>
    public DeviceOutOfMemoryException(string op, string device, long requestedBytes, MemoryPoolStats stats, Exception? inner = null)
        : base(op, $"{op}: out of memory on {device}: requested {MemoryPoolStats.FormatBytes(requestedBytes)}; pool: {stats}", inner)
    {
        Device = device;
        RequestedBytes = requestedBytes;
        Stats = stats;
    }

    /// <summary>The device that ran out.</summary>
    public string Device { get; }

    /// <summary>The size of the request that failed, in bytes.</summary>
    public long RequestedBytes { get; }

    /// <summary>The pool's statistics at the time of failure.</summary>
    public MemoryPoolStats Stats { get; }
}

/// <summary>The requested device does not exist here, or cannot run GpuNet.</summary>
public sealed class UnsupportedDeviceException : GpuNetException
{
    /// <summary>Creates the exception.</summary>
    public UnsupportedDeviceException(string op, string requested, string reason, IReadOnlyList<string> available)
        : base(op, $"{op}: device '{requested}' {reason}; devices here: {(available.Count == 0 ? "none" : string.Join(", ", available))}")
    {
        Requested = requested;
        Available = available;
    }

    /// <summary>The device name that was asked for.</summary>
    public string Requested { get; }

    /// <summary>The names of the devices that are present.</summary>
    public IReadOnlyList<string> Available { get; }
}

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

/// <summary>A tensor's shape (or a geometry parameter) does not fit the operation.</summary>
public sealed class ShapeMismatchException : GpuNetException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="op">The operation.</param>
    /// <param name="argument">The argument whose shape is wrong.</param>
    /// <param name="expected">What the operation expected, in words or as a shape.</param>
    /// <param name="actual">What it got.</param>
    public ShapeMismatchException(string op, string argument, string expected, string actual)
        : base(op, $"{op}: argument '{argument}' has the wrong shape: expected {expected}, got {actual}")
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

/// <summary>Tensors from different devices were mixed in one operation.</summary>
public sealed class DeviceMismatchException : GpuNetException
{
    /// <summary>Creates the exception.</summary>
    public DeviceMismatchException(string op, string argument, string expectedDevice, string actualDevice)
        : base(op, $"{op}: argument '{argument}' is on device {actualDevice}, expected device {expectedDevice}")
    {
        Argument = argument;
        ExpectedDevice = expectedDevice;
        ActualDevice = actualDevice;
    }

    /// <summary>The offending argument.</summary>
    public string Argument { get; }

    /// <summary>The device the operation runs on.</summary>
    public string ExpectedDevice { get; }

    /// <summary>The device the argument lives on.</summary>
    public string ActualDevice { get; }
}

/// <summary>A tensor's element type does not fit the operation.</summary>
public sealed class DTypeMismatchException : GpuNetException
{
    /// <summary>Creates the exception.</summary>
    public DTypeMismatchException(string op, string argument, DType expected, DType actual)
        : base(op, $"{op}: argument '{argument}' has dtype {actual}, expected {expected}")
    {
        Argument = argument;
        Expected = expected;
        Actual = actual;
    }

    /// <summary>The offending argument.</summary>
    public string Argument { get; }

    /// <summary>The dtype the operation accepts.</summary>
    public DType Expected { get; }

    /// <summary>The dtype it was given.</summary>
    public DType Actual { get; }
}

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

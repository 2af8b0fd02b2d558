namespace GpuNet;

/// <summary>Argument checks every op launcher runs before it launches anything, so bad input
/// raises a typed error and never touches device memory.</summary>
public static class Validate
{
    /// <summary>Returns <paramref name="value"/>, or raises <see cref="MissingArgumentException"/> naming the op and argument when it is null.</summary>
    public static T NotNull<T>(string op, string name, T? value) where T : class =>
        value ?? throw new MissingArgumentException(op, name, typeof(T) == typeof(Tensor) ? "a tensor" : $"a {typeof(T).Name}");

    /// <summary>The device of a tensor argument that must be present and alive: the first check of an op, before it reads
    /// anything else of its arguments.</summary>
    public static Device DeviceOf(string op, string name, Tensor? tensor)
    {
        NotNull(op, name, tensor).EnsureAlive(op, name);
        return tensor!.Device;
    }

    /// <summary>Checks the first tensor argument of an op (present, alive, of a dtype the op takes) and returns its device,
    /// which the other arguments must share.</summary>
    public static Device Input(string op, string name, Tensor tensor)
    {
        var device = DeviceOf(op, name, tensor);
        Input(op, name, tensor, device);
        return device;
    }

    /// <summary>Checks a tensor argument is present, alive, on <paramref name="device"/> and of <paramref name="dtype"/>
    /// (float32 unless the op takes integers there: class labels, token ids).</summary>
    public static void Input(string op, string name, Tensor tensor, Device device, DType dtype = DType.Float32)
    {
        NotNull(op, name, tensor).EnsureAlive(op, name);
        if (!ReferenceEquals(tensor.Device, device))
            throw new DeviceMismatchException(op, name, device.Label, tensor.Device.Label);
        if (tensor.DType != dtype)
            throw new DTypeMismatchException(op, name, dtype, tensor.DType);
    }

    /// <summary>Checks an output argument is alive, on <paramref name="device"/>, and has exactly <paramref name="shape"/>.</summary>
    public static void Output(string op, string name, Tensor output, Device device, ReadOnlySpan<int> shape, bool requireContiguous = true)
    {
        Input(op, name, output, device);
        if (!output.Shape.SequenceEqual(shape.ToArray()))
            throw new ShapeMismatchException(op, name, GpuNetException.FormatShape(shape), GpuNetException.FormatShape(output.ShapeArray()));
        if (requireContiguous && !output.IsContiguous)
            throw new ShapeMismatchException(op, name, "a contiguous output tensor", output.Describe());
    }

    /// <summary>Returns <paramref name="output"/> after checking it, or a new tensor of <paramref name="shape"/> when it is null.</summary>
    public static Tensor OutputOrNew(string op, Tensor? output, Device device, int[] shape, bool requireContiguous = true)
    {
        if (output is null)
            return Tensor.Empty(device, shape);
        Output(op, "output", output, device, shape, requireContiguous);
        return output;
    }

    /// <summary>Checks a tensor has rank <paramref name="rank"/>.</summary>
    public static void Rank(string op, string name, Tensor tensor, int rank)
    {
        if (tensor.Rank != rank)
            throw new ShapeMismatchException(op, name, $"a rank-{rank} tensor", GpuNetException.FormatShape(tensor.ShapeArray()));
    }
}

using System.Buffers.Binary;
using GpuNet.Onnx.Proto;

namespace GpuNet.Onnx;

/// <summary>ONNX element types (TensorProto.DataType, official numbering).</summary>
public enum OnnxElementType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>float32: computed on the device.</summary>
    Float = 1,
    /// <summary>uint8 (host).</summary>
    UInt8 = 2,
    /// <summary>int8 (host).</summary>
    Int8 = 3,
    /// <summary>uint16 (host).</summary>
    UInt16 = 4,
    /// <summary>int16 (host).</summary>
    Int16 = 5,
    /// <summary>int32 (host).</summary>
    Int32 = 6,
    /// <summary>int64: indices and shapes (host).</summary>
    Int64 = 7,
    /// <summary>string: not supported.</summary>
    String = 8,
    /// <summary>bool: masks and conditions (host).</summary>
    Bool = 9,
    /// <summary>float16: not supported yet.</summary>
    Float16 = 10,
    /// <summary>float64: not supported.</summary>
    Double = 11,
    /// <summary>uint32 (host).</summary>
    UInt32 = 12,
    /// <summary>uint64: not supported.</summary>
    UInt64 = 13,
    /// <summary>complex64: not supported.</summary>
    Complex64 = 14,
    /// <summary>complex128: not supported.</summary>
    Complex128 = 15,
    /// <summary>bfloat16: not supported yet.</summary>
    BFloat16 = 16,
}

/// <summary>
/// A tensor at the boundary of an ONNX model (ONNX Runtime's OrtValue): float32 data lives on a GpuNet device (or on
/// the host until a kernel needs it); int64, int32, the small integer types and bool live on the host, where shape
/// arithmetic, indices and masks are computed. Dispose it to return its device memory.
/// </summary>
public sealed class OnnxTensor : IDisposable
{
    private readonly int[] _dims;
    private Tensor? _device;
    private readonly bool _ownsDevice;
    private float[]? _floats;
    private readonly long[]? _integers;
    private bool _disposed;

    private OnnxTensor(OnnxElementType type, int[] dims, Tensor? device, bool ownsDevice, float[]? floats, long[]? integers)
    {
        ElementType = type;
        _dims = dims;
        (_device, _ownsDevice, _floats, _integers) = (device, ownsDevice, floats, integers);
    }

    /// <summary>The element type.</summary>
    public OnnxElementType ElementType { get; }

    /// <summary>The dimensions (empty for a scalar).</summary>
    public int[] Shape => _dims.AsSpan().ToArray();

    /// <summary>The number of elements.</summary>
    public long Length => Product(_dims);

    /// <summary>True for float32 data.</summary>
    public bool IsFloat => ElementType == OnnxElementType.Float;

    internal ReadOnlySpan<int> Dims => _dims;

    /// <summary>The dimensions themselves (never written after construction): for holding on to without a copy.</summary>
    internal int[] DimsArray => _dims;

    internal int Rank => _dims.Length;

    /// <summary>float32 data (copied; the tensor keeps its own).</summary>
    public static OnnxTensor FromFloats(ReadOnlySpan<float> data, params int[] shape) =>
        new(OnnxElementType.Float, CheckedShape(shape, data.Length), null, false, data.ToArray(), null);

    /// <summary>int64 data.</summary>
    public static OnnxTensor FromInt64s(ReadOnlySpan<long> data, params int[] shape) => Integers(OnnxElementType.Int64, data.ToArray(), CheckedShape(shape, data.Length));

    /// <summary>bool data.</summary>
    public static OnnxTensor FromBools(ReadOnlySpan<bool> data, params int[] shape)
    {
        var v = new long[data.Length];
        for (int i = 0; i < v.Length; i++)
            v[i] = data[i] ? 1 : 0;
        return Integers(OnnxElementType.Bool, v, CheckedShape(shape, data.Length));
    }

    /// <summary>A float32 device tensor, used in place (not copied, not disposed with this value).</summary>
    public static OnnxTensor FromTensor(Tensor tensor) => new(OnnxElementType.Float, tensor.ShapeArray(), tensor, false, null, null);

    /// <summary>Reads a serialized TensorProto (a backend test's <c>input_0.pb</c>); malformed files raise <see cref="OnnxFormatException"/>.</summary>
    public static OnnxTensor ReadPb(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxFormatException($"cannot read '{path}': {e.Message}", e);
        }
        var proto = TensorProto.Parse(bytes, Path.GetFileName(path));
        return FromProto(proto, Path.GetDirectoryName(Path.GetFullPath(path)), Path.GetFileName(path));
    }

    /// <summary>The tensor's name in a serialized TensorProto, when it had one (the backend test data names inputs).</summary>
    public string Name { get; internal set; } = "";

    /// <summary>float32 data, copied to the host into a new array. For large outputs read in a loop, <see cref="CopyTo"/>
    /// into an array kept between runs: .NET puts arrays of 85,000 bytes and more on its large-object heap, and one a run
    /// makes it collect every few runs (on this project's VM a 256 KiB output read so cost 0.6–0.8 ms a run, copied into a
    /// kept array 5 µs).</summary>
    public float[] ToFloats()
    {
        EnsureAlive();
        if (!IsFloat)
            throw new OnnxInputException($"the tensor holds {ElementType}, not Float; use ToInt64s or ToBools");
        if (_floats is not null)
            return (float[])_floats.Clone();
        return _device!.ToArray();
    }

    /// <summary>Copies the float32 data to the host into <paramref name="destination"/>, which must hold exactly
    /// <see cref="Length"/> elements.</summary>
    /// <exception cref="OnnxInputException">The tensor does not hold Float data, or the destination's length differs.</exception>
    /// <exception cref="TensorDisposedException">The tensor was disposed.</exception>
    public void CopyTo(Span<float> destination)
    {
        EnsureAlive();
        if (!IsFloat)
            throw new OnnxInputException($"copy_to: the tensor holds {ElementType}, not Float; use ToInt64s or ToBools");
        if (destination.Length != Length)
            throw new OnnxInputException($"copy_to: the destination holds {destination.Length} elements, expected {Length} (shape {GpuNetException.FormatShape(_dims)})");
        if (_floats is not null)
            _floats.CopyTo(destination);
        else
            _device!.CopyTo(destination);
    }

    /// <summary>Integer data (any integer or bool element type) as int64.</summary>
    public long[] ToInt64s()
    {
        EnsureAlive();
        if (_integers is null)
            throw new OnnxInputException($"the tensor holds {ElementType}, not an integer type; use ToFloats");
        return (long[])_integers.Clone();
    }

    /// <summary>Bool (or integer) data as booleans (nonzero is true).</summary>
    public bool[] ToBools() => Array.ConvertAll(ToInt64s(), v => v != 0);

    /// <summary>The device tensor holding float32 data, when it is on a device.</summary>
    public Tensor? DeviceTensor => _device;

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_conv2dWeights is { } kept)
        {
            kept.Packed.Dispose();
            kept.View.Dispose();
            _conv2dWeights = null;
        }
        _transposedMatrix?.Dispose();
        _transposedMatrix = null;
        if (_ownsDevice)
            _device?.Dispose();
        _device = null;
    }

    /// <summary>True for the model's constants (initializers that are not graph inputs, folded values): their data never
    /// changes while the model lives, so what is derived from it (packed convolution weights) is kept with them.</summary>
    internal bool IsConstant { get; set; }

    private (Tensor View, PackedConv2dWeight Packed, int Groups)? _conv2dWeights;

    /// <summary>This constant as conv2d weights [C_out, C_in/groups, KH, KW] (a 1-D kernel [C_out, C_in/groups, K] with
    /// KH = 1), packed for <paramref name="device"/> on first use and kept until this tensor is disposed.</summary>
    internal PackedConv2dWeight Conv2dWeights(Device device, int groups)
    {
        lock (_dims)
        {
            if (_conv2dWeights is { } kept && kept.Groups == groups)
                return kept.Packed;
            var t = On(device);
            var view = t.Rank == 3 ? t.Reshape(t.Size(0), t.Size(1), 1, t.Size(2)) : t.Reshape(t.ShapeArray());
            TensorScope.Escape(view);
            var packed = Ops.PackConv2dWeight(view, groups);
            if (_conv2dWeights is { } old)
            {
                old.Packed.Dispose();
                old.View.Dispose();
            }
            _conv2dWeights = (view, packed, groups);
            return packed;
        }
    }

    private Tensor? _transposedMatrix;

    /// <summary>This constant matrix [R, C] as a contiguous [C, R] on <paramref name="device"/>, made on first use and kept
    /// until this tensor is disposed: a Gemm with transB = 1 over constant weights then reads them row by row, which the
    /// fast CPU's GEMM does in place where it packed the transposed layout on every call.</summary>
    internal Tensor TransposedMatrix(Device device)
    {
        lock (_dims)
        {
            if (_transposedMatrix is { } kept && kept.Device == device)
                return kept;
            using var view = On(device).Permute(1, 0);
            var transposed = view.Contiguous();
            TensorScope.Escape(transposed);
            _transposedMatrix?.Dispose();
            _transposedMatrix = transposed;
            return transposed;
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{ElementType} {GpuNetException.FormatShape(_dims)}";

    // ------------------------------------------------------------------ internal: the executor's view

    internal static OnnxTensor Integers(OnnxElementType type, long[] data, int[] dims) => new(type, dims, null, false, null, data);

    internal static OnnxTensor HostFloats(float[] data, int[] dims) => new(OnnxElementType.Float, dims, null, false, data, null);

    /// <summary>
    /// Wraps a device result (owned) with ONNX dimensions. The device tensor must have exactly those dimensions ([1] for a
    /// scalar): the next node reads the device tensor's own rank (pooling, Gemm, Slice), so a flat buffer under an N-D ONNX
    /// shape would fail or misread there, far from the op that made it. Every device result passes here.
    /// </summary>
    internal static OnnxTensor Device(Tensor t, int[] dims)
    {
        if (!t.ShapeArray().AsSpan().SequenceEqual(DeviceShape(dims)))
            throw new OnnxRunException($"internal error: a device result of shape {GpuNetException.FormatShape(t.ShapeArray())} under the ONNX shape {GpuNetException.FormatShape(dims)}");
        return new(OnnxElementType.Float, dims, t, true, null, null);
    }

    /// <summary>Host integers (or bools as 0/1).</summary>
    internal long[] Ints
    {
        get
        {
            EnsureAlive();
            return _integers ?? throw new OnnxInputException($"expected integer data, got {ElementType}");
        }
    }

    /// <summary>Host float data (downloaded from the device when needed; small tensors only: parameters like Clip's bounds).</summary>
    internal float[] Floats
    {
        get
        {
            EnsureAlive();
            if (!IsFloat)
                return Array.ConvertAll(Ints, v => (float)v);
            return _floats ??= _device!.ToArray();
        }
    }

    /// <summary>The float data on <paramref name="device"/> with the ONNX shape (a scalar as [1]); host data is uploaded once and kept.</summary>
    internal Tensor On(Device device)
    {
        EnsureAlive();
        if (!IsFloat)
            throw new OnnxInputException($"expected Float data, got {ElementType}");
        if (_device is null)
        {
            _device = Tensor.FromArray(device, _floats!, DeviceShape(_dims));
            TensorScope.Escape(_device);
            return _device;
        }
        if (_device.Device != device)
            throw new DeviceMismatchException("onnx run", "input", device.Info.Id, _device.Device.Info.Id);
        return _device;
    }

    /// <summary>The shape a device tensor of ONNX dimensions has: a scalar is [1].</summary>
    internal static int[] DeviceShape(ReadOnlySpan<int> dims) => dims.Length == 0 ? new[] { 1 } : dims.ToArray();

    /// <summary>A second handle on the same data (the executor hands constants out this way).</summary>
    internal OnnxTensor Share() => new(ElementType, _dims, _device is null ? null : _device.Reshape(DeviceShape(_dims)), _device is not null, _floats, _integers);

    private void EnsureAlive()
    {
        if (_disposed)
            throw new TensorDisposedException("onnx", "tensor");
    }

    /// <summary>The product of the dimensions, saturating at long.MaxValue (hostile shapes must not wrap around to small counts).</summary>
    internal static long Product(ReadOnlySpan<int> dims)
    {
        long n = 1;
        foreach (int d in dims)
            n = d == 0 ? 0 : n > long.MaxValue / Math.Abs(d) ? long.MaxValue : n * d;
        return n;
    }

    private static int[] CheckedShape(int[] shape, int length)
    {
        if (shape.Any(d => d < 0) || Product(shape) != length)
            throw new OnnxInputException($"shape {GpuNetException.FormatShape(shape)} does not hold {length} elements");
        return shape.AsSpan().ToArray();
    }

    // ------------------------------------------------------------------ TensorProto decoding

    /// <summary>Decodes a TensorProto (typed fields, raw little-endian bytes, or external data beside the model).</summary>
    internal static OnnxTensor FromProto(TensorProto p, string? directory, string where)
    {
        string what = $"tensor '{(p.Name.Length > 0 ? p.Name : where)}'";
        if (p.Segmented)
            throw new OnnxFormatException($"{what} is segmented, which ONNX no longer allows");
        var dims = new int[p.Dims.Count];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            if (p.Dims[i] is < 0 or > int.MaxValue)
                throw new OnnxFormatException($"{what}: dimension {i} is {p.Dims[i]}");
            dims[i] = (int)p.Dims[i];
            count *= dims[i];
            if (count > int.MaxValue)
                throw new OnnxFormatException($"{what}: {GpuNetException.FormatShape(dims)} has more than 2^31 elements");
        }
        int n = (int)count;
        var raw = p.External ? ReadExternal(p, directory, what) : p.RawData;
        int size = ElementSize(p.DataType);
        if (size == 0)
            throw new OnnxUnsupportedException(new[] { $"{what}: element type {p.DataType} is not supported (float32, the integer types and bool are)" });
        if (raw is { } bytes)
        {
            if (bytes.Length != (long)n * size)
                throw new OnnxFormatException($"{what}: raw_data has {bytes.Length} bytes, but {p.DataType} {GpuNetException.FormatShape(dims)} needs {(long)n * size}");
            var span = bytes.Span;
            if (p.DataType == OnnxElementType.Float)
            {
                // raw_data is little-endian: on a little-endian host the floats are the bytes, one copy.
                var f = BitConverter.IsLittleEndian ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(span).ToArray() : new float[n];
                if (!BitConverter.IsLittleEndian)
                    for (int i = 0; i < n; i++)
                        f[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(4 * i)..]);
                return new OnnxTensor(OnnxElementType.Float, dims, null, false, f, null) { Name = p.Name };
            }
            var v = new long[n];
            for (int i = 0; i < n; i++)
                v[i] = p.DataType switch
                {
                    OnnxElementType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(span[(8 * i)..]),
                    OnnxElementType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(span[(4 * i)..]),
                    OnnxElementType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(span[(4 * i)..]),
                    OnnxElementType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(span[(2 * i)..]),
                    OnnxElementType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(span[(2 * i)..]),
                    OnnxElementType.Int8 => (sbyte)span[i],
                    OnnxElementType.Bool => span[i] != 0 ? 1 : 0,
                    _ => span[i],
                };
            return Integers(p.DataType, v, dims).Named(p.Name);
        }
        if (p.DataType == OnnxElementType.Float)
        {
            Expect(p.FloatData.Count, n, what, "float_data");
            return new OnnxTensor(OnnxElementType.Float, dims, null, false, p.FloatData.ToArray(), null) { Name = p.Name };
        }
        var typed = p.DataType is OnnxElementType.Int64 ? p.Int64Data : p.DataType is OnnxElementType.UInt32 ? p.UInt64Data : p.Int32Data;
        Expect(typed.Count, n, what, p.DataType is OnnxElementType.Int64 ? "int64_data" : p.DataType is OnnxElementType.UInt32 ? "uint64_data" : "int32_data");
        var values = typed.ToArray();
        if (p.DataType == OnnxElementType.Bool)
            for (int i = 0; i < n; i++)
                values[i] = values[i] != 0 ? 1 : 0;
        return Integers(p.DataType, values, dims).Named(p.Name);
    }

    private OnnxTensor Named(string name)
    {
        Name = name;
        return this;
    }

    private static void Expect(int have, int need, string what, string field)
    {
        if (have != need)
            throw new OnnxFormatException($"{what}: {field} holds {have} values, the shape needs {need}");
    }

    /// <summary>Bytes per element of the types GpuNet reads; 0 for the rest.</summary>
    internal static int ElementSize(OnnxElementType t) => t switch
    {
        OnnxElementType.Float or OnnxElementType.Int32 or OnnxElementType.UInt32 => 4,
        OnnxElementType.Int64 => 8,
        OnnxElementType.Int16 or OnnxElementType.UInt16 => 2,
        OnnxElementType.Int8 or OnnxElementType.UInt8 or OnnxElementType.Bool => 1,
        _ => 0,
    };

    /// <summary>External data: <c>location</c> relative to the model's directory (never outside it), <c>offset</c>, <c>length</c>.</summary>
    private static ReadOnlyMemory<byte> ReadExternal(TensorProto p, string? directory, string what)
    {
        if (!p.ExternalData.TryGetValue("location", out var location) || location.Length == 0)
            throw new OnnxFormatException($"{what}: external data without a location");
        if (directory is null)
            throw new OnnxFormatException($"{what}: external data '{location}' needs the model's file path (load from a path, not from bytes)");
        var root = Path.GetFullPath(directory);
        var file = Path.GetFullPath(Path.Combine(root, location));
        if (Path.IsPathRooted(location) || !file.StartsWith(root.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new OnnxFormatException($"{what}: external data location '{location}' leaves the model's directory");
        long offset = 0, length = -1;
        if (p.ExternalData.TryGetValue("offset", out var o) && !long.TryParse(o, out offset) || offset < 0)
            throw new OnnxFormatException($"{what}: external data offset '{o}' is not a non-negative integer");
        if (p.ExternalData.TryGetValue("length", out var l) && (!long.TryParse(l, out length) || length < 0))
            throw new OnnxFormatException($"{what}: external data length '{l}' is not a non-negative integer");
        try
        {
            using var stream = File.OpenRead(file);
            if (length < 0)
                length = stream.Length - offset;
            if (offset + length > stream.Length || length > int.MaxValue)
                throw new OnnxFormatException($"{what}: external data [{offset}, {offset + length}) lies beyond the end of '{location}' ({stream.Length} bytes)");
            var buffer = new byte[length];
            stream.Position = offset;
            stream.ReadExactly(buffer);
            return buffer;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxFormatException($"{what}: cannot read external data '{location}': {e.Message}", e);
        }
    }
}

namespace GpuNet;

/// <summary>Element type of a tensor. Only float32 runs today; the field exists so that half
/// precision and bfloat16 can join without changing the tensor's shape of API.</summary>
public enum DType
{
    /// <summary>IEEE 754 single precision.</summary>
    Float32,
}

/// <summary>Facts about <see cref="DType"/> values.</summary>
public static class DTypeInfo
{
    /// <summary>Bytes per element.</summary>
    public static int SizeInBytes(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}

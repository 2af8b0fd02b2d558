namespace GpuNet;

/// <summary>Element type of a tensor. The ops compute in float32; int32 tensors hold integer data for the ops that take it
/// (class labels for cross-entropy and NLL, token ids for embeddings and row gathers), are viewed and copied like any tensor,
/// and are refused with <see cref="DTypeMismatchException"/> by every op that computes.</summary>
public enum DType
{
    /// <summary>IEEE 754 single precision.</summary>
    Float32,

    /// <summary>32-bit signed integers (class labels, token ids).</summary>
    Int32,
}

/// <summary>Facts about <see cref="DType"/> values.</summary>
public static class DTypeInfo
{
    /// <summary>The name PyTorch gives the dtype (<c>float32</c>, <c>int32</c>).</summary>
    public static string Name(this DType dtype) => dtype.ToString().ToLowerInvariant();

    /// <summary>Bytes per element.</summary>
    public static int SizeInBytes(this DType dtype) => dtype switch
    {
        DType.Float32 or DType.Int32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };
}

namespace GpuNet.Kernels;

/// <summary>
/// Four packed floats. Loading one through a view marked 16-byte aligned (<c>AsAligned(16)</c>)
/// makes ILGPU emit a single <c>ld.global.v4.f32</c> instead of four scalar loads.
/// </summary>
public struct Float4
{
    /// <summary>Lanes.</summary>
    public float X, Y, Z, W;
}

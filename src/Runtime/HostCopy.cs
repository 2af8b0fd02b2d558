using ILGPU;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>
/// Host ↔ device copies through pinned host memory. ILGPU's <c>CopyToCPU(ref T, n)</c> / <c>CopyFromCPU(ref T, n)</c>
/// take the address of the first element without pinning it (on the CPU accelerator they wrap the raw pointer), so a
/// garbage collection that compacts the heap between taking the address and the copy would move the array away: the
/// copy then reads or writes the array's old location — lost data, and a corrupted heap. We measured exactly that under
/// load (a read-back array left all zeros). Every host copy in GpuNet goes through here and pins for its duration.
/// </summary>
internal static class HostCopy
{
    /// <summary>Copies <paramref name="source"/> (device) into <paramref name="destination"/> (host), synchronizing the stream.</summary>
    public static unsafe void Download<T>(ArrayView<T> source, Span<T> destination) where T : unmanaged
    {
        if (destination.Length == 0)
            return;
        fixed (T* p = destination)
            source.SubView(0, destination.Length).CopyToCPU(ref *p, destination.Length);
    }

    /// <summary>Copies <paramref name="source"/> (host) into <paramref name="destination"/> (device), synchronizing the stream.</summary>
    public static unsafe void Upload<T>(ReadOnlySpan<T> source, ArrayView<T> destination) where T : unmanaged
    {
        if (source.Length == 0)
            return;
        fixed (T* p = source)
            destination.SubView(0, source.Length).CopyFromCPU(ref *p, source.Length);
    }
}

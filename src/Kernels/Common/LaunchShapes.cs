using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Launch shapes shared by the memory-bound kernels. Every such kernel walks its work with a
/// grid-stride loop, so the grid only has to be large enough to fill the device.
/// </summary>
public static class LaunchShapes
{
    /// <summary>
    /// Grid for <paramref name="work"/> independent items at <paramref name="groupSize"/> threads
    /// per group. On a GPU: enough groups for every item, capped at 32 per multiprocessor (the
    /// grid-stride loop covers the rest). On the CPU accelerator each group's threads are OS threads
    /// and groups run one after another, so a few full groups beat many: at most 4.
    /// </summary>
    public static KernelConfig Linear(Device device, long work, int groupSize)
    {
        long needed = Math.Max(1, (work + groupSize - 1) / groupSize);
        long cap = device.Info.UsesCpuAccelerator ? 4 : Math.Max(1, device.Info.Multiprocessors) * 32L;
        return new KernelConfig((int)Math.Min(needed, cap), groupSize);
    }

    /// <summary>
    /// One group per row, grid-stride over rows (row reductions, softmax, norms). 256 threads on a GPU,
    /// up to 16 resident groups per multiprocessor; on the CPU accelerator 32 threads (one warp: every
    /// group barrier there is an OS-level synchronization) and at most 64 groups.
    /// </summary>
    public static KernelConfig RowPerGroup(Device device, long rows)
    {
        int group = device.Info.UsesCpuAccelerator ? 32 : Math.Min(256, device.Info.MaxThreadsPerGroup);
        long cap = device.Info.UsesCpuAccelerator ? 64 : device.Info.Multiprocessors * 16L;
        return new KernelConfig((int)Math.Max(1, Math.Min(rows, cap)), group);
    }

    /// <summary>Threads per group for simple memory-bound kernels: 256, or the device's maximum if smaller.</summary>
    public static int ElementwiseGroup(Device device) => Math.Min(256, device.Info.MaxThreadsPerGroup);
}

using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Host addresses of tensor memory on the fast CPU device. Its buffers come from ILGPU's CPU accelerator, which allocates
/// them in ordinary process memory, so a view's effective address is a plain pointer the host code reads and writes.
/// The buffers stay alive for the whole op (the launcher holds the tensors), so no pinning is needed.
/// </summary>
internal static unsafe class HostMemory
{
    /// <summary>The first element of <paramref name="view"/>.</summary>
    public static float* Ptr(ArrayView<float> view) => (float*)view.LoadEffectiveAddressAsPtr();

    /// <summary>The first element of <paramref name="view"/>.</summary>
    public static int* Ptr(ArrayView<int> view) => (int*)view.LoadEffectiveAddressAsPtr();

    /// <summary>The element [0, ..., 0] of <paramref name="t"/> (index the rest with its strides).</summary>
    public static float* Ptr(Tensor t) => Ptr(t.StridedView);

    /// <summary>The elements of a contiguous tensor.</summary>
    public static Span<float> Span(Tensor t) => new(Ptr(t.ContiguousView), t.Length);

    /// <summary>The elements of a view.</summary>
    public static Span<float> Span(ArrayView<float> view) => new(Ptr(view), view.IntLength);
}

/// <summary>
/// Scratch memory reused across calls, one set per thread (packing buffers of the GEMM, rows of attention scores):
/// 64-byte aligned, grown on demand, never shrunk. Each worker of a parallel loop uses its own.
/// </summary>
internal static unsafe class HostScratch
{
    [ThreadStatic] private static Buffer[]? _slots;

    private sealed class Buffer
    {
        public float* Ptr;
        public long Capacity;

        ~Buffer()
        {
            if (Ptr != null)
                NativeMemory.AlignedFree(Ptr);
        }
    }

    /// <summary>At least <paramref name="floats"/> floats of slot <paramref name="slot"/> (0–11) of the calling thread; contents undefined.</summary>
    public static float* Get(int slot, long floats)
    {
        var slots = _slots ??= new Buffer[12];
        var b = slots[slot] ??= new Buffer();
        if (b.Capacity < floats)
        {
            if (b.Ptr != null)
                NativeMemory.AlignedFree(b.Ptr);
            long capacity = Math.Max(floats, b.Capacity * 2);
            b.Ptr = (float*)NativeMemory.AlignedAlloc((nuint)(capacity * sizeof(float)), 64);
            b.Capacity = capacity;
        }
        return b.Ptr;
    }
}

/// <summary>
/// Splits a loop across the cores (<see cref="HostTeam"/>), or runs it on the calling thread when it is too small to pay
/// for the hand-off (an empty two-way <c>Parallel.For</c> measured 9.8 µs on this project's 2-core machines; the team's
/// hand-off is below 1 µs while its workers spin, but splitting still costs each core its share of the data's cache lines).
/// </summary>
internal static class HostParallel
{
    /// <summary>Work (in multiply-adds or element visits) below which a loop stays on one thread. Measured on the 2-core
    /// machine: a 64K-element add ran 17 µs on one thread and 31 µs split in two (Parallel.For alone costs ≈ 10 µs).</summary>
    public const long MinParallelWork = 1 << 18;

    /// <summary>Worker count: <see cref="Device.CpuThreads"/> (GPUNET_CPU_THREADS, else the processors this process may use).</summary>
    public static int Workers => Device.CpuThreads;

    /// <summary>Whether <see cref="For"/> would split <paramref name="count"/> items of <paramref name="workPerItem"/> across the
    /// cores (else it runs the body once on the calling thread): a caller can then skip building the body's closure.</summary>
    public static bool Splits(int count, long workPerItem, long minWork = MinParallelWork) =>
        count > 1 && Workers > 1 && (long)count * Math.Max(workPerItem, 1) >= minWork;

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) in contiguous chunks, one per core
    /// (a few more when the items are many, for balance), when <paramref name="count"/> · <paramref name="workPerItem"/>
    /// reaches <see cref="MinParallelWork"/>; otherwise once on the calling thread.
    /// </summary>
    /// <param name="count">Items.</param>
    /// <param name="workPerItem">Cost of one item in multiply-adds or element visits.</param>
    /// <param name="body">Runs items [start, end).</param>
    /// <param name="oneChunkPerCore">Exactly one chunk per core: for bodies with a fixed cost per chunk (a convolution's rows,
    /// whose GEMM reads all the weights once per chunk), where more chunks for balance cost more than they balance.</param>
    /// <param name="minWork">The work below which the loop stays on one thread (<see cref="MinParallelWork"/> unless the
    /// caller knows better).</param>
    public static void For(int count, long workPerItem, Action<int, int> body, bool oneChunkPerCore = false, long minWork = MinParallelWork)
    {
        if (count <= 0)
            return;
        int workers = Workers;
        if (!Splits(count, workPerItem, minWork))
        {
            body(0, count);
            return;
        }
        int chunks = Math.Min(count, count >= 8 * workers && !oneChunkPerCore ? 4 * workers : workers);
        HostTeam.Run(count, chunks, workers, body);
    }

    /// <summary>
    /// On the fast CPU device, runs <paramref name="element"/>(i) for every i &lt; <paramref name="total"/> across the cores —
    /// the per-element body a grid-stride GPU kernel shares with the host — and returns true; false on other devices
    /// (the caller launches the kernel).
    /// </summary>
    public static bool Elements(Device device, string op, int total, long workPerElement, Action<int> element)
    {
        if (!device.IsHostCpu)
            return false;
        using (device.Profiler.Measure(op))
            For(total, workPerElement, (start, end) =>
            {
                for (int i = start; i < end; i++)
                    element(i);
            });
        return true;
    }
}

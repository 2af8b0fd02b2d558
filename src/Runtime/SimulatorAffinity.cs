using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>
/// Puts the simulated GPU's threads on one core of their own (Linux), when the runtime was told it has one processor
/// (<c>DOTNET_PROCESSOR_COUNT=1</c>) but the process may use more.
/// <para>
/// ILGPU's CPU accelerator runs each thread of a group as an OS thread and meets all of them at a
/// <see cref="System.Threading.Barrier"/> three times per group barrier: its work is a chain of wake-ups, not arithmetic.
/// Measured on the 2-vCPU VM (2026-11-24, one 256-thread group barrier): 4.0 ms with the threads free on both vCPUs; free on
/// both but with two simulators running (the kernel and ONNX test hosts side by side), 11 ms each; pinned to one vCPU with
/// the runtime believing it has two, 1.5× slower than free, because every waiting thread busy-spins on the core the thread it
/// waits for needs; pinned with <c>DOTNET_PROCESSOR_COUNT=1</c> (no spinning) 4.3–4.9 ms, and two simulators pinned to
/// different vCPUs both ran at that speed. The check registry on the simulator: 93–100 s free (190 s of CPU time), 99 s
/// pinned (117 s of CPU time, the other core left to the rest of the program), two halves on two pinned simulators 66 s.
/// Unpinned with <c>DOTNET_PROCESSOR_COUNT=1</c> is the worst case (38 ms per barrier), so there pinning is always done.
/// </para>
/// <para>
/// Each simulator claims a free core with an exclusive lock on <c>gpunet-simulator-core{N}.lock</c> in the temp
/// directory, so simulators in one process or in several (test hosts run in parallel) spread over the cores; when every
/// core is claimed they share round robin. The claim ends with the device (or the process).
/// </para>
/// </summary>
internal static partial class SimulatorAffinity
{
    private const int MaskWords = 16; // cpu_set_t: 1024 bits
    private const nint MaskBytes = MaskWords * sizeof(ulong);
    private static readonly object Gate = new();
    private static int _opened;

    /// <summary>
    /// Where pinning applies, starts every thread of <paramref name="accelerator"/> (ILGPU starts them lazily, at the first
    /// launch whose group needs them) and pins them to a claimed core. Returns the core and the claim to hold while the
    /// device lives; no core where nothing was pinned (the simulator then runs as ILGPU made it, its threads started lazily).
    /// </summary>
    public static (int? Core, IDisposable? Claim) StartPinned(Accelerator accelerator)
    {
        if (!OperatingSystem.IsLinux() || Environment.ProcessorCount != 1 || AllowedMask() is not { } allowed
            || Cores(allowed) is not { Count: > 1 } cores)
            return (null, null);
        lock (Gate)
        {
            var before = SimulatorThreads();
            WarmUp(accelerator);
            var (core, claim) = Claim(cores, _opened++);
            var mask = new ulong[MaskWords];
            mask[core / 64] = 1UL << (core % 64);
            var pinned = new List<int>();
            foreach (int tid in SimulatorThreads().Except(before))
            {
                if (PinThread(tid, MaskBytes, mask) == 0)
                {
                    pinned.Add(tid);
                    continue;
                }
                // All or none: a simulator half on its core and half free would report no core yet crowd one. The threads
                // pinned so far get the process's cores back (best effort: a thread that refuses stays where it is).
                foreach (int done in pinned)
                    PinThread(done, MaskBytes, allowed);
                claim?.Dispose();
                return (null, null);
            }
            return (core, claim);
        }
    }

    /// <summary><c>sched_setaffinity</c> on a thread; replaced in the tests to make it fail.</summary>
    internal static Func<int, nint, ulong[], int> PinThread = SetAffinity;

    /// <summary>The first core from <paramref name="start"/> on whose lock file no other simulator holds; when all are held,
    /// the core at <paramref name="start"/> unclaimed.</summary>
    private static (int Core, IDisposable? Claim) Claim(List<int> cores, int start)
    {
        for (int k = 0; k < cores.Count; k++)
        {
            int core = cores[(start + k) % cores.Count];
            try
            {
                // FileShare.None is an flock(LOCK_EX | LOCK_NB) on Linux: refused while any open file (this process or
                // another) holds it, released when the stream is disposed or the process ends.
                return (core, new FileStream(Path.Combine(Path.GetTempPath(), $"gpunet-simulator-core{core}.lock"),
                    FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return (cores[start % cores.Count], null);
    }

    /// <summary>One launch of an empty kernel at the largest group size starts all of the accelerator's threads.</summary>
    private static void WarmUp(Accelerator accelerator)
    {
        var idle = accelerator.LoadStreamKernel<ArrayView<int>>(Idle);
        using var scratch = accelerator.Allocate1D<int>(1);
        idle(new KernelConfig(1, accelerator.MaxNumThreadsPerGroup), scratch.View);
        accelerator.Synchronize();
    }

    private static void Idle(ArrayView<int> scratch)
    {
    }

    /// <summary>ILGPU names a CPU accelerator's threads <c>ILGPU_{id}_CPU_{processor}_{thread}</c> (Linux keeps 15 characters);
    /// its frontend and GC threads, <c>ILGPU_{id}_Frontend</c> and <c>ILGPU_{id}_GCThread</c>, stay unpinned.</summary>
    [GeneratedRegex(@"^ILGPU_\d+_CPU")]
    private static partial Regex CpuThreadName();

    /// <summary>Thread ids of this process that are CPU accelerator threads (see <see cref="CpuThreadName"/>).</summary>
    internal static HashSet<int> SimulatorThreads()
    {
        var tids = new HashSet<int>();
        if (!OperatingSystem.IsLinux())
            return tids;
        try
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
                if (int.TryParse(Path.GetFileName(dir), out int tid) && CpuThreadName().IsMatch(ReadName(dir)))
                    tids.Add(tid);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return tids;
    }

    private static string ReadName(string taskDir)
    {
        try
        {
            return File.ReadAllText(Path.Combine(taskDir, "comm"));
        }
        catch (IOException)
        {
            return ""; // the thread ended while the directory was listed
        }
    }

    /// <summary>The cores the calling thread may run on (the process's mask, for a thread that never changed its own).</summary>
    private static ulong[]? AllowedMask()
    {
        var mask = new ulong[MaskWords];
        return GetAffinity(0, MaskBytes, mask) == 0 ? mask : null;
    }

    private static List<int> Cores(ulong[] mask)
    {
        var cores = new List<int>();
        for (int i = 0; i < MaskWords * 64; i++)
            if ((mask[i / 64] >> (i % 64) & 1) != 0)
                cores.Add(i);
        return cores;
    }

    [DllImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static extern int SetAffinity(int tid, nint size, ulong[] mask);

    [DllImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static extern int GetAffinity(int tid, nint size, ulong[] mask);
}

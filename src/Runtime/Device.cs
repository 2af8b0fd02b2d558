using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace GpuNet;

/// <summary>The backend a <see cref="Device"/> runs on.</summary>
public enum DeviceKind
{
    /// <summary>The fast CPU device: every ported op runs as vectorized host code (SIMD, <c>Parallel.For</c> across
    /// cores above a measured size) on the calling thread; memory is host memory from an ILGPU CPU accelerator,
    /// which also runs the GPU kernel of any op that has no host implementation yet.</summary>
    Cpu,
    /// <summary>ILGPU's CPU accelerator, created GPU-like (warp 32, 256 threads per group): it simulates a GPU, one OS
    /// thread per GPU thread, so every ILGPU kernel can be tested without a GPU. Thousands of times slower than <see cref="Cpu"/>.</summary>
    CpuSimulator,
    /// <summary>An NVIDIA GPU through CUDA.</summary>
    Cuda,
    /// <summary>A GPU through OpenCL 2.0/3.0 with generic address space.</summary>
    OpenCL,
}

/// <summary>What GpuNet knows about a device, without opening it.</summary>
/// <param name="Id">Stable name to open it by: <c>cpu</c>, <c>cuda:0</c>, <c>opencl:1</c>.</param>
/// <param name="Name">The driver's name for the device.</param>
/// <param name="Kind">Backend.</param>
/// <param name="Index">Index among devices of the same kind.</param>
/// <param name="MemoryBytes">Device memory (host memory available to the process for the CPU accelerator).</param>
/// <param name="WarpSize">Threads per warp.</param>
/// <param name="Multiprocessors">Number of multiprocessors.</param>
/// <param name="MaxThreadsPerGroup">Largest group (thread block) the device accepts.</param>
/// <param name="MaxSharedMemoryPerGroup">Shared memory one group may use, in bytes.</param>
/// <param name="ComputeCapability">CUDA compute capability (e.g. <c>9.0</c>); null elsewhere.</param>
/// <param name="DriverVersion">CUDA driver version, or OpenCL platform version; null for the CPU.</param>
public sealed record DeviceInfo(
    string Id,
    string Name,
    DeviceKind Kind,
    int Index,
    long MemoryBytes,
    int WarpSize,
    int Multiprocessors,
    int MaxThreadsPerGroup,
    int MaxSharedMemoryPerGroup,
    string? ComputeCapability,
    string? DriverVersion)
{
    /// <summary>True for CUDA and OpenCL devices.</summary>
    public bool IsGpu => Kind is DeviceKind.Cuda or DeviceKind.OpenCL;

    /// <summary>True when the device's kernels run on ILGPU's CPU accelerator (both CPU kinds): launch shapes are sized for OS threads.</summary>
    public bool UsesCpuAccelerator => !IsGpu;
}

/// <summary>
/// One opened compute device: an ILGPU context and accelerator, its caching memory pool,
/// its kernel cache and its profiler. Open by name (<c>auto</c>, <c>cpu</c>, <c>cuda</c>,
/// <c>cuda:N</c>, <c>opencl</c>, <c>opencl:N</c>, <c>cpu-sim</c>); the default comes from the
/// <c>GPUNET_DEVICE</c> environment variable, else <c>auto</c> (the best GPU, else the fast CPU).
/// A device is meant to be driven from one thread at a time.
/// </summary>
public sealed class Device : IDisposable
{
    /// <summary>The environment variable that names the default device.</summary>
    public const string EnvironmentVariable = "GPUNET_DEVICE";

    /// <summary>
    /// The CPU accelerator's shape: warp 32 and 8 warps (256 threads) per group so GPU kernels run
    /// unchanged; one multiprocessor, because every thread of a group is an OS thread there and
    /// more multiprocessors only multiply threads on a small machine.
    /// </summary>
    private static readonly CPUDevice GpuLikeCpu = new(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1);

    private static int _instances;
    private readonly Context _context;
    private bool _disposed;

    private Device(Context context, Accelerator accelerator, DeviceInfo info)
    {
        _context = context;
        Accelerator = accelerator;
        Info = info;
        Instance = Interlocked.Increment(ref _instances);
        Pool = new MemoryPool(this);
        Kernels = new KernelCache(this);
        Profiler = new Profiler(this);
    }

    /// <summary>The device's description.</summary>
    public DeviceInfo Info { get; }

    /// <summary>The stable name (<c>cpu</c>, <c>cuda:0</c>, ...).</summary>
    public string Id => Info.Id;

    /// <summary>The backend.</summary>
    public DeviceKind Kind => Info.Kind;

    /// <summary>True on the fast CPU device (<see cref="DeviceKind.Cpu"/>): launchers run their host implementation instead of the ILGPU kernel.</summary>
    public bool IsHostCpu => Info.Kind == DeviceKind.Cpu;

    /// <summary>Process-wide number of this opened instance (1, 2, ...): tells apart two opens of the same device in messages.</summary>
    public int Instance { get; }

    /// <summary><see cref="Id"/> plus the instance number, e.g. <c>cpu#2</c>.</summary>
    public string Label => $"{Id}#{Instance}";

    /// <summary>The underlying ILGPU accelerator, for callers that launch their own kernels (the escape hatch: everyday code needs no ILGPU type).</summary>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Advanced)]
    public Accelerator Accelerator { get; }

    /// <summary>The device's caching allocator.</summary>
    public MemoryPool Pool { get; }

    /// <summary>Compiled kernels, one per (kernel, specialization).</summary>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Advanced)]
    public KernelCache Kernels { get; }

    /// <summary>Per-kernel launch counts and device time (off until enabled).</summary>
    public Profiler Profiler { get; }

    private ulong _seed = DefaultSeed;
    private long _seedsDrawn;

    /// <summary>The seed a fresh device starts its <see cref="NextSeed"/> sequence from.</summary>
    public const ulong DefaultSeed = 0x5EED_6B0A_2026UL;

    /// <summary>
    /// Restarts the sequence of seeds that layers constructed on this device draw their initial weights from (PyTorch's
    /// <c>torch.manual_seed</c> for parameter initialization): the same seed and the same construction order give the same weights.
    /// </summary>
    public void ManualSeed(ulong seed)
    {
        _seed = seed;
        Interlocked.Exchange(ref _seedsDrawn, 0);
    }

    /// <summary>The next seed of this device's sequence (see <see cref="ManualSeed"/>): each layer takes one when it is constructed.</summary>
    public ulong NextSeed() => _seed + 0x9E3779B97F4A7C15UL * (ulong)Interlocked.Increment(ref _seedsDrawn);

    /// <summary>
    /// On the simulated GPU (<c>cpu-sim</c>): the core its threads are pinned to, which happens on Linux when the process runs
    /// with <c>DOTNET_PROCESSOR_COUNT=1</c> but may use several cores (each simulator then claims a core of its own; the
    /// test hosts run so). Null elsewhere: the threads float over every core.
    /// </summary>
    public int? SimulatorCore { get; private init; }

    private IDisposable? _simulatorClaim;

    /// <summary>The environment variable that sets how many threads the fast CPU device splits a large op across.</summary>
    public const string CpuThreadsVariable = "GPUNET_CPU_THREADS";

    private static readonly Lazy<int?> _cpuThreads = new(() => ParseCpuThreads(Environment.GetEnvironmentVariable(CpuThreadsVariable)));

    /// <summary>GPUNET_CPU_THREADS's value: null when unset or blank, else an integer ≥ 1 or a typed error naming the variable.</summary>
    internal static int? ParseCpuThreads(string? text) => ParseCpuSetting(CpuThreadsVariable, text, 1, "a thread count");

    /// <summary>A fast-CPU setting's value: null when unset or blank, else an integer ≥ <paramref name="min"/> or a typed
    /// error naming <paramref name="variable"/> and what it expects.</summary>
    private static int? ParseCpuSetting(string variable, string? text, int min, string expected)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        if (!int.TryParse(text.Trim(), out int n) || n < min)
            throw new UnsupportedDeviceException("open_device", "cpu", $"cannot use {variable}='{text}' (expected {expected}, an integer ≥ {min})", ["cpu"]);
        return n;
    }

    /// <summary>
    /// Threads the fast CPU device splits a large op across: <c>GPUNET_CPU_THREADS</c> when set, else
    /// <see cref="Environment.ProcessorCount"/> — on the calling thread at most the limit of its innermost
    /// <see cref="LimitCpuThreads"/> scope. (The test hosts run with one processor for the simulator's sake and two CPU
    /// threads, so the split paths are tested on every machine.)
    /// </summary>
    /// <exception cref="UnsupportedDeviceException">GPUNET_CPU_THREADS is set but is not an integer ≥ 1.</exception>
    public static int CpuThreads
    {
        get
        {
            int all = _cpuThreads.Value ?? Environment.ProcessorCount;
            return _threadLimit > 0 ? Math.Min(all, _threadLimit) : all;
        }
    }

    [ThreadStatic]
    private static int _threadLimit;

    /// <summary>The environment variable that sets how long the fast CPU device's idle worker threads spin before they sleep.</summary>
    public const string CpuSpinVariable = "GPUNET_CPU_SPIN_MS";

    private static readonly Lazy<int> _cpuSpin = new(() => ParseCpuSpin(Environment.GetEnvironmentVariable(CpuSpinVariable)));

    /// <summary>GPUNET_CPU_SPIN_MS's value: 50 when unset or blank, else an integer ≥ 0 or a typed error naming the variable.</summary>
    internal static int ParseCpuSpin(string? text) => ParseCpuSetting(CpuSpinVariable, text, 0, "milliseconds") ?? 50;

    /// <summary>
    /// How long, in milliseconds, the fast CPU device's worker threads keep spinning (yielding to any other runnable thread)
    /// after their last split loop before they sleep: <c>GPUNET_CPU_SPIN_MS</c> when set, else 50. Spinning keeps the next
    /// op's hand-off and the cores fast when inferences come with short gaps (as ONNX Runtime's pool does by default) at the
    /// price of a busy core for that long after the last one; 0 sleeps at once.
    /// </summary>
    /// <exception cref="UnsupportedDeviceException">GPUNET_CPU_SPIN_MS is set but is not an integer ≥ 0.</exception>
    public static int CpuSpinMilliseconds => _cpuSpin.Value;

    /// <summary>
    /// Runs the fast CPU device's ops that the calling thread starts on at most <paramref name="threads"/> threads (1: on the
    /// calling thread alone) until the returned scope is disposed. A nested scope can only lower the limit; disposing one
    /// restores the limit before it. Other threads and other devices are unaffected. The host kernels split their work so
    /// that each output is computed the same way on any number of threads, so results do not change with the limit (checked
    /// bit for bit on the GEMV and every model of the ONNX test set).
    /// </summary>
    /// <param name="threads">The most threads, ≥ 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is below 1.</exception>
    public static CpuThreadLimit LimitCpuThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var scope = new CpuThreadLimit(_threadLimit);
        _threadLimit = _threadLimit > 0 ? Math.Min(_threadLimit, threads) : threads;
        return scope;
    }

    /// <summary>A <see cref="LimitCpuThreads"/> scope: disposing it restores the calling thread's limit before it.</summary>
    public readonly struct CpuThreadLimit : IDisposable
    {
        private readonly int _previous;

        internal CpuThreadLimit(int previous) => _previous = previous;

        /// <summary>Restores the limit that held before the scope began.</summary>
        public void Dispose() => _threadLimit = _previous;
    }

    /// <summary>True once <see cref="Dispose"/> ran.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Lists every device ILGPU finds here that GpuNet can open, the CPU accelerator last.</summary>
    public static IReadOnlyList<DeviceInfo> List()
    {
        using var context = CreateContext();
        return Enumerate(context).Select(d => d.Info).ToList();
    }

    /// <summary>True when at least one CUDA or OpenCL device is present.</summary>
    public static bool AnyGpu() => List().Any(d => d.IsGpu);

    /// <summary>
    /// Opens a device by name. <paramref name="name"/> null or empty means the
    /// <c>GPUNET_DEVICE</c> environment variable, else <c>auto</c>.
    /// </summary>
    /// <exception cref="UnsupportedDeviceException">The name is unknown or no such device is present.</exception>
    public static Device Open(string? name = null)
    {
        if (string.IsNullOrWhiteSpace(name))
            name = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(name))
            name = "auto";
        string requested = name.Trim().ToLowerInvariant();

        var context = CreateContext();
        try
        {
            var all = Enumerate(context);
            var chosen = Select(requested, all, name);
            Accelerator accelerator = chosen.Ilgpu is CPUDevice cpu
                ? cpu.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel)
                : chosen.Ilgpu.CreateAccelerator(context);
            if (chosen.Info.Kind == DeviceKind.Cpu)
            {
                // A malformed GPUNET_CPU_THREADS or GPUNET_CPU_SPIN_MS fails here, not in the first large op.
                _ = CpuThreads;
                _ = CpuSpinMilliseconds;
            }
            var (core, claim) = chosen.Info.Kind == DeviceKind.CpuSimulator ? SimulatorAffinity.StartPinned(accelerator) : (null, null);
            return new Device(context, accelerator, chosen.Info) { SimulatorCore = core, _simulatorClaim = claim };
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private static (ILGPU.Runtime.Device Ilgpu, DeviceInfo Info) Select(string requested, List<(ILGPU.Runtime.Device Ilgpu, DeviceInfo Info)> all, string original)
    {
        var names = all.Select(d => d.Info.Id).ToList();
        if (requested == "auto")
            return all.Where(d => d.Info.Kind == DeviceKind.Cuda).OrderByDescending(d => d.Info.MemoryBytes).FirstOrDefault() is { Ilgpu: not null } cuda
                ? cuda
                : all.Where(d => d.Info.Kind == DeviceKind.OpenCL).OrderByDescending(d => d.Info.MemoryBytes).FirstOrDefault() is { Ilgpu: not null } cl
                    ? cl
                    : all.First(d => d.Info.Kind == DeviceKind.Cpu);
        if (requested is "cpu-sim" or "cpu_sim")
            return all.First(d => d.Info.Kind == DeviceKind.CpuSimulator);

        string kindPart = requested;
        int index = 0;
        int colon = requested.IndexOf(':');
        if (colon >= 0)
        {
            kindPart = requested[..colon];
            if (!int.TryParse(requested[(colon + 1)..], out index) || index < 0)
                throw new UnsupportedDeviceException("open_device", original, "has no valid index (expected kind:N with N ≥ 0)", names);
        }
        DeviceKind kind = kindPart switch
        {
            "cpu" => DeviceKind.Cpu,
            "cuda" => DeviceKind.Cuda,
            "opencl" or "cl" => DeviceKind.OpenCL,
            _ => throw new UnsupportedDeviceException("open_device", original, "is not a device name (expected auto, cpu, cpu-sim, cuda, cuda:N, opencl or opencl:N)", names),
        };
        var ofKind = all.Where(d => d.Info.Kind == kind).ToList();
        if (ofKind.Count == 0)
            throw new UnsupportedDeviceException("open_device", original,
                kind == DeviceKind.Cuda ? $"is not present ({CudaUnavailable(all.Select(d => d.Info))})" : $"is not present (no {kind} device found)", names);
        if (index >= ofKind.Count)
            throw new UnsupportedDeviceException("open_device", original, $"is not present (only {ofKind.Count} {kind} device(s))", names);
        return ofKind[index];
    }

    /// <summary>
    /// Why no CUDA device is listed, in one line (what <see cref="CudaDriver.Status"/> found: no library and where it looked,
    /// a stub, a failed <c>cuInit</c>, an old driver, no device); null when a CUDA device is present.
    /// </summary>
    public static string? CudaUnavailable() => CudaUnavailable(List());

    /// <summary>The same, for a list <see cref="List"/> already returned (no second enumeration of the drivers).</summary>
    public static string? CudaUnavailable(IEnumerable<DeviceInfo> listed)
    {
        if (listed.Any(d => d.Kind == DeviceKind.Cuda))
            return null;
        var status = CudaDriver.Status;
        return status.IsReady
            ? $"CUDA: {status.Message}, but ILGPU listed no CUDA device"
            : $"CUDA: {status.Message}";
    }

    private static Context CreateContext()
    {
        CudaDriver.InstallResolver();
        return Context.Create(builder => builder
            .Cuda()
            .OpenCL()
            .CPU(GpuLikeCpu)
            .EnableAlgorithms()
            .Optimize(OptimizationLevel.O2)
            .Profiling());
    }

    private static List<(ILGPU.Runtime.Device Ilgpu, DeviceInfo Info)> Enumerate(Context context)
    {
        var result = new List<(ILGPU.Runtime.Device, DeviceInfo)>();
        int cudaIndex = 0, clIndex = 0;
        foreach (var d in context.Devices)
        {
            switch (d)
            {
                case CudaDevice cuda:
                    string? cc = cuda.Architecture is { } arch ? $"{arch.Major}.{arch.Minor}" : null;
                    result.Add((d, Describe(d, DeviceKind.Cuda, cudaIndex++, cc, cuda.DriverVersion.ToString())));
                    break;
                case CLDevice cl:
                    result.Add((d, Describe(d, DeviceKind.OpenCL, clIndex++, null, cl.PlatformVersion.ToString())));
                    break;
            }
        }
        foreach (var d in context.GetDevices<CPUDevice>())
        {
            if (d.WarpSize != GpuLikeCpu.WarpSize || d.MaxNumThreadsPerGroup != GpuLikeCpu.MaxNumThreadsPerGroup)
                continue;
            result.Add((d, Describe(d, DeviceKind.Cpu, 0, null, null)));
            result.Add((d, Describe(d, DeviceKind.CpuSimulator, 0, null, null)));
            break;
        }
        return result;
    }

    private static DeviceInfo Describe(ILGPU.Runtime.Device d, DeviceKind kind, int index, string? cc, string? driver)
    {
        string id = kind switch { DeviceKind.Cpu => "cpu", DeviceKind.CpuSimulator => "cpu-sim", DeviceKind.Cuda => $"cuda:{index}", _ => $"opencl:{index}" };
        bool cpu = kind is DeviceKind.Cpu or DeviceKind.CpuSimulator;
        long memory = cpu ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes : d.MemorySize;
        string name = kind switch
        {
            DeviceKind.Cpu => $"Host CPU ({Environment.ProcessorCount} cores, {HostSimd()}), vectorized host code",
            DeviceKind.CpuSimulator => $"ILGPU CPU accelerator ({Environment.ProcessorCount} cores), simulated GPU",
            _ => d.Name,
        };
        return new DeviceInfo(id, name, kind, index, memory, d.WarpSize, d.NumMultiprocessors,
            d.MaxNumThreadsPerGroup, d.MaxSharedMemoryPerGroup, cc, driver);
    }

    /// <summary>The widest SIMD the host code uses here.</summary>
    private static string HostSimd() =>
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512"
        : System.Runtime.Intrinsics.X86.Fma.IsSupported ? "AVX2+FMA"
        : System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2"
        : System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? "128-bit SIMD" : "scalar";

    /// <summary>Waits until every launched kernel and copy on this device has finished.</summary>
    public void Synchronize()
    {
        EnsureAlive("synchronize");
        Accelerator.Synchronize();
    }

    /// <summary>
    /// Opens a scope: every tensor created on this device (on this thread) until the scope is
    /// disposed is disposed with it, except those passed to <see cref="TensorScope.Keep"/>.
    /// </summary>
    public TensorScope Scope()
    {
        EnsureAlive("scope");
        return TensorScope.Push(this);
    }

    /// <summary>Throws <see cref="TensorDisposedException"/> if the device was disposed.</summary>
    public void EnsureAlive(string op)
    {
        if (_disposed)
            throw new TensorDisposedException(op, $"device {Id}");
    }

    /// <inheritdoc />
    public override string ToString() => $"{Id} ({Info.Name})";

    /// <summary>Frees the pool, the compiled kernels, the accelerator and the context.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        try
        {
            Accelerator.Synchronize();
        }
        finally
        {
            _disposed = true;
            Pool.ReleaseAll();
            Accelerator.Dispose();
            _context.Dispose();
            _simulatorClaim?.Dispose();
        }
    }
}

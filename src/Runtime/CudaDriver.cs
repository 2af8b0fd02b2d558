using System.Reflection;
using System.Runtime.InteropServices;
using ILGPU.Runtime.Cuda;

namespace GpuNet;

/// <summary>What became of looking for the CUDA driver (see <see cref="CudaDriver.Status"/>).</summary>
public enum CudaDriverOutcome
{
    /// <summary>The driver loaded, initialized and reports at least one device ILGPU can compile for.</summary>
    Ready,
    /// <summary>No driver library was found (or the one <c>GPUNET_CUDA_LIBRARY</c> names does not exist).</summary>
    NotFound,
    /// <summary>A library was found but could not be loaded, or is not a CUDA driver (it has no <c>cuInit</c>).</summary>
    LoadFailed,
    /// <summary>Only the CUDA toolkit's stub <c>libcuda.so</c> was found: it links programs but cannot run them.</summary>
    StubLibrary,
    /// <summary>The driver loaded but <c>cuInit</c> failed (no usable device, driver/kernel module mismatch, ...).</summary>
    InitFailed,
    /// <summary>The driver initialized and reports no device.</summary>
    NoDevice,
    /// <summary>The driver reports devices, but it is too old for ILGPU to compile for any of them (or ILGPU does not know their architecture).</summary>
    DriverTooOld,
}

/// <summary>One CUDA device as the driver reports it, and the PTX ILGPU would give it.</summary>
/// <param name="Ordinal">The driver's device number.</param>
/// <param name="Name">The driver's name for the device.</param>
/// <param name="Architecture">Compute capability as <c>sm_XY</c>.</param>
/// <param name="PtxIsa">The PTX ISA ILGPU emits for this device with this driver (e.g. <c>8.5</c>); null when it cannot compile for it.</param>
/// <param name="Problem">Why ILGPU cannot use the device; null when it can.</param>
public sealed record CudaDeviceReport(int Ordinal, string Name, string Architecture, string? PtxIsa, string? Problem);

/// <summary>
/// The result of looking for the CUDA driver: where GpuNet looked, what it loaded, what the driver said.
/// <see cref="Message"/> is one line fit for a user ("CUDA: the driver at /usr/lib/x86_64-linux-gnu/libcuda.so.1 failed in cuInit
/// with error 999 (CUDA_ERROR_UNKNOWN)").
/// </summary>
/// <param name="Outcome">What happened.</param>
/// <param name="LibraryPath">The library that was loaded (or, for a stub or a load failure, the one that was found); null when none.</param>
/// <param name="LookedIn">Every place looked, in order, with what was found there.</param>
/// <param name="ErrorCode">The CUDA error code of a failed <c>cuInit</c>; null otherwise.</param>
/// <param name="ErrorName">Its name (<c>CUDA_ERROR_NO_DEVICE</c>); null otherwise.</param>
/// <param name="DriverVersion">The driver's CUDA version (<c>13.0</c>); null before <c>cuInit</c> succeeded.</param>
/// <param name="Devices">The devices the driver reports.</param>
/// <param name="Message">One line saying what happened.</param>
public sealed record CudaDriverStatus(
    CudaDriverOutcome Outcome,
    string? LibraryPath,
    IReadOnlyList<string> LookedIn,
    int? ErrorCode,
    string? ErrorName,
    string? DriverVersion,
    IReadOnlyList<CudaDeviceReport> Devices,
    string Message)
{
    /// <summary>True when the driver is usable.</summary>
    public bool IsReady => Outcome == CudaDriverOutcome.Ready;

    /// <summary>The loaded library's handle (zero when none stays loaded): what ILGPU's <c>cuda</c> import resolves to.</summary>
    internal IntPtr Handle { get; init; }
}

/// <summary>
/// Finds, loads and asks the CUDA driver before ILGPU does. ILGPU imports the driver by the bare name <c>cuda</c>, which .NET
/// probes as <c>libcuda.so</c> and its variants but never <c>libcuda.so.1</c> — the only name a driver install is sure to
/// have (containers often ship nothing else), while <c>libcuda.so</c> may be the CUDA toolkit's stub, which fails in
/// <c>cuInit</c>. GpuNet resolves the import itself: <c>GPUNET_CUDA_LIBRARY</c> when set, else <c>libcuda.so.1</c> then
/// <c>libcuda.so</c> in <c>LD_LIBRARY_PATH</c>, the usual driver folders and the loader's own search, skipping any
/// <c>stubs</c> folder; and it keeps what it saw, so <c>devices</c> and <c>Device.Open("cuda")</c> can say why CUDA is absent.
/// </summary>
public static class CudaDriver
{
    /// <summary>The environment variable that names the driver library to load (a path), overriding the search.</summary>
    public const string LibraryVariable = "GPUNET_CUDA_LIBRARY";

    /// <summary>The name ILGPU imports the driver by on Linux and macOS.</summary>
    private const string IlgpuImportName = "cuda";

    /// <summary>Where a Linux driver install puts <c>libcuda.so.1</c>: distribution folders, the NVIDIA container toolkit's and WSL's.</summary>
    internal static readonly string[] DriverFolders =
    [
        "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/nvidia/lib64",
        "/usr/local/nvidia/lib", "/usr/lib/wsl/lib", "/usr/local/cuda/compat", "/usr/local/cuda/lib64",
    ];

    private static readonly Lazy<CudaDriverStatus> _status = new(() => Probe(CudaDriverSearch.FromEnvironment()));
    private static readonly object _resolverLock = new();
    private static bool _resolverInstalled;

    /// <summary>What looking for the driver found in this process (looked for once, on first use, with this process's environment).</summary>
    public static CudaDriverStatus Status => _status.Value;

    /// <summary>
    /// Routes ILGPU's import of the driver to the library <see cref="Status"/> loaded. Called before every ILGPU context is
    /// created; installs the resolver once. Under WSL ILGPU installs its own resolver (for <c>/usr/lib/wsl/lib</c>), and an
    /// assembly takes only one, so GpuNet leaves it to ILGPU there.
    /// </summary>
    internal static void InstallResolver()
    {
        lock (_resolverLock)
        {
            if (_resolverInstalled || !OperatingSystem.IsLinux() || IsWsl())
                return;
            _resolverInstalled = true;
            try
            {
                NativeLibrary.SetDllImportResolver(typeof(CudaAccelerator).Assembly, Resolve);
            }
            catch (InvalidOperationException)
            {
                // Another component set ILGPU's resolver first: ILGPU then loads the driver as that one decides.
            }
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == IlgpuImportName ? Status.Handle : IntPtr.Zero;

    private static bool IsWsl()
    {
        try
        {
            return Directory.Exists("/usr/lib/wsl/lib") && File.ReadAllText("/proc/version").Contains("microsoft", StringComparison.OrdinalIgnoreCase);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A library worth loading, in the order tried; <see cref="IsStub"/> ones are reported, never loaded.</summary>
    internal sealed record Candidate(string Path, bool IsStub);

    /// <summary>
    /// The libraries to try, best first: the override alone when set; else every <c>libcuda.so.1</c> in the folders (in
    /// order), then every <c>libcuda.so</c>, then the same two names through the loader's own search (ld.so.cache). A file
    /// in a folder named <c>stubs</c> comes back marked as a stub.
    /// </summary>
    internal static List<Candidate> Candidates(CudaDriverSearch search, Func<string, bool> exists)
    {
        if (!string.IsNullOrWhiteSpace(search.Override))
            return [new Candidate(search.Override, IsStubPath(search.Override))];
        var result = new List<Candidate>();
        var folders = search.Folders.Where(f => f.Length > 0).Select(f => f.TrimEnd('/')).Distinct().ToList();
        foreach (var name in new[] { "libcuda.so.1", "libcuda.so" })
            foreach (var folder in folders)
            {
                string path = folder + "/" + name;
                if (exists(path))
                    result.Add(new Candidate(path, IsStubPath(path)));
            }
        if (search.LoaderSearch)
            result.AddRange([new Candidate("libcuda.so.1", false), new Candidate("libcuda.so", false)]);
        return result;
    }

    private static bool IsStubPath(string path) => path.Split('/').Any(part => part.Equals("stubs", StringComparison.OrdinalIgnoreCase));

    /// <summary>Looks for the driver as <paramref name="search"/> says, loads the first real one and asks it about its devices.</summary>
    internal static CudaDriverStatus Probe(CudaDriverSearch search)
    {
        var looked = new List<string>();
        if (!OperatingSystem.IsLinux() && string.IsNullOrWhiteSpace(search.Override))
            return ProbeByName(OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.dylib", looked);
        var candidates = Candidates(search, File.Exists);
        string? stub = null;
        CudaDriverStatus? firstFailure = null;
        foreach (var candidate in candidates)
        {
            if (candidate.IsStub)
            {
                looked.Add($"{candidate.Path} (skipped: a stub library)");
                stub ??= candidate.Path;
                continue;
            }
            if (candidate.Path.Contains('/') && !File.Exists(candidate.Path))
            {
                looked.Add($"{candidate.Path} (no such file)");
                continue;
            }
            var status = Load(candidate.Path, looked);
            if (status is null)
                continue;
            if (status.Outcome == CudaDriverOutcome.StubLibrary)
            {
                stub ??= status.LibraryPath;
                continue;
            }
            if (status.Outcome == CudaDriverOutcome.LoadFailed)
            {
                firstFailure ??= status;
                continue;
            }
            return status;
        }
        if (firstFailure is not null)
            return firstFailure with { LookedIn = looked };
        if (stub is not null)
            return Result(CudaDriverOutcome.StubLibrary, stub, looked,
                $"only the CUDA toolkit's stub library was found ({stub}); it cannot run kernels: install the NVIDIA driver, or point {LibraryVariable} at its libcuda.so.1");
        if (!string.IsNullOrWhiteSpace(search.Override))
            return Result(CudaDriverOutcome.NotFound, null, looked, $"{LibraryVariable}={search.Override} names no file");
        var places = search.Folders.Where(f => f.Length > 0).Distinct().ToList();
        string where = places.Count == 0 ? "the loader's search path" : string.Join(", ", places) + (search.LoaderSearch ? " and the loader's search path" : "");
        return Result(CudaDriverOutcome.NotFound, null, looked,
            $"no NVIDIA driver library (libcuda.so.1) found (looked in {where}); install the driver or set {LibraryVariable}=PATH");
    }

    private static CudaDriverStatus ProbeByName(string name, List<string> looked) =>
        Load(name, looked) ?? Result(CudaDriverOutcome.NotFound, null, looked, $"no NVIDIA driver library ({name}) found by the loader");

    private static CudaDriverStatus Result(CudaDriverOutcome outcome, string? path, List<string> looked, string message,
        int? code = null, string? name = null, string? version = null, IReadOnlyList<CudaDeviceReport>? devices = null) =>
        new(outcome, path, looked.ToList(), code, name, version, devices ?? [], message);

    /// <summary>
    /// Loads one library and asks it: null when a bare name is not found by the loader (the search goes on); a stub or a
    /// load failure for the caller to weigh; otherwise the final answer (the library stays loaded when it is a real driver).
    /// </summary>
    private static unsafe CudaDriverStatus? Load(string path, List<string> looked)
    {
        bool bare = !path.Contains('/') && !path.Contains('\\');
        IntPtr handle;
        try
        {
            handle = NativeLibrary.Load(path);
        }
        catch (DllNotFoundException e)
        {
            if (bare)
            {
                looked.Add($"{path} (not found by the loader)");
                return null;
            }
            looked.Add($"{path} (failed to load)");
            return Result(CudaDriverOutcome.LoadFailed, path, looked, $"{path} could not be loaded: {FirstLine(e.Message)}");
        }
        catch (BadImageFormatException e)
        {
            looked.Add($"{path} (failed to load)");
            return Result(CudaDriverOutcome.LoadFailed, path, looked, $"{path} could not be loaded: {FirstLine(e.Message)}");
        }
        string shown = bare ? $"{path} (loaded by the loader)" : path;
        if (!NativeLibrary.TryGetExport(handle, "cuInit", out var cuInitPtr))
        {
            NativeLibrary.Free(handle);
            looked.Add($"{shown}: not a CUDA driver (no cuInit)");
            return Result(CudaDriverOutcome.LoadFailed, path, looked, $"{path} is not a CUDA driver (it exports no cuInit)");
        }
        var cuInit = (delegate* unmanaged<uint, int>)cuInitPtr;
        int error = cuInit(0);
        if (error != 0)
        {
            string errorName = ErrorName(handle, error);
            if (error == StubLibraryError)
            {
                NativeLibrary.Free(handle);
                looked.Add($"{shown}: a stub library (cuInit returned {error}, {errorName})");
                return Result(CudaDriverOutcome.StubLibrary, path, looked, $"{path} is a stub library", error, errorName);
            }
            looked.Add($"{shown}: cuInit returned {error} ({errorName})");
            string hint = error switch
            {
                100 => ": the driver sees no CUDA device (is the GPU visible to this container? CUDA_VISIBLE_DEVICES?)",
                35 => ": the driver is older than this library expects",
                803 => ": the driver library and the kernel module are different versions",
                _ => "",
            };
            return Result(CudaDriverOutcome.InitFailed, path, looked, $"the driver at {path} failed in cuInit with error {error} ({errorName}){hint}",
                error, errorName) with { Handle = handle };
        }
        looked.Add($"{shown}: cuInit succeeded");
        int raw = 0;
        var getVersion = (delegate* unmanaged<int*, int>)Export(handle, "cuDriverGetVersion");
        if (getVersion == null || getVersion(&raw) != 0)
            return Result(CudaDriverOutcome.LoadFailed, path, looked, $"the driver at {path} did not report its version (cuDriverGetVersion)") with { Handle = handle };
        var version = CudaDriverVersion.FromValue(raw);
        string versionText = $"{version.Major}.{version.Minor}";
        int count = 0;
        var getCount = (delegate* unmanaged<int*, int>)Export(handle, "cuDeviceGetCount");
        if (getCount == null || getCount(&count) != 0 || count < 1)
            return Result(CudaDriverOutcome.NoDevice, path, looked, $"the driver at {path} (CUDA {versionText}) reports no device",
                version: versionText) with { Handle = handle };
        var devices = Enumerable.Range(0, count).Select(i => Describe(handle, i, version)).ToList();
        var usable = devices.Where(d => d.Problem is null).ToList();
        if (usable.Count == 0)
            return Result(CudaDriverOutcome.DriverTooOld, path, looked,
                $"the driver at {path} (CUDA {versionText}) reports {string.Join("; ", devices.Select(d => $"{d.Name} ({d.Architecture}): {d.Problem}"))}",
                version: versionText, devices: devices) with { Handle = handle };
        return Result(CudaDriverOutcome.Ready, path, looked,
            $"driver {path} (CUDA {versionText}): {string.Join(", ", usable.Select(d => $"{d.Name} ({d.Architecture}, PTX ISA {d.PtxIsa})"))}",
            version: versionText, devices: devices) with { Handle = handle };
    }

    /// <summary>CUDA_ERROR_STUB_LIBRARY: what the toolkit's stub <c>libcuda.so</c> returns from every call.</summary>
    private const int StubLibraryError = 34;

    private static unsafe CudaDeviceReport Describe(IntPtr handle, int ordinal, CudaDriverVersion version)
    {
        var getDevice = (delegate* unmanaged<int*, int, int>)Export(handle, "cuDeviceGet");
        var getAttribute = (delegate* unmanaged<int*, int, int, int>)Export(handle, "cuDeviceGetAttribute");
        var getName = (delegate* unmanaged<byte*, int, int, int>)Export(handle, "cuDeviceGetName");
        int device = ordinal, major = 0, minor = 0;
        if (getDevice == null || getDevice(&device, ordinal) != 0 || getAttribute == null
            || getAttribute(&major, 75, device) != 0 || getAttribute(&minor, 76, device) != 0)
            return new CudaDeviceReport(ordinal, $"device {ordinal}", "unknown", null, "the driver did not report its compute capability");
        string name = $"device {ordinal}";
        var buffer = stackalloc byte[256];
        if (getName != null && getName(buffer, 256, device) == 0)
            name = Marshal.PtrToStringAnsi((IntPtr)buffer) ?? name;
        string arch = $"sm_{major}{minor}";
        if (major < 3)
            return new CudaDeviceReport(ordinal, name, arch, null, "ILGPU needs compute capability 3.0 or newer");
        try
        {
            if (CudaAccelerator.TryGetInstructionSet(new CudaArchitecture(major, minor), version, out var needed, out var isa))
                return new CudaDeviceReport(ordinal, name, arch, $"{isa.Major}.{isa.Minor}", null);
            return new CudaDeviceReport(ordinal, name, arch, null,
                $"driver CUDA {version.Major}.{version.Minor} is too old for it (ILGPU needs CUDA {needed.Major}.{needed.Minor} or newer)");
        }
        catch (Exception e) when (e is NotSupportedException or ArgumentException or KeyNotFoundException or InvalidOperationException)
        {
            return new CudaDeviceReport(ordinal, name, arch, null, $"ILGPU {typeof(CudaAccelerator).Assembly.GetName().Version?.ToString(3)} does not know this architecture");
        }
    }

    private static IntPtr Export(IntPtr handle, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var p) ? p : IntPtr.Zero;

    /// <summary>The driver's name for an error code (cuGetErrorName), else GpuNet's own table of the common ones.</summary>
    private static unsafe string ErrorName(IntPtr handle, int error)
    {
        var getName = (delegate* unmanaged<int, byte**, int>)Export(handle, "cuGetErrorName");
        byte* text = null;
        if (getName != null && getName(error, &text) == 0 && text != null)
            return Marshal.PtrToStringAnsi((IntPtr)text) ?? KnownErrorName(error);
        return KnownErrorName(error);
    }

    internal static string KnownErrorName(int error) => error switch
    {
        1 => "CUDA_ERROR_INVALID_VALUE",
        2 => "CUDA_ERROR_OUT_OF_MEMORY",
        3 => "CUDA_ERROR_NOT_INITIALIZED",
        4 => "CUDA_ERROR_DEINITIALIZED",
        34 => "CUDA_ERROR_STUB_LIBRARY",
        35 => "CUDA_ERROR_INSUFFICIENT_DRIVER",
        46 => "CUDA_ERROR_DEVICES_UNAVAILABLE",
        100 => "CUDA_ERROR_NO_DEVICE",
        101 => "CUDA_ERROR_INVALID_DEVICE",
        304 => "CUDA_ERROR_OPERATING_SYSTEM",
        803 => "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        804 => "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        999 => "CUDA_ERROR_UNKNOWN",
        _ => "an unknown CUDA error",
    };

    private static string FirstLine(string text) => text.Split('\n')[0].Trim();
}

/// <summary>Where to look for the CUDA driver: an override path, folders in order, and whether to ask the loader by bare name too.</summary>
/// <param name="Override">A library path that replaces the search (<c>GPUNET_CUDA_LIBRARY</c>); null or empty for none.</param>
/// <param name="Folders">Folders searched for <c>libcuda.so.1</c>, then <c>libcuda.so</c>.</param>
/// <param name="LoaderSearch">Whether to try the bare names through the system loader (ld.so.cache) after the folders.</param>
internal sealed record CudaDriverSearch(string? Override, IReadOnlyList<string> Folders, bool LoaderSearch)
{
    /// <summary>This process's search: <c>GPUNET_CUDA_LIBRARY</c>, then <c>LD_LIBRARY_PATH</c>'s folders and the usual driver folders.</summary>
    public static CudaDriverSearch FromEnvironment() => new(
        Environment.GetEnvironmentVariable(CudaDriver.LibraryVariable),
        (Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(CudaDriver.DriverFolders).ToList(),
        LoaderSearch: true);
}

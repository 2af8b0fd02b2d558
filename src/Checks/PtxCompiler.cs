using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GpuNet.Kernels;

/// <summary>
/// Compiles kernels to PTX with ILGPU's PTX backend, at the same optimization level the devices
/// use (O2), without any GPU or CUDA installation: proves every kernel compiles for CUDA and lets
/// tests and the <c>ptx</c> verb read what the compiler made (vector loads, barriers, spills).
/// </summary>
public sealed class PtxCompiler : IDisposable
{
    private readonly Context _context;
    private readonly PTXBackend _backend;

    /// <summary>The CUDA driver of the GPU machine GpuNet is verified on (driver 580): the PTX is what ILGPU emits for it there.</summary>
    public const int TargetDriverVersion = 13000;

    /// <summary>
    /// Creates a compiler for <paramref name="architecture"/> (e.g. <c>sm_90</c>) emitting the PTX ISA ILGPU picks with a CUDA
    /// <paramref name="driverVersion"/> driver (1000·major + 10·minor): the newest it knows that the driver accepts, so the
    /// offline PTX is the text the driver's JIT (or ptxas) will be given.
    /// </summary>
    /// <exception cref="ArgumentException">The architecture is not one ILGPU knows, or the driver is too old for it.</exception>
    public PtxCompiler(string architecture = "sm_90", int driverVersion = TargetDriverVersion)
    {
        var arch = ParseArchitecture(architecture);
        var driver = CudaDriverVersion.FromValue(driverVersion);
        if (!CudaAccelerator.TryGetInstructionSet(arch, driver, out var needed, out var isa))
            throw new ArgumentException($"ptx: {architecture} needs a CUDA {needed.Major}.{needed.Minor} driver or newer with ILGPU (given {driver.Major}.{driver.Minor})");
        _context = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        _backend = new PTXBackend(_context, arch, isa, null!);
        Architecture = architecture;
        InstructionSet = $"{isa.Major}.{isa.Minor}";
    }

    /// <summary>The target architecture, as given.</summary>
    public string Architecture { get; }

    /// <summary>The PTX ISA version the text declares (<c>.version</c>), e.g. <c>8.8</c>.</summary>
    public string InstructionSet { get; }

    /// <summary>The architectures ILGPU can compile for, oldest first (<c>sm_30</c> ... ).</summary>
    public static IReadOnlyList<CudaArchitecture> KnownArchitectures { get; } = typeof(CudaArchitecture)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.FieldType == typeof(CudaArchitecture))
        .Select(f => (CudaArchitecture)f.GetValue(null)!)
        .OrderBy(a => a)
        .ToList();

    /// <summary>Parses <c>sm_XY</c> into ILGPU's architecture value.</summary>
    /// <exception cref="ArgumentException">Not of the form sm_XY, or an architecture ILGPU does not know.</exception>
    public static CudaArchitecture ParseArchitecture(string name)
    {
        var s = name.Trim().ToLowerInvariant();
        string known = string.Join(", ", KnownArchitectures.Select(a => $"sm_{a.Major}{a.Minor}"));
        if (s.StartsWith("sm_") && s.Length >= 5 && int.TryParse(s[3..^1], out int major) && int.TryParse(s[^1..], out int minor))
        {
            var arch = new CudaArchitecture(major, minor);
            if (KnownArchitectures.Contains(arch))
                return arch;
            throw new ArgumentException($"ptx: '{name}' is not an architecture ILGPU {typeof(Context).Assembly.GetName().Version?.ToString(3)} knows (known: {known})");
        }
        throw new ArgumentException($"ptx: '{name}' is not a CUDA architecture (expected sm_XY, e.g. sm_90; known: {known})");
    }

    /// <summary>The PTX text of an explicitly grouped kernel (a closed generic method where the kernel is generic).</summary>
    public string Compile(MethodInfo kernel)
    {
        var compiled = (PTXCompiledKernel)_backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel), default);
        return compiled.PTXAssembly;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _backend.Dispose();
        _context.Dispose();
    }
}

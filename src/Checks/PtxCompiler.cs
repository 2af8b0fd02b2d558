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

    /// <summary>Creates a compiler for <paramref name="architecture"/> (e.g. <c>sm_90</c>).</summary>
    /// <exception cref="ArgumentException">The architecture is not a CUDA architecture ILGPU knows.</exception>
    public PtxCompiler(string architecture = "sm_90")
    {
        var arch = ParseArchitecture(architecture);
        _context = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        var isa = CudaInstructionSet.ISA_80;
        _backend = new PTXBackend(_context, arch, isa, null!);
        Architecture = architecture;
    }

    /// <summary>The target architecture, as given.</summary>
    public string Architecture { get; }

    /// <summary>Parses <c>sm_XY</c> into ILGPU's architecture value.</summary>
    public static CudaArchitecture ParseArchitecture(string name)
    {
        var s = name.Trim().ToLowerInvariant();
        if (s.StartsWith("sm_") && s.Length >= 5 && int.TryParse(s[3..^1], out int major) && int.TryParse(s[^1..], out int minor))
            return new CudaArchitecture(major, minor);
        throw new ArgumentException($"ptx: '{name}' is not a CUDA architecture (expected sm_XY, e.g. sm_90)");
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

using GpuNet.Tests;
using Xunit;

namespace GpuNet.Bench.Tests;

/// <summary>
/// <c>devices</c> in a fresh process (ILGPU binds the driver once per process) with <c>GPUNET_CUDA_LIBRARY</c> pointing at the
/// stand-in drivers of tests/Shared/fake_cuda.c: the override reaches ILGPU's own import of the driver, and when CUDA is absent
/// the verb says why in one line.
/// </summary>
public sealed class DevicesVerbTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("gpunet-devices-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static (int Code, string Out, string Err) Devices(string library) =>
        GpunetProcess.Run(new Dictionary<string, string> { [CudaDriver.LibraryVariable] = library }, "devices");

    [Fact]
    public void TheOverrideIsWhatIlgpuLoads()
    {
        // A versioned name in a folder no loader searches: only GpuNet's resolver can hand it to ILGPU.
        string lib = FakeCudaDriver.Build(Path.Combine(_root, "driver"), "libcuda.so.1");
        var (code, text, err) = Devices(lib);
        Assert.True(code == 0, err);
        var row = Assert.Single(text.Split('\n'), l => l.StartsWith("cuda:0"));
        Assert.Contains("GpuNet fake GPU", row);
        Assert.Contains("9.0", row);
        Assert.DoesNotContain("CUDA:", text);
    }

    [Fact]
    public void TheHostCpuShowsNoGpuFields()
    {
        var (code, text, err) = Devices(Path.Combine(_root, "missing.so"));
        Assert.True(code == 0, err);
        var cpu = Assert.Single(text.Split('\n'), l => l.StartsWith("cpu "));
        var cells = cpu.Split("  ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // id, name, kind, memory, then warp, SMs, max threads/group, shared/group, compute capability, driver: all "-".
        Assert.Equal(new[] { "-", "-", "-", "-", "-", "-" }, cells[^6..]);
        var sim = Assert.Single(text.Split('\n'), l => l.StartsWith("cpu-sim "));
        Assert.Contains(" 32 ", sim);   // the simulator's GPU-like warp
    }

    [Fact]
    public void WithoutCudaTheVerbSaysWhyInOneLine()
    {
        string stub = FakeCudaDriver.Build(Path.Combine(_root, "toolkit"), "libcuda.so", init: 34);
        var (code, text, err) = Devices(stub);
        Assert.True(code == 0, err);
        Assert.DoesNotContain("cuda:0", text);
        Assert.Single(text.Split('\n'), l => l.StartsWith("CUDA: ") && l.Contains($"only the CUDA toolkit's stub library was found ({stub})"));

        (code, text, err) = Devices(Path.Combine(_root, "missing.so"));
        Assert.True(code == 0, err);
        Assert.Single(text.Split('\n'), l => l == $"CUDA: {CudaDriver.LibraryVariable}={Path.Combine(_root, "missing.so")} names no file");
    }
}

using GpuNet;
using Xunit;

namespace GpuNet.Tests;

/// <summary>
/// The devices every test runs on: the fast CPU device and ILGPU's simulated GPU (<c>cpu-sim</c>) always, plus
/// every CUDA/OpenCL device present. Opened once per test run and shared (opening a device costs a context and its threads).
/// </summary>
public static class TestDevices
{
    private static readonly Lazy<Device> _cpu = new(() => Device.Open("cpu"));
    private static readonly Lazy<Device> _simulator = new(() => Device.Open("cpu-sim"));
    private static readonly Lazy<IReadOnlyList<DeviceInfo>> _gpuInfos = new(() => Device.List().Where(d => d.IsGpu).ToList());
    private static readonly Dictionary<string, Device> _gpus = new();

    /// <summary>The shared fast CPU device (host code).</summary>
    public static Device Cpu => _cpu.Value;

    /// <summary>The shared simulated GPU: ILGPU's CPU accelerator running the GPU kernels.</summary>
    public static Device Simulator => _simulator.Value;

    /// <summary>Ids of the GPUs present (empty on CI).</summary>
    public static IReadOnlyList<string> GpuIds => _gpuInfos.Value.Select(d => d.Id).ToList();

    /// <summary>True when a GPU is present.</summary>
    public static bool HasGpu => _gpuInfos.Value.Count > 0;

    /// <summary>The shared device with this id.</summary>
    public static Device Get(string id)
    {
        if (id == "cpu")
            return Cpu;
        if (id == "cpu-sim")
            return Simulator;
        lock (_gpus)
        {
            if (!_gpus.TryGetValue(id, out var d))
                _gpus[id] = d = Device.Open(id);
            return d;
        }
    }
}

/// <summary>A theory that runs only where a GPU is present and is reported as skipped (never passed) elsewhere.</summary>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    public GpuTheoryAttribute()
    {
        if (!TestDevices.HasGpu)
            Skip = "no CUDA or OpenCL device on this machine";
    }
}

using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

public sealed class DeviceTests
{
    [Fact]
    public void ListIncludesFastCpuAndSimulator()
    {
        var all = Device.List();
        var cpu = Assert.Single(all, d => d.Kind == DeviceKind.Cpu);
        Assert.Equal("cpu", cpu.Id);
        Assert.Contains("host code", cpu.Name);
        Assert.True(cpu.MemoryBytes > 0);
        var sim = Assert.Single(all, d => d.Kind == DeviceKind.CpuSimulator);
        Assert.Equal("cpu-sim", sim.Id);
        Assert.Equal(32, sim.WarpSize);
        Assert.True(sim.MaxThreadsPerGroup >= 256);
        Assert.False(cpu.IsGpu);
        Assert.False(sim.IsGpu);
    }

    [Theory]
    [InlineData("cpu", DeviceKind.Cpu, true)]
    [InlineData("cpu-sim", DeviceKind.CpuSimulator, false)]
    public void OpenCpuDevicesByName(string id, DeviceKind kind, bool hostCode)
    {
        var d = TestDevices.Get(id);
        Assert.Equal(kind, d.Kind);
        Assert.Equal(id, d.Id);
        Assert.Equal(hostCode, d.IsHostCpu);
        Assert.Equal(32, d.Accelerator.WarpSize);
    }

    [Fact]
    public void AutoPicksGpuElseFastCpu()
    {
        using var d = Device.Open("auto");
        if (Device.AnyGpu())
            Assert.True(d.Info.IsGpu);
        else
            Assert.Equal(DeviceKind.Cpu, d.Kind);
    }

    [Fact]
    public void EnvironmentVariableIsTheDefault()
    {
        var old = Environment.GetEnvironmentVariable(Device.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(Device.EnvironmentVariable, "cpu");
            using var d = Device.Open();
            Assert.Equal("cpu", d.Id);
            Environment.SetEnvironmentVariable(Device.EnvironmentVariable, "warp-drive");
            Assert.Throws<UnsupportedDeviceException>(() => Device.Open());
        }
        finally
        {
            Environment.SetEnvironmentVariable(Device.EnvironmentVariable, old);
        }
    }

    [Theory]
    [InlineData("warp-drive", "is not a device name")]
    [InlineData("cuda:x", "no valid index")]
    [InlineData("cpu:3", "is not present")]
    public void BadNamesListWhatIsThere(string name, string reason)
    {
        var e = Assert.Throws<UnsupportedDeviceException>(() => Device.Open(name));
        Assert.Contains(reason, e.Message);
        Assert.Contains("cpu", e.Available);
        Assert.Contains("devices here: ", e.Message);
        Assert.Equal("open_device", e.Op);
    }

    [Fact]
    public void AbsentGpuIsAClearError()
    {
        if (Device.List().Any(d => d.Kind == DeviceKind.Cuda))
            return; // a CUDA machine: "cuda" is present, nothing to reject
        var e = Assert.Throws<UnsupportedDeviceException>(() => Device.Open("cuda"));
        Assert.Contains("not present", e.Message);
    }

    [Fact]
    public void DisposedDeviceRejectsWork()
    {
        var d = Device.Open("cpu");
        var t = Tensor.Zeros(d, 4);
        d.Dispose();
        Assert.Throws<TensorDisposedException>(() => Tensor.Zeros(d, 2));
        Assert.Throws<TensorDisposedException>(() => t.ToArray());
        d.Dispose(); // twice is harmless
    }
}

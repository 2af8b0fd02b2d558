using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

public sealed class DeviceTests
{
    [Fact]
    public void ListIncludesGpuLikeCpu()
    {
        var cpu = Assert.Single(Device.List(), d => d.Kind == DeviceKind.Cpu);
        Assert.Equal("cpu", cpu.Id);
        Assert.Equal(32, cpu.WarpSize);
        Assert.True(cpu.MaxThreadsPerGroup >= 256);
        Assert.True(cpu.MemoryBytes > 0);
    }

    [Fact]
    public void OpenCpuByName()
    {
        var d = TestDevices.Cpu;
        Assert.Equal(DeviceKind.Cpu, d.Kind);
        Assert.Equal("cpu", d.Id);
        Assert.Equal(32, d.Accelerator.WarpSize);
    }

    [Fact]
    public void AutoPicksGpuElseCpu()
    {
        using var d = Device.Open("auto");
        Assert.Equal(Device.AnyGpu() ? d.Info.IsGpu : false, d.Info.IsGpu);
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

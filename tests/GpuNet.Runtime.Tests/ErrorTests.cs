using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>Every typed error: raised before anything is launched, naming the op and expected vs actual.</summary>
public sealed class ErrorTests
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void ShapeMismatch()
    {
        using var a = Tensor.Zeros(Cpu, 3, 4);
        using var b = Tensor.Zeros(Cpu, 5);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Sub(a, b));
        Assert.Equal("sub", e.Op);
        Assert.Equal("b", e.Argument);
        Assert.Contains("broadcastable with [3, 4]", e.Expected);
        Assert.Equal("[5]", e.Actual);
        Assert.StartsWith("sub: argument 'b'", e.Message);
    }

    [Fact]
    public void DeviceMismatch()
    {
        using var other = Device.Open("cpu");
        using var a = Tensor.Zeros(Cpu, 3);
        using var b = Tensor.FromArray(other, new float[] { 1, 2, 3 });
        var e = Assert.Throws<DeviceMismatchException>(() => Ops.Add(a, b));
        Assert.Equal("add", e.Op);
        Assert.Equal("b", e.Argument);
        Assert.Equal(Cpu.Label, e.Expected);
        Assert.Equal(other.Label, e.Actual);
        Assert.Contains("wrong device", e.Message);
        Assert.Equal(new float[3], a.ToArray());
    }

    [Fact]
    public void UseAfterDispose()
    {
        var a = Tensor.Zeros(Cpu, 3);
        using var b = Tensor.Zeros(Cpu, 3);
        a.Dispose();
        var e = Assert.Throws<TensorDisposedException>(() => Ops.Mul(a, b));
        Assert.Equal("mul", e.Op);
        Assert.Contains("argument 'a'", e.Message);
    }

    [Fact]
    public void OutOfMemory()
    {
        using var d = Device.Open("cpu");
        d.Pool.LimitBytes = 4096;
        using var a = Tensor.Zeros(d, 600); // 2400 B, held in the 4 KiB class: the limit is reached
        var e = Assert.Throws<DeviceOutOfMemoryException>(() => Ops.Add(a, a));
        Assert.Equal(2400, e.RequestedBytes);
        Assert.Contains("out of memory on cpu", e.Message);
    }

    [Fact]
    public void UnsupportedDevice()
    {
        var e = Assert.Throws<UnsupportedDeviceException>(() => Device.Open("tpu"));
        Assert.Equal("tpu", e.Requested);
        Assert.NotEmpty(e.Available);
    }

    [Fact]
    public void AllAreGpuNetExceptions()
    {
        foreach (var t in new[] { typeof(ShapeMismatchException), typeof(DeviceMismatchException), typeof(DTypeMismatchException), typeof(TensorDisposedException), typeof(DeviceOutOfMemoryException), typeof(UnsupportedDeviceException) })
            Assert.True(typeof(GpuNetException).IsAssignableFrom(t), t.Name);
    }
}

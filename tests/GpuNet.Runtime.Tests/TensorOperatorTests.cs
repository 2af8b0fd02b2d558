using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>C# operators on tensors (<see cref="TensorOperators"/>) and <see cref="Tensor.Item"/>: the ops' values with
/// broadcasting on every device, gradients through them, and the ops' errors.</summary>
public sealed class TensorOperatorTests
{
    public static IEnumerable<object[]> Devices => new[] { "cpu", "cpu-sim" }.Concat(TestDevices.GpuIds).Select(d => new object[] { d });

    [Theory]
    [MemberData(nameof(Devices))]
    public void OperatorsComputeTheirOpsWithBroadcasting(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var a = Tensor.FromArray(device, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var b = Tensor.FromArray(device, new float[] { 10, 20, 40 }, 3);
        Assert.Equal(new float[] { 11, 22, 43, 14, 25, 46 }, (a + b).ToArray());
        Assert.Equal(new float[] { -9, -18, -37, -6, -15, -34 }, (a - b).ToArray());
        Assert.Equal(new float[] { 10, 40, 120, 40, 100, 240 }, (a * b).ToArray());
        Assert.Equal(new float[] { 0.1f, 0.1f, 0.075f, 0.4f, 0.25f, 0.15f }, (a / b).ToArray());
        Assert.Equal(new float[] { -1, -2, -3, -4, -5, -6 }, (-a).ToArray());
        Assert.Equal(new float[] { 2, 4, 6, 8, 10, 12 }, (a * 2f).ToArray());
        Assert.Equal(new float[] { 2, 4, 6, 8, 10, 12 }, (2f * a).ToArray());
        Assert.Equal(new float[] { 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f }, (a + 0.5f).ToArray());
        Assert.Equal(new float[] { 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f }, (0.5f + a).ToArray());
        Assert.Equal(new float[] { 0, 1, 2, 3, 4, 5 }, (a - 1f).ToArray());
        Assert.Equal(new float[] { 9, 8, 7, 6, 5, 4 }, (10f - a).ToArray());
        Assert.Equal(new float[] { 60, 30, 20, 15, 12, 10 }, (60f / a).ToArray());
        // a / s divides (as PyTorch does): x / 3 is not x · (1/3) in float32 for every x.
        var thirds = (a / 3f).ToArray();
        Assert.Equal(Enumerable.Range(1, 6).Select(v => v / 3f).ToArray(), thirds);
        Assert.Equal(new float[] { 31, 62, 123, 34, 65, 126 }, (a + b * 2f + a * 0f + b).ToArray());
    }

    [Fact]
    public void GradientsFlowThroughOperators()
    {
        var device = TestDevices.Cpu;
        using var scope = device.Scope();
        var x = Tensor.FromArray(device, new float[] { 1, 2, 3 }, 3);
        x.RequiresGrad = true;
        // y = Σ (3 − x·x/2 + 2x)  →  dy/dx = −x + 2
        var y = Ops.SumAll(3f - x * x / 2f + 2f * x);
        y.Backward();
        Assert.Equal(new float[] { 1, 0, -1 }, x.Grad!.ToArray());
        Assert.Equal(3 * 3 - (1 + 4 + 9) / 2f + 2 * 6, y.Item());
    }

    [Fact]
    public void ItemReadsOneElementOfAnyShapeAndRefusesOthers()
    {
        var device = TestDevices.Cpu;
        using var one = Tensor.FromArray(device, new float[] { 4.5f }, 1, 1, 1);
        Assert.Equal(4.5f, one.Item());
        using var two = Tensor.FromArray(device, new float[] { 1, 2 }, 2);
        var e = Assert.Throws<ShapeMismatchException>(() => two.Item());
        Assert.Equal("item", e.Op);
        Assert.Contains("exactly one element", e.Message);
        using var none = Tensor.Zeros(device, 0);
        Assert.Throws<ShapeMismatchException>(() => none.Item());
    }

    [Fact]
    public void OperatorsRaiseTheirOpsErrors()
    {
        var device = TestDevices.Cpu;
        using var a = Tensor.Zeros(device, 2, 3);
        using var b = Tensor.Zeros(device, 4);
        Assert.Equal("add", Assert.Throws<ShapeMismatchException>(() => a + b).Op);
        var disposed = Tensor.Zeros(device, 3);
        disposed.Dispose();
        Assert.Equal("add", Assert.Throws<TensorDisposedException>(() => disposed + 1f).Op);
        Assert.Equal("div", Assert.Throws<TensorDisposedException>(() => 1f / disposed).Op);
        Assert.Throws<MissingArgumentException>(() => (Tensor)null! * 2f);
        using var sim = Tensor.Zeros(TestDevices.Simulator, 2, 3);
        Assert.Throws<DeviceMismatchException>(() => a + sim);
    }
}

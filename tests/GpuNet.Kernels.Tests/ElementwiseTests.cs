using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>fill, copy_strided, add/sub/mul/div, axpy: the registry cases plus behaviour the cases do not cover.</summary>
public sealed class ElementwiseTests(ITestOutputHelper output) : KernelFamilyTests<ElementwiseFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void WrongOutputShapeIsRejectedAndOutputKept()
    {
        using var a = Tensor.FromArray(Cpu, new float[] { 1, 2, 3 });
        using var o = Tensor.FromArray(Cpu, new float[] { 7, 7 });
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Mul(a, a, o));
        Assert.Equal("output", e.Argument);
        Assert.Equal(new float[] { 7, 7 }, o.ToArray());
    }

    [Fact]
    public void DivisionFollowsIeee()
    {
        using var a = Tensor.FromArray(Cpu, new float[] { 1, -1, 0 });
        using var b = Tensor.FromArray(Cpu, new float[] { 0, 0, 0 });
        using var o = Ops.Div(a, b);
        var r = o.ToArray();
        Assert.Equal(float.PositiveInfinity, r[0]);
        Assert.Equal(float.NegativeInfinity, r[1]);
        Assert.True(float.IsNaN(r[2]));
    }

    [Fact]
    public void ContiguousOfContiguousSharesMemory()
    {
        using var a = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, 4 }, 2, 2);
        using var c = a.Contiguous();
        a.CopyFrom(new float[] { 5, 6, 7, 8 });
        Assert.Equal(new float[] { 5, 6, 7, 8 }, c.ToArray());
    }

    [Fact]
    public void ContiguousOfTransposeCopies()
    {
        using var a = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var t = a.Transpose(0, 1);
        using var c = t.Contiguous();
        Assert.True(c.IsContiguous);
        Assert.Equal(new[] { 3, 2 }, c.ShapeArray());
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, c.ToArray());
    }

    [Fact]
    public void FullMakesConstantTensor()
    {
        using var t = Ops.Full(Cpu, 2.5f, 3, 5);
        Assert.All(t.ToArray(), v => Assert.Equal(2.5f, v));
    }
}

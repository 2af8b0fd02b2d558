
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>sum_last_axis and the general reduction path.</summary>
public sealed class ReduceTests(ITestOutputHelper output) : KernelFamilyTests<ReduceFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void SumOverMiddleAxisUsesColumnKernel()
    {
        var data = Enumerable.Range(0, 2 * 3 * 4).Select(i => (float)i).ToArray();
        using var x = Tensor.FromArray(Cpu, data, 2, 3, 4);
        using var s = Ops.Sum(x, 1);
        Assert.Equal(new[] { 2, 4 }, s.ShapeArray());
        var expected = new float[8];
        for (int p = 0; p < 2; p++)
            for (int r = 0; r < 3; r++)
                for (int j = 0; j < 4; j++)
                    expected[p * 4 + j] += data[(p * 3 + r) * 4 + j];
        Assert.Equal(expected, s.ToArray());
    }

    [Fact]
    public void KeepDimKeepsAxisOfSizeOne()
    {
        using var x = Tensor.Zeros(Cpu, 3, 5);
        using var s = Ops.Sum(x, -1, keepDim: true);
        Assert.Equal(new[] { 3, 1 }, s.ShapeArray());
    }

    [Fact]
    public void EmptyReductionGivesIdentity()
    {
        using var x = Tensor.Empty(Cpu, 4, 0);
        using var s = Ops.SumLastAxis(x);
        Assert.Equal(new float[4], s.ToArray());
    }

    [Fact]
    public void ScalarInputIsRejected()
    {
        using var x = Tensor.Zeros(Cpu);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.SumLastAxis(x));
        Assert.Equal("sum_last_axis", e.Op);
    }
}

using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>conv2d (im2col and implicit GEMM), conv1d, conv_transpose2d, im2col, col2im.</summary>
public sealed class ConvTests(ITestOutputHelper output) : KernelFamilyTests<ConvFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    private static ShapeMismatchException Fails(int[] xs, int[] ws, Conv2dOptions o)
    {
        using var x = Tensor.Zeros(Cpu, xs);
        using var w = Tensor.Zeros(Cpu, ws);
        return Assert.Throws<ShapeMismatchException>(() => Ops.Conv2d(x, w, null, o));
    }

    [Fact]
    public void OutputSizeBelowOneNamesTheKernel()
    {
        var e = Fails(new[] { 1, 3, 4, 4 }, new[] { 2, 3, 5, 5 }, Conv2dOptions.Of());
        Assert.Equal("conv2d", e.Op);
        Assert.Equal("kernel_size", e.Argument);
    }

    [Fact]
    public void ChannelsNotDivisibleByGroupsNamesGroups()
    {
        var e = Fails(new[] { 1, 6, 8, 8 }, new[] { 4, 2, 3, 3 }, Conv2dOptions.Of(groups: 4));
        Assert.Equal("groups", e.Argument);
        Assert.Contains("C_in = 6", e.Expected);
    }

    [Fact]
    public void MismatchedWeightNamesWeight()
    {
        var e = Fails(new[] { 1, 6, 8, 8 }, new[] { 4, 5, 3, 3 }, Conv2dOptions.Of(groups: 2));
        Assert.Equal("weight", e.Argument);
        Assert.Contains("[4, 3, KH", e.Expected);
    }

    [Fact]
    public void BadStrideAndPaddingAreNamed()
    {
        Assert.Equal("stride", Fails(new[] { 1, 1, 8, 8 }, new[] { 1, 1, 3, 3 }, Conv2dOptions.Of(stride: 0)).Argument);
        Assert.Equal("padding", Fails(new[] { 1, 1, 8, 8 }, new[] { 1, 1, 3, 3 }, Conv2dOptions.Of(padding: -1)).Argument);
        Assert.Equal("dilation", Fails(new[] { 1, 1, 8, 8 }, new[] { 1, 1, 3, 3 }, Conv2dOptions.Of(dilation: 0)).Argument);
    }

    [Fact]
    public void TransposedConvRejectsOutputPaddingTooLarge()
    {
        using var x = Tensor.Zeros(Cpu, 1, 2, 4, 4);
        using var w = Tensor.Zeros(Cpu, 2, 3, 3, 3);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.ConvTranspose2d(x, w, stride: 2, outputPadding: 2));
        Assert.Equal("output_padding", e.Argument);
    }

    [Fact]
    public void AutoPicksImplicitGemmOverBudgetAndIm2ColUnder()
    {
        foreach (var (budget, expectIm2Col) in new[] { (16L, false), (1L << 30, true) })
        {
            using var d = Device.Open("cpu-sim");
            using var x = Tensor.Zeros(d, 1, 2, 6, 6);
            using var w = Tensor.Zeros(d, 3, 2, 3, 3);
            using var y = Ops.Conv2d(x, w, null, Conv2dOptions.Of(padding: 1) with { ColumnBudgetBytes = budget });
            Assert.Equal(expectIm2Col, d.Profiler.CompileTimes.Keys.Any(k => k.StartsWith("ConvKernels.Im2Col")));
        }
    }
}

public sealed class ConvFamily : IKernelFamily { public static string Name => "conv"; }

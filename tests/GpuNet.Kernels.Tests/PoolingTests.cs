using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>maxpool2d, avgpool2d, adaptive pools, global_avgpool, upsample_nearest2d, upsample_bilinear2d.</summary>
public sealed class PoolingTests(ITestOutputHelper output) : KernelFamilyTests<PoolingFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void PaddingOverHalfTheKernelNamesPadding()
    {
        using var x = Tensor.Zeros(Cpu, 1, 1, 8, 8);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.MaxPool2d(x, (3, 3), padding: (2, 2)));
        Assert.Equal("maxpool2d", e.Op);
        Assert.Equal("padding", e.Argument);
    }

    [Fact]
    public void KernelLargerThanInputNamesKernelSize()
    {
        using var x = Tensor.Zeros(Cpu, 1, 1, 2, 2);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.AvgPool2d(x, (3, 3)));
        Assert.Equal("kernel_size", e.Argument);
    }

    [Fact]
    public void MaxPoolIndicesPointAtTheMaximum()
    {
        using var x = Tensor.FromArray(Cpu, new float[] { 1, 9, 3, 4, 5, 6, 7, 8, 2, 0, 11, 10, 13, 12, 15, 14 }, 1, 1, 4, 4);
        using var r = Ops.MaxPool2d(x, (2, 2));
        Assert.Equal(new float[] { 9, 8, 13, 15 }, r.Output.ToArray());
        Assert.Equal(new float[] { 1, 7, 12, 14 }, r.Indices.ToArray());
    }

    [Fact]
    public void UpsampleRejectsEmptySize()
    {
        using var x = Tensor.Zeros(Cpu, 1, 1, 2, 2);
        Assert.Equal("size", Assert.Throws<ShapeMismatchException>(() => Ops.UpsampleNearest2d(x, (0, 4))).Argument);
    }
}

public sealed class PoolingFamily : IKernelFamily { public static string Name => "pooling"; }

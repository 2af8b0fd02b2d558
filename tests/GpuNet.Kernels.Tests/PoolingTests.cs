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

    /// <summary>
    /// The values-only max pool (separable on the fast CPU) equals the indexed one bit for bit, NaN included — a NaN anywhere in
    /// a window is that window's output — on the interior vectors and the edge columns, at strides 1, 2 and 3; while recording
    /// it still has a backward (through the indexed kernel's indices).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ValuesOnlyMaxPoolEqualsTheIndexedOneWithNaNs(int stride)
    {
        foreach (var device in new[] { Cpu, TestDevices.Simulator })
        {
            var values = new float[2 * 3 * 13 * 37];
            Philox.FillUniform(values, (ulong)stride, -1f, 1f);
            foreach (int at in new[] { 0, 5, 40, 100, 480, 1000, 2000, 2885 })
                values[at] = float.NaN;
            using var x = Tensor.FromArray(device, values, 2, 3, 13, 37);
            using var indexed = Ops.MaxPool2d(x, (3, 3), (stride, stride), (1, 1));
            using var plain = Ops.MaxPool2dValues(x, (3, 3), (stride, stride), (1, 1));
            var want = indexed.Output.ToArray();
            Assert.Contains(want, float.IsNaN);
            Assert.Equal(want, plain.ToArray());
        }
        using var leaf = Tensor.FromArray(Cpu, new float[] { 1, 9, 3, 4, 5, 6, 7, 8, 2, 0, 11, 10, 13, 12, 15, 14 }, 1, 1, 4, 4);
        leaf.RequiresGrad = true;
        using (var y = Ops.MaxPool2dValues(leaf, (2, 2)))
        using (var sum = Ops.Sum(y.Reshape(-1), 0))
            sum.Backward();
        Assert.Equal(new float[] { 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0 }, leaf.Grad!.ToArray());
    }

    [Fact]
    public void UpsampleRejectsEmptySize()
    {
        using var x = Tensor.Zeros(Cpu, 1, 1, 2, 2);
        Assert.Equal("size", Assert.Throws<ShapeMismatchException>(() => Ops.UpsampleNearest2d(x, (0, 4))).Argument);
    }
}

public sealed class PoolingFamily : IKernelFamily { public static string Name => "pooling"; }

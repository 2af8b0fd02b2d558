using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>transpose, permute, concat, split.</summary>
public sealed class LayoutTests(ITestOutputHelper output) : KernelFamilyTests<LayoutFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Theory]
    [InlineData(new[] { 37, 29 }, new[] { 1, 0 }, true)]
    [InlineData(new[] { 2, 3, 5, 7 }, new[] { 0, 2, 3, 1 }, true)]
    [InlineData(new[] { 4, 6, 9 }, new[] { 0, 2, 1 }, true)]
    [InlineData(new[] { 2, 3, 4, 5 }, new[] { 2, 0, 1, 3 }, false)]
    public void InnerTransposesTakeTheTiledKernel(int[] shape, int[] order, bool tiled)
    {
        using var d = Device.Open("cpu-sim");
        using var x = Tensor.Zeros(d, shape);
        using var y = Ops.Permute(x, order);
        bool usedTiled = d.Profiler.CompileTimes.Keys.Any(k => k.StartsWith("LayoutKernels.Transpose"));
        Assert.Equal(tiled, usedTiled);
    }

    [Fact]
    public void ConcatRejectsMismatchedDimensions()
    {
        using var a = Tensor.Zeros(Cpu, 2, 3);
        using var b = Tensor.Zeros(Cpu, 4, 4);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Concat(new[] { a, b }, 0));
        Assert.Equal("tensors[1]", e.Argument);
    }

    [Fact]
    public void SplitSizesMustCoverTheAxis()
    {
        using var a = Tensor.Zeros(Cpu, 2, 6);
        Assert.Throws<ShapeMismatchException>(() => Ops.Split(a, new[] { 2, 3 }, 1));
        Assert.Throws<ShapeMismatchException>(() => Ops.Split(a, 4, 1));
        var parts = Ops.Split(a, 3, 1);
        Assert.All(parts, p => Assert.Equal(new[] { 2, 2 }, p.ShapeArray()));
        foreach (var p in parts)
            p.Dispose();
    }
}

public sealed class LayoutFamily : IKernelFamily { public static string Name => "layout"; }

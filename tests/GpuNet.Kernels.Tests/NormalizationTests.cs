using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>layernorm, rmsnorm.</summary>
public sealed class NormalizationTests(ITestOutputHelper output) : KernelFamilyTests<NormalizationFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void GammaMustMatchLastAxis()
    {
        using var x = Tensor.Zeros(Cpu, 3, 4);
        using var g = Tensor.Zeros(Cpu, 5);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.LayerNorm(x, g));
        Assert.Equal("gamma", e.Argument);
        Assert.Contains("[4]", e.Expected);
    }

    [Fact]
    public void StatisticsHaveTheRowShape()
    {
        using var x = Tensor.RandomNormal(Cpu, new[] { 2, 3, 8 }, 1);
        using var r = Ops.LayerNorm(x);
        Assert.Equal(new[] { 2, 3 }, r.Mean.ShapeArray());
        Assert.Equal(new[] { 2, 3 }, r.Rstd.ShapeArray());
        Assert.Equal(new[] { 2, 3, 8 }, r.Output.ShapeArray());
    }

    [Fact]
    public void ConstantRowNormalizesToBeta()
    {
        using var x = Ops.Full(Cpu, 7f, 2, 16);
        using var beta = Ops.Full(Cpu, 0.25f, 16);
        using var r = Ops.LayerNorm(x, null, beta);
        Assert.All(r.Output.ToArray(), v => Assert.Equal(0.25f, v));
    }
}

public sealed class NormalizationFamily : IKernelFamily { public static string Name => "normalization"; }

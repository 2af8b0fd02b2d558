using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>matmul, batched_matmul, matmul_bias_act, gemv.</summary>
public sealed class MatMulTests(ITestOutputHelper output) : KernelFamilyTests<MatMulFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void InnerDimensionMismatchNamesBothShapes()
    {
        using var a = Tensor.Zeros(Cpu, 3, 4);
        using var b = Tensor.Zeros(Cpu, 5, 6);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.MatMul(a, b));
        Assert.Equal("matmul", e.Op);
        Assert.Contains("K = 4", e.Message);
        Assert.Contains("[5, 6]", e.Message);
    }

    [Fact]
    public void VectorsAreRejected()
    {
        using var a = Tensor.Zeros(Cpu, 4);
        using var b = Tensor.Zeros(Cpu, 4, 2);
        Assert.Throws<ShapeMismatchException>(() => Ops.MatMul(a, b));
    }

    [Fact]
    public void BiasMustMatchN()
    {
        using var a = Tensor.Zeros(Cpu, 3, 4);
        using var b = Tensor.Zeros(Cpu, 4, 6);
        using var bias = Tensor.Zeros(Cpu, 5);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.MatMul(a, b, bias: bias));
        Assert.Equal("bias", e.Argument);
    }

    [Fact]
    public void BatchesThatDoNotBroadcastAreRejected()
    {
        using var a = Tensor.Zeros(Cpu, 2, 3, 4);
        using var b = Tensor.Zeros(Cpu, 3, 4, 5);
        Assert.Throws<ShapeMismatchException>(() => Ops.MatMul(a, b));
    }

    [Fact]
    public void ZeroDepthGivesBiasOnly()
    {
        using var a = Tensor.Zeros(Cpu, 3, 0);
        using var b = Tensor.Zeros(Cpu, 0, 2);
        using var bias = Tensor.FromArray(Cpu, new float[] { 1, -2 });
        using var c = Ops.MatMul(a, b, bias: bias, activation: FusedActivation.Relu);
        Assert.Equal(new float[] { 1, 0, 1, 0, 1, 0 }, c.ToArray());
    }

    [Fact]
    public void LinearMatchesHandComputation()
    {
        using var x = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var w = Tensor.FromArray(Cpu, new float[] { 1, 0, -1, 2, 2, 2 }, 2, 3);
        using var bias = Tensor.FromArray(Cpu, new float[] { 0.5f, -20f });
        using var y = Ops.Linear(x, w, bias, FusedActivation.Relu);
        Assert.Equal(new float[] { -1.5f, 0, -1.5f, 10 }.Select(v => Math.Max(v, 0)).ToArray(), y.ToArray());
    }

    [Fact]
    public void GemvAcceptsVectors()
    {
        using var x = Tensor.FromArray(Cpu, new float[] { 1, 2 });
        using var w = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var y = Ops.Gemv(x, w);
        Assert.Equal(new float[] { 9, 12, 15 }, y.ToArray());
    }

    /// <summary>One row times a weight matrix [N, K] (a classifier at batch 1) gives the same bits on one thread as on two:
    /// 1,000 outputs split in eight chunks start chunks at 125, 375, …, and outputs there were summed by single dot products
    /// on two threads but inside a four-row group on one.</summary>
    [Theory]
    [InlineData(1000, 1280)]
    [InlineData(1000, 512)]
    [InlineData(77, 300)]
    public void ARowTimesWeightsIsTheSameOnOneThreadAsOnTwo(int n, int k)
    {
        var rng = new Random(n + k);
        using var x = Tensor.FromArray(Cpu, Enumerable.Range(0, k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), 1, k);
        using var w = Tensor.FromArray(Cpu, Enumerable.Range(0, n * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), n, k);
        Assert.True(Device.CpuThreads >= 2, "the test hosts run two CPU threads");
        using var two = Ops.MatMul(x, w, false, true);
        float[] one;
        using (Device.LimitCpuThreads(1))
        {
            Assert.Equal(1, Device.CpuThreads);
            using var y = Ops.MatMul(x, w, false, true);
            one = y.ToArray();
        }
        Assert.Equal(one, two.ToArray());
    }
}

public sealed class MatMulFamily : IKernelFamily { public static string Name => "matmul"; }

using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>softmax, log_softmax, softmax_causal.</summary>
public sealed class SoftmaxTests(ITestOutputHelper output) : KernelFamilyTests<SoftmaxFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void FullyMaskedRowIsZerosNotNaN()
    {
        using var x = Tensor.FromArray(Cpu, new[] { float.NegativeInfinity, float.NegativeInfinity, 1f, 2f }, 2, 2);
        using var y = Ops.Softmax(x);
        var r = y.ToArray();
        Assert.Equal(0f, r[0]);
        Assert.Equal(0f, r[1]);
        Assert.Equal(1f, r[2] + r[3], 6);
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cpu-sim")]
    public void NaNInARowMakesThatRowNaNAndLeavesOthers(string device)
    {
        var d = TestDevices.Get(device);
        using var x = Tensor.FromArray(d, new[] { 1f, float.NaN, 3f, 1f, 2f, 3f }, 2, 3);
        using var y = Ops.Softmax(x);
        var r = y.ToArray();
        Assert.All(r[..3], v => Assert.True(float.IsNaN(v)));
        Assert.All(r[3..], v => Assert.True(float.IsFinite(v)));
        Assert.Equal(1f, r[3] + r[4] + r[5], 6);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(9)]
    [InlineData(17)]
    [InlineData(32)]
    [InlineData(36)]
    public void NaNAnywhereInAWideRowMakesThatRowNaN(int at)
    {
        // 37 columns: the vector max covers 0..31 in two 8-lane accumulators, 32..36 is the scalar tail.
        var data = new float[2 * 37];
        for (int i = 0; i < data.Length; i++)
            data[i] = MathF.Sin(i) * 4;
        data[37 + at] = float.NaN;
        foreach (var device in new[] { "cpu", "cpu-sim" })
        {
            using var x = Tensor.FromArray(TestDevices.Get(device), data, 2, 37);
            using var y = Ops.Softmax(x);
            var r = y.ToArray();
            Assert.All(r[..37], v => Assert.True(float.IsFinite(v)));
            Assert.All(r[37..], v => Assert.True(float.IsNaN(v)));
        }
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cpu-sim")]
    public void RowsOfOnlyNaNOrNaNAndMinusInfinityAreNaNInBothSoftmaxes(string device)
    {
        // The fast CPU's row max passes over NaNs (the exp's sum catches them): a row with no number in it must still be NaN,
        // not the all-masked row's zeros.
        var d = TestDevices.Get(device);
        var data = new float[3 * 19];
        Array.Fill(data, float.NaN, 0, 19);
        Array.Fill(data, float.NegativeInfinity, 19, 19);
        data[19 + 18] = float.NaN;
        Array.Fill(data, float.NegativeInfinity, 38, 19);
        using var x = Tensor.FromArray(d, data, 3, 19);
        foreach (var log in new[] { false, true })
        {
            using var y = log ? Ops.LogSoftmax(x) : Ops.Softmax(x);
            var r = y.ToArray();
            Assert.All(r[..38], v => Assert.True(float.IsNaN(v)));
            Assert.All(r[38..], v => Assert.Equal(log ? float.NegativeInfinity : 0f, v));
        }
    }

    [Fact]
    public void RowsSumToOne()
    {
        using var x = Tensor.RandomUniform(Cpu, new[] { 5, 333 }, 3, -50, 50);
        using var y = Ops.Softmax(x);
        using var s = Ops.SumLastAxis(y);
        Assert.All(s.ToArray(), v => Assert.Equal(1f, v, 5));
    }

    [Fact]
    public void CausalNeedsAMatrix()
    {
        using var x = Tensor.Zeros(Cpu, 5);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.SoftmaxCausal(x));
        Assert.Equal("softmax_causal", e.Op);
    }
}

public sealed class SoftmaxFamily : IKernelFamily { public static string Name => "softmax"; }

using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>unary_math and binary_math: every function of <see cref="UnaryFunction"/> and <see cref="BinaryFunction"/> against its double reference.</summary>
public sealed class MathTests(ITestOutputHelper output) : KernelFamilyTests<MathFamily>(output)
{
    [Fact]
    public void EveryFunctionHasCheckCases()
    {
        var names = Checks.KernelRegistry.All.Where(c => c.Family == "math").Select(c => c.Name).ToList();
        foreach (var f in Enum.GetValues<UnaryFunction>())
            Assert.Contains(names, n => n.StartsWith(f.ToString().ToLowerInvariant() + "_", StringComparison.Ordinal));
        foreach (var f in Enum.GetValues<BinaryFunction>())
            Assert.Contains(names, n => n.StartsWith(f.ToString().ToLowerInvariant() + "_", StringComparison.Ordinal));
    }

    /// <summary>The recurrence's 8-lane tanh against double: the series below |x| = 0.25 and the exp form above it, the
    /// switch-over, the far tails, ±0 (sign kept), ±∞ and NaN.</summary>
    [Fact]
    public unsafe void VectorTanhMatchesDoubleToAFewUlps()
    {
        if (!Cpu.HostMath.Vectorized)
            return;
        var xs = new List<float> { 0f, -0f, 1e-30f, -1e-7f, 0.2499999f, 0.25f, -0.25000003f, 9f, -9f, 20f, 100f, float.MaxValue,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN };
        for (int i = -4000; i <= 4000; i++)
            xs.Add(i * 0.0025f * (1 + MathF.Abs(i) / 500f));
        while (xs.Count % 8 != 0)
            xs.Add(0.5f);
        double worst = 0;
        var lanes = stackalloc float[8];
        for (int i = 0; i < xs.Count; i += 8)
        {
            for (int j = 0; j < 8; j++)
                lanes[j] = xs[i + j];
            System.Runtime.Intrinsics.Vector256.Store(Cpu.HostMath.Tanh(System.Runtime.Intrinsics.Vector256.Load(lanes)), lanes);
            for (int j = 0; j < 8; j++)
            {
                float x = xs[i + j], y = lanes[j];
                if (float.IsNaN(x))
                {
                    Assert.True(float.IsNaN(y));
                    continue;
                }
                double expected = Math.Tanh(x);
                if (expected == 0)
                {
                    Assert.Equal(BitConverter.SingleToInt32Bits(x), BitConverter.SingleToInt32Bits(y));
                    continue;
                }
                worst = Math.Max(worst, Math.Abs(y - expected) / Math.Abs(expected));
            }
        }
        Assert.True(worst < 4e-7, $"worst relative error {worst:g3}");
    }

    [Fact]
    public void AskingForAGradientOfALogicalFunctionNamesTheOp()
    {
        // The differentiable functions record their backward (unary_math_backward); the logical ones and the
        // comparisons have no gradient, and backward through them says which.
        var cpu = GpuNet.Tests.TestDevices.Cpu;
        using var x = Tensor.FromArray(cpu, new[] { 1f, 2f });
        x.RequiresGrad = true;
        using var y = Ops.Unary(x, UnaryFunction.IsNaN);
        var e = Assert.Throws<NoGradientException>(() => y.Backward(y));
        Assert.Contains("unary_math (isnan)", e.Message);
        using var z = Ops.Binary(x, x, BinaryFunction.Less);
        e = Assert.Throws<NoGradientException>(() => z.Backward(z));
        Assert.Contains("binary_math (less)", e.Message);
        using var erf = Ops.Unary(x, UnaryFunction.Erf);
        using var g = Tensor.FromArray(cpu, new[] { 1f, 1f });
        erf.Backward(g);
        Assert.NotNull(x.Grad);
    }
}

public sealed class MathFamily : IKernelFamily { public static string Name => "math"; }

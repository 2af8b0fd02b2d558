using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>relu, leaky_relu, gelu_erf, gelu_tanh, silu, sigmoid, tanh, softplus, elu.</summary>
public sealed class ActivationTests(ITestOutputHelper output) : KernelFamilyTests<ActivationFamily>(output)
{
    [Fact]
    public void ExtremesStayFinite()
    {
        var cpu = GpuNet.Tests.TestDevices.Cpu;
        using var x = Tensor.FromArray(cpu, new[] { -1e30f, -88f, -20f, 0f, 20f, 88f, 1e30f });
        foreach (var f in new Func<Tensor, Tensor>[] { t => Ops.Tanh(t), t => Ops.Sigmoid(t), t => Ops.Silu(t), t => Ops.GeluErf(t), t => Ops.GeluTanh(t), t => Ops.Softplus(t), t => Ops.Elu(t) })
        {
            using var y = f(x);
            Assert.All(y.ToArray(), v => Assert.True(float.IsFinite(v), $"{v} is not finite"));   // neither NaN nor ±∞
        }
    }
}

/// <summary>exp and sigmoid at the edges of float's range, where the fast CPU device's vector exp replaces compares and blends
/// by clamps and exponent arithmetic: overflow exactly where float overflows, NaN kept, −inf to exact 0.</summary>
public sealed class ExpEdgeTests
{
    // 24 inputs, so the vector path (8 lanes) covers them all; the pairs straddle the clamps and the flush-to-zero bound.
    private static readonly float[] Edges =
    {
        float.NaN, float.NegativeInfinity, float.PositiveInfinity, -1e30f, 1e30f, -100f, 100f, -88.8f,
        -88.5f, -87.6f, -87.2f, -86.9f, -20f, -1e-3f, 0f, 1e-3f,
        20f, 60f, 86.9f, 88.3f, 88.5f, 88.72f, 88.73f, 89f,
    };

    /// <summary>exp overflows exactly where float does and flushes only below 1.7e-38; sigmoid is right in both tails (its
    /// true value below −88.72 is a subnormal under 2.9e-39, which may come out 0).</summary>
    [Theory]
    [InlineData("cpu", "exp")]
    [InlineData("cpu-sim", "exp")]
    [InlineData("cpu", "sigmoid")]
    [InlineData("cpu-sim", "sigmoid")]
    public void MatchesDoubleAtTheEdgesOfFloatsRange(string device, string function)
    {
        bool exp = function == "exp";
        using var x = Tensor.FromArray(GpuNet.Tests.TestDevices.Get(device), Edges);
        using var y = exp ? Ops.Exp(x) : Ops.Sigmoid(x);
        var got = y.ToArray();
        for (int i = 0; i < Edges.Length; i++)
            AssertClose(exp ? Math.Exp(Edges[i]) : 1 / (1 + Math.Exp(-(double)Edges[i])), got[i], flushBelow: exp ? 1.7e-38 : 3e-39, $"{function}({Edges[i]})");
    }

    /// <summary>NaN for NaN, +inf beyond float's range, 0 allowed (not required) below <paramref name="flushBelow"/>, else a
    /// relative error within the fast exp's measured bound (4.4e-7, sigmoid's tails).</summary>
    private static void AssertClose(double expected, float got, double flushBelow, string what)
    {
        if (double.IsNaN(expected))
            Assert.True(float.IsNaN(got), $"{what}: expected NaN, got {got}");
        else if (expected > float.MaxValue)
            Assert.True(float.IsPositiveInfinity(got), $"{what}: expected +inf, got {got}");
        else if (expected < flushBelow)
            Assert.True(got >= 0 && got <= flushBelow, $"{what}: expected {expected:E3} or 0, got {got:E3}");
        else
            Assert.True(Math.Abs(got - expected) <= 5e-7 * expected, $"{what}: expected {expected:E8}, got {got:E8} (rel {Math.Abs(got - expected) / expected:E2})");
    }
}

public sealed class ActivationFamily : IKernelFamily { public static string Name => "activation"; }

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
            Assert.All(y.ToArray(), v => Assert.False(float.IsNaN(v)));
        }
    }
}

public sealed class ActivationFamily : IKernelFamily { public static string Name => "activation"; }

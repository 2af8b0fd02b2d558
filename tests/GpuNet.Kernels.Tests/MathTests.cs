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

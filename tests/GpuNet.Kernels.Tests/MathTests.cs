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
    public void AskingForAGradientNamesTheOp()
    {
        var cpu = GpuNet.Tests.TestDevices.Cpu;
        using var x = Tensor.FromArray(cpu, new[] { 1f, 2f });
        x.RequiresGrad = true;
        using var y = Ops.Unary(x, UnaryFunction.Erf);
        var e = Assert.Throws<NoGradientException>(() => y.Backward(y));
        Assert.Contains("unary_math", e.Message);
    }
}

public sealed class MathFamily : IKernelFamily { public static string Name => "math"; }

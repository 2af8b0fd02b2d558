using GpuNet.Kernels.Checks;
using GpuNet.Tests;
using Xunit;

namespace GpuNet.Kernels.Tests;

/// <summary>The harness itself must be able to fail: NaN (an unwritten output), wrong values and exceptions all fail.</summary>
public sealed class HarnessTests
{
    /// <summary>The fast CPU device runs every registered op as host code: after the first case of every kernel (the family
    /// tests run them all), not one ILGPU kernel was compiled on it.</summary>
    [Fact]
    public void FastCpuCompilesNoKernelForAnyRegisteredOp()
    {
        using var d = Device.Open("cpu");
        var firstOfEach = KernelRegistry.All.GroupBy(c => c.Kernel).Select(g => g.First());
        var failed = firstOfEach.Select(c => CheckRunner.Run(c, d)).Where(r => r.Failed).ToList();
        Assert.Empty(failed);
        Assert.True(d.Kernels.Count == 0, "compiled on the fast CPU device: " + string.Join(", ", d.Profiler.CompileTimes.Keys));
    }

    [Fact]
    public void ExactMatchPasses()
    {
        var (maxAbs, rel, error) = CheckRunner.Compare(new float[] { 1, 2 }, new double[] { 1, 2 });
        Assert.Null(error);
        Assert.Equal(0, maxAbs);
        Assert.Equal(0, rel);
    }

    [Fact]
    public void PoisonedElementFails()
    {
        var (_, _, error) = CheckRunner.Compare(new[] { 1f, float.NaN }, new double[] { 1, 2 });
        Assert.NotNull(error);
        Assert.Contains("unwritten", error);
    }

    [Fact]
    public void RelativeL2IsMeasured()
    {
        var (maxAbs, rel, error) = CheckRunner.Compare(new float[] { 3, 4.5f }, new double[] { 3, 4 });
        Assert.Null(error);
        Assert.Equal(0.5, maxAbs, 12);
        Assert.Equal(0.1, rel, 12);
    }

    [Fact]
    public void InfinityMustMatchExactly()
    {
        Assert.Null(CheckRunner.Compare(new[] { float.NegativeInfinity }, new[] { double.NegativeInfinity }).Error);
        Assert.NotNull(CheckRunner.Compare(new[] { 0f }, new[] { double.NegativeInfinity }).Error);
    }

    [Fact]
    public void WrongKernelOutputFailsTheCase()
    {
        var wrong = new CheckCase("test", "broken", "scale", "[5]", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = CheckRunner.Random(d, seed, 0, 5);
            using var o = Ops.Add(x, x);
            return new(o.ToArray(), CheckRunner.Host(x)); // expects x, gets 2x
        });
        var r = CheckRunner.Run(wrong, TestDevices.Cpu, 1);
        Assert.False(r.Passed);
        Assert.True(r.RelL2Err > 0.5);
    }

    [Fact]
    public void ExceptionInCaseIsAFailureNotACrash()
    {
        var throwing = new CheckCase("test", "throws", "t", "[1]", CheckCase.Fp32Tolerance, (d, seed) => throw new InvalidOperationException("boom"));
        var r = CheckRunner.Run(throwing, TestDevices.Cpu, 1);
        Assert.False(r.Passed);
        Assert.Contains("boom", r.Error);
    }

    [Fact]
    public void PoisonedTensorIsAllNaN()
    {
        using var t = CheckRunner.Poisoned(TestDevices.Cpu, 3, 4);
        Assert.All(t.ToArray(), v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void CaseIdsAreUnique()
    {
        var dup = KernelRegistry.All.GroupBy(c => c.Id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(dup);
    }

    [Fact]
    public void FirstKernelsAreRegistered()
    {
        foreach (var k in new[] { "fill", "copy_strided", "add", "sub", "mul", "div", "axpy", "sum_last_axis" })
            Assert.Contains(k, KernelRegistry.Kernels);
    }

    [Fact]
    public void EveryFamilyHasATestClass()
    {
        var tested = typeof(HarnessTests).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && t.GetInterfaces().Contains(typeof(IKernelFamily)))
            .Select(t => (string)t.GetProperty("Name")!.GetValue(null)!)
            .ToHashSet();
        foreach (var family in KernelRegistry.All.Select(c => c.Family).Distinct())
            Assert.Contains(family, tested);
    }

    [Fact]
    public void UnknownKernelIsRejected()
    {
        var e = Assert.Throws<ArgumentException>(() => KernelRegistry.Select(new[] { "nope" }));
        Assert.Contains("nope", e.Message);
    }
}

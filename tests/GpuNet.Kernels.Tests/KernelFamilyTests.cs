using GpuNet.Kernels.Checks;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>Names a kernel family of the registry (one test class per family).</summary>
public interface IKernelFamily
{
    static abstract string Name { get; }
}

/// <summary>
/// Runs every registry case of one family against its CPU reference: on the fast CPU device (host code) and on the
/// simulated GPU (ILGPU's CPU accelerator running the GPU kernels) always, and on each GPU when one is present (skipped
/// otherwise). The cases are the ones <c>bench check</c> runs, so the tests and the CLI can never disagree about what is checked.
/// </summary>
public abstract class KernelFamilyTests<TFamily>(ITestOutputHelper output) where TFamily : IKernelFamily
{
    public static IEnumerable<object[]> CpuCases =>
        KernelRegistry.All.Where(c => c.Family == TFamily.Name && !c.HeavyReference).Select(c => new object[] { c.Id });

    public static IEnumerable<object[]> SimulatorCases =>
        KernelRegistry.All.Where(c => c.Family == TFamily.Name && !c.GpuOnly && !c.HeavyReference).Select(c => new object[] { c.Id });

    public static IEnumerable<object[]> GpuCases =>
        TestDevices.GpuIds.SelectMany(id => KernelRegistry.All.Where(c => c.Family == TFamily.Name).Select(c => new object[] { id, c.Id }));

    [Theory]
    [MemberData(nameof(CpuCases))]
    public void MatchesReferenceOnCpu(string caseId) => RunCase("cpu", caseId);

    [Theory]
    [MemberData(nameof(SimulatorCases))]
    public void MatchesReferenceOnSimulator(string caseId) => RunCase("cpu-sim", caseId);

    [GpuTheory]
    [MemberData(nameof(GpuCases))]
    public void MatchesReferenceOnGpu(string deviceId, string caseId) => RunCase(deviceId, caseId);

    private void RunCase(string deviceId, string caseId)
    {
        var c = KernelRegistry.All.Single(k => k.Id == caseId);
        var result = CheckRunner.Run(c, TestDevices.Get(deviceId));
        output.WriteLine($"{deviceId}: {result}");
        Assert.True(result.Passed, result.ToString());
    }
}

public sealed class ElementwiseFamily : IKernelFamily { public static string Name => "elementwise"; }

public sealed class ReduceFamily : IKernelFamily { public static string Name => "reduce"; }

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
public abstract class KernelFamilyTests<TFamily> where TFamily : IKernelFamily
{
    private readonly ITestOutputHelper output;

    protected KernelFamilyTests(ITestOutputHelper output)
    {
        this.output = output;
        SimulatorChecks.Start();
    }

    public static IEnumerable<object[]> CpuCases =>
        KernelRegistry.All.Where(c => c.Family == TFamily.Name && !c.HeavyReference).Select(c => new object[] { c.Id });

    public static IEnumerable<object[]> SimulatorCases =>
        KernelRegistry.All.Where(c => c.Family == TFamily.Name && c.RunsOnSimulator).Select(c => new object[] { c.Id });

    public static IEnumerable<object[]> GpuCases =>
        TestDevices.GpuIds.SelectMany(id => KernelRegistry.All.Where(c => c.Family == TFamily.Name).Select(c => new object[] { id, c.Id }));

    [Theory]
    [MemberData(nameof(CpuCases))]
    public void MatchesReferenceOnCpu(string caseId) => RunCase("cpu", caseId);

    [Theory]
    [MemberData(nameof(SimulatorCases))]
    public void MatchesReferenceOnSimulator(string caseId) => Report("cpu-sim", SimulatorChecks.Result(caseId));

    [GpuTheory]
    [MemberData(nameof(GpuCases))]
    public void MatchesReferenceOnGpu(string deviceId, string caseId) => RunCase(deviceId, caseId);

    private void RunCase(string deviceId, string caseId) =>
        Report(deviceId, CheckRunner.Run(KernelRegistry.All.Single(k => k.Id == caseId), TestDevices.Get(deviceId)));

    private void Report(string deviceId, CheckResult result)
    {
        output.WriteLine($"{deviceId}: {result}");
        Assert.True(result.Passed, result.ToString());
    }
}

/// <summary>
/// Every simulator case of the registry, run on the <see cref="SimulatorQueue{TResult}"/> from the moment the first family test
/// class is made: the simulated GPU is the kernel tests' bulk (≈ 90 s of a core), and its two workers run it beside the fast
/// CPU's cases instead of after them.
/// </summary>
internal static class SimulatorChecks
{
    private static readonly Lazy<SimulatorQueue<CheckResult>> _queue = new(() => new(
        KernelRegistry.All.Where(c => c.RunsOnSimulator).Select(c => c.Id),
        (device, id) => CheckRunner.Run(KernelRegistry.All.Single(k => k.Id == id), device)));

    public static void Start() => _ = _queue.Value;

    public static CheckResult Result(string caseId) => _queue.Value.Get(caseId);
}

public sealed class ElementwiseFamily : IKernelFamily { public static string Name => "elementwise"; }

public sealed class ReduceFamily : IKernelFamily { public static string Name => "reduce"; }

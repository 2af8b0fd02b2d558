using GpuNet.Kernels.Checks;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>
/// The fast CPU's GEMM picks its 512-bit micro-kernel where the CPU has full-width AVX-512 and the 256-bit one elsewhere, so
/// the family tests prove only the path of the machine they run on. This runs every matmul-shaped case (matmul, conv, the
/// backward GEMMs, attention's projections) with the 256-bit path forced as well. Both paths must be exact to the same
/// bounds, so tests that run meanwhile on the other path stay valid.
/// </summary>
public sealed class HostGemmWidthTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> GemmCases =>
        KernelRegistry.All.Where(c => c.Family is "matmul" or "conv" or "backward" && !c.HeavyReference).Select(c => new object[] { c.Id });

    [Theory]
    [MemberData(nameof(GemmCases))]
    public void NarrowPathMatchesReference(string caseId)
    {
        bool wide = Cpu.HostGemm.Wide;
        try
        {
            Cpu.HostGemm.Wide = false;
            var result = CheckRunner.Run(KernelRegistry.All.Single(k => k.Id == caseId), TestDevices.Cpu);
            output.WriteLine(result.ToString());
            Assert.True(result.Passed, result.ToString());
        }
        finally
        {
            Cpu.HostGemm.Wide = wide;
        }
    }
}

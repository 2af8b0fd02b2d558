using System.Text.RegularExpressions;
using GpuNet.Kernels.Checks;
using Xunit;

namespace GpuNet.Kernels.Tests;

/// <summary>Every kernel compiles to PTX for sm_90 offline (no GPU needed), and the PTX has the shape we designed for.</summary>
public sealed class PtxTests : IClassFixture<PtxTests.Compiler>
{
    public sealed class Compiler : IDisposable
    {
        public PtxCompiler Ptx { get; } = new("sm_90");
        public void Dispose() => Ptx.Dispose();
    }

    private readonly PtxCompiler _ptx;

    public PtxTests(Compiler c) => _ptx = c.Ptx;

    public static IEnumerable<object[]> Variants => KernelCatalog.All.Select(v => new object[] { v.Kernel, v.Variant });

    private string Ptx(string kernel, string variant) =>
        _ptx.Compile(KernelCatalog.All.Single(v => v.Kernel == kernel && v.Variant == variant).Method);

    private static int Count(string ptx, string pattern) => Regex.Matches(ptx, pattern).Count;

    [Theory]
    [MemberData(nameof(Variants))]
    public void CompilesForSm90WithoutLocalMemory(string kernel, string variant)
    {
        var ptx = Ptx(kernel, variant);
        Assert.Contains(".entry", ptx);
        Assert.DoesNotContain("ld.local", ptx);
        Assert.DoesNotContain("st.local", ptx);
    }

    [Fact]
    public void RegistryKernelsAllHaveCompiledVariants()
    {
        foreach (var k in KernelRegistry.Kernels)
            Assert.Contains(KernelCatalog.All, v => v.Kernel == k);
    }

    [Fact]
    public void FlatBinaryUsesVectorLoadsAndStores()
    {
        var ptx = Ptx("add", "flat");
        Assert.Equal(2, Count(ptx, @"ld\.global(\.nc)?\.v4\.f32"));
        Assert.Equal(1, Count(ptx, @"st\.global\.v4\.f32"));
    }

    [Fact]
    public void UnaryReadsOneOperandAndFillReadsNone()
    {
        // The unused operand of UnaryAsBinary is dead code: its loads must be gone.
        var copy = Ptx("copy_strided", "flat");
        Assert.Equal(1, Count(copy, @"ld\.global(\.nc)?\.v4\.f32"));
        var fill = Ptx("fill", "flat");
        Assert.Equal(0, Count(fill, @"ld\.global"));
        Assert.Equal(1, Count(fill, @"st\.global\.v4\.f32"));
    }

    [Fact]
    public void RowReductionUsesWarpShuffles()
    {
        var ptx = Ptx("sum_last_axis", "rows");
        Assert.Contains("shfl.sync.down", ptx);
        Assert.Contains("bar.sync", ptx);
    }

    [Fact]
    public void UnknownArchitectureIsRejected() =>
        Assert.Throws<ArgumentException>(() => PtxCompiler.ParseArchitecture("gfx90a"));
}

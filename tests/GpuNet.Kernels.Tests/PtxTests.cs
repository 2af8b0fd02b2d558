using System.Text.RegularExpressions;
using GpuNet.Kernels.Checks;
using Xunit;

namespace GpuNet.Kernels.Tests;

/// <summary>Puts the PTX test classes in one collection so they share one <see cref="PtxTests.Compiler"/>.</summary>
[CollectionDefinition(Name)]
public sealed class PtxCollection : ICollectionFixture<PtxTests.Compiler>
{
    public const string Name = "ptx";
}

/// <summary>Every kernel compiles to PTX for sm_90 offline (no GPU needed), and the PTX has the shape we designed for.</summary>
[Collection(PtxCollection.Name)]
public sealed class PtxTests
{
    /// <summary>The sm_90 compiler shared by the PTX test classes, with each variant's PTX compiled once for all of them
    /// (the matmul variants are read by both classes; compiling them twice cost seconds of the suite).</summary>
    public sealed class Compiler : IDisposable
    {
        private readonly PtxCompiler _ptx = new("sm_90");
        private readonly Dictionary<(string, string), string> _cache = new();

        public string Ptx(string kernel, string variant)
        {
            lock (_cache)
            {
                if (!_cache.TryGetValue((kernel, variant), out var ptx))
                    _cache[(kernel, variant)] = ptx = _ptx.Compile(KernelCatalog.All.Single(v => v.Kernel == kernel && v.Variant == variant).Method);
                return ptx;
            }
        }

        public void Dispose() => _ptx.Dispose();
    }

    private readonly Compiler _compiler;

    public PtxTests(Compiler c) => _compiler = c;

    public static IEnumerable<object[]> Variants => KernelCatalog.All.Select(v => new object[] { v.Kernel, v.Variant });

    private string Ptx(string kernel, string variant) => _compiler.Ptx(kernel, variant);

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

    [Theory]
    [InlineData("softmax")]
    [InlineData("layernorm")]
    [InlineData("argmax")]
    public void RowKernelsReduceWithWarpShuffles(string kernel)
    {
        var ptx = Ptx(kernel, "rows");
        Assert.Contains("shfl.sync.down", ptx);
        Assert.Contains("bar.sync", ptx);
    }

    [Fact]
    public void RowReductionUsesWarpShuffles()
    {
        var ptx = Ptx("sum_last_axis", "rows");
        Assert.Contains("shfl.sync.down", ptx);
        Assert.Contains("bar.sync", ptx);
    }

    [Fact]
    public void FusedAttentionKeepsItsTilesInRegistersAndShared()
    {
        var ptx = Ptx("attention", "fused");
        Assert.DoesNotContain(".local", ptx);
        Assert.Contains("shfl.sync.bfly", ptx);
        Assert.True(Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count >= 3, "expected float4 shared reads of K, P and V");
    }

    [Theory]
    [InlineData("gfx90a", "is not a CUDA architecture")]
    [InlineData("sm_1000", "is not an architecture ILGPU")]
    [InlineData("sm_91", "is not an architecture ILGPU")]
    public void UnknownArchitectureIsRejected(string arch, string message) =>
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => PtxCompiler.ParseArchitecture(arch)).Message);

    [Fact]
    public void ThePtxDeclaresTheIsaIlgpuEmitsForTheGpuMachinesDriver()
    {
        // ILGPU 1.5.3 with the H200 machine's CUDA 13.0 driver emits its newest ISA, 8.8, which that driver's ptxas accepts.
        using var compiler = new PtxCompiler("sm_90");
        Assert.Equal("8.8", compiler.InstructionSet);
        var ptx = Ptx("relu", KernelCatalog.All.First(v => v.Kernel == "relu").Variant);
        Assert.Matches(@"(?m)^\.version 8\.8\s*$", ptx);
        // ILGPU declares the lowest architecture its features need (sm_80), as it does on a device; ptxas or the driver's JIT
        // compiles that for sm_90.
        Assert.Matches(@"(?m)^\.target sm_80\s*$", ptx);
        Assert.Contains("sm_90 needs a CUDA 11.8 driver or newer", Assert.Throws<ArgumentException>(() => new PtxCompiler("sm_90", driverVersion: 11000)).Message);
    }
}

/// <summary>The PTX of the tiled matmul: registers only, vector global loads where its orientation allows them.</summary>
[Collection(PtxCollection.Name)]
public sealed class MatMulPtxTests(PtxTests.Compiler compiler)
{
    private string Ptx(string kernel, string variant) => compiler.Ptx(kernel, variant);

    public static IEnumerable<object[]> TiledVariants =>
        KernelCatalog.All.Where(v => v.Method.Name == nameof(MatMulKernels.Tiled)).Select(v => new object[] { v.Kernel, v.Variant });

    [Theory]
    [MemberData(nameof(TiledVariants))]
    public void TiledKernelKeepsAccumulatorsInRegisters(string kernel, string variant)
    {
        var ptx = Ptx(kernel, variant);
        Assert.DoesNotContain(".local", ptx);
        Assert.Contains("bar.sync", ptx);
        // 8×8 micro-tile: 64 multiply-adds per k. ILGPU emits them as mul.f32/add.f32 without a rounding
        // modifier, which ptxas contracts into FFMA (or as fma.rn.f32 directly).
        int madds = Regex.Matches(ptx, @"\bfma\.rn\.f32").Count + Regex.Matches(ptx, @"\bmul\.f32").Count;
        Assert.True(madds >= 64, $"expected the 64 multiply-adds of the micro-tile, found {madds}");
        // All four fragment reads of the inner loop are 16-byte shared loads.
        Assert.True(Regex.Matches(ptx, @"ld\.shared\.v4\.f32").Count >= 4, "expected float4 shared loads of the A and B fragments");
    }

    [Theory]
    [InlineData("large_a_b")]
    [InlineData("large_at_b")]
    [InlineData("large_a_bt")]
    [InlineData("small_at_bt")]
    public void TiledKernelLoadsGlobalMemoryAsFloat4(string variant)
    {
        var ptx = Ptx("matmul", variant);
        // One vector load for each operand's chunk (plus the prefetch of the next k-step).
        Assert.True(Regex.Matches(ptx, @"ld\.global(\.nc)?\.v4\.f32").Count >= 2, "expected float4 global loads of A and B");
        Assert.Matches(@"st\.global\.v4\.f32", ptx);
        Assert.Matches(@"ld\.shared\.v4\.f32", ptx);
    }
}

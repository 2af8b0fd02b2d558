using GpuNet.Kernels.Checks;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>attention, attention_unfused, attention_decode, kv_cache_append.</summary>
public sealed class AttentionTests(ITestOutputHelper output) : KernelFamilyTests<AttentionFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void DecodeEqualsFusedAttentionOnTheSameData()
    {
        using var scope = Cpu.Scope();
        var q = Tensor.RandomNormal(Cpu, new[] { 2, 3, 1, 48 }, 11);
        var k = Tensor.RandomNormal(Cpu, new[] { 2, 3, 300, 48 }, 12);
        var v = Tensor.RandomNormal(Cpu, new[] { 2, 3, 300, 48 }, 13);
        var lengths = Tensor.FromArray(Cpu, new float[] { 300, 257 });
        var fused = Ops.Attention(q, k, v, keyLengths: lengths);
        var decode = Ops.AttentionDecode(q, k, v, lengths);
        var (_, rel, error) = CheckRunner.Compare(decode.Output.ToArray(), Array.ConvertAll(fused.Output.ToArray(), x => (double)x));
        Assert.Null(error);
        Assert.True(rel < 2e-6, $"decode vs fused rel L2 {rel}");
        var (_, relLse, _) = CheckRunner.Compare(decode.LogSumExp.ToArray(), Array.ConvertAll(fused.LogSumExp.ToArray(), x => (double)x));
        Assert.True(relLse < 2e-6, $"logsumexp rel L2 {relLse}");
    }

    [Fact]
    public void HeadDimensionOver128IsRejected()
    {
        using var q = Tensor.Zeros(Cpu, 1, 1, 4, 129);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Attention(q, q, q));
        Assert.Equal("attention", e.Op);
        Assert.Contains("1..128", e.Expected);
    }

    [Fact]
    public void MismatchedKeysAreRejected()
    {
        using var q = Tensor.Zeros(Cpu, 1, 2, 4, 16);
        using var k = Tensor.Zeros(Cpu, 1, 2, 4, 8);
        Assert.Equal("k", Assert.Throws<ShapeMismatchException>(() => Ops.Attention(q, k, k)).Argument);
        using var k2 = Tensor.Zeros(Cpu, 1, 2, 5, 16);
        using var v2 = Tensor.Zeros(Cpu, 1, 2, 6, 16);
        Assert.Equal("v", Assert.Throws<ShapeMismatchException>(() => Ops.Attention(q, k2, v2)).Argument);
    }

    [Fact]
    public void CacheAppendBeyondTheEndIsRejectedAndCacheKept()
    {
        using var cache = Ops.Full(Cpu, 1f, 1, 1, 4, 2);
        using var values = Tensor.Zeros(Cpu, 1, 1, 2, 2);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.KvCacheAppend(cache, values, 3));
        Assert.Equal("position", e.Argument);
        Assert.All(cache.ToArray(), x => Assert.Equal(1f, x));
    }
}

public sealed class AttentionFamily : IKernelFamily { public static string Name => "attention"; }

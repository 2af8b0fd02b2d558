using GpuNet.Kernels.Checks;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>attention, attention_unfused, attention_decode, kv_cache_append.</summary>
public sealed class AttentionTests(ITestOutputHelper output) : KernelFamilyTests<AttentionFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    /// <summary>On the simulated GPU the two are different kernels (the split-K decode's partial and combine launches against the
    /// fused one); on the fast CPU both run the same host loop, so only the simulator makes this a comparison.</summary>
    [Fact]
    public void DecodeEqualsFusedAttentionOnTheSameData()
    {
        var device = TestDevices.Simulator;
        using var scope = device.Scope();
        var q = Tensor.RandomNormal(device, new[] { 2, 3, 1, 48 }, 11);
        var k = Tensor.RandomNormal(device, new[] { 2, 3, 300, 48 }, 12);
        var v = Tensor.RandomNormal(device, new[] { 2, 3, 300, 48 }, 13);
        var lengths = Tensor.FromArray(device, new float[] { 300, 257 });
        var fused = Ops.Attention(q, k, v, keyLengths: lengths);
        var decode = Ops.AttentionDecode(q, k, v, lengths);
        var (_, rel, error) = CheckRunner.Compare(decode.Output.ToArray(), Array.ConvertAll(fused.Output.ToArray(), x => (double)x));
        Assert.Null(error);
        Assert.True(rel < 2e-6, $"decode vs fused rel L2 {rel}");
        var (_, relLse, _) = CheckRunner.Compare(decode.LogSumExp.ToArray(), Array.ConvertAll(fused.LogSumExp.ToArray(), x => (double)x));
        Assert.True(relLse < 2e-6, $"logsumexp rel L2 {relLse}");
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cpu-sim")]
    public void UnfusedDropoutDropsTheProbabilitiesOfItsPhiloxStream(string deviceId)
    {
        // Causal with Nk > Nq and odd sizes; the keep mask of a seed depends only on the element index, so dropout of a
        // tensor of ones with the same shape and seed shows which probabilities were kept.
        var device = TestDevices.Get(deviceId);
        const int b = 2, h = 3, nq = 5, nk = 7, d = 9;
        const float p = 0.3f;
        const ulong seed = 77;
        using var scope = device.Scope();
        var q = Tensor.RandomNormal(device, new[] { b, h, nq, d }, 21);
        var k = Tensor.RandomNormal(device, new[] { b, h, nk, d }, 22);
        var v = Tensor.RandomNormal(device, new[] { b, h, nk, d }, 23);
        var got = Ops.AttentionUnfused(q, k, v, causal: true, dropout: p, dropoutSeed: seed).ToArray();
        var ones = Tensor.FromArray(device, Enumerable.Repeat(1f, b * h * nq * nk).ToArray(), b, h, nq, nk);
        var keep = Ops.Dropout(ones, p, seed).Mask.ToArray();
        float[] qa = q.ToArray(), ka = k.ToArray(), va = v.ToArray();
        var expected = new double[b * h * nq * d];
        double scale = 1 / Math.Sqrt(d);
        for (int z = 0; z < b * h; z++)
            for (int i = 0; i < nq; i++)
            {
                var prob = new double[nk];
                int visible = i + nk - nq;
                for (int j = 0; j <= visible; j++)
                    for (int c = 0; c < d; c++)
                        prob[j] += scale * qa[(z * nq + i) * d + c] * ka[(z * nk + j) * d + c];
                double max = prob.Take(visible + 1).Max(), sum = 0;
                for (int j = 0; j <= visible; j++)
                    sum += prob[j] = Math.Exp(prob[j] - max);
                for (int j = 0; j <= visible; j++)
                    for (int c = 0; c < d; c++)
                        expected[(z * nq + i) * d + c] += prob[j] / sum * keep[(z * nq + i) * nk + j] / (1 - p) * va[(z * nk + j) * d + c];
            }
        Assert.Contains(0f, keep);
        var (_, rel, error) = CheckRunner.Compare(got, expected);
        Assert.Null(error);
        Assert.True(rel <= 1e-5, $"rel L2 {rel}");
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
        var e = Assert.Throws<InvalidArgumentException>(() => Ops.KvCacheAppend(cache, values, 3));
        Assert.Equal("position", e.Argument);
        Assert.All(cache.ToArray(), x => Assert.Equal(1f, x));
    }
}

public sealed class AttentionFamily : IKernelFamily { public static string Name => "attention"; }

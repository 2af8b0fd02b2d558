using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>embedding, positional tables, patches, random fills, dropout, sample, vq_nearest; plus the statistical checks of the sampler.</summary>
public sealed class SequenceTests(ITestOutputHelper output) : KernelFamilyTests<SequenceFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;
    private readonly ITestOutputHelper _output = output;

    private static readonly float[] Logits = { 0.1f, 1.2f, -0.5f, 2.0f, 0.7f, -1.0f };

    /// <summary>Chi-square of 10⁵ draws from one broadcast row against the expected probabilities of the kept tokens.</summary>
    private double ChiSquare(float temperature, int topK, float topP, ulong seed, double[] expected)
    {
        const int draws = 100_000;
        using var row = Tensor.FromArray(Cpu, Logits, 1, Logits.Length);
        using var rows = row.Expand(draws, Logits.Length);
        using var tokens = Ops.Sample(rows, temperature, topK, topP, seed);
        var counts = new int[Logits.Length];
        foreach (float t in tokens.ToArray())
            counts[(int)t]++;
        double chi2 = 0;
        for (int j = 0; j < counts.Length; j++)
        {
            if (expected[j] == 0)
            {
                Assert.Equal(0, counts[j]);
                continue;
            }
            double e = expected[j] * draws;
            chi2 += (counts[j] - e) * (counts[j] - e) / e;
        }
        _output.WriteLine($"counts [{string.Join(", ", counts)}], chi² {chi2:0.00}");
        return chi2;
    }

    private static double[] Softmax(float temperature, params int[] kept)
    {
        var e = Logits.Select((x, j) => kept.Length == 0 || kept.Contains(j) ? Math.Exp(x / temperature) : 0).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Fact]
    public void PlainSamplingFollowsTheSoftmax() =>
        // 5 degrees of freedom: P(χ² > 25.7) = 1e-4.
        Assert.InRange(ChiSquare(1f, 0, 1f, 1234, Softmax(1f)), 0, 25.7);

    [Fact]
    public void TopKSamplingFollowsTheRenormalizedTopThree() =>
        // Top 3 of the logits are tokens 3, 1, 4; 2 degrees of freedom: P(χ² > 18.4) = 1e-4.
        Assert.InRange(ChiSquare(0.7f, 3, 1f, 99, Softmax(0.7f, 3, 1, 4)), 0, 18.4);

    [Fact]
    public void TopPSamplingKeepsTheSmallestSetReachingP()
    {
        // Probabilities at T = 1: token 3 ≈ 0.50, 1 ≈ 0.22, 4 ≈ 0.14, ...: top-p 0.8 keeps {3, 1, 4} (≈ 0.86).
        var p = Softmax(1f);
        Assert.True(p[3] + p[1] < 0.8 && p[3] + p[1] + p[4] >= 0.8);
        Assert.InRange(ChiSquare(1f, 0, 0.8f, 5, Softmax(1f, 3, 1, 4)), 0, 18.4);
    }

    [Fact]
    public void SameSeedSameTokensOtherSeedOtherTokens()
    {
        using var logits = Tensor.RandomNormal(Cpu, new[] { 64, 50 }, 3);
        using var a = Ops.Sample(logits, 1f, 10, 0.9f, seed: 77);
        using var b = Ops.Sample(logits, 1f, 10, 0.9f, seed: 77);
        using var c = Ops.Sample(logits, 1f, 10, 0.9f, seed: 78);
        Assert.Equal(a.ToArray(), b.ToArray());
        Assert.NotEqual(a.ToArray(), c.ToArray());
    }

    [Fact]
    public void DropoutKeepsTheExpectedFraction()
    {
        using var x = Ops.Full(Cpu, 1f, 100_000);
        var (y, mask) = Ops.Dropout(x, 0.25f, 9);
        using (y)
        using (mask)
        {
            double kept = mask.ToArray().Average();
            // σ of the kept fraction at n = 1e5, p = 0.25: 1.4e-3; ±0.007 is 5σ.
            Assert.InRange(kept, 0.75 - 0.007, 0.75 + 0.007);
            Assert.All(y.ToArray(), v => Assert.True(v == 0 || Math.Abs(v - 1 / 0.75f) < 1e-6));
        }
    }

    [Fact]
    public void DeviceNormalHasItsMoments()
    {
        using var g = Ops.RandomNormal(Cpu, new[] { 200_000 }, 5, -1, 0.5f);
        var v = g.ToArray();
        double mean = v.Average(x => (double)x), sd = Math.Sqrt(v.Average(x => (x - mean) * (x - mean)));
        Assert.InRange(mean, -1 - 0.01, -1 + 0.01);
        Assert.InRange(sd, 0.5 - 0.008, 0.5 + 0.008);
    }

    [Fact]
    public void OutOfRangeTokenIdIsATypedErrorBeforeLaunch()
    {
        using var w = Tensor.Zeros(Cpu, 10, 4);
        // A value out of range, not a shape: its own type (still an ArgumentMismatchException with Op, Argument, Expected, Actual).
        var e = Assert.Throws<InvalidArgumentException>(() => Ops.Embedding(w, new[] { 3, 10, 1 }));
        Assert.Equal("embedding", e.Op);
        Assert.Contains("id 10 at position 1", e.Actual);
        Assert.Throws<InvalidArgumentException>(() => Ops.Embedding(w, new[] { -1 }));
    }

    [Fact]
    public void BadSamplingArgumentsAreNamed()
    {
        using var logits = Tensor.Zeros(Cpu, 2, 5);
        Assert.Equal("top_p", Assert.Throws<InvalidArgumentException>(() => Ops.Sample(logits, topP: 0)).Argument);
        Assert.Equal("temperature", Assert.Throws<InvalidArgumentException>(() => Ops.Sample(logits, temperature: -1)).Argument);
        Assert.Equal("p", Assert.Throws<InvalidArgumentException>(() => Ops.Dropout(logits, 1f, 0)).Argument);
    }
}

public sealed class SequenceFamily : IKernelFamily { public static string Name => "sequence"; }

/// <summary>topk_gating, moe_route, moe_dispatch, moe_combine.</summary>
public sealed class RoutingTests(ITestOutputHelper output) : KernelFamilyTests<RoutingFamily>(output)
{
    [Fact]
    public void KAboveEightIsRejected()
    {
        using var logits = Tensor.Zeros(TestDevices.Cpu, 4, 16);
        Assert.Equal("k", Assert.Throws<ShapeMismatchException>(() => Ops.TopKGating(logits, 9)).Argument);
    }

    [Fact]
    public void CapacityDropsTheLaterTokens()
    {
        // All four tokens pick expert 0 first; capacity ⌈0.5·4·1/2⌉ = 1 keeps token 0 only.
        using var logits = Tensor.FromArray(TestDevices.Cpu, new float[] { 5, 0, 5, 0, 5, 0, 5, 0 }, 4, 2);
        using var g = Ops.TopKGating(logits, 1);
        using var r = Ops.MoeRoute(g.Indices, 2, capacityFactor: 0.5f);
        Assert.Equal(new[] { 0, -1, -1, -1 }, r.ReadPositions());
        Assert.Equal(new[] { 1, 0 }, r.ReadCounts());
        Assert.Equal(new[] { 0, 1, 1 }, r.ReadOffsets());
    }
}

public sealed class RoutingFamily : IKernelFamily { public static string Name => "routing"; }

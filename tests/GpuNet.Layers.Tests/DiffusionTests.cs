using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;

namespace GpuNet.Layers.Tests;

/// <summary>DDPM's forward jump and its input checks (the reverse loop is covered by the ddpm golden fixtures).</summary>
public sealed class DiffusionTests
{
    private static Device Cpu => TestDevices.Cpu;

    /// <summary>ᾱ_t = Π_{i ≤ t} (1 − β_i) of the two schedules, written out from their papers: DDPM's linear β from 1e-4 to
    /// 0.02 (Ho et al., 2020), and the improved DDPM's cosine f(t) = cos²((t/T + s)/(1 + s)·π/2), s = 0.008, with
    /// β_t = min(1 − f(t + 1)/f(t), 0.999) (Nichol and Dhariwal, 2021) — not read from the object under test.</summary>
    private static double[] AlphaBars(int steps, bool cosine)
    {
        double F(double t) => Math.Pow(Math.Cos((t / steps + 0.008) / 1.008 * Math.PI / 2), 2);
        var bars = new double[steps];
        double product = 1;
        for (int t = 0; t < steps; t++)
        {
            double beta = cosine ? Math.Min(1 - F(t + 1) / F(t), 0.999) : 1e-4 + (0.02 - 1e-4) * t / (steps - 1);
            bars[t] = product *= 1 - beta;
        }
        return bars;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SchedulesFollowTheirPapers(bool cosine)
    {
        var ddpm = new Ddpm(1000, cosine ? BetaSchedule.Cosine : BetaSchedule.Linear);
        var expected = AlphaBars(1000, cosine);
        for (int t = 0; t < 1000; t++)
            Assert.True(Math.Abs(ddpm.AlphaBars[t] - expected[t]) <= 1e-12 + 1e-10 * expected[t], $"t = {t}: {ddpm.AlphaBars[t]} vs {expected[t]}");
    }

    [Fact]
    public void QSampleMixesSignalAndNoisePerBatchElement()
    {
        var ddpm = new Ddpm(50, BetaSchedule.Cosine);
        var alphaBars = AlphaBars(50, cosine: true);
        var x0 = Enumerable.Range(0, 2 * 3 * 4).Select(i => MathF.Sin(i)).ToArray();
        var noise = Enumerable.Range(0, 2 * 3 * 4).Select(i => MathF.Cos(3 * i)).ToArray();
        int[] steps = { 0, 37 };
        using var tx = Tensor.FromArray(Cpu, x0, 2, 3, 4);
        using var tn = Tensor.FromArray(Cpu, noise, 2, 3, 4);
        using var xt = ddpm.QSample(tx, steps, tn);
        var got = xt.ToArray();
        for (int i = 0; i < got.Length; i++)
        {
            double ab = alphaBars[steps[i / 12]];
            double expected = Math.Sqrt(ab) * x0[i] + Math.Sqrt(1 - ab) * noise[i];
            Assert.True(Math.Abs(got[i] - expected) < 1e-6, $"element {i}: {got[i]} vs {expected}");
        }
    }

    [Fact]
    public void SchedulesAreProperDistributions()
    {
        var linear = new Ddpm(1000);
        Assert.Equal(1e-4, linear.Betas[0], 12);
        Assert.Equal(0.02, linear.Betas[^1], 12);
        var cosine = new Ddpm(1000, BetaSchedule.Cosine);
        Assert.All(cosine.Betas, b => Assert.InRange(b, 0, 0.999));
        for (int t = 1; t < 1000; t++)
            Assert.True(cosine.AlphaBars[t] < cosine.AlphaBars[t - 1]);
    }

    [Fact]
    public void BadInputIsATypedError()
    {
        var ddpm = new Ddpm(10);
        using var x = Tensor.Zeros(Cpu, 2, 3);
        using var wrong = Tensor.Zeros(Cpu, 2, 4);
        Assert.Throws<ShapeMismatchException>(() => ddpm.QSample(x, new[] { 1 }, x));
        Assert.Throws<ShapeMismatchException>(() => ddpm.QSample(x, new[] { 1, 10 }, x));
        Assert.Throws<ShapeMismatchException>(() => ddpm.QSample(x, new[] { 1, 2 }, wrong));
        Assert.Throws<ArgumentException>(() => ddpm.Step(x, x, 3, noise: null));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ddpm(0));
    }
}

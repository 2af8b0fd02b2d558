using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>The Fréchet distance against closed forms, and short VAE training runs on a slice of Fashion-MNIST.</summary>
public sealed class GenerativeTests(ITestOutputHelper output)
{
    private static Device Cpu => TestDevices.Cpu;

    private static FeatureStatistics Gaussian(double[] mean, double[,] covariance) => new(mean, covariance, 1000);

    /// <summary>A random orthogonal matrix (Gram–Schmidt on Gaussian columns).</summary>
    private static double[,] Orthogonal(int n, Random rng)
    {
        var q = new double[n, n];
        for (int j = 0; j < n; j++)
        {
            var v = new double[n];
            for (int i = 0; i < n; i++)
                v[i] = rng.NextDouble() * 2 - 1;
            for (int k = 0; k < j; k++)
            {
                double dot = 0;
                for (int i = 0; i < n; i++)
                    dot += v[i] * q[i, k];
                for (int i = 0; i < n; i++)
                    v[i] -= dot * q[i, k];
            }
            double norm = Math.Sqrt(v.Sum(x => x * x));
            for (int i = 0; i < n; i++)
                q[i, j] = v[i] / norm;
        }
        return q;
    }

    /// <summary>Q·diag(d)·Qᵀ.</summary>
    private static double[,] Rotated(double[,] q, double[] diagonal)
    {
        int n = diagonal.Length;
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int k = 0; k < n; k++)
                    m[i, j] += q[i, k] * diagonal[k] * q[j, k];
        return m;
    }

    /// <summary>
    /// Covariances that share eigenvectors (Q·diag(a)·Qᵀ and Q·diag(b)·Qᵀ, Q a random rotation, so not diagonal): the
    /// distance is ‖μ₁ − μ₂‖² + Σ(√aᵢ − √bᵢ)², which the eigendecompositions must reproduce; a set against itself is 0;
    /// the distance is symmetric.
    /// </summary>
    [Fact]
    public void FrechetDistanceMatchesTheClosedFormOfCommutingCovariances()
    {
        var rng = new Random(5);
        const int n = 24;
        var q = Orthogonal(n, rng);
        double[] a = Enumerable.Range(0, n).Select(_ => 0.1 + 3 * rng.NextDouble()).ToArray(), b = Enumerable.Range(0, n).Select(_ => 0.1 + 3 * rng.NextDouble()).ToArray();
        a[3] = 0;   // a singular covariance: its square root must not turn negative rounding into NaN
        double[] m1 = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray(), m2 = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray();
        var s1 = Gaussian(m1, Rotated(q, a));
        var s2 = Gaussian(m2, Rotated(q, b));
        double expected = m1.Zip(m2).Sum(p => (p.First - p.Second) * (p.First - p.Second)) + a.Zip(b).Sum(p => Math.Pow(Math.Sqrt(p.First) - Math.Sqrt(p.Second), 2));
        double got = FrechetDistance.Between(s1, s2);
        output.WriteLine($"closed form {expected:G12}, computed {got:G12}");
        Assert.Equal(expected, got, 1e-8 * expected);
        Assert.Equal(got, FrechetDistance.Between(s2, s1), 1e-8 * expected);
        Assert.True(FrechetDistance.Between(s1, s1) < 1e-9 * expected);
    }

    [Fact]
    public void FeatureStatisticsAreTheUnbiasedMeanAndCovariance()
    {
        var rng = new Random(3);
        const int count = 50, d = 3;
        var x = new float[count * d];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(rng.NextDouble() * 4 + 1000);   // far from 0: a one-pass formula would cancel here
        var stats = FeatureStatistics.Of(x, count, d);
        for (int j = 0; j < d; j++)
        {
            double mean = Enumerable.Range(0, count).Average(i => (double)x[i * d + j]);
            Assert.Equal(mean, stats.Mean[j], 1e-9);
            for (int k = 0; k < d; k++)
            {
                double cov = Enumerable.Range(0, count).Sum(i => (x[i * d + j] - mean) * (x[i * d + k] - Enumerable.Range(0, count).Average(r => (double)x[r * d + k]))) / (count - 1);
                Assert.Equal(cov, stats.Covariance[j, k], 1e-9);
            }
        }
        Assert.Throws<InvalidArgumentException>(() => FeatureStatistics.Of(x, 1, d));
    }

    /// <summary>
    /// `train vae`'s loop (its default model: latent 16, width 32; lr 1e-3) on 512 training images: the negative ELBO (per
    /// image: summed binary cross-entropy + KL) falls from ~545 (an untrained decoder's coin flips: 784·ln 2 = 543) to below 0.7
    /// of its first value within 60 steps of 64 images, the KL finite and non-negative; sampling gives images in [0, 1],
    /// the same for the same seed.
    /// </summary>
    [Fact]
    public void VaeNegativeElboFallsOnASliceOfFashionMnist()
    {
        var (train, _) = FashionMnist.Load(limit: 512, standardize: false);
        Assert.InRange(train.Pixels.Min(), 0f, 0f);
        Assert.InRange(train.Pixels.Max(), 1f, 1f);
        Cpu.ManualSeed(1);
        using var model = new Vae(Cpu, 16, 28, 32);
        var run = VaeTraining.Train(model, train, epochs: 0, batchSize: 64, learningRate: 1e-3f, seed: 1, maxSteps: 60);
        var loss = run.Losses["loss"];
        output.WriteLine($"negative ELBO: step 1 {loss[0]:0.0}, steps 56-60 {loss.TakeLast(5).Average():0.0}; KL at the end {run.Losses["kl"][^1]:0.00}");
        Assert.Equal(60, run.Steps);
        Assert.InRange(loss[0], 500, 600);
        Assert.True(loss.TakeLast(5).Average() < 0.7 * loss[0], $"negative ELBO {loss[0]:0.0} → {loss.TakeLast(5).Average():0.0}");
        Assert.All(run.Losses["kl"], k => Assert.True(k >= 0 && float.IsFinite(k)));
        var samples = VaeTraining.Sample(model, 10, seed: 3);
        Assert.Equal(10 * 28 * 28, samples.Length);
        Assert.All(samples, v => Assert.InRange(v, 0f, 1f));
        Assert.Equal(samples, VaeTraining.Sample(model, 10, seed: 3));
    }

    /// <summary>
    /// The GAN's two steps as train gan runs them: the discriminator's loss on real and detached generated images gives the
    /// discriminator gradients and the generator none; the generator's loss through the frozen discriminator gives the
    /// generator gradients and the discriminator none — and the same generator gradients, bit for bit, as through the
    /// discriminator not frozen (freezing moves nothing but where gradients accumulate).
    /// </summary>
    [Fact]
    public void GanGeneratorGradientReachesOnlyTheGenerator()
    {
        Cpu.ManualSeed(7);
        using var g = new DcganGenerator(Cpu, latent: 8, width: 4);
        using var d = new DcganDiscriminator(Cpu, width: 4);
        using var scope = Cpu.Scope();
        var real = Ops.RandomUniform(Cpu, new[] { 6, 1, 28, 28 }, 1, -1f, 1f);
        var z = Ops.RandomNormal(Cpu, new[] { 6, 8 }, 2);
        var ones = Ops.Full(Cpu, 1f, 6, 1);
        var zeros = Ops.Full(Cpu, 0f, 6, 1);
        var fake = g.Forward(z);

        var lossD = Ops.BinaryCrossEntropyWithLogits(d.Forward(real), ones) + Ops.BinaryCrossEntropyWithLogits(d.Forward(fake.Detach()), zeros);
        lossD.Backward();
        Assert.All(g.Parameters(), p => Assert.Null(p.Tensor.Grad));
        Assert.All(d.Parameters(), p => Assert.NotNull(p.Tensor.Grad));
        d.ZeroGrad();

        d.Freeze();
        Ops.BinaryCrossEntropyWithLogits(d.Forward(fake), ones).Backward(retainGraph: true);
        Assert.All(d.Parameters(), p => Assert.Null(p.Tensor.Grad));
        Assert.All(g.Parameters(), p => Assert.True(p.Tensor.Grad!.ToArray().Any(v => v != 0), p.Name));
        var frozen = g.Parameters().Select(p => p.Tensor.Grad!.ToArray()).ToList();
        g.ZeroGrad();

        d.RequiresGrad(true);
        Ops.BinaryCrossEntropyWithLogits(d.Forward(fake), ones).Backward();
        Assert.All(d.Parameters(), p => Assert.NotNull(p.Tensor.Grad));
        Assert.Equal(frozen, g.Parameters().Select(p => p.Tensor.Grad!.ToArray()).ToList());
    }

    /// <summary>Thirty train gan steps on 512 images: every loss finite, the discriminator's probabilities in (0, 1), both
    /// networks moved, and samples in [0, 1] (the generator's tanh mapped back), the same for the same seed.</summary>
    [Fact]
    public void GanTrainsAndSamplesOnASliceOfFashionMnist()
    {
        var (train, _) = FashionMnist.Load(limit: 512, standardize: false);
        Cpu.ManualSeed(2);
        using var g = new DcganGenerator(Cpu, latent: 16, width: 8);
        using var d = new DcganDiscriminator(Cpu, width: 8);
        var before = g.Parameters().Concat(d.Parameters()).Select(p => p.Tensor.ToArray()).ToList();
        var run = GanTraining.Train(g, d, train, epochs: 0, batchSize: 32, seed: 3, maxSteps: 30);
        output.WriteLine($"D loss {run.Losses["discriminator"][0]:0.000} → {run.Losses["discriminator"][^1]:0.000}, G loss {run.Losses["generator"][0]:0.000} → {run.Losses["generator"][^1]:0.000}");
        Assert.Equal(30, run.Steps);
        Assert.All(run.Losses.Values.SelectMany(v => v), v => Assert.True(float.IsFinite(v)));
        Assert.All(run.Losses["d_real"].Concat(run.Losses["d_fake"]), p => Assert.InRange(p, 0f, 1f));
        var after = g.Parameters().Concat(d.Parameters()).Select(p => p.Tensor.ToArray()).ToList();
        Assert.All(before.Zip(after), p => Assert.NotEqual(p.First, p.Second));
        var samples = GanTraining.Sample(g, 12, seed: 5);
        Assert.All(samples, v => Assert.InRange(v, 0f, 1f));
        Assert.Equal(samples, GanTraining.Sample(g, 12, seed: 5));
        Assert.True(g.Training);
    }

    [Fact]
    public void FreezingAModuleClearsRequiresGradAndTrainRestoresIt()
    {
        using var d = new DcganDiscriminator(Cpu, width: 2);
        d.Train();
        Assert.Same(d, d.Freeze());
        Assert.All(d.Parameters(), p => Assert.False(p.Tensor.RequiresGrad));
        d.Train();
        Assert.All(d.Parameters(), p => Assert.True(p.Tensor.RequiresGrad));
    }

    [Fact]
    public void VaeRefusesImagesOfAnotherSize()
    {
        using var model = new Vae(Cpu, 4, 28, 2);
        using var x = Tensor.Zeros(Cpu, 2, 1, 16, 16);
        var e = Assert.Throws<ShapeMismatchException>(() => model.Encode(x));
        Assert.Contains("[B, 1, 28, 28]", e.Expected);
        Assert.Throws<InvalidArgumentException>(() => new Vae(Cpu, 4, 30, 2));
    }
}

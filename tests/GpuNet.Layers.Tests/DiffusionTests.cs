using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>DDPM's forward jump and its input checks (the reverse loop is covered by the ddpm golden fixtures), DDIM's sampler
/// against DDPM's, the diffusion trainer with the UNet and the adaLN-Zero DiT, and the weight average samples come from.</summary>
public sealed class DiffusionTests(ITestOutputHelper output)
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

    /// <summary>
    /// DDIM with η = 1 over all T steps is DDPM's sampler: with the same z at every step (a random TinyNoiseModel as ε_θ, T = 40,
    /// both schedules) the two reverse processes agree element for element (within float rounding of two algebraically equal
    /// forms). With η = 0 DDIM draws no noise: the seed changes nothing, and 8 of the 40 steps give a finite image.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DdimWithEtaOneOverEveryStepIsDdpm(bool cosine)
    {
        const int steps = 40;
        var ddpm = new Ddpm(steps, cosine ? BetaSchedule.Cosine : BetaSchedule.Linear);
        Cpu.ManualSeed(11);
        using var model = new TinyNoiseModel(Cpu, 2, 8, 16);
        Tensor Eps(Tensor x, Tensor t) => model.Forward(x, t);
        using var xT = Ops.RandomNormal(Cpu, new[] { 3, 2, 6, 5 }, 1);
        var z = Enumerable.Range(0, steps).Select(t => Ops.RandomNormal(Cpu, new[] { 3, 2, 6, 5 }, 100 + (ulong)t)).ToArray();
        try
        {
            using var viaDdpm = ddpm.Sample(Eps, xT, t => z[t]);
            using var viaDdim = ddpm.SampleDdim(Eps, xT, steps, eta: 1, t => z[t]);
            float[] a = viaDdpm.ToArray(), b = viaDdim.ToArray();
            double diff = Math.Sqrt(a.Zip(b).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second))), norm = Math.Sqrt(a.Sum(v => (double)v * v));
            Assert.True(diff <= 2e-6 * norm, $"DDIM(η = 1) against DDPM: rel L2 {diff / norm:g3}");
            using var deterministic = ddpm.SampleDdim(Eps, xT, 8, eta: 0, seed: 1);
            using var again = ddpm.SampleDdim(Eps, xT, 8, eta: 0, seed: 2);
            Assert.Equal(deterministic.ToArray(), again.ToArray());
            Assert.All(deterministic.ToArray(), v => Assert.True(float.IsFinite(v)));
            Assert.Throws<InvalidArgumentException>(() => ddpm.SampleDdim(Eps, xT, steps + 1));
        }
        finally
        {
            foreach (var t in z)
                t.Dispose();
        }
    }

    /// <summary>train ddpm's loop on 512 images: the ε-MSE (1 for a model predicting nothing) falls below half of its first
    /// value within 40 steps; DDIM samples (8 steps) are images in [0, 1], the same for the same seed.</summary>
    [Fact]
    public void DdpmNoiseLossFallsOnASliceOfFashionMnist()
    {
        var (train, _) = FashionMnist.Load(limit: 512, standardize: false);
        Cpu.ManualSeed(4);
        using var model = new DiffusionUNet(Cpu, width: 8);
        var ddpm = new Ddpm(100);
        var run = DiffusionTraining.Train(model, ddpm, train, epochs: 0, batchSize: 64, seed: 4, maxSteps: 40);
        var loss = run.Losses["loss"];
        Assert.True(loss.TakeLast(5).Average() < 0.5 * loss[0], $"ε-MSE {loss[0]:0.000} → {loss.TakeLast(5).Average():0.000}");
        var samples = DiffusionTraining.Sample(model, ddpm, 6, seed: 1, sampleSteps: 8);
        Assert.All(samples, v => Assert.InRange(v, 0f, 1f));
        Assert.Equal(samples, DiffusionTraining.Sample(model, ddpm, 6, seed: 1, sampleSteps: 8));
    }

    /// <summary>adaLN-Zero's start: a <see cref="DiTBlock"/> is the identity (its gates are 0) and the whole DiT predicts zero
    /// noise (its final layer is 0), whatever the input, timestep and class; after one training step neither holds.</summary>
    [Fact]
    public void AdaLnZeroDiTStartsAsIdentityBlocksAndZeroNoise()
    {
        Cpu.ManualSeed(21);
        using var block = new DiTBlock(Cpu, 16, 4);
        using var tokens = Ops.RandomNormal(Cpu, new[] { 2, 5, 16 }, 1);
        using var condition = Ops.RandomNormal(Cpu, new[] { 2, 16 }, 2);
        using (var y = block.Forward(tokens, condition))
            Assert.Equal(tokens.ToArray(), y.ToArray());

        using var model = new DiT(Cpu, 1, 8, 2, 16, 4, 2, 3, frequencyDim: 16, conditioning: DiTConditioning.AdaLnZero, nullClass: true);
        Assert.Equal(3, model.Classes);
        Assert.Equal(3, model.NullClass);
        using var x = Ops.RandomNormal(Cpu, new[] { 2, 1, 8, 8 }, 3);
        using var t = Tensor.FromArray(Cpu, new[] { 7f, 900f });
        using (var eps = model.Forward(x, t, new[] { 0, 3 }))
            Assert.All(eps.ToArray(), v => Assert.Equal(0f, v));
        using var optimizer = new Adam(model.Parameters(), 1e-2f);
        using (var loss = Ops.MseLoss(model.Forward(x, t, new[] { 0, 3 }), x))
            loss.Backward();
        optimizer.Step();
        using (var eps = model.Forward(x, t, new[] { 0, 3 }))
            Assert.Contains(eps.ToArray(), v => v != 0);
        Assert.Contains("2 labels", Assert.Throws<ShapeMismatchException>(() => model.Forward(x, t, new[] { 1 })).Message);
    }

    /// <summary>train dit's loop on 512 images: the adaLN-Zero DiT, class-conditional with dropped classes and a weight average,
    /// brings the ε-MSE below 60 % of its first value within 60 steps; guided DDIM samples from the averaged weights are images
    /// in [0, 1], and the module has its trained weights back afterwards.</summary>
    [Fact]
    public void DiTNoiseLossFallsOnASliceOfFashionMnist()
    {
        var (train, _) = FashionMnist.Load(limit: 512, standardize: false);
        Cpu.ManualSeed(22);
        using var model = new DiT(Cpu, 1, 28, 4, 32, 4, 2, 10, frequencyDim: 32, conditioning: DiTConditioning.AdaLnZero, nullClass: true);
        using var average = new WeightAverage(model, 0.99f);
        var ddpm = new Ddpm(100);
        var run = DiffusionTraining.Train(model, ddpm, train, epochs: 0, batchSize: 64, learningRate: 1e-3f, seed: 5, maxSteps: 60, average: average);
        var loss = run.Losses["loss"];
        output.WriteLine($"ε-MSE {loss[0]:0.000} → {loss.TakeLast(5).Average():0.000}");
        Assert.Equal(60, average.Updates);
        Assert.True(loss.TakeLast(5).Average() < 0.6 * loss[0], $"ε-MSE {loss[0]:0.000} → {loss.TakeLast(5).Average():0.000}");
        var trained = model.Parameters().Select(p => p.Tensor.ToArray()).ToList();
        float[] samples;
        using (average.Apply())
        {
            Assert.NotEqual(trained[0], model.Parameters().First().Tensor.ToArray());
            samples = DiffusionTraining.Sample(model, ddpm, 4, seed: 1, sampleSteps: 8, guidance: 1f, labels: new[] { 0, 1, 2, 3 });
        }
        Assert.All(samples, v => Assert.InRange(v, 0f, 1f));
        Assert.Equal(trained, model.Parameters().Select(p => p.Tensor.ToArray()).ToList());
    }

    /// <summary>The weight average follows a ← d·a + (1 − d)·p with the warm-up d = min(decay, (1 + n)/(10 + n)).</summary>
    [Fact]
    public void WeightAverageFollowsItsFormula()
    {
        using var layer = new Linear(Cpu, 3, 2);
        using var average = new WeightAverage(layer, 0.5f);
        var p0 = layer.Weight.ToArray();
        var expected = (float[])p0.Clone();
        var rng = new Random(1);
        for (int n = 0; n < 4; n++)
        {
            var values = Enumerable.Range(0, 6).Select(_ => (float)rng.NextDouble()).ToArray();
            layer.Weight.CopyFrom(values);
            average.Update();
            float d = Math.Min(0.5f, (1f + n) / (10f + n));
            for (int i = 0; i < 6; i++)
                expected[i] = d * expected[i] + (1 - d) * values[i];
        }
        var last = layer.Weight.ToArray();
        using (average.Apply())
        {
            var applied = layer.Weight.ToArray();
            for (int i = 0; i < 6; i++)
                Assert.Equal(expected[i], applied[i], 5);
            Assert.Throws<InvalidOperationException>(() => average.Update());
        }
        Assert.Equal(last, layer.Weight.ToArray());
        Assert.Throws<InvalidArgumentException>(() => new WeightAverage(layer, 1f));
    }

    /// <summary>Classifier-free guidance: with w = 0 the guided noise model is the conditional model itself (bit for bit), and
    /// with w = 1.5 it is 2.5·ε(x, c) − 1.5·ε(x, ∅), ∅ being the extra "no class" index.</summary>
    [Fact]
    public void GuidanceWithZeroScaleIsTheConditionalModel()
    {
        Cpu.ManualSeed(6);
        using var model = new DiffusionUNet(Cpu, width: 4, classes: 10);
        using var x = Ops.RandomNormal(Cpu, new[] { 3, 1, 28, 28 }, 2);
        using var t = Tensor.FromArray(Cpu, new[] { 5f, 300f, 999f });
        int[] labels = { 1, 7, 3 }, none = { 10, 10, 10 };
        using var conditional = model.Forward(x, t, labels);
        using var unconditional = model.Forward(x, t, none);
        using (var guided0 = DiffusionTraining.NoiseModel(model, labels, 0f)(x, t))
            Assert.Equal(conditional.ToArray(), guided0.ToArray());
        using var guided = DiffusionTraining.NoiseModel(model, labels, 1.5f)(x, t);
        float[] c = conditional.ToArray(), u = unconditional.ToArray(), g = guided.ToArray();
        for (int i = 0; i < g.Length; i++)
            Assert.True(Math.Abs(g[i] - (2.5f * c[i] - 1.5f * u[i])) <= 1e-5f * (1 + Math.Abs(g[i])), $"element {i}");
        Assert.NotEqual(c, u);
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

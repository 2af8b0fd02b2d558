using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>`train vqvae` and `train pixelcnn`: the straight-through estimator, the codebook's EMA updates and restarts, the
/// PixelCNN prior's causality, and short trainings that must learn.</summary>
public sealed class VqVaeTests(ITestOutputHelper output)
{
    private static Device Cpu => TestDevices.Cpu;

    /// <summary>
    /// The straight-through latent is z_q exactly in the forward pass, and the reconstruction's gradient with respect to z_e
    /// through it equals, bit for bit, the decoder's gradient with respect to its input z_q; the codebook gets none of it.
    /// </summary>
    [Fact]
    public void StraightThroughGradientIsTheDecodersInputGradient()
    {
        Cpu.ManualSeed(11);
        using var model = new VqVae(Cpu, codes: 8, dim: 3, width: 4);
        using var scope = Cpu.Scope();
        var x = Ops.RandomUniform(Cpu, new[] { 2, 1, 28, 28 }, 1, 0f, 1f);
        var encoded = model.Encode(x).Detach();
        encoded.RequiresGrad = true;
        var (quantized, codes) = model.Quantizer.Quantize(encoded);
        var straight = VqVae.StraightThrough(encoded, quantized);
        Assert.Equal(quantized.ToArray(), straight.ToArray());
        Ops.BinaryCrossEntropyWithLogits(model.DecodeLogits(straight), x).Backward();
        var throughEstimator = encoded.Grad!.ToArray();
        Assert.Null(model.Quantizer.Codebook.Weight.Grad);
        Assert.Contains(throughEstimator, v => v != 0);
        model.ZeroGrad();

        var input = quantized.Detach();
        input.RequiresGrad = true;
        Ops.BinaryCrossEntropyWithLogits(model.DecodeLogits(input), x).Backward();
        Assert.Equal(input.Grad!.ToArray(), throughEstimator);
    }

    /// <summary>The codebook loss moves only the codebook, the commitment loss only the encoder (through z_e).</summary>
    [Fact]
    public void CodebookAndCommitmentLossesReachTheirOwnSide()
    {
        Cpu.ManualSeed(12);
        using var model = new VqVae(Cpu, codes: 8, dim: 3, width: 4);
        using var scope = Cpu.Scope();
        var x = Ops.RandomUniform(Cpu, new[] { 2, 1, 28, 28 }, 2, 0f, 1f);
        var (logits, encoded, quantized, _) = model.Forward(x);
        var loss = VqVaeTraining.Loss(logits, x, encoded, quantized, beta: 0.25f);
        loss.Codebook.Backward(retainGraph: true);
        Assert.All(model.Parameters(), p => Assert.True(p.Name.StartsWith("vq.") == (p.Tensor.Grad is not null), p.Name));
        model.ZeroGrad();
        loss.Commitment.Backward();
        Assert.All(model.Parameters(), p => Assert.True(p.Name.StartsWith("encoder.") == (p.Tensor.Grad is not null), p.Name));
    }

    [Fact]
    public void PerplexityIsTheNumberOfEvenlyUsedCodes()
    {
        Assert.Equal(4, VqVaeTraining.Perplexity(new float[] { 0, 1, 2, 3, 3, 2, 1, 0 }, 16), 12);
        Assert.Equal(1, VqVaeTraining.Perplexity(new float[] { 5, 5, 5 }, 16), 12);
    }

    /// <summary>
    /// One EMA step with decay γ = 0.5 and Adam at learning rate 0 (so the encoder does not move): each code becomes
    /// (γ·e_k + (1 − γ)·Σ z_e assigned to k) / (γ + (1 − γ)·n_k) — the running sum and count starting at (e_k, 1) — and a
    /// code no position picked stays where it was.
    /// </summary>
    [Fact]
    public void EmaStepMovesEachCodeTowardTheMeanOfItsOutputs()
    {
        var (train, _) = FashionMnist.Load(limit: 32, standardize: false);
        Cpu.ManualSeed(13);
        using var model = new VqVae(Cpu, codes: 16, dim: 4, width: 4);
        var before = model.Quantizer.Codebook.Weight.ToArray();
        float[] rows, codes;
        using (Autograd.NoGrad())
        using (var scope = Cpu.Scope())
        {
            var x = Tensor.FromArray(Cpu, train.Pixels, 32, 1, 28, 28);
            var encoded = model.Encode(x);
            codes = model.Quantizer.Quantize(encoded).Codes.ToArray();
            rows = Ops.Permute(encoded, 0, 2, 3, 1).Reshape(-1, 4).ToArray();
        }
        VqVaeTraining.Train(model, train, epochs: 0, batchSize: 32, learningRate: 0f, emaDecay: 0.5f, maxSteps: 1, seedCodebook: false, restartDeadCodes: false);
        var after = model.Quantizer.Codebook.Weight.ToArray();
        int unused = 0;
        for (int k = 0; k < 16; k++)
        {
            var members = Enumerable.Range(0, codes.Length).Where(i => (int)codes[i] == k).ToArray();
            unused += members.Length == 0 ? 1 : 0;
            for (int d = 0; d < 4; d++)
            {
                double sum = members.Sum(i => (double)rows[i * 4 + d]);
                double expected = (0.5 * before[k * 4 + d] + 0.5 * sum) / (0.5 + 0.5 * members.Length);
                Assert.Equal(expected, after[k * 4 + d], 5);
            }
        }
        output.WriteLine($"{16 - unused} of 16 codes picked by the batch's {codes.Length} positions");
        Assert.InRange(unused, 1, 15);
    }

    /// <summary>
    /// From the U(−1/K, 1/K) codebook and without seeding it from the data, the encoder's outputs land on a few codes; dead-code
    /// restarts put the unused ones back among the outputs, so more codes are in use after the same 40 steps (measured 17 of 32
    /// without, 32 with).
    /// </summary>
    [Fact]
    public void DeadCodeRestartsBringUnusedCodesBack()
    {
        var (train, test) = FashionMnist.Load(limit: 512, standardize: false);
        int Used(bool restart)
        {
            Cpu.ManualSeed(14);
            using var model = new VqVae(Cpu, codes: 32, dim: 4, width: 8);
            VqVaeTraining.Train(model, train, epochs: 0, batchSize: 64, seed: 2, maxSteps: 40, seedCodebook: false, restartDeadCodes: restart);
            return VqVaeTraining.EncodeCodes(model, test, 256).Distinct().Count();
        }
        int without = Used(false), with = Used(true);
        output.WriteLine($"codes used on 256 test images: {without} of 32 without restarts, {with} with");
        Assert.True(with > without + 4, $"{with} codes in use with restarts against {without} without");
    }

    /// <summary>
    /// 120 steps of 64 images with the default EMA codebook, and with the codebook loss: the total loss falls under 55 % of
    /// its first value (measured 47 % and 46 %), the reconstruction's binary cross-entropy per pixel below 0.36 (measured
    /// 0.317 and 0.314, from 0.693), and at least 24 of the 32 codes carry the test images (measured 32 and 30).
    /// </summary>
    [Theory]
    [InlineData(0.99f)]
    [InlineData(null)]
    public void LossFallsOnASliceOfFashionMnist(float? emaDecay)
    {
        var (train, test) = FashionMnist.Load(limit: 512, standardize: false);
        Cpu.ManualSeed(15);
        using var model = new VqVae(Cpu, codes: 32, dim: 8, width: 16);
        var run = VqVaeTraining.Train(model, train, epochs: 0, batchSize: 64, emaDecay: emaDecay, seed: 3, maxSteps: 120);
        var loss = run.Losses["loss"];
        double last = loss.TakeLast(5).Average(), reconstruction = run.Losses["reconstruction"].TakeLast(5).Average();
        int used = VqVaeTraining.EncodeCodes(model, test, 256).Distinct().Count();
        output.WriteLine($"loss {loss[0]:0.000} → {last:0.000}, reconstruction {reconstruction:0.0000}, perplexity {run.Losses["perplexity"][^1]:0.0}, {used} codes on the test images");
        Assert.Equal(120, run.Steps);
        Assert.All(run.Losses.Values.SelectMany(v => v), v => Assert.True(float.IsFinite(v)));
        Assert.True(last < 0.55 * loss[0], $"loss {loss[0]:0.000} → {last:0.000}");
        Assert.True(reconstruction < 0.36, $"reconstruction {reconstruction:0.0000}");
        Assert.True(used >= 24, $"{used} codes in use");
        var images = VqVaeTraining.Reconstruct(model, test, 4);
        Assert.Equal(4 * 784, images.Length);
        Assert.All(images, v => Assert.InRange(v, 0f, 1f));
    }

    /// <summary>
    /// The prior's logits at a position depend on the codes before it in raster order and on nothing after: changing every
    /// code from that position on leaves them bit for bit; changing the code just left of it (or just above) changes them.
    /// </summary>
    [Fact]
    public void PriorLogitsDependOnlyOnEarlierCodes()
    {
        Cpu.ManualSeed(16);
        using var prior = new CodePrior(Cpu, codes: 6, embed: 4, hidden: 8, layers: 2);
        var rng = new Random(3);
        var maps = Enumerable.Range(0, 2 * 49).Select(_ => (float)rng.Next(6)).ToArray();
        float[] Logits(float[] m)
        {
            using var _ = Autograd.NoGrad();
            using var codes = Tensor.FromArray(Cpu, m, 2, 7, 7);
            using var logits = prior.Forward(codes);
            return logits.ToArray();
        }
        float[] At(float[] logits, int position) =>
            Enumerable.Range(0, 2).SelectMany(n => Enumerable.Range(0, 6).Select(k => logits[(n * 6 + k) * 49 + position])).ToArray();
        var reference = Logits(maps);
        foreach (int position in new[] { 0, 9, 24, 48 })
        {
            var later = (float[])maps.Clone();
            for (int n = 0; n < 2; n++)
                for (int p = position; p < 49; p++)
                    later[n * 49 + p] = (later[n * 49 + p] + 1 + p % 5) % 6;
            Assert.Equal(At(reference, position), At(Logits(later), position));
            if (position % 7 > 0)
            {
                var left = (float[])maps.Clone();
                left[position - 1] = (left[position - 1] + 1) % 6;
                Assert.NotEqual(At(reference, position), At(Logits(left), position));
            }
            if (position >= 7)
            {
                var above = (float[])maps.Clone();
                above[position - 7] = (above[position - 7] + 1) % 6;
                Assert.NotEqual(At(reference, position), At(Logits(above), position));
            }
        }
    }

    /// <summary>
    /// Code maps with a rule — each code is its left neighbour's plus one (mod 8), each row starting at a random code: the
    /// prior's cross-entropy falls from ln 8 ≈ 2.08 to under 0.7 nats per code in 150 steps (the rule's entropy is ln 8 / 7
    /// ≈ 0.30), and maps it samples follow the rule at 85 % of the positions (chance: 12.5 %); the same seed gives the same maps.
    /// </summary>
    [Fact]
    public void PriorLearnsARuleAndSamplesFollowIt()
    {
        const int side = 7, k = 8;
        var rng = new Random(5);
        var maps = new int[512 * side * side];
        for (int n = 0; n < 512; n++)
            for (int i = 0; i < side; i++)
            {
                int start = rng.Next(k);
                for (int j = 0; j < side; j++)
                    maps[(n * side + i) * side + j] = (start + j) % k;
            }
        Cpu.ManualSeed(17);
        using var prior = new CodePrior(Cpu, k, embed: 8, hidden: 32, layers: 2);
        var run = CodePriorTraining.Train(prior, maps, side, epochs: 0, batchSize: 64, learningRate: 3e-3f, seed: 4, maxSteps: 150);
        var loss = run.Losses["loss"];
        output.WriteLine($"cross-entropy {loss[0]:0.000} → {loss.TakeLast(5).Average():0.000} nats per code");
        Assert.InRange(loss[0], 1.9, 2.3);
        Assert.True(loss.TakeLast(5).Average() < 0.7, $"cross-entropy {loss[0]:0.000} → {loss.TakeLast(5).Average():0.000}");

        var samples = CodePriorTraining.Sample(prior, 40, side, seed: 9);
        Assert.All(samples, c => Assert.InRange(c, 0, k - 1));
        int follow = 0, total = 0;
        for (int n = 0; n < 40; n++)
            for (int i = 0; i < side; i++)
                for (int j = 1; j < side; j++, total++)
                    follow += samples[(n * side + i) * side + j] == (samples[(n * side + i) * side + j - 1] + 1) % k ? 1 : 0;
        output.WriteLine($"{follow} of {total} sampled positions follow the rule");
        Assert.True(follow > 0.85 * total, $"{follow} of {total}");
        Assert.Equal(samples, CodePriorTraining.Sample(prior, 40, side, seed: 9));
    }

    [Fact]
    public void BadInputGetsTypedErrors()
    {
        using var model = new VqVae(Cpu, codes: 4, dim: 2, width: 2);
        using var x = Tensor.Zeros(Cpu, 2, 1, 16, 16);
        Assert.Contains("[B, 1, 28, 28]", Assert.Throws<ShapeMismatchException>(() => model.Encode(x)).Message);
        using var codes = Tensor.Zeros(Cpu, 2, 5, 5);
        Assert.Contains("[B, 7, 7]", Assert.Throws<ShapeMismatchException>(() => model.DecodeCodes(codes)).Message);
        Assert.Throws<InvalidArgumentException>(() => new VqVae(Cpu, codes: 1));
        using var prior = new CodePrior(Cpu, 4, 2, 2, 0);
        var ex = Assert.Throws<InvalidArgumentException>(() => CodePriorTraining.Train(prior, new[] { 0, 1, 2, 9 }, 2, 1));
        Assert.Contains("[0, 4)", ex.Message);
        var (train, _) = FashionMnist.Load(limit: 8, standardize: false);
        Assert.Throws<InvalidArgumentException>(() => VqVaeTraining.Train(model, train, 1, emaDecay: 1f));
    }
}

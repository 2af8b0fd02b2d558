using System.Diagnostics;

namespace GpuNet.Layers;

/// <summary>Where a generative model's training stands, after a step.</summary>
/// <param name="Step">Steps done (1-based).</param>
/// <param name="Steps">Steps in the run.</param>
/// <param name="Losses">The step's losses by name (a VAE: "loss" (the negative ELBO), "reconstruction", "kl").</param>
/// <param name="ImagesPerSecond">Training throughput since the run started.</param>
/// <param name="Left">The time the rest of the run should take at that throughput.</param>
public readonly record struct GenerativeProgress(int Step, int Steps, IReadOnlyDictionary<string, float> Losses, double ImagesPerSecond, TimeSpan Left);

/// <summary>A finished generative training run: every step's losses by name, the images seen and the training time.</summary>
/// <param name="Losses">Per loss name, one value per step.</param>
/// <param name="Images">Training images processed.</param>
/// <param name="Seconds">Training time.</param>
public sealed record GenerativeRun(IReadOnlyDictionary<string, float[]> Losses, long Images, double Seconds)
{
    /// <summary>Steps run.</summary>
    public int Steps => Losses.Values.FirstOrDefault()?.Length ?? 0;

    /// <summary>Training images per second.</summary>
    public double ImagesPerSecond => Images / Math.Max(Seconds, 1e-9);
}

/// <summary>
/// Training and sampling of <see cref="Vae"/> on images in [0, 1] (Kingma and Welling, 2014): per minibatch the encoder's
/// μ and log σ², a reparameterized sample z = μ + ε·σ (ε drawn on the device from the step's seed), the decoder's logits,
/// the negative ELBO (<see cref="Vae.NegativeElbo"/>: summed binary cross-entropy + KL, per image), backward, Adam.
/// </summary>
public static class VaeTraining
{
    /// <summary>
    /// Trains <paramref name="model"/> for <paramref name="epochs"/> epochs of shuffled minibatches of <paramref name="data"/>
    /// (pixels in [0, 1]) with Adam at <paramref name="learningRate"/>, or for exactly <paramref name="maxSteps"/> steps when
    /// given. <paramref name="progress"/> is called every <paramref name="reportEvery"/> steps and at the last.
    /// </summary>
    public static GenerativeRun Train(Vae model, ImageDataset data, int epochs, int batchSize = 128, float learningRate = 1e-3f, ulong seed = 0,
        Action<GenerativeProgress>? progress = null, int reportEvery = 10, int? maxSteps = null)
    {
        const string op = "vae_training";
        Validate.NotNull(op, "model", model);
        Validate.NotNull(op, "data", data);
        if (epochs < 0 || batchSize < 1 || maxSteps is < 0)
            throw new InvalidArgumentException(op, "epochs, batchSize, maxSteps", "epochs ≥ 0, batch ≥ 1, steps ≥ 0", $"{epochs}, {batchSize}, {maxSteps}");
        if (data.Channels != 1 || data.Height != model.ImageSize || data.Width != model.ImageSize)
            throw new ShapeMismatchException(op, "data", $"1×{model.ImageSize}×{model.ImageSize} images", $"{data.Channels}×{data.Height}×{data.Width}");
        var loader = new DataLoader(model.Device, data, batchSize, shuffle: true, seed: seed);
        int steps = maxSteps ?? epochs * loader.BatchCount;
        using var optimizer = new Adam(model.Parameters(), learningRate);
        var loss = new List<float>(steps);
        var reconstruction = new List<float>(steps);
        var kl = new List<float>(steps);
        var clock = Stopwatch.StartNew();
        long images = 0;
        model.Train();
        for (int epoch = 0, step = 0; step < steps; epoch++)
            foreach (var batch in loader.Epoch(epoch))
                using (batch)
                {
                    using (var scope = model.Device.Scope())
                    {
                        var eps = Ops.RandomNormal(model.Device, new[] { batch.Count, model.Latent }, Seeds.Derive(seed, (ulong)step));
                        var (logits, mu, logvar) = model.ForwardLogits(batch.Images, eps);
                        var (total, recon, divergence) = Vae.NegativeElbo(logits, batch.Images, mu, logvar);
                        total.Backward();
                        optimizer.Step();
                        optimizer.ZeroGrad();
                        loss.Add(total.Item());
                        reconstruction.Add(recon.Item());
                        kl.Add(divergence.Item());
                    }
                    step++;
                    images += batch.Count;
                    if (progress is not null && (step % reportEvery == 0 || step == steps))
                    {
                        double rate = images / clock.Elapsed.TotalSeconds;
                        progress(new GenerativeProgress(step, steps,
                            new Dictionary<string, float> { ["loss"] = loss[^1], ["reconstruction"] = reconstruction[^1], ["kl"] = kl[^1] }, rate,
                            TimeSpan.FromSeconds((steps - step) * (double)batchSize / Math.Max(rate, 1e-9))));
                    }
                    if (step == steps)
                        break;
                }
        return new GenerativeRun(new Dictionary<string, float[]> { ["loss"] = loss.ToArray(), ["reconstruction"] = reconstruction.ToArray(), ["kl"] = kl.ToArray() },
            images, clock.Elapsed.TotalSeconds);
    }

    /// <summary><paramref name="count"/> images [count, S·S] in [0, 1] decoded from z ~ N(0, I) drawn from <paramref name="seed"/>,
    /// in batches of <paramref name="batch"/>.</summary>
    public static float[] Sample(Vae model, int count, ulong seed, int batch = 500)
    {
        Validate.NotNull("vae_sample", "model", model);
        int size = model.ImageSize * model.ImageSize;
        var images = new float[(long)count * size];
        using var _ = Autograd.NoGrad();
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            using var scope = model.Device.Scope();
            var z = Ops.RandomNormal(model.Device, new[] { n, model.Latent }, Seeds.Derive(seed, (ulong)start));
            model.Decode(z).ToArray().CopyTo(images.AsSpan(start * size));
        }
        return images;
    }

    /// <summary>Reconstructions (decoded means μ, no sampling) of the first <paramref name="count"/> images of <paramref name="data"/>.</summary>
    public static float[] Reconstruct(Vae model, ImageDataset data, int count)
    {
        Validate.NotNull("vae_reconstruct", "model", model);
        count = Math.Min(count, data.Count);
        using var _ = Autograd.NoGrad();
        using var scope = model.Device.Scope();
        var x = Tensor.FromArray(model.Device, data.Pixels.AsSpan(0, count * data.ImageSize), count, 1, data.Height, data.Width);
        var (mu, logvar) = model.Encode(x);
        logvar.Dispose();
        using (mu)
            return model.Decode(mu).ToArray();
    }
}

/// <summary>Independent seeds for the steps of a run: SplitMix64 of the run's seed and a counter.</summary>
public static class Seeds
{
    /// <summary>A seed for draw <paramref name="index"/> of the run seeded by <paramref name="seed"/>.</summary>
    public static ulong Derive(ulong seed, ulong index)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (index + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

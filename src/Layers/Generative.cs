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
        using var optimizer = new Adam(model.Parameters(), learningRate);
        model.Train();
        return GenerativeLoop.Run(loader, maxSteps ?? epochs * loader.BatchCount, batchSize, new[] { "loss", "reconstruction", "kl" }, (batch, step) =>
        {
            using var scope = model.Device.Scope();
            var eps = Ops.RandomNormal(model.Device, new[] { batch.Count, model.Latent }, Seeds.Derive(seed, (ulong)step));
            var (logits, mu, logvar) = model.ForwardLogits(batch.Images, eps);
            var (total, recon, divergence) = Vae.NegativeElbo(logits, batch.Images, mu, logvar);
            total.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
            return new[] { total.Item(), recon.Item(), divergence.Item() };
        }, progress, reportEvery);
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

/// <summary>The minibatch loop the generative trainers share: steps over shuffled epochs, each step's named losses kept, progress.</summary>
internal static class GenerativeLoop
{
    /// <summary>
    /// Runs <paramref name="step"/>(batch, step index) — which returns one value per name in <paramref name="names"/> — for
    /// <paramref name="steps"/> minibatches of <paramref name="loader"/>'s epochs (none when it has no batches), reporting every
    /// <paramref name="reportEvery"/> steps and at the last.
    /// </summary>
    public static GenerativeRun Run(DataLoader loader, int steps, int batchSize, string[] names, Func<ImageBatch, int, float[]> step,
        Action<GenerativeProgress>? progress, int reportEvery)
    {
        if (loader.BatchCount == 0)
            steps = 0;
        var losses = names.ToDictionary(n => n, _ => new List<float>(steps));
        var clock = Stopwatch.StartNew();
        long images = 0;
        for (int epoch = 0, done = 0; done < steps; epoch++)
            foreach (var batch in loader.Epoch(epoch))
                using (batch)
                {
                    var values = step(batch, done);
                    for (int i = 0; i < names.Length; i++)
                        losses[names[i]].Add(values[i]);
                    done++;
                    images += batch.Count;
                    if (progress is not null && (done % reportEvery == 0 || done == steps))
                    {
                        double rate = images / clock.Elapsed.TotalSeconds;
                        progress(new GenerativeProgress(done, steps, names.ToDictionary(n => n, n => losses[n][^1]), rate,
                            TimeSpan.FromSeconds((steps - done) * (double)batchSize / Math.Max(rate, 1e-9))));
                    }
                    if (done == steps)
                        break;
                }
        return new GenerativeRun(losses.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray()), images, clock.Elapsed.TotalSeconds);
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

/// <summary>
/// DCGAN's generator (Radford et al., 2016) for 1×28×28 images in [−1, 1]: z [B, latent] → Linear to 2w × 7 × 7 →
/// BatchNorm → ReLU → ConvTranspose (2w → w, 4, stride 2) → BatchNorm → ReLU → ConvTranspose (w → 1, 4, stride 2) → tanh.
/// </summary>
public sealed class DcganGenerator : Module
{
    private readonly Linear _project;
    private readonly Sequential _body;

    /// <summary>Creates the generator for <paramref name="latent"/>-dimensional codes with <paramref name="width"/> channels at
    /// 14 × 14 (2·width at 7 × 7).</summary>
    public DcganGenerator(Device device, int latent = 64, int width = 64) : base(device)
    {
        if (latent < 1 || width < 1)
            throw new InvalidArgumentException("dcgan_generator", "latent, width", "both ≥ 1", $"{latent}, {width}");
        (Latent, Width) = (latent, width);
        _project = Child("project", new Linear(device, latent, 2 * width * 7 * 7));
        _body = Child("body", new Sequential(device, new BatchNorm2d(device, 2 * width), new ActivationLayer(device, "relu"),
            new ConvTranspose2d(device, 2 * width, width, 4, 2, 1), new BatchNorm2d(device, width), new ActivationLayer(device, "relu"),
            new ConvTranspose2d(device, width, 1, 4, 2, 1), new ActivationLayer(device, "tanh")));
        Initialize(device.NextSeed());
    }

    /// <inheritdoc cref="DcganInit.Apply"/>
    public override void Initialize(ulong seed) => DcganInit.Apply(this, seed);

    /// <summary>Code dimension.</summary>
    public int Latent { get; }

    /// <summary>Channels at 14 × 14.</summary>
    public int Width { get; }

    /// <summary>Images [B, 1, 28, 28] in [−1, 1] for codes z [B, latent].</summary>
    public Tensor Forward(Tensor z)
    {
        if (z.Rank != 2 || z.Size(1) != Latent)
            throw new ShapeMismatchException("dcgan_generator", "z", $"[B, {Latent}]", GpuNetException.FormatShape(z.ShapeArray()));
        using var h = _project.Forward(z);
        using var grid = h.Reshape(z.Size(0), 2 * Width, 7, 7);
        return _body.Forward(grid);
    }
}

/// <summary>
/// DCGAN's discriminator for 1×28×28 images in [−1, 1]: Conv (1 → w, 4, stride 2) → LeakyReLU(0.2) → Conv (w → 2w, 4, stride 2)
/// → BatchNorm → LeakyReLU(0.2) → Flatten → Linear to one logit (real against generated).
/// </summary>
public sealed class DcganDiscriminator : Module
{
    private readonly Sequential _body;

    /// <summary>Creates the discriminator with <paramref name="width"/> channels at 14 × 14.</summary>
    public DcganDiscriminator(Device device, int width = 64) : base(device)
    {
        if (width < 1)
            throw new InvalidArgumentException("dcgan_discriminator", "width", "≥ 1", width.ToString());
        Width = width;
        _body = Child("body", new Sequential(device, new Conv2d(device, 1, width, 4, 2, 1), new ActivationLayer(device, "leaky_relu", 0.2f),
            new Conv2d(device, width, 2 * width, 4, 2, 1), new BatchNorm2d(device, 2 * width), new ActivationLayer(device, "leaky_relu", 0.2f),
            new Flatten(device), new Linear(device, 2 * width * 7 * 7, 1)));
        Initialize(device.NextSeed());
    }

    /// <inheritdoc cref="DcganInit.Apply"/>
    public override void Initialize(ulong seed) => DcganInit.Apply(this, seed);

    /// <summary>Channels at 14 × 14.</summary>
    public int Width { get; }

    /// <summary>Logits [B, 1] for images [B, 1, 28, 28].</summary>
    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Size(1) != 1 || x.Size(2) != 28 || x.Size(3) != 28)
            throw new ShapeMismatchException("dcgan_discriminator", "x", "[B, 1, 28, 28]", GpuNetException.FormatShape(x.ShapeArray()));
        return _body.Forward(x);
    }
}

/// <summary>DCGAN's initialization.</summary>
internal static class DcganInit
{
    /// <summary>
    /// DCGAN's initialization (its paper, and PyTorch's DCGAN example): every convolution, transposed convolution and Linear
    /// weight from N(0, 0.02²), batch norm scales from N(1, 0.02²), biases 0 — small weights that keep both networks near
    /// linear at the start; with PyTorch's default (kaiming-uniform) the discriminator won in the first hundred steps.
    /// </summary>
    public static void Apply(Module module, ulong seed)
    {
        ulong i = 0;
        foreach (var (name, t) in module.Parameters())
        {
            var host = new float[t.Length];
            if (name.EndsWith("bias", StringComparison.Ordinal))
                Array.Clear(host);
            else
                Philox.FillNormal(host, seed + 0x9E3779B97F4A7C15UL * ++i, t.Rank == 1 ? 1f : 0f, 0.02f);
            t.CopyFrom(host);
        }
    }
}

/// <summary>
/// DCGAN training on images in [0, 1] (scaled to [−1, 1]): per minibatch the discriminator's step on the real batch
/// (target 1) and a generated one (target 0, generated from <see cref="Tensor.Detach"/>ed images so no gradient reaches the
/// generator), then the generator's step with the discriminator frozen (<see cref="Module.Freeze"/>) and the non-saturating
/// loss −log D(G(z)) (target 1 on the generated batch); Adam with β₁ = 0.5 for both, as DCGAN's paper.
/// </summary>
public static class GanTraining
{
    /// <summary>
    /// Trains the pair for <paramref name="epochs"/> epochs of <paramref name="data"/>, or exactly <paramref name="maxSteps"/>
    /// steps. Losses per step: "discriminator", "generator", and the discriminator's mean probabilities "d_real" on real and
    /// "d_fake" on generated images (before its step).
    /// </summary>
    public static GenerativeRun Train(DcganGenerator generator, DcganDiscriminator discriminator, ImageDataset data, int epochs, int batchSize = 64,
        float learningRate = 2e-4f, ulong seed = 0, Action<GenerativeProgress>? progress = null, int reportEvery = 10, int? maxSteps = null)
    {
        const string op = "gan_training";
        Validate.NotNull(op, "generator", generator);
        Validate.NotNull(op, "discriminator", discriminator);
        Validate.NotNull(op, "data", data);
        if (epochs < 0 || batchSize < 1 || maxSteps is < 0)
            throw new InvalidArgumentException(op, "epochs, batchSize, maxSteps", "epochs ≥ 0, batch ≥ 1, steps ≥ 0", $"{epochs}, {batchSize}, {maxSteps}");
        if (data.Channels != 1 || data.Height != 28 || data.Width != 28)
            throw new ShapeMismatchException(op, "data", "1×28×28 images", $"{data.Channels}×{data.Height}×{data.Width}");
        var loader = new DataLoader(generator.Device, data, batchSize, shuffle: true, seed: seed);
        using var optimizerG = new Adam(generator.Parameters(), learningRate, beta1: 0.5f);
        using var optimizerD = new Adam(discriminator.Parameters(), learningRate, beta1: 0.5f);
        generator.Train();
        discriminator.Train();
        return GenerativeLoop.Run(loader, maxSteps ?? epochs * loader.BatchCount, batchSize, new[] { "discriminator", "generator", "d_real", "d_fake" }, (batch, step) =>
        {
            var (d, g, real, fake) = Step(generator, discriminator, optimizerG, optimizerD, batch.Images, Seeds.Derive(seed, (ulong)step));
            return new[] { d, g, real, fake };
        }, progress, reportEvery);
    }

    /// <summary>
    /// One step on a batch of images in [0, 1]: the discriminator's (real, and detached generated images), then the
    /// generator's through the frozen discriminator. Returns both losses and D's mean probability on the real and generated
    /// batches.
    /// </summary>
    public static (float Discriminator, float Generator, float DReal, float DFake) Step(DcganGenerator generator, DcganDiscriminator discriminator,
        Optimizer optimizerG, Optimizer optimizerD, Tensor images, ulong seed)
    {
        var device = generator.Device;
        int n = images.Size(0);
        using var scope = device.Scope();
        var real = images * 2f - 1f;
        var z = Ops.RandomNormal(device, new[] { n, generator.Latent }, seed);
        var fake = generator.Forward(z);
        var ones = Ops.Full(device, 1f, n, 1);
        var zeros = Ops.Full(device, 0f, n, 1);

        var realLogits = discriminator.Forward(real);
        var fakeLogits = discriminator.Forward(fake.Detach());
        var lossD = Ops.BinaryCrossEntropyWithLogits(realLogits, ones) + Ops.BinaryCrossEntropyWithLogits(fakeLogits, zeros);
        lossD.Backward();
        optimizerD.Step();
        optimizerD.ZeroGrad();

        discriminator.Freeze();
        try
        {
            var lossG = Ops.BinaryCrossEntropyWithLogits(discriminator.Forward(fake), ones);
            lossG.Backward();
            optimizerG.Step();
            optimizerG.ZeroGrad();
            float dReal, dFake;
            using (Autograd.NoGrad())
            {
                dReal = Ops.Mean(Ops.Sigmoid(realLogits).Reshape(-1), 0).Item();
                dFake = Ops.Mean(Ops.Sigmoid(fakeLogits).Reshape(-1), 0).Item();
            }
            return (lossD.Item(), lossG.Item(), dReal, dFake);
        }
        finally
        {
            discriminator.RequiresGrad(true);
        }
    }

    /// <summary><paramref name="count"/> images [count, 784] in [0, 1] from the generator (eval mode: batch norm's running
    /// statistics) for codes drawn from <paramref name="seed"/>; the module's mode is restored afterwards.</summary>
    public static float[] Sample(DcganGenerator generator, int count, ulong seed, int batch = 500)
    {
        Validate.NotNull("gan_sample", "generator", generator);
        var images = new float[(long)count * 28 * 28];
        bool training = generator.Training;
        generator.Eval();
        try
        {
            using var _ = Autograd.NoGrad();
            for (int start = 0; start < count; start += batch)
            {
                int n = Math.Min(batch, count - start);
                using var scope = generator.Device.Scope();
                var z = Ops.RandomNormal(generator.Device, new[] { n, generator.Latent }, Seeds.Derive(seed, (ulong)start));
                var unit = (generator.Forward(z) + 1f) * 0.5f;
                unit.ToArray().CopyTo(images.AsSpan(start * 28 * 28));
            }
        }
        finally
        {
            generator.Train(training);
        }
        return images;
    }
}

/// <summary>
/// The noise-prediction UNet of `train ddpm` for 1×28×28 images: the timestep MLP (<c>time_embed</c>, plus a class embedding
/// when conditional — index <c>classes</c> is the "no class" of classifier-free guidance), conv_in, a
/// <see cref="TimeResBlock"/> at 28×28 (width w) and at 14×14 (2w) each followed by a stride-2 convolution, one at 7×7, then
/// nearest upsampling + a convolution back up each level, the level's skip concatenated before its ResBlock, and
/// GroupNorm → SiLU → conv_out to the predicted noise.
/// </summary>
public sealed class DiffusionUNet : Module, IDiffusionModel
{
    private readonly TimestepEmbedder _time;
    private readonly Embedding? _classes;
    private readonly Conv2d _convIn, _down1, _down2, _up2, _up1, _convOut;
    private readonly TimeResBlock _res1, _res2, _mid, _res3, _res4;
    private readonly GroupNorm _normOut;

    /// <summary>Creates the model with <paramref name="width"/> channels at 28×28 (2·width below); with
    /// <paramref name="classes"/> &gt; 0 it is class-conditional.</summary>
    public DiffusionUNet(Device device, int width = 16, int classes = 0) : base(device)
    {
        if (width < 2 || width % 2 != 0 || classes < 0)
            throw new InvalidArgumentException("diffusion_unet", "width, classes", "an even width ≥ 2, classes ≥ 0", $"{width}, {classes}");
        (Width, Classes) = (width, classes);
        int timeDim = 4 * width;
        _time = Child("time_embed", new TimestepEmbedder(device, width, timeDim, timeDim));
        if (classes > 0)
            _classes = Child("class_embed", new Embedding(device, classes + 1, timeDim));
        _convIn = Child("conv_in", new Conv2d(device, 1, width, 3, padding: 1));
        _res1 = Child("res1", new TimeResBlock(device, width, width, timeDim));
        _down1 = Child("down1", new Conv2d(device, width, width, 3, 2, 1));
        _res2 = Child("res2", new TimeResBlock(device, width, 2 * width, timeDim));
        _down2 = Child("down2", new Conv2d(device, 2 * width, 2 * width, 3, 2, 1));
        _mid = Child("mid", new TimeResBlock(device, 2 * width, 2 * width, timeDim));
        _up2 = Child("up2", new Conv2d(device, 2 * width, 2 * width, 3, padding: 1));
        _res3 = Child("res3", new TimeResBlock(device, 4 * width, 2 * width, timeDim));
        _up1 = Child("up1", new Conv2d(device, 2 * width, width, 3, padding: 1));
        _res4 = Child("res4", new TimeResBlock(device, 2 * width, width, timeDim));
        _normOut = Child("norm_out", new GroupNorm(device, 2, width));
        _convOut = Child("conv_out", new Conv2d(device, width, 1, 3, padding: 1));
    }

    /// <summary>Channels at 28×28.</summary>
    public int Width { get; }

    /// <summary>Classes it is conditioned on (0: unconditional).</summary>
    public int Classes { get; }

    /// <inheritdoc/>
    public int? NullClass => Classes > 0 ? Classes : null;

    /// <summary>Predicted noise [B, 1, 28, 28] for x_t, timesteps [B] and, when conditional, class labels (null: no class).</summary>
    public Tensor Forward(Tensor x, Tensor timesteps, ReadOnlySpan<int> labels = default)
    {
        if (x.Rank != 4 || x.Size(1) != 1 || x.Size(2) != 28 || x.Size(3) != 28)
            throw new ShapeMismatchException("diffusion_unet", "x", "[B, 1, 28, 28]", GpuNetException.FormatShape(x.ShapeArray()));
        if (_classes is not null && labels.Length != x.Size(0))
            throw new ShapeMismatchException("diffusion_unet", "labels", $"{x.Size(0)} labels (a class, or {Classes} for none)", $"{labels.Length}");
        using var scope = Device.Scope();
        var t = _time.Forward(timesteps);
        if (_classes is not null)
            t = Ops.Add(t, _classes.Forward(labels, labels.Length));
        var skip1 = _res1.Forward(_convIn.Forward(x), t);
        var skip2 = _res2.Forward(_down1.Forward(skip1), t);
        var h = _mid.Forward(_down2.Forward(skip2), t);
        h = _up2.Forward(Ops.UpsampleNearest2d(h, (14, 14)));
        h = _res3.Forward(Ops.Concat(new[] { h, skip2 }, 1), t);
        h = _up1.Forward(Ops.UpsampleNearest2d(h, (28, 28)));
        h = _res4.Forward(Ops.Concat(new[] { h, skip1 }, 1), t);
        return scope.Keep(_convOut.Forward(Ops.Silu(_normOut.Forward(h))));
    }
}

/// <summary>
/// DDPM training of a noise model (<see cref="DiffusionUNet"/>, <see cref="DiT"/>) on 1×28×28 images in [0, 1] (scaled to [−1, 1]; Ho et al., 2020): per image a random
/// timestep t and noise ε, x_t = <see cref="Ddpm.QSample"/>(x₀, t, ε), the loss MSE(ε_θ(x_t, t), ε); a conditional model sees
/// its class, replaced by "no class" with probability <c>dropClass</c> (classifier-free guidance, Ho and Salimans, 2022).
/// Sampling runs DDPM's reverse loop or DDIM, guided as ε = (1 + w)·ε(x, c) − w·ε(x, ∅) (w = 0: the conditional model).
/// </summary>
public static class DiffusionTraining
{
    /// <summary>
    /// Trains for <paramref name="epochs"/> epochs (or <paramref name="maxSteps"/> steps) with Adam; the loss per step is
    /// reported as "loss". A <paramref name="average"/> of the weights is updated after every step.
    /// </summary>
    public static GenerativeRun Train<TModel>(TModel model, Ddpm ddpm, ImageDataset data, int epochs, int batchSize = 128, float learningRate = 1e-3f,
        ulong seed = 0, float dropClass = 0.1f, Action<GenerativeProgress>? progress = null, int reportEvery = 10, int? maxSteps = null,
        WeightAverage? average = null) where TModel : Module, IDiffusionModel
    {
        const string op = "diffusion_training";
        Validate.NotNull(op, "model", model);
        Validate.NotNull(op, "ddpm", ddpm);
        Validate.NotNull(op, "data", data);
        if (epochs < 0 || batchSize < 1 || maxSteps is < 0 || dropClass is < 0 or > 1)
            throw new InvalidArgumentException(op, "epochs, batchSize, maxSteps, dropClass", "epochs ≥ 0, batch ≥ 1, steps ≥ 0, 0 ≤ p ≤ 1",
                $"{epochs}, {batchSize}, {maxSteps}, {dropClass}");
        if (data.Channels != 1 || data.Height != 28 || data.Width != 28)
            throw new ShapeMismatchException(op, "data", "1×28×28 images", $"{data.Channels}×{data.Height}×{data.Width}");
        if (model.Classes > 0 && dropClass > 0 && model.NullClass is null)
            throw new InvalidArgumentException(op, "dropClass", "0 for a model without a \"no class\" label", dropClass.ToString());
        var device = model.Device;
        var loader = new DataLoader(device, data, batchSize, shuffle: true, seed: seed);
        using var optimizer = new Adam(model.Parameters(), learningRate);
        var rng = new Random((int)(seed % int.MaxValue));
        model.Train();
        return GenerativeLoop.Run(loader, maxSteps ?? epochs * loader.BatchCount, batchSize, new[] { "loss" }, (batch, step) =>
        {
            int n = batch.Count;
            var timesteps = Enumerable.Range(0, n).Select(_ => rng.Next(ddpm.Steps)).ToArray();
            var labels = model.Classes == 0 ? null : batch.HostLabels.Select(c => rng.NextDouble() < dropClass ? model.NullClass!.Value : c).ToArray();
            return new[] { Step(model, ddpm, optimizer, batch.Images, timesteps, labels, Seeds.Derive(seed, (ulong)step), average) };
        }, progress, reportEvery);
    }

    /// <summary>
    /// One training step on images [B, 1, H, W] in [0, 1] at the given timesteps (and labels, "no class" already substituted
    /// where dropped): noise from <paramref name="seed"/>, x_t by <see cref="Ddpm.QSample"/>, ε-MSE, backward, the optimizer's
    /// step, then the weight average's. Returns the loss.
    /// </summary>
    public static float Step(IDiffusionModel model, Ddpm ddpm, Optimizer optimizer, Tensor images, int[] timesteps, int[]? labels, ulong seed,
        WeightAverage? average = null)
    {
        var device = images.Device;
        using var scope = device.Scope();
        var x0 = images * 2f - 1f;
        var noise = Ops.RandomNormal(device, x0.ShapeArray(), seed);
        var xt = ddpm.QSample(x0, timesteps, noise);
        var t = Tensor.FromArray(device, Array.ConvertAll(timesteps, v => (float)v), timesteps.Length);
        var loss = Ops.MseLoss(model.Forward(xt, t, labels), noise);
        loss.Backward();
        optimizer.Step();
        optimizer.ZeroGrad();
        average?.Update();
        return loss.Item();
    }

    /// <summary>
    /// The noise prediction a sampler uses: the model's, or for a conditional model guided toward <paramref name="labels"/> with
    /// scale <paramref name="guidance"/>: (1 + w)·ε(x, c) − w·ε(x, ∅) (w = 0 is the conditional model itself, one evaluation).
    /// </summary>
    public static Func<Tensor, Tensor, Tensor> NoiseModel(IDiffusionModel model, int[]? labels, float guidance)
    {
        if (model.Classes == 0 || labels is null)
            return (x, t) => model.Forward(x, t);
        if (guidance == 0)
            return (x, t) => model.Forward(x, t, labels);
        var none = Enumerable.Repeat(model.NullClass ?? throw new InvalidArgumentException("diffusion_sample", "guidance",
            "0 for a model without a \"no class\" label", guidance.ToString()), labels.Length).ToArray();
        return (x, t) =>
        {
            using var conditional = model.Forward(x, t, labels);
            using var unconditional = model.Forward(x, t, none);
            using var scaled = Ops.Scale(conditional, 1 + guidance);
            return Ops.Axpy(-guidance, unconditional, scaled);
        };
    }

    /// <summary>
    /// <paramref name="count"/> images [count, 784] in [0, 1]: DDIM with <paramref name="sampleSteps"/> steps and η = 0, or DDPM's
    /// full reverse loop when <paramref name="sampleSteps"/> is the schedule's T and <paramref name="ddpmLoop"/> is set; labels
    /// (conditional models) per image. Eval mode, in batches of <paramref name="batch"/>.
    /// </summary>
    public static float[] Sample<TModel>(TModel model, Ddpm ddpm, int count, ulong seed, int sampleSteps, float guidance = 0, int[]? labels = null,
        bool ddpmLoop = false, int batch = 250) where TModel : Module, IDiffusionModel
    {
        Validate.NotNull("diffusion_sample", "model", model);
        var images = new float[(long)count * 28 * 28];
        bool training = model.Training;
        model.Eval();
        try
        {
            for (int start = 0; start < count; start += batch)
            {
                int n = Math.Min(batch, count - start);
                var batchLabels = labels?[start..(start + n)];
                var eps = NoiseModel(model, batchLabels, guidance);
                using var xT = Ops.RandomNormal(model.Device, new[] { n, 1, 28, 28 }, Seeds.Derive(seed, (ulong)start));
                using var x = ddpmLoop ? ddpm.Sample(eps, xT, seed: Seeds.Derive(seed, (ulong)start + 1))
                    : ddpm.SampleDdim(eps, xT, sampleSteps, seed: Seeds.Derive(seed, (ulong)start + 1));
                using var unit = Ops.Unary(x, GpuNet.Kernels.UnaryFunction.Clip, -1f, 1f);
                var values = unit.ToArray();
                for (int i = 0; i < values.Length; i++)
                    images[(long)start * 784 + i] = (values[i] + 1) * 0.5f;
            }
        }
        finally
        {
            model.Train(training);
        }
        return images;
    }
}

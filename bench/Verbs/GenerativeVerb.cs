using System.Text.Json;
using GpuNet.Layers;
using SkiaSharp;

namespace GpuNet.Bench;

/// <summary>
/// The generative trainers (<c>train vae</c>, <c>train gan</c>, <c>train vqvae</c>, <c>train pixelcnn</c>, <c>train ddpm</c>) and <c>sample</c>: training on Fashion-MNIST in [0, 1] with a progress line,
/// then OUT/&lt;name&gt;-loss.png, OUT/&lt;name&gt;-samples.png (an 8 × 8 grid), OUT/&lt;name&gt;.safetensors (with the model's
/// sizes in its metadata, which <c>sample</c> reads) and OUT/&lt;name&gt;-metrics.json with the Fréchet distance of generated
/// images to the test set in the feature space of the <c>train cnn</c> classifier, beside its floor (the training set's own
/// distance to the test set) and ceiling (the untrained model's samples).
/// </summary>
public static class GenerativeVerb
{
    private const int ImageSize = 28;

    /// <summary>A generative trainer's command line, its data (in [0, 1]) and device.</summary>
    private sealed record Setup(int Epochs, int Batch, int Latent, int Width, int FdSamples, float Lr, ulong Seed, string OutDir,
        ImageDataset Train, ImageDataset Test, Device Device) : IDisposable
    {
        public void Dispose() => Device.Dispose();
    }

    /// <summary>Reads the options every generative trainer takes (with its own defaults), checks a named classifier and loads the
    /// data before anything is written, opens the device and seeds it.</summary>
    private static Setup Prepare(Cli cli, int epochs, int batch, int latent, int width, float lr)
    {
        int? limit = cli.Int("limit", 0) is > 0 and var n ? n : null;
        string outDir = cli.One("out") ?? ".";
        // A classifier named on the command line is read before training, so a wrong path costs nothing.
        if (cli.One("classifier") is { } classifierPath)
            using (SafeTensors.Open(classifierPath)) { }
        var (train, test) = FashionMnist.Load(cli.One("data"), limit, standardize: false);
        Directory.CreateDirectory(outDir);
        var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}");
        ulong seed = (ulong)cli.Int("seed", 0);
        device.ManualSeed(seed);
        return new Setup(cli.Int("epochs", epochs), cli.Int("batch", batch), cli.Int("latent", latent), cli.Int("width", width), cli.Int("fd-samples", 5000),
            cli.Float("lr", lr), seed, outDir, train, test, device);
    }

    /// <summary>Copies <paramref name="from"/>'s current (initial) weights into <paramref name="to"/>: the untrained model of the Fréchet distance's ceiling.</summary>
    private static void CopyWeights(Module from, Module to) =>
        to.LoadStateDict(from.StateDict().ToDictionary(p => p.Name, p => (p.Tensor.ShapeArray(), (Func<float[]>)p.Tensor.ToArray)));

    /// <summary>A model to train and an untrained copy of its initial weights (the ceiling's model).</summary>
    private static (T Model, T Untrained) WithUntrainedCopy<T>(Func<T> build) where T : Module
    {
        var (model, untrained) = (build(), build());
        CopyWeights(model, untrained);
        return (model, untrained);
    }

    /// <summary>
    /// The Fréchet distances of the trained model's samples and of the untrained one's to the test set (with the floor), printed
    /// and written to OUT/&lt;name&gt;-metrics.json with the run's facts and <paramref name="extra"/>.
    /// </summary>
    private static void Evaluate(Cli cli, Setup s, string name, GenerativeRun run, float[] samples, Func<float[]> untrainedSamples, Dictionary<string, object> extra,
        Action<ClassifierFeatures, Dictionary<string, object>>? classify = null)
    {
        using var evaluation = FrechetEvaluation.Prepare(s.Device, cli, s.OutDir, s.Train, s.Test, s.Seed);
        classify?.Invoke(evaluation.Features, extra);
        double fd = evaluation.Distance(samples, s.FdSamples);
        double ceiling = evaluation.Distance(untrainedSamples(), s.FdSamples);
        Console.WriteLine($"Fréchet distance to the test set ({s.FdSamples} samples, {evaluation.Features.Dimension}-d classifier features): {fd:0.00}; " +
                          $"floor (training set) {evaluation.Floor:0.00}, ceiling (untrained {name}) {ceiling:0.00}");
        var metrics = new Dictionary<string, object>
        {
            ["model"] = name, ["steps"] = run.Steps, ["epochs"] = s.Epochs, ["batch"] = s.Batch, ["seconds"] = Math.Round(run.Seconds, 3),
            ["images_per_second"] = Math.Round(run.ImagesPerSecond), ["fd"] = Math.Round(fd, 3), ["fd_floor"] = Math.Round(evaluation.Floor, 3),
            ["fd_ceiling"] = Math.Round(ceiling, 3), ["samples"] = s.FdSamples, ["device"] = s.Device.Id,
        };
        foreach (var (key, value) in extra)
            metrics[key] = value;
        File.WriteAllText(Path.Combine(s.OutDir, $"{name}-metrics.json"), JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Saves a generator's weights with the sizes <c>sample</c> needs in the metadata.</summary>
    private static string SaveWeights(Module model, Setup s, string name)
    {
        string weights = Path.Combine(s.OutDir, $"{name}.safetensors");
        SafeTensors.Save(weights, model.StateDict(), new Dictionary<string, string>
        {
            ["model"] = name, ["latent"] = s.Latent.ToString(), ["width"] = s.Width.ToString(), ["size"] = ImageSize.ToString(),
        });
        return weights;
    }

    /// <summary><c>train vae</c>.</summary>
    public static int TrainVae(Cli cli)
    {
        using var s = Prepare(cli, epochs: 10, batch: 128, latent: 16, width: 32, lr: 1e-3f);
        var (device, train, test, epochs, batch, latent, width, lr, seed, outDir) = (s.Device, s.Train, s.Test, s.Epochs, s.Batch, s.Latent, s.Width, s.Lr, s.Seed, s.OutDir);
        var (model, untrained) = WithUntrainedCopy(() => new Vae(device, latent, ImageSize, width));
        using var _model = model;
        using var _untrained = untrained;
        Console.WriteLine($"vae: latent {latent}, width {width}, {model.ParameterCount} parameters; Fashion-MNIST {train.Count} training images in [0, 1]; " +
                          $"Adam lr {lr}, batch {batch}, {epochs} epochs; loss = Σ binary cross-entropy + KL per image");
        var run = VaeTraining.Train(model, train, epochs, batch, lr, seed, p => Progress(p), reportEvery: 10);
        if (!Console.IsOutputRedirected)
            Console.WriteLine();
        Console.WriteLine($"negative ELBO {run.Losses["loss"][0]:0.0} → {run.Losses["loss"].TakeLast(50).Average():0.0} (mean of the last 50 steps; reconstruction " +
                          $"{run.Losses["reconstruction"].TakeLast(50).Average():0.0}, KL {run.Losses["kl"].TakeLast(50).Average():0.0}) in {run.Seconds:0.0} s ({run.ImagesPerSecond:0} images/s)");

        string weights = SaveWeights(model, s, "vae");
        PlotLosses(run, Path.Combine(outDir, "vae-loss.png"), $"VAE on Fashion-MNIST, {device.Id}");
        var samples = VaeTraining.Sample(model, Math.Max(64, s.FdSamples), Seeds.Derive(seed, 1_000_003));
        SaveGrid(samples, 64, Path.Combine(outDir, "vae-samples.png"));
        var originals = test.Pixels.AsSpan(0, 32 * ImageSize * ImageSize).ToArray();
        var reconstructions = VaeTraining.Reconstruct(model, test, 32);
        SaveGrid(Interleave(originals, reconstructions, 8), 64, Path.Combine(outDir, "vae-reconstructions.png"));
        Evaluate(cli, s, "vae", run, samples, () => VaeTraining.Sample(untrained, s.FdSamples, Seeds.Derive(seed, 1_000_003)),
            new() { ["final_loss"] = Math.Round(run.Losses["loss"].TakeLast(50).Average(), 2) });
        Console.WriteLine($"wrote {weights}, vae-loss.png, vae-samples.png, vae-reconstructions.png and vae-metrics.json in {outDir}");
        return 0;
    }

    /// <summary><c>train gan</c>.</summary>
    public static int TrainGan(Cli cli)
    {
        using var s = Prepare(cli, epochs: 8, batch: 64, latent: 64, width: 32, lr: 2e-4f);
        var (device, train, epochs, batch, latent, width, lr, seed, outDir) = (s.Device, s.Train, s.Epochs, s.Batch, s.Latent, s.Width, s.Lr, s.Seed, s.OutDir);
        using var generator = new DcganGenerator(device, latent, width);
        using var discriminator = new DcganDiscriminator(device, width);
        using var untrained = new DcganGenerator(device, latent, width);
        CopyWeights(generator, untrained);
        Console.WriteLine($"gan: DCGAN, latent {latent}, width {width}; generator {generator.ParameterCount}, discriminator {discriminator.ParameterCount} parameters; " +
                          $"Fashion-MNIST {train.Count} training images; Adam lr {lr} β₁ 0.5, batch {batch}, {epochs} epochs; non-saturating generator loss");
        var run = GanTraining.Train(generator, discriminator, train, epochs, batch, lr, seed, p => Progress(p), reportEvery: 10);
        if (!Console.IsOutputRedirected)
            Console.WriteLine();
        Console.WriteLine($"discriminator loss {run.Losses["discriminator"].TakeLast(100).Average():0.000}, generator loss {run.Losses["generator"].TakeLast(100).Average():0.000} " +
                          $"(means of the last 100 steps; D(x) {run.Losses["d_real"].TakeLast(100).Average():0.00}, D(G(z)) {run.Losses["d_fake"].TakeLast(100).Average():0.00}) " +
                          $"in {run.Seconds:0.0} s ({run.ImagesPerSecond:0} images/s)");
        string weights = SaveWeights(generator, s, "gan");
        discriminator.Save(Path.Combine(outDir, "gan-discriminator.safetensors"));
        PlotLosses(run, Path.Combine(outDir, "gan-loss.png"), $"DCGAN on Fashion-MNIST, {device.Id}");
        var samples = GanTraining.Sample(generator, Math.Max(64, s.FdSamples), Seeds.Derive(seed, 1_000_003));
        SaveGrid(samples, 64, Path.Combine(outDir, "gan-samples.png"));
        Evaluate(cli, s, "gan", run, samples, () => GanTraining.Sample(untrained, s.FdSamples, Seeds.Derive(seed, 1_000_003)), new()
        {
            ["final_discriminator_loss"] = Math.Round(run.Losses["discriminator"].TakeLast(100).Average(), 4),
            ["final_generator_loss"] = Math.Round(run.Losses["generator"].TakeLast(100).Average(), 4),
        });
        Console.WriteLine($"wrote {weights}, gan-discriminator.safetensors, gan-loss.png, gan-samples.png and gan-metrics.json in {outDir}");
        return 0;
    }

    /// <summary><c>train ddpm</c>: the UNet, class-conditional with <c>--cond</c>.</summary>
    public static int TrainDdpm(Cli cli)
    {
        bool conditional = cli.Value<bool>("cond");
        int classes = conditional ? FashionMnist.ClassNames.Count : 0;
        return TrainDiffusion<DiffusionUNet>(cli, "ddpm", conditional, epochs: 2, lr: 1e-3f, width: 16, (device, s) =>
        {
            var model = new DiffusionUNet(device, s.Width, classes);
            return (model, $"UNet width {s.Width}", new() { ["width"] = s.Width.ToString(), ["classes"] = classes.ToString() });
        });
    }

    /// <summary><c>train dit</c>: DiT with adaLN-Zero, always class-conditional (with a "no class" label for guidance).</summary>
    public static int TrainDit(Cli cli)
    {
        int patch = cli.Int("patch", 4), heads = cli.Int("heads", 4), layers = cli.Int("layers", 4), width = cli.Int("width", 96);
        if (ImageSize % patch != 0)
            throw new UsageException($"train dit: --patch {patch} does not divide the image side {ImageSize}");
        if (width % heads != 0)
            throw new UsageException($"train dit: --width {width} is not a multiple of --heads {heads}");
        return TrainDiffusion<DiT>(cli, "dit", conditional: true, epochs: 4, lr: 5e-4f, width: width, (device, s) =>
        {
            var model = new DiT(device, 1, ImageSize, patch, s.Width, heads, layers, FashionMnist.ClassNames.Count, frequencyDim: 128,
                conditioning: DiTConditioning.AdaLnZero, nullClass: true);
            return (model, $"DiT-adaLN-Zero, width {s.Width}, {layers} blocks of {heads} heads, {patch}×{patch} patches ({(ImageSize / patch) * (ImageSize / patch)} tokens)",
                new() { ["width"] = s.Width.ToString(), ["classes"] = FashionMnist.ClassNames.Count.ToString(), ["patch"] = patch.ToString(),
                        ["heads"] = heads.ToString(), ["layers"] = layers.ToString() });
        });
    }

    /// <summary>
    /// The diffusion trainers' common run: the schedule from the options, the model and an untrained copy, training with a
    /// weight average (<c>--ema</c>), then the grid by DDPM's reverse loop and the Fréchet distance's samples by DDIM — both from the
    /// averaged weights, which are also the ones saved.
    /// </summary>
    private static int TrainDiffusion<TModel>(Cli cli, string name, bool conditional, int epochs, float lr, int width,
        Func<Device, Setup, (TModel Model, string Description, Dictionary<string, string> Metadata)> build) where TModel : Module, IDiffusionModel
    {
        string scheduleName = cli.One("schedule") ?? "linear";
        if (scheduleName is not ("linear" or "cosine"))
            throw new UsageException($"train {name}: --schedule is linear or cosine, not '{scheduleName}'");
        int timesteps = cli.Int("timesteps", 1000), sampleSteps = cli.Int("sample-steps", 20);
        if (sampleSteps > timesteps)
            throw new UsageException($"train {name}: --sample-steps {sampleSteps} exceeds --timesteps {timesteps}");
        float guidance = cli.Float("guidance", conditional ? 2f : 0f), dropClass = cli.Float("drop-class", 0.1f), emaDecay = cli.Float("ema", 0.999f);
        if (dropClass > 1)
            throw new UsageException($"train {name}: --drop-class is a probability, not {dropClass}");
        if (emaDecay >= 1)
            throw new UsageException($"train {name}: --ema is a decay below 1 (0: off), not {emaDecay}");
        using var s = Prepare(cli, epochs, batch: 128, latent: 0, width: width, lr: lr);
        var (device, train, batch, seed, outDir) = (s.Device, s.Train, s.Batch, s.Seed, s.OutDir);
        // The linear schedule scaled by 1000/T (Nichol and Dhariwal): the same noise levels for any number of steps.
        var schedule = scheduleName == "cosine" ? BetaSchedule.Cosine : BetaSchedule.Linear;
        var ddpm = new Ddpm(timesteps, schedule, 1e-4 * 1000 / timesteps, Math.Min(0.02 * 1000 / timesteps, 0.999));
        var (model, description, metadata) = build(device, s);
        using var _model = model;
        var (untrained, _, _) = build(device, s);
        using var _untrained = untrained;
        CopyWeights(model, untrained);
        using var average = emaDecay > 0 ? new WeightAverage(model, emaDecay) : null;
        Console.WriteLine($"{name}: {description}{(conditional ? $", class-conditional (class dropped with p {dropClass}, guidance {guidance})" : "")}, " +
                          $"{model.ParameterCount} parameters; {scheduleName} schedule, T = {timesteps}; Fashion-MNIST {train.Count} training images; Adam lr {s.Lr}, " +
                          $"batch {batch}, {s.Epochs} epochs; ε-MSE; {(average is null ? "no weight average" : $"samples from the weights' moving average (decay {emaDecay})")}");
        var run = DiffusionTraining.Train(model, ddpm, train, s.Epochs, batch, s.Lr, seed, dropClass, p => Progress(p), reportEvery: 10, average: average);
        if (!Console.IsOutputRedirected)
            Console.WriteLine();
        Console.WriteLine($"ε-MSE {run.Losses["loss"][0]:0.000} → {run.Losses["loss"].TakeLast(100).Average():0.000} (mean of the last 100 steps) in {run.Seconds:0.0} s ({run.ImagesPerSecond:0} images/s)");
        using var averaged = average?.Apply();
        string weights = Path.Combine(outDir, $"{name}.safetensors");
        metadata["model"] = name;
        metadata["schedule"] = scheduleName;
        metadata["timesteps"] = timesteps.ToString();
        metadata["guidance"] = guidance.ToString(System.Globalization.CultureInfo.InvariantCulture);
        metadata["size"] = ImageSize.ToString();
        SafeTensors.Save(weights, model.StateDict(), metadata);
        PlotLosses(run, Path.Combine(outDir, $"{name}-loss.png"), $"{name.ToUpperInvariant()} on Fashion-MNIST, {device.Id}");
        // The grid by DDPM's own T-step reverse loop (class rows 0–7 when conditional); the Fréchet distance's samples by DDIM.
        int classes = model.Classes;
        int[]? gridLabels = conditional ? Enumerable.Range(0, 64).Select(i => i / 8).ToArray() : null;
        var grid = DiffusionTraining.Sample(model, ddpm, 64, Seeds.Derive(seed, 1_000_003), timesteps, guidance, gridLabels, ddpmLoop: true);
        SaveGrid(grid, 64, Path.Combine(outDir, $"{name}-samples.png"));
        int[]? labels = conditional ? Enumerable.Range(0, s.FdSamples).Select(i => i % classes).ToArray() : null;
        var samples = DiffusionTraining.Sample(model, ddpm, s.FdSamples, Seeds.Derive(seed, 1_000_033), sampleSteps, guidance, labels);
        var extra = new Dictionary<string, object>
        {
            ["final_loss"] = Math.Round(run.Losses["loss"].TakeLast(100).Average(), 4), ["schedule"] = scheduleName, ["timesteps"] = timesteps,
            ["fd_sampler"] = $"ddim, {sampleSteps} steps, eta 0", ["conditional"] = conditional, ["guidance"] = guidance, ["ema"] = emaDecay,
        };
        Evaluate(cli, s, name, run, samples, () => DiffusionTraining.Sample(untrained, ddpm, s.FdSamples, Seeds.Derive(seed, 1_000_033), sampleSteps, guidance, labels), extra,
            conditional ? (classifier, metrics) =>
            {
                // A conditional model's samples judged by class: how often the classifier names the class they were drawn for.
                var predicted = classifier.Extract(samples, s.FdSamples).Classes;
                double accuracy = predicted.Zip(labels!).Count(p => p.First == p.Second) / (double)s.FdSamples;
                metrics["class_accuracy"] = Math.Round(accuracy, 4);
                Console.WriteLine($"the classifier names the requested class of {accuracy:P1} of the {s.FdSamples} samples");
            } : null);
        Console.WriteLine($"wrote {weights}, {name}-loss.png, {name}-samples.png and {name}-metrics.json in {outDir}");
        return 0;
    }

    /// <summary><c>train vqvae</c>.</summary>
    public static int TrainVqVae(Cli cli)
    {
        int codes = cli.Int("codes", 128);
        float beta = cli.Float("beta", 0.25f), emaDecay = cli.Float("ema", 0.99f);
        if (emaDecay is < 0 or >= 1)
            throw new UsageException($"train vqvae: --ema is a decay in (0, 1), or 0 for the codebook loss; not {emaDecay}");
        if (codes < 2)
            throw new UsageException($"train vqvae: --codes is at least 2, not {codes}");
        using var s = Prepare(cli, epochs: 5, batch: 128, latent: 16, width: 32, lr: 1e-3f);
        var (device, train, test, epochs, batch, dim, width, lr, seed, outDir) = (s.Device, s.Train, s.Test, s.Epochs, s.Batch, s.Latent, s.Width, s.Lr, s.Seed, s.OutDir);
        var (model, untrained) = WithUntrainedCopy(() => new VqVae(device, codes, dim, width));
        using var _model = model;
        using var _untrained = untrained;
        Console.WriteLine($"vqvae: {codes} codes of dimension {dim} on a 7×7 grid, width {width}, {model.ParameterCount} parameters; Fashion-MNIST {train.Count} training images; " +
                          $"Adam lr {lr}, batch {batch}, {epochs} epochs; loss = binary cross-entropy per pixel + " +
                          (emaDecay > 0 ? $"{beta}·commitment, codebook by EMA (decay {emaDecay})" : $"codebook + {beta}·commitment") + "; straight-through gradient");
        var run = VqVaeTraining.Train(model, train, epochs, batch, lr, beta, emaDecay > 0 ? emaDecay : null, seed, p => Progress(p), reportEvery: 10);
        if (!Console.IsOutputRedirected)
            Console.WriteLine();
        double Last(string name) => run.Losses[name].TakeLast(50).Average();
        Console.WriteLine($"loss {run.Losses["loss"][0]:0.000} → {Last("loss"):0.000} (means of the last 50 steps: reconstruction {Last("reconstruction"):0.0000}, codebook " +
                          $"{Last("codebook"):0.0000}, commitment {Last("commitment"):0.0000}); code perplexity {Last("perplexity"):0.0} of {codes}; {run.Seconds:0.0} s ({run.ImagesPerSecond:0} images/s)");
        string weights = Path.Combine(outDir, "vqvae.safetensors");
        SafeTensors.Save(weights, model.StateDict(), new Dictionary<string, string>
        {
            ["model"] = "vqvae", ["codes"] = codes.ToString(), ["dim"] = dim.ToString(), ["width"] = width.ToString(), ["size"] = ImageSize.ToString(),
        });
        PlotLosses(run, Path.Combine(outDir, "vqvae-loss.png"), $"VQ-VAE on Fashion-MNIST, {device.Id}");
        // A VQ-VAE draws nothing by itself (its prior is `train pixelcnn`): its grid and Fréchet distance are of test-set reconstructions.
        var originals = test.Pixels.AsSpan(0, 32 * ImageSize * ImageSize).ToArray();
        SaveGrid(Interleave(originals, VqVaeTraining.Reconstruct(model, test, 32), 8), 64, Path.Combine(outDir, "vqvae-samples.png"));
        int count = Math.Min(s.FdSamples, test.Count);
        var reconstructions = VqVaeTraining.Reconstruct(model, test, count);
        var testCodes = VqVaeTraining.EncodeCodes(model, test, count);
        double usage = VqVaeTraining.Perplexity(Array.ConvertAll(testCodes, c => (float)c), codes);
        Console.WriteLine($"test-set code perplexity {usage:0.0} of {codes} ({testCodes.Distinct().Count()} codes used)");
        Evaluate(cli, s with { FdSamples = count }, "vqvae", run, reconstructions, () => VqVaeTraining.Reconstruct(untrained, test, count), new()
        {
            ["fd_of"] = "reconstructions of test images (the prior's samples: train pixelcnn)", ["final_loss"] = Math.Round(Last("loss"), 4),
            ["final_reconstruction"] = Math.Round(Last("reconstruction"), 4), ["perplexity"] = Math.Round(usage, 2), ["codes"] = codes, ["beta"] = beta,
            ["ema_decay"] = emaDecay,
        });
        Console.WriteLine($"wrote {weights}, vqvae-loss.png, vqvae-samples.png (originals above reconstructions) and vqvae-metrics.json in {outDir}");
        return 0;
    }

    /// <summary><c>train pixelcnn</c>.</summary>
    public static int TrainPixelCnn(Cli cli)
    {
        float temperature = cli.Float("temperature", 1f);
        int hidden = cli.Int("hidden", 64), layers = cli.Int("layers", 4);
        // The VQ-VAE is found and read before the data is loaded or anything is written.
        string vqvaePath = cli.One("vqvae") ?? Path.Combine(cli.One("out") ?? ".", "vqvae.safetensors");
        if (!File.Exists(vqvaePath))
            throw new UsageException($"train pixelcnn: no VQ-VAE at {vqvaePath} (run 'train vqvae --out {cli.One("out") ?? "."}' first, or pass --vqvae FILE)");
        using (var file = SafeTensors.Open(vqvaePath))
            if (file.Metadata.GetValueOrDefault("model") != "vqvae")
                throw new UsageException($"train pixelcnn: '{vqvaePath}' was not written by 'train vqvae' (its metadata names no vqvae model)");
        using var s = Prepare(cli, epochs: 3, batch: 128, latent: 32, width: 0, lr: 1e-3f);
        var (device, train, epochs, batch, embed, lr, seed, outDir) = (s.Device, s.Train, s.Epochs, s.Batch, s.Latent, s.Lr, s.Seed, s.OutDir);
        using var vqvae = LoadVqVae(device, vqvaePath);
        const int side = VqVae.GridSize;
        var trainCodes = VqVaeTraining.EncodeCodes(vqvae, train, train.Count);
        var (model, untrained) = WithUntrainedCopy(() => new CodePrior(device, vqvae.Codes, embed, hidden, layers));
        using var _model = model;
        using var _untrained = untrained;
        Console.WriteLine($"pixelcnn: prior over {vqvae.Codes} codes on {side}×{side} maps of {vqvaePath}: embed {embed}, hidden {hidden}, 7×7 mask A + {layers} 3×3 mask B, " +
                          $"{model.ParameterCount} parameters; {train.Count} training maps; Adam lr {lr}, batch {batch}, {epochs} epochs; cross-entropy per code");
        var run = CodePriorTraining.Train(model, trainCodes, side, epochs, batch, lr, seed, p => Progress(p), reportEvery: 10);
        if (!Console.IsOutputRedirected)
            Console.WriteLine();
        double last = run.Losses["loss"].TakeLast(50).Average();
        Console.WriteLine($"cross-entropy {run.Losses["loss"][0]:0.000} → {last:0.000} nats per code (uniform: {Math.Log(vqvae.Codes):0.000}) in {run.Seconds:0.0} s ({run.ImagesPerSecond:0} maps/s)");
        string weights = Path.Combine(outDir, "pixelcnn.safetensors");
        SafeTensors.Save(weights, model.StateDict(), new Dictionary<string, string>
        {
            ["model"] = "pixelcnn", ["codes"] = vqvae.Codes.ToString(), ["embed"] = embed.ToString(), ["hidden"] = hidden.ToString(), ["layers"] = layers.ToString(),
            ["vqvae"] = Path.GetFullPath(vqvaePath), ["temperature"] = temperature.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        PlotLosses(run, Path.Combine(outDir, "pixelcnn-loss.png"), $"PixelCNN prior over VQ-VAE codes, {device.Id}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var samples = VqVaeTraining.DecodeCodes(vqvae, CodePriorTraining.Sample(model, Math.Max(64, s.FdSamples), side, Seeds.Derive(seed, 1_000_003), temperature));
        Console.WriteLine($"sampled {Math.Max(64, s.FdSamples)} code maps ({side * side} positions each) and decoded them in {clock.Elapsed.TotalSeconds:0.0} s");
        SaveGrid(samples, 64, Path.Combine(outDir, "pixelcnn-samples.png"));
        Evaluate(cli, s, "pixelcnn", run, samples,
            () => VqVaeTraining.DecodeCodes(vqvae, CodePriorTraining.Sample(untrained, s.FdSamples, side, Seeds.Derive(seed, 1_000_003), temperature)), new()
            {
                ["final_loss"] = Math.Round(last, 4), ["uniform_loss"] = Math.Round(Math.Log(vqvae.Codes), 4), ["vqvae"] = Path.GetFullPath(vqvaePath),
                ["temperature"] = temperature, ["fd_of"] = "decoded code maps sampled from the prior",
            });
        Console.WriteLine($"wrote {weights}, pixelcnn-loss.png, pixelcnn-samples.png and pixelcnn-metrics.json in {outDir}");
        return 0;
    }

    /// <summary>A VQ-VAE from a vqvae.safetensors written by <c>train vqvae</c>.</summary>
    private static VqVae LoadVqVae(Device device, string path)
    {
        using var file = SafeTensors.Open(path);
        if (file.Metadata.GetValueOrDefault("model") != "vqvae")
            throw new UsageException($"'{path}' was not written by 'train vqvae' (its metadata names no vqvae model)");
        int Meta(string key) => int.TryParse(file.Metadata.GetValueOrDefault(key), out int v) && v > 0
            ? v : throw new UsageException($"'{path}' has no valid '{key}' in its metadata");
        var model = new VqVae(device, Meta("codes"), Meta("dim"), Meta("width"));
        model.Load(file);
        return model;
    }

    /// <summary><c>sample</c>: new images from weights a generative trainer wrote, as an 8-column grid PNG.</summary>
    public static int Sample(Cli cli)
    {
        string weights = cli.One("weights") ?? throw new UsageException("sample: --weights FILE is required (a vae.safetensors written by 'train vae')");
        int count = cli.Int("count", 64);
        ulong seed = (ulong)cli.Int("seed", 0);
        string output = cli.One("out") ?? "samples.png";
        using var file = SafeTensors.Open(weights);
        if (!file.Metadata.TryGetValue("model", out var kind) || kind is not ("vae" or "gan" or "ddpm" or "dit" or "pixelcnn"))
            throw new UsageException(kind == "vqvae"
                ? $"sample: '{weights}' is a VQ-VAE, which draws through its prior: train one with 'train pixelcnn' and sample its pixelcnn.safetensors"
                : $"sample: '{weights}' was not written by a generative trainer (its metadata names no vae, gan, ddpm, dit or pixelcnn model)");
        using var device = Device.Open(cli.One("device"));
        int Meta(string key) => int.TryParse(file.Metadata.GetValueOrDefault(key), out int v) && v > 0
            ? v : throw new UsageException($"sample: '{weights}' has no valid '{key}' in its metadata");
        float[] images;
        if (kind == "vae")
        {
            using var model = new Vae(device, Meta("latent"), Meta("size"), Meta("width"));
            model.Load(file);
            images = VaeTraining.Sample(model, count, seed);
        }
        else if (kind == "gan")
        {
            using var model = new DcganGenerator(device, Meta("latent"), Meta("width"));
            model.Load(file);
            images = GanTraining.Sample(model, count, seed);
        }
        else if (kind == "pixelcnn")
        {
            // The prior's file names the VQ-VAE whose codes it models; --vqvae overrides it (the pair moved to another folder).
            string vqvaePath = cli.One("vqvae") ?? file.Metadata.GetValueOrDefault("vqvae") ?? "";
            if (!File.Exists(vqvaePath))
                throw new UsageException($"sample: the VQ-VAE of '{weights}' is not at '{vqvaePath}': pass --vqvae FILE");
            using var vqvae = LoadVqVae(device, vqvaePath);
            using var prior = new CodePrior(device, Meta("codes"), Meta("embed"), Meta("hidden"), int.TryParse(file.Metadata.GetValueOrDefault("layers"), out int l) ? l : 0);
            prior.Load(file);
            if (prior.Codes != vqvae.Codes)
                throw new UsageException($"sample: '{weights}' models {prior.Codes} codes but the VQ-VAE '{vqvaePath}' has {vqvae.Codes}");
            float temperature = float.TryParse(file.Metadata.GetValueOrDefault("temperature"), System.Globalization.CultureInfo.InvariantCulture, out float tau) ? tau : 1f;
            images = VqVaeTraining.DecodeCodes(vqvae, CodePriorTraining.Sample(prior, count, VqVae.GridSize, seed, temperature));
        }
        else
        {
            int classes = int.TryParse(file.Metadata.GetValueOrDefault("classes"), out int c) ? c : 0, timesteps = Meta("timesteps");
            var schedule = file.Metadata.GetValueOrDefault("schedule") == "cosine" ? BetaSchedule.Cosine : BetaSchedule.Linear;
            var ddpm = new Ddpm(timesteps, schedule, 1e-4 * 1000 / timesteps, Math.Min(0.02 * 1000 / timesteps, 0.999));
            float guidance = float.TryParse(file.Metadata.GetValueOrDefault("guidance"), System.Globalization.CultureInfo.InvariantCulture, out float g) ? g : 0f;
            var labels = classes > 0 ? Enumerable.Range(0, count).Select(i => i / 8 % classes).ToArray() : null;
            if (kind == "dit")
            {
                using var model = new DiT(device, 1, Meta("size"), Meta("patch"), Meta("width"), Meta("heads"), Meta("layers"), classes, frequencyDim: 128,
                    conditioning: DiTConditioning.AdaLnZero, nullClass: true);
                model.Load(file);
                images = DiffusionTraining.Sample(model, ddpm, count, seed, Math.Min(50, timesteps), guidance, labels);
            }
            else
            {
                using var model = new DiffusionUNet(device, Meta("width"), classes);
                model.Load(file);
                images = DiffusionTraining.Sample(model, ddpm, count, seed, Math.Min(50, timesteps), guidance, labels);
            }
        }
        SaveGrid(images, count, output);
        Console.WriteLine($"wrote {count} samples of {weights} (seed {seed}) to {output}");
        return 0;
    }

    private static void Progress(GenerativeProgress p)
    {
        const int width = 30;
        int filled = (int)((long)p.Step * width / Math.Max(p.Steps, 1));
        string losses = string.Join("  ", p.Losses.Select(kv => $"{kv.Key} {kv.Value:0.00}"));
        string line = $"[{new string('#', filled)}{new string('.', width - filled)}] step {p.Step}/{p.Steps}  {losses}  {p.ImagesPerSecond:0} images/s  about {ProgressReporter.Format(p.Left)} left";
        if (!Console.IsOutputRedirected)
            Console.Write("\r" + line + "   ");
        else if (p.Step == p.Steps || p.Step % Math.Max(10, p.Steps / 10 / 10 * 10) == 0)
            Console.WriteLine(line);
    }

    /// <summary>Every loss of the run per step (log10), one line each.</summary>
    private static void PlotLosses(GenerativeRun run, string path, string title)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (name, values) in run.Losses)
        {
            var xs = Enumerable.Range(1, values.Length).Select(i => (double)i).ToArray();
            var line = plot.Add.ScatterLine(xs, values.Select(v => Math.Log10(Math.Max(v, 1e-6))).ToArray());
            line.LegendText = name;
            line.LineWidth = 1.5f;
        }
        plot.Axes.Bottom.Label.Text = "step";
        plot.Axes.Left.Label.Text = "loss (log10)";
        plot.ShowLegend();
        plot.Title(title);
        plot.SavePng(path, 900, 500);
    }

    /// <summary>Rows of <paramref name="perRow"/> originals then their reconstructions.</summary>
    private static float[] Interleave(float[] a, float[] b, int perRow)
    {
        const int size = ImageSize * ImageSize;
        int count = a.Length / size;
        var result = new float[2 * count * size];
        for (int row = 0; row * perRow < count; row++)
            for (int k = 0; k < perRow && row * perRow + k < count; k++)
            {
                int i = row * perRow + k;
                a.AsSpan(i * size, size).CopyTo(result.AsSpan(((2 * row) * perRow + k) * size));
                b.AsSpan(i * size, size).CopyTo(result.AsSpan(((2 * row + 1) * perRow + k) * size));
            }
        return result;
    }

    /// <summary>The first <paramref name="count"/> 28×28 images in [0, 1] as an 8-column grid, each pixel 3×3, 2-pixel gutters.</summary>
    internal static void SaveGrid(float[] images, int count, string path, int columns = 8)
    {
        const int scale = 3, gutter = 2, cell = ImageSize * scale + gutter;
        int rows = (count + columns - 1) / columns;
        using var bitmap = new SKBitmap(columns * cell + gutter, rows * cell + gutter, SKColorType.Gray8, SKAlphaType.Opaque);
        using (var canvas = new SKCanvas(bitmap))
            canvas.Clear(new SKColor(64, 64, 64));
        for (int i = 0; i < count; i++)
        {
            int x0 = gutter + i % columns * cell, y0 = gutter + i / columns * cell;
            for (int y = 0; y < ImageSize * scale; y++)
                for (int x = 0; x < ImageSize * scale; x++)
                {
                    float v = images[(long)i * ImageSize * ImageSize + y / scale * ImageSize + x / scale];
                    byte g = (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
                    bitmap.SetPixel(x0 + x, y0 + y, new SKColor(g, g, g));
                }
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        using var stream = File.Create(path);
        data.SaveTo(stream);
    }
}

/// <summary>
/// The Fréchet-distance yardstick of the generative trainers: the <c>train cnn</c> classifier's features of the test set
/// (its Gaussian fitted once), and the floor — the training set's distance to the test set. The classifier comes from
/// <c>--classifier FILE</c>, else OUT/cnn.safetensors, else one epoch of <c>train cnn</c>'s model is trained and saved there.
/// </summary>
public sealed class FrechetEvaluation : IDisposable
{
    private readonly FeatureStatistics _test;

    private FrechetEvaluation(ClassifierFeatures features, FeatureStatistics test, double floor) => (Features, _test, Floor) = (features, test, floor);

    /// <summary>The feature extractor.</summary>
    public ClassifierFeatures Features { get; }

    /// <summary>The distance of (up to) 10,000 training images to the test set.</summary>
    public double Floor { get; }

    /// <summary>Loads or trains the classifier and fits the test set's Gaussian.</summary>
    public static FrechetEvaluation Prepare(Device device, Cli cli, string outDir, ImageDataset unitTrain, ImageDataset unitTest, ulong seed)
    {
        var (mean, std) = FashionMnist.PixelStatistics(unitTrain);
        string path = cli.One("classifier") ?? Path.Combine(outDir, "cnn.safetensors");
        if (!File.Exists(path))
        {
            Console.WriteLine($"no classifier at {path}: training the train-cnn model for one epoch for the Fréchet distance's features");
            var (train, test) = FashionMnist.Load(cli.One("data"), standardize: true);
            using var classifier = ModelZoo.ImageCnn(device);
            var (_, epochs) = ImageClassification.Train(classifier, train, test, 1, 64, 1e-3f, seed);
            Console.WriteLine($"classifier: test accuracy {epochs[^1].TestAccuracy:P2} after 1 epoch ({epochs[^1].Seconds:0} s); wrote {path}");
            classifier.Save(path);
        }
        var features = ClassifierFeatures.Load(device, path, mean, std);
        int size = unitTrain.ImageSize;
        var testStats = features.Statistics(unitTest.Pixels, unitTest.Count);
        int floorCount = Math.Min(unitTrain.Count, 10_000);
        double floor = FrechetDistance.Between(features.Statistics(unitTrain.Pixels.AsSpan(0, floorCount * size), floorCount), testStats);
        return new FrechetEvaluation(features, testStats, floor);
    }

    /// <summary>The distance of the first <paramref name="count"/> images (28×28 in [0, 1]) to the test set.</summary>
    public double Distance(float[] images, int count) =>
        FrechetDistance.Between(Features.Statistics(images.AsSpan(0, count * 28 * 28), count), _test);

    /// <summary>Disposes the classifier.</summary>
    public void Dispose() => Features.Dispose();
}

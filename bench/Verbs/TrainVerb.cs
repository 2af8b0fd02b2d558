using GpuNet.Layers;

namespace GpuNet.Bench;

/// <summary>The <c>train</c> verb: the seed trainers with a progress line, a loss-curve PNG and the final weights.</summary>
public static class TrainVerb
{
    /// <summary>The bundled corpus (first 300 KB of Shakespeare's plays).</summary>
    public static string DefaultText => Path.Combine(AppContext.BaseDirectory, "data", "shakespeare.txt");

    /// <summary>Trains <paramref name="model"/> (dnn or gpt) as the command line says; returns the exit code.</summary>
    public static int Run(string model, Cli cli)
    {
        int steps = cli.Int("steps", model == "gpt" ? 600 : 2000);
        float lr = cli.Float("lr", model == "gpt" ? 3e-3f : 1e-3f);
        ulong seed = (ulong)cli.Int("seed", 0);
        string outDir = cli.One("out") ?? ".";
        Directory.CreateDirectory(outDir);
        using var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}");
        return model switch
        {
            "dnn" => Dnn(device, steps, lr, seed, outDir),
            "gpt" => Gpt(device, cli, steps, lr, seed, outDir),
            "cnn" => Cnn(device, cli, cli.Float("lr", 1e-3f), seed, outDir),
            _ => throw new UsageException($"train: unknown model '{model}' (dnn, gpt, cnn)"),
        };
    }

    private static int Dnn(Device device, int steps, float lr, ulong seed, string outDir)
    {
        using var model = DnnRegression.Model(device, seed);
        Console.WriteLine($"dnn: MLP 1-64-64-1 (ReLU), {model.ParameterCount} parameters; y = 3x² + 5 on {DnnRegression.Points} points in [-2, 2]; Adam lr {lr}, MSE, {steps} steps");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var losses = DnnRegression.Train(model, model.Forward, steps, lr, p => Progress(p, steps), reportEvery: Math.Max(1, steps / 100));
        if (!Console.IsOutputRedirected)
            Console.WriteLine();
        string weights = Path.Combine(outDir, "dnn.safetensors"), curve = Path.Combine(outDir, "dnn-loss.png");
        model.Save(weights);
        PlotLoss(losses, curve, $"dnn on {device.Id}: final MSE {losses[^1]:G4}");
        Console.WriteLine($"final MSE {losses[^1]:G6} after {steps} steps in {clock.Elapsed.TotalSeconds:0.0} s ({steps / clock.Elapsed.TotalSeconds:0} steps/s); wrote {weights} and {curve}");
        return 0;
    }

    private static int Gpt(Device device, Cli cli, int steps, float lr, ulong seed, string outDir)
    {
        string textPath = cli.One("text") ?? DefaultText;
        if (!File.Exists(textPath))
            throw new UsageException($"train gpt: no text file '{textPath}'");
        string text = File.ReadAllText(textPath);
        var vocabulary = new CharVocabulary(text);
        var config = new GptConfig(vocabulary.Count, cli.Int("context", 64), cli.Int("dim", 64), cli.Int("heads", 4), cli.Int("layers", 2));
        if (config.Dim % Math.Max(config.Heads, 1) != 0 || config.Heads == 0 || config.Context < 2)
            throw new UsageException("train gpt: --dim must be a multiple of --heads, and --context at least 2");
        int batch = cli.Int("batch", 16);
        if (vocabulary.Encode(text).Length <= config.Context + 1)
            throw new UsageException($"train gpt: '{textPath}' has {text.Length} characters; training windows of --context {config.Context} need at least {config.Context + 2}");
        using var model = new GpuNet.Layers.Gpt(device, config);
        model.Initialize(seed);
        Console.WriteLine($"gpt: {config.Layers} layers, width {config.Dim}, {config.Heads} heads, context {config.Context}, {model.ParameterCount} parameters; " +
                          $"{text.Length} characters of {Path.GetFileName(textPath)}, vocabulary {vocabulary.Count}; AdamW lr {lr}, batch {batch}, {steps} steps");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var losses = CharGpt.Train(model, vocabulary, text, steps, batch, lr, seed, p => Progress(p, steps), reportEvery: Math.Max(1, steps / 100));
        if (!Console.IsOutputRedirected)
            Console.WriteLine();
        double seconds = clock.Elapsed.TotalSeconds;
        string weights = Path.Combine(outDir, "gpt.safetensors"), curve = Path.Combine(outDir, "gpt-loss.png");
        CharGpt.Save(weights, model, vocabulary);
        PlotLoss(losses, curve, $"char GPT on {device.Id}: loss {losses[0]:0.00} → {losses[^1]:0.00}");
        Console.WriteLine($"loss {losses[0]:0.000} → {losses[^1]:0.000} (mean of the last 20 steps {losses.TakeLast(20).Average():0.000}) in {seconds:0.0} s, " +
                          $"{steps * batch * config.Context / seconds:0} tokens/s trained; wrote {weights} and {curve}");
        string prompt = cli.One("prompt") ?? "ROMEO:";
        Console.WriteLine($"--- generate --weights {weights} --prompt \"{prompt}\" ---");
        Console.WriteLine(CharGpt.Continue(model, vocabulary, prompt, cli.Int("chars", 200), seed: seed));
        return 0;
    }

    private static int Cnn(Device device, Cli cli, float lr, ulong seed, string outDir)
    {
        int epochs = cli.Int("epochs", 2), batch = cli.Int("batch", 64);
        int? limit = cli.Int("limit", 0) is > 0 and var n ? n : null;
        string kind = cli.One("model") ?? "cnn";
        if (kind is not ("cnn" or "resnet"))
            throw new UsageException($"train cnn: --model is cnn or resnet, not '{kind}'");
        var (train, test) = FashionMnist.Load(cli.One("data"), limit);
        device.ManualSeed(seed);
        using var model = kind == "cnn" ? (Layer)ModelZoo.ImageCnn(device) : ModelZoo.ImageResNet(device);
        Console.WriteLine($"{kind}: {model.ParameterCount} parameters; Fashion-MNIST {train.Count} training and {test.Count} test images; " +
                          $"Adam lr {lr} (cosine to 0 over the run), batch {batch}, {epochs} epochs, cross-entropy");
        var (losses, results) = ImageClassification.Train(model, train, test, epochs, batch, lr, seed,
            p => ClassifierBar(p, epochs),
            r =>
            {
                if (!Console.IsOutputRedirected)
                    Console.WriteLine();
                Console.WriteLine($"epoch {r.Epoch}: train loss {r.TrainLoss:0.0000}, train accuracy {r.TrainAccuracy:P2}, test accuracy {r.TestAccuracy:P2} ({r.Seconds:0} s)");
            });
        string weights = Path.Combine(outDir, "cnn.safetensors"), curve = Path.Combine(outDir, "cnn-loss.png");
        model.Save(weights);
        var last = results.Count > 0 ? results[^1] : default;
        PlotClassifier(losses, results, (double)train.Count / batch, curve, $"{kind} on Fashion-MNIST, {device.Id}: test accuracy {last.TestAccuracy:P2}");
        Console.WriteLine($"wrote {weights} and {curve}");
        Console.WriteLine($"test accuracy {last.TestAccuracy:0.0000} after {results.Count} epochs in {last.Seconds:0.0} s ({last.ImagesPerSecond:0} images/s)");
        return 0;
    }

    /// <summary>The classifier's progress line: bar, epoch, loss, accuracy, images/s and the time left.</summary>
    private static void ClassifierBar(ClassifierProgress p, int epochs)
    {
        const int width = 30;
        double done = ((p.Epoch - 1) * (double)p.Batches + p.Batch) / Math.Max(epochs * (double)p.Batches, 1);
        int filled = (int)(done * width);
        string line = $"[{new string('#', filled)}{new string('.', width - filled)}] epoch {p.Epoch}/{epochs} batch {p.Batch}/{p.Batches}  " +
                      $"loss {p.Loss:0.0000}  accuracy {p.Accuracy:P1}  {p.ImagesPerSecond:0} images/s  about {ProgressReporter.Format(p.Left)} left";
        if (!Console.IsOutputRedirected)
            Console.Write("\r" + line + "   ");
        else if (p.Batch == p.Batches || p.Batch % Math.Max(1, p.Batches / 5) < 10)
            Console.WriteLine(line);
    }

    /// <summary>Training loss per step (left axis) and test accuracy after each epoch (right axis) on one chart.</summary>
    internal static void PlotClassifier(float[] losses, IReadOnlyList<EpochResult> epochs, double stepsPerEpoch, string path, string title)
    {
        var plot = new ScottPlot.Plot();
        var xs = Enumerable.Range(1, losses.Length).Select(i => i / stepsPerEpoch).ToArray();
        var loss = plot.Add.ScatterLine(xs, losses.Select(l => (double)l).ToArray());
        loss.LineWidth = 1.5f;
        loss.LegendText = "training loss";
        if (epochs.Count > 0)
        {
            var accuracy = plot.Add.Scatter(epochs.Select(e => (double)e.Epoch).ToArray(), epochs.Select(e => 100.0 * e.TestAccuracy).ToArray());
            accuracy.LegendText = "test accuracy (%)";
            accuracy.MarkerSize = 9;
            accuracy.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Right.Label.Text = "test accuracy (%)";
        }
        plot.Axes.Bottom.Label.Text = "epoch";
        plot.Axes.Left.Label.Text = "training cross-entropy";
        plot.ShowLegend();
        plot.Title(title);
        plot.SavePng(path, 900, 500);
    }

    /// <summary>A bar, step, loss and throughput: rewritten in place on a terminal; a plain line every tenth of the run when redirected.</summary>
    internal static void Progress(TrainProgress p, int total)
    {
        const int width = 30;
        int filled = (int)((long)p.Step * width / Math.Max(total, 1));
        string eta = p.StepsPerSecond > 0 && p.Step < total ? $"  about {ProgressReporter.Format(TimeSpan.FromSeconds((total - p.Step) / p.StepsPerSecond))} left" : "";
        string line = $"[{new string('#', filled)}{new string('.', width - filled)}] step {p.Step}/{total}  loss {p.Loss:G5}  {p.StepsPerSecond:0} steps/s{eta}";
        if (!Console.IsOutputRedirected)
            Console.Write("\r" + line + "   ");
        else if (p.Step == total || p.Step % Math.Max(1, total / 10) == 0)
            Console.WriteLine(line);
    }

    internal static void PlotLoss(float[] losses, string path, string title)
    {
        var plot = new ScottPlot.Plot();
        var xs = Enumerable.Range(1, losses.Length).Select(i => (double)i).ToArray();
        var ys = losses.Select(l => Math.Log10(Math.Max(l, 1e-12))).ToArray();
        plot.Add.ScatterLine(xs, ys).LineWidth = 2;
        plot.Axes.Bottom.Label.Text = "step";
        plot.Axes.Left.Label.Text = "training loss (log10)";
        plot.Title(title);
        plot.SavePng(path, 900, 500);
    }
}

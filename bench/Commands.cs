using System.CommandLine;

namespace GpuNet.Bench;

/// <summary>
/// The <c>gpunet</c> command line (System.CommandLine): one command per verb with its options typed and validated, help
/// per verb (<c>gpunet VERB --help</c>), shell completion (<c>dotnet-suggest</c>), and exit codes 0 (done), 1 (a check or
/// comparison failed, or the verb itself failed), 2 (bad command line, a path that cannot be read or written, a file that is
/// not what the verb takes, or an error GpuNet reported about its input). Every error is one line on standard error; no
/// stack trace unless GPUNET_DEBUG=1.
/// </summary>
public static class GpuNetCli
{
    private const string DeviceHelp = "device: auto, cpu (host code), cpu-sim (the GPU kernels on ILGPU's simulated GPU), cuda, cuda:N, opencl, opencl:N (default: $GPUNET_DEVICE, else auto: the best GPU, else cpu)";

    private static Option<string> Text(string name, string description, string? helpName = null) =>
        new("--" + name) { Description = description, HelpName = helpName };

    private static Option<string[]> List(string name, string description, string helpName) =>
        new("--" + name) { Description = description, HelpName = helpName, AllowMultipleArgumentsPerToken = true, Arity = ArgumentArity.OneOrMore };

    /// <summary>The option's typed value inside a validator; default when the text did not parse (the parser reports that itself).</summary>
    private static T? Parsed<T>(System.CommandLine.Parsing.OptionResult r)
    {
        try
        {
            return r.GetValueOrDefault<T>();
        }
        catch (InvalidOperationException)
        {
            return default;
        }
    }

    private static Option<int?> Int(string name, string description, int min)
    {
        var option = new Option<int?>("--" + name) { Description = description, HelpName = "N" };
        option.Validators.Add(r =>
        {
            if (Parsed<int?>(r) is int v && v < min)
                r.AddError($"--{name} takes an integer ≥ {min}, got {v}");
        });
        return option;
    }

    /// <summary>A number option: positive, or (<paramref name="positive"/> false) at least 0.</summary>
    private static Option<float?> Number(string name, string description, bool positive)
    {
        var option = new Option<float?>("--" + name) { Description = description, HelpName = "X" };
        option.Validators.Add(r =>
        {
            if (Parsed<float?>(r) is float v && (positive ? !(v > 0) : !(v >= 0) || float.IsInfinity(v)))
                r.AddError($"--{name} takes {(positive ? "a positive number" : "a number ≥ 0")}, got {v}");
        });
        return option;
    }

    private static Option<string> Device() => Text("device", DeviceHelp, "NAME");

    private static Option<bool> Flag(string name, string description) => new("--" + name) { Description = description };

    private static Option<ulong?> Seed(string description) => new("--seed") { Description = description, HelpName = "N" };

    private static Command Verb(string name, string description, Func<Cli, int> handler, params Symbol[] symbols)
    {
        var command = new Command(name, description);
        foreach (var s in symbols)
        {
            if (s is Option o) command.Add(o);
            else if (s is Argument a) command.Add(a);
            else if (s is Command c) command.Add(c);
        }
        command.SetAction(r =>
        {
            var cli = new Cli(r);
            return Guard(cli.Verb, () => handler(cli));
        });
        return command;
    }

    private static Command Group(string name, string description, params Command[] subcommands)
    {
        var command = new Command(name, description);
        foreach (var c in subcommands)
            command.Add(c);
        return command;
    }

    /// <summary>Runs verb <paramref name="verb"/>'s handler: a usage error, a GpuNet error about the input, an unreadable or
    /// unwritable path or a value a library refused is one line and exit 2; anything else one line and exit 1 (the stack trace
    /// only with GPUNET_DEBUG=1).</summary>
    public static int Guard(string verb, Func<int> handler)
    {
        try
        {
            return handler();
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine($"see: gpunet {verb} --help");
            return 2;
        }
        catch (GpuNetException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or System.Text.Json.JsonException)
        {
            // A path that cannot be read or written, a value a library refused: what the user gave was wrong.
            // GpuNet's own messages start with the op ("onnx: no file ..."); .NET's do not ("Could not find file ...").
            bool named = System.Text.RegularExpressions.Regex.IsMatch(e.Message, @"^[\w ]+: ");
            Console.Error.WriteLine(named ? $"error: {e.Message}" : $"error: {verb}: {e.Message}");
            return 2;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable(DebugVariable) != "1")
        {
            Console.Error.WriteLine($"error: {verb} failed: {e.GetType().Name}: {e.Message} (set {DebugVariable}=1 for the stack trace)");
            return 1;
        }
    }

    /// <summary>Set to 1, an unexpected failure prints its stack trace (the runtime's own report) instead of one line.</summary>
    public const string DebugVariable = "GPUNET_DEBUG";

    /// <summary>The root command with every verb.</summary>
    public static RootCommand Build()
    {
        var root = new RootCommand("GpuNet: check, time and run GpuNet's kernels and models on a GPU or the CPU; train the seed models; import ONNX models.");

        root.Add(Verb("devices", "List the devices GpuNet can open.", _ => DevicesVerb.Run()));

        root.Add(Verb("check", "Run every registered kernel (forward and backward) against its double-precision CPU reference on one device; print a table; exit 1 on any failure.",
            CheckVerb.Run, Device(), List("kernel", "only these kernels (repeat or comma-separate)", "NAME"), Text("json", "also write the results as JSON", "FILE"),
            Seed("input seed (default: $GPUNET_SEED, else a new one each run, printed so a failure can be replayed)")));

        var preset = Text("preset", "problem sizes: small, cpu, medium, large (default: cpu on the fast CPU device, else small)", "NAME");
        preset.AcceptOnlyFromAmong("small", "cpu", "medium", "large");
        root.Add(Verb("run", "Time every kernel on one device (device-side time), beside the measured bandwidth and FP32 roofs and the best peer present (cuBLAS, PyTorch, ONNX Runtime, TensorPrimitives); or, with --onnx, whole ONNX models beside ONNX Runtime.",
            RunVerb.Run, Device(), List("kernel", "only these kernels", "NAME"), preset, Text("shape", "only cases whose shape contains this text", "TEXT"),
            Int("runs", "timed runs per case (default 20, after at least 30 ms of untimed runs)", 1), Seed("input seed (default 42)"),
            Text("json", "write the results as JSON (bench/schema/results.schema.json)", "FILE"), Text("csv", "write the results as CSV", "FILE"),
            Text("md", "write the results as a Markdown table", "FILE"), Text("plot", "draw the roofline as a PNG", "FILE.png"),
            List("onnx", "time these ONNX models (files or directories holding model.onnx) end to end beside ONNX Runtime", "MODEL"),
            Flag("no-optimize", "with --onnx: run the graph as the file has it (no batch-norm folding, fusion or memory arena), to see what the optimizer gains")));

        root.Add(Verb("compare", "Ratio per kernel and shape of two result files (B/A).", CompareVerb.Run,
            new Argument<string>("A") { Description = "the first results JSON" }, new Argument<string>("B") { Description = "the second results JSON" }));

        root.Add(Verb("bdn", "BenchmarkDotNet suites (statistically careful host timings), e.g. gpunet bdn '*MatMul*'.", BdnVerb.Run,
            new Argument<string[]>("FILTER") { Description = "BenchmarkDotNet filters (default: every suite)", Arity = ArgumentArity.ZeroOrMore }));

        root.Add(Verb("models", "Run every seed model's golden case (PyTorch fixtures): a table with the error and ms per forward.", ModelsVerb.Run,
            Device(), Text("json", "also write the results as JSON", "FILE")));

        root.Add(Verb("generate", "Continue a prompt with a GPT: token ids with the fixture GPT (--prompt-ids), or text with weights written by 'train gpt' (--weights, --prompt). Prints prompt | continuation, tokens/s and the sampling settings.",
            GenerateVerb.Run, Device(), List("prompt-ids", "prompt token ids for the fixture GPT, e.g. 1,2,3", "IDS"),
            Text("weights", "a gpt.safetensors written by 'train gpt'", "FILE"), Text("prompt", "prompt text (with --weights)", "TEXT"),
            Int("max-new", "tokens to generate (default: 20 ids, 200 characters)", 0), Number("temperature", "sampling temperature; 0 = greedy (default: 1 for ids, 0.8 for text)", false),
            Int("top-k", "sample among the k most likely (default 0: all)", 0), Number("top-p", "nucleus sampling mass (default 1: all)", true), Int("seed", "sampling seed (default 0)", 0)));

        Symbol[] Common() => new Symbol[] { Device(), Int("steps", "optimizer steps (default: 2000 dnn, 600 gpt)", 1), Number("lr", "learning rate (default: 0.001 dnn, 0.003 gpt)", true),
            Int("seed", "initialization and data seed (default 0)", 0), Text("out", "directory for the weights and the loss curve (default: .)", "DIR") };
        root.Add(Group("train", "Train a seed model with a progress bar; writes the weights (safetensors) and the loss curve (PNG).",
            Verb("dnn", "The seed's MLP fitting y = 3x² + 5 with Adam and MSE.", c => TrainVerb.Run("dnn", c), Common()),
            Verb("gpt", "A character-level GPT on a text (default: the bundled Shakespeare) with AdamW and cross-entropy; then continues a prompt.", c => TrainVerb.Run("gpt", c),
                Common().Concat(new Symbol[]
                {
                    Text("text", "training text file (default: the bundled 300 KB of Shakespeare)", "FILE"), Int("batch", "sequences per step (default 16)", 1),
                    Int("context", "context length (default 64)", 2), Int("dim", "model width (default 64)", 1), Int("heads", "attention heads (default 4)", 1),
                    Int("layers", "transformer blocks (default 2)", 1), Text("prompt", "prompt to continue after training (default ROMEO:)", "TEXT"),
                    Int("chars", "characters to generate after training (default 200)", 0),
                }).ToArray()),
            Verb("cnn", "The seed CNN (or --model resnet) on Fashion-MNIST with Adam and cross-entropy: test accuracy after each epoch; writes cnn.safetensors and cnn-loss.png.",
                c => TrainVerb.Run("cnn", c), new Symbol[]
                {
                    Device(), Number("lr", "learning rate (default 0.001)", true), Int("seed", "initialization and shuffle seed (default 0)", 0),
                    Text("out", "directory for the weights and the curve (default: .)", "DIR"), Int("epochs", "passes over the training set (default 2)", 0),
                    Int("batch", "images per step (default 64)", 1), Text("model", "cnn (default) or resnet", "NAME"),
                    Text("data", "directory of the four IDX files (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist)", "DIR"),
                    Int("limit", "use only the first N images of each split (quick runs)", 1),
                }),
            Verb("vae", "A convolutional VAE on Fashion-MNIST (negative ELBO: binary cross-entropy + KL) with Adam; writes vae.safetensors, vae-loss.png, " +
                "vae-samples.png, vae-reconstructions.png and vae-metrics.json with the Fréchet distance of 5,000 samples to the test set (features of the train-cnn classifier).",
                GenerativeVerb.TrainVae, Generative("0.001", 10, 128, "latent dimension (default 16)", "channels of the first convolution (default 32)")),
            Verb("gan", "DCGAN on Fashion-MNIST: the discriminator's step on real and (detached) generated batches, then the generator's through the frozen " +
                "discriminator (non-saturating loss); writes gan.safetensors, gan-discriminator.safetensors, gan-loss.png, gan-samples.png and gan-metrics.json (Fréchet distance as train vae).",
                GenerativeVerb.TrainGan, Generative("0.0002, both networks", 8, 64, "code dimension (default 64)", "channels at 14×14 (default 32)")),
            Verb("vqvae", "VQ-VAE on Fashion-MNIST: 7×7 maps of codes from a learned codebook, the straight-through gradient to the encoder, codebook and " +
                "commitment losses (or --ema codebook updates); writes vqvae.safetensors, vqvae-loss.png, vqvae-samples.png (test images over their reconstructions) " +
                "and vqvae-metrics.json (code perplexity; Fréchet distance of test-set reconstructions). Its prior: train pixelcnn.",
                GenerativeVerb.TrainVqVae, Generative("0.001", 5, 128, "dimension of each code (default 16)", "channels at 14×14 (default 32)").Concat(new Symbol[]
                {
                    Int("codes", "codebook size K (default 128)", 2), Number("beta", "weight β of the commitment loss (default 0.25)", false),
                    Number("ema", "EMA decay of the codebook updates (default 0.99); 0: the codebook loss instead", false),
                }).ToArray()),
            Verb("pixelcnn", "A PixelCNN prior (7×7 mask A, 3×3 mask B layers) fitted to the code maps of a VQ-VAE from 'train vqvae'; samples maps position by " +
                "position and decodes them; writes pixelcnn.safetensors, pixelcnn-loss.png, pixelcnn-samples.png and pixelcnn-metrics.json (Fréchet distance as train vae).",
                GenerativeVerb.TrainPixelCnn, Generative("0.001", 3, 128, "code embedding width (default 32)", "not used by this model").Concat(new Symbol[]
                {
                    Text("vqvae", "the vqvae.safetensors whose codes to model (default OUT/vqvae.safetensors)", "FILE"),
                    Int("hidden", "channels of the masked convolutions (default 64)", 1), Int("layers", "3×3 type-B layers (default 4)", 0),
                    Number("temperature", "sampling temperature of the codes (default 1)", true),
                }).ToArray()),
            Verb("ddpm", "DDPM on Fashion-MNIST: a UNet with a timestep embedding trained on ε-MSE at random timesteps; writes ddpm.safetensors (the averaged weights), ddpm-loss.png, " +
                "ddpm-samples.png (DDPM's reverse loop) and ddpm-metrics.json (Fréchet distance of DDIM samples, as train vae); --cond trains it class-conditioned with classifier-free guidance.",
                GenerativeVerb.TrainDdpm, Diffusion("0.001", 2, "channels at 28×28 (default 16)").Append(Flag("cond", "class-conditional with classifier-free guidance")).ToArray()),
            Verb("dit", "DiT on Fashion-MNIST: patches, adaLN-Zero conditioning on the timestep and class (classifier-free guidance), in the DDPM loop of train ddpm; " +
                "writes dit.safetensors, dit-loss.png, dit-samples.png (a class per row) and dit-metrics.json (Fréchet distance and class accuracy).",
                GenerativeVerb.TrainDit, Diffusion("0.0005", 4, "token width (default 96)").Concat(new Symbol[]
                {
                    Int("patch", "patch side (default 4: 49 tokens)", 1), Int("heads", "attention heads (default 4)", 1), Int("layers", "DiT blocks (default 4)", 1),
                }).ToArray())));

        // The options of the diffusion trainers.
        IEnumerable<Symbol> Diffusion(string lr, int epochs, string width) => Generative(lr, epochs, 128, "not used by this model", width).Concat(new Symbol[]
        {
            Text("schedule", "linear (1e-4 to 0.02, scaled by 1000/T) or cosine (default linear)", "NAME"), Int("timesteps", "diffusion steps T (default 1000)", 2),
            Int("sample-steps", "DDIM steps of the Fréchet distance's samples (default 20)", 1),
            Number("guidance", "guidance scale w of conditional sampling: (1 + w)·ε(x, c) − w·ε(x, ∅) (default 2)", false),
            Number("drop-class", "probability a training image's class is dropped when conditional (default 0.1)", false),
            Number("ema", "decay of the weights' moving average that samples are drawn from (default 0.999; 0: off)", false),
        });

        // The options of the generative trainers, with each one's defaults in the help.
        Symbol[] Generative(string lr, int epochs, int batch, string latent, string width) => new Symbol[]
        {
            Device(), Number("lr", $"learning rate (default {lr})", true), Int("seed", "initialization, shuffle and noise seed (default 0)", 0),
            Text("out", "directory for the outputs (default: .)", "DIR"), Int("epochs", $"passes over the training set (default {epochs})", 0),
            Int("batch", $"images per step (default {batch})", 1), Int("latent", latent, 1), Int("width", width, 1),
            Int("fd-samples", "generated images for the Fréchet distance (default 5000)", 2),
            Text("classifier", "cnn.safetensors from 'train cnn' for the Fréchet distance's features (default: OUT/cnn.safetensors, trained for one epoch if missing)", "FILE"),
            Text("data", "directory of the four IDX files (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist)", "DIR"),
            Int("limit", "use only the first N images of each split (quick runs)", 2),
        };

        root.Add(Verb("sample", "Draw new images from weights a generative trainer wrote (train vae, gan, pixelcnn, ddpm): an 8-column grid PNG.", GenerativeVerb.Sample,
            Device(), Text("weights", "the vae, gan, pixelcnn or ddpm .safetensors a trainer wrote", "FILE"), Int("count", "images (default 64)", 1),
            Text("vqvae", "the VQ-VAE of a pixelcnn.safetensors (default: the path in its metadata)", "FILE"),
            Int("seed", "sampling seed (default 0)", 0), Text("out", "the PNG to write (default samples.png)", "FILE")));

        root.Add(Group("onnx", "Import and run ONNX models.",
            Verb("test", "Run ONNX backend-test cases (model.onnx + test_data_set_N/*.pb; a directory of cases works too): one row per case, pass / FAIL / unsupported (why).",
                OnnxVerb.Test, new Argument<string[]>("DIR") { Description = "test case directories, or directories of them", Arity = ArgumentArity.OneOrMore },
                Device(), Text("json", "also write the results as JSON", "FILE"), Number("rtol", "relative tolerance (default 1e-3)", true), Number("atol", "absolute tolerance (default 1e-5)", true)),
            Verb("info", "Opset, inputs, outputs, an op histogram and every unsupported node.", OnnxVerb.Info,
                new Argument<string[]>("MODEL") { Description = "model.onnx files", Arity = ArgumentArity.OneOrMore }),
            Verb("run", "Run a model (random data for inputs not given): output shapes and values, times, memory, time per op.", OnnxVerb.RunModel,
                new Argument<string>("MODEL") { Description = "a model.onnx file" }, Device(), List("input", "an input from a TensorProto file, NAME=FILE.pb", "NAME=FILE"),
                Int("runs", "timed runs (default 10)", 1), Int("seed", "seed of the random inputs (default 0)", 0),
                Int("nodes", "slowest nodes to list, by their median time (default 10)", 0))));

        root.Add(Verb("ptx", "Compile every kernel variant to PTX offline (no GPU needed) and summarize what the compiler made: vector loads, barriers, shuffles, local memory.",
            PtxVerb.Run, Text("arch", "target architecture (default sm_90)", "SM"), Text("out", "write DIR/<kernel>_<variant>.ptx", "DIR"), List("kernel", "only these kernels", "NAME")));
        return root;
    }

    /// <summary>Parses and runs a command line; returns the exit code. Parse errors print the error and the verb's help hint (exit 2).</summary>
    public static int Invoke(string[] args)
    {
        var root = Build();
        if (args.Length == 0)
        {
            root.Parse(new[] { "--help" }).Invoke();
            return 2;
        }
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (var e in result.Errors)
                Console.Error.WriteLine($"error: {e.Message}");
            var verb = new Cli(result).Verb;
            Console.Error.WriteLine($"see: gpunet {(verb.Length > 0 ? verb + " " : "")}--help");
            return 2;
        }
        return result.Invoke();
    }
}

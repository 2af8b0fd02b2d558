using System.Diagnostics;
using GpuNet.Layers;

namespace GpuNet.Bench;

/// <summary>
/// Whole training steps of the seed models (forward, the loss — cross-entropy, or `train vae`'s negative ELBO —, backward, Adam
/// step, zero_grad) beside PyTorch on the same
/// model, batch and machine: PyTorch runs in a child process (bench/peers/torch_train_step.py, Debian's python3-torch) that
/// performs one step per request, so the runner interleaves its steps with GpuNet's exactly as it interleaves in-process peers;
/// the pipe round trip (tens of microseconds) is inside PyTorch's time, against steps of tens of milliseconds. The report's
/// GFLOP/s column divided by the FLOPs per image gives images/s.
/// </summary>
public static class TrainingStepBench
{
    /// <summary>The python interpreter the peer runs under (Debian's, where python3-torch installs).</summary>
    private const string Python = "/usr/bin/python3";

    /// <summary>Forward FLOPs of one 28×28 image through <see cref="ModelZoo.ImageCnn"/>: the three convolutions and two linears.</summary>
    private static double ImageCnnForwardFlops =>
        2.0 * 28 * 28 * 32 * 1 * 9 + 2.0 * 14 * 14 * 64 * 32 * 9 + 2.0 * 14 * 14 * 64 * 64 * 9 + 2.0 * 3136 * 128 + 2.0 * 128 * 10;

    /// <summary>Parameters of <see cref="ModelZoo.ImageCnn"/>: three convolutions with biases, three batch norms, two linears.</summary>
    private const int ImageCnnParameters = (32 * 9 + 32) + (64 * 32 * 9 + 64) + (64 * 64 * 9 + 64) + 2 * (32 + 64 + 64) + (3136 * 128 + 128) + (128 * 10 + 10);

    /// <summary>The cases: the seed CNN's step at batch 64 (small and cpu presets) and 256 (medium and large), each with its peer.</summary>
    public static IEnumerable<BenchCase> Cases()
    {
        foreach (var (presets, batch) in new[] { (new[] { "small", "cpu" }, 64), (BenchShapes.MediumLarge, 256) })
        {
            string shape = $"image_cnn b{batch} 1x28x28";
            // A step: the forward, the backward's two GEMM-sized passes, and Adam over the parameters (weights, gradients and the
            // two moments read, three written: 7 passes of 4 bytes).
            double flops = 3 * ImageCnnForwardFlops * batch, bytes = 4.0 * batch * 28 * 28 + 7 * 4.0 * ImageCnnParameters;
            yield return new BenchCase("cnn_train_step", shape, flops, bytes, presets, (d, s) =>
            {
                d.ManualSeed(s);
                var model = ModelZoo.ImageCnn(d);
                var optimizer = new Adam(model.Parameters(), 1e-3f);
                var x = BenchShapes.R(d, s, batch, 1, 28, 28);
                var labels = Enumerable.Range(0, batch).Select(i => (float)(Philox.Word(s, i) % 10)).ToArray();
                var y = Tensor.FromArray(d, labels, batch);
                return new BenchInstance(() =>
                {
                    using var logits = model.Forward(x);
                    using var loss = Ops.CrossEntropy(logits, y);
                    loss.Backward();
                    optimizer.Step();
                    optimizer.ZeroGrad();
                }, x, y, optimizer, model);
            });
            yield return new BenchCase("cnn_train_step", shape, flops, bytes, presets, (d, s) =>
            {
                var peer = TorchStepProcess.Start("image_cnn", batch, (int)(s % int.MaxValue));
                return new BenchInstance(peer.Step, peer) { InputBytes = 4L * batch * 28 * 28 };
            })
            { Implementation = "pytorch", PeerOf = "cnn_train_step", Unavailable = WhyNot };
        }
        foreach (var (presets, batch) in new[] { (new[] { "small", "cpu" }, 128), (BenchShapes.MediumLarge, 512) })
        {
            // `train vae`'s step: forward through encoder and decoder, the negative ELBO, backward, Adam.
            string shape = $"vae l16 w32 b{batch} 1x28x28";
            double flops = 3 * VaeForwardFlops * batch, bytes = 4.0 * batch * 28 * 28 + 7 * 4.0 * VaeParameters;
            yield return new BenchCase("vae_train_step", shape, flops, bytes, presets, (d, s) =>
            {
                d.ManualSeed(s);
                var model = new Vae(d, 16, 28, 32);
                var optimizer = new Adam(model.Parameters(), 1e-3f);
                Tensor x;
                using (var r = BenchShapes.R(d, s, batch, 1, 28, 28))
                    x = Ops.Sigmoid(r);   // images in [0, 1], the VAE's target
                ulong step = 0;
                return new BenchInstance(() =>
                {
                    using var scope = d.Scope();
                    var eps = Ops.RandomNormal(d, new[] { batch, 16 }, Seeds.Derive(s, step++));
                    var (logits, mu, logvar) = model.ForwardLogits(x, eps);
                    var (loss, _, _) = Vae.NegativeElbo(logits, x, mu, logvar);
                    loss.Backward();
                    optimizer.Step();
                    optimizer.ZeroGrad();
                }, x, optimizer, model);
            });
            yield return new BenchCase("vae_train_step", shape, flops, bytes, presets, (d, s) =>
            {
                var peer = TorchStepProcess.Start("vae", batch, (int)(s % int.MaxValue));
                return new BenchInstance(peer.Step, peer) { InputBytes = 4L * batch * 28 * 28 };
            })
            { Implementation = "pytorch", PeerOf = "vae_train_step", Unavailable = WhyNot };
        }
        foreach (var c in GanCases())
            yield return c;
        foreach (var c in GenerativeCases())
            yield return c;
    }

    /// <summary>
    /// The steps of `train vqvae` (with its host-side EMA codebook and restarts), `train pixelcnn` (on random code maps),
    /// `train ddpm` and `train dit` (random timesteps, the weights' moving average; DiT's classes dropped with p 0.1), each at its
    /// trainer's default sizes and batch 128 (512 on the medium and large presets) beside PyTorch's same step.
    /// </summary>
    private static IEnumerable<BenchCase> GenerativeCases()
    {
        foreach (var (presets, batch) in new[] { (new[] { "small", "cpu" }, 128), (BenchShapes.MediumLarge, 512) })
        {
            foreach (var (kernel, model, shape, forward, parameters) in new[]
            {
                ("vqvae_train_step", "vqvae", $"vqvae k128 d16 w32 b{batch} 1x28x28", VqVaeForwardFlops, 79_057),
                ("pixelcnn_train_step", "pixelcnn", $"code_prior k128 e32 h64 l4 b{batch} 7x7", CodePriorForwardFlops, 260_544),
                ("ddpm_train_step", "ddpm", $"diffusion_unet w16 b{batch} 1x28x28", DiffusionUNetForwardFlops, 114_753),
                ("dit_train_step", "dit", $"dit adaln d96 l4 h4 p4 b{batch} 1x28x28", DiTForwardFlops, 718_576),
            })
            {
                double flops = 3 * forward * batch, bytes = 4.0 * batch * 28 * 28 + 7 * 4.0 * parameters;
                yield return new BenchCase(kernel, shape, flops, bytes, presets, (d, s) => GenerativeStep(model, d, s, batch));
                yield return new BenchCase(kernel, shape, flops, bytes, presets, (d, s) =>
                {
                    var peer = TorchStepProcess.Start(model, batch, (int)(s % int.MaxValue));
                    return new BenchInstance(peer.Step, peer) { InputBytes = 4L * batch * 28 * 28 };
                })
                { Implementation = "pytorch", PeerOf = kernel, Unavailable = WhyNot };
            }
        }
    }

    /// <summary>GpuNet's step of one generative trainer, built as its verb builds the model.</summary>
    private static BenchInstance GenerativeStep(string model, Device d, ulong s, int batch)
    {
        d.ManualSeed(s);
        var rng = new Random((int)(s % int.MaxValue));
        int step = 0;
        switch (model)
        {
            case "vqvae":
            {
                var vqvae = new VqVae(d, 128, 16, 32);
                var trainer = new VqVaeTrainer(vqvae, emaDecay: 0.99f, seed: s);
                var x = Ops.RandomUniform(d, new[] { batch, 1, 28, 28 }, s);
                return new BenchInstance(() => trainer.Step(x, step++), x, trainer, vqvae);
            }
            case "pixelcnn":
            {
                var prior = new CodePrior(d, 128);
                var optimizer = new Adam(prior.Parameters(), 1e-3f);
                var codes = Tensor.FromArray(d, Enumerable.Range(0, batch * 49).Select(_ => (float)rng.Next(128)).ToArray(), batch, 7, 7);
                return new BenchInstance(() =>
                {
                    using var loss = prior.Loss(codes);
                    loss.Backward();
                    optimizer.Step();
                    optimizer.ZeroGrad();
                }, codes, optimizer, prior);
            }
            default:
            {
                bool dit = model == "dit";
                Module network = dit
                    ? new DiT(d, 1, 28, 4, 96, 4, 4, 10, frequencyDim: 128, conditioning: DiTConditioning.AdaLnZero, nullClass: true)
                    : new DiffusionUNet(d, 16);
                var optimizer = new Adam(network.Parameters(), dit ? 5e-4f : 1e-3f);
                var average = new WeightAverage(network, 0.999f);
                var ddpm = new Ddpm(1000);
                var x = Ops.RandomUniform(d, new[] { batch, 1, 28, 28 }, s);
                var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(10)).ToArray();
                return new BenchInstance(() =>
                {
                    var timesteps = Enumerable.Range(0, batch).Select(_ => rng.Next(1000)).ToArray();
                    var dropped = dit ? labels.Select(c => rng.NextDouble() < 0.1 ? 10 : c).ToArray() : null;
                    DiffusionTraining.Step((IDiffusionModel)network, ddpm, optimizer, x, timesteps, dropped, Seeds.Derive(s, (ulong)step++), average);
                }, x, optimizer, average, network);
            }
        }
    }

    /// <summary>Forward FLOPs of one image through `train vqvae`'s model: encoder (4×4 stride-2 convolutions to 32 and 64 channels,
    /// 1×1 to 16), the nearest-code distances to 128 codes, decoder (3×3 to 64 channels, two 4×4 transposed convolutions).</summary>
    private static double VqVaeForwardFlops =>
        2.0 * 196 * 32 * 16 + 2.0 * 49 * 64 * 32 * 16 + 2.0 * 49 * 16 * 64 + 2.0 * 49 * 128 * 16 + 2.0 * 49 * 64 * 16 * 9 + 2.0 * 49 * 64 * 32 * 16 + 2.0 * 196 * 32 * 16;

    /// <summary>Forward FLOPs of one 7×7 code map through `train pixelcnn`'s prior (masked taps computed as the dense convolution
    /// does): the 7×7 convolution 32 → 64, four 3×3 of 64, the 1×1 to 128 logits.</summary>
    private static double CodePriorForwardFlops => 2.0 * 49 * 64 * 32 * 49 + 4 * 2.0 * 49 * 64 * 64 * 9 + 2.0 * 49 * 128 * 64;

    /// <summary>Forward FLOPs of one image through `train ddpm`'s UNet (width 16): its 3×3 and 1×1 convolutions at 28, 14 and 7 pixels
    /// (GroupNorm, SiLU and the time MLP are a few percent more and not counted).</summary>
    private static double DiffusionUNetForwardFlops
    {
        get
        {
            static double Conv(int pixels, int cin, int cout, int taps) => 2.0 * pixels * cin * cout * taps;
            return Conv(784, 1, 16, 9) + 2 * Conv(784, 16, 16, 9) + Conv(196, 16, 16, 9)
                + Conv(196, 16, 32, 9) + Conv(196, 32, 32, 9) + Conv(196, 16, 32, 1) + Conv(49, 32, 32, 9) + 2 * Conv(49, 32, 32, 9)
                + Conv(196, 32, 32, 9) + Conv(196, 64, 32, 9) + Conv(196, 32, 32, 9) + Conv(196, 64, 32, 1)
                + Conv(784, 32, 16, 9) + Conv(784, 32, 16, 9) + Conv(784, 16, 16, 9) + Conv(784, 32, 16, 1) + Conv(784, 16, 1, 9);
        }
    }

    /// <summary>Forward FLOPs of one image through `train dit`'s DiT (width 96, 4 blocks, 49 tokens): per block the QKV, scores,
    /// weighted values, output projection, the 4× MLP and the adaLN map; the patch embedding and the final layer.</summary>
    private static double DiTForwardFlops
    {
        get
        {
            const double t = 49, d = 96;
            double block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * 4 * d + 2 * d * 6 * d;
            return 2 * t * d * 16 + 4 * block + 2 * d * 2 * d + 2 * t * d * 16;
        }
    }

    /// <summary>`train gan`'s step (latent 64, width 32) at batch 64, and 256 on the medium and large presets, beside PyTorch's.</summary>
    private static IEnumerable<BenchCase> GanCases()
    {
        foreach (var (presets, batch) in new[] { (new[] { "small", "cpu" }, 64), (BenchShapes.MediumLarge, 256) })
        {
            string shape = $"dcgan l64 w32 b{batch} 1x28x28";
            // Per image: the generator forward once and backward once, the discriminator forward three times and backward twice.
            double flops = batch * (3 * DcganGeneratorFlops + 7 * DcganDiscriminatorFlops), bytes = 4.0 * batch * 28 * 28 + 7 * 4.0 * DcganParameters;
            yield return new BenchCase("gan_train_step", shape, flops, bytes, presets, (d, s) =>
            {
                d.ManualSeed(s);
                var g = new DcganGenerator(d, 64, 32);
                var disc = new DcganDiscriminator(d, 32);
                var optimizerG = new Adam(g.Parameters(), 2e-4f, beta1: 0.5f);
                var optimizerD = new Adam(disc.Parameters(), 2e-4f, beta1: 0.5f);
                var x = Ops.RandomUniform(d, new[] { batch, 1, 28, 28 }, s);
                ulong step = 0;
                return new BenchInstance(() => GanTraining.Step(g, disc, optimizerG, optimizerD, x, Seeds.Derive(s, step++)), x, optimizerG, optimizerD, g, disc);
            });
            yield return new BenchCase("gan_train_step", shape, flops, bytes, presets, (d, s) =>
            {
                var peer = TorchStepProcess.Start("gan", batch, (int)(s % int.MaxValue));
                return new BenchInstance(peer.Step, peer) { InputBytes = 4L * batch * 28 * 28 };
            })
            { Implementation = "pytorch", PeerOf = "gan_train_step", Unavailable = WhyNot };
        }
    }

    /// <summary>Forward FLOPs of one code through `train gan`'s generator: the projection and two transposed convolutions.</summary>
    private static double DcganGeneratorFlops => 2.0 * 64 * 3136 + 2.0 * 7 * 7 * 64 * 32 * 16 + 2.0 * 14 * 14 * 32 * 16;

    /// <summary>Forward FLOPs of one image through its discriminator: two convolutions (4×4, stride 2) and the logit.</summary>
    private static double DcganDiscriminatorFlops => 2.0 * 14 * 14 * 32 * 16 + 2.0 * 7 * 7 * 64 * 32 * 16 + 2.0 * 3136;

    /// <summary>Parameters of both networks (237,345 + 36,641).</summary>
    private const int DcganParameters = 237_345 + 36_641;

    /// <summary>Forward FLOPs of one image through `train vae`'s <see cref="Vae"/> (latent 16, width 32): two convolutions, the
    /// μ and log σ² heads, the decoder's input layer and two transposed convolutions (input pixels × C_in × C_out × 16 taps).</summary>
    private static double VaeForwardFlops =>
        2.0 * 14 * 14 * 32 * 9 + 2.0 * 7 * 7 * 64 * 32 * 9 + 2 * 2.0 * 3136 * 16 + 2.0 * 16 * 3136 + 2.0 * 7 * 7 * 64 * 32 * 16 + 2.0 * 14 * 14 * 32 * 16;

    /// <summary>Parameters of that VAE (205,825).</summary>
    private const int VaeParameters = (32 * 9 + 32) + (64 * 32 * 9 + 64) + 2 * (3136 * 16 + 16) + (16 * 3136 + 3136) + (64 * 32 * 16 + 32) + (32 * 16 + 1);

    private static string? _whyNot;
    private static bool _probed;

    /// <summary>Why the PyTorch peer cannot run here (no python3, no torch, not the host CPU), or null; probed once.</summary>
    private static string? WhyNot(Device device)
    {
        if (!device.IsHostCpu)
            return "the PyTorch training-step peer runs beside the fast CPU device (--device cpu)";
        if (!_probed)
        {
            _probed = true;
            try
            {
                using var probe = TorchStepProcess.Start("image_cnn", 1, 0);
            }
            catch (Exception e)
            {
                _whyNot = $"PyTorch did not start ({e.Message}); install Debian's python3-torch";
            }
        }
        return _whyNot;
    }

    /// <summary>A PyTorch child process serving training steps (see bench/peers/torch_train_step.py).</summary>
    private sealed class TorchStepProcess : IDisposable
    {
        private readonly Process _process;

        private TorchStepProcess(Process process) => _process = process;

        public static TorchStepProcess Start(string model, int batch, int seed)
        {
            string script = Path.Combine(AppContext.BaseDirectory, "peers", "torch_train_step.py");
            if (!File.Exists(Python) || !File.Exists(script))
                throw new InvalidOperationException($"{(File.Exists(Python) ? script : Python)} is missing");
            var info = new ProcessStartInfo(Python)
            {
                RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            foreach (var a in new[] { script, "--model", model, "--batch", batch.ToString(), "--seed", seed.ToString() })
                info.ArgumentList.Add(a);
            var process = Process.Start(info) ?? throw new InvalidOperationException("python3 did not start");
            string? first = process.StandardOutput.ReadLine();
            if (first != "ready")
            {
                string error = process.StandardError.ReadToEnd();
                process.Kill();
                process.Dispose();
                throw new InvalidOperationException(error.Trim().Split('\n').LastOrDefault() ?? "no answer");
            }
            return new TorchStepProcess(process);
        }

        public void Step()
        {
            _process.StandardInput.WriteLine("step");
            _process.StandardInput.Flush();
            if (_process.StandardOutput.ReadLine() != "ok")
                throw new InvalidOperationException("the PyTorch peer stopped: " + _process.StandardError.ReadToEnd());
        }

        public void Dispose()
        {
            try
            {
                _process.StandardInput.Close();
                if (!_process.WaitForExit(5000))
                    _process.Kill();
            }
            finally
            {
                _process.Dispose();
            }
        }
    }
}

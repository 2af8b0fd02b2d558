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

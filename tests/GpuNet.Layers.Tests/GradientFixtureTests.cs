using GpuNet.Kernels.Checks;
using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>
/// PyTorch golden gradients (make_training_fixtures.py): the fixture model with the fixture's weights, one forward and
/// backward of its loss — every parameter's gradient within rel L2 1e-4 of PyTorch's (float64) — then five Adam steps
/// from the same weights, the loss before each and after the last within 1e-4.
/// </summary>
public sealed class GradientFixtureTests(ITestOutputHelper output)
{
    private static Device Cpu => TestDevices.Cpu;

    /// <summary>The fixture's loss of the model's output against "__target__".</summary>
    private static Tensor Loss(Module model, SafeTensorsFile f)
    {
        using var prediction = Golden(f).Run(model, f);
        using var target = f.ToTensor(model.Device, "__target__");
        if (f.Metadata["loss"] == "mse")
            return Ops.MseLoss(prediction, target);
        if (f.Metadata["loss"] == "elbo")
        {
            // `train vae`'s loss from [logits, μ, log σ²]: the fixture's target is the image.
            int pixels = target.Size(1), latent = int.Parse(f.Metadata["latent"]);
            using var logits = prediction.Slice(1, 0, pixels);
            using var mu = prediction.Slice(1, pixels, latent);
            using var logvar = prediction.Slice(1, pixels + latent, latent);
            var (loss, reconstruction, kl) = Vae.NegativeElbo(logits, target, mu, logvar);
            reconstruction.Dispose();
            kl.Dispose();
            return loss;
        }
        if (f.Metadata["loss"] == "vqvae")
        {
            // `train vqvae`'s loss from [logits, z_e, z_q] (codebook loss, β from the fixture): the target is the image.
            int pixels = target.Size(1), latent = (prediction.Size(1) - pixels) / 2;
            using var logits = prediction.Slice(1, 0, pixels);
            using var encoded = prediction.Slice(1, pixels, latent);
            using var quantized = prediction.Slice(1, pixels + latent, latent);
            var parts = VqVaeTraining.Loss(logits, target, encoded, quantized, float.Parse(f.Metadata["beta"], System.Globalization.CultureInfo.InvariantCulture));
            parts.Reconstruction.Dispose();
            parts.Codebook.Dispose();
            parts.Commitment.Dispose();
            return parts.Total;
        }
        if (f.Metadata["loss"] == "bce_logits")
            return Ops.BinaryCrossEntropyWithLogits(prediction, target);
        if (f.Metadata["loss"] == "code_cross_entropy")
        {
            // Logits [B, K, H, W] against the code maps themselves, per position.
            using var logits = Ops.Permute(prediction, 0, 2, 3, 1).Reshape(-1, prediction.Size(1));
            return Ops.CrossEntropy(logits, target);
        }
        using var rows = prediction.Reshape(-1, prediction.Size(-1));
        using var classes = target.Reshape(-1);
        return Ops.CrossEntropy(rows, classes);
    }

    /// <summary>The golden case a gradient fixture extends: its file name without "_grad" (same builder, same extra inputs).</summary>
    private static GoldenCase Golden(SafeTensorsFile f) =>
        GoldenModels.All.Single(c => c.Name == Path.GetFileNameWithoutExtension(f.Path)[..^"_grad".Length]);

    /// <summary>The golden case's model with the fixture's weights, in training mode; a fixture made in PyTorch's training mode
    /// (metadata mode=train: batch norm on batch statistics) has its dropout layers switched to eval, as the fixture's were.</summary>
    private static Module Build(SafeTensorsFile f, Device? device = null)
    {
        var model = Golden(f).Build(device ?? Cpu, f);
        model.Load(f);
        if (f.Metadata.TryGetValue("mode", out var mode) && mode == "train")
            DropoutOff(model);
        return model;
    }

    private static void DropoutOff(Module module)
    {
        foreach (var (_, child) in module.Children)
            if (child is Dropout)
                child.Eval();
            else
                DropoutOff(child);
    }

    public static IEnumerable<object[]> Names => new[]
        {
            "mlp", "gpt", "lstm", "rnn", "encoder_post_norm", "encoder_pre_norm_padded", "decoder_post_norm", "moe_block",
            // Convolutional models (issue #24): conv, pooling, upsampling and batch norm in training mode.
            "cnn", "vgg", "resnet_basic", "resnet_bottleneck", "pixelcnn", "unet", "unet_bilinear", "vae", "dit", "conformer_block",
            // Generative training (issue #28): `train vae`'s model and loss (summed binary cross-entropy of logits + KL).
            "vae_fashion",
            // `train vqvae`: straight-through latent, codebook and commitment losses (the codebook's gradient from the gather).
            "vqvae_fashion",
            // `train dit`: DiT with adaLN-Zero blocks and final layer.
            "dit_adaln",
            // `train gan`'s generator step through the discriminator, `train ddpm`'s UNets, `train pixelcnn`'s prior.
            "gan_pair", "diffusion_unet_c0", "diffusion_unet_c10", "code_prior",
        }
        .Select(n => new object[] { n + "_grad" });

    /// <summary>Every fixture on every GPU present (skipped without one).</summary>
    public static IEnumerable<object[]> GpuNames => TestDevices.GpuIds.SelectMany(id => Names.Select(n => new object[] { id, n[0] }));

    [Theory]
    [MemberData(nameof(Names))]
    public void GradientsMatchPyTorch(string name) => CheckGradients(name, Cpu);

    /// <summary>
    /// Every fixture on the simulated GPU too: the backward kernels themselves, not only the fast CPU's host code. The
    /// fixtures' kinks are kept clear of float32 rounding (make_training_fixtures.py's kink_margin): unet_bilinear's first
    /// seed had a batch-norm output of 2.6e-7 before a ReLU, which cpu-sim's summation order made −5.1e-7, and that one
    /// flipped element moved every gradient below it by 0.3–6 %.
    /// </summary>
    [Theory]
    [MemberData(nameof(SimulatorNames))]
    public void GradientsMatchPyTorchOnSimulatedGpu(string name) => CheckGradients(name, TestDevices.Simulator);

    /// <summary>The fixtures the simulated GPU runs: all but the unconditional diffusion UNet, whose graph the class-conditional
    /// one contains (the same layers plus the class embedding) — 14 s of CI time that would check no other kernel.</summary>
    public static IEnumerable<object[]> SimulatorNames => Names.Where(n => (string)n[0] != "diffusion_unet_c0_grad");

    [GpuTheory]
    [MemberData(nameof(GpuNames))]
    public void GradientsMatchPyTorchOnGpu(string deviceId, string name) => CheckGradients(name, TestDevices.Get(deviceId));

    [GpuTheory]
    [MemberData(nameof(GpuNames))]
    public void AdamStepsFollowPyTorchOnGpu(string deviceId, string name) => CheckAdamSteps(name, TestDevices.Get(deviceId));

    private void CheckGradients(string name, Device device)
    {
        using var f = Fixtures.Open(name);
        using var model = Build(f, device);
        using (var loss = Loss(model, f))
        {
            // Within 5e-5, or 1e-6 of a loss summed over many terms (the VAE's 1,568 pixels: ~545, float32's sums off by ~6e-5).
            double expectedLoss = f.ReadDoubles("__loss__")[0], gotLoss = loss.ToArray()[0];
            Assert.True(Math.Abs(gotLoss - expectedLoss) <= Math.Max(5e-5, 1e-6 * Math.Abs(expectedLoss)), $"{name}: loss {gotLoss} against PyTorch's {expectedLoss}");
            loss.Backward();
        }
        // Training mode: batch norm's running statistics after that forward (momentum, unbiased variance, counter).
        var parameters = model.Parameters().Select(p => p.Name).ToHashSet();
        foreach (var (buffer, tensor) in model.StateDict().Where(e => !parameters.Contains(e.Name)))
            if (f.Names.Contains("__after__." + buffer))
            {
                var (maxAbs, rel, error) = CheckRunner.Compare(tensor.ToArray(), f.ReadDoubles("__after__." + buffer));
                output.WriteLine($"{buffer} after the forward: max abs {maxAbs:0.##e+0}, rel L2 {rel:0.##e+0}");
                Assert.Null(error);
                Assert.True(rel <= 1e-4, $"{name} {buffer}: rel L2 {rel:0.##e+0}");
            }
        foreach (var (param, tensor) in model.Parameters())
        {
            Assert.NotNull(tensor.Grad);
            var expected = f.ReadDoubles("__grad__." + param);
            var got = tensor.Grad!.ToArray();
            var (maxAbs, rel, error) = CheckRunner.Compare(got, expected);
            output.WriteLine($"{param}: max abs {maxAbs:0.##e+0}, rel L2 {rel:0.##e+0}");
            Assert.Null(error);
            // A gradient that is zero in exact arithmetic (a convolution's bias before batch norm, which subtracts the batch
            // mean) is float rounding on both sides, with no relative error to speak of: it must stay at rounding size.
            double norm = Math.Sqrt(expected.Sum(v => v * v));
            if (norm < 1e-9 * Math.Sqrt(expected.Length))
                Assert.True(got.All(v => Math.Abs(v) < 1e-6), $"{name} {param}: PyTorch's gradient is zero (norm {norm:0.##e+0}); GpuNet's reaches {got.Max(v => Math.Abs(v)):0.##e+0}");
            else
                Assert.True(rel <= 1e-4, $"{name} {param}: rel L2 {rel:0.##e+0}");
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void AdamStepsFollowPyTorch(string name) => CheckAdamSteps(name, Cpu);

    private void CheckAdamSteps(string name, Device device)
    {
        using var f = Fixtures.Open(name);
        var expected = f.ReadDoubles("__adam_losses__");
        using var model = Build(f, device);
        using var optimizer = new Adam(model.Parameters(), 1e-3f);
        var got = new List<float>();
        for (int step = 0; step < expected.Length - 1; step++)
        {
            using var loss = Loss(model, f);
            got.Add(loss.ToArray()[0]);
            loss.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        using (Autograd.NoGrad())
        using (var last = Loss(model, f))
            got.Add(last.ToArray()[0]);
        output.WriteLine($"GpuNet {string.Join(", ", got.Select(v => v.ToString("G7")))}; PyTorch {string.Join(", ", expected.Select(v => v.ToString("G7")))}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-4 * Math.Abs(expected[i]), $"{name} loss {i}: {got[i]} vs PyTorch {expected[i]}");
    }
}

namespace GpuNet.Layers;

/// <summary>One seed model checked against PyTorch: how to build it for a fixture, and how to run the fixture's input through it.</summary>
/// <param name="Name">Fixture name (Fixtures/&lt;name&gt;.safetensors).</param>
/// <param name="Build">Builds the model (sizes from the fixture's metadata where needed).</param>
/// <param name="Run">Runs the fixture's <c>__input__</c> through the model.</param>
public sealed record GoldenCase(string Name, Func<Device, SafeTensorsFile, Module> Build, Func<Module, SafeTensorsFile, Tensor> Run);

/// <summary>
/// Every seed model's golden case: how to build it from its PyTorch fixture and run its input, for the <c>models</c> verb
/// and the golden tests (which compare the output with the fixture's <c>__expected__</c>). Test machinery: it lives in
/// GpuNet.Checks, not in the Layers package.
/// </summary>
public static class GoldenModels
{
    private static int Meta(SafeTensorsFile f, string key) => int.Parse(f.Metadata[key]);

    /// <summary>A VAE's fixture output, [image, μ, log σ²] per row: the reconstruction, or with <paramref name="logits"/> its logits.</summary>
    private static Tensor RunVae(Vae model, SafeTensorsFile f, bool logits)
    {
        using var x = f.ToTensor(model.Device, "__input__");
        using var eps = f.ToTensor(model.Device, "__eps__");
        var (image, mu, logvar) = logits ? model.ForwardLogits(x, eps) : model.Forward(x, eps);
        using (image)
        using (mu)
        using (logvar)
        using (var flat = image.Reshape(image.Size(0), -1))
            return Ops.Concat(new[] { flat, mu, logvar }, 1);
    }

    private static Tensor RunDiffusionUNet(Module m, SafeTensorsFile f)
    {
        var model = (DiffusionUNet)m;
        using var x = f.ToTensor(m.Device, "__input__");
        using var t = f.ToTensor(m.Device, "__timesteps__");
        return model.Forward(x, t, model.Classes > 0 ? Ids(f, "__labels__") : default);
    }

    /// <summary>`train gan`'s two networks as one module whose output is D(G(z)): the generator step's logits.</summary>
    private sealed class GanPair : Layer
    {
        private readonly DcganGenerator _generator;
        private readonly DcganDiscriminator _discriminator;

        public GanPair(Device device, int latent, int width) : base(device)
        {
            _generator = Child("generator", new DcganGenerator(device, latent, width));
            _discriminator = Child("discriminator", new DcganDiscriminator(device, width));
        }

        public override Tensor Forward(Tensor z)
        {
            using var images = _generator.Forward(z);
            return _discriminator.Forward(images);
        }
    }

    private static Tensor RunDit(Module m, SafeTensorsFile f)
    {
        using var x = f.ToTensor(m.Device, "__input__");
        using var t = f.ToTensor(m.Device, "__timesteps__");
        return ((DiT)m).Forward(x, t, Ids(f, "__labels__"));
    }

    /// <summary>`train vqvae`'s forward as the fixture's [logits, z_e, z_q] per row (logits from the straight-through latent).</summary>
    private static Tensor RunVqVae(VqVae model, SafeTensorsFile f)
    {
        using var x = f.ToTensor(model.Device, "__input__");
        var (logits, encoded, quantized, codes) = model.Forward(x);
        codes.Dispose();
        int n = x.Size(0);
        using (logits)
        using (encoded)
        using (quantized)
        using (var a = logits.Reshape(n, -1))
        using (var b = encoded.Reshape(n, -1))
        using (var c = quantized.Reshape(n, -1))
            return Ops.Concat(new[] { a, b, c }, 1);
    }

    /// <summary>A weights file says nothing of dropout: its <c>dropout</c> metadata when present, else none (the fixtures' gradients were taken without it).</summary>
    private static float Dropout(SafeTensorsFile f) => f.Metadata.TryGetValue("dropout", out var p) ? float.Parse(p, System.Globalization.CultureInfo.InvariantCulture) : 0f;

    private static TransformerEncoderLayer Encoder(Device d, SafeTensorsFile f) =>
        new(d, Meta(f, "d"), Meta(f, "h"), Meta(f, "ff"), f.Metadata["activation"], Meta(f, "norm_first") == 1, dropout: Dropout(f));

    private static TransformerDecoderLayer Decoder(Device d, SafeTensorsFile f) =>
        new(d, Meta(f, "d"), Meta(f, "h"), Meta(f, "ff"), f.Metadata["activation"], Meta(f, "norm_first") == 1, dropout: Dropout(f));

    private static Tensor? Optional(Module m, SafeTensorsFile f, string name) => f.Names.Contains(name) ? f.ToTensor(m.Device, name) : null;

    /// <summary>The golden cases, in the order the CLI prints them.</summary>
    public static IReadOnlyList<GoldenCase> All { get; } = new GoldenCase[]
    {
        new("mlp", (d, _) => ModelZoo.Mlp(d), (m, f) => RunLayer(m, f)),
        new("cnn", (d, _) => ModelZoo.CnnClassifier(d), (m, f) => RunLayer(m, f)),
        new("gpt", ModelZoo.Gpt, (m, f) =>
        {
            var shape = f.Shape("__input__");
            var ids = f.ReadFloats("__input__").Select(v => (int)v).ToArray();
            return ((Gpt)m).Forward(ids, shape[0], shape[1]);
        }),
        new("encoder_post_norm", Encoder, RunEncoder),
        new("encoder_pre_norm_padded", Encoder, RunEncoder),
        new("unet", UNetModel, (m, f) => RunLayer(m, f)),
        new("unet_bilinear", UNetModel, (m, f) => RunLayer(m, f)),
        new("lstm", Recurrent, RunRecurrent),
        new("conv_sequence_encoder", (d, f) => new ConvSequenceEncoder(d, Meta(f, "in"), Meta(f, "hidden"), Meta(f, "out"), Meta(f, "max_length")), (m, f) => RunLayer(m, f)),
        new("rnn", Recurrent, RunRecurrent),
        new("vgg", (d, f) => ModelZoo.Vgg(d, Meta(f, "classes")), (m, f) => RunLayer(m, f)),
        new("resnet_basic", ResNetModel, (m, f) => RunLayer(m, f)),
        new("resnet_bottleneck", ResNetModel, (m, f) => RunLayer(m, f)),
        new("seq2seq_transformer", (d, f) => new TransformerModel(d, Meta(f, "src_vocab"), Meta(f, "tgt_vocab"), Meta(f, "d"), Meta(f, "h"), Meta(f, "ff"), Meta(f, "layers"), Meta(f, "max_length")),
            (m, f) =>
            {
                var (src, srcShape) = (Ids(f, "__input__"), f.Shape("__input__"));
                var (tgt, tgtShape) = (Ids(f, "__target__"), f.Shape("__target__"));
                using var padding = f.ToTensor(m.Device, "__padding__");
                return ((TransformerModel)m).Forward(src, srcShape[1], tgt, tgtShape[1], srcShape[0], padding);
            }),
        new("moe_block", (d, f) => new MoeBlock(d, Meta(f, "d"), Meta(f, "h"), Meta(f, "ff"), Meta(f, "experts"), Meta(f, "k")), (m, f) => RunLayer(m, f)),
        new("pixelcnn", (d, f) => ModelZoo.PixelCnn(d, Meta(f, "channels"), Meta(f, "hidden"), Meta(f, "levels"), Meta(f, "layers")), (m, f) => RunLayer(m, f)),
        new("vq_quantizer", (d, f) => new VectorQuantizer(d, Meta(f, "codes"), Meta(f, "dim")), (m, f) => RunLayer(m, f)),
        new("vae", (d, f) => new Vae(d, Meta(f, "latent")), (m, f) => RunVae((Vae)m, f, logits: false)),
        // `train vae`'s model (28×28, the logits instead of the sigmoid image): [logits, μ, log σ²] per row.
        new("vae_fashion", (d, f) => new Vae(d, Meta(f, "latent"), Meta(f, "size"), Meta(f, "width")), (m, f) => RunVae((Vae)m, f, logits: true)),
        // `train vqvae`'s model: [logits, z_e, z_q] per row.
        new("vqvae_fashion", (d, f) => new VqVae(d, Meta(f, "codes"), Meta(f, "dim"), Meta(f, "width")), (m, f) => RunVqVae((VqVae)m, f)),
        new("ddpm_linear", NoiseModel, RunDdpm),
        new("ddpm_cosine", NoiseModel, RunDdpm),
        new("dit", (d, f) => new DiT(d, Meta(f, "channels"), Meta(f, "size"), Meta(f, "patch"), Meta(f, "d"), Meta(f, "h"), Meta(f, "layers"), Meta(f, "classes"), Meta(f, "temb")),
            RunDit),
        // The generator step of `train gan`: D(G(z)) with both networks' gradients.
        new("gan_pair", (d, f) => new GanPair(d, Meta(f, "latent"), Meta(f, "width")), (m, f) => RunLayer(m, f)),
        // `train ddpm`'s UNet, unconditional and class-conditional.
        new("diffusion_unet_c0", (d, f) => new DiffusionUNet(d, Meta(f, "width"), Meta(f, "classes")), RunDiffusionUNet),
        new("diffusion_unet_c10", (d, f) => new DiffusionUNet(d, Meta(f, "width"), Meta(f, "classes")), RunDiffusionUNet),
        // `train pixelcnn`'s prior over code maps.
        new("code_prior", (d, f) => new CodePrior(d, Meta(f, "codes"), Meta(f, "embed"), Meta(f, "hidden"), Meta(f, "layers")),
            (m, f) =>
            {
                using var codes = f.ToTensor(m.Device, "__input__");
                return ((CodePrior)m).Forward(codes);
            }),
        // `train dit`'s DiT: adaLN-Zero blocks and final layer, a "no class" label (the fixture's weights are not zero-started).
        new("dit_adaln", (d, f) => new DiT(d, Meta(f, "channels"), Meta(f, "size"), Meta(f, "patch"), Meta(f, "d"), Meta(f, "h"), Meta(f, "layers"), Meta(f, "classes"),
            Meta(f, "temb"), DiTConditioning.AdaLnZero, nullClass: true), RunDit),
        new("hubert_labels", (d, f) => new HubertLabeler(d, Meta(f, "features"), Meta(f, "d"), Meta(f, "h"), Meta(f, "ff"), Meta(f, "layers"), Meta(f, "clusters")),
            (m, f) => RunLayer(m, f)),
        new("conformer_block", (d, f) => new ConformerBlock(d, Meta(f, "d"), Meta(f, "h"), Meta(f, "ff"), Meta(f, "kernel")), (m, f) => RunLayer(m, f)),
        new("random_projection_quantizer", (d, f) => new RandomProjectionQuantizer(d, Meta(f, "features"), Meta(f, "code_dim"), Meta(f, "codes")),
            (m, f) => RunLayer(m, f)),
        new("conditional_unet", (d, f) => new ConditionalUNet(d, Meta(f, "channels"), Meta(f, "base"), Meta(f, "temb"), Meta(f, "context_dim"), Meta(f, "heads")),
            (m, f) =>
            {
                using var x = f.ToTensor(m.Device, "__input__");
                using var t = f.ToTensor(m.Device, "__timesteps__");
                using var context = f.ToTensor(m.Device, "__context__");
                return ((ConditionalUNet)m).Forward(x, t, context);
            }),
        new("decoder_post_norm", Decoder, (m, f) =>
        {
            using var x = f.ToTensor(m.Device, "__input__");
            using var memory = f.ToTensor(m.Device, "__memory__");
            using var padding = Optional(m, f, "__padding__");
            return ((TransformerDecoderLayer)m).Forward(x, memory, padding);
        }),
    };

    private static int[] Ids(SafeTensorsFile f, string name) => f.ReadFloats(name).Select(v => (int)v).ToArray();

    private static ResNet ResNetModel(Device d, SafeTensorsFile f) =>
        new(d, f.Metadata["block"] == "basic" ? ResNetBlock.Basic : ResNetBlock.Bottleneck, f.Metadata["stages"].Split(',').Select(int.Parse).ToArray(),
            Meta(f, "width"), Meta(f, "classes"));

    private static TinyNoiseModel NoiseModel(Device d, SafeTensorsFile f) => new(d, Meta(f, "channels"), Meta(f, "hidden"), Meta(f, "temb"));

    private static Tensor RunDdpm(Module m, SafeTensorsFile f)
    {
        var ddpm = new Ddpm(Meta(f, "steps"), f.Metadata["schedule"] == "cosine" ? BetaSchedule.Cosine : BetaSchedule.Linear);
        using var xT = f.ToTensor(m.Device, "__input__");
        using var noise = f.ToTensor(m.Device, "__noise__");
        return ddpm.Sample((x, t) => ((TinyNoiseModel)m).Forward(x, t), xT, t => noise.Select(0, t));
    }

    private static UNet UNetModel(Device d, SafeTensorsFile f) =>
        new(d, Meta(f, "in"), Meta(f, "classes"), Meta(f, "base"), Meta(f, "depth"), Meta(f, "bilinear") == 1);

    private static Recurrent Recurrent(Device d, SafeTensorsFile f) =>
        new(d, Meta(f, "input"), Meta(f, "hidden"), Meta(f, "layers"), Meta(f, "batch_first") == 1, Meta(f, "lstm") == 1);

    private static Tensor RunRecurrent(Module m, SafeTensorsFile f)
    {
        using var x = f.ToTensor(m.Device, "__input__");
        var (output, hidden, cell) = ((Recurrent)m).Forward(x);
        hidden.Dispose();
        cell?.Dispose();
        return output;
    }

    private static Tensor RunEncoder(Module m, SafeTensorsFile f)
    {
        using var x = f.ToTensor(m.Device, "__input__");
        using var padding = Optional(m, f, "__padding__");
        return ((TransformerEncoderLayer)m).Forward(x, padding);
    }

    private static Tensor RunLayer(Module m, SafeTensorsFile f)
    {
        using var x = f.ToTensor(m.Device, "__input__");
        return ((Layer)m).Forward(x);
    }
}

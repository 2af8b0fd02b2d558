namespace GpuNet.Layers;

/// <summary>
/// ResNet's basic block (torchvision names conv1, bn1, conv2, bn2, downsample.0/1): two 3×3 convolutions with batch norm,
/// the identity (or a strided 1×1 projection when the shape changes) added before the last ReLU.
/// </summary>
public sealed class BasicBlock : Layer
{
    private readonly Conv2d _conv1, _conv2;
    private readonly BatchNorm2d _bn1, _bn2;
    private readonly Sequential? _downsample;

    /// <summary>Output channels per input channel of the block's last convolution (1).</summary>
    public const int Expansion = 1;

    /// <summary>Creates the block; a projection shortcut is added when <paramref name="stride"/> ≠ 1 or the widths differ.</summary>
    public BasicBlock(Device device, int inChannels, int planes, int stride = 1) : base(device)
    {
        _conv1 = Child("conv1", new Conv2d(device, inChannels, planes, 3, stride, 1, bias: false));
        _bn1 = Child("bn1", new BatchNorm2d(device, planes));
        _conv2 = Child("conv2", new Conv2d(device, planes, planes, 3, 1, 1, bias: false));
        _bn2 = Child("bn2", new BatchNorm2d(device, planes));
        if (stride != 1 || inChannels != planes)
            _downsample = Child("downsample", ResNet.Projection(device, inChannels, planes, stride));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        using var scope = Device.Scope();
        var h = _bn2.Forward(_conv2.Forward(Ops.Relu(_bn1.Forward(_conv1.Forward(x)))));
        return scope.Keep(ResNet.AddShortcutRelu(h, x, _downsample));
    }
}

/// <summary>
/// ResNet's bottleneck block (conv1 1×1 → conv2 3×3 with the stride → conv3 1×1 to 4× the width, each with batch norm),
/// plus the identity or a projection shortcut, then ReLU.
/// </summary>
public sealed class Bottleneck : Layer
{
    private readonly Conv2d _conv1, _conv2, _conv3;
    private readonly BatchNorm2d _bn1, _bn2, _bn3;
    private readonly Sequential? _downsample;

    /// <summary>Output channels per bottleneck channel (4).</summary>
    public const int Expansion = 4;

    /// <summary>Creates the block: <paramref name="planes"/> bottleneck channels, 4·planes out.</summary>
    public Bottleneck(Device device, int inChannels, int planes, int stride = 1) : base(device)
    {
        _conv1 = Child("conv1", new Conv2d(device, inChannels, planes, 1, bias: false));
        _bn1 = Child("bn1", new BatchNorm2d(device, planes));
        _conv2 = Child("conv2", new Conv2d(device, planes, planes, 3, stride, 1, bias: false));
        _bn2 = Child("bn2", new BatchNorm2d(device, planes));
        _conv3 = Child("conv3", new Conv2d(device, planes, planes * Expansion, 1, bias: false));
        _bn3 = Child("bn3", new BatchNorm2d(device, planes * Expansion));
        if (stride != 1 || inChannels != planes * Expansion)
            _downsample = Child("downsample", ResNet.Projection(device, inChannels, planes * Expansion, stride));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        using var scope = Device.Scope();
        var h = Ops.Relu(_bn1.Forward(_conv1.Forward(x)));
        h = Ops.Relu(_bn2.Forward(_conv2.Forward(h)));
        h = _bn3.Forward(_conv3.Forward(h));
        return scope.Keep(ResNet.AddShortcutRelu(h, x, _downsample));
    }
}

/// <summary>Which residual block a <see cref="ResNet"/> stacks.</summary>
public enum ResNetBlock
{
    /// <summary><see cref="BasicBlock"/> (ResNet-18/34).</summary>
    Basic,
    /// <summary><see cref="Bottleneck"/> (ResNet-50 and deeper).</summary>
    Bottleneck,
}

/// <summary>
/// torchvision's ResNet layout: stem conv1 (3×3 here, for small images) + bn1 + ReLU, stages <c>layers.i</c> of blocks
/// (stage i has width·2^i bottleneck/basic channels; its first block strides by 2 after the first stage), global average
/// pooling and the classifier <c>fc</c>.
/// </summary>
public sealed class ResNet : Layer
{
    private readonly Conv2d _conv1;
    private readonly BatchNorm2d _bn1;
    private readonly Sequential[] _stages;
    private readonly Linear _fc;

    /// <summary>Creates the network: <paramref name="stages"/> gives the number of blocks per stage.</summary>
    public ResNet(Device device, ResNetBlock block, IReadOnlyList<int> stages, int width, int classes, int inChannels = 3) : base(device)
    {
        _conv1 = Child("conv1", new Conv2d(device, inChannels, width, 3, 1, 1, bias: false));
        _bn1 = Child("bn1", new BatchNorm2d(device, width));
        int expansion = block == ResNetBlock.Basic ? BasicBlock.Expansion : Bottleneck.Expansion;
        int cin = width;
        _stages = new Sequential[stages.Count];
        for (int i = 0; i < stages.Count; i++)
        {
            int planes = width << i;
            var blocks = new Layer[stages[i]];
            for (int j = 0; j < blocks.Length; j++)
            {
                int stride = i > 0 && j == 0 ? 2 : 1;
                blocks[j] = block == ResNetBlock.Basic ? new BasicBlock(device, cin, planes, stride) : new Bottleneck(device, cin, planes, stride);
                cin = planes * expansion;
            }
            _stages[i] = Child($"layers.{i}", new Sequential(device, blocks));
        }
        _fc = Child("fc", new Linear(device, cin, classes));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        using var scope = Device.Scope();
        var h = Ops.Relu(_bn1.Forward(_conv1.Forward(x)));
        foreach (var stage in _stages)
            h = stage.Forward(h);
        return scope.Keep(_fc.Forward(Ops.GlobalAvgPool(h).Reshape(h.Size(0), h.Size(1))));
    }

    /// <summary>The shortcut projection: a strided 1×1 convolution and batch norm (names 0 and 1).</summary>
    internal static Sequential Projection(Device device, int inChannels, int outChannels, int stride) =>
        new(device, new Conv2d(device, inChannels, outChannels, 1, stride, bias: false), new BatchNorm2d(device, outChannels));

    /// <summary>ReLU(h + shortcut(x)), the shortcut being x itself without a projection.</summary>
    internal static Tensor AddShortcutRelu(Tensor h, Tensor x, Sequential? downsample)
    {
        using var shortcut = downsample?.Forward(x);
        using var sum = Ops.Add(h, shortcut ?? x);
        return Ops.Relu(sum);
    }
}

/// <summary>
/// VQ-VAE's vector quantizer (van den Oord et al., 2017): every D-vector of z [B, D, H, W] is replaced by its nearest row
/// of the codebook <c>embedding.weight</c> [K, D] (squared distance, ties to the lower code), all on the device.
/// </summary>
public sealed class VectorQuantizer : Layer
{
    /// <summary>Creates the quantizer with <paramref name="codes"/> codes of dimension <paramref name="dim"/>.</summary>
    public VectorQuantizer(Device device, int codes, int dim) : base(device) => Codebook = Child("embedding", new Embedding(device, codes, dim));

    /// <summary>The codebook (weight [K, D]).</summary>
    public Embedding Codebook { get; }

    /// <summary>The quantized tensor [B, D, H, W] (differentiable with respect to the codebook rows it took) and the chosen code
    /// of every position [B, H, W] (as floats, no gradient).</summary>
    public (Tensor Quantized, Tensor Codes) Quantize(Tensor z)
    {
        int d = Codebook.Weight.Size(1);
        if (z.Rank != 4 || z.Size(1) != d)
            throw new ShapeMismatchException("vector_quantizer", "z", $"[B, {d}, H, W]", GpuNetException.FormatShape(z.ShapeArray()));
        int b = z.Size(0), h = z.Size(2), w = z.Size(3);
        using var scope = Device.Scope();
        var flat = Ops.Permute(z, 0, 2, 3, 1).Reshape(-1, d);
        // The choice of code carries no gradient: it is made on detached values, and z_q's gradient reaches the codebook
        // through the gather (VQ-VAE's codebook loss) — the encoder gets one only by a straight-through estimator.
        var codes = Ops.VqNearest(flat.Detach(), Codebook.Weight.Detach());
        var rows = Ops.GatherRows(Codebook.Weight, codes).Reshape(b, h, w, d);
        return (scope.Keep(Ops.Permute(rows, 0, 3, 1, 2)), scope.Keep(codes.Reshape(b, h, w)));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor z)
    {
        var (quantized, codes) = Quantize(z);
        codes.Dispose();
        return quantized;
    }
}

/// <summary>
/// A convolutional VAE for 1×S×S grey images (S a multiple of 4: the seed's 16, Fashion-MNIST's 28): encoder (two stride-2
/// convolutions of <c>width</c> and 2·<c>width</c> channels, flatten) to fc_mu and fc_logvar, the reparameterized sample
/// z = μ + ε·exp(½·logvar), decoder_input back to 2·width × S/4 × S/4 and two transposed convolutions to the image's logits,
/// a sigmoid making the image. Names as the seed's PyTorch module (encoder.0, encoder.2, fc_mu, fc_logvar, decoder_input,
/// decoder.0, decoder.2).
/// </summary>
public sealed class Vae : Module
{
    private readonly Sequential _encoder, _decoder;
    private readonly Linear _mu, _logvar, _decoderInput;

    /// <summary>Creates the VAE with a <paramref name="latent"/>-dimensional latent for <paramref name="imageSize"/>² images
    /// (default: the seed's 16 × 16 with 8 and 16 channels).</summary>
    public Vae(Device device, int latent, int imageSize = 16, int width = 8) : base(device)
    {
        if (latent < 1 || imageSize < 4 || imageSize % 4 != 0 || width < 1)
            throw new InvalidArgumentException("vae", "latent, imageSize, width", "latent ≥ 1, an image size that is a positive multiple of 4, width ≥ 1",
                $"{latent}, {imageSize}, {width}");
        (Latent, ImageSize, Width) = (latent, imageSize, width);
        int features = 2 * width * (imageSize / 4) * (imageSize / 4);
        _encoder = Child("encoder", new Sequential(device, new Conv2d(device, 1, width, 3, 2, 1), new ActivationLayer(device, "relu"),
            new Conv2d(device, width, 2 * width, 3, 2, 1), new ActivationLayer(device, "relu"), new Flatten(device)));
        _mu = Child("fc_mu", new Linear(device, features, latent));
        _logvar = Child("fc_logvar", new Linear(device, features, latent));
        _decoderInput = Child("decoder_input", new Linear(device, latent, features));
        // The seed's decoder ends in a Sigmoid (no parameters, so no name in the state dict): applied by Decode, so that
        // training can take the logits (binary cross-entropy on logits is stable where on probabilities it is not).
        _decoder = Child("decoder", new Sequential(device, new ConvTranspose2d(device, 2 * width, width, 4, 2, 1), new ActivationLayer(device, "relu"),
            new ConvTranspose2d(device, width, 1, 4, 2, 1)));
    }

    /// <summary>Latent dimension.</summary>
    public int Latent { get; }

    /// <summary>Image height and width.</summary>
    public int ImageSize { get; }

    /// <summary>Channels of the first convolution (the second has twice as many).</summary>
    public int Width { get; }

    /// <summary>μ and log σ² of q(z | x) for x [B, 1, S, S].</summary>
    public (Tensor Mu, Tensor LogVar) Encode(Tensor x)
    {
        if (x.Rank != 4 || x.Size(1) != 1 || x.Size(2) != ImageSize || x.Size(3) != ImageSize)
            throw new ShapeMismatchException("vae", "x", $"[B, 1, {ImageSize}, {ImageSize}]", GpuNetException.FormatShape(x.ShapeArray()));
        using var h = _encoder.Forward(x);
        return (_mu.Forward(h), _logvar.Forward(h));
    }

    /// <summary>The image's logits [B, 1, S, S] for latents z [B, latent].</summary>
    public Tensor DecodeLogits(Tensor z)
    {
        if (z.Rank != 2 || z.Size(1) != Latent)
            throw new ShapeMismatchException("vae", "z", $"[B, {Latent}]", GpuNetException.FormatShape(z.ShapeArray()));
        using var h = _decoderInput.Forward(z);
        using var grid = h.Reshape(z.Size(0), 2 * Width, ImageSize / 4, ImageSize / 4);
        return _decoder.Forward(grid);
    }

    /// <summary>The image [B, 1, S, S] (in [0, 1]) of latents z [B, latent].</summary>
    public Tensor Decode(Tensor z)
    {
        using var logits = DecodeLogits(z);
        return Ops.Sigmoid(logits);
    }

    /// <summary>
    /// The reconstruction's logits, μ and log σ². <paramref name="eps"/> [B, latent] is the standard normal draw of the
    /// reparameterization; without it one is drawn from <paramref name="seed"/>.
    /// </summary>
    public (Tensor Logits, Tensor Mu, Tensor LogVar) ForwardLogits(Tensor x, Tensor? eps = null, ulong seed = 0)
    {
        var (mu, logvar) = Encode(x);
        using var scope = Device.Scope();
        var noise = eps ?? Ops.RandomNormal(Device, mu.ShapeArray(), seed);
        var z = Ops.Add(mu, Ops.Mul(noise, Ops.Exp(logvar, 0.5f)));
        return (scope.Keep(DecodeLogits(z)), mu, logvar);
    }

    /// <summary>
    /// Reconstruction, μ and log σ². <paramref name="eps"/> [B, latent] is the standard normal draw of the
    /// reparameterization; without it one is drawn from <paramref name="seed"/>.
    /// </summary>
    public (Tensor Reconstruction, Tensor Mu, Tensor LogVar) Forward(Tensor x, Tensor? eps = null, ulong seed = 0)
    {
        var (logits, mu, logvar) = ForwardLogits(x, eps, seed);
        using (logits)
            return (Ops.Sigmoid(logits), mu, logvar);
    }

    /// <summary>
    /// The negative ELBO per image and its two terms: the reconstruction term Σ over pixels of the binary cross-entropy of the
    /// logits against x (pixels in [0, 1]), and KL(q(z | x) ‖ N(0, I)), each averaged over the batch — the loss of Kingma and
    /// Welling's VAE (and of PyTorch's VAE example: binary_cross_entropy(sum) + KLD, here per image).
    /// </summary>
    public static (Tensor Loss, Tensor Reconstruction, Tensor Kl) NegativeElbo(Tensor logits, Tensor x, Tensor mu, Tensor logvar)
    {
        using var scope = logits.Device.Scope();
        var bce = Ops.Scale(Ops.BinaryCrossEntropyWithLogits(logits, x, Reduction.Sum), 1f / logits.Size(0));
        var kl = Ops.GaussianKl(mu, logvar);
        return (scope.Keep(Ops.Add(bce, kl)), scope.Keep(bce), scope.Keep(kl));
    }
}

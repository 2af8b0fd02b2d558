namespace GpuNet.Layers;


/// <summary>
/// A small speech-style front end: Conv1d → GroupNorm → GELU → strided Conv1d → [B, T, C] → + learned positions →
/// + sinusoidal positions → RMSNorm (names conv1, norm, conv2, pos, sin, rms).
/// </summary>
public sealed class ConvSequenceEncoder : Layer
{
    private readonly Conv1d _conv1, _conv2;
    private readonly GroupNorm _norm;
    private readonly LearnedPositionalEncoding _pos;
    private readonly SinusoidalPositionalEncoding _sin;
    private readonly RmsNorm _rms;

    /// <summary>Creates the encoder.</summary>
    public ConvSequenceEncoder(Device d, int inChannels, int hidden, int outChannels, int maxLength) : base(d)
    {
        _conv1 = Child("conv1", new Conv1d(d, inChannels, hidden, 5, padding: 2));
        _norm = Child("norm", new GroupNorm(d, 2, hidden));
        _conv2 = Child("conv2", new Conv1d(d, hidden, outChannels, 3, stride: 2, padding: 1));
        _pos = Child("pos", new LearnedPositionalEncoding(d, maxLength, outChannels));
        _sin = Child("sin", new SinusoidalPositionalEncoding(d, maxLength, outChannels));
        _rms = Child("rms", new RmsNorm(d, outChannels));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        using var scope = Device.Scope();
        var h = _conv2.Forward(Ops.GeluErf(_norm.Forward(_conv1.Forward(x))));
        var seq = Ops.Transpose(h, 1, 2);
        return scope.Keep(_rms.Forward(_sin.Forward(_pos.Forward(seq))));
    }
}

/// <summary>
/// The small noise model ε_θ(x_t, t) of the DDPM golden cases: conv1 → + projected timestep embedding (time_mlp:
/// Linear → SiLU → Linear) → SiLU → conv2.
/// </summary>
public sealed class TinyNoiseModel : Module
{
    private readonly TimestepEmbedder _time;
    private readonly Conv2d _conv1, _conv2;

    /// <summary>Creates the model.</summary>
    public TinyNoiseModel(Device d, int channels, int hidden, int frequencyDim) : base(d)
    {
        _time = Child("time_mlp", new TimestepEmbedder(d, frequencyDim, 2 * hidden, hidden));
        _conv1 = Child("conv1", new Conv2d(d, channels, hidden, 3, padding: 1));
        _conv2 = Child("conv2", new Conv2d(d, hidden, channels, 3, padding: 1));
    }

    /// <summary>Predicted noise for x_t [B, C, H, W] at timesteps [B].</summary>
    public Tensor Forward(Tensor x, Tensor timesteps)
    {
        using var scope = Device.Scope();
        var t = _time.Forward(timesteps);
        var h = Ops.Add(_conv1.Forward(x), t.Reshape(t.Size(0), t.Size(1), 1, 1));
        return scope.Keep(_conv2.Forward(Ops.Silu(h)));
    }
}

/// <summary>The seed models with PyTorch-equivalent structure and names (their golden cases are GpuNet.Checks' <c>GoldenModels</c>).</summary>
public static class ModelZoo
{
    /// <summary>MLP 13-32-24-5 with ReLU and GELU (nn.Sequential names 0, 2, 4).</summary>
    public static Sequential Mlp(Device d) => new(d, new Linear(d, 13, 32), new ActivationLayer(d, "relu"), new Linear(d, 32, 24), new ActivationLayer(d, "gelu"), new Linear(d, 24, 5));

    /// <summary>The CNN classifier: Conv2d → BatchNorm2d → ReLU → MaxPool2d → Conv2d → BatchNorm2d → ReLU → AdaptiveAvgPool2d → Flatten → Linear → ReLU → Dropout → Linear.</summary>
    public static Sequential CnnClassifier(Device d, int classes = 10) => new(d,
        ("features", new Sequential(d, new Conv2d(d, 3, 8, 3, padding: 1), new BatchNorm2d(d, 8), new ActivationLayer(d, "relu"), new MaxPool2d(d, 2),
            new Conv2d(d, 8, 16, 3, padding: 1), new BatchNorm2d(d, 16), new ActivationLayer(d, "relu"), new AdaptiveAvgPool2d(d, 2, 2))),
        ("classifier", new Sequential(d, new Flatten(d), new Linear(d, 64, 32), new ActivationLayer(d, "relu"), new Dropout(d, 0.5f), new Linear(d, 32, classes))));

    /// <summary>
    /// The seed CNN sized for 28×28 grey images (Fashion-MNIST, `train cnn`): features = Conv2d(1→32, 3, pad 1) → BatchNorm2d → ReLU →
    /// MaxPool2d(2) → Conv2d(32→64, 3, pad 1) → BatchNorm2d → ReLU → Conv2d(64→64, 3, pad 1) → BatchNorm2d → ReLU → MaxPool2d(2);
    /// classifier = Flatten → Linear(3136→128) → ReLU → Dropout(0.25) → Linear(128→classes). nn.Sequential names as
    /// <see cref="CnnClassifier"/>.
    /// </summary>
    public static Sequential ImageCnn(Device d, int classes = 10, int inChannels = 1, int size = 28) => new(d,
        ("features", new Sequential(d, new Conv2d(d, inChannels, 32, 3, padding: 1), new BatchNorm2d(d, 32), new ActivationLayer(d, "relu"), new MaxPool2d(d, 2),
            new Conv2d(d, 32, 64, 3, padding: 1), new BatchNorm2d(d, 64), new ActivationLayer(d, "relu"),
            new Conv2d(d, 64, 64, 3, padding: 1), new BatchNorm2d(d, 64), new ActivationLayer(d, "relu"), new MaxPool2d(d, 2))),
        ("classifier", new Sequential(d, new Flatten(d), new Linear(d, 64 * (size / 4) * (size / 4), 128), new ActivationLayer(d, "relu"), new Dropout(d, 0.25f),
            new Linear(d, 128, classes))));

    /// <summary>A small ResNet for 28×28 grey images (`train cnn --model resnet`): width 16, basic blocks 2-2-2 (strides 1, 2, 2).</summary>
    public static ResNet ImageResNet(Device d, int classes = 10, int inChannels = 1) => new(d, ResNetBlock.Basic, new[] { 2, 2, 2 }, 16, classes, inChannels);

    /// <summary>VGG-style: two 3×3 conv + ReLU stages with max pooling, adaptive average pooling, the classifier (torchvision names features, avgpool, classifier).</summary>
    public static Sequential Vgg(Device d, int classes = 10) => new(d,
        ("features", new Sequential(d, new Conv2d(d, 3, 8, 3, padding: 1), new ActivationLayer(d, "relu"), new Conv2d(d, 8, 8, 3, padding: 1), new ActivationLayer(d, "relu"),
            new MaxPool2d(d, 2), new Conv2d(d, 8, 16, 3, padding: 1), new ActivationLayer(d, "relu"), new MaxPool2d(d, 2))),
        ("avgpool", new AdaptiveAvgPool2d(d, 2, 2)),
        ("classifier", new Sequential(d, new Flatten(d), new Linear(d, 64, 32), new ActivationLayer(d, "relu"), new Dropout(d, 0.5f), new Linear(d, 32, classes))));

    /// <summary>PixelCNN: a 7×7 type-A masked conv, two 3×3 type-B masked convs (ReLU between), 1×1 to the output levels.</summary>
    public static Sequential PixelCnn(Device d, int channels, int hidden, int levels, int layers)
    {
        var list = new List<Layer> { new Conv2d(d, channels, hidden, 7, padding: 3, mask: ConvMask.A), new ActivationLayer(d, "relu") };
        for (int i = 0; i < layers; i++)
        {
            list.Add(new Conv2d(d, hidden, hidden, 3, padding: 1, mask: ConvMask.B));
            list.Add(new ActivationLayer(d, "relu"));
        }
        list.Add(new Conv2d(d, hidden, levels * channels, 1));
        return new Sequential(d, list.ToArray());
    }

    /// <summary>A GPT sized by a fixture's metadata (vocab, context, d, h, layers).</summary>
    public static Gpt Gpt(Device d, SafeTensorsFile f)
    {
        int M(string k) => int.Parse(f.Metadata[k]);
        return new Gpt(d, new GptConfig(M("vocab"), M("context"), M("d"), M("h"), M("layers")));
    }
}

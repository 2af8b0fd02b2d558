namespace GpuNet.Layers;

/// <summary>nn.ConvTranspose2d (weight [in, out/groups, k, k], bias [out]).</summary>
public sealed class ConvTranspose2d : Layer
{
    private readonly int _stride, _padding, _outputPadding, _dilation, _groups;

    /// <summary>Creates the layer.</summary>
    public ConvTranspose2d(Device device, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int outputPadding = 0,
        int dilation = 1, int groups = 1, bool bias = true) : base(device)
    {
        (_stride, _padding, _outputPadding, _dilation, _groups) = (stride, padding, outputPadding, dilation, groups);
        Weight = Parameter("weight", inChannels, outChannels / groups, kernel, kernel);
        Bias = bias ? Parameter("bias", outChannels) : null;
        InitializeAtConstruction();
    }

    /// <summary>nn.ConvTranspose2d's reset: PyTorch computes fan_in from the weight's second dimension, (out/groups)·k·k.</summary>
    public override void Initialize(ulong seed) => ParameterInit.KaimingUniform(Weight, Bias, Weight.Length / Weight.Size(0), seed);

    /// <summary>[in, out/groups, k, k].</summary>
    public Tensor Weight { get; }

    /// <summary>[out] or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Ops.ConvTranspose2d(x, Weight, Bias, _stride, _padding, _outputPadding, _dilation, _groups);
}

/// <summary>nn.Upsample to a scale factor: nearest, or bilinear with PyTorch's align_corners.</summary>
public sealed class Upsample(Device device, int scale, bool bilinear, bool alignCorners = false) : Layer(device)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        var size = (x.Size(2) * scale, x.Size(3) * scale);
        return bilinear ? Ops.UpsampleBilinear2d(x, size, alignCorners) : Ops.UpsampleNearest2d(x, size);
    }
}

/// <summary>(Conv3×3 → BatchNorm → ReLU) × 2, names double_conv.0..5 (the common PyTorch UNet).</summary>
public sealed class DoubleConv : Layer
{
    /// <summary>Creates the block.</summary>
    public DoubleConv(Device device, int inChannels, int outChannels, int? midChannels = null) : base(device)
    {
        int mid = midChannels ?? outChannels;
        Block = Child("double_conv", new Sequential(device,
            new Conv2d(device, inChannels, mid, 3, padding: 1, bias: false), new BatchNorm2d(device, mid), new ActivationLayer(device, "relu"),
            new Conv2d(device, mid, outChannels, 3, padding: 1, bias: false), new BatchNorm2d(device, outChannels), new ActivationLayer(device, "relu")));
    }

    /// <summary>The six layers.</summary>
    public Sequential Block { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Block.Forward(x);
}

/// <summary>
/// UNet (Ronneberger et al.) in the layout of the common PyTorch implementation: inc, down1..N (MaxPool2d(2) +
/// DoubleConv, names maxpool_conv.0/1), up1..N (ConvTranspose2d(c, c/2, 2, stride 2) or bilinear ×2, then the skip
/// concatenated before the upsampled map and a DoubleConv; names up, conv), outc (1×1 conv).
/// </summary>
public sealed class UNet : Layer
{
    private readonly Sequential[] _downs;
    private readonly (Layer Up, DoubleConv Conv)[] _ups;
    private readonly DoubleConv _inc;
    private readonly Conv2d _out;

    /// <summary>Creates the UNet with widths base·2^i at each level.</summary>
    public UNet(Device device, int inChannels, int classes, int baseWidth = 8, int depth = 2, bool bilinear = false) : base(device)
    {
        _inc = Child("inc", new DoubleConv(device, inChannels, baseWidth));
        _downs = new Sequential[depth];
        int factor = bilinear ? 2 : 1;
        for (int i = 0; i < depth; i++)
        {
            int cin = baseWidth << i, cout = (baseWidth << (i + 1)) / (i == depth - 1 ? factor : 1);
            _downs[i] = Child($"down{i + 1}", new DownBlock(device, cin, cout)).Inner;
        }
        _ups = new (Layer, DoubleConv)[depth];
        for (int i = 0; i < depth; i++)
        {
            int cin = baseWidth << (depth - i), cout = (baseWidth << (depth - i - 1)) / (i == depth - 1 ? 1 : factor);
            var up = Child($"up{i + 1}", new UpBlock(device, cin, cout, bilinear));
            _ups[i] = (up.Up, up.Conv);
        }
        _out = Child("outc", new OutConv(device, baseWidth, classes)).Conv;
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        using var scope = Device.Scope();
        var skips = new List<Tensor> { _inc.Forward(x) };
        foreach (var down in _downs)
            skips.Add(down.Forward(skips[^1]));
        var h = skips[^1];
        for (int i = 0; i < _ups.Length; i++)
        {
            var skip = skips[^(i + 2)];
            var up = PadTo(_ups[i].Up.Forward(h), skip.Size(2), skip.Size(3));
            h = _ups[i].Conv.Forward(Ops.Concat(new[] { skip, up }, 1));
        }
        return scope.Keep(_out.Forward(h));
    }

    /// <summary>Zero-pads [N, C, H, W] to the skip's size, centred (F.pad with diff/2 before and the rest after).</summary>
    private Tensor PadTo(Tensor x, int height, int width)
    {
        int dy = height - x.Size(2), dx = width - x.Size(3);
        if (dy == 0 && dx == 0)
            return x;
        if (dy < 0 || dx < 0)
            throw new ShapeMismatchException("unet", "x", $"an upsampled map no larger than the skip {height}×{width}", GpuNetException.FormatShape(x.ShapeArray()));
        return Ops.Pad(x, new[] { (dy / 2, dy - dy / 2), (dx / 2, dx - dx / 2) });
    }

    private sealed class DownBlock : Module
    {
        public DownBlock(Device device, int cin, int cout) : base(device) =>
            Inner = Child("maxpool_conv", new Sequential(device, new MaxPool2d(device, 2), new DoubleConv(device, cin, cout)));

        public Sequential Inner { get; }
    }

    private sealed class UpBlock : Module
    {
        public UpBlock(Device device, int cin, int cout, bool bilinear) : base(device)
        {
            Up = Child<Layer>("up", bilinear ? new Upsample(device, 2, true, alignCorners: true) : new ConvTranspose2d(device, cin, cin / 2, 2, stride: 2));
            Conv = Child("conv", bilinear ? new DoubleConv(device, cin, cout, cin / 2) : new DoubleConv(device, cin, cout));
        }

        public Layer Up { get; }

        public DoubleConv Conv { get; }
    }

    private sealed class OutConv : Module
    {
        public OutConv(Device device, int cin, int classes) : base(device) => Conv = Child("conv", new Conv2d(device, cin, classes, 1));

        public Conv2d Conv { get; }
    }
}

/// <summary>
/// The diffusion UNet's residual block: norm1 (GroupNorm) → SiLU → conv1, plus time_proj(SiLU(t)) broadcast over the
/// image, norm2 → SiLU → conv2, plus the input (through a 1×1 <c>skip</c> conv when the width changes).
/// </summary>
public sealed class TimeResBlock : Module
{
    private readonly GroupNorm _norm1, _norm2;
    private readonly Conv2d _conv1, _conv2;
    private readonly Conv2d? _skip;
    private readonly Linear _timeProj;

    /// <summary>Creates the block (GroupNorm with <paramref name="groups"/> groups).</summary>
    public TimeResBlock(Device device, int inChannels, int outChannels, int timeDim, int groups = 2) : base(device)
    {
        _norm1 = Child("norm1", new GroupNorm(device, groups, inChannels));
        _conv1 = Child("conv1", new Conv2d(device, inChannels, outChannels, 3, padding: 1));
        _timeProj = Child("time_proj", new Linear(device, timeDim, outChannels));
        _norm2 = Child("norm2", new GroupNorm(device, groups, outChannels));
        _conv2 = Child("conv2", new Conv2d(device, outChannels, outChannels, 3, padding: 1));
        if (inChannels != outChannels)
            _skip = Child("skip", new Conv2d(device, inChannels, outChannels, 1));
    }

    /// <summary>x [B, C, H, W] with the time embedding [B, timeDim].</summary>
    public Tensor Forward(Tensor x, Tensor time)
    {
        using var scope = Device.Scope();
        var t = _timeProj.Forward(Ops.Silu(time));
        var h = Ops.Add(_conv1.Forward(Ops.Silu(_norm1.Forward(x))), t.Reshape(t.Size(0), t.Size(1), 1, 1));
        h = _conv2.Forward(Ops.Silu(_norm2.Forward(h)));
        return scope.Keep(Ops.Add(_skip?.Forward(x) ?? x, h));
    }
}

/// <summary>
/// Cross-attention from image positions to a text embedding: norm (GroupNorm) of x [B, C, H, W] read as H·W tokens,
/// the context [B, S, E] projected to C (<c>context_proj</c>), multi-head attention (<c>attn</c>), <c>proj_out</c>, residual.
/// </summary>
public sealed class CrossAttentionBlock : Module
{
    private readonly GroupNorm _norm;
    private readonly Linear _contextProj, _projOut;
    private readonly MultiheadAttention _attention;

    /// <summary>Creates the block.</summary>
    public CrossAttentionBlock(Device device, int channels, int heads, int contextDim, int groups = 2) : base(device)
    {
        _norm = Child("norm", new GroupNorm(device, groups, channels));
        _contextProj = Child("context_proj", new Linear(device, contextDim, channels));
        _attention = Child("attn", new MultiheadAttention(device, channels, heads));
        _projOut = Child("proj_out", new Linear(device, channels, channels));
    }

    /// <summary>x [B, C, H, W] attending to <paramref name="context"/> [B, S, E].</summary>
    public Tensor Forward(Tensor x, Tensor context)
    {
        int b = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        using var scope = Device.Scope();
        var tokens = Ops.Transpose(_norm.Forward(x).Reshape(b, c, h * w), 1, 2);
        var attended = _projOut.Forward(_attention.Forward(tokens, _contextProj.Forward(context)));
        var image = Ops.Transpose(attended, 1, 2).Reshape(b, c, h, w);
        return scope.Keep(Ops.Add(x, image));
    }
}

/// <summary>
/// The time-conditioned UNet with cross-attention used for text-to-image diffusion, at one down/up level: the timestep
/// MLP (<c>time_embed</c>), conv_in, a ResBlock + cross-attention per level (down, mid, up), a strided-conv downsample,
/// nearest upsample + conv, the skip concatenated before the up ResBlock, and GroupNorm → SiLU → conv_out.
/// </summary>
public sealed class ConditionalUNet : Module
{
    private readonly TimestepEmbedder _time;
    private readonly Conv2d _convIn, _downsample, _upConv, _convOut;
    private readonly TimeResBlock _downRes, _midRes, _upRes;
    private readonly CrossAttentionBlock _downAttn, _midAttn, _upAttn;
    private readonly GroupNorm _normOut;

    /// <summary>Creates the model: widths <paramref name="baseWidth"/> and twice that in the middle.</summary>
    public ConditionalUNet(Device device, int channels, int baseWidth, int frequencyDim, int contextDim, int heads) : base(device)
    {
        int timeDim = 4 * baseWidth;
        _time = Child("time_embed", new TimestepEmbedder(device, frequencyDim, timeDim, timeDim));
        _convIn = Child("conv_in", new Conv2d(device, channels, baseWidth, 3, padding: 1));
        _downRes = Child("down_res", new TimeResBlock(device, baseWidth, baseWidth, timeDim));
        _downAttn = Child("down_attn", new CrossAttentionBlock(device, baseWidth, heads, contextDim));
        _downsample = Child("downsample", new Conv2d(device, baseWidth, baseWidth, 3, 2, 1));
        _midRes = Child("mid_res", new TimeResBlock(device, baseWidth, 2 * baseWidth, timeDim));
        _midAttn = Child("mid_attn", new CrossAttentionBlock(device, 2 * baseWidth, heads, contextDim));
        _upConv = Child("up_conv", new Conv2d(device, 2 * baseWidth, baseWidth, 3, padding: 1));
        _upRes = Child("up_res", new TimeResBlock(device, 2 * baseWidth, baseWidth, timeDim));
        _upAttn = Child("up_attn", new CrossAttentionBlock(device, baseWidth, heads, contextDim));
        _normOut = Child("norm_out", new GroupNorm(device, 2, baseWidth));
        _convOut = Child("conv_out", new Conv2d(device, baseWidth, channels, 3, padding: 1));
    }

    /// <summary>Predicted noise [B, C, H, W] (H, W even) for x_t, timesteps [B] and the text context [B, S, E].</summary>
    public Tensor Forward(Tensor x, Tensor timesteps, Tensor context)
    {
        if (x.Rank != 4 || x.Size(2) % 2 != 0 || x.Size(3) % 2 != 0)
            throw new ShapeMismatchException("conditional_unet", "x", "[B, C, H, W] with even H and W", GpuNetException.FormatShape(x.ShapeArray()));
        using var scope = Device.Scope();
        var t = _time.Forward(timesteps);
        var skip = _downAttn.Forward(_downRes.Forward(_convIn.Forward(x), t), context);
        var h = _midAttn.Forward(_midRes.Forward(_downsample.Forward(skip), t), context);
        h = _upConv.Forward(Ops.UpsampleNearest2d(h, (skip.Size(2), skip.Size(3))));
        h = _upAttn.Forward(_upRes.Forward(Ops.Concat(new[] { h, skip }, 1), t), context);
        return scope.Keep(_convOut.Forward(Ops.Silu(_normOut.Forward(h))));
    }
}

namespace GpuNet.Layers;

/// <summary>
/// The Conformer block (Gulati et al., 2020), the encoder block of Best-RQ: x + ½·FFN(x), x + MHSA(LN(x)), x + Conv(x),
/// x + ½·FFN(x), final LayerNorm. FFN (<c>ffn1</c>, <c>ffn2</c>) is LayerNorm → Linear → SiLU → Linear (names 0, 1, 3).
/// The convolution module is <c>conv_norm</c> → pointwise Conv1d to 2D channels → GLU → depthwise Conv1d → BatchNorm
/// (<c>conv_bn</c>) → SiLU → pointwise Conv1d. Attention (<c>attn</c>) is nn.MultiheadAttention.
/// </summary>
public sealed class ConformerBlock : Layer
{
    private readonly Sequential _ffn1, _ffn2;
    private readonly LayerNorm _attnNorm, _convNorm, _finalNorm;
    private readonly MultiheadAttention _attention;
    private readonly Conv1d _pointwise1, _depthwise, _pointwise2;
    private readonly BatchNorm2d _convBn;

    /// <summary>Creates the block: width <paramref name="dim"/>, <paramref name="heads"/> heads, FFN width <paramref name="hidden"/>, depthwise kernel <paramref name="kernel"/> (odd).</summary>
    public ConformerBlock(Device device, int dim, int heads, int hidden, int kernel) : base(device)
    {
        if (kernel % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "conformer: the depthwise kernel must be odd to keep the length");
        Dim = dim;
        _ffn1 = Child("ffn1", FeedForward(device, dim, hidden));
        _attnNorm = Child("attn_norm", new LayerNorm(device, dim));
        _attention = Child("attn", new MultiheadAttention(device, dim, heads));
        _convNorm = Child("conv_norm", new LayerNorm(device, dim));
        _pointwise1 = Child("pointwise1", new Conv1d(device, dim, 2 * dim, 1));
        _depthwise = Child("depthwise", new Conv1d(device, dim, dim, kernel, padding: kernel / 2, groups: dim));
        _convBn = Child("conv_bn", new BatchNorm2d(device, dim));
        _pointwise2 = Child("pointwise2", new Conv1d(device, dim, dim, 1));
        _ffn2 = Child("ffn2", FeedForward(device, dim, hidden));
        _finalNorm = Child("final_norm", new LayerNorm(device, dim));
    }

    /// <summary>Model width.</summary>
    public int Dim { get; }

    private static Sequential FeedForward(Device device, int dim, int hidden) => new(device,
        ("0", new LayerNorm(device, dim)), ("1", new Linear(device, dim, hidden, activation: FusedActivation.Silu)), ("3", new Linear(device, hidden, dim)));

    /// <summary>x [B, T, D] → [B, T, D].</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 3 || x.Size(2) != Dim)
            throw new ShapeMismatchException("conformer", "x", $"[B, T, {Dim}]", GpuNetException.FormatShape(x.ShapeArray()));
        using var scope = Device.Scope();
        var h = Ops.Axpy(0.5f, _ffn1.Forward(x), x);
        var a = _attnNorm.Forward(h);
        h = Ops.Add(h, _attention.Forward(a, a));
        var channels = Ops.Transpose(_convNorm.Forward(h), 1, 2);
        var doubled = _pointwise1.Forward(channels);
        // GLU over channels: the first half gated by the sigmoid of the second.
        var glu = Ops.Mul(doubled.Slice(1, 0, Dim), Ops.Sigmoid(doubled.Slice(1, Dim, Dim)));
        var conv = _pointwise2.Forward(Ops.Silu(_convBn.Forward(_depthwise.Forward(glu))));
        h = Ops.Add(h, Ops.Transpose(conv, 1, 2));
        h = Ops.Axpy(0.5f, _ffn2.Forward(h), h);
        return scope.Keep(_finalNorm.Forward(h));
    }
}

/// <summary>
/// Best-RQ's random-projection quantizer (Chiu et al., 2022): frozen buffers <c>projection</c> [F, C] (random) and
/// <c>codebook</c> [K, C]; a frame's label is the code nearest to its l2-normalized projection among the l2-normalized
/// codes. Both normalizations are RMS norms: every vector gets the same length √C, so the nearest code is the same.
/// </summary>
public sealed class RandomProjectionQuantizer : Layer
{
    /// <summary>Creates the quantizer (buffers zero until loaded or <see cref="Initialize"/>d).</summary>
    public RandomProjectionQuantizer(Device device, int features, int codeDim, int codes) : base(device)
    {
        Projection = Buffer("projection", Tensor.Zeros(device, features, codeDim));
        Codebook = Buffer("codebook", Tensor.Zeros(device, codes, codeDim));
        InitializeAtConstruction();
    }

    /// <summary>[F, C].</summary>
    public Tensor Projection { get; }

    /// <summary>[K, C].</summary>
    public Tensor Codebook { get; }

    /// <summary>Labels [B, T] (as floats) of stacked frames x [B, T, F].</summary>
    public override Tensor Forward(Tensor x)
    {
        int f = Projection.Size(0);
        if (x.Rank != 3 || x.Size(2) != f)
            throw new ShapeMismatchException("random_projection_quantizer", "x", $"[B, T, {f}]", GpuNetException.FormatShape(x.ShapeArray()));
        using var scope = Device.Scope();
        var projected = Ops.MatMul(x.Contiguous().Reshape(-1, f), Projection);
        var z = Ops.RmsNorm(projected, eps: 1e-12f).Output;
        var codes = Ops.RmsNorm(Codebook, eps: 1e-12f).Output;
        return scope.Keep(Ops.VqNearest(z, codes).Reshape(x.Size(0), x.Size(1)));
    }

    /// <summary>Xavier-uniform projection and standard normal codebook, as Best-RQ draws them.</summary>
    public override void Initialize(ulong seed)
    {
        ParameterInit.Uniform(Projection, seed, MathF.Sqrt(6f / (Projection.Size(0) + Projection.Size(1))));
        using var normal = Ops.RandomNormal(Device, Codebook.ShapeArray(), seed + 1);
        Codebook.CopyFrom(normal.ToArray());
    }
}

/// <summary>
/// HuBERT's target assignment (Hsu et al., 2021): frame features through a linear projection (<c>proj</c>) and a post-norm
/// Transformer encoder (<c>encoder.layers.i</c>), then each frame labelled with its nearest k-means centroid (buffer
/// <c>centroids</c> [K, D]).
/// </summary>
public sealed class HubertLabeler : Layer
{
    private readonly Linear _projection;
    private readonly TransformerEncoderLayer[] _layers;

    /// <summary>Creates the labeler.</summary>
    public HubertLabeler(Device device, int features, int dim, int heads, int hidden, int layers, int clusters, string activation = "gelu") : base(device)
    {
        _projection = Child("proj", new Linear(device, features, dim));
        _layers = Enumerable.Range(0, layers).Select(i => Child($"encoder.layers.{i}", new TransformerEncoderLayer(device, dim, heads, hidden, activation))).ToArray();
        Centroids = Buffer("centroids", Tensor.Zeros(device, clusters, dim));
    }

    /// <summary>k-means centroids [K, D].</summary>
    public Tensor Centroids { get; }

    /// <summary>The encoder's hidden states [B, T, D] for features [B, T, F].</summary>
    public Tensor Hidden(Tensor x)
    {
        using var scope = Device.Scope();
        var h = _projection.Forward(x);
        foreach (var layer in _layers)
            h = layer.Forward(h);
        return scope.Keep(h);
    }

    /// <summary>Cluster labels [B, T] (as floats).</summary>
    public override Tensor Forward(Tensor x)
    {
        using var h = Hidden(x);
        using var rows = h.Reshape(-1, h.Size(2));
        using var labels = Ops.VqNearest(rows, Centroids);
        return labels.Reshape(x.Size(0), x.Size(1));
    }
}

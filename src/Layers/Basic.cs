namespace GpuNet.Layers;

/// <summary>y = x·Wᵀ + b over the last axis (nn.Linear: weight [out, in], bias [out]).</summary>
public sealed class Linear : Layer
{
    /// <summary>Creates the layer.</summary>
    public Linear(Device device, int inFeatures, int outFeatures, bool bias = true, FusedActivation activation = FusedActivation.None) : base(device)
    {
        (InFeatures, OutFeatures, Activation) = (inFeatures, outFeatures, activation);
        Weight = Parameter("weight", outFeatures, inFeatures);
        Bias = bias ? Parameter("bias", outFeatures) : null;
        InitializeAtConstruction();
    }

    /// <summary>Input and output widths.</summary>
    public int InFeatures { get; }

    /// <summary>Output width.</summary>
    public int OutFeatures { get; }

    /// <summary>An activation fused into the matmul epilogue (None for plain nn.Linear).</summary>
    public FusedActivation Activation { get; }

    /// <summary>[out, in].</summary>
    public Tensor Weight { get; }

    /// <summary>[out] or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        if (x.Size(-1) != InFeatures)
            throw new ShapeMismatchException("linear", "x", $"[..., {InFeatures}]", GpuNetException.FormatShape(x.ShapeArray()));
        var shape = x.ShapeArray();
        using var flat = x.Contiguous();
        using var rows = flat.Reshape(-1, InFeatures);
        using var y = Ops.Linear(rows, Weight, Bias, Activation);
        shape[^1] = OutFeatures;
        return y.Reshape(shape);
    }

    /// <inheritdoc/>
    public override void Initialize(ulong seed) => ParameterInit.KaimingUniform(Weight, Bias, InFeatures, seed);
}

/// <summary>An activation function as a layer (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.Softplus).</summary>
public sealed class ActivationLayer(Device device, string kind, float parameter = 0f) : Layer(device)
{
    /// <summary>relu, gelu, gelu_tanh, silu, tanh, sigmoid, leaky_relu, elu, softplus.</summary>
    public string Kind { get; } = kind;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Kind switch
    {
        "relu" => Ops.Relu(x),
        "gelu" => Ops.GeluErf(x),
        "gelu_tanh" => Ops.GeluTanh(x),
        "silu" => Ops.Silu(x),
        "tanh" => Ops.Tanh(x),
        "sigmoid" => Ops.Sigmoid(x),
        "leaky_relu" => Ops.LeakyRelu(x, parameter == 0 ? 0.01f : parameter),
        "elu" => Ops.Elu(x, parameter == 0 ? 1f : parameter),
        "softplus" => Ops.Softplus(x),
        _ => throw new ArgumentException($"unknown activation '{Kind}'"),
    };
}

/// <summary>Flattens dimensions from <paramref name="startDim"/> on (nn.Flatten).</summary>
public sealed class Flatten(Device device, int startDim = 1) : Layer(device)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        var shape = x.ShapeArray();
        int start = ShapeUtil.NormalizeAxis("flatten", startDim, x.Rank);
        var target = shape.Take(start).Append((int)ShapeUtil.Product(shape.AsSpan(start))).ToArray();
        using var c = x.Contiguous();
        return c.Reshape(target);
    }
}

/// <summary>
/// Inverted dropout in training mode, identity in eval mode (nn.Dropout). Each call draws a fresh Philox stream from
/// <paramref name="seed"/>; without one, every dropout in the process gets its own base seed (<see cref="DropoutSeeds"/>),
/// so two layers never drop the same positions.
/// </summary>
public sealed class Dropout(Device device, float p = 0.5f, ulong? seed = null) : Layer(device)
{
    private readonly DropoutSeeds _seeds = new(seed);

    /// <summary>Drop probability.</summary>
    public float P { get; } = p;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        if (!Training || P == 0)
            return x.Contiguous();
        var (y, mask) = Ops.Dropout(x, P, _seeds.Next());
        mask.Dispose();
        return y;
    }
}

/// <summary>
/// The Philox seeds of one dropout site: a base seed (given, or a distinct one per site from a process-wide counter
/// through SplitMix64, so runs that build their layers in the same order draw the same masks) and a fresh stream per call.
/// </summary>
internal sealed class DropoutSeeds(ulong? seed = null)
{
    private static long s_sites;
    private readonly ulong _base = seed ?? Mix((ulong)Interlocked.Increment(ref s_sites));
    private ulong _calls;

    /// <summary>The seed of the next call.</summary>
    public ulong Next() => Mix(_base + 0x9E3779B97F4A7C15UL * ++_calls);

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>Token embedding table (nn.Embedding: weight [num_embeddings, dim]).</summary>
public sealed class Embedding : Module
{
    /// <summary>Creates the table.</summary>
    public Embedding(Device device, int count, int dim) : base(device)
    {
        Weight = Parameter("weight", count, dim);
        InitializeAtConstruction();
    }

    /// <summary>[count, dim].</summary>
    public Tensor Weight { get; }

    /// <summary>Rows for the ids (shape <paramref name="shape"/>): [...shape, dim].</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, params int[] shape) => Ops.Embedding(Weight, ids, shape);

    /// <inheritdoc/>
    public override void Initialize(ulong seed) => ParameterInit.Normal(Weight, seed, 1f);
}

/// <summary>LayerNorm over the last axis with weight and bias (nn.LayerNorm).</summary>
public sealed class LayerNorm : Layer
{
    /// <summary>Creates the layer.</summary>
    public LayerNorm(Device device, int dim, float eps = 1e-5f) : base(device)
    {
        Eps = eps;
        Weight = Parameter("weight", dim);
        Bias = Parameter("bias", dim);
        InitializeAtConstruction();
    }

    /// <summary>ε.</summary>
    public float Eps { get; }

    /// <summary>γ.</summary>
    public Tensor Weight { get; }

    /// <summary>β.</summary>
    public Tensor Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        var r = Ops.LayerNorm(x, Weight, Bias, Eps);
        r.Mean.Dispose();
        r.Rstd.Dispose();
        return r.Output;
    }

    /// <inheritdoc/>
    public override void Initialize(ulong seed)
    {
        Ops.Fill(Weight, 1f);
        Ops.Fill(Bias, 0f);
    }
}

/// <summary>2-D convolution (nn.Conv2d: weight [out, in/groups, kh, kw], bias [out]); masks A/B make it PixelCNN's masked conv.</summary>
public sealed class Conv2d : Layer
{
    /// <summary>Creates the layer.</summary>
    public Conv2d(Device device, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
        bool bias = true, ConvMask mask = ConvMask.None) : base(device)
    {
        Options = Conv2dOptions.Of(stride, padding, dilation, groups) with { Mask = mask };
        Weight = Parameter("weight", outChannels, inChannels / groups, kernel, kernel);
        Bias = bias ? Parameter("bias", outChannels) : null;
        InitializeAtConstruction();
    }

    /// <summary>Hyper-parameters.</summary>
    public Conv2dOptions Options { get; }

    /// <summary>[out, in/groups, kh, kw].</summary>
    public Tensor Weight { get; }

    /// <summary>[out] or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Ops.Conv2d(x, Weight, Bias, Options);

    /// <inheritdoc/>
    public override void Initialize(ulong seed) => ParameterInit.KaimingUniform(Weight, Bias, Weight.Length / Weight.Size(0), seed);
}

/// <summary>BatchNorm2d (nn.BatchNorm2d: weight, bias, running_mean, running_var, num_batches_tracked). Batch statistics in training, running ones in eval.</summary>
public sealed class BatchNorm2d : Layer
{
    /// <summary>Creates the layer.</summary>
    public BatchNorm2d(Device device, int channels, float eps = 1e-5f, float momentum = 0.1f) : base(device)
    {
        (Eps, Momentum) = (eps, momentum);
        Weight = Parameter("weight", channels);
        Bias = Parameter("bias", channels);
        RunningMean = Buffer("running_mean", Tensor.Zeros(device, channels));
        RunningVar = Buffer("running_var", Ops.Full(device, 1f, channels));
        BatchesTracked = Buffer("num_batches_tracked", Tensor.Zeros(device));
        InitializeAtConstruction();
    }

    /// <summary>nn.BatchNorm2d's reset: γ = 1, β = 0, running mean 0, running variance 1, no batches seen.</summary>
    public override void Initialize(ulong seed)
    {
        Ops.Fill(Weight, 1f);
        Ops.Fill(Bias, 0f);
        Ops.Fill(RunningMean, 0f);
        Ops.Fill(RunningVar, 1f);
        Ops.Fill(BatchesTracked, 0f);
    }

    /// <summary>ε and momentum.</summary>
    public float Eps { get; }

    /// <summary>Running-statistics momentum.</summary>
    public float Momentum { get; }

    /// <summary>γ, β and the running statistics.</summary>
    public Tensor Weight { get; }

    /// <summary>β.</summary>
    public Tensor Bias { get; }

    /// <summary>Running mean.</summary>
    public Tensor RunningMean { get; }

    /// <summary>Running variance.</summary>
    public Tensor RunningVar { get; }

    /// <summary>PyTorch's batch counter (a float scalar here).</summary>
    public Tensor BatchesTracked { get; }

    /// <summary>x [N, C, H, W]; [N, C, L] is accepted too and normalized as nn.BatchNorm1d does (same state dict).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank == 3)
        {
            using var dense = x.Contiguous();
            using var image = dense.Reshape(x.Size(0), x.Size(1), x.Size(2), 1);
            using var y = Forward(image);
            return y.Reshape(x.ShapeArray());
        }
        if (!Training)
            return Ops.BatchNorm2dInfer(x, RunningMean, RunningVar, Weight, Bias, Eps);
        var r = Ops.BatchNorm2dTrain(x, Weight, Bias, RunningMean, RunningVar, Momentum, Eps);
        Ops.Unary("batchnorm2d_train", BatchesTracked, BatchesTracked, new GpuNet.Kernels.ElementwiseOps.AddScalar { Value = 1 });
        r.Mean.Dispose();
        r.Rstd.Dispose();
        return r.Output;
    }
}

/// <summary>nn.MaxPool2d (square kernel; stride defaults to the kernel).</summary>
public sealed class MaxPool2d(Device device, int kernel, int? stride = null, int padding = 0, int dilation = 1, bool ceilMode = false) : Layer(device)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        return Ops.MaxPool2dValues(x, (kernel, kernel), (stride ?? kernel, stride ?? kernel), (padding, padding), (dilation, dilation), ceilMode);
    }
}

/// <summary>nn.AvgPool2d.</summary>
public sealed class AvgPool2d(Device device, int kernel, int? stride = null, int padding = 0, bool ceilMode = false, bool countIncludePad = true) : Layer(device)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Ops.AvgPool2d(x, (kernel, kernel), (stride ?? kernel, stride ?? kernel), (padding, padding), ceilMode, countIncludePad);
}

/// <summary>nn.AdaptiveAvgPool2d.</summary>
public sealed class AdaptiveAvgPool2d(Device device, int height, int width) : Layer(device)
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Ops.AdaptiveAvgPool2d(x, (height, width));
}

/// <summary>1-D convolution (nn.Conv1d: weight [out, in/groups, k], bias [out]).</summary>
public sealed class Conv1d : Layer
{
    private readonly int _stride, _padding, _dilation, _groups;

    /// <summary>Creates the layer.</summary>
    public Conv1d(Device device, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true)
        : base(device)
    {
        (_stride, _padding, _dilation, _groups) = (stride, padding, dilation, groups);
        Weight = Parameter("weight", outChannels, inChannels / groups, kernel);
        Bias = bias ? Parameter("bias", outChannels) : null;
        InitializeAtConstruction();
    }

    /// <inheritdoc/>
    public override void Initialize(ulong seed) => ParameterInit.KaimingUniform(Weight, Bias, Weight.Length / Weight.Size(0), seed);

    /// <summary>[out, in/groups, k].</summary>
    public Tensor Weight { get; }

    /// <summary>[out] or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => Ops.Conv1d(x, Weight, Bias, _stride, (_padding, _padding), _dilation, _groups);
}

/// <summary>nn.GroupNorm (weight, bias per channel).</summary>
public sealed class GroupNorm : Layer
{
    private readonly int _groups;
    private readonly float _eps;

    /// <summary>Creates the layer.</summary>
    public GroupNorm(Device device, int groups, int channels, float eps = 1e-5f) : base(device)
    {
        (_groups, _eps) = (groups, eps);
        Weight = Parameter("weight", channels);
        Bias = Parameter("bias", channels);
        InitializeAtConstruction();
    }

    /// <summary>γ = 1, β = 0.</summary>
    public override void Initialize(ulong seed)
    {
        Ops.Fill(Weight, 1f);
        Ops.Fill(Bias, 0f);
    }

    /// <summary>γ.</summary>
    public Tensor Weight { get; }

    /// <summary>β.</summary>
    public Tensor Bias { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        var r = Ops.GroupNorm(x, _groups, Weight, Bias, _eps);
        r.Mean.Dispose();
        r.Rstd.Dispose();
        return r.Output;
    }
}

/// <summary>RMSNorm over the last axis with a weight (the LLaMA/T5 form; name "weight").</summary>
public sealed class RmsNorm : Layer
{
    private readonly float _eps;

    /// <summary>Creates the layer.</summary>
    public RmsNorm(Device device, int dim, float eps = 1e-6f) : base(device)
    {
        _eps = eps;
        Weight = Parameter("weight", dim);
        InitializeAtConstruction();
    }

    /// <summary>γ = 1.</summary>
    public override void Initialize(ulong seed) => Ops.Fill(Weight, 1f);

    /// <summary>γ.</summary>
    public Tensor Weight { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        var r = Ops.RmsNorm(x, Weight, _eps);
        r.Mean.Dispose();
        r.Rstd.Dispose();
        return r.Output;
    }
}

/// <summary>Adds the Transformer's sinusoidal position table (buffer "pe" [maxLength, D], no parameters) to x [B, T, D].</summary>
public sealed class SinusoidalPositionalEncoding : Layer
{
    /// <summary>Creates the layer and its table.</summary>
    public SinusoidalPositionalEncoding(Device device, int maxLength, int dim) : base(device) =>
        Table = Buffer("pe", Ops.SinusoidalPosition(device, maxLength, dim));

    /// <summary>[maxLength, D].</summary>
    public Tensor Table { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => AddPositions("sinusoidal_positional_encoding", x, Table);

    /// <summary>x [B, T, D] + table[0..T) for a [L, D] table (T ≤ L).</summary>
    internal static Tensor AddPositions(string op, Tensor x, Tensor table)
    {
        if (x.Rank != 3 || x.Size(1) > table.Size(0) || x.Size(2) != table.Size(1))
            throw new ShapeMismatchException(op, "x", $"[B, T ≤ {table.Size(0)}, {table.Size(1)}]", GpuNetException.FormatShape(x.ShapeArray()));
        using var rows = table.Slice(0, 0, x.Size(1));
        return Ops.Add(x, rows);
    }
}

/// <summary>Adds a learned position table (parameter "weight" [maxLength, D]) to x [B, T, D].</summary>
public sealed class LearnedPositionalEncoding : Layer
{
    /// <summary>Creates the layer.</summary>
    public LearnedPositionalEncoding(Device device, int maxLength, int dim) : base(device)
    {
        Weight = Parameter("weight", maxLength, dim);
        InitializeAtConstruction();
    }

    /// <summary>N(0, 0.02²), GPT-2's and ViT's position-table initialization.</summary>
    public override void Initialize(ulong seed) => ParameterInit.Normal(Weight, seed, 0.02f);

    /// <summary>[maxLength, D].</summary>
    public Tensor Weight { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x) => SinusoidalPositionalEncoding.AddPositions("learned_positional_encoding", x, Weight);
}

/// <summary>PyTorch's default initializations, shared by the layers.</summary>
internal static class ParameterInit
{
    /// <summary>
    /// nn.Linear's and nn.ConvNd's reset_parameters: kaiming_uniform(a=√5) on the weight, which is U(−1/√fan_in, 1/√fan_in),
    /// and the bias from the same bound.
    /// </summary>
    public static void KaimingUniform(Tensor weight, Tensor? bias, int fanIn, ulong seed)
    {
        float bound = 1f / MathF.Sqrt(Math.Max(fanIn, 1));
        Uniform(weight, seed, bound);
        if (bias is not null)
            Uniform(bias, seed + 1, bound);
    }

    /// <summary>U(−bound, bound).</summary>
    public static void Uniform(Tensor t, ulong seed, float bound)
    {
        var host = new float[t.Length];
        Philox.FillUniform(host, seed, -bound, bound);
        t.CopyFrom(host);
    }

    /// <summary>N(0, std²).</summary>
    public static void Normal(Tensor t, ulong seed, float std)
    {
        var host = new float[t.Length];
        Philox.FillNormal(host, seed, 0, std);
        t.CopyFrom(host);
    }
}

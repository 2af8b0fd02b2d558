namespace GpuNet.Layers;

/// <summary>
/// nn.MultiheadAttention (batch_first): in_proj_weight [3E, E], in_proj_bias [3E], out_proj. Self-attention projects
/// Q, K and V with one fused matmul and feeds strided per-head views to the fused attention kernel; cross-attention
/// projects the query from one input and keys/values from the other through row slices of the same weight.
/// </summary>
public sealed class MultiheadAttention : Module
{
    /// <summary>Creates the layer.</summary>
    public MultiheadAttention(Device device, int embedDim, int heads) : base(device)
    {
        if (embedDim % heads != 0)
            throw new ShapeMismatchException("multihead_attention", "heads", $"a divisor of embed_dim = {embedDim}", heads.ToString());
        (EmbedDim, Heads) = (embedDim, heads);
        InProjWeight = Parameter("in_proj_weight", 3 * embedDim, embedDim);
        InProjBias = Parameter("in_proj_bias", 3 * embedDim);
        OutProj = Child("out_proj", new Linear(device, embedDim, embedDim));
    }

    /// <summary>E and heads.</summary>
    public int EmbedDim { get; }

    /// <summary>Heads.</summary>
    public int Heads { get; }

    /// <summary>[3E, E]: rows 0..E project Q, E..2E K, 2E..3E V.</summary>
    public Tensor InProjWeight { get; }

    /// <summary>[3E].</summary>
    public Tensor InProjBias { get; }

    /// <summary>Output projection.</summary>
    public Linear OutProj { get; }

    /// <summary>
    /// query [B, Tq, E] attends to key/value [B, Tk, E] (the same tensor for self-attention). <paramref name="keyPadding"/>
    /// [B, Tk] marks padded keys with 1 (PyTorch's key_padding_mask); <paramref name="causal"/> masks future keys.
    /// </summary>
    public Tensor Forward(Tensor query, Tensor keyValue, bool causal = false, Tensor? keyPadding = null)
    {
        int b = query.Size(0), tq = query.Size(1), tk = keyValue.Size(1), e = EmbedDim, dh = e / Heads;
        using var scope = Device.Scope();
        Tensor q, k, v;
        if (ReferenceEquals(query, keyValue))
        {
            var qkv = Project(query, 0, 3 * e).Reshape(b, tq, 3, Heads, dh);
            (q, k, v) = (qkv.Select(2, 0), qkv.Select(2, 1), qkv.Select(2, 2));
        }
        else
        {
            q = Project(query, 0, e).Reshape(b, tq, Heads, dh);
            var kv = Project(keyValue, e, 2 * e).Reshape(b, tk, 2, Heads, dh);
            (k, v) = (kv.Select(2, 0), kv.Select(2, 1));
        }
        Tensor? mask = null;
        if (keyPadding is not null)
        {
            // 1 → −inf, 0 → 0 on the device, broadcast over heads and queries: [B, 1, 1, Tk].
            var additive = Ops.Unary("multihead_attention", keyPadding, null, new GpuNet.Kernels.ElementwiseOps.MaskToNegativeInfinity());
            mask = additive.Reshape(b, 1, 1, tk);
        }
        var r = Ops.Attention(q, k, v, causal: causal, mask: mask, layout: AttentionLayout.BNHD);
        r.LogSumExp.Dispose();
        var merged = r.Output.Reshape(b, tq, e);
        return scope.Keep(OutProj.Forward(merged));
    }

    /// <summary>x·W[rows]ᵀ + b[rows] for the rows [start, start + count) of the in-projection.</summary>
    private Tensor Project(Tensor x, int start, int count)
    {
        var shape = x.ShapeArray();
        using var rows = x.Contiguous().Reshape(-1, EmbedDim);
        using var w = InProjWeight.Slice(0, start, count);
        using var bias = InProjBias.Slice(0, start, count);
        using var y = Ops.Linear(rows, w, bias);
        shape[^1] = count;
        return y.Reshape(shape);
    }

    /// <inheritdoc/>
    public override void Initialize(ulong seed)
    {
        FillUniform(InProjWeight, seed, MathF.Sqrt(6f / (EmbedDim + EmbedDim)));
        Ops.Fill(InProjBias, 0f);
        OutProj.Initialize(seed + 1);
    }
}

/// <summary>nn.TransformerEncoderLayer (batch_first): self_attn, linear1, linear2, norm1, norm2; post-norm by default, pre-norm with <c>normFirst</c>.</summary>
public sealed class TransformerEncoderLayer : Module
{
    private readonly FusedActivation _activation;
    private readonly bool _normFirst;

    /// <summary>Creates the layer (dropout is the identity in eval mode; this layer is for inference).</summary>
    public TransformerEncoderLayer(Device device, int dModel, int heads, int dimFeedforward, string activation = "relu", bool normFirst = false, float eps = 1e-5f)
        : base(device)
    {
        _activation = activation == "gelu" ? FusedActivation.Gelu : FusedActivation.Relu;
        _normFirst = normFirst;
        SelfAttn = Child("self_attn", new MultiheadAttention(device, dModel, heads));
        Linear1 = Child("linear1", new Linear(device, dModel, dimFeedforward, activation: _activation));
        Linear2 = Child("linear2", new Linear(device, dimFeedforward, dModel));
        Norm1 = Child("norm1", new LayerNorm(device, dModel, eps));
        Norm2 = Child("norm2", new LayerNorm(device, dModel, eps));
    }

    /// <summary>Sub-layers.</summary>
    public MultiheadAttention SelfAttn { get; }

    /// <summary>Feed-forward expansion (activation fused).</summary>
    public Linear Linear1 { get; }

    /// <summary>Feed-forward projection.</summary>
    public Linear Linear2 { get; }

    /// <summary>First norm.</summary>
    public LayerNorm Norm1 { get; }

    /// <summary>Second norm.</summary>
    public LayerNorm Norm2 { get; }

    /// <summary>x [B, T, E] with an optional key padding mask [B, T] (1 = padded) and causal masking.</summary>
    public Tensor Forward(Tensor x, Tensor? keyPadding = null, bool causal = false)
    {
        using var scope = Device.Scope();
        Tensor h;
        if (_normFirst)
        {
            var n1 = Norm1.Forward(x);
            h = Ops.Add(x, SelfAttn.Forward(n1, n1, causal, keyPadding));
            h = Ops.Add(h, Linear2.Forward(Linear1.Forward(Norm2.Forward(h))));
        }
        else
        {
            h = Norm1.Forward(Ops.Add(x, SelfAttn.Forward(x, x, causal, keyPadding)));
            h = Norm2.Forward(Ops.Add(h, Linear2.Forward(Linear1.Forward(h))));
        }
        return scope.Keep(h);
    }
}

/// <summary>nn.TransformerDecoderLayer (batch_first): causal self_attn, multihead_attn over the memory, linear1, linear2, norm1..3.</summary>
public sealed class TransformerDecoderLayer : Module
{
    private readonly bool _normFirst;

    /// <summary>Creates the layer.</summary>
    public TransformerDecoderLayer(Device device, int dModel, int heads, int dimFeedforward, string activation = "relu", bool normFirst = false, float eps = 1e-5f)
        : base(device)
    {
        _normFirst = normFirst;
        var act = activation == "gelu" ? FusedActivation.Gelu : FusedActivation.Relu;
        SelfAttn = Child("self_attn", new MultiheadAttention(device, dModel, heads));
        CrossAttn = Child("multihead_attn", new MultiheadAttention(device, dModel, heads));
        Linear1 = Child("linear1", new Linear(device, dModel, dimFeedforward, activation: act));
        Linear2 = Child("linear2", new Linear(device, dimFeedforward, dModel));
        Norm1 = Child("norm1", new LayerNorm(device, dModel, eps));
        Norm2 = Child("norm2", new LayerNorm(device, dModel, eps));
        Norm3 = Child("norm3", new LayerNorm(device, dModel, eps));
    }

    /// <summary>Causal self-attention.</summary>
    public MultiheadAttention SelfAttn { get; }

    /// <summary>Cross-attention to the encoder memory.</summary>
    public MultiheadAttention CrossAttn { get; }

    /// <summary>Feed-forward expansion.</summary>
    public Linear Linear1 { get; }

    /// <summary>Feed-forward projection.</summary>
    public Linear Linear2 { get; }

    /// <summary>Norms.</summary>
    public LayerNorm Norm1 { get; }

    /// <summary>Second norm.</summary>
    public LayerNorm Norm2 { get; }

    /// <summary>Third norm.</summary>
    public LayerNorm Norm3 { get; }

    /// <summary>x [B, T, E] attends causally to itself, then to <paramref name="memory"/> [B, S, E] (padding mask [B, S] optional).</summary>
    public Tensor Forward(Tensor x, Tensor memory, Tensor? memoryPadding = null)
    {
        using var scope = Device.Scope();
        Tensor h;
        if (_normFirst)
        {
            var n1 = Norm1.Forward(x);
            h = Ops.Add(x, SelfAttn.Forward(n1, n1, causal: true));
            h = Ops.Add(h, CrossAttn.Forward(Norm2.Forward(h), memory, keyPadding: memoryPadding));
            h = Ops.Add(h, Linear2.Forward(Linear1.Forward(Norm3.Forward(h))));
        }
        else
        {
            h = Norm1.Forward(Ops.Add(x, SelfAttn.Forward(x, x, causal: true)));
            h = Norm2.Forward(Ops.Add(h, CrossAttn.Forward(h, memory, keyPadding: memoryPadding)));
            h = Norm3.Forward(Ops.Add(h, Linear2.Forward(Linear1.Forward(h))));
        }
        return scope.Keep(h);
    }
}

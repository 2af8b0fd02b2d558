namespace GpuNet.Layers;

/// <summary>
/// nn.MultiheadAttention (batch_first): in_proj_weight [3E, E], in_proj_bias [3E], out_proj. Self-attention projects
/// Q, K and V with one fused matmul and feeds strided per-head views to the fused attention kernel; cross-attention
/// projects the query from one input and keys/values from the other through row slices of the same weight. With
/// attention dropout in training mode the probabilities are materialized (<see cref="Ops.AttentionUnfused"/>), as the
/// fused kernel never forms them.
/// </summary>
public sealed class MultiheadAttention : Module
{
    private readonly DropoutSeeds _seeds = new();

    /// <summary>Creates the layer; <paramref name="dropout"/> applies to the attention probabilities in training mode (nn.MultiheadAttention's dropout).</summary>
    public MultiheadAttention(Device device, int embedDim, int heads, float dropout = 0f) : base(device)
    {
        if (!(dropout >= 0f && dropout < 1f))
            throw new InvalidArgumentException("multihead_attention", "dropout", "a probability in [0, 1)", dropout.ToString());
        Dropout = dropout;
        if (embedDim % heads != 0)
            throw new ShapeMismatchException("multihead_attention", "heads", $"a divisor of embed_dim = {embedDim}", heads.ToString());
        (EmbedDim, Heads) = (embedDim, heads);
        InProjWeight = Parameter("in_proj_weight", 3 * embedDim, embedDim);
        InProjBias = Parameter("in_proj_bias", 3 * embedDim);
        OutProj = Child("out_proj", new Linear(device, embedDim, embedDim));
        InitializeAtConstruction();
    }

    /// <summary>E and heads.</summary>
    public int EmbedDim { get; }

    /// <summary>Heads.</summary>
    public int Heads { get; }

    /// <summary>Drop probability of the attention weights in training mode.</summary>
    public float Dropout { get; }

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
        Tensor attended;
        if (Training && Dropout > 0f)
            attended = Ops.AttentionUnfused(q, k, v, causal: causal, mask: mask, layout: AttentionLayout.BNHD, dropout: Dropout, dropoutSeed: _seeds.Next());
        else
        {
            var r = Ops.Attention(q, k, v, causal: causal, mask: mask, layout: AttentionLayout.BNHD);
            r.LogSumExp.Dispose();
            attended = r.Output;
        }
        var merged = attended.Reshape(b, tq, e);
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
        ParameterInit.Uniform(InProjWeight, seed, MathF.Sqrt(6f / (EmbedDim + EmbedDim)));
        Ops.Fill(InProjBias, 0f);
        OutProj.Initialize(seed + 1);
    }
}

/// <summary>
/// nn.TransformerEncoderLayer (batch_first): self_attn, linear1, linear2, norm1, norm2; post-norm by default, pre-norm with
/// <c>normFirst</c>. In training mode <c>dropout</c> (PyTorch's default 0.1) drops the attention probabilities, the
/// feed-forward activations and both residual branches, as PyTorch does; in eval mode it is the identity.
/// </summary>
public sealed class TransformerEncoderLayer : Module
{
    private readonly FusedActivation _activation;
    private readonly bool _normFirst;
    private readonly Dropout _dropAttention, _dropHidden, _dropFeedForward;

    /// <summary>Creates the layer.</summary>
    public TransformerEncoderLayer(Device device, int dModel, int heads, int dimFeedforward, string activation = "relu", bool normFirst = false, float eps = 1e-5f,
        float dropout = 0.1f) : base(device)
    {
        _activation = activation == "gelu" ? FusedActivation.Gelu : FusedActivation.Relu;
        _normFirst = normFirst;
        SelfAttn = Child("self_attn", new MultiheadAttention(device, dModel, heads, dropout));
        (_dropAttention, _dropHidden, _dropFeedForward) = (Child("dropout1", new Dropout(device, dropout)), Child("dropout", new Dropout(device, dropout)),
            Child("dropout2", new Dropout(device, dropout)));
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
            h = Ops.Add(x, _dropAttention.Forward(SelfAttn.Forward(n1, n1, causal, keyPadding)));
            h = Ops.Add(h, FeedForward(Norm2.Forward(h)));
        }
        else
        {
            h = Norm1.Forward(Ops.Add(x, _dropAttention.Forward(SelfAttn.Forward(x, x, causal, keyPadding))));
            h = Norm2.Forward(Ops.Add(h, FeedForward(h)));
        }
        return scope.Keep(h);
    }

    private Tensor FeedForward(Tensor x) => _dropFeedForward.Forward(Linear2.Forward(_dropHidden.Forward(Linear1.Forward(x))));
}

/// <summary>
/// nn.TransformerDecoderLayer (batch_first): causal self_attn, multihead_attn over the memory, linear1, linear2, norm1..3.
/// Dropout (default 0.1) as in <see cref="TransformerEncoderLayer"/>, on three residual branches.
/// </summary>
public sealed class TransformerDecoderLayer : Module
{
    private readonly bool _normFirst;
    private readonly Dropout _dropSelf, _dropCross, _dropHidden, _dropFeedForward;

    /// <summary>Creates the layer.</summary>
    public TransformerDecoderLayer(Device device, int dModel, int heads, int dimFeedforward, string activation = "relu", bool normFirst = false, float eps = 1e-5f,
        float dropout = 0.1f) : base(device)
    {
        _normFirst = normFirst;
        var act = activation == "gelu" ? FusedActivation.Gelu : FusedActivation.Relu;
        SelfAttn = Child("self_attn", new MultiheadAttention(device, dModel, heads, dropout));
        CrossAttn = Child("multihead_attn", new MultiheadAttention(device, dModel, heads, dropout));
        (_dropSelf, _dropCross, _dropHidden, _dropFeedForward) = (Child("dropout1", new Dropout(device, dropout)), Child("dropout2", new Dropout(device, dropout)),
            Child("dropout", new Dropout(device, dropout)), Child("dropout3", new Dropout(device, dropout)));
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
            h = Ops.Add(x, _dropSelf.Forward(SelfAttn.Forward(n1, n1, causal: true)));
            h = Ops.Add(h, _dropCross.Forward(CrossAttn.Forward(Norm2.Forward(h), memory, keyPadding: memoryPadding)));
            h = Ops.Add(h, FeedForward(Norm3.Forward(h)));
        }
        else
        {
            h = Norm1.Forward(Ops.Add(x, _dropSelf.Forward(SelfAttn.Forward(x, x, causal: true))));
            h = Norm2.Forward(Ops.Add(h, _dropCross.Forward(CrossAttn.Forward(h, memory, keyPadding: memoryPadding))));
            h = Norm3.Forward(Ops.Add(h, FeedForward(h)));
        }
        return scope.Keep(h);
    }

    private Tensor FeedForward(Tensor x) => _dropFeedForward.Forward(Linear2.Forward(_dropHidden.Forward(Linear1.Forward(x))));
}

/// <summary>
/// The original encoder–decoder Transformer as a whole model: source and target embeddings scaled by √d plus the
/// sinusoidal position table (<c>pe.pe</c>), nn.Transformer's stacks (<c>transformer.encoder.layers.i</c>,
/// <c>transformer.encoder.norm</c>, <c>transformer.decoder.layers.i</c>, <c>transformer.decoder.norm</c>; post-norm layers
/// with a final LayerNorm per stack) and the projection to the target vocabulary (<c>generator</c>).
/// </summary>
public sealed class TransformerModel : Module
{
    private readonly Embedding _source, _target;
    private readonly SinusoidalPositionalEncoding _positions;
    private readonly TransformerEncoderLayer[] _encoder;
    private readonly TransformerDecoderLayer[] _decoder;
    private readonly LayerNorm _encoderNorm, _decoderNorm;
    private readonly Linear _generator;

    /// <summary>Creates the model.</summary>
    public TransformerModel(Device device, int sourceVocab, int targetVocab, int dModel, int heads, int dimFeedforward, int layers, int maxLength)
        : base(device)
    {
        DModel = dModel;
        _source = Child("src_emb", new Embedding(device, sourceVocab, dModel));
        _target = Child("tgt_emb", new Embedding(device, targetVocab, dModel));
        _positions = Child("pe", new SinusoidalPositionalEncoding(device, maxLength, dModel));
        _encoder = Enumerable.Range(0, layers).Select(i => Child($"transformer.encoder.layers.{i}", new TransformerEncoderLayer(device, dModel, heads, dimFeedforward))).ToArray();
        _encoderNorm = Child("transformer.encoder.norm", new LayerNorm(device, dModel));
        _decoder = Enumerable.Range(0, layers).Select(i => Child($"transformer.decoder.layers.{i}", new TransformerDecoderLayer(device, dModel, heads, dimFeedforward))).ToArray();
        _decoderNorm = Child("transformer.decoder.norm", new LayerNorm(device, dModel));
        _generator = Child("generator", new Linear(device, dModel, targetVocab));
    }

    /// <summary>Model width.</summary>
    public int DModel { get; }

    private Tensor Embed(Embedding table, ReadOnlySpan<int> ids, int batch, int length)
    {
        using var tokens = table.Forward(ids, batch, length);
        using var scaled = Ops.Scale(tokens, MathF.Sqrt(DModel));
        return _positions.Forward(scaled);
    }

    /// <summary>The encoder memory [B, S, D] of source ids [B, S] (row-major); <paramref name="sourcePadding"/> [B, S] marks padding with 1.</summary>
    public Tensor Encode(ReadOnlySpan<int> source, int batch, int sourceLength, Tensor? sourcePadding = null)
    {
        using var scope = Device.Scope();
        var h = Embed(_source, source, batch, sourceLength);
        foreach (var layer in _encoder)
            h = layer.Forward(h, sourcePadding);
        return scope.Keep(_encoderNorm.Forward(h));
    }

    /// <summary>Vocabulary logits [B, T, V] for target ids [B, T] attending causally to themselves and to <paramref name="memory"/>.</summary>
    public Tensor Decode(ReadOnlySpan<int> target, int batch, int targetLength, Tensor memory, Tensor? sourcePadding = null)
    {
        using var scope = Device.Scope();
        var h = Embed(_target, target, batch, targetLength);
        foreach (var layer in _decoder)
            h = layer.Forward(h, memory, sourcePadding);
        return scope.Keep(_generator.Forward(_decoderNorm.Forward(h)));
    }

    /// <summary>Teacher-forced logits [B, T, V]: <see cref="Encode"/> then <see cref="Decode"/>.</summary>
    public Tensor Forward(ReadOnlySpan<int> source, int sourceLength, ReadOnlySpan<int> target, int targetLength, int batch, Tensor? sourcePadding = null)
    {
        using var memory = Encode(source, batch, sourceLength, sourcePadding);
        return Decode(target, batch, targetLength, memory, sourcePadding);
    }
}

/// <summary>
/// Mixture-of-experts feed-forward (Shazeer et al., 2017; Mixtral's top-k renormalized gating): a bias-free linear
/// <c>router</c>, softmax, the k best experts per token with their probabilities renormalized, tokens dispatched into
/// expert order, each expert (<c>experts.e</c>: Linear → GELU → Linear, names 0 and 2) run as one matmul pair over its
/// contiguous block of dispatched rows, and the weighted combine back to token order.
/// </summary>
public sealed class MoeFeedForward : Layer
{
    private readonly Linear _router;
    private readonly (Linear Up, Linear Down)[] _experts;

    /// <summary>Creates the layer: <paramref name="experts"/> experts of hidden width <paramref name="hidden"/>, top-<paramref name="k"/> routing.</summary>
    public MoeFeedForward(Device device, int dim, int hidden, int experts, int k) : base(device)
    {
        if (k < 1 || k > experts)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"moe: k must be in [1, {experts}]");
        (Dim, K) = (dim, k);
        _router = Child("router", new Linear(device, dim, experts, bias: false));
        _experts = new (Linear, Linear)[experts];
        for (int e = 0; e < experts; e++)
        {
            var up = new Linear(device, dim, hidden, activation: FusedActivation.Gelu);
            var down = new Linear(device, hidden, dim);
            Child($"experts.{e}", new Sequential(device, ("0", up), ("2", down)));
            _experts[e] = (up, down);
        }
    }

    /// <summary>Model width.</summary>
    public int Dim { get; }

    /// <summary>Experts per token.</summary>
    public int K { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        if (x.Size(-1) != Dim)
            throw new ShapeMismatchException("moe", "x", $"[..., {Dim}]", GpuNetException.FormatShape(x.ShapeArray()));
        using var scope = Device.Scope();
        var tokens = x.Contiguous().Reshape(-1, Dim);
        var logits = _router.Forward(tokens);
        using var gating = Ops.TopKGating(logits, K);
        using var routing = Ops.MoeRoute(gating.Indices, _experts.Length);
        var dispatched = Ops.MoeDispatch(tokens, routing);
        // One host read of E + 1 offsets per layer sizes the expert matmuls; everything else stays on the device. Each expert's
        // rows are a new tensor, joined by one concat (rows past the kept total are zeros), so the same code trains.
        var offsets = routing.ReadOffsets();
        var parts = new List<Tensor>();
        for (int e = 0; e < _experts.Length; e++)
        {
            int rows = offsets[e + 1] - offsets[e];
            if (rows == 0)
                continue;
            using var input = dispatched.Slice(0, offsets[e], rows);
            using var hidden = _experts[e].Up.Forward(input);
            parts.Add(_experts[e].Down.Forward(hidden));
        }
        if (offsets[^1] < dispatched.Size(0))
            parts.Add(Tensor.Zeros(Device, dispatched.Size(0) - offsets[^1], Dim));
        var expertOut = parts.Count == 1 ? parts[0] : Ops.Concat(parts, 0);
        var combined = Ops.MoeCombine(expertOut, gating.Weights, routing);
        return scope.Keep(combined.Reshape(x.ShapeArray()));
    }
}

/// <summary>A pre-norm Transformer block whose feed-forward is a <see cref="MoeFeedForward"/>: ln1, attn (causal), ln2, moe.</summary>
public sealed class MoeBlock : Layer
{
    private readonly LayerNorm _ln1, _ln2;
    private readonly CausalSelfAttention _attention;
    private readonly MoeFeedForward _moe;

    /// <summary>Creates the block.</summary>
    public MoeBlock(Device device, int dim, int heads, int hidden, int experts, int k) : base(device)
    {
        _ln1 = Child("ln1", new LayerNorm(device, dim));
        _attention = Child("attn", new CausalSelfAttention(device, dim, heads));
        _ln2 = Child("ln2", new LayerNorm(device, dim));
        _moe = Child("moe", new MoeFeedForward(device, dim, hidden, experts, k));
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        using var scope = Device.Scope();
        var h = Ops.Add(x, _attention.Forward(_ln1.Forward(x)));
        return scope.Keep(Ops.Add(h, _moe.Forward(_ln2.Forward(h))));
    }
}

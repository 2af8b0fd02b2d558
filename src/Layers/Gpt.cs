namespace GpuNet.Layers;

/// <summary>Sizes of a GPT.</summary>
/// <param name="Vocab">Vocabulary size.</param>
/// <param name="Context">Longest sequence (learned positions).</param>
/// <param name="Dim">Model width.</param>
/// <param name="Heads">Attention heads (Dim must be divisible by it).</param>
/// <param name="Layers">Transformer blocks.</param>
public sealed record GptConfig(int Vocab, int Context, int Dim, int Heads, int Layers);

/// <summary>Keys and values of every layer for incremental decoding: [B, H, Context, d_head] each.</summary>
public sealed class KvCache : IDisposable
{
    internal KvCache(Device device, GptConfig c, int batch)
    {
        int dh = c.Dim / c.Heads;
        Keys = Enumerable.Range(0, c.Layers).Select(_ => Tensor.Zeros(device, batch, c.Heads, c.Context, dh)).ToArray();
        Values = Enumerable.Range(0, c.Layers).Select(_ => Tensor.Zeros(device, batch, c.Heads, c.Context, dh)).ToArray();
    }

    internal Tensor[] Keys { get; }

    internal Tensor[] Values { get; }

    /// <summary>Positions filled so far.</summary>
    public int Length { get; internal set; }

    /// <summary>Frees the cache.</summary>
    public void Dispose()
    {
        foreach (var t in Keys.Concat(Values))
            t.Dispose();
    }
}

/// <summary>
/// Causal multi-head self-attention with a fused QKV projection (names <c>qkv</c>, <c>proj</c>). The projection's output
/// [B, T, 3·C] is viewed as [B, T, 3, H, d] and q, k, v are strided [B, T, H, d] views fed straight to the fused kernel.
/// </summary>
public sealed class CausalSelfAttention : Module
{
    /// <summary>Creates the layer.</summary>
    public CausalSelfAttention(Device device, int dim, int heads) : base(device)
    {
        if (dim % heads != 0)
            throw new ShapeMismatchException("causal_self_attention", "heads", $"a divisor of dim = {dim}", heads.ToString());
        (Dim, Heads) = (dim, heads);
        Qkv = Child("qkv", new Linear(device, dim, 3 * dim));
        Proj = Child("proj", new Linear(device, dim, dim));
    }

    /// <summary>Width and heads.</summary>
    public int Dim { get; }

    /// <summary>Heads.</summary>
    public int Heads { get; }

    /// <summary>The fused Q, K, V projection.</summary>
    public Linear Qkv { get; }

    /// <summary>The output projection.</summary>
    public Linear Proj { get; }

    /// <summary>
    /// x [B, T, C] → [B, T, C]. With a cache, the new keys and values are appended at <paramref name="position"/>; a single
    /// new token (T = 1) then attends to the whole cache through the decode kernel.
    /// </summary>
    public Tensor Forward(Tensor x, KvCache? cache = null, int layer = 0, int position = 0)
    {
        int b = x.Size(0), t = x.Size(1), dh = Dim / Heads;
        using var scope = Device.Scope();
        var qkv = Qkv.Forward(x).Reshape(b, t, 3, Heads, dh);
        var (q, k, v) = (qkv.Select(2, 0), qkv.Select(2, 1), qkv.Select(2, 2));
        Tensor heads;
        if (cache is not null)
        {
            Ops.KvCacheAppend(cache.Keys[layer], k.Permute(0, 2, 1, 3), position);
            Ops.KvCacheAppend(cache.Values[layer], v.Permute(0, 2, 1, 3), position);
        }
        if (cache is not null && t == 1)
        {
            // The cache is [B, H, L, d]: q joins it in that layout (a strided view), and the output goes back to [B, 1, H, d].
            var lengths = Tensor.FromArray(Device, Enumerable.Repeat((float)(position + 1), b).ToArray());
            var decoded = KeepOutput(Ops.AttentionDecode(q.Permute(0, 2, 1, 3), cache.Keys[layer], cache.Values[layer], lengths));
            heads = Ops.Permute(decoded, 0, 2, 1, 3);
        }
        else
        {
            if (cache is not null && position != 0)
                throw new ArgumentException("causal_self_attention: a multi-token step with a cache must start at position 0 (prefill)");
            heads = KeepOutput(Ops.Attention(q, k, v, causal: true, layout: AttentionLayout.BNHD));
        }
        var merged = heads.Reshape(b, t, Dim);
        return scope.Keep(Proj.Forward(merged));
    }

    private static Tensor KeepOutput(AttentionResult r)
    {
        r.LogSumExp.Dispose();
        return r.Output;
    }
}

/// <summary>A pre-norm GPT block: x + attn(ln1(x)), then + mlp(ln2(x)) with a 4× GELU MLP (names ln1, attn, ln2, mlp.fc, mlp.proj).</summary>
public sealed class GptBlock : Module
{
    /// <summary>Creates the block.</summary>
    public GptBlock(Device device, int dim, int heads) : base(device)
    {
        Ln1 = Child("ln1", new LayerNorm(device, dim));
        Attn = Child("attn", new CausalSelfAttention(device, dim, heads));
        Ln2 = Child("ln2", new LayerNorm(device, dim));
        Mlp = Child("mlp", new Sequential4(device, dim));
    }

    /// <summary>Sub-layers.</summary>
    public LayerNorm Ln1 { get; }

    /// <summary>Attention.</summary>
    public CausalSelfAttention Attn { get; }

    /// <summary>Second norm.</summary>
    public LayerNorm Ln2 { get; }

    /// <summary>MLP.</summary>
    public Sequential4 Mlp { get; }

    /// <summary>One block.</summary>
    public Tensor Forward(Tensor x, KvCache? cache, int layer, int position)
    {
        using var scope = Device.Scope();
        var a = Attn.Forward(Ln1.Forward(x), cache, layer, position);
        var h = Ops.Add(x, a);
        var m = Mlp.Forward(Ln2.Forward(h));
        return scope.Keep(Ops.Add(h, m));
    }

    /// <summary>The MLP: fc (C → 4C, exact GELU fused into its epilogue) then proj (4C → C).</summary>
    public sealed class Sequential4 : Layer
    {
        /// <summary>Creates the MLP.</summary>
        public Sequential4(Device device, int dim) : base(device)
        {
            Fc = Child("fc", new Linear(device, dim, 4 * dim, activation: FusedActivation.Gelu));
            Proj = Child("proj", new Linear(device, 4 * dim, dim));
        }

        /// <summary>Expansion.</summary>
        public Linear Fc { get; }

        /// <summary>Projection.</summary>
        public Linear Proj { get; }

        /// <inheritdoc/>
        public override Tensor Forward(Tensor x)
        {
            using var h = Fc.Forward(x);
            return Proj.Forward(h);
        }
    }
}

/// <summary>
/// Decoder-only Transformer (GPT): token + learned position embeddings, pre-norm blocks with causal self-attention and a
/// 4× GELU MLP, final LayerNorm, LM head without bias. State-dict names: tok_emb, pos_emb, blocks.N.*, ln_f, head.
/// </summary>
public sealed class Gpt : Module
{
    /// <summary>Creates the model.</summary>
    public Gpt(Device device, GptConfig config) : base(device)
    {
        Config = config;
        TokEmb = Child("tok_emb", new Embedding(device, config.Vocab, config.Dim));
        PosEmb = Child("pos_emb", new Embedding(device, config.Context, config.Dim));
        Blocks = Enumerable.Range(0, config.Layers).Select(i => Child($"blocks.{i}", new GptBlock(device, config.Dim, config.Heads))).ToArray();
        LnF = Child("ln_f", new LayerNorm(device, config.Dim));
        Head = Child("head", new Linear(device, config.Dim, config.Vocab, bias: false));
    }

    /// <summary>Sizes.</summary>
    public GptConfig Config { get; }

    /// <summary>Token embedding.</summary>
    public Embedding TokEmb { get; }

    /// <summary>Position embedding.</summary>
    public Embedding PosEmb { get; }

    /// <summary>Blocks.</summary>
    public GptBlock[] Blocks { get; }

    /// <summary>Final norm.</summary>
    public LayerNorm LnF { get; }

    /// <summary>LM head.</summary>
    public Linear Head { get; }

    /// <summary>A cache for incremental decoding of <paramref name="batch"/> sequences.</summary>
    public KvCache NewCache(int batch = 1) => new(Device, Config, batch);

    /// <summary>Logits [B, T, V] for token ids [B·T] at positions position..position+T−1 (appending to the cache when given).</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, int batch, int length, KvCache? cache = null, int position = 0)
    {
        if (position + length > Config.Context)
            throw new ShapeMismatchException("gpt", "ids", $"positions within the context of {Config.Context}", $"positions {position}..{position + length - 1}");
        using var scope = Device.Scope();
        var tok = TokEmb.Forward(ids, batch, length);
        var positions = Enumerable.Range(position, length).ToArray();
        var pos = PosEmb.Forward(positions, length);
        var x = Ops.Add(tok, pos);
        for (int i = 0; i < Blocks.Length; i++)
            x = Blocks[i].Forward(x, cache, i, position);
        if (cache is not null)
            cache.Length = position + length;
        return scope.Keep(Head.Forward(LnF.Forward(x)));
    }

    /// <summary>
    /// Extends <paramref name="prompt"/> by <paramref name="maxNewTokens"/> tokens: temperature (0 = greedy), top-k, top-p,
    /// Philox sampling with <paramref name="seed"/> (step s uses seed + s). With <paramref name="useCache"/>, the prompt is
    /// run once and each new token attends to the KV cache; without, the whole sequence is recomputed every step.
    /// </summary>
    public int[] Generate(IReadOnlyList<int> prompt, int maxNewTokens, float temperature = 1f, int topK = 0, float topP = 1f, ulong seed = 0, bool useCache = true)
    {
        if (prompt.Count == 0)
            throw new ShapeMismatchException("generate", "prompt", "at least one token", "none");
        var tokens = new List<int>(prompt);
        using var _ = Autograd.NoGrad();
        using var cache = useCache ? NewCache() : null;
        for (int step = 0; step < maxNewTokens && tokens.Count < Config.Context; step++)
        {
            using var scope = Device.Scope();
            Tensor logits;
            if (!useCache)
                logits = Forward(tokens.ToArray(), 1, tokens.Count);
            else if (step == 0)
                logits = Forward(tokens.ToArray(), 1, tokens.Count, cache, 0);
            else
                logits = Forward(new[] { tokens[^1] }, 1, 1, cache, tokens.Count - 1);
            var last = logits.Select(0, 0).Slice(0, logits.Size(1) - 1, 1);
            var next = Ops.Sample(last, temperature, topK, topP, seed + (ulong)step);
            tokens.Add((int)next.ToArray()[0]);
        }
        return tokens.ToArray();
    }
}

namespace GpuNet.Layers;

/// <summary>The β schedules of denoising diffusion.</summary>
public enum BetaSchedule
{
    /// <summary>β linear from β₁ to β_T (Ho et al., 2020: 1e-4 to 0.02).</summary>
    Linear,
    /// <summary>ᾱ_t = f(t)/f(0) with f(t) = cos²((t/T + s)/(1 + s)·π/2), s = 0.008, β clipped at 0.999 (Nichol and Dhariwal, 2021).</summary>
    Cosine,
}

/// <summary>
/// DDPM (Ho et al., 2020): the noise schedule, the forward jump q(x_t | x_0), the reverse step from predicted noise and
/// the T-step sampling loop. Schedule arithmetic is done on the host in double precision (a few numbers per step); every
/// tensor operation runs on the device. The reverse variance is the posterior's, β̃_t = β_t(1 − ᾱ_{t−1})/(1 − ᾱ_t), and the
/// last step (t = 0) adds no noise.
/// </summary>
public sealed class Ddpm
{
    /// <summary>Creates the schedule for <paramref name="steps"/> steps.</summary>
    public Ddpm(int steps, BetaSchedule schedule = BetaSchedule.Linear, double betaStart = 1e-4, double betaEnd = 0.02)
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "ddpm: needs at least one step");
        Steps = steps;
        Schedule = schedule;
        Betas = schedule == BetaSchedule.Linear ? LinearBetas(steps, betaStart, betaEnd) : CosineBetas(steps);
        AlphaBars = new double[steps];
        double product = 1;
        for (int t = 0; t < steps; t++)
            AlphaBars[t] = product *= 1 - Betas[t];
    }

    /// <summary>T.</summary>
    public int Steps { get; }

    /// <summary>The schedule kind.</summary>
    public BetaSchedule Schedule { get; }

    /// <summary>β_t for t = 0 … T − 1.</summary>
    public double[] Betas { get; }

    /// <summary>ᾱ_t = Π_{s ≤ t} (1 − β_s).</summary>
    public double[] AlphaBars { get; }

    private static double[] LinearBetas(int steps, double start, double end) =>
        Enumerable.Range(0, steps).Select(i => steps == 1 ? start : start + (end - start) * i / (steps - 1)).ToArray();

    private static double[] CosineBetas(int steps)
    {
        const double s = 0.008;
        double F(int t) => Math.Pow(Math.Cos(((double)t / steps + s) / (1 + s) * Math.PI / 2), 2);
        return Enumerable.Range(0, steps).Select(t => Math.Min(1 - F(t + 1) / F(t), 0.999)).ToArray();
    }

    /// <summary>
    /// x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε for x₀ [B, ...] with one timestep per batch element and noise ε shaped like x₀.
    /// </summary>
    public Tensor QSample(Tensor x0, IReadOnlyList<int> timesteps, Tensor noise)
    {
        const string op = "ddpm_q_sample";
        if (timesteps.Count != x0.Size(0))
            throw new ShapeMismatchException(op, "timesteps", $"{x0.Size(0)} timesteps (one per batch element)", $"{timesteps.Count}");
        if (!noise.ShapeArray().SequenceEqual(x0.ShapeArray()))
            throw new ShapeMismatchException(op, "noise", GpuNetException.FormatShape(x0.ShapeArray()), GpuNetException.FormatShape(noise.ShapeArray()));
        foreach (int t in timesteps)
            CheckStep(op, t);
        var coefShape = new int[x0.Rank];
        Array.Fill(coefShape, 1);
        coefShape[0] = x0.Size(0);
        using var scope = x0.Device.Scope();
        var signal = Tensor.FromArray(x0.Device, timesteps.Select(t => (float)Math.Sqrt(AlphaBars[t])).ToArray(), coefShape);
        var spread = Tensor.FromArray(x0.Device, timesteps.Select(t => (float)Math.Sqrt(1 - AlphaBars[t])).ToArray(), coefShape);
        return scope.Keep(Ops.Add(Ops.Mul(x0, signal), Ops.Mul(noise, spread)));
    }

    /// <summary>
    /// One reverse step: x_{t−1} = (x_t − β_t/√(1 − ᾱ_t)·ε_θ)/√α_t + σ_t·z with σ_t² = β̃_t; <paramref name="noise"/> z is
    /// required for t &gt; 0 and ignored at t = 0.
    /// </summary>
    public Tensor Step(Tensor xt, Tensor predictedNoise, int t, Tensor? noise)
    {
        const string op = "ddpm_step";
        CheckStep(op, t);
        if (t > 0 && noise is null)
            throw new ArgumentException($"{op}: step {t} > 0 needs a noise tensor z", nameof(noise));
        double alpha = 1 - Betas[t];
        using var scope = xt.Device.Scope();
        var centred = Ops.Axpy((float)(-Betas[t] / Math.Sqrt(1 - AlphaBars[t])), predictedNoise, xt);
        var mean = Ops.Scale(centred, (float)(1 / Math.Sqrt(alpha)));
        if (t == 0)
            return scope.Keep(mean);
        double variance = Betas[t] * (1 - AlphaBars[t - 1]) / (1 - AlphaBars[t]);
        return scope.Keep(Ops.Axpy((float)Math.Sqrt(variance), noise!, mean));
    }

    /// <summary>
    /// The full reverse process from x_T: for t = T − 1 … 0, ε = <paramref name="noiseModel"/>(x_t, t as a [B] tensor), then
    /// <see cref="Step"/>. <paramref name="noise"/> supplies z for step t (fresh normal draws from <paramref name="seed"/>
    /// when null). Each step's intermediates are freed before the next.
    /// </summary>
    public Tensor Sample(Func<Tensor, Tensor, Tensor> noiseModel, Tensor xT, Func<int, Tensor>? noise = null, ulong seed = 0)
    {
        // Sampling never differentiates: nothing is recorded even if the noise model is still in training mode.
        using var _ = Autograd.NoGrad();
        var device = xT.Device;
        Tensor x = xT.Contiguous();
        for (int t = Steps - 1; t >= 0; t--)
        {
            using var scope = device.Scope();
            var steps = Ops.Full(device, t, x.Size(0));
            var eps = noiseModel(x, steps);
            var z = t == 0 ? null : noise?.Invoke(t) ?? Ops.RandomNormal(device, x.ShapeArray(), seed + (ulong)t);
            var next = scope.Keep(Step(x, eps, t, z));
            x.Dispose();
            x = next;
        }
        return x;
    }

    /// <summary>
    /// DDIM's sampler (Song et al., 2021) over <paramref name="sampleSteps"/> evenly spaced timesteps τ of the T
    /// (τ_i = ⌊i·T / steps⌋, visited from the last): at each, x̂₀ = (x_t − √(1 − ᾱ_t)·ε)/√ᾱ_t and
    /// x_s = √ᾱ_s·x̂₀ + √(1 − ᾱ_s − σ²)·ε + σ·z for the next timestep s (ᾱ = 1 past the first), with
    /// σ = η·√((1 − ᾱ_s)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_s). η = 0 is deterministic; η = 1 over all T steps is DDPM's sampler
    /// (σ² = β̃_t and the same mean), which a test checks step for step. <paramref name="noise"/> supplies z for timestep t
    /// (fresh normal draws from <paramref name="seed"/> when null; not drawn when σ = 0).
    /// </summary>
    public Tensor SampleDdim(Func<Tensor, Tensor, Tensor> noiseModel, Tensor xT, int sampleSteps, double eta = 0, Func<int, Tensor>? noise = null, ulong seed = 0)
    {
        const string op = "ddim_sample";
        if (sampleSteps < 1 || sampleSteps > Steps)
            throw new InvalidArgumentException(op, "sampleSteps", $"1 to {Steps} (the schedule's T)", sampleSteps.ToString());
        if (eta < 0)
            throw new InvalidArgumentException(op, "eta", "η ≥ 0", eta.ToString());
        var taus = Enumerable.Range(0, sampleSteps).Select(i => (int)((long)i * Steps / sampleSteps)).ToArray();
        using var _ = Autograd.NoGrad();
        var device = xT.Device;
        Tensor x = xT.Contiguous();
        for (int i = sampleSteps - 1; i >= 0; i--)
        {
            int t = taus[i];
            double abT = AlphaBars[t], abS = i > 0 ? AlphaBars[taus[i - 1]] : 1.0;
            double sigma = eta * Math.Sqrt((1 - abS) / (1 - abT)) * Math.Sqrt(Math.Max(0, 1 - abT / abS));
            using var scope = device.Scope();
            var eps = noiseModel(x, Ops.Full(device, t, x.Size(0)));
            // x_s = √ᾱ_s/√ᾱ_t·x_t + (√(1 − ᾱ_s − σ²) − √ᾱ_s·√(1 − ᾱ_t)/√ᾱ_t)·ε + σ·z, x̂₀ folded into two coefficients.
            double keep = Math.Sqrt(abS / abT);
            double towardNoise = Math.Sqrt(Math.Max(0, 1 - abS - sigma * sigma)) - Math.Sqrt(abS) * Math.Sqrt(1 - abT) / Math.Sqrt(abT);
            var next = Ops.Axpy((float)towardNoise, eps, Ops.Scale(x, (float)keep));
            if (sigma > 0)
                next = Ops.Axpy((float)sigma, noise?.Invoke(t) ?? Ops.RandomNormal(device, x.ShapeArray(), seed + (ulong)t), next);
            scope.Keep(next);
            x.Dispose();
            x = next;
        }
        return x;
    }

    private void CheckStep(string op, int t)
    {
        if (t < 0 || t >= Steps)
            throw new ShapeMismatchException(op, "t", $"a timestep in [0, {Steps})", t.ToString());
    }
}

/// <summary>
/// The timestep MLP of diffusion models: the sinusoidal <c>timestep_embedding</c> of t (cos half, sin half) through
/// Linear → SiLU → Linear (names 0 and 2).
/// </summary>
public sealed class TimestepEmbedder : Module
{
    private readonly Linear _in, _out;

    /// <summary>Creates the embedder: a <paramref name="frequencyDim"/>-wide sinusoid to <paramref name="hidden"/> and then <paramref name="dim"/>.</summary>
    public TimestepEmbedder(Device device, int frequencyDim, int hidden, int dim) : base(device)
    {
        FrequencyDim = frequencyDim;
        _in = Child("0", new Linear(device, frequencyDim, hidden, activation: FusedActivation.Silu));
        _out = Child("2", new Linear(device, hidden, dim));
    }

    /// <summary>Width of the sinusoidal embedding.</summary>
    public int FrequencyDim { get; }

    /// <summary>t [B] (float timesteps) → [B, dim].</summary>
    public Tensor Forward(Tensor timesteps)
    {
        using var sinusoid = Ops.TimestepEmbedding(timesteps, FrequencyDim);
        using var h = _in.Forward(sinusoid);
        return _out.Forward(h);
    }
}

/// <summary>A noise-prediction network the diffusion trainer and samplers drive (<see cref="DiffusionTraining"/>).</summary>
public interface IDiffusionModel
{
    /// <summary>Classes it is conditioned on (0: unconditional).</summary>
    int Classes { get; }

    /// <summary>The label meaning "no class" (classifier-free guidance), or null when the model has none.</summary>
    int? NullClass { get; }

    /// <summary>Predicted noise for x_t [B, C, H, W], timesteps [B] and, when conditional, one label per image.</summary>
    Tensor Forward(Tensor x, Tensor timesteps, ReadOnlySpan<int> labels = default);
}

/// <summary>How a <see cref="DiT"/> is told the timestep and class.</summary>
public enum DiTConditioning
{
    /// <summary>Their embedding added to every patch token; plain pre-norm Transformer blocks (the seed's DiT).</summary>
    InContext,

    /// <summary>DiT's adaLN-Zero: every block's LayerNorms scaled and shifted, and its residual branches gated, by a linear map of
    /// SiLU(condition) that starts at zero (each block starts as the identity); the final layer likewise (<see cref="DiTBlock"/>).</summary>
    AdaLnZero,
}

/// <summary>
/// DiT (Peebles and Xie, 2023): patch-embedding convolution (<c>x_embedder</c>), learned positions (<c>pos_embed</c> [1, T, D]),
/// the timestep MLP (<c>t_embedder</c>) plus the class embedding (<c>y_embedder</c>; one more row, the last, for "no class" when
/// built with a null class for classifier-free guidance) as the condition, Transformer blocks (<c>blocks.i</c>), the final
/// norm and a linear head to p·p·C values per patch, and unpatchify back to [N, C, H, W]. <see cref="DiTConditioning.InContext"/>
/// (the seed's model) adds the condition to every token and uses pre-norm encoder layers with a final LayerNorm
/// (<c>final_norm</c>, <c>head</c>); <see cref="DiTConditioning.AdaLnZero"/> feeds it to every <see cref="DiTBlock"/> and to
/// the adaLN final layer (<c>final_layer</c>), as the paper's best variant.
/// </summary>
public sealed class DiT : Module, IDiffusionModel
{
    private readonly Conv2d _patchEmbed;
    private readonly TimestepEmbedder _time;
    private readonly Embedding _classes;
    private readonly TransformerEncoderLayer[] _blocks = [];
    private readonly DiTBlock[] _adaBlocks = [];
    private readonly LayerNorm? _norm;
    private readonly Linear? _head;
    private readonly DiTFinalLayer? _final;

    /// <summary>Creates the model for <paramref name="size"/>×<paramref name="size"/> images of <paramref name="channels"/> channels,
    /// conditioned on <paramref name="classes"/> classes (plus a "no class" label when <paramref name="nullClass"/>).</summary>
    public DiT(Device device, int channels, int size, int patch, int dim, int heads, int layers, int classes, int frequencyDim = 256,
        DiTConditioning conditioning = DiTConditioning.InContext, bool nullClass = false) : base(device)
    {
        if (size % patch != 0)
            throw new ShapeMismatchException("dit", "patch", $"a divisor of the image size {size}", patch.ToString());
        if (classes < 1 || layers < 0)
            throw new InvalidArgumentException("dit", "classes, layers", "classes ≥ 1, layers ≥ 0", $"{classes}, {layers}");
        (Channels, Size, Patch, Classes, Conditioning) = (channels, size, patch, classes, conditioning);
        NullClass = nullClass ? classes : null;
        _patchEmbed = Child("x_embedder", new Conv2d(device, channels, dim, patch, patch));
        Positions = Parameter("pos_embed", 1, (size / patch) * (size / patch), dim);
        _time = Child("t_embedder", new TimestepEmbedder(device, frequencyDim, dim, dim));
        _classes = Child("y_embedder", new Embedding(device, classes + (nullClass ? 1 : 0), dim));
        if (conditioning == DiTConditioning.InContext)
        {
            _blocks = Enumerable.Range(0, layers).Select(i => Child($"blocks.{i}", new TransformerEncoderLayer(device, dim, heads, 4 * dim, "gelu", normFirst: true, dropout: 0f))).ToArray();
            _norm = Child("final_norm", new LayerNorm(device, dim));
            _head = Child("head", new Linear(device, dim, patch * patch * channels));
        }
        else
        {
            _adaBlocks = Enumerable.Range(0, layers).Select(i => Child($"blocks.{i}", new DiTBlock(device, dim, heads))).ToArray();
            _final = Child("final_layer", new DiTFinalLayer(device, dim, patch * patch * channels));
        }
        // The children initialized themselves; the position table is this module's own.
        ParameterInit.Normal(Positions, device.NextSeed(), 0.02f);
    }

    /// <summary>The children's initializations and the position table from N(0, 0.02²).</summary>
    public override void Initialize(ulong seed)
    {
        base.Initialize(seed);
        ParameterInit.Normal(Positions, seed, 0.02f);
    }

    /// <summary>Image channels, side and patch size.</summary>
    public int Channels { get; }

    /// <summary>Image side.</summary>
    public int Size { get; }

    /// <summary>Patch side.</summary>
    public int Patch { get; }

    /// <inheritdoc/>
    public int Classes { get; }

    /// <inheritdoc/>
    public int? NullClass { get; }

    /// <summary>How the timestep and class reach the blocks.</summary>
    public DiTConditioning Conditioning { get; }

    /// <summary>Learned positions [1, T, D].</summary>
    public Tensor Positions { get; }

    /// <summary>The model output (predicted noise) [N, C, H, W] for x [N, C, H, W], timesteps [N] and class labels.</summary>
    public Tensor Forward(Tensor x, Tensor timesteps, ReadOnlySpan<int> labels = default)
    {
        if (x.Rank != 4 || x.Size(1) != Channels || x.Size(2) != Size || x.Size(3) != Size)
            throw new ShapeMismatchException("dit", "x", $"[N, {Channels}, {Size}, {Size}]", GpuNetException.FormatShape(x.ShapeArray()));
        int n = x.Size(0);
        if (labels.Length != n)
            throw new ShapeMismatchException("dit", "labels", $"{n} labels (one per image)", labels.Length.ToString());
        using var scope = Device.Scope();
        var grid = _patchEmbed.Forward(x);
        int dim = grid.Size(1);
        var tokens = Ops.Transpose(grid.Reshape(n, dim, -1), 1, 2);
        var cond = Ops.Add(_time.Forward(timesteps), _classes.Forward(labels, n));
        Tensor patches;
        if (Conditioning == DiTConditioning.InContext)
        {
            var h = Ops.Add(Ops.Add(tokens, Positions), cond.Reshape(n, 1, dim));
            foreach (var block in _blocks)
                h = block.Forward(h);
            patches = _head!.Forward(_norm!.Forward(h));
        }
        else
        {
            var h = Ops.Add(tokens, Positions);
            var activated = Ops.Silu(cond);
            foreach (var block in _adaBlocks)
                h = block.Forward(h, activated);
            patches = _final!.Forward(h, activated);
        }
        return scope.Keep(Ops.Unpatchify(patches, Patch, Channels, Size, Size));
    }
}

/// <summary>The adaLN modulation both adaLN-Zero parts share: LayerNorm without affine of x, then ·(1 + scale) + shift per image.</summary>
internal static class AdaLn
{
    /// <summary>The <paramref name="index"/>-th D-wide chunk of a modulation [N, k·D] as [N, 1, D].</summary>
    public static Tensor Chunk(Tensor modulation, int index, int dim) =>
        modulation.Reshape(modulation.Size(0), modulation.Size(1) / dim, dim).Slice(1, index, 1);

    /// <summary>LayerNorm(x)·(1 + scale) + shift with scale and shift [N, 1, D] broadcast over the tokens.</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale)
    {
        var r = Ops.LayerNorm(x, null, null, 1e-6f);
        r.Mean.Dispose();
        r.Rstd.Dispose();
        using var normed = r.Output;
        using var factor = scale + 1f;
        using var scaled = Ops.Mul(normed, factor);
        return Ops.Add(scaled, shift);
    }

    /// <summary>The zero start of adaLN-Zero: the modulation's weights and bias (and a head's) set to 0.</summary>
    public static void Zero(params Linear[] layers)
    {
        foreach (var layer in layers)
            foreach (var (_, t) in layer.Parameters())
                Ops.Fill(t, 0f);
    }
}

/// <summary>
/// DiT's adaLN-Zero block: from c = SiLU(condition) a linear map (<c>adaLN_modulation</c>, D → 6D, zero at the start) gives shift,
/// scale and gate for the attention branch and for the MLP branch; x + gate₁·Attention(LN(x)·(1 + scale₁) + shift₁), then
/// x + gate₂·MLP(LN(x)·(1 + scale₂) + shift₂), the LayerNorms without affine parameters (ε = 1e-6) and the MLP D → 4D (GELU) → D.
/// At the start every gate is 0, so the block is the identity.
/// </summary>
public sealed class DiTBlock : Module
{
    private readonly MultiheadAttention _attention;
    private readonly Linear _fc1, _fc2, _modulation;

    /// <summary>Creates the block of width <paramref name="dim"/>.</summary>
    public DiTBlock(Device device, int dim, int heads) : base(device)
    {
        Dim = dim;
        _attention = Child("attn", new MultiheadAttention(device, dim, heads));
        _fc1 = Child("mlp.fc1", new Linear(device, dim, 4 * dim, activation: FusedActivation.Gelu));
        _fc2 = Child("mlp.fc2", new Linear(device, 4 * dim, dim));
        _modulation = Child("adaLN_modulation", new Linear(device, dim, 6 * dim));
        AdaLn.Zero(_modulation);
    }

    /// <summary>Width.</summary>
    public int Dim { get; }

    /// <inheritdoc/>
    public override void Initialize(ulong seed)
    {
        base.Initialize(seed);
        AdaLn.Zero(_modulation);
    }

    /// <summary>Tokens [N, T, D] under the activated condition SiLU(c) [N, D].</summary>
    public Tensor Forward(Tensor x, Tensor activatedCondition)
    {
        using var scope = Device.Scope();
        var m = _modulation.Forward(activatedCondition);
        var attended = AdaLn.Modulate(x, AdaLn.Chunk(m, 0, Dim), AdaLn.Chunk(m, 1, Dim));
        var h = Ops.Add(x, Ops.Mul(AdaLn.Chunk(m, 2, Dim), _attention.Forward(attended, attended)));
        var fed = AdaLn.Modulate(h, AdaLn.Chunk(m, 3, Dim), AdaLn.Chunk(m, 4, Dim));
        return scope.Keep(Ops.Add(h, Ops.Mul(AdaLn.Chunk(m, 5, Dim), _fc2.Forward(_fc1.Forward(fed)))));
    }
}

/// <summary>DiT's adaLN final layer: LN(x)·(1 + scale) + shift from a zero-started D → 2D map of SiLU(c), then a zero-started
/// linear to the patch values — the untrained model predicts zero noise.</summary>
public sealed class DiTFinalLayer : Module
{
    private readonly Linear _modulation, _linear;

    /// <summary>Creates the layer from width <paramref name="dim"/> to <paramref name="outputs"/> values per token.</summary>
    public DiTFinalLayer(Device device, int dim, int outputs) : base(device)
    {
        Dim = dim;
        _linear = Child("linear", new Linear(device, dim, outputs));
        _modulation = Child("adaLN_modulation", new Linear(device, dim, 2 * dim));
        AdaLn.Zero(_modulation, _linear);
    }

    /// <summary>Width.</summary>
    public int Dim { get; }

    /// <inheritdoc/>
    public override void Initialize(ulong seed)
    {
        base.Initialize(seed);
        AdaLn.Zero(_modulation, _linear);
    }

    /// <summary>Patch values [N, T, outputs] of tokens [N, T, D] under SiLU(c) [N, D].</summary>
    public Tensor Forward(Tensor x, Tensor activatedCondition)
    {
        using var scope = Device.Scope();
        var m = _modulation.Forward(activatedCondition);
        return scope.Keep(_linear.Forward(AdaLn.Modulate(x, AdaLn.Chunk(m, 0, Dim), AdaLn.Chunk(m, 1, Dim))));
    }
}

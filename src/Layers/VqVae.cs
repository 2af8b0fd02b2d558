namespace GpuNet.Layers;

/// <summary>
/// VQ-VAE (van den Oord et al., 2017) for 1×28×28 grey images: an encoder of two stride-2 convolutions (width, 2·width channels,
/// ReLU) and a 1×1 projection to <c>dim</c>-vectors on a 7×7 grid, the <see cref="VectorQuantizer"/> (<c>vq</c>) that replaces
/// each vector by its nearest of <c>codes</c> codebook rows, and a decoder (3×3 convolution, two stride-2 transposed
/// convolutions) back to the image's logits. Training passes the decoder's gradient straight through the quantizer to the
/// encoder (<see cref="StraightThrough"/>).
/// </summary>
public sealed class VqVae : Module
{
    private readonly Sequential _encoder, _decoder;

    /// <summary>Creates the model: <paramref name="codes"/> codes of dimension <paramref name="dim"/>, <paramref name="width"/>
    /// channels at 14×14.</summary>
    public VqVae(Device device, int codes = 128, int dim = 16, int width = 32) : base(device)
    {
        if (codes < 2 || dim < 1 || width < 1)
            throw new InvalidArgumentException("vqvae", "codes, dim, width", "codes ≥ 2, dim ≥ 1, width ≥ 1", $"{codes}, {dim}, {width}");
        (Codes, Dim, Width) = (codes, dim, width);
        _encoder = Child("encoder", new Sequential(device, new Conv2d(device, 1, width, 4, 2, 1), new ActivationLayer(device, "relu"),
            new Conv2d(device, width, 2 * width, 4, 2, 1), new ActivationLayer(device, "relu"), new Conv2d(device, 2 * width, dim, 1)));
        Quantizer = Child("vq", new VectorQuantizer(device, codes, dim));
        _decoder = Child("decoder", new Sequential(device, new Conv2d(device, dim, 2 * width, 3, padding: 1), new ActivationLayer(device, "relu"),
            new ConvTranspose2d(device, 2 * width, width, 4, 2, 1), new ActivationLayer(device, "relu"), new ConvTranspose2d(device, width, 1, 4, 2, 1)));
        InitializeCodebook(Quantizer, device.NextSeed());
    }

    /// <summary>Codebook size K.</summary>
    public int Codes { get; }

    /// <summary>Code dimension D.</summary>
    public int Dim { get; }

    /// <summary>Channels at 14×14 (2·width at 7×7).</summary>
    public int Width { get; }

    /// <summary>The quantizer (its codebook is <c>vq.embedding.weight</c> [K, D]).</summary>
    public VectorQuantizer Quantizer { get; }

    /// <summary>The side of the code map (28 / 4).</summary>
    public const int GridSize = 7;

    /// <inheritdoc/>
    public override void Initialize(ulong seed)
    {
        base.Initialize(seed);
        InitializeCodebook(Quantizer, seed ^ 0xC0DEB00CUL);
    }

    /// <summary>The codebook from U(−1/K, 1/K), as the usual PyTorch VQ-VAE: close to the encoder's first outputs, none far out.</summary>
    private static void InitializeCodebook(VectorQuantizer quantizer, ulong seed)
    {
        var w = quantizer.Codebook.Weight;
        var host = new float[w.Length];
        float bound = 1f / w.Size(0);
        Philox.FillUniform(host, seed, -bound, bound);
        w.CopyFrom(host);
    }

    /// <summary>z_e [B, D, 7, 7] for images [B, 1, 28, 28].</summary>
    public Tensor Encode(Tensor x)
    {
        if (x.Rank != 4 || x.Size(1) != 1 || x.Size(2) != 28 || x.Size(3) != 28)
            throw new ShapeMismatchException("vqvae", "x", "[B, 1, 28, 28]", GpuNetException.FormatShape(x.ShapeArray()));
        return _encoder.Forward(x);
    }

    /// <summary>Image logits [B, 1, 28, 28] for (quantized) latents [B, D, 7, 7].</summary>
    public Tensor DecodeLogits(Tensor z)
    {
        if (z.Rank != 4 || z.Size(1) != Dim || z.Size(2) != GridSize || z.Size(3) != GridSize)
            throw new ShapeMismatchException("vqvae", "z", $"[B, {Dim}, {GridSize}, {GridSize}]", GpuNetException.FormatShape(z.ShapeArray()));
        return _decoder.Forward(z);
    }

    /// <summary>Images in [0, 1] [B, 1, 28, 28] for code maps [B, 7, 7] (floats holding code indices).</summary>
    public Tensor DecodeCodes(Tensor codes)
    {
        if (codes.Rank != 3 || codes.Size(1) != GridSize || codes.Size(2) != GridSize)
            throw new ShapeMismatchException("vqvae", "codes", $"[B, {GridSize}, {GridSize}]", GpuNetException.FormatShape(codes.ShapeArray()));
        using var scope = Device.Scope();
        var rows = Ops.GatherRows(Quantizer.Codebook.Weight, codes);
        var z = Ops.Permute(rows, 0, 3, 1, 2);
        return scope.Keep(Ops.Sigmoid(DecodeLogits(z)));
    }

    /// <summary>
    /// sg(z_q) + (z_e − sg(z_e)): in the forward pass exactly z_q (x − x is 0 in floating point, where the usual
    /// z_e + sg(z_q − z_e) is z_q only up to rounding), in the backward pass the identity to z_e — the gradient that reaches
    /// the decoder's input goes to z_e unchanged (the straight-through estimator) and none to the codebook.
    /// </summary>
    public static Tensor StraightThrough(Tensor encoded, Tensor quantized)
    {
        using var stoppedEncoded = encoded.Detach();
        using var zero = Ops.Sub(encoded, stoppedEncoded);
        using var stoppedQuantized = quantized.Detach();
        return Ops.Add(stoppedQuantized, zero);
    }

    /// <summary>One forward pass for training: logits, z_e, z_q and the codes [B, 7, 7] of images [B, 1, 28, 28].</summary>
    public (Tensor Logits, Tensor Encoded, Tensor Quantized, Tensor Codes) Forward(Tensor x)
    {
        using var scope = Device.Scope();
        var encoded = Encode(x);
        var (quantized, codes) = Quantizer.Quantize(encoded);
        var logits = DecodeLogits(StraightThrough(encoded, quantized));
        return (scope.Keep(logits), scope.Keep(encoded), scope.Keep(quantized), scope.Keep(codes));
    }
}

/// <summary>The losses of one VQ-VAE step.</summary>
/// <param name="Total">reconstruction + codebook + β·commitment (the codebook term is absent with EMA updates).</param>
/// <param name="Reconstruction">Binary cross-entropy of the logits against the pixels in [0, 1], mean per pixel.</param>
/// <param name="Codebook">‖sg(z_e) − z_q‖², mean per element: moves the codes toward the encoder's outputs.</param>
/// <param name="Commitment">‖z_e − sg(z_q)‖², mean per element (before β): keeps the encoder near its codes.</param>
public readonly record struct VqVaeLoss(Tensor Total, Tensor Reconstruction, Tensor Codebook, Tensor Commitment);

/// <summary>
/// VQ-VAE training on images in [0, 1]: reconstruction (binary cross-entropy per pixel) + codebook loss + β·commitment loss with
/// the straight-through gradient to the encoder, Adam; or with <c>emaDecay</c> the codebook moved by exponential moving averages
/// of the encoder outputs assigned to each code (van den Oord et al.'s appendix) instead of the codebook loss. Codebook usage is
/// reported as the perplexity exp(−Σ p_k log p_k) of the batch's code frequencies (K when all codes are used evenly, 1 when one is).
/// </summary>
public static class VqVaeTraining
{
    /// <summary>The step's losses (see <see cref="VqVaeLoss"/>) of a forward pass.</summary>
    public static VqVaeLoss Loss(Tensor logits, Tensor images, Tensor encoded, Tensor quantized, float beta, bool codebookLoss = true)
    {
        var device = logits.Device;
        using var scope = device.Scope();
        var reconstruction = Ops.BinaryCrossEntropyWithLogits(logits, images);
        var commitment = Ops.MseLoss(encoded, quantized.Detach());
        var total = reconstruction + commitment * beta;
        Tensor codebook;
        if (codebookLoss)
        {
            codebook = Ops.MseLoss(quantized, encoded.Detach());
            total = total + codebook;
        }
        else
            using (Autograd.NoGrad())
                codebook = Ops.MseLoss(quantized, encoded);
        return new VqVaeLoss(scope.Keep(total), scope.Keep(reconstruction), scope.Keep(codebook), scope.Keep(commitment));
    }

    /// <summary>exp of the entropy of the code frequencies in <paramref name="codes"/> (indices in [0, K)).</summary>
    public static double Perplexity(ReadOnlySpan<float> codes, int codebookSize)
    {
        var counts = new int[codebookSize];
        foreach (var c in codes)
            counts[(int)c]++;
        double entropy = 0;
        foreach (var n in counts)
            if (n > 0)
            {
                double p = (double)n / codes.Length;
                entropy -= p * Math.Log(p);
            }
        return Math.Exp(entropy);
    }

    /// <summary>
    /// Trains for <paramref name="epochs"/> epochs (or <paramref name="maxSteps"/> steps). Losses per step: "loss", "reconstruction",
    /// "codebook", "commitment" and "perplexity". <paramref name="emaDecay"/> (e.g. 0.99) switches to EMA codebook updates; the
    /// codebook then takes no gradient. With <paramref name="seedCodebook"/> the codes start as K encoder outputs of the first
    /// batch (<see cref="SeedCodebook"/>); with <paramref name="restartDeadCodes"/> a code that falls out of use moves to an encoder
    /// output of the current batch (<see cref="DeadCodeRestarts"/>).
    /// </summary>
    public static GenerativeRun Train(VqVae model, ImageDataset data, int epochs, int batchSize = 128, float learningRate = 1e-3f, float beta = 0.25f,
        float? emaDecay = null, ulong seed = 0, Action<GenerativeProgress>? progress = null, int reportEvery = 10, int? maxSteps = null, bool seedCodebook = true,
        bool restartDeadCodes = true)
    {
        const string op = "vqvae_training";
        Validate.NotNull(op, "model", model);
        Validate.NotNull(op, "data", data);
        if (epochs < 0 || batchSize < 1 || maxSteps is < 0 || !(beta >= 0) || emaDecay is not (null or (> 0f and < 1f)))
            throw new InvalidArgumentException(op, "epochs, batchSize, maxSteps, beta, emaDecay", "epochs ≥ 0, batch ≥ 1, steps ≥ 0, β ≥ 0, 0 < decay < 1",
                $"{epochs}, {batchSize}, {maxSteps}, {beta}, {emaDecay}");
        if (data.Channels != 1 || data.Height != 28 || data.Width != 28)
            throw new ShapeMismatchException(op, "data", "1×28×28 images", $"{data.Channels}×{data.Height}×{data.Width}");
        var loader = new DataLoader(model.Device, data, batchSize, shuffle: true, seed: seed);
        using var trainer = new VqVaeTrainer(model, learningRate, beta, emaDecay, seed, seedCodebook, restartDeadCodes);
        return GenerativeLoop.Run(loader, maxSteps ?? epochs * loader.BatchCount, batchSize, VqVaeTrainer.LossNames,
            (batch, step) => trainer.Step(batch.Images, step), progress, reportEvery);
    }

    /// <summary>
    /// Sets the K codes to the encoder's outputs at K distinct random positions of <paramref name="images"/> (with repeats only
    /// when the batch has fewer than K positions): every code starts where the data is, so none begins dead — from the
    /// U(−1/K, 1/K) start most codes are never the nearest to any output and never move.
    /// </summary>
    public static void SeedCodebook(VqVae model, Tensor images, ulong seed)
    {
        using var _ = Autograd.NoGrad();
        using var scope = model.Device.Scope();
        var rows = Ops.Permute(model.Encode(images), 0, 2, 3, 1).Reshape(-1, model.Dim).ToArray();
        int positions = rows.Length / model.Dim;
        var order = Enumerable.Range(0, positions).ToArray();
        new Random((int)(Seeds.Derive(seed, 0xC0DE) % int.MaxValue)).Shuffle(order);
        var codes = new float[model.Codes * model.Dim];
        for (int k = 0; k < model.Codes; k++)
            rows.AsSpan(order[k % positions] * model.Dim, model.Dim).CopyTo(codes.AsSpan(k * model.Dim));
        model.Quantizer.Codebook.Weight.CopyFrom(codes);
    }

    /// <summary>
    /// EMA codebook state: per code a count N_k and a sum m_k of the encoder outputs assigned to it, both decayed by γ each step
    /// and fed the batch's assignments; code k becomes m_k / N_k. They start at N_k = 1 and m_k = e_k (every code as if it had
    /// seen itself once), so a code no batch picks keeps its place (m_k and N_k decay alike) instead of collapsing to zero.
    /// Kept on the host: K·D and the batch's B·49 codes are small.
    /// </summary>
    internal sealed class CodebookAverages
    {
        private readonly Tensor _codebook;
        private readonly float _decay;
        private readonly double[] _counts, _sums;
        private readonly int _codes, _dim;

        public CodebookAverages(Tensor codebook, float decay)
        {
            (_codebook, _decay, _codes, _dim) = (codebook, decay, codebook.Size(0), codebook.Size(1));
            _counts = Enumerable.Repeat(1.0, _codes).ToArray();
            _sums = Array.ConvertAll(codebook.ToArray(), v => (double)v);
        }

        /// <summary>Folds one batch in: the encoder's outputs as rows [B·H·W, D] and their codes [B·H·W].</summary>
        public void Update(float[] rows, float[] codes)
        {
            var counts = new double[_codes];
            var sums = new double[_codes * _dim];
            for (int i = 0; i < codes.Length; i++)
            {
                int k = (int)codes[i];
                counts[k]++;
                for (int d = 0; d < _dim; d++)
                    sums[k * _dim + d] += rows[i * _dim + d];
            }
            var weights = new float[_codes * _dim];
            for (int k = 0; k < _codes; k++)
            {
                _counts[k] = _decay * _counts[k] + (1 - _decay) * counts[k];
                for (int d = 0; d < _dim; d++)
                {
                    int i = k * _dim + d;
                    _sums[i] = _decay * _sums[i] + (1 - _decay) * sums[i];
                    weights[i] = (float)(_sums[i] / _counts[k]);
                }
            }
            _codebook.CopyFrom(weights);
        }

        /// <summary>Restarts code k at <paramref name="row"/>, as if it had seen that vector once.</summary>
        public void Reset(int k, ReadOnlySpan<float> row)
        {
            _counts[k] = 1;
            for (int d = 0; d < _dim; d++)
                _sums[k * _dim + d] = row[d];
        }
    }

    /// <summary>
    /// Dead-code restarts (as Jukebox's VQ-VAE and most VQ libraries): per code an exponential moving average (decay 0.9) of how
    /// many positions of a batch pick it, starting at 2; a code whose average falls below one position per batch — one no batch
    /// has picked for 7 steps in a row, or a rarely picked one — is moved onto the encoder output of a random position of the
    /// current batch and starts again at 2. Without it most of a codebook sits unused where the untrained encoder's outputs
    /// were (perplexity 3–5 of 128 after two epochs of 4,000 images; 31–72 with it).
    /// </summary>
    internal sealed class DeadCodeRestarts
    {
        private const double Decay = 0.9, Threshold = 1.0, Start = 2.0;
        private readonly Tensor _codebook;
        private readonly double[] _usage;
        private readonly int _dim;

        public DeadCodeRestarts(Tensor codebook)
        {
            (_codebook, _dim) = (codebook, codebook.Size(1));
            _usage = Enumerable.Repeat(Start, codebook.Size(0)).ToArray();
        }

        /// <summary>Folds in one batch's codes; moves the dead codes onto random rows [B·H·W, D] of it.</summary>
        public void Update(float[] rows, float[] codes, CodebookAverages? ema, ulong seed)
        {
            var counts = new int[_usage.Length];
            foreach (var c in codes)
                counts[(int)c]++;
            float[]? weights = null;
            var rng = new Random((int)(seed % int.MaxValue));
            for (int k = 0; k < _usage.Length; k++)
            {
                _usage[k] = Decay * _usage[k] + (1 - Decay) * counts[k];
                if (_usage[k] >= Threshold)
                    continue;
                weights ??= _codebook.ToArray();
                var row = rows.AsSpan(rng.Next(codes.Length) * _dim, _dim);
                row.CopyTo(weights.AsSpan(k * _dim));
                ema?.Reset(k, row);
                _usage[k] = Start;
            }
            if (weights is not null)
                _codebook.CopyFrom(weights);
        }
    }

    /// <summary>The code maps [count, 7, 7] (code indices as ints, row-major) of the first <paramref name="count"/> images of
    /// <paramref name="data"/>, in batches.</summary>
    public static int[] EncodeCodes(VqVae model, ImageDataset data, int count, int batch = 500)
    {
        Validate.NotNull("vqvae_encode", "model", model);
        count = Math.Min(count, data.Count);
        const int cells = VqVae.GridSize * VqVae.GridSize;
        var result = new int[(long)count * cells];
        using var _ = Autograd.NoGrad();
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            using var scope = model.Device.Scope();
            var x = Tensor.FromArray(model.Device, data.Pixels.AsSpan(start * 784, n * 784), n, 1, 28, 28);
            var (_, codes) = model.Quantizer.Quantize(model.Encode(x));
            var host = codes.ToArray();
            for (int i = 0; i < host.Length; i++)
                result[(long)start * cells + i] = (int)host[i];
        }
        return result;
    }

    /// <summary>Images [count, 784] in [0, 1] decoded from code maps [count, 7, 7].</summary>
    public static float[] DecodeCodes(VqVae model, int[] codes, int batch = 500)
    {
        Validate.NotNull("vqvae_decode", "model", model);
        const int cells = VqVae.GridSize * VqVae.GridSize;
        int count = codes.Length / cells;
        var images = new float[(long)count * 784];
        using var _ = Autograd.NoGrad();
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            using var scope = model.Device.Scope();
            var map = Tensor.FromArray(model.Device, Array.ConvertAll(codes[(start * cells)..((start + n) * cells)], c => (float)c), n, VqVae.GridSize, VqVae.GridSize);
            model.DecodeCodes(map).ToArray().CopyTo(images.AsSpan(start * 784));
        }
        return images;
    }

    /// <summary>Reconstructions [count, 784] of the first <paramref name="count"/> images (encode, quantize, decode).</summary>
    public static float[] Reconstruct(VqVae model, ImageDataset data, int count) => DecodeCodes(model, EncodeCodes(model, data, count));

    /// <summary>Images [count, 784] decoded from code maps drawn uniformly at random: the untrained-prior baseline.</summary>
    public static float[] UniformCodeSamples(VqVae model, int count, ulong seed)
    {
        var rng = new Random((int)(seed % int.MaxValue));
        var codes = new int[count * VqVae.GridSize * VqVae.GridSize];
        for (int i = 0; i < codes.Length; i++)
            codes[i] = rng.Next(model.Codes);
        return DecodeCodes(model, codes);
    }
}

/// <summary>
/// One VQ-VAE training step after another, as <see cref="VqVaeTraining.Train"/> runs them (and the bench times them): the forward
/// with the straight-through latent, the loss, backward and Adam, then the host-side codebook work — EMA update and dead-code
/// restarts from the batch's encoder outputs and codes. The first step seeds the codebook from its batch when asked. While it
/// lives, an EMA trainer keeps the quantizer frozen (no gradient, not in Adam); disposing gives the module its gradients back.
/// </summary>
public sealed class VqVaeTrainer : IDisposable
{
    private readonly VqVae _model;
    private readonly Adam _optimizer;
    private readonly float _beta;
    private readonly float? _emaDecay;
    private readonly ulong _seed;
    private readonly bool _seedCodebook, _restartDeadCodes;
    private readonly VqVaeTraining.DeadCodeRestarts _restarts;
    private VqVaeTraining.CodebookAverages? _ema;
    private bool _disposed;

    /// <summary>The per-step values <see cref="Step"/> returns, in order.</summary>
    public static readonly string[] LossNames = { "loss", "reconstruction", "codebook", "commitment", "perplexity" };

    /// <summary>Prepares the steps (see <see cref="VqVaeTraining.Train"/> for the options); the model goes to training mode.</summary>
    public VqVaeTrainer(VqVae model, float learningRate = 1e-3f, float beta = 0.25f, float? emaDecay = null, ulong seed = 0, bool seedCodebook = true,
        bool restartDeadCodes = true)
    {
        (_model, _beta, _emaDecay, _seed, _seedCodebook, _restartDeadCodes) = (model, beta, emaDecay, seed, seedCodebook, restartDeadCodes);
        var codebook = model.Quantizer.Codebook.Weight;
        _restarts = new VqVaeTraining.DeadCodeRestarts(codebook);
        if (emaDecay is not null)
            model.Quantizer.Freeze();
        _optimizer = new Adam(model.Parameters().Where(p => emaDecay is null || !ReferenceEquals(p.Tensor, codebook)), learningRate);
        model.Train();
    }

    /// <summary>One step on images [B, 1, 28, 28] in [0, 1]; <paramref name="step"/> counts from 0. Returns <see cref="LossNames"/>' values.</summary>
    public float[] Step(Tensor images, int step)
    {
        var codebook = _model.Quantizer.Codebook.Weight;
        if (step == 0 && _seedCodebook)
            VqVaeTraining.SeedCodebook(_model, images, _seed);
        if (_emaDecay is { } decay && _ema is null)
            _ema = new VqVaeTraining.CodebookAverages(codebook, decay);
        using var scope = _model.Device.Scope();
        var (logits, encoded, quantized, codes) = _model.Forward(images);
        var loss = VqVaeTraining.Loss(logits, images, encoded, quantized, _beta, codebookLoss: _ema is null);
        loss.Total.Backward();
        _optimizer.Step();
        _optimizer.ZeroGrad();
        var hostCodes = codes.ToArray();
        var rows = Ops.Permute(encoded, 0, 2, 3, 1).Reshape(-1, _model.Dim).ToArray();
        _ema?.Update(rows, hostCodes);
        if (_restartDeadCodes)
            _restarts.Update(rows, hostCodes, _ema, Seeds.Derive(_seed, (ulong)step + 0xDEADUL));
        return new[] { loss.Total.Item(), loss.Reconstruction.Item(), loss.Codebook.Item(), loss.Commitment.Item(), (float)VqVaeTraining.Perplexity(hostCodes, _model.Codes) };
    }

    /// <summary>Disposes the optimizer and gives a frozen quantizer its gradients back.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _optimizer.Dispose();
        if (_emaDecay is not null)
            _model.Quantizer.RequiresGrad(true);
    }
}

/// <summary>
/// The PixelCNN prior over VQ-VAE code maps (the seed's PixelCNN on codes): each code embedded (<c>embed</c>, K × E), a 7×7
/// type-A masked convolution (no tap at or after the centre in raster order), <c>layers</c> 3×3 type-B masked convolutions
/// (centre allowed), ReLU between, and a 1×1 convolution to K logits per position — position (i, j)'s logits depend only on
/// the codes before it in raster order, so the map factorizes as Π p(c_ij | c_&lt;ij).
/// </summary>
public sealed class CodePrior : Module
{
    private readonly Embedding _embed;
    private readonly Sequential _body;

    /// <summary>Creates the prior over <paramref name="codes"/> codes.</summary>
    public CodePrior(Device device, int codes, int embed = 32, int hidden = 64, int layers = 4) : base(device)
    {
        if (codes < 2 || embed < 1 || hidden < 1 || layers < 0)
            throw new InvalidArgumentException("code_prior", "codes, embed, hidden, layers", "codes ≥ 2, embed ≥ 1, hidden ≥ 1, layers ≥ 0",
                $"{codes}, {embed}, {hidden}, {layers}");
        (Codes, Embed, Hidden, Layers) = (codes, embed, hidden, layers);
        _embed = Child("embed", new Embedding(device, codes, embed));
        var list = new List<Layer> { new Conv2d(device, embed, hidden, 7, padding: 3, mask: ConvMask.A), new ActivationLayer(device, "relu") };
        for (int i = 0; i < layers; i++)
        {
            list.Add(new Conv2d(device, hidden, hidden, 3, padding: 1, mask: ConvMask.B));
            list.Add(new ActivationLayer(device, "relu"));
        }
        list.Add(new Conv2d(device, hidden, codes, 1));
        _body = Child("body", new Sequential(device, list.ToArray()));
    }

    /// <summary>Codebook size K.</summary>
    public int Codes { get; }

    /// <summary>Embedding width E.</summary>
    public int Embed { get; }

    /// <summary>Channels of the masked convolutions.</summary>
    public int Hidden { get; }

    /// <summary>Type-B layers.</summary>
    public int Layers { get; }

    /// <summary>Logits [B, K, H, W] for code maps [B, H, W] (floats holding code indices).</summary>
    public Tensor Forward(Tensor codes)
    {
        if (codes.Rank != 3)
            throw new ShapeMismatchException("code_prior", "codes", "[B, H, W]", GpuNetException.FormatShape(codes.ShapeArray()));
        using var scope = Device.Scope();
        var embedded = Ops.Permute(Ops.GatherRows(_embed.Weight, codes), 0, 3, 1, 2);
        return scope.Keep(_body.Forward(embedded));
    }

    /// <summary>Mean cross-entropy (nats per code) of the model's logits against the code maps themselves.</summary>
    public Tensor Loss(Tensor codes)
    {
        using var scope = Device.Scope();
        var logits = Forward(codes);
        var rows = Ops.Permute(logits, 0, 2, 3, 1).Reshape(-1, Codes);
        return scope.Keep(Ops.CrossEntropy(rows, codes.Reshape(-1)));
    }
}

/// <summary>Training the <see cref="CodePrior"/> on code maps and sampling new maps from it, position by position.</summary>
public static class CodePriorTraining
{
    /// <summary>
    /// Trains on code maps [count, side, side] (ints) for <paramref name="epochs"/> epochs (or <paramref name="maxSteps"/> steps)
    /// with Adam; the loss per step ("loss", nats per code) is the mean cross-entropy.
    /// </summary>
    public static GenerativeRun Train(CodePrior model, int[] codes, int side, int epochs, int batchSize = 128, float learningRate = 1e-3f, ulong seed = 0,
        Action<GenerativeProgress>? progress = null, int reportEvery = 10, int? maxSteps = null)
    {
        const string op = "code_prior_training";
        Validate.NotNull(op, "model", model);
        Validate.NotNull(op, "codes", codes);
        if (epochs < 0 || batchSize < 1 || maxSteps is < 0 || side < 1 || codes.Length % (side * side) != 0)
            throw new InvalidArgumentException(op, "epochs, batchSize, maxSteps, side", "epochs ≥ 0, batch ≥ 1, steps ≥ 0, whole side × side maps",
                $"{epochs}, {batchSize}, {maxSteps}, {side} ({codes.Length} codes)");
        if (codes.FirstOrDefault(c => c < 0 || c >= model.Codes, 0) is var bad && (bad < 0 || bad >= model.Codes))
            throw new InvalidArgumentException(op, "codes", $"code indices in [0, {model.Codes})", bad.ToString());
        // The maps as a one-channel image set, so the data loader shuffles and batches them like images.
        var maps = new ImageDataset(Array.ConvertAll(codes, c => (float)c), new int[codes.Length / (side * side)], 1, side, side, new[] { "code map" });
        var loader = new DataLoader(model.Device, maps, batchSize, shuffle: true, seed: seed);
        using var optimizer = new Adam(model.Parameters(), learningRate);
        model.Train();
        return GenerativeLoop.Run(loader, maxSteps ?? epochs * loader.BatchCount, batchSize, new[] { "loss" }, (batch, _) =>
        {
            using var scope = model.Device.Scope();
            var loss = model.Loss(batch.Images.Reshape(batch.Count, side, side));
            loss.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
            return new[] { loss.Item() };
        }, progress, reportEvery);
    }

    /// <summary>
    /// <paramref name="count"/> code maps [count, side, side] drawn autoregressively: per position in raster order the model runs
    /// on the maps so far and that position's code is drawn from its softmax at <paramref name="temperature"/> (Philox draws
    /// from <paramref name="seed"/>; the same seed gives the same maps on every device).
    /// </summary>
    public static int[] Sample(CodePrior model, int count, int side, ulong seed, float temperature = 1f, int batch = 1000)
    {
        Validate.NotNull("code_prior_sample", "model", model);
        var result = new int[count * side * side];
        using var _ = Autograd.NoGrad();
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            var maps = new float[n * side * side];
            for (int position = 0; position < side * side; position++)
            {
                using var scope = model.Device.Scope();
                var logits = model.Forward(Tensor.FromArray(model.Device, maps, n, side, side));
                var at = logits.Select(3, position % side).Select(2, position / side).Contiguous();
                var drawn = Ops.Sample(at, temperature, seed: Seeds.Derive(seed, (ulong)(start * side * side + position))).ToArray();
                for (int i = 0; i < n; i++)
                    maps[i * side * side + position] = drawn[i];
            }
            for (int i = 0; i < maps.Length; i++)
                result[start * side * side + i] = (int)maps[i];
        }
        return result;
    }
}

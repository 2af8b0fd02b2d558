using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Squeeze-and-excitation (Hu et al., 2018), as EfficientNet's and MobileNetV3's blocks gate their depthwise output: each
/// channel's mean, a 1×1 convolution to a few channels with its activation, a 1×1 convolution back with a sigmoid, and
/// the input scaled by the result per channel. Exported, that is five nodes (pooling, two convolutions, Sigmoid, Mul), each
/// a pass of its own over tensors of a few hundred floats with a hand-off between the cores; here one call of two split
/// loops: the means and the first product by halves of the channels, then per 64 channels the second product, its sigmoid
/// and the scaling. Both products read their weights as <see cref="PackWeights"/> lays out a 1×1 convolution's
/// ([input channel] rows of up to 64 output channels per tile), so each is a run of vector multiply-adds along the outputs.
/// </summary>
internal static unsafe partial class HostConv
{
    /// <summary>Scratch slot of the means, the first product's partial sums and the hidden channels (the calling thread's,
    /// shared by the cores).</summary>
    private const int SqueezeSlot = 11;

    /// <summary>Shares of the input channels whose first products are summed apart (one per core of the project's 2-core
    /// machines).</summary>
    private const int SqueezeShares = 2;

    /// <summary>Work (the shares' means and first-product rows) from which the first loop splits: below the general threshold,
    /// as the loop streams weights rather than computes (efficientnet_b0, in-process A/B: 480.8 → 472.9, 481.2 → 469.9 µs
    /// against the general threshold, which kept every block's first product on one core).</summary>
    private const long SqueezeSplitWork = 1 << 12;

    /// <summary>Whether <see cref="SqueezeExcite"/> applies <paramref name="activation"/> after the first product (in
    /// registers: none, ReLU, ReLU6, SiLU) on this machine (512-bit vectors).</summary>
    public static bool SqueezesAndExcites(FusedActivation activation) => HostGemm.Wide && Epilogue.Of(activation) is not null;

    /// <summary>
    /// y[n, c] = x[n, c] · σ(b₂[c] + Σ_r W₂[c, r]·act(b₁[r] + Σ_k W₁[r, k]·mean(x[n, k]))) for x [N, C, pixels] (contiguous),
    /// W₁ [R, C] and W₂ [C, R] packed by <see cref="PackWeights"/> as 1×1 convolutions, biases optional. Requires
    /// <see cref="SqueezesAndExcites"/>. Every output is computed the same way however the cores share the work.
    /// </summary>
    public static void SqueezeExcite(float* x, int images, int channels, int pixels, float* reduce, float* reduceBias, int reduced, FusedActivation activation,
        float* expand, float* expandBias, float* output)
    {
        var epilogue = Epilogue.Of(activation)!.Value;
        int ldr = PackedChannels(reduced), ldc = PackedChannels(channels), shares = Math.Min(SqueezeShares, channels);
        float* means = HostScratch.Get(SqueezeSlot, (long)images * (channels + (shares + 1) * ldr)), partials = means + (long)images * channels;
        float* hidden = partials + (long)images * shares * ldr;
        // The means and the first product by fixed shares of the input channels, each share's product a partial sum of its
        // own, added in share order: the first product's weights (221 KB at 1,152 channels) stream into both cores, and no
        // sum depends on how many threads ran the shares.
        HostParallel.For(images * shares, (long)(channels / shares) * (pixels + ldr), minWork: SqueezeSplitWork, body: (s0, s1) =>
        {
            for (int item = s0; item < s1; item++)
            {
                int n = item / shares, share = item % shares, c0 = channels * share / shares, c1 = channels * (share + 1) / shares;
                float* mean = means + (long)n * channels;
                HostRows.Reduce<float, ReduceOps.Mean>(x + ((long)n * channels + c0) * pixels, mean + c0, c1 - c0, pixels, 1, default);
                Squeeze(mean, c0, c1, channels, reduce, reduced, partials + (long)item * ldr);
            }
        });
        for (int n = 0; n < images; n++)
            for (int r = 0; r < ldr; r += 16)
            {
                var sum = reduceBias == null ? Vector512<float>.Zero : Part(reduceBias + r, reduced - r, 0);
                for (int share = 0; share < shares; share++)
                    sum += Vector512.Load(partials + ((long)n * shares + share) * ldr + r);
                epilogue.Apply(sum).Store(hidden + (long)n * ldr + r);
            }
        int tiles = (ldc + TileChannels - 1) / TileChannels;
        HostParallel.For(images * tiles, (long)TileChannels * (reduced + 2L * pixels), (t0, t1) =>
        {
            float* gate = stackalloc float[TileChannels];
            for (int item = t0; item < t1; item++)
            {
                int n = item / tiles, c0 = item % tiles * TileChannels, width = Math.Min(TileChannels, ldc - c0), valid = Math.Min(width, channels - c0);
                Excite(hidden + (long)n * ldr, reduced, expand + (long)c0 * reduced, width, expandBias == null ? null : expandBias + c0, channels - c0, gate);
                long at = ((long)n * channels + c0) * pixels;
                for (int c = 0; c < valid; c++)
                    Scale(x + at + (long)c * pixels, output + at + (long)c * pixels, pixels, gate[c]);
            }
        });
    }

    /// <summary>partial[0..R) = Σ_k W[·, k]·mean[k] over input channels [<paramref name="c0"/>, <paramref name="c1"/>) from
    /// the packed weights (a row of up to 64 outputs per input channel and tile, the tiles one after the other): two chains
    /// of four vectors, even and odd channels, so the adds of one do not wait on the other's. Lanes past the last output
    /// hold zeros (zero weights), which the second product reads as zeros.</summary>
    private static void Squeeze(float* mean, int c0, int c1, int channels, float* packed, int reduced, float* partial)
    {
        int ld = PackedChannels(reduced);
        for (int tile = 0; tile < ld; tile += TileChannels)
        {
            int width = Math.Min(TileChannels, ld - tile);
            float* w = packed + (long)tile * channels + (long)c0 * width;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, e0 = default, e1 = default, e2 = default, e3 = default;
            int c = c0;
            for (; c + 2 <= c1; c += 2, w += 2 * width)
            {
                Vector512<float> m0 = Vector512.Create(mean[c]), m1 = Vector512.Create(mean[c + 1]);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w), m0, a0);
                e0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + width), m1, e0);
                if (width > 16)
                {
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 16), m0, a1);
                    e1 = Vector512.FusedMultiplyAdd(Vector512.Load(w + width + 16), m1, e1);
                }
                if (width > 32)
                {
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 32), m0, a2);
                    e2 = Vector512.FusedMultiplyAdd(Vector512.Load(w + width + 32), m1, e2);
                }
                if (width > 48)
                {
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 48), m0, a3);
                    e3 = Vector512.FusedMultiplyAdd(Vector512.Load(w + width + 48), m1, e3);
                }
            }
            if (c < c1)
            {
                var m0 = Vector512.Create(mean[c]);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w), m0, a0);
                if (width > 16) a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 16), m0, a1);
                if (width > 32) a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 32), m0, a2);
                if (width > 48) a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 48), m0, a3);
            }
            (a0 + e0).Store(partial + tile);
            if (width > 16) (a1 + e1).Store(partial + tile + 16);
            if (width > 32) (a2 + e2).Store(partial + tile + 32);
            if (width > 48) (a3 + e3).Store(partial + tile + 48);
        }
    }

    /// <summary>gate[0..width) = σ(b + Σ_r W[·, r]·hidden[r]) for one tile of the second product's packed weights (a row of
    /// <paramref name="width"/> outputs per hidden channel); <paramref name="left"/> outputs from the tile's first exist.</summary>
    private static void Excite(float* hidden, int reduced, float* w, int width, float* bias, int left, float* gate)
    {
        Vector512<float> a0 = bias == null ? default : Part(bias, left, 0), a1 = width > 16 && bias != null ? Part(bias, left, 16) : default;
        Vector512<float> a2 = width > 32 && bias != null ? Part(bias, left, 32) : default, a3 = width > 48 && bias != null ? Part(bias, left, 48) : default;
        for (int r = 0; r < reduced; r++, w += width)
        {
            var h = Vector512.Create(hidden[r]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w), h, a0);
            if (width > 16) a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 16), h, a1);
            if (width > 32) a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 32), h, a2);
            if (width > 48) a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w + 48), h, a3);
        }
        HostMath.Sigmoid(a0).Store(gate);
        if (width > 16) HostMath.Sigmoid(a1).Store(gate + 16);
        if (width > 32) HostMath.Sigmoid(a2).Store(gate + 32);
        if (width > 48) HostMath.Sigmoid(a3).Store(gate + 48);
    }

    /// <summary>dst[0..count) = src[0..count)·<paramref name="factor"/>, the last vector masked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale(float* src, float* dst, int count, float factor)
    {
        var f = Vector512.Create(factor);
        int i = 0;
        for (; i + 16 <= count; i += 16)
            (Vector512.Load(src + i) * f).Store(dst + i);
        if (i < count)
        {
            var mask = HostMath.FirstLanes(count - i);
            System.Runtime.Intrinsics.X86.Avx512F.MaskStore(dst + i, mask, System.Runtime.Intrinsics.X86.Avx512F.MaskLoad(src + i, mask, Vector512<float>.Zero) * f);
        }
    }
}

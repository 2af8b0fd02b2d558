using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// Fused scaled-dot-product attention softmax(Q·Kᵀ·scale + mask)·V. Q is [B, H, Nq, d] and K, V [B, H, Nk, d]
    /// (or [B, N, H, d] with <paramref name="layout"/>); scale defaults to 1/√d. <paramref name="causal"/> aligns the
    /// diagonal to the end when Nq ≠ Nk; <paramref name="keyLengths"/> [B] masks keys at or beyond each batch's length;
    /// <paramref name="mask"/> is added to the scores (broadcastable to [B, H, Nq, Nk]). A query that sees no key gets
    /// zeros. Head dimension 1..128. Kernel <c>attention</c>.
    /// </summary>
    public static AttentionResult Attention(Tensor q, Tensor k, Tensor v, float? scale = null, bool causal = false, Tensor? keyLengths = null,
        Tensor? mask = null, AttentionLayout layout = AttentionLayout.BHND)
    {
        var result = FusedAttention(q, k, v, scale, causal, keyLengths, mask, layout);
        if (Autograd.ShouldRecord(q, k, v, mask))
            RecordAttention(q, k, v, scale, causal, keyLengths, mask, layout, result);
        return result;
    }

    /// <summary>
    /// The backward of fused attention, for now by recomputation: the saved Q, K, V (and mask) go through
    /// <see cref="AttentionUnfused"/> with recording on, whose recorded ops (batched matmuls, masks, softmax) are
    /// differentiated — the unfused baseline's backward, O(Nq·Nk) memory during the backward only. The forward stays fused.
    /// </summary>
    private static void RecordAttention(Tensor q, Tensor k, Tensor v, float? scale, bool causal, Tensor? keyLengths, Tensor? mask,
        AttentionLayout layout, AttentionResult result)
    {
        const string op = "attention";
        if (keyLengths?.RequiresGrad == true)
            throw new NoGradientException(op, "argument 'keyLengths' (key counts) has no gradient; Detach() it");
        Autograd.RecordNoGradient("attention (logsumexp output)", result.LogSumExp, q, k, v, mask);
        var saved = new[] { q, k, v, mask }.Select(t => t is null ? null : Autograd.Save(t)).ToArray();
        var lengths = keyLengths is null ? null : Autograd.Save(keyLengths);
        if (AttentionKernels.HasFusedBackward(q.Device) && mask?.RequiresGrad != true)
        {
            // GPUs: the fused backward kernels, from the saved output and logsumexp (O(N) extra memory).
            var (output, lse) = (Autograd.Save(result.Output), Autograd.Save(result.LogSumExp));
            Autograd.Record(op, result.Output, new[] { q, k, v, mask }, (g, needs) =>
            {
                var grads = FusedAttentionBackward(saved[0]!, saved[1]!, saved[2]!, saved[3], lengths, output, lse, g, scale, causal, layout);
                return new Tensor?[] { grads.DQ, grads.DK, grads.DV, null };
            }, saved.Append(lengths).Append(output).Append(lse).OfType<Tensor>().ToArray());
            return;
        }
        Autograd.Record(op, result.Output, new[] { q, k, v, mask }, (g, needs) =>
        {
            using var enable = Autograd.EnableGrad();
            var leaves = saved.Select((t, i) =>
            {
                if (t is null)
                    return null;
                var leaf = t.Detach();
                leaf.RequiresGrad = needs[i];
                return leaf;
            }).ToArray();
            try
            {
                using (var o = AttentionUnfused(leaves[0]!, leaves[1]!, leaves[2]!, scale, causal, lengths, leaves[3], layout))
                    o.Backward(g);
                return leaves.Select((l, i) => l is not null && needs[i] && l.Grad is not null ? Autograd.Save(l.Grad) : null).ToArray();
            }
            finally
            {
                foreach (var l in leaves)
                    l?.Dispose();
            }
        }, saved.Append(lengths).OfType<Tensor>().ToArray());
    }

    /// <summary>The fused backward's launches: D = rowsum(dO ⊙ O), then the dK/dV and dQ kernels (see <see cref="AttentionKernels.BackwardKeys"/>).</summary>
    private static (Tensor DQ, Tensor DK, Tensor DV) FusedAttentionBackward(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor? keyLengths, Tensor output,
        Tensor lse, Tensor dOutput, float? scale, bool causal, AttentionLayout layout)
    {
        const string op = "attention_backward";
        var p = AttentionSetup(op, q, k, v, scale, causal, keyLengths, layout);
        var device = Validate.DeviceOf(op, "q", q);
        var (dq, dk, dv) = (Tensor.Empty(device, q.ShapeArray()), Tensor.Empty(device, k.ShapeArray()), Tensor.Empty(device, v.ShapeArray()));
        if (dq.Length == 0 || dk.Length == 0)
        {
            Fill(dq, 0f);
            Fill(dk, 0f);
            Fill(dv, 0f);
            return (dq, dk, dv);
        }
        using var scope = device.Scope();
        var (qc, kc, vc, gc) = (LastDimContiguous(q), LastDimContiguous(k), LastDimContiguous(v), LastDimContiguous(dOutput));
        // D_i = Σ_c dO[i, c]·O[i, c], laid out [B, H, Nq] like the logsumexp.
        var rowDot = SumLastAxis(Mul(dOutput, output));
        var delta = layout == AttentionLayout.BNHD ? Permute(rowDot, 0, 2, 1) : rowDot.Contiguous();
        var maskView = ContiguousMask(op, mask, ref p);
        AttentionKernels.RunBackward(op, device, qc, kc, vc, gc, lse, delta, keyLengths, maskView, dq, dk, dv, layout, p);
        return (dq, dk, dv);
    }

    private static AttentionResult FusedAttention(Tensor q, Tensor k, Tensor v, float? scale, bool causal, Tensor? keyLengths,
        Tensor? mask, AttentionLayout layout)
    {
        const string op = "attention";
        var p = AttentionSetup(op, q, k, v, scale, causal, keyLengths, layout);
        var device = Validate.DeviceOf(op, "q", q);
        var output = Tensor.Empty(device, q.ShapeArray());
        var lse = Tensor.Empty(device, p.B, p.H, p.Nq);
        if (output.Length == 0)
            return new AttentionResult(output, lse);
        using var scope = device.Scope();
        var (qc, kc, vc) = (LastDimContiguous(q), LastDimContiguous(k), LastDimContiguous(v));
        if (mask is not null)
            Validate.Input(op, "mask", mask, device);
        var maskView = ContiguousMask(op, mask, ref p);
        AttentionKernels.RunFused(op, device, qc, kc, vc, output, lse, keyLengths, maskView, layout, p);
        return new AttentionResult(output, lse);
    }

    /// <summary>
    /// Attention computed the unfused way — scores = Q·Kᵀ·scale (batched matmul), masks, softmax, ·V — materializing the
    /// Nq×Nk scores: the baseline the fused kernel is measured against. Same arguments and result as <see cref="Attention"/>
    /// (without the logsumexp). With <paramref name="dropout"/> &gt; 0 the probabilities go through inverted dropout
    /// (Philox stream <paramref name="dropoutSeed"/>) before ·V, as F.scaled_dot_product_attention's dropout_p: the
    /// training path of attention layers with attention dropout. Kernel <c>attention_unfused</c>.
    /// </summary>
    public static Tensor AttentionUnfused(Tensor q, Tensor k, Tensor v, float? scale = null, bool causal = false, Tensor? keyLengths = null,
        Tensor? mask = null, AttentionLayout layout = AttentionLayout.BHND, float dropout = 0f, ulong dropoutSeed = 0)
    {
        const string op = "attention_unfused";
        var p = AttentionSetup(op, q, k, v, scale, causal, keyLengths, layout);
        var device = Validate.DeviceOf(op, "q", q);
        using var scope = device.Scope();
        Tensor Bhnd(Tensor t) => layout == AttentionLayout.BNHD ? t.Permute(0, 2, 1, 3) : t;
        var scores = MatMul(Bhnd(q), Bhnd(k), transposeB: true, alpha: p.Scale);
        if (mask is not null)
            scores = Add(scores, mask);
        if (keyLengths is not null)
        {
            // Padding as an additive mask [B, 1, 1, Nk]: −inf at keys beyond each batch's length.
            var lengths = keyLengths.ToArray();
            var pad = new float[p.B * p.Nk];
            for (int b = 0; b < p.B; b++)
                for (int j = (int)Math.Min(Math.Max(lengths[b], 0), p.Nk); j < p.Nk; j++)
                    pad[b * p.Nk + j] = float.NegativeInfinity;
            scores = Add(scores, Tensor.FromArray(device, pad, p.B, 1, 1, p.Nk));
        }
        var probs = causal ? SoftmaxCausal(scores, p.Nk - p.Nq) : Softmax(scores);
        if (dropout > 0f)
            probs = Dropout(probs, dropout, dropoutSeed).Output;
        var output = MatMul(probs, Bhnd(v));
        return scope.Keep(layout == AttentionLayout.BNHD ? Permute(output, 0, 2, 1, 3) : output);
    }

    /// <summary>
    /// Writes new keys or values [B, H, n, d] into a cache [B, H, L_max, d] at sequence position <paramref name="position"/>
    /// (positions position..position+n−1). Kernel <c>kv_cache_append</c>.
    /// </summary>
    public static void KvCacheAppend(Tensor cache, Tensor values, int position)
    {
        const string op = "kv_cache_append";
        var device = Validate.Input(op, "cache", cache);
        Validate.Input(op, "values", values, device);
        Validate.Rank(op, "cache", cache, 4);
        Validate.Rank(op, "values", values, 4);
        if (Autograd.ShouldRecord(values))
            throw new NoGradientException(op, "writes into a cache, which has no gradient; generate in Eval() mode or under Autograd.NoGrad()");
        if (values.Size(0) != cache.Size(0) || values.Size(1) != cache.Size(1) || values.Size(3) != cache.Size(3))
            throw new ShapeMismatchException(op, "values", $"[{cache.Size(0)}, {cache.Size(1)}, n, {cache.Size(3)}] to match the cache", GpuNetException.FormatShape(values.ShapeArray()));
        if (position < 0 || (long)position + values.Size(2) > cache.Size(2))
            throw new InvalidArgumentException(op, "position", $"0 ≤ position and position + {values.Size(2)} ≤ cache length {cache.Size(2)}", position.ToString());
        using var slot = cache.Slice(2, position, values.Size(2));
        ElementwiseKernels.MapUnary(op, values, slot, new ElementwiseOps.Identity());
    }

    /// <summary>
    /// One new query per sequence against a KV cache: q [B, H, 1, d], caches [B, H, L, d] of which the first
    /// <paramref name="keyLengths"/>[b] (default: all L) positions are valid. The cache is split into chunks of 256 keys
    /// scored by separate groups, then combined, so long caches use the whole GPU. Equals <see cref="Attention"/> on the
    /// same data. Kernel <c>attention_decode</c>.
    /// </summary>
    /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>attention_decode</c>.</remarks>
    public static AttentionResult AttentionDecode(Tensor q, Tensor kCache, Tensor vCache, Tensor? keyLengths = null, float? scale = null,
        AttentionLayout layout = AttentionLayout.BHND)
    {
        var r = AttentionDecodeCore(q, kCache, vCache, keyLengths, scale, layout);
        Autograd.RecordNoGradient("attention_decode", r.Output, q, kCache, vCache);
        Autograd.RecordNoGradient("attention_decode", r.LogSumExp, q, kCache, vCache);
        return r;
    }

    private static AttentionResult AttentionDecodeCore(Tensor q, Tensor kCache, Tensor vCache, Tensor? keyLengths = null, float? scale = null,
        AttentionLayout layout = AttentionLayout.BHND)
    {
        const string op = "attention_decode";
        var p = AttentionSetup(op, q, kCache, vCache, scale, causal: false, keyLengths, layout);
        if (p.Nq != 1)
            throw new ShapeMismatchException(op, "q", "one query per sequence (Nq = 1)", GpuNetException.FormatShape(q.ShapeArray()));
        var device = Validate.DeviceOf(op, "q", q);
        var output = Tensor.Empty(device, q.ShapeArray());
        var lse = Tensor.Empty(device, p.B, p.H, 1);
        if (output.Length == 0)
            return new AttentionResult(output, lse);
        using var scope = device.Scope();
        var (qc, kc, vc) = (LastDimContiguous(q), LastDimContiguous(kCache), LastDimContiguous(vCache));
        AttentionKernels.RunDecode(op, device, qc, kc, vc, output, lse, keyLengths, layout, p);
        return new AttentionResult(output, lse);
    }

    private static AttentionParams AttentionSetup(string op, Tensor q, Tensor k, Tensor v, float? scale,
        bool causal, Tensor? keyLengths, AttentionLayout layout)
    {
        var device = Validate.Input(op, "q", q);
        Validate.Input(op, "k", k, device);
        Validate.Input(op, "v", v, device);
        string form = layout == AttentionLayout.BHND ? "[B, H, N, d]" : "[B, N, H, d]";
        foreach (var (name, t) in new[] { ("q", q), ("k", k), ("v", v) })
            if (t.Rank != 4)
                throw new ShapeMismatchException(op, name, form, GpuNetException.FormatShape(t.ShapeArray()));
        int hAxis = layout == AttentionLayout.BHND ? 1 : 2, nAxis = 3 - hAxis;
        int b = q.Size(0), h = q.Size(hAxis), nq = q.Size(nAxis), d = q.Size(3), nk = k.Size(nAxis);
        if (k.Size(0) != b || k.Size(hAxis) != h || k.Size(3) != d)
            throw new ShapeMismatchException(op, "k", $"batch {b}, heads {h}, head dim {d} like q {GpuNetException.FormatShape(q.ShapeArray())}", GpuNetException.FormatShape(k.ShapeArray()));
        if (!v.Shape.SequenceEqual(k.Shape))
            throw new ShapeMismatchException(op, "v", GpuNetException.FormatShape(k.ShapeArray()) + " (the shape of k)", GpuNetException.FormatShape(v.ShapeArray()));
        if (d < 1 || d > AttentionKernels.MaxD)
            throw new ShapeMismatchException(op, "q", $"a head dimension in 1..{AttentionKernels.MaxD}", d.ToString());
        if (keyLengths is not null)
        {
            Validate.Input(op, "key_lengths", keyLengths, device);
            if (keyLengths.Rank != 1 || keyLengths.Length != b || !keyLengths.IsContiguous)
                throw new ShapeMismatchException(op, "key_lengths", $"a contiguous vector [{b}] (one length per batch)", keyLengths.Describe());
        }
        return new AttentionParams
        {
            B = b, H = h, Nq = nq, Nk = nk, D = d, Scale = scale ?? 1f / MathF.Sqrt(d), Causal = causal ? 1 : 0, HasLengths = keyLengths is null ? 0 : 1,
        };
    }

    /// <summary>The additive mask as a contiguous tensor (owned by the current scope) with its strides broadcast to
    /// [B, H, Nq, Nk] recorded in <paramref name="p"/>; null without a mask.</summary>
    private static Tensor? ContiguousMask(string op, Tensor? mask, ref AttentionParams p)
    {
        if (mask is null)
            return null;
        var ms = mask.Contiguous();
        var st = ShapeUtil.BroadcastStrides(op, "mask", ms.ShapeArray(), ms.Strides.ToArray(), new[] { p.B, p.H, p.Nq, p.Nk });
        (p.HasMask, p.MaskBatch, p.MaskHead, p.MaskRow) = (1, st[0], st[1], st[2]);
        return ms;
    }

    /// <summary>The tensor itself when its last dimension is contiguous, else a contiguous copy (owned by the current scope).</summary>
    private static Tensor LastDimContiguous(Tensor t) => t.Strides[^1] == 1 || t.Size(-1) == 1 ? t : t.Contiguous();
}

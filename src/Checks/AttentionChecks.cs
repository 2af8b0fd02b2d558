using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of attention (fused and unfused), attention_decode and kv_cache_append.</summary>
internal static class AttentionChecks
{
    /// <summary>Float32 against the double reference, as the other families (KERNELS.md measured ≤ 1.1e-7 for these kernels).</summary>
    private const double Tolerance = CheckCase.Fp32Tolerance;

    private sealed record Shape(int B, int H, int Nq, int Nk, int D, bool Causal, int[]? Lengths = null, bool Mask = false, AttentionLayout Layout = AttentionLayout.BHND)
    {
        public string Describe() => $"B{B} H{H} Nq{Nq} Nk{Nk} d{D}{(Causal ? " causal" : "")}{(Lengths is null ? "" : " lengths [" + string.Join(",", Lengths) + "]")}{(Mask ? " +mask" : "")}{(Layout == AttentionLayout.BNHD ? " BNHD" : "")}";
    }

    /// <summary>Runs one attention variant on seeded inputs and returns it with the reference (inputs are made in [B, H, N, d] and
    /// permuted for BNHD); a variant that returns its logsumexp has it checked too, from the same launch.</summary>
    private static CheckOutput Run(Device d, ulong seed, Shape s, Func<Tensor, Tensor, Tensor, Tensor?, Tensor?, (Tensor Out, Tensor? Lse)> op)
    {
        using var scope = d.Scope();
        // With one key the log-sum-exp is that key's score itself, a dot product that may cancel to ~0, where its rounding
        // is far over 1e-5 of it (one seed in 300 failed): q and k are drawn positive there, the score a sum of like-signed terms.
        var q = s.Nk == 1 ? Tensor.RandomUniform(d, new[] { s.B, s.H, s.Nq, s.D }, seed, 0.25f, 1.25f) : Random(d, seed, 0, s.B, s.H, s.Nq, s.D);
        var k = s.Nk == 1 ? Tensor.RandomUniform(d, new[] { s.B, s.H, s.Nk, s.D }, seed + 1, 0.25f, 1.25f) : Random(d, seed, 1, s.B, s.H, s.Nk, s.D);
        var v = Random(d, seed, 2, s.B, s.H, s.Nk, s.D);
        var mask = s.Mask ? Tensor.RandomUniform(d, new[] { s.B, 1, s.Nq, s.Nk }, seed + 3, -2, 2) : null;
        var lengths = s.Lengths is null ? null : Tensor.FromArray(d, s.Lengths.Select(x => (float)x).ToArray());
        Tensor L(Tensor t) => s.Layout == AttentionLayout.BNHD ? Ops.Permute(t, 0, 2, 1, 3) : t;
        var (o, l) = op(L(q), L(k), L(v), lengths, mask);
        var got = s.Layout == AttentionLayout.BNHD ? Ops.Permute(o, 0, 2, 1, 3) : o;
        double[]? hostMask = null;
        if (mask is not null)
        {
            var hm = Host(mask);
            hostMask = new double[s.B * s.H * s.Nq * s.Nk];
            for (int i = 0; i < hostMask.Length; i++)
            {
                int per = s.Nq * s.Nk, bi = i / (s.H * per);
                hostMask[i] = hm[bi * per + i % per];
            }
        }
        var (refOut, refLse) = AttentionReference.Attention(Host(q), Host(k), Host(v), s.B, s.H, s.Nq, s.Nk, s.D, 1 / Math.Sqrt(s.D), s.Causal,
            s.Lengths?.Select(x => (double)x).ToArray(), hostMask);
        return new(got.ToArray(), refOut) { Also = l is null ? [] : [("logsumexp", l.ToArray(), refLse)] };
    }

    internal static IEnumerable<CheckCase> Cases()
    {
        var shapes = new (string Name, Shape S)[]
        {
            ("tiny", new(1, 1, 1, 1, 16, false)),
            ("b3_h4_n7_d16", new(3, 4, 7, 7, 16, false)),
            ("b3_h4_n7_d16_causal", new(3, 4, 7, 7, 16, true)),
            ("n64_d64", new(1, 1, 64, 64, 64, false)),
            ("n129_d80_causal", new(1, 2, 129, 129, 80, true)),
            ("n129_d80", new(1, 1, 129, 129, 80, false)),
            ("cross_nq7_nk64_d128", new(3, 1, 7, 64, 128, false)),
            ("cross_causal_end_aligned", new(1, 4, 7, 129, 64, true)),
            ("padding_with_empty_row", new(3, 2, 33, 65, 16, false, new[] { 65, 10, 0 })),
            ("padding_causal", new(3, 1, 40, 40, 16, true, new[] { 40, 17, 1 })),
            ("additive_mask", new(2, 2, 19, 37, 32, false, null, true)),
            ("bnhd_layout", new(2, 3, 21, 21, 16, true, null, false, AttentionLayout.BNHD)),
            // Heads of d ≤ 64 take the fast CPU's direct block products (four query rows a pass, keys 16 a vector): d not a
            // multiple of 16, rows not a multiple of 4, a second key block of 6 keys, a mask, BNHD.
            ("small_head_d40_mask", new(2, 2, 13, 23, 40, false, null, true)),
            ("small_head_d8_causal_two_key_blocks", new(1, 3, 6, 70, 8, true, null, false, AttentionLayout.BNHD)),
            ("n1000_d16_causal", new(1, 1, 1000, 1000, 16, true)),
            ("n1000_d64", new(3, 4, 1000, 1000, 64, false)),
            ("n1000_d128_causal", new(3, 4, 1000, 1000, 128, true)),
        };
        foreach (var (name, s) in shapes)
        {
            yield return new CheckCase("attention", "attention", name, s.Describe(), Tolerance, (d, seed) =>
                Run(d, seed, s, (q, k, v, len, m) => { var r = Ops.Attention(q, k, v, null, s.Causal, len, m, s.Layout); return (r.Output, r.LogSumExp); }))
            { GpuOnly = s.Nq >= 1000, HeavyReference = (double)s.B * s.H * s.Nq * s.Nk * s.D >= 1e8 };
            if (s.Nq <= 129)
                yield return new CheckCase("attention", "attention_unfused", name, s.Describe(), Tolerance, (d, seed) =>
                    Run(d, seed, s, (q, k, v, len, m) => (Ops.AttentionUnfused(q, k, v, null, s.Causal, len, m, s.Layout), null)));
        }
        foreach (var (name, s) in new (string, Shape)[]
        {
            ("l300_two_chunks", new(2, 3, 1, 300, 64, false, new[] { 300, 5 })),
            ("l1_d128", new(1, 2, 1, 1, 128, false)),
            ("l600_d16_bnhd", new(1, 2, 1, 600, 16, false, null, false, AttentionLayout.BNHD)),
            ("empty_sequence", new(2, 1, 1, 40, 32, false, new[] { 0, 40 })),
        })
            yield return new CheckCase("attention", "attention_decode", name, s.Describe(), Tolerance, (d, seed) =>
                Run(d, seed, s, (q, k, v, len, m) => { var r = Ops.AttentionDecode(q, k, v, len, null, s.Layout); return (r.Output, r.LogSumExp); }));
        // A copy: exact (tolerance 0).
        yield return new CheckCase("attention", "kv_cache_append", "pos5_n3", "cache [2, 3, 16, 8] ← [2, 3, 3, 8] at 5", 0, (d, seed) =>
        {
            using var cache = Random(d, seed, 0, 2, 3, 16, 8);
            using var values = Random(d, seed, 1, 2, 3, 3, 8);
            var expected = Host(cache);
            var hv = Host(values);
            for (int bh = 0; bh < 6; bh++)
                for (int n = 0; n < 3; n++)
                    for (int c = 0; c < 8; c++)
                        expected[(bh * 16 + 5 + n) * 8 + c] = hv[(bh * 3 + n) * 8 + c];
            Ops.KvCacheAppend(cache, values, 5);
            return new(cache.ToArray(), expected);
        });
    }

    internal static IEnumerable<CheckCase> BackwardAttentions()
    {
        // (B, H, Nq, Nk, d, causal, mask, layout): the training path recomputes through the unfused ops.
        var cases = new (string Name, int B, int H, int Nq, int Nk, int D, bool Causal, bool Mask, AttentionLayout Layout)[]
        {
            ("b2_h3_n7_d8", 2, 3, 7, 7, 8, false, false, AttentionLayout.BHND),
            ("causal_cross_nq5_nk9", 1, 2, 5, 9, 16, true, false, AttentionLayout.BHND),
            ("additive_mask", 2, 2, 6, 6, 8, false, true, AttentionLayout.BHND),
            ("bnhd_causal", 2, 2, 9, 9, 4, true, false, AttentionLayout.BNHD),
        };
        foreach (var (name, b, h, nq, nk, d, causal, mask, layout) in cases)
        {
            int[] Shape(int n) => layout == AttentionLayout.BHND ? new[] { b, h, n, d } : new[] { b, n, h, d };
            var inputs = new List<GradientInput> { new(Shape(nq)), new(Shape(nk)), new(Shape(nk)) };
            if (mask)
                inputs.Add(new GradientInput(new[] { b, 1, nq, nk }));
            double scale = 1 / Math.Sqrt(d);
            double[] Forward(double[][] x) => AttentionReference.Forward(x, b, h, nq, nk, d, scale, causal, mask ? x[3] : null, layout == AttentionLayout.BNHD);
            yield return GradientCheck.Case("attention_backward", name, inputs.ToArray(),
                t => KeepOutput(Ops.Attention(t[0], t[1], t[2], causal: causal, mask: mask ? t[3] : null, layout: layout)),
                Forward, (x, g) => AttentionReference.Backward(x, g, b, h, nq, nk, d, scale, causal, mask ? x[3] : null, layout == AttentionLayout.BNHD),
                tolerance: CheckCase.Fp32Tolerance);
        }
    }

    /// <summary>Attention with a fixed (non-trained) additive mask and key lengths — on a GPU the fused backward kernels take it.</summary>
    internal static IEnumerable<CheckCase> BackwardAttentionWithFixedMasks()
    {
        const int b = 2, h = 2, nq = 9, nk = 11, d = 20;
        var lengths = new double[] { 11, 6 };
        double scale = 1 / Math.Sqrt(d);
        var maskValues = new float[b * nq * nk];
        Philox.FillUniform(maskValues, 77, -2f, 2f);
        var mask = Array.ConvertAll(maskValues, v => (double)v);
        foreach (var causal in new[] { false, true })
            yield return GradientCheck.Case("attention_backward", causal ? "fixed_mask_lengths_causal" : "fixed_mask_lengths",
                new[] { new GradientInput(new[] { b, h, nq, d }), new GradientInput(new[] { b, h, nk, d }), new GradientInput(new[] { b, h, nk, d }) },
                t =>
                {
                    using var m = Tensor.FromArray(t[0].Device, maskValues, b, 1, nq, nk);
                    using var l = Tensor.FromArray(t[0].Device, lengths.Select(v => (float)v).ToArray());
                    return KeepOutput(Ops.Attention(t[0], t[1], t[2], causal: causal, keyLengths: l, mask: m));
                },
                x => AttentionReference.Forward(x, b, h, nq, nk, d, scale, causal, mask, false, lengths),
                (x, g) => AttentionReference.Backward(x, g, b, h, nq, nk, d, scale, causal, mask, false, lengths));
    }

    private static Tensor KeepOutput(AttentionResult r)
    {
        r.LogSumExp.Dispose();
        return r.Output;
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new("attention", () => Cases().Concat(BackwardAttentions()).Concat(BackwardAttentionWithFixedMasks()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants()
    {
        var id = typeof(ElementwiseOps.Identity);
        yield return Method("attention", "fused", typeof(AttentionKernels), nameof(AttentionKernels.Fused));
        yield return Method("attention_decode", "partial", typeof(AttentionKernels), nameof(AttentionKernels.DecodePartial));
        yield return Method("attention_decode", "combine", typeof(AttentionKernels), nameof(AttentionKernels.DecodeCombine));
        yield return Tiled("attention_unfused", "scores", typeof(MatMulTiles.Large), true, true, id);
        foreach (var v in Elementwise("kv_cache_append", Unary(id)))
            yield return v;
        yield return Method("attention_backward", "fused_forward", typeof(AttentionKernels), nameof(AttentionKernels.Fused));
        yield return Tiled("attention_backward", "recompute_scores", typeof(MatMulTiles.Large), true, true, id);
        yield return Method("attention_backward", "fused_keys", typeof(AttentionKernels), nameof(AttentionKernels.BackwardKeys));
        yield return Method("attention_backward", "fused_queries", typeof(AttentionKernels), nameof(AttentionKernels.BackwardQueries));
    }

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, b, h, n, dh) in new[] { (Small, 1, 1, 64, 64), (Medium, 4, 8, 1024, 64), (Large, 8, 16, 2048, 64) })
            foreach (bool causal in new[] { false, true })
            {
                double flops = 4.0 * b * h * n * n * dh * (causal ? 0.5 : 1), bytes = 16.0 * b * h * n * dh + 4.0 * b * h * n;
                string shape = $"B{b} H{h} N{n} d{dh}{(causal ? " causal" : "")}";
                yield return C("attention", shape, flops, bytes, presets, (d, s) =>
                { var q = R(d, s, b, h, n, dh); var k = R(d, s + 1, b, h, n, dh); var v = R(d, s + 2, b, h, n, dh); return new(() => Ops.Attention(q, k, v, causal: causal).Dispose(), q, k, v); });
                yield return C("attention_unfused", shape, flops, bytes + 16.0 * b * h * n * n, presets, (d, s) =>
                { var q = R(d, s, b, h, n, dh); var k = R(d, s + 1, b, h, n, dh); var v = R(d, s + 2, b, h, n, dh); return new(() => Ops.AttentionUnfused(q, k, v, causal: causal).Dispose(), q, k, v); })
                with { Implementation = "unfused", PeerOf = "attention" };
                // Forward 4·B·H·N²·d, backward by recomputation 2× the forward plus the five products of the unfused backward.
                double bwdFlops = 14.0 * b * h * n * n * dh * (causal ? 0.5 : 1), bwdBytes = 48.0 * b * h * n * dh + 24.0 * b * h * n * n;
                yield return Step("attention_backward", shape, bwdFlops, bwdBytes, presets, (d, s) =>
                    (new[] { R(d, s, b, h, n, dh), R(d, s + 1, b, h, n, dh), R(d, s + 2, b, h, n, dh) }, Trained(3),
                     t => { var r = Ops.Attention(t[0], t[1], t[2], causal: causal); r.LogSumExp.Dispose(); return r.Output; }));
                // The baseline: attention_unfused's recorded ops (scores materialized) differentiated by the engine.
                yield return Step("attention_backward", shape, bwdFlops, bwdBytes + 16.0 * b * h * n * n, presets, (d, s) =>
                    (new[] { R(d, s, b, h, n, dh), R(d, s + 1, b, h, n, dh), R(d, s + 2, b, h, n, dh) }, Trained(3),
                     t => Ops.AttentionUnfused(t[0], t[1], t[2], causal: causal))) with { Implementation = "unfused", PeerOf = "attention_backward" };
            }
        foreach (var (presets, b, h, l, dh) in new[] { (Small, 1, 2, 300, 64), (MediumLarge, 16, 32, 8192, 128) })
        {
            yield return C("attention_decode", $"B{b} H{h} L{l} d{dh}", 4.0 * b * h * l * dh, 8.0 * b * h * l * dh, presets, (d, s) =>
            { var q = R(d, s, b, h, 1, dh); var k = R(d, s + 1, b, h, l, dh); var v = R(d, s + 2, b, h, l, dh); return new(() => Ops.AttentionDecode(q, k, v).Dispose(), q, k, v); });
            yield return C("kv_cache_append", $"B{b} H{h} L{l} d{dh} +1", 0, 8.0 * b * h * dh, presets, (d, s) =>
            { var cache = R(d, s, b, h, l, dh); var kv = R(d, s + 1, b, h, 1, dh); return new(() => Ops.KvCacheAppend(cache, kv, l / 2), cache, kv); });
        }
    }
}

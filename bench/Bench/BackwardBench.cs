using GpuNet.Kernels;

namespace GpuNet.Bench;

/// <summary>
/// Bench cases of the backward kernels and optimizer steps. A backward case times one training step of its op through the
/// autograd engine — forward with inputs that require gradients, <c>Backward(g)</c>, gradients dropped — on the same shape
/// label as the op's forward case, so the report can print backward/forward = (t_fwd+bwd − t_fwd) / t_fwd beside it.
/// FLOPs and bytes are the forward's plus the backward's (KERNELS.md gives both).
/// </summary>
public static class BackwardBench
{
    private static readonly string[] Small = { "small" }, Medium = { "medium" }, Large = { "large" }, MediumLarge = { "medium", "large" };

    private static Tensor R(Device d, ulong seed, params int[] shape) => Tensor.RandomUniform(d, shape, seed, -1f, 1f);

    private static string S(params int[] dims) => string.Join("x", dims);

    /// <summary>A training-step case: <paramref name="make"/> gives the inputs (those listed in <c>Trained</c> require gradients) and the forward.</summary>
    private static BenchCase Step(string kernel, string shape, double flops, double bytes, string[] presets,
        Func<Device, ulong, (Tensor[] Inputs, bool[] Trained, Func<Tensor[], Tensor> Forward)> make) =>
        new(kernel, shape, flops, bytes, presets, (d, s) =>
        {
            var (inputs, trained, forward) = make(d, s);
            for (int i = 0; i < inputs.Length; i++)
                inputs[i].RequiresGrad = trained[i];
            Tensor g;
            using (Autograd.NoGrad())
            using (var y0 = forward(inputs))
                g = R(d, s + 99, y0.ShapeArray());
            return new BenchInstance(() =>
            {
                using (var y = forward(inputs))
                    y.Backward(g);
                foreach (var t in inputs)
                    t.ZeroGrad();
            }, inputs.Append(g).ToArray<IDisposable>());
        });

    private static bool[] All(int n) => Enumerable.Repeat(true, n).ToArray();

    public static IEnumerable<BenchCase> Cases()
    {
        var tiers = new (string[] Presets, int N, int Rows, int Cols)[] { (Small, 1 << 16, 64, 1024), (Medium, 1 << 24, 4096, 4096), (Large, 1 << 26, 16384, 4096) };
        foreach (var (presets, n, rows, cols) in tiers)
        {
            foreach (var (name, op) in new (string, Func<Tensor, Tensor, Tensor>)[] { ("add", (a, b) => Ops.Add(a, b)), ("sub", (a, b) => Ops.Sub(a, b)), ("mul", (a, b) => Ops.Mul(a, b)), ("div", (a, b) => Ops.Div(a, b)) })
                yield return Step(name + "_backward", S(n), 4.0 * n, 36.0 * n, presets, (d, s) => (new[] { R(d, s, n), Tensor.RandomUniform(d, new[] { n }, s + 1, 0.5f, 1.5f) }, All(2), t => op(t[0], t[1])));
            yield return Step("axpy_backward", S(n), 3.0 * n, 28.0 * n, presets, (d, s) => (new[] { R(d, s, n), R(d, s + 1, n) }, All(2), t => Ops.Axpy(0.5f, t[0], t[1])));
            var acts = new (string Name, double Flops, Func<Tensor, Tensor> Op)[]
            {
                ("relu", 1, x => Ops.Relu(x)), ("leaky_relu", 2, x => Ops.LeakyRelu(x)), ("gelu_erf", 25, x => Ops.GeluErf(x)), ("gelu_tanh", 14, x => Ops.GeluTanh(x)),
                ("silu", 5, x => Ops.Silu(x)), ("sigmoid", 4, x => Ops.Sigmoid(x)), ("tanh", 8, x => Ops.Tanh(x)), ("softplus", 8, x => Ops.Softplus(x)), ("elu", 8, x => Ops.Elu(x)), ("exp", 5, x => Ops.Exp(x, 0.5f)), ("scale", 1, x => Ops.Scale(x, 1.5f)),
            };
            foreach (var (name, f, op) in acts)
                yield return Step(name + "_backward", S(n), (2 * f + 1) * n, 20.0 * n, presets, (d, s) => (new[] { R(d, s, n) }, All(1), t => op(t[0])));
            double rc = (double)rows * cols;
            yield return Step("reduce_sum_backward", S(rows, cols) + " axis0", rc, 12 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t => Ops.Sum(t[0], 0)));
            yield return Step("reduce_max_backward", S(rows, cols), 2 * rc, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t => Ops.Max(t[0], -1)));
            yield return Step("reduce_mean_backward", S(rows, cols), 2 * rc, 12 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t => Ops.Mean(t[0], -1)));
            yield return Step("softmax_backward", S(rows, cols), 9 * rc, 28 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t => Ops.Softmax(t[0])));
            yield return Step("log_softmax_backward", S(rows, cols), 9 * rc, 28 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t => Ops.LogSoftmax(t[0])));
            yield return Step("layernorm_backward", S(rows, cols), 18 * rc, 40 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols), R(d, s + 1, cols), R(d, s + 2, cols) }, All(3),
                t => { var r = Ops.LayerNorm(t[0], t[1], t[2]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
            yield return Step("rmsnorm_backward", S(rows, cols), 16 * rc, 40 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols), R(d, s + 1, cols) }, All(2),
                t => { var r = Ops.RmsNorm(t[0], t[1]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
            yield return Step("transpose_backward", S(rows, cols), 0, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t => Ops.Transpose(t[0])));
            yield return Step("permute_backward", S(rows / 16, 16, cols) + " (2,0,1)", 0, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows / 16, 16, cols) }, All(1), t => Ops.Permute(t[0], 2, 0, 1)));
            yield return Step("concat_backward", S(rows, cols) + " ×2 axis1", 0, 32 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols), R(d, s + 1, rows, cols) }, All(2), t => Ops.Concat(t, 1)));
            yield return Step("split_backward", S(rows, cols) + " in 2 axis1", 0, 24 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t =>
            {
                var p = Ops.Split(t[0], 2, 1);
                using (p[0])
                using (p[1])
                    return Ops.Add(p[0], p[1]);
            }));
            yield return Step("view_backward", S(rows, cols) + " slice+expand", 0, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, All(1), t =>
            {
                using var half = t[0].Slice(1, 0, cols / 2);
                using var c = half.Contiguous();
                return Ops.Scale(c, 2f);
            }));
            yield return Step("dropout_backward", S(n), 2.0 * n, 20.0 * n, presets, (d, s) => (new[] { R(d, s, n) }, All(1), t => { var (y, m) = Ops.Dropout(t[0], 0.1f, s); m.Dispose(); return y; }));
            yield return Step("mse_loss_backward", S(n), 6.0 * n, 28.0 * n, presets, (d, s) => (new[] { R(d, s, n), R(d, s + 1, n) }, new[] { true, false }, t => Ops.MseLoss(t[0], t[1])));
            yield return Step("bce_with_logits_backward", S(n), 14.0 * n, 28.0 * n, presets, (d, s) => (new[] { R(d, s, n), Tensor.RandomUniform(d, new[] { n }, s + 1, 0f, 1f) }, new[] { true, false },
                t => Ops.BinaryCrossEntropyWithLogits(t[0], t[1])));
            yield return Step("l1_loss_backward", S(n), 6.0 * n, 28.0 * n, presets, (d, s) => (new[] { R(d, s, n), R(d, s + 1, n) }, All(2), t => Ops.L1Loss(t[0], t[1])));
            yield return Step("smooth_l1_loss_backward", S(n), 8.0 * n, 28.0 * n, presets, (d, s) => (new[] { R(d, s, n), R(d, s + 1, n) }, All(2), t => Ops.SmoothL1Loss(t[0], t[1])));
            yield return Step("huber_loss_backward", S(n), 8.0 * n, 28.0 * n, presets, (d, s) => (new[] { R(d, s, n), R(d, s + 1, n) }, All(2), t => Ops.HuberLoss(t[0], t[1])));
            yield return Step("kl_div_backward", S(rows, cols), 12 * rc, 40 * rc, presets, (d, s) =>
                (new[] { R(d, s, rows, cols), Tensor.RandomUniform(d, new[] { rows, cols }, s + 1, 0.01f, 1f) }, new[] { true, false }, t => Ops.KlDiv(t[0], t[1], Reduction.BatchMean)));
            yield return Step("l1_penalty_backward", S(n), 4.0 * n, 16.0 * n, presets, (d, s) => (new[] { R(d, s, n) }, All(1), t => Ops.L1Penalty(t)));
            yield return Step("l2_penalty_backward", S(n), 4.0 * n, 16.0 * n, presets, (d, s) => (new[] { R(d, s, n) }, All(1), t => Ops.L2Penalty(t)));
            yield return Step("gaussian_kl_backward", S(rows, cols), 12 * rc, 40 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols), R(d, s + 1, rows, cols) }, All(2), t => Ops.GaussianKl(t[0], t[1])));
            // Adam/AdamW, SGD, RMSprop, Adagrad steps over one parameter tensor of n elements.
            yield return new BenchCase("adam_step", S(n), 14.0 * n, 28.0 * n, presets, (d, s) => Optimizer(d, s, n, 2,
                (p, g, st) => Ops.AdamUpdate(p, g, st[0], st[1], null, new AdamStep { Lr = 1e-3f, Beta1 = 0.9f, Beta2 = 0.999f, Eps = 1e-8f, BiasCorrection1 = 0.1f, BiasCorrection2Sqrt = 0.03f })));
            yield return new BenchCase("sgd_step", S(n), 5.0 * n, 20.0 * n, presets, (d, s) => Optimizer(d, s, n, 1,
                (p, g, st) => Ops.SgdUpdate(p, g, st[0], new SgdStep { Lr = 0.01f, Momentum = 0.9f })));
            yield return new BenchCase("rmsprop_step", S(n), 10.0 * n, 20.0 * n, presets, (d, s) => Optimizer(d, s, n, 1,
                (p, g, st) => Ops.RmsPropUpdate(p, g, st[0], null, null, new RmsPropStep { Lr = 0.01f, Alpha = 0.99f, Eps = 1e-8f })));
            yield return new BenchCase("adagrad_step", S(n), 8.0 * n, 20.0 * n, presets, (d, s) => Optimizer(d, s, n, 1,
                (p, g, st) => Ops.AdagradUpdate(p, g, st[0], new AdagradStep { Lr = 0.01f, Eps = 1e-10f })));
            yield return new BenchCase("clip_grad_norm", S(n), 3.0 * n, 12.0 * n, presets, (d, s) =>
            {
                var g = R(d, s, n);
                return new BenchInstance(() => Ops.ClipGradNorm(new[] { g }, 1e9f).Dispose(), g);
            });
        }

        foreach (var (presets, m, n, k) in new[] { (Small, 128, 128, 128), (Small, 97, 83, 71), (Medium, 2048, 2048, 2048), (Large, 4096, 4096, 4096) })
        {
            double flops = 6.0 * m * n * k, bytes = 12.0 * ((double)m * k + (double)k * n + (double)m * n);
            yield return Step("matmul_backward", S(m, n, k), flops, bytes, presets, (d, s) => (new[] { R(d, s, m, k), R(d, s + 1, k, n) }, All(2), t => Ops.MatMul(t[0], t[1])));
            yield return Step("matmul_bias_act_backward", S(m, n, k) + " Bᵀ+bias+gelu", flops + 80.0 * m * n, bytes + 24.0 * m * n, presets, (d, s) =>
                (new[] { R(d, s, m, k), R(d, s + 1, n, k), R(d, s + 2, n) }, All(3), t => Ops.Linear(t[0], t[1], t[2], FusedActivation.Gelu)));
        }
        // An MLP block x → Linear+GELU → Linear: gated, the second layer's dA applies gelu′(z) in its epilogue; unfused, the
        // same math recorded as separate ops runs gelu_erf and gelu_erf_backward as kernels of their own.
        foreach (var (presets, m, n, k) in new[] { (Small, 256, 512, 128), (Medium, 4096, 4096, 1024), (Large, 8192, 8192, 2048) })
            foreach (bool gated in new[] { true, false })
                yield return Step("matmul_act_backward", S(m, n, k) + $" mlp gelu {(gated ? "gated" : "unfused")}", 12.0 * m * n * k + 100.0 * m * n,
                    12.0 * ((double)m * k + 2.0 * n * k) + 4.0 * m * n * (gated ? 4 : 7), presets, (d, s) =>
                    (new[] { R(d, s, m, k), R(d, s + 1, n, k), R(d, s + 2, n), R(d, s + 3, k, n) }, All(4), t =>
                    {
                        if (gated)
                        {
                            using var h = Ops.Linear(t[0], t[1], t[2], FusedActivation.Gelu);
                            return Ops.Linear(h, t[3]);
                        }
                        using var z = Ops.Linear(t[0], t[1], t[2]);
                        using var a = Ops.GeluErf(z);
                        return Ops.Linear(a, t[3]);
                    }));
        foreach (var (presets, batch, m, n, k) in new[] { (Small, 4, 64, 64, 64), (Medium, 64, 512, 512, 64), (Large, 128, 1024, 1024, 64) })
            yield return Step("batched_matmul_backward", S(batch, m, n, k), 6.0 * batch * m * n * k, 12.0 * batch * ((double)m * k + (double)k * n + (double)m * n), presets, (d, s) =>
                (new[] { R(d, s, batch, m, k), R(d, s + 1, batch, k, n) }, All(2), t => Ops.MatMul(t[0], t[1])));
        foreach (var (presets, nb, c, h) in new[] { (Small, 2, 16, 32), (MediumLarge, 32, 64, 112) })
        {
            double input = (double)nb * c * h * h;
            yield return Step("groupnorm_backward", S(nb, c, h, h) + " g8", 18 * input, 40 * input, presets, (d, s) => (new[] { R(d, s, nb, c, h, h), R(d, s + 1, c), R(d, s + 2, c) }, All(3),
                t => { var r = Ops.GroupNorm(t[0], 8, t[1], t[2]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
            yield return Step("batchnorm2d_train_backward", S(nb, c, h, h), 18 * input, 40 * input, presets, (d, s) => (new[] { R(d, s, nb, c, h, h), R(d, s + 1, c), R(d, s + 2, c) }, All(3),
                t => { var r = Ops.BatchNorm2dTrain(t[0], t[1], t[2]); r.Mean.Dispose(); r.Rstd.Dispose(); return r.Output; }));
        }
        foreach (var (presets, b, h, n, dh) in new[] { (Small, 1, 1, 64, 64), (Medium, 4, 8, 1024, 64), (Large, 8, 16, 2048, 64) })
            foreach (bool causal in new[] { false, true })
            {
                // Forward 4·B·H·N²·d, backward by recomputation 2× the forward plus the five products of the unfused backward.
                double flops = 14.0 * b * h * n * n * dh * (causal ? 0.5 : 1), bytes = 48.0 * b * h * n * dh + 24.0 * b * h * n * n;
                string shape = $"B{b} H{h} N{n} d{dh}{(causal ? " causal" : "")}";
                yield return Step("attention_backward", shape, flops, bytes, presets, (d, s) =>
                    (new[] { R(d, s, b, h, n, dh), R(d, s + 1, b, h, n, dh), R(d, s + 2, b, h, n, dh) }, All(3),
                     t => { var r = Ops.Attention(t[0], t[1], t[2], causal: causal); r.LogSumExp.Dispose(); return r.Output; }));
                // The baseline: attention_unfused's recorded ops (scores materialized) differentiated by the engine.
                yield return Step("attention_backward", shape, flops, bytes + 16.0 * b * h * n * n, presets, (d, s) =>
                    (new[] { R(d, s, b, h, n, dh), R(d, s + 1, b, h, n, dh), R(d, s + 2, b, h, n, dh) }, All(3),
                     t => Ops.AttentionUnfused(t[0], t[1], t[2], causal: causal))) with { Implementation = "unfused", PeerOf = "attention_backward" };
            }
        foreach (var (presets, t, e, k, dm) in new[] { (Small, 64, 8, 2, 64), (MediumLarge, 16384, 64, 2, 1024) })
        {
            yield return Step("topk_gating_backward", $"T{t} E{e} k{k}", (k + 3.0) * t * e + 4.0 * t * e, 4.0 * t * e * 3, presets, (d, s) => (new[] { R(d, s, t, e) }, All(1),
                x => { var r = Ops.TopKGating(x[0], k); r.Indices.Dispose(); return r.Weights; }));
            yield return Step("moe_dispatch_backward", $"T{t} k{k} D{dm}", 2.0 * t * k * dm, 16.0 * t * k * dm, presets, (d, s) => (new[] { R(d, s, t, dm) }, All(1), x =>
            {
                using var logits = R(d, s + 1, t, e);
                using var g = Ops.TopKGating(logits, k);
                using var r = Ops.MoeRoute(g.Indices, e);
                return Ops.MoeDispatch(x[0], r);
            }));
            yield return Step("moe_combine_backward", $"T{t} k{k} D{dm}", 6.0 * t * k * dm, 24.0 * t * k * dm, presets, (d, s) => (new[] { R(d, s, t * k, dm), R(d, s + 1, t, k) }, All(2), x =>
            {
                using var logits = R(d, s + 2, t, e);
                using var g = Ops.TopKGating(logits, k);
                using var r = Ops.MoeRoute(g.Indices, e);
                return Ops.MoeCombine(x[0], x[1], r);
            }));
        }
        foreach (var (presets, tokens, vocab, dim) in new[] { (Small, 512, 1000, 128), (MediumLarge, 16384, 50257, 1024) })
        {
            var ids = Enumerable.Range(0, tokens).Select(i => (int)(Philox.Word(7, i) % (uint)vocab)).ToArray();
            yield return Step("embedding_backward", $"{tokens} ids V{vocab} D{dim}", 1.0 * tokens * dim, 4.0 * vocab * dim + 16.0 * tokens * dim, presets, (d, s) =>
                (new[] { R(d, s, vocab, dim) }, All(1), t => Ops.Embedding(t[0], ids)));
            yield return Step("gather_rows_backward", $"{tokens} rows V{vocab} D{dim}", 1.0 * tokens * dim, 4.0 * vocab * dim + 16.0 * tokens * dim, presets, (d, s) =>
                (new[] { R(d, s, vocab, dim), Tensor.FromArray(d, ids.Select(i => (float)i).ToArray()) }, new[] { true, false }, t => Ops.GatherRows(t[0], t[1])));
            int rows = presets == Small ? 64 : 4096;
            var targets = Enumerable.Range(0, rows).Select(i => (float)(Philox.Word(9, i) % (uint)vocab)).ToArray();
            yield return Step("nll_loss_backward", $"{rows} rows V{vocab}", 1.0 * rows * vocab, 8.0 * rows * vocab, presets, (d, s) =>
                (new[] { R(d, s, rows, vocab), Tensor.FromArray(d, targets) }, new[] { true, false }, t => Ops.NllLoss(t[0], t[1])));
            yield return Step("cross_entropy_backward", $"{rows} rows V{vocab}", 8.0 * rows * vocab, 16.0 * rows * vocab, presets, (d, s) =>
                (new[] { R(d, s, rows, vocab), Tensor.FromArray(d, targets) }, new[] { true, false }, t => Ops.CrossEntropy(t[0], t[1])));
        }
    }

    private static BenchInstance Optimizer(Device d, ulong s, int n, int states, Action<Tensor, Tensor, Tensor[]> step)
    {
        var p = R(d, s, n);
        var g = R(d, s + 1, n);
        var st = Enumerable.Range(0, states).Select(_ => Tensor.Zeros(d, n)).ToArray();
        return new BenchInstance(() => step(p, g, st), new[] { p, g }.Concat(st).ToArray<IDisposable>());
    }
}

using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of the matmul family: every transpose combination, edges of both tile shapes, batches with broadcast, epilogues, GEMV.</summary>
internal static class MatMulChecks
{
    private const string FamilyName = "matmul";

    private static int[] Shape(int rows, int cols, bool trans, int[]? batch = null) =>
        (batch ?? Array.Empty<int>()).Concat(trans ? new[] { cols, rows } : new[] { rows, cols }).ToArray();

    /// <summary>A matmul case: A is (M×K, or K×M when transposed), B is (K×N, or N×K).</summary>
    private static CheckCase Case(string kernel, string name, int m, int n, int k, bool ta = false, bool tb = false,
        MatMulTile tile = MatMulTile.Auto, int[]? batchA = null, int[]? batchB = null, float alpha = 1, float beta = 0,
        bool bias = false, FusedActivation act = FusedActivation.None)
    {
        var sa = Shape(m, k, ta, batchA);
        var sb = Shape(k, n, tb, batchB);
        string shape = $"{Shapes(sa, sb)}{(ta ? " Aᵀ" : "")}{(tb ? " Bᵀ" : "")}{(tile != MatMulTile.Auto ? $" {tile} tile" : "")}";
        return new CheckCase(FamilyName, kernel, name, shape, CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var a = Random(d, seed, 0, sa);
            using var b = Random(d, seed, 1, sb);
            using var biasT = bias ? Random(d, seed, 2, n) : null;
            var batch = ElementwiseReference.BroadcastShape(batchA ?? Array.Empty<int>(), batchB ?? Array.Empty<int>());
            var outShape = batch.Concat(new[] { m, n }).ToArray();
            using var c = beta != 0 ? Random(d, seed, 3, outShape) : Poisoned(d, outShape);
            double[]? c0 = beta != 0 ? Host(c) : null;
            Ops.MatMul(a, b, ta, tb, alpha, beta, c, biasT, act, tile);
            var reference = act == FusedActivation.None ? null : ActivationReference.Of(ActivationKernel(act));
            var expected = MatMulReference.MatMul(Host(a), sa, ta, Host(b), sb, tb, alpha, beta, c0, biasT is null ? null : Host(biasT), reference);
            return new(c.ToArray(), expected);
        });
    }

    /// <summary>The elementwise kernel name of a fused activation (its reference and derivative go by it).</summary>
    internal static string ActivationKernel(FusedActivation act) => act switch
    {
        FusedActivation.Relu => "relu",
        FusedActivation.Gelu => "gelu_erf",
        FusedActivation.GeluTanh => "gelu_tanh",
        FusedActivation.Silu => "silu",
        FusedActivation.Relu6 => "relu6",
        _ => throw new ArgumentOutOfRangeException(nameof(act)),
    };

    /// <summary>
    /// A gated-epilogue case: C = (alpha·op(A)·op(B)) ⊙ act′(Z), the backward of a fused activation applied where the gradient
    /// matmul stores. Z is drawn from ±3 so GELU's and SiLU's derivatives go through their whole range (negative lobe included).
    /// </summary>
    private static CheckCase GatedCase(string name, int m, int n, int k, bool ta, bool tb, FusedActivation act, int[]? batch = null, float alpha = 1)
    {
        var sa = Shape(m, k, ta, batch);
        var sb = Shape(k, n, tb, batch);
        var outShape = (batch ?? Array.Empty<int>()).Concat(new[] { m, n }).ToArray();
        string shape = $"{Shapes(sa, sb)}{(ta ? " Aᵀ" : "")}{(tb ? " Bᵀ" : "")} ⊙ {ActivationKernel(act)}′";
        return new CheckCase(FamilyName, "matmul_act_backward", name, shape, CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var a = Random(d, seed, 0, sa);
            using var b = Random(d, seed, 1, sb);
            using var z = Tensor.RandomUniform(d, outShape, seed ^ 0xA5A5A5A5UL, -3f, 3f);
            PoisonPool(d, new[] { outShape });
            using var c = Ops.MatMulActivationBackward(a, b, ta, tb, z, act, alpha);
            var product = MatMulReference.MatMul(Host(a), sa, ta, Host(b), sb, tb, alpha);
            var derivative = GradientReference.ActivationDerivative(ActivationKernel(act));
            var zs = Host(z);
            return new(c.ToArray(), product.Select((v, i) => v * derivative(zs[i])).ToArray());
        });
    }

    internal static IEnumerable<CheckCase> Cases()
    {
        yield return GatedCase("tiny", 1, 1, 1, false, false, FusedActivation.Relu);
        yield return GatedCase("odd_primes_relu", 37, 53, 29, false, true, FusedActivation.Relu);
        yield return GatedCase("odd_primes_gelu", 37, 53, 29, false, true, FusedActivation.Gelu, alpha: 0.75f);
        yield return GatedCase("edges_gelu_tanh_at", 130, 129, 67, true, false, FusedActivation.GeluTanh);
        yield return GatedCase("batched_silu", 19, 21, 17, false, false, FusedActivation.Silu, batch: new[] { 3 });
        yield return GatedCase("one_row_relu", 1, 77, 91, false, true, FusedActivation.Relu);
        yield return GatedCase("aligned_gelu", 64, 128, 48, false, true, FusedActivation.Gelu);
        yield return Case("matmul", "tiny", 1, 1, 1, tile: MatMulTile.Small);
        yield return Case("matmul", "odd_primes", 37, 53, 29);
        foreach (var (ta, tb) in new[] { (true, false), (false, true), (true, true) })
            yield return Case("matmul", $"odd_primes_{(ta ? "at" : "a")}_{(tb ? "bt" : "b")}", 37, 53, 29, ta, tb);
        yield return Case("matmul", "small_tile_multiple", 64, 128, 64);
        yield return Case("matmul", "large_tile_edges", 130, 129, 67, tile: MatMulTile.Large);
        yield return Case("matmul", "large_tile_transposed", 131, 70, 45, true, true, MatMulTile.Large);
        yield return Case("matmul", "large_tile_multiple", 128, 128, 16, tile: MatMulTile.Large);
        yield return Case("matmul", "tall_skinny", 1024, 3, 1024);
        yield return Case("matmul", "deep_k", 9, 7, 4096);
        yield return Case("matmul", "k_not_multiple_of_4", 33, 35, 6);
        yield return Case("matmul", "moderate", 200, 192, 256);
        yield return Case("matmul", "alpha_beta", 45, 61, 23, alpha: 0.75f, beta: -1.25f);
        yield return Case("batched_matmul", "same_batch", 19, 21, 17, batchA: new[] { 3 }, batchB: new[] { 3 });
        yield return Case("batched_matmul", "broadcast", 13, 11, 9, batchA: new[] { 3, 1 }, batchB: new[] { 4 });
        yield return Case("batched_matmul", "broadcast_b_transposed", 13, 11, 9, false, true, batchA: new[] { 2, 5 }, batchB: new[] { 1, 5 });
        yield return Case("batched_matmul", "large_tile", 65, 67, 33, tile: MatMulTile.Large, batchA: new[] { 2 }, batchB: new[] { 2 });
        yield return Case("matmul_bias_act", "bias", 37, 53, 29, bias: true);
        yield return Case("matmul_bias_act", "bias_relu", 37, 53, 29, bias: true, act: FusedActivation.Relu);
        yield return Case("matmul_bias_act", "linear_gelu", 37, 53, 29, false, true, bias: true, act: FusedActivation.Gelu);
        yield return Case("matmul_bias_act", "linear_gelu_tanh_large", 70, 129, 40, false, true, MatMulTile.Large, bias: true, act: FusedActivation.GeluTanh);
        yield return Case("matmul_bias_act", "silu_alpha", 20, 24, 31, alpha: 0.5f, act: FusedActivation.Silu);
        yield return Case("matmul_bias_act", "relu6", 37, 53, 29, bias: true, act: FusedActivation.Relu6);
        // Few columns (the fast CPU's skinny products, bias and activation applied in their stores): 9–16 columns with a row of
        // B per vector (in place or padded), ≤ 8 columns through Bᵀ; alpha/beta on the first.
        yield return Case("matmul", "skinny_alpha_beta", 45, 15, 23, alpha: 0.75f, beta: -1.25f);
        yield return Case("matmul_bias_act", "skinny_bias_relu", 37, 13, 29, bias: true, act: FusedActivation.Relu);
        yield return Case("matmul_bias_act", "skinny_bt_n5_bias_gelu", 37, 5, 29, false, true, bias: true, act: FusedActivation.Gelu);
        yield return Case("gemv", "n_contiguous", 1, 300, 257);
        yield return Case("gemv", "k_contiguous", 1, 300, 257, tb: true);
        yield return Case("gemv", "k_contiguous_aligned", 1, 129, 512, tb: true);
        yield return Case("gemv", "transposed_x", 1, 61, 37, ta: true);
        yield return Case("gemv", "bias_silu", 1, 77, 91, tb: true, bias: true, act: FusedActivation.Silu);
        yield return Case("gemv", "beta", 1, 33, 65, alpha: 2, beta: 0.5f);
        // Rows of B four at a time on the fast CPU: K = 2·32 + 16 + 3 (both vector steps and a scalar tail), 45 rows.
        yield return Case("gemv", "k_contiguous_alpha_beta", 1, 45, 83, tb: true, alpha: 2, beta: 0.5f);
        yield return new CheckCase(FamilyName, "matmul", "strided_views", "[40, 70] cols 3..50 × [47, 33]ᵀ view", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            // A is a column slice (row stride 70), B a transposed view of a contiguous [33, 47].
            using var baseA = Random(d, seed, 0, 40, 70);
            using var baseB = Random(d, seed, 1, 33, 47);
            using var a = baseA.Slice(1, 3, 47);
            using var b = baseB.Transpose(0, 1);
            using var c = Poisoned(d, 40, 33);
            Ops.MatMul(a, b, c: c);
            var ha = ElementwiseReference.StridedView(Host(baseA), new[] { 40, 47 }, new[] { 70, 1 }, 3);
            return new(c.ToArray(), MatMulReference.MatMul(ha, new[] { 40, 47 }, false, Host(baseB), new[] { 33, 47 }, true));
        });
    }

    internal static IEnumerable<CheckCase> BackwardMatMuls()
    {
        var cases = new (string Name, int[] A, bool TA, int[] B, bool TB, bool Bias, bool GpuOnly)[]
        {
            ("tiny", new[] { 1, 1 }, false, new[] { 1, 1 }, false, false, false),
            ("odd", new[] { 37, 53 }, false, new[] { 53, 29 }, false, false, false),
            ("odd_at", new[] { 23, 19 }, true, new[] { 23, 17 }, false, false, false),
            ("odd_bt", new[] { 19, 23 }, false, new[] { 17, 23 }, true, false, false),
            ("odd_at_bt", new[] { 23, 19 }, true, new[] { 17, 23 }, true, false, false),
            ("bias", new[] { 21, 13 }, false, new[] { 11, 13 }, true, true, false),
            ("batched_broadcast", new[] { 3, 1, 9, 13 }, false, new[] { 4, 13, 11 }, false, false, false),
            ("moderate", new[] { 130, 70 }, false, new[] { 97, 70 }, true, true, false),   // 0.9 M multiply-adds per pass: the simulator runs it in seconds
        };
        foreach (var (name, a, ta, b, tb, bias, gpuOnly) in cases)
        {
            int n = tb ? b[^2] : b[^1];
            var inputs = new List<GradientInput> { new(a), new(b) };
            if (bias)
                inputs.Add(new GradientInput(new[] { n }));
            yield return GradientCheck.Case(bias ? "matmul_bias_act_backward" : a.Length > 2 ? "batched_matmul_backward" : "matmul_backward", name, inputs.ToArray(),
                t => Ops.MatMul(t[0], t[1], ta, tb, alpha: 0.75f, bias: bias ? t[2] : null),
                x => MatMulReference.MatMul(x[0], a, ta, x[1], b, tb, 0.75, 0, null, bias ? x[2] : null),
                (x, g) =>
                {
                    var (da, db, dbias) = GradientReference.MatMul(x[0], a, ta, x[1], b, tb, 0.75, g);
                    return bias ? new[] { da, db, dbias } : new[] { da, db };
                }, gpuOnly: gpuOnly);
        }
        // Training splits a fused epilogue into matmul + activation: the activation's backward uses the saved pre-activation.
        var fusedA = new[] { 17, 13 };
        var fusedW = new[] { 11, 13 };
        var gelu = ActivationReference.Of("gelu_erf");
        yield return GradientCheck.Case("matmul_bias_act_backward", "linear_gelu", new[] { new GradientInput(fusedA), new GradientInput(fusedW), new GradientInput(new[] { 11 }) },
            t => Ops.Linear(t[0], t[1], t[2], FusedActivation.Gelu),
            x => MatMulReference.MatMul(x[0], fusedA, false, x[1], fusedW, true, 1, 0, null, x[2], gelu),
            (x, g) =>
            {
                var z = MatMulReference.MatMul(x[0], fusedA, false, x[1], fusedW, true, 1, 0, null, x[2]);
                var dgelu = GradientReference.ActivationDerivative("gelu_erf");
                var gz = z.Select((v, i) => g[i] * dgelu(v)).ToArray();
                var (da, db, dbias) = GradientReference.MatMul(x[0], fusedA, false, x[1], fusedW, true, 1, gz);
                return new[] { da, db, dbias };
            });
    }

    /// <summary>
    /// Fused layers feeding matmuls: the consumer's backward applies the producer's act′(z) in its epilogue (matmul_act_backward)
    /// when it is the only consumer — chained Linear layers, a rank-3 input, a transposed consumer — and the engine applies it on
    /// its own when the output has two consumers. Each against the chain rule in double precision.
    /// </summary>
    internal static IEnumerable<CheckCase> BackwardFusedChains()
    {
        static double[] Act(double[] z, string act) => z.Select(ActivationReference.Of(act)).ToArray();
        static double[] Gate(double[] g, double[] z, string act)
        {
            var df = GradientReference.ActivationDerivative(act);
            return g.Select((v, i) => v * df(z[i])).ToArray();
        }
        static double[] Linear(double[] x, int[] xShape, double[] w, int[] wShape, double[]? bias) =>
            MatMulReference.MatMul(x, xShape, false, w, wShape, true, 1, 0, null, bias);

        int[] w1 = { 17, 13 }, w2 = { 11, 17 };
        foreach (var (act, rows) in new[] { (FusedActivation.Relu, new[] { 9 }), (FusedActivation.Gelu, new[] { 2, 7 }), (FusedActivation.GeluTanh, new[] { 5 }), (FusedActivation.Silu, new[] { 9 }),
                     (FusedActivation.Relu6, new[] { 9 }) })
        {
            string name = MatMulChecks.ActivationKernel(act);
            var x = rows.Append(13).ToArray();
            var h = rows.Append(17).ToArray();
            yield return GradientCheck.Case("matmul_act_backward", $"two_linear_{name}", new[] { new GradientInput(x, Scale: 2f), new GradientInput(w1), new GradientInput(new[] { 17 }), new GradientInput(w2), new GradientInput(new[] { 11 }) },
                t => Ops.Linear(Ops.Linear(t[0], t[1], t[2], act), t[3], t[4], act),
                v => Act(Linear(Act(Linear(v[0], x, v[1], w1, v[2]), name), h, v[3], w2, v[4]), name),
                (v, g) =>
                {
                    var z1 = Linear(v[0], x, v[1], w1, v[2]);
                    var z2 = Linear(Act(z1, name), h, v[3], w2, v[4]);
                    var (dh, dw2, db2) = GradientReference.MatMul(Act(z1, name), h, false, v[3], w2, true, 1, Gate(g, z2, name));
                    var (dx, dw1, db1) = GradientReference.MatMul(v[0], x, false, v[1], w1, true, 1, Gate(dh, z1, name));
                    return new[] { dx, dw1, db1, dw2, db2 };
                });
        }

        // A transposed consumer: P = hᵀ·Q with h = gelu(x·W1ᵀ + b1) (the gate lands in the epilogue of dh = Q·dPᵀ).
        int[] xs = { 9, 13 }, hs = { 9, 17 }, q = { 9, 5 };
        yield return GradientCheck.Case("matmul_act_backward", "transposed_consumer_gelu", new[] { new GradientInput(xs, Scale: 2f), new GradientInput(w1), new GradientInput(new[] { 17 }), new GradientInput(q) },
            t => Ops.MatMul(Ops.Linear(t[0], t[1], t[2], FusedActivation.Gelu), t[3], transposeA: true),
            v => MatMulReference.MatMul(Act(Linear(v[0], xs, v[1], w1, v[2]), "gelu_erf"), hs, true, v[3], q, false),
            (v, g) =>
            {
                var z1 = Linear(v[0], xs, v[1], w1, v[2]);
                var (dh, dq, _) = GradientReference.MatMul(Act(z1, "gelu_erf"), hs, true, v[3], q, false, 1, g);
                var (dx, dw1, db1) = GradientReference.MatMul(v[0], xs, false, v[1], w1, true, 1, Gate(dh, z1, "gelu_erf"));
                return new[] { dx, dw1, db1, dq };
            });

        // Two consumers of one fused output: the engine sums their gradients, then applies the gate itself.
        int[] w3 = { 11, 17 };
        yield return GradientCheck.Case("matmul_bias_act_backward", "two_consumers_silu", new[] { new GradientInput(xs, Scale: 2f), new GradientInput(w1), new GradientInput(new[] { 17 }), new GradientInput(w2), new GradientInput(w3) },
            t =>
            {
                using var hidden = Ops.Linear(t[0], t[1], t[2], FusedActivation.Silu);
                using var left = Ops.Linear(hidden, t[3]);
                using var right = Ops.Linear(hidden, t[4]);
                return Ops.Add(left, right);
            },
            v =>
            {
                var hv = Act(Linear(v[0], xs, v[1], w1, v[2]), "silu");
                var l = Linear(hv, hs, v[3], w2, null);
                var r = Linear(hv, hs, v[4], w3, null);
                return l.Select((e, i) => e + r[i]).ToArray();
            },
            (v, g) =>
            {
                var z1 = Linear(v[0], xs, v[1], w1, v[2]);
                var hv = Act(z1, "silu");
                var (dl, dw2, _) = GradientReference.MatMul(hv, hs, false, v[3], w2, true, 1, g);
                var (dr, dw3, _) = GradientReference.MatMul(hv, hs, false, v[4], w3, true, 1, g);
                var (dx, dw1, db1) = GradientReference.MatMul(v[0], xs, false, v[1], w1, true, 1, Gate(dl.Select((e, i) => e + dr[i]).ToArray(), z1, "silu"));
                return new[] { dx, dw1, db1, dw2, dw3 };
            });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new(FamilyName, () => Cases().Concat(BackwardMatMuls()).Concat(BackwardFusedChains()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants()
    {
        var id = typeof(ElementwiseOps.Identity);
        var large = typeof(MatMulTiles.Large);
        var acts = new[] { typeof(Activation.Relu), typeof(Activation.GeluErf), typeof(Activation.GeluTanh), typeof(Activation.Silu), typeof(Activation.Relu6) };
        foreach (var (tile, tileName) in new[] { (large, "large"), (typeof(MatMulTiles.Small), "small") })
            foreach (var (aK, bK) in new[] { (true, false), (true, true), (false, false), (false, true) })
                yield return Tiled("matmul", $"{tileName}_{(aK ? "a" : "at")}_{(bK ? "bt" : "b")}", tile, aK, bK, id);
        yield return Tiled("batched_matmul", "large_a_b", large, true, false, id);
        foreach (var act in acts)
            yield return Tiled("matmul_bias_act", $"large_a_bt_{act.Name}", large, true, true, act);
        yield return new KernelVariant("gemv", "k_contiguous", Closed(typeof(MatMulKernels), nameof(MatMulKernels.GemvKContiguous), id));
        yield return new KernelVariant("gemv", "n_contiguous", Closed(typeof(MatMulKernels), nameof(MatMulKernels.GemvNContiguous), id));
        foreach (var (aK, bK) in new[] { (true, true), (false, false), (true, false) })
            yield return Tiled("matmul_backward", $"large_{(aK ? "a" : "at")}_{(bK ? "bt" : "b")}", large, aK, bK, id);
        yield return Tiled("batched_matmul_backward", "large_a_bt", large, true, true, id);
        yield return Tiled("matmul_bias_act_backward", "large_at_b", large, false, false, id);
        // A Linear's dA = g·W with the producer's act′(z) in the epilogue: the gated specializations.
        foreach (var act in acts)
            yield return Tiled("matmul_act_backward", $"large_a_b_{act.Name}", large, true, false, act, gate: true);
    }

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, m, n, k) in MatMuls)
        {
            double flops = 2.0 * m * n * k, bytes = 4.0 * ((double)m * k + (double)k * n + (double)m * n);
            yield return C("matmul", S(m, n, k), flops, bytes, presets, (d, s) => { var a = R(d, s, m, k); var b = R(d, s + 1, k, n); return new(() => Ops.MatMul(a, b).Dispose(), a, b); });
            yield return C("matmul_bias_act", S(m, n, k) + " Bᵀ+bias+gelu", flops + 26.0 * m * n, bytes + 4.0 * n, presets, (d, s) =>
            { var x = R(d, s, m, k); var w = R(d, s + 1, n, k); var b = R(d, s + 2, n); return new(() => Ops.Linear(x, w, b, FusedActivation.Gelu).Dispose(), x, w, b); });
            if (m == 8192)
                continue;
            yield return Step("matmul_backward", S(m, n, k), 3 * flops, 3 * bytes, presets, (d, s) => (new[] { R(d, s, m, k), R(d, s + 1, k, n) }, Trained(2), t => Ops.MatMul(t[0], t[1])));
            yield return Step("matmul_bias_act_backward", S(m, n, k) + " Bᵀ+bias+gelu", 3 * flops + 80.0 * m * n, 3 * bytes + 24.0 * m * n, presets, (d, s) =>
                (new[] { R(d, s, m, k), R(d, s + 1, n, k), R(d, s + 2, n) }, Trained(3), t => Ops.Linear(t[0], t[1], t[2], FusedActivation.Gelu)));
        }
        foreach (int m in new[] { 512, 1024 })
            yield return C("matmul", S(m, m, m), 2.0 * m * m * m, 12.0 * m * m, CpuPreset, (d, s) => { var a = R(d, s, m, m); var b = R(d, s + 1, m, m); return new(() => Ops.MatMul(a, b).Dispose(), a, b); });
        foreach (var (presets, batch, m, n, k) in new[] { (Small, 4, 64, 64, 64), (Medium, 64, 512, 512, 64), (Large, 128, 1024, 1024, 64) })
        {
            yield return C("batched_matmul", S(batch, m, n, k), 2.0 * batch * m * n * k, 4.0 * batch * ((double)m * k + (double)k * n + (double)m * n), presets, (d, s) =>
            { var a = R(d, s, batch, m, k); var b = R(d, s + 1, batch, k, n); return new(() => Ops.MatMul(a, b).Dispose(), a, b); });
            yield return Step("batched_matmul_backward", S(batch, m, n, k), 6.0 * batch * m * n * k, 12.0 * batch * ((double)m * k + (double)k * n + (double)m * n), presets, (d, s) =>
                (new[] { R(d, s, batch, m, k), R(d, s + 1, batch, k, n) }, Trained(2), t => Ops.MatMul(t[0], t[1])));
        }
        foreach (var (presets, n, k) in new[] { (Small, 256, 512), (Medium, 8192, 8192), (Large, 16384, 16384) })
            yield return C("gemv", S(1, n, k) + " Wᵀ", 2.0 * n * k, 4.0 * ((double)n * k + n + k), presets, (d, s) =>
            { var x = R(d, s, 1, k); var w = R(d, s + 1, n, k); return new(() => Ops.Linear(x, w).Dispose(), x, w); });
        // An MLP block x → Linear+GELU → Linear: gated, the second layer's dA applies gelu′(z) in its epilogue; unfused, the
        // same math recorded as separate ops runs gelu_erf and gelu_erf_backward as kernels of their own.
        foreach (var (presets, m, n, k) in new[] { (Small, 256, 512, 128), (Medium, 4096, 4096, 1024), (Large, 8192, 8192, 2048) })
            foreach (bool gated in new[] { true, false })
                yield return Step("matmul_act_backward", S(m, n, k) + $" mlp gelu {(gated ? "gated" : "unfused")}", 12.0 * m * n * k + 100.0 * m * n,
                    12.0 * ((double)m * k + 2.0 * n * k) + 4.0 * m * n * (gated ? 4 : 7), presets, (d, s) =>
                    (new[] { R(d, s, m, k), R(d, s + 1, n, k), R(d, s + 2, n), R(d, s + 3, k, n) }, Trained(4), t =>
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
    }
}

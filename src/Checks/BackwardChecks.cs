using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>
/// Check cases of the backward kernels, run through the autograd engine as a user would: seeded inputs that require a
/// gradient, the forward op, <c>Backward(g)</c> with a random output gradient g, and every input's gradient compared
/// (concatenated) with the double-precision reference gradient. Before a reference gradient is used it is proved against
/// central finite differences of the double reference forward (<see cref="GradientReference.ProveByFiniteDifferences"/>),
/// so the oracle is checked, not assumed (once per case and seed in a process, whichever device runs it first). The pool's
/// free blocks of each gradient's size are filled with NaN first, so a gradient element the kernels leave unwritten shows
/// as NaN.
/// </summary>
internal static class BackwardChecks
{
    /// <summary>(kernel, case, seed) whose reference gradient has passed its finite-difference proof in this process.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, ulong), bool> Proven = new();

    /// <summary>One input: its shape, whether it gets a gradient, and how its values are drawn (uniform in ±scale, or custom).</summary>
    private sealed record Input(int[] Shape, bool Differentiable = true, float Scale = 1f, Func<int, ulong, float[]>? Values = null);

    private static CheckCase Case(string kernel, string name, Input[] inputs, Func<Tensor[], Tensor> forward,
        Func<double[][], double[]> referenceForward, Func<double[][], double[], double[]?[]> referenceBackward,
        double tolerance = CheckCase.Fp32Tolerance, bool gpuOnly = false) =>
        new("backward", kernel, name, Shapes(inputs.Select(i => i.Shape).ToArray()), tolerance, (device, seed) =>
        {
            var host = inputs.Select((input, k) =>
            {
                if (input.Values is not null)
                    return input.Values(k, seed);
                var v = new float[ShapeUtil.Product(input.Shape)];
                Philox.FillUniform(v, seed + (ulong)k * 0x9E3779B97F4A7C15UL, -input.Scale, input.Scale);
                return v;
            }).ToArray();
            var dbl = host.Select(h => Array.ConvertAll(h, v => (double)v)).ToArray();
            var y = referenceForward(dbl);
            var g = new float[y.Length];
            Philox.FillUniform(g, seed ^ 0x5DEECE66DUL, -1f, 1f);
            var gd = Array.ConvertAll(g, v => (double)v);
            var expected = referenceBackward(dbl, gd);
            for (int k = 0; k < inputs.Length; k++)
                if (!inputs[k].Differentiable)
                    expected[k] = null;
            // The proof depends on the case and its seed only (the inputs are drawn on the host): once per pair, not per device.
            if (!Proven.ContainsKey((kernel, name, seed)))
            {
                GradientReference.ProveByFiniteDifferences($"{kernel}/{name}", referenceForward, dbl, gd, expected);
                Proven.TryAdd((kernel, name, seed), true);
            }

            var tensors = host.Select((h, k) => Tensor.FromArray(device, h, inputs[k].Shape)).ToArray();
            try
            {
                for (int k = 0; k < inputs.Length; k++)
                    tensors[k].RequiresGrad = inputs[k].Differentiable;
                PoisonPool(device, inputs.Where(i => i.Differentiable).Select(i => i.Shape));
                using (var output = forward(tensors))
                using (var gt = Tensor.FromArray(device, g, output.ShapeArray()))
                    output.Backward(gt);
                var got = new List<float>();
                var want = new List<double>();
                for (int k = 0; k < inputs.Length; k++)
                    if (inputs[k].Differentiable)
                    {
                        got.AddRange(tensors[k].Grad?.ToArray() ?? Enumerable.Repeat(float.NaN, host[k].Length));
                        want.AddRange(expected[k]!);
                    }
                return new CheckOutput(got.ToArray(), want.ToArray());
            }
            finally
            {
                foreach (var t in tensors)
                    t.Dispose();
            }
        }) { GpuOnly = gpuOnly };

    internal static IEnumerable<CheckCase> Cases() =>
        Activations().Concat(MatMuls()).Concat(FusedChains()).Concat(Elementwise()).Concat(Reductions()).Concat(Softmaxes()).Concat(Normalizations()).Concat(Losses()).Concat(Views()).Concat(Layouts()).Concat(Gathers()).Concat(Attentions()).Concat(AttentionWithFixedMasks()).Concat(Routing());

    private static IEnumerable<CheckCase> Activations()
    {
        var kernels = new (string Name, double Parameter, Func<Tensor, Tensor> Op)[]
        {
            ("relu", 0, x => Ops.Relu(x)),
            ("leaky_relu", 0.05, x => Ops.LeakyRelu(x, 0.05f)),
            ("gelu_erf", 0, x => Ops.GeluErf(x)),
            ("gelu_tanh", 0, x => Ops.GeluTanh(x)),
            ("silu", 0, x => Ops.Silu(x)),
            ("sigmoid", 0, x => Ops.Sigmoid(x)),
            ("tanh", 0, x => Ops.Tanh(x)),
            ("softplus", 0, x => Ops.Softplus(x)),
            ("elu", 1.5, x => Ops.Elu(x, 1.5f)),
            ("exp", 0.5, x => Ops.Exp(x, 0.5f)),
            ("scale", -1.75, x => Ops.Scale(x, -1.75f)),
        };
        // The one-element case draws from [0.25, 1]: a lone element near a zero of f′ (GELU's at −0.75, SiLU's at −1.28) would
        // turn float rounding into an unbounded relative error; the wide cases cover the whole line.
        static float[] Positive(int _, ulong seed)
        {
            var v = new float[1];
            Philox.FillUniform(v, seed, 0.25f, 1f);
            return v;
        }
        var shapes = new (string Name, int[] Shape, float Scale, Func<int, ulong, float[]>? Values)[]
        {
            ("tiny", new[] { 1 }, 1f, Positive),
            ("odd_wide", new[] { 37, 53 }, 6f, null),
            ("moderate", new[] { 64, 1031 }, 10f, null),
        };
        foreach (var (name, parameter, op) in kernels)
        {
            var f = ActivationReference.Of(name, parameter);
            var df = GradientReference.ActivationDerivative(name, parameter);
            foreach (var (shapeName, shape, scale, values) in shapes)
                yield return Case(name + "_backward", shapeName, new[] { new Input(shape, Scale: scale, Values: values) }, t => op(t[0]),
                    x => x[0].Select(f).ToArray(),
                    (x, g) => new[] { x[0].Select((v, i) => g[i] * df(v)).ToArray() });
        }
    }

    private static IEnumerable<CheckCase> MatMuls()
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
            ("moderate", new[] { 130, 70 }, false, new[] { 97, 70 }, true, true, true),
        };
        foreach (var (name, a, ta, b, tb, bias, gpuOnly) in cases)
        {
            int n = tb ? b[^2] : b[^1];
            var inputs = new List<Input> { new(a), new(b) };
            if (bias)
                inputs.Add(new Input(new[] { n }));
            yield return Case(bias ? "matmul_bias_act_backward" : a.Length > 2 ? "batched_matmul_backward" : "matmul_backward", name, inputs.ToArray(),
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
        yield return Case("matmul_bias_act_backward", "linear_gelu", new[] { new Input(fusedA), new Input(fusedW), new Input(new[] { 11 }) },
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
    private static IEnumerable<CheckCase> FusedChains()
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
        foreach (var (act, rows) in new[] { (FusedActivation.Relu, new[] { 9 }), (FusedActivation.Gelu, new[] { 2, 7 }), (FusedActivation.GeluTanh, new[] { 5 }), (FusedActivation.Silu, new[] { 9 }) })
        {
            string name = MatMulChecks.ActivationKernel(act);
            var x = rows.Append(13).ToArray();
            var h = rows.Append(17).ToArray();
            yield return Case("matmul_act_backward", $"two_linear_{name}", new[] { new Input(x, Scale: 2f), new Input(w1), new Input(new[] { 17 }), new Input(w2), new Input(new[] { 11 }) },
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
        yield return Case("matmul_act_backward", "transposed_consumer_gelu", new[] { new Input(xs, Scale: 2f), new Input(w1), new Input(new[] { 17 }), new Input(q) },
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
        yield return Case("matmul_bias_act_backward", "two_consumers_silu", new[] { new Input(xs, Scale: 2f), new Input(w1), new Input(new[] { 17 }), new Input(w2), new Input(w3) },
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

    private static IEnumerable<CheckCase> Elementwise()
    {
        // Divisors kept away from 0: |b| in [0.5, 1.5] with random sign.
        static float[] Divisor(int[] shape, ulong seed)
        {
            var v = new float[ShapeUtil.Product(shape)];
            Philox.FillUniform(v, seed, -1f, 1f);
            return Array.ConvertAll(v, u => MathF.CopySign(0.5f + MathF.Abs(u), u));
        }
        var ops = new (string Name, Func<Tensor, Tensor, Tensor> Op, Func<double, double, double> F, Func<double, double, double> Da, Func<double, double, double> Db)[]
        {
            ("add", (a, b) => Ops.Add(a, b), (a, b) => a + b, (_, _) => 1, (_, _) => 1),
            ("sub", (a, b) => Ops.Sub(a, b), (a, b) => a - b, (_, _) => 1, (_, _) => -1),
            ("mul", (a, b) => Ops.Mul(a, b), (a, b) => a * b, (_, b) => b, (a, _) => a),
            ("div", (a, b) => Ops.Div(a, b), (a, b) => a / b, (_, b) => 1 / b, (a, b) => -a / (b * b)),
        };
        var shapes = new (string Name, int[] A, int[] B)[]
        {
            ("same", new[] { 37, 53 }, new[] { 37, 53 }),
            ("row_broadcast", new[] { 37, 53 }, new[] { 53 }),
            ("both_broadcast", new[] { 7, 1, 5 }, new[] { 3, 5 }),
            ("scalar", new[] { 1 }, new[] { 19 }),
        };
        foreach (var (name, op, f, da, db) in ops)
            foreach (var (shapeName, a, b) in shapes)
                yield return Case(name + "_backward", shapeName,
                    new[] { new Input(a), new Input(b, Values: name == "div" ? (k, seed) => Divisor(b, seed + (ulong)k) : null) },
                    t => op(t[0], t[1]),
                    x => ElementwiseReference.Binary(x[0], a, x[1], b, f),
                    (x, g) =>
                    {
                        var (ga, gb) = GradientReference.Binary(x[0], a, x[1], b, g, da, db);
                        return new[] { ga, gb };
                    });
    }

    private static IEnumerable<CheckCase> Reductions()
    {
        var shape = new[] { 7, 11, 13 };
        foreach (var (axis, keep) in new[] { (0, false), (1, true), (-1, false) })
            foreach (var mean in new[] { false, true })
            {
                int a = axis < 0 ? axis + shape.Length : axis;
                int outer = (int)ShapeUtil.Product(shape.AsSpan(0, a)), reduced = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1));
                yield return Case(mean ? "reduce_mean_backward" : "reduce_sum_backward", $"axis{axis}{(keep ? "_keepdim" : "")}", new[] { new Input(shape) },
                    t => mean ? Ops.Mean(t[0], axis, keep) : Ops.Sum(t[0], axis, keep),
                    x => ReduceReference.Reduce(x[0], outer, reduced, inner, 0, (p, q) => p + q, mean ? (s, c) => s / c : null),
                    (x, g) =>
                    {
                        var dx = new double[x[0].Length];
                        for (int o = 0; o < outer; o++)
                            for (int r = 0; r < reduced; r++)
                                for (int i = 0; i < inner; i++)
                                    dx[(o * reduced + r) * inner + i] = g[o * inner + i] / (mean ? reduced : 1);
                        return new[] { dx };
                    });
            }
        // Max: the gradient goes to the maximum of each reduced column. Distinct values: at a tie max has no derivative
        // (central differences give the average over the tied elements), so the tie rule — the first maximum, as PyTorch —
        // is a unit test (TrainingTests.MaxRoutesTheGradientToTheFirstMaximum), not a finite-difference case.
        foreach (var (axis, keep) in new[] { (1, false), (-1, true) })
        {
            int a = axis < 0 ? axis + shape.Length : axis;
            int outer = (int)ShapeUtil.Product(shape.AsSpan(0, a)), reduced = shape[a], inner = (int)ShapeUtil.Product(shape.AsSpan(a + 1));
            int First(double[] x, int o, int i)
            {
                int best = 0;
                for (int r = 1; r < reduced; r++)
                    if (x[(o * reduced + r) * inner + i] > x[(o * reduced + best) * inner + i])
                        best = r;
                return best;
            }
            yield return Case("reduce_max_backward", $"axis{axis}{(keep ? "_keepdim" : "")}", new[] { new Input(shape) },
                t => Ops.Max(t[0], axis, keep),
                x => ReduceReference.Reduce(x[0], outer, reduced, inner, double.NegativeInfinity, Math.Max),
                (x, g) =>
                {
                    var dx = new double[x[0].Length];
                    for (int o = 0; o < outer; o++)
                        for (int i = 0; i < inner; i++)
                            dx[(o * reduced + First(x[0], o, i)) * inner + i] = g[o * inner + i];
                    return new[] { dx };
                });
        }
        yield return Case("reduce_sum_backward", "all", new[] { new Input(new[] { 37, 53 }) }, t => Ops.SumAll(t[0]),
            x => new[] { x[0].Sum() }, (x, g) => new[] { x[0].Select(_ => g[0]).ToArray() });
    }

    private static IEnumerable<CheckCase> Softmaxes()
    {
        var shapes = new (string Name, int Rows, int Cols, float Scale)[]
        {
            ("tiny", 1, 1, 1f),
            ("odd", 37, 53, 4f),
            ("moderate", 64, 1031, 8f),
        };
        foreach (var log in new[] { false, true })
            foreach (var (name, rows, cols, scale) in shapes)
                yield return Case(log ? "log_softmax_backward" : "softmax_backward", name, new[] { new Input(new[] { rows, cols }, Scale: scale) },
                    t => log ? Ops.LogSoftmax(t[0]) : Ops.Softmax(t[0]),
                    x => SoftmaxReference.Softmax(x[0], rows, cols, log),
                    (x, g) => new[] { GradientReference.Softmax(SoftmaxReference.Softmax(x[0], rows, cols, log), g, rows, cols, log) });
        yield return Case("softmax_backward", "causal", new[] { new Input(new[] { 2, 13, 13 }, Scale: 3f) },
            t => Ops.SoftmaxCausal(t[0]),
            x => SoftmaxReference.Softmax(x[0], 26, 13, causal: true, rowsPerMatrix: 13),
            (x, g) => new[] { GradientReference.Softmax(SoftmaxReference.Softmax(x[0], 26, 13, causal: true, rowsPerMatrix: 13), g, 26, 13, false) });
    }

    private static IEnumerable<CheckCase> Normalizations()
    {
        const double eps = 1e-5;
        foreach (var (name, rows, cols, offset) in new[] { ("tiny", 1, 1, 0f), ("odd", 37, 53, 0f), ("offset", 16, 257, 100f), ("wide", 8, 4099, 0f) })
            foreach (var rms in new[] { false, true })
            {
                // Inputs on a common offset test that the backward's x̂ is as exact as the forward's.
                float[] Shifted(int k, ulong seed)
                {
                    var v = new float[rows * cols];
                    Philox.FillUniform(v, seed, -1f, 1f);
                    return v.Select(u => u + offset).ToArray();
                }
                var inputs = rms
                    ? new[] { new Input(new[] { rows, cols }, Values: Shifted), new Input(new[] { cols }) }
                    : new[] { new Input(new[] { rows, cols }, Values: Shifted), new Input(new[] { cols }), new Input(new[] { cols }) };
                yield return Case(rms ? "rmsnorm_backward" : "layernorm_backward", name, inputs,
                    t => rms ? KeepOutput(Ops.RmsNorm(t[0], t[1], (float)eps)) : KeepOutput(Ops.LayerNorm(t[0], t[1], t[2], (float)eps)),
                    x => NormalizationReference.Normalize(x[0], rows, cols, x[1], rms ? null : x[2], eps, rms).Y,
                    (x, g) =>
                    {
                        var (dx, dg, db) = GradientReference.Normalize(x[0], x[1], g, rows, cols, (r, j) => r * cols + j, (_, j) => j, cols, eps, rms);
                        return rms ? new[] { dx, dg } : new[] { dx, dg, db };
                    });
            }
        // GroupNorm [N, C, H, W] with 3 groups and BatchNorm2d (training statistics) [N, C, H, W].
        int n = 2, c = 6, h = 5, w = 3, hw = h * w, groups = 3, per = c / groups;
        var shape = new[] { n, c, h, w };
        yield return Case("groupnorm_backward", "g3", new[] { new Input(shape), new Input(new[] { c }), new Input(new[] { c }) },
            t => KeepOutput(Ops.GroupNorm(t[0], groups, t[1], t[2], (float)eps)),
            x => NormalizationReference.GroupNorm(x[0], n, c, hw, groups, x[1], x[2], eps).Y,
            (x, g) =>
            {
                var (dx, dg, db) = GradientReference.Normalize(x[0], x[1], g, n * groups, per * hw, (r, j) => r * per * hw + j, (r, j) => r % groups * per + j / hw, c, eps, false);
                return new[] { dx, dg, db };
            });
        yield return Case("batchnorm2d_train_backward", "n2_c6", new[] { new Input(shape), new Input(new[] { c }), new Input(new[] { c }) },
            t => KeepOutput(Ops.BatchNorm2dTrain(t[0], t[1], t[2], eps: (float)eps)),
            x => NormalizationReference.BatchNorm(x[0], n, c, hw, x[1], x[2], eps).Y,
            (x, g) =>
            {
                var (dx, dg, db) = GradientReference.Normalize(x[0], x[1], g, c, n * hw, (r, j) => (j / hw * c + r) * hw + j % hw, (r, _) => r, c, eps, false);
                return new[] { dx, dg, db };
            });
    }

    private static Tensor KeepOutput(NormResult r)
    {
        r.Mean.Dispose();
        r.Rstd.Dispose();
        return r.Output;
    }

    private static IEnumerable<CheckCase> Losses()
    {
        foreach (var (name, rows, classes, smoothing, gpuOnly) in new[] { ("odd", 37, 11, 0.1f, false), ("one_class", 5, 1, 0f, false), ("moderate", 256, 1000, 0.05f, false) })
        {
            // Class ids with every seventh row ignored (-100).
            float[] Targets(int _, ulong seed)
            {
                var u = new float[rows];
                Philox.FillUniform(u, seed, 0f, classes);
                return u.Select((v, i) => i % 7 == 3 ? -100f : MathF.Min(MathF.Floor(v), classes - 1)).ToArray();
            }
            yield return Case("cross_entropy_backward", name, new[] { new Input(new[] { rows, classes }, Scale: 3f), new Input(new[] { rows }, false, Values: Targets) },
                t => Ops.CrossEntropy(t[0], t[1], Reduction.None, -100, smoothing),
                x => GradientReference.CrossEntropyRows(x[0], x[1], rows, classes, -100, smoothing),
                (x, g) => new[] { GradientReference.CrossEntropyRowsBackward(x[0], x[1], g, rows, classes, -100, smoothing), null }, gpuOnly: gpuOnly);
        }
        foreach (var (name, rows, classes) in new[] { ("odd", 37, 11), ("moderate", 256, 1000) })
        {
            float[] Targets(int _, ulong seed)
            {
                var u = new float[rows];
                Philox.FillUniform(u, seed, 0f, classes);
                return u.Select((v, i) => i % 5 == 2 ? -100f : MathF.Min(MathF.Floor(v), classes - 1)).ToArray();
            }
            yield return Case("nll_loss_backward", name, new[] { new Input(new[] { rows, classes }, Scale: 3f), new Input(new[] { rows }, false, Values: Targets) },
                t => Ops.NllLoss(t[0], t[1], Reduction.None),
                x => Enumerable.Range(0, rows).Select(r => x[1][r] == -100 ? 0 : -x[0][r * classes + (int)x[1][r]]).ToArray(),
                (x, g) =>
                {
                    var dx = new double[rows * classes];
                    for (int r = 0; r < rows; r++)
                        if (x[1][r] != -100)
                            dx[r * classes + (int)x[1][r]] = -g[r];
                    return new[] { dx, null };
                });
        }
        var shape = new[] { 13, 7 };
        // Pointwise losses of d = pred − target: value and derivative in double, the reduction as torch's mean.
        var pointwise = new (string Name, Func<Tensor, Tensor, Tensor> Op, Func<double, double> F, Func<double, double> Df)[]
        {
            ("l1_loss", (p, q) => Ops.L1Loss(p, q), Math.Abs, d => Math.Sign(d)),
            ("smooth_l1_loss", (p, q) => Ops.SmoothL1Loss(p, q, beta: 0.5f), d => Math.Abs(d) < 0.5 ? d * d : Math.Abs(d) - 0.25, d => Math.Abs(d) < 0.5 ? 2 * d : Math.Sign(d)),
            ("huber_loss", (p, q) => Ops.HuberLoss(p, q, delta: 0.5f), d => Math.Abs(d) <= 0.5 ? 0.5 * d * d : 0.5 * (Math.Abs(d) - 0.25), d => Math.Abs(d) <= 0.5 ? d : 0.5 * Math.Sign(d)),
        };
        foreach (var (name, op, f, df) in pointwise)
            yield return Case(name + "_backward", "mean", new[] { new Input(shape), new Input(shape) },
                t => op(t[0], t[1]),
                x => new[] { x[0].Select((v, i) => f(v - x[1][i])).Average() },
                (x, g) => new[]
                {
                    x[0].Select((v, i) => g[0] * df(v - x[1][i]) / x[0].Length).ToArray(),
                    x[0].Select((v, i) => -g[0] * df(v - x[1][i]) / x[0].Length).ToArray(),
                });
        // kl_div(log q, p) with p a positive distribution per row (batchmean): gradients to both.
        float[] Probabilities(int _, ulong seed)
        {
            var v = new float[shape[0] * shape[1]];
            Philox.FillUniform(v, seed, 0.05f, 1f);
            for (int r = 0; r < shape[0]; r++)
            {
                float sum = 0;
                for (int j = 0; j < shape[1]; j++)
                    sum += v[r * shape[1] + j];
                for (int j = 0; j < shape[1]; j++)
                    v[r * shape[1] + j] /= sum;
            }
            return v;
        }
        yield return Case("kl_div_backward", "batchmean", new[] { new Input(shape, Scale: 2f), new Input(shape, Values: Probabilities) },
            t => Ops.KlDiv(t[0], t[1], Reduction.BatchMean),
            x => new[] { x[0].Select((v, i) => x[1][i] * (Math.Log(x[1][i]) - v)).Sum() / shape[0] },
            (x, g) => new[]
            {
                x[1].Select(p => -g[0] * p / shape[0]).ToArray(),
                x[1].Select((p, i) => g[0] * (Math.Log(p) + 1 - x[0][i]) / shape[0]).ToArray(),
            });
        yield return Case("l1_penalty_backward", "two_tensors", new[] { new Input(new[] { 5, 3 }), new Input(new[] { 4 }) },
            t => Ops.L1Penalty(t),
            x => new[] { x[0].Sum(Math.Abs) + x[1].Sum(Math.Abs) },
            (x, g) => new[] { x[0].Select(v => g[0] * Math.Sign(v)).ToArray(), x[1].Select(v => g[0] * Math.Sign(v)).ToArray() });
        yield return Case("l2_penalty_backward", "two_tensors", new[] { new Input(new[] { 5, 3 }), new Input(new[] { 4 }) },
            t => Ops.L2Penalty(t),
            x => new[] { x[0].Sum(v => v * v) + x[1].Sum(v => v * v) },
            (x, g) => new[] { x[0].Select(v => g[0] * 2 * v).ToArray(), x[1].Select(v => g[0] * 2 * v).ToArray() });
        yield return Case("mse_loss_backward", "mean", new[] { new Input(shape), new Input(shape) },
            t => Ops.MseLoss(t[0], t[1]),
            x => new[] { x[0].Select((v, i) => (v - x[1][i]) * (v - x[1][i])).Average() },
            (x, g) => new[]
            {
                x[0].Select((v, i) => g[0] * 2 * (v - x[1][i]) / x[0].Length).ToArray(),
                x[0].Select((v, i) => -g[0] * 2 * (v - x[1][i]) / x[0].Length).ToArray(),
            });
        yield return Case("bce_with_logits_backward", "mean", new[] { new Input(shape, Scale: 6f), new Input(shape, false, Values: (_, seed) =>
            {
                var v = new float[ShapeUtil.Product(shape)];
                Philox.FillUniform(v, seed, 0f, 1f);
                return v;
            }) },
            t => Ops.BinaryCrossEntropyWithLogits(t[0], t[1]),
            x => new[] { x[0].Select((v, i) => Math.Log(1 + Math.Exp(v)) - v * x[1][i]).Average() },
            (x, g) => new[] { x[0].Select((v, i) => g[0] * (1 / (1 + Math.Exp(-v)) - x[1][i]) / x[0].Length).ToArray(), null });
        yield return Case("gaussian_kl_backward", "mean", new[] { new Input(shape), new Input(shape) },
            t => Ops.GaussianKl(t[0], t[1]),
            x =>
            {
                double total = 0;
                for (int i = 0; i < x[0].Length; i++)
                    total += -0.5 * (1 + x[1][i] - x[0][i] * x[0][i] - Math.Exp(x[1][i]));
                return new[] { total / shape[0] };
            },
            (x, g) => new[]
            {
                x[0].Select(m => g[0] * m / shape[0]).ToArray(),
                x[1].Select(lv => g[0] * 0.5 * (Math.Exp(lv) - 1) / shape[0]).ToArray(),
            });
    }

    private static IEnumerable<CheckCase> Layouts()
    {
        var shape = new[] { 3, 4, 5 };
        yield return Case("permute_backward", "rank3", new[] { new Input(shape) }, t => Ops.Permute(t[0], 2, 0, 1),
            x => Permuted(x[0], shape), (x, g) => new[] { Unpermuted(g, shape) });
        yield return Case("transpose_backward", "rank3", new[] { new Input(shape) }, t => Ops.Transpose(t[0], 0, 2),
            x => Permuted(x[0], shape, transpose: true), (x, g) => new[] { Unpermuted(g, shape, transpose: true) });
        var a = new[] { 3, 2, 5 };
        var b = new[] { 3, 4, 5 };
        yield return Case("concat_backward", "axis1", new[] { new Input(a), new Input(b) }, t => Ops.Concat(t, 1),
            x => Concat(x[0], x[1], 3, 2, 4, 5),
            (x, g) =>
            {
                var (ga, gb) = SplitBack(g, 3, 2, 4, 5);
                return new[] { ga, gb };
            });
        yield return Case("split_backward", "axis1_sizes_2_4", new[] { new Input(new[] { 3, 6, 5 }) },
            t =>
            {
                var pieces = Ops.Split(t[0], new[] { 2, 4 }, 1);
                using (pieces[0])
                using (pieces[1])
                using (var scaled = Ops.Scale(pieces[1], 3f))
                    return Ops.Concat(new[] { scaled, pieces[0] }, 1);
            },
            x =>
            {
                var (p0, p1) = SplitBack(x[0], 3, 2, 4, 5);
                return Concat(p1.Select(v => 3 * v).ToArray(), p0, 3, 4, 2, 5);
            },
            (x, g) =>
            {
                var (g1, g0) = SplitBack(g, 3, 4, 2, 5);
                return new[] { Concat(g0, g1.Select(v => 3 * v).ToArray(), 3, 2, 4, 5) };
            });
        var y = new[] { 4, 7 };
        yield return Case("axpy_backward", "broadcast_x", new[] { new Input(new[] { 7 }), new Input(y) }, t => Ops.Axpy(-1.5f, t[0], t[1]),
            x => ElementwiseReference.Binary(x[0], new[] { 7 }, x[1], y, (p, q) => -1.5 * p + q),
            (x, g) =>
            {
                var (ga, gb) = GradientReference.Binary(x[0], new[] { 7 }, x[1], y, g, (_, _) => -1.5, (_, _) => 1);
                return new[] { ga, gb };
            });
    }

    // [A, B, C] → [C, A, B] (or [C, B, A] for the transpose of axes 0 and 2), and back.
    private static double[] Permuted(double[] x, int[] s, bool transpose = false)
    {
        var o = new double[x.Length];
        for (int i = 0; i < s[0]; i++)
            for (int j = 0; j < s[1]; j++)
                for (int k = 0; k < s[2]; k++)
                    o[transpose ? (k * s[1] + j) * s[0] + i : (k * s[0] + i) * s[1] + j] = x[(i * s[1] + j) * s[2] + k];
        return o;
    }

    private static double[] Unpermuted(double[] g, int[] s, bool transpose = false)
    {
        var dx = new double[g.Length];
        for (int i = 0; i < s[0]; i++)
            for (int j = 0; j < s[1]; j++)
                for (int k = 0; k < s[2]; k++)
                    dx[(i * s[1] + j) * s[2] + k] = g[transpose ? (k * s[1] + j) * s[0] + i : (k * s[0] + i) * s[1] + j];
        return dx;
    }

    // [n, p, c] and [n, q, c] joined along axis 1, and the inverse.
    private static double[] Concat(double[] a, double[] b, int n, int p, int q, int c)
    {
        var o = new double[n * (p + q) * c];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(a, i * p * c, o, i * (p + q) * c, p * c);
            Array.Copy(b, i * q * c, o, (i * (p + q) + p) * c, q * c);
        }
        return o;
    }

    private static (double[] A, double[] B) SplitBack(double[] o, int n, int p, int q, int c)
    {
        var a = new double[n * p * c];
        var b = new double[n * q * c];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(o, i * (p + q) * c, a, i * p * c, p * c);
            Array.Copy(o, (i * (p + q) + p) * c, b, i * q * c, q * c);
        }
        return (a, b);
    }

    private static IEnumerable<CheckCase> Gathers()
    {
        // Ids with repeats (and one row never used): the scatter-add must sum every position of a row.
        const int vocab = 11, dim = 13;
        var ids = new[] { 3, 7, 3, 0, 10, 3, 7, 1, 9, 0, 2, 4, 5, 6, 3, 8, 1 };
        yield return Case("embedding_backward", "repeated_ids", new[] { new Input(new[] { vocab, dim }) },
            t => Ops.Embedding(t[0], ids, 1, ids.Length),
            x => ids.SelectMany(id => x[0].Skip(id * dim).Take(dim)).ToArray(),
            (x, g) =>
            {
                var dw = new double[vocab * dim];
                for (int i = 0; i < ids.Length; i++)
                    for (int c = 0; c < dim; c++)
                        dw[ids[i] * dim + c] += g[i * dim + c];
                return new[] { dw };
            });
        var rowIds = new float[] { 2, 0, 2, 2, 5, 1 };
        yield return Case("gather_rows_backward", "repeated_rows", new[] { new Input(new[] { 6, 9 }), new Input(new[] { 2, 3 }, false, Values: (_, _) => rowIds) },
            t => Ops.GatherRows(t[0], t[1]),
            x => x[1].SelectMany(id => x[0].Skip((int)id * 9).Take(9)).ToArray(),
            (x, g) =>
            {
                var dw = new double[6 * 9];
                for (int i = 0; i < rowIds.Length; i++)
                    for (int c = 0; c < 9; c++)
                        dw[(int)rowIds[i] * 9 + c] += g[i * 9 + c];
                return new[] { dw, null };
            });
        const float p = 0.3f;
        const ulong dropSeed = 1234;
        var shape = new[] { 37, 53 };
        var keep = new float[ShapeUtil.Product(shape)];
        Philox.FillUniform(keep, dropSeed, 0f, 1f);
        yield return Case("dropout_backward", "p0_3", new[] { new Input(shape) },
            t =>
            {
                var (y, mask) = Ops.Dropout(t[0], p, dropSeed);
                mask.Dispose();
                return y;
            },
            x => x[0].Select((v, i) => keep[i] >= p ? v / (1 - (double)p) : 0).ToArray(),
            (x, g) => new[] { g.Select((v, i) => keep[i] >= p ? v / (1 - (double)p) : 0).ToArray() });
    }

    private static IEnumerable<CheckCase> Attentions()
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
            var inputs = new List<Input> { new(Shape(nq)), new(Shape(nk)), new(Shape(nk)) };
            if (mask)
                inputs.Add(new Input(new[] { b, 1, nq, nk }));
            double scale = 1 / Math.Sqrt(d);
            double[] Forward(double[][] x) => AttentionReference.Forward(x, b, h, nq, nk, d, scale, causal, mask ? x[3] : null, layout == AttentionLayout.BNHD);
            yield return Case("attention_backward", name, inputs.ToArray(),
                t => KeepOutput(Ops.Attention(t[0], t[1], t[2], causal: causal, mask: mask ? t[3] : null, layout: layout)),
                Forward, (x, g) => AttentionReference.Backward(x, g, b, h, nq, nk, d, scale, causal, mask ? x[3] : null, layout == AttentionLayout.BNHD),
                tolerance: CheckCase.Fp32Tolerance);
        }
    }

    private static IEnumerable<CheckCase> Routing()
    {
        const int tokens = 13, experts = 5, k = 2, d = 7;
        const float factor = 0.8f; // capacity ⌈0.8·26/5⌉ = 5: busy experts drop their later assignments
        // A fixed routing with repeats: expert (t·3 + s·2) mod 5 over tokens and slots, the two slots always distinct.
        var ids = Enumerable.Range(0, tokens * k).Select(a => (a / k * 3 + a % k * 2) % experts).ToArray();
        int capacity = (int)Math.Ceiling(factor * tokens * k / experts);
        var (positions, _) = RoutingReference.Route(ids, experts, capacity);
        MoeRouting Route(Device device)
        {
            using var indices = Tensor.FromArray(device, ids.Select(i => (float)i).ToArray(), tokens, k);
            return Ops.MoeRoute(indices, experts, factor);
        }
        yield return Case("moe_dispatch_backward", "capacity_0_8", new[] { new Input(new[] { tokens, d }) },
            t =>
            {
                using var routing = Route(t[0].Device);
                return Ops.MoeDispatch(t[0], routing);
            },
            x =>
            {
                var o = new double[tokens * k * d];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        Array.Copy(x[0], a / k * d, o, positions[a] * d, d);
                return o;
            },
            (x, g) =>
            {
                var dx = new double[tokens * d];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        for (int c = 0; c < d; c++)
                            dx[a / k * d + c] += g[positions[a] * d + c];
                return new[] { dx };
            });
        yield return Case("moe_combine_backward", "capacity_0_8", new[] { new Input(new[] { tokens * k, d }), new Input(new[] { tokens, k }) },
            t =>
            {
                using var routing = Route(t[0].Device);
                return Ops.MoeCombine(t[0], t[1], routing);
            },
            x =>
            {
                var y = new double[tokens * d];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        for (int c = 0; c < d; c++)
                            y[a / k * d + c] += x[1][a] * x[0][positions[a] * d + c];
                return y;
            },
            (x, g) =>
            {
                var dOut = new double[tokens * k * d];
                var dW = new double[tokens * k];
                for (int a = 0; a < positions.Length; a++)
                    if (positions[a] >= 0)
                        for (int c = 0; c < d; c++)
                        {
                            dOut[positions[a] * d + c] += x[1][a] * g[a / k * d + c];
                            dW[a] += g[a / k * d + c] * x[0][positions[a] * d + c];
                        }
                return new[] { dOut, dW };
            });
        foreach (var (name, t, e, kk) in new[] { ("t13_e5_k2", 13, 5, 2), ("t37_e8_k3", 37, 8, 3) })
            yield return Case("topk_gating_backward", name, new[] { new Input(new[] { t, e }, Scale: 3f) },
                x =>
                {
                    var r = Ops.TopKGating(x[0], kk);
                    r.Indices.Dispose();
                    return r.Weights;
                },
                x => RoutingReference.TopK(x[0], t, e, kk).Weights,
                (x, g) =>
                {
                    var (w, idx) = RoutingReference.TopK(x[0], t, e, kk);
                    var dl = new double[t * e];
                    for (int tok = 0; tok < t; tok++)
                    {
                        double dot = 0;
                        for (int s = 0; s < kk; s++)
                            dot += w[tok * kk + s] * g[tok * kk + s];
                        for (int s = 0; s < kk; s++)
                            dl[tok * e + (int)idx[tok * kk + s]] = w[tok * kk + s] * (g[tok * kk + s] - dot);
                    }
                    return new[] { dl };
                });
    }

    /// <summary>Attention with a fixed (non-trained) additive mask and key lengths — on a GPU the fused backward kernels take it.</summary>
    private static IEnumerable<CheckCase> AttentionWithFixedMasks()
    {
        const int b = 2, h = 2, nq = 9, nk = 11, d = 20;
        var lengths = new double[] { 11, 6 };
        double scale = 1 / Math.Sqrt(d);
        var maskValues = new float[b * nq * nk];
        Philox.FillUniform(maskValues, 77, -2f, 2f);
        var mask = Array.ConvertAll(maskValues, v => (double)v);
        foreach (var causal in new[] { false, true })
            yield return Case("attention_backward", causal ? "fixed_mask_lengths_causal" : "fixed_mask_lengths",
                new[] { new Input(new[] { b, h, nq, d }), new Input(new[] { b, h, nk, d }), new Input(new[] { b, h, nk, d }) },
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

    private static IEnumerable<CheckCase> Views()
    {
        // permute → slice → expand → reshape of a contiguous copy: every view's backward maps the gradient home.
        var shape = new[] { 5, 6, 7 };
        yield return Case("view_backward", "permute_slice_expand", new[] { new Input(shape) },
            t =>
            {
                using var p = t[0].Permute(2, 0, 1);          // [7, 5, 6]
                using var s = p.Slice(0, 2, 4);               // [4, 5, 6]: x[:, :, 2:6] permuted
                using var sel = s.Select(2, 1);               // [4, 5]: x[:, 1, 2:6]ᵀ
                using var e = sel.Transpose(0, 1);            // [5, 4]
                using var c = e.Contiguous();
                using var r = c.Reshape(1, 20);
                using var x = r.Expand(3, 20);                // [3, 20]: each element used three times
                return Ops.Scale(x, 2f);
            },
            x =>
            {
                var o = new double[60];
                for (int k = 0; k < 3; k++)
                    for (int i = 0; i < 5; i++)
                        for (int j = 0; j < 4; j++)
                            o[k * 20 + i * 4 + j] = 2 * x[0][(i * 6 + 1) * 7 + 2 + j];
                return o;
            },
            (x, g) =>
            {
                var dx = new double[x[0].Length];
                for (int k = 0; k < 3; k++)
                    for (int i = 0; i < 5; i++)
                        for (int j = 0; j < 4; j++)
                            dx[(i * 6 + 1) * 7 + 2 + j] += 2 * g[k * 20 + i * 4 + j];
                return new[] { dx };
            });
    }
}

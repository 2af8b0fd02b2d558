using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>
/// Check cases of the fused optimizer steps: three steps from seeded parameters, state and gradients, then the parameters
/// and every state tensor (concatenated) against the same three steps of PyTorch's update formulas in double precision.
/// The state starts poisoned where the step must overwrite it without reading it (the first momentum buffer).
/// </summary>
internal static class OptimizerChecks
{
    private const int Steps = 3;

    // The weight decays added to the gradient (Adam, RMSprop, Adagrad) are powers of two, so wd·p is exact in float32 and
    // the combined gradient g + wd·p is the same number on the device and in the reference (exact where it cancels, by
    // Sterbenz's lemma). The normalized steps amplify an error δ in a gradient near zero by lr·eps/(|g| + eps)²: with
    // wd = 0.1 the product's rounding (δ ≈ 4e-9) moved an Adam step by 1.5e-4 at |g + wd·p| ≈ 1e-7, an input rounding
    // the check would have blamed on the kernel (seed 639321361405620091, 5.5× the bound).

    internal static IEnumerable<CheckCase> Cases()
    {
        var shapes = new (string Name, int[] Shape)[] { ("tiny", new[] { 1 }), ("odd", new[] { 37, 53 }), ("moderate", new[] { 1031, 67 }) };
        foreach (var (name, shape) in shapes)
        {
            yield return Adam("adam_step", name + "_adam", shape, decoupled: false, amsGrad: false, weightDecay: 0.125f);
            yield return Adam("adam_step", name + "_adamw_amsgrad", shape, decoupled: true, amsGrad: true, weightDecay: 0.01f);
            yield return Sgd(name + "_momentum", shape, momentum: 0.9f, dampening: 0.1f, nesterov: false, weightDecay: 0.01f);
            yield return Sgd(name + "_nesterov", shape, momentum: 0.8f, dampening: 0f, nesterov: true, weightDecay: 0f);
            yield return RmsProp(name + "_centered_momentum", shape, centered: true, momentum: 0.5f);
            yield return RmsProp(name + "_plain", shape, centered: false, momentum: 0f);
            yield return Adagrad(name, shape);
        }
        foreach (var c in ClipGradNorm())
            yield return c;
    }

    /// <summary>Three gradients whose global norm is clipped to half of itself (scaled in place) and to above itself (unchanged).</summary>
    private static IEnumerable<CheckCase> ClipGradNorm()
    {
        var shapes = new[] { new[] { 37, 53 }, new[] { 1 }, new[] { 3, 5, 7 } };
        foreach (var (name, fraction) in new[] { ("clipped", 0.5), ("under_limit", 2.0) })
            yield return new CheckCase("optimizer", "clip_grad_norm", name, Shapes(shapes), CheckCase.Fp32Tolerance, (device, seed) =>
            {
                var grads = shapes.Select((s, k) => Random(device, seed, k, s)).ToArray();
                try
                {
                    var host = grads.Select(Host).ToArray();
                    double norm = Math.Sqrt(host.Sum(h => h.Sum(v => v * v)));
                    double maxNorm = fraction * norm, factor = Math.Min(1, maxNorm / (norm + 1e-6));
                    using var total = Ops.ClipGradNorm(grads, (float)maxNorm);
                    var got = grads.SelectMany(g => g.ToArray()).ToArray();
                    var want = host.SelectMany(h => h.Select(v => v * factor)).ToArray();
                    return new CheckOutput(got, want) { Also = [("total_norm", total.ToArray(), new[] { norm })] };
                }
                finally
                {
                    foreach (var g in grads)
                        g.Dispose();
                }
            });
    }

    /// <summary>Runs <paramref name="step"/> for each of the seeded gradients on the device and <paramref name="reference"/> on the host copies.</summary>
    private static CheckCase Case(string kernel, string name, int[] shape, int stateCount,
        Action<Tensor, Tensor, Tensor[], int> step, Action<double[], double[], double[][], int> reference) =>
        new("optimizer", kernel, name, Shapes(shape), CheckCase.Fp32Tolerance, (device, seed) =>
        {
            int n = (int)ShapeUtil.Product(shape);
            using var p = Draw(device, seed, 0, shape);
            var state = Enumerable.Range(0, stateCount).Select(_ => Tensor.Zeros(device, shape)).ToArray();
            try
            {
                var hp = Host(p);
                var hs = state.Select(_ => new double[n]).ToArray();
                for (int t = 1; t <= Steps; t++)
                {
                    using var g = Draw(device, seed, t, shape);
                    step(p, g, state, t);
                    reference(hp, Host(g), hs, t);
                    // The device stores the parameters and the state in float32 after every step: so does the reference, so
                    // the comparison measures one step's arithmetic, not the storage rounding of parameters far larger than the update.
                    for (int i = 0; i < n; i++)
                    {
                        hp[i] = (float)hp[i];
                        foreach (var h in hs)
                            h[i] = (float)h[i];
                    }
                }
                // The parameters and each state tensor on their own (joined, the states' errors hid in the parameters' norm). The
                // update itself (p − p₀) cannot be the compared output: read from float32 parameters it carries their rounding,
                // ulp(p)/|Δp| ≈ 1e-5 of itself for |p| ~ 1 and a few steps of lr = 0.01.
                var also = new List<(string, float[], double[])>();
                for (int i = 0; i < state.Length; i++)
                    also.Add(($"state[{i}]", state[i].ToArray(), hs[i]));   // an unused state must stay zero (absolute L2)
                return new CheckOutput(p.ToArray(), hp) { Also = also };
            }
            finally
            {
                foreach (var s in state)
                    s.Dispose();
            }
        });

    /// <summary>
    /// Seeded parameters and gradients: uniform in [−1, 1), except for a single element, which is drawn in [0.5, 1.5) —
    /// one value has no norm to absorb the rounding of a step that cancels (a parameter stepped to near zero, a momentum
    /// buffer met by a gradient of the other sign keeps ulp(its terms) of error, 1e-5 of itself and more); the signs and
    /// the cancellations are the larger cases' to check.
    /// </summary>
    private static Tensor Draw(Device device, ulong seed, int input, int[] shape) =>
        ShapeUtil.Product(shape) == 1
            ? Tensor.RandomUniform(device, shape, seed + (ulong)input * 0x9E3779B97F4A7C15UL, 0.5f, 1.5f)
            : Random(device, seed, input, shape);

    private static CheckCase Adam(string kernel, string name, int[] shape, bool decoupled, bool amsGrad, float weightDecay)
    {
        const float lr = 0.01f, b1 = 0.9f, b2 = 0.99f, eps = 1e-8f;
        return Case(kernel, name, shape, 3, (p, g, s, t) => Ops.AdamUpdate(p, g, s[0], s[1], amsGrad ? s[2] : null, new AdamStep
        {
            Lr = lr, Beta1 = b1, Beta2 = b2, Eps = eps, WeightDecay = weightDecay, Decoupled = decoupled ? 1 : 0, AmsGrad = amsGrad ? 1 : 0,
            BiasCorrection1 = 1f - MathF.Pow(b1, t), BiasCorrection2Sqrt = MathF.Sqrt(1f - MathF.Pow(b2, t)),
        }), (p, g, s, t) =>
        {
            double bc1 = 1 - Math.Pow(b1, t), bc2 = 1 - Math.Pow(b2, t);
            for (int i = 0; i < p.Length; i++)
            {
                double grad = g[i];
                if (decoupled)
                    p[i] *= 1 - (double)lr * weightDecay;
                else
                    grad += (double)weightDecay * p[i];
                s[0][i] = b1 * s[0][i] + (1 - (double)b1) * grad;
                s[1][i] = b2 * s[1][i] + (1 - (double)b2) * grad * grad;
                double v = s[1][i];
                if (amsGrad)
                    v = s[2][i] = Math.Max(s[2][i], v);
                p[i] -= lr / bc1 * s[0][i] / (Math.Sqrt(v) / Math.Sqrt(bc2) + eps);
            }
        });
    }

    private static CheckCase Sgd(string name, int[] shape, float momentum, float dampening, bool nesterov, float weightDecay)
    {
        const float lr = 0.05f;
        return Case("sgd_step", name, shape, 1, (p, g, s, t) =>
        {
            // The first step writes the buffer without reading it: poison it to prove that.
            if (t == 1)
                Ops.Fill(s[0], float.NaN);
            Ops.SgdUpdate(p, g, s[0], new SgdStep { Lr = lr, Momentum = momentum, Dampening = dampening, WeightDecay = weightDecay, Nesterov = nesterov ? 1 : 0, FirstStep = t == 1 ? 1 : 0 });
        }, (p, g, s, t) =>
        {
            for (int i = 0; i < p.Length; i++)
            {
                double d = g[i] + (double)weightDecay * p[i];
                s[0][i] = t == 1 ? d : momentum * s[0][i] + (1 - (double)dampening) * d;
                d = nesterov ? d + momentum * s[0][i] : s[0][i];
                p[i] -= lr * d;
            }
        });
    }

    private static CheckCase RmsProp(string name, int[] shape, bool centered, float momentum)
    {
        const float lr = 0.01f, alpha = 0.9f, eps = 1e-6f, weightDecay = 1f / 64;
        return Case("rmsprop_step", name, shape, 3, (p, g, s, t) => Ops.RmsPropUpdate(p, g, s[0], centered ? s[1] : null, momentum > 0 ? s[2] : null,
            new RmsPropStep { Lr = lr, Alpha = alpha, Eps = eps, Momentum = momentum, WeightDecay = weightDecay, Centered = centered ? 1 : 0 }),
            (p, g, s, t) =>
            {
                for (int i = 0; i < p.Length; i++)
                {
                    double grad = g[i] + (double)weightDecay * p[i];
                    s[0][i] = alpha * s[0][i] + (1 - (double)alpha) * grad * grad;
                    double avg;
                    if (centered)
                    {
                        s[1][i] = alpha * s[1][i] + (1 - (double)alpha) * grad;
                        avg = Math.Sqrt(s[0][i] - s[1][i] * s[1][i]) + eps;
                    }
                    else
                        avg = Math.Sqrt(s[0][i]) + eps;
                    if (momentum > 0)
                    {
                        s[2][i] = momentum * s[2][i] + grad / avg;
                        p[i] -= lr * s[2][i];
                    }
                    else
                        p[i] -= lr * grad / avg;
                }
            });
    }

    private static CheckCase Adagrad(string name, int[] shape)
    {
        const float lr = 0.1f, decay = 0.01f, eps = 1e-10f, weightDecay = 1f / 16;
        return Case("adagrad_step", name, shape, 1, (p, g, s, t) => Ops.AdagradUpdate(p, g, s[0],
            new AdagradStep { Lr = lr / (1f + (t - 1) * decay), Eps = eps, WeightDecay = weightDecay }),
            (p, g, s, t) =>
            {
                double clr = lr / (1 + (t - 1) * (double)decay);
                for (int i = 0; i < p.Length; i++)
                {
                    double grad = g[i] + (double)weightDecay * p[i];
                    s[0][i] += grad * grad;
                    p[i] -= clr * grad / (Math.Sqrt(s[0][i]) + eps);
                }
            });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new("optimizer", Cases, Variants, Bench);

    private static IEnumerable<KernelVariant> Variants() => new[]
    {
        Method("adam_step", "fused", typeof(OptimizerKernels), nameof(OptimizerKernels.Adam)),
        Method("sgd_step", "fused", typeof(OptimizerKernels), nameof(OptimizerKernels.Sgd)),
        Method("rmsprop_step", "fused", typeof(OptimizerKernels), nameof(OptimizerKernels.RmsProp)),
        Method("adagrad_step", "fused", typeof(OptimizerKernels), nameof(OptimizerKernels.Adagrad)),
        Flat("clip_grad_norm", "coefficient", Unary(typeof(ClipCoefficient))),
        Flat("clip_grad_norm", "sqrt", Unary(typeof(SquareRoot))),
    };

    /// <summary>Adam/AdamW, SGD, RMSprop and Adagrad steps over one parameter tensor of n elements, and the gradient clip.</summary>
    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, n, _, _) in Tiers)
        {
            yield return C("adam_step", S(n), 14.0 * n, 28.0 * n, presets, (d, s) => OptimizerStep(d, s, n, 2,
                (p, g, st) => Ops.AdamUpdate(p, g, st[0], st[1], null, new AdamStep { Lr = 1e-3f, Beta1 = 0.9f, Beta2 = 0.999f, Eps = 1e-8f, BiasCorrection1 = 0.1f, BiasCorrection2Sqrt = 0.03f })));
            yield return C("sgd_step", S(n), 5.0 * n, 20.0 * n, presets, (d, s) => OptimizerStep(d, s, n, 1,
                (p, g, st) => Ops.SgdUpdate(p, g, st[0], new SgdStep { Lr = 0.01f, Momentum = 0.9f })));
            yield return C("rmsprop_step", S(n), 10.0 * n, 20.0 * n, presets, (d, s) => OptimizerStep(d, s, n, 1,
                (p, g, st) => Ops.RmsPropUpdate(p, g, st[0], null, null, new RmsPropStep { Lr = 0.01f, Alpha = 0.99f, Eps = 1e-8f })));
            yield return C("adagrad_step", S(n), 8.0 * n, 20.0 * n, presets, (d, s) => OptimizerStep(d, s, n, 1,
                (p, g, st) => Ops.AdagradUpdate(p, g, st[0], new AdagradStep { Lr = 0.01f, Eps = 1e-10f })));
            yield return C("clip_grad_norm", S(n), 3.0 * n, 12.0 * n, presets, (d, s) =>
            {
                var g = R(d, s, n);
                return new BenchInstance(() => Ops.ClipGradNorm(new[] { g }, 1e9f).Dispose(), g);
            });
        }
    }

    private static BenchInstance OptimizerStep(Device d, ulong s, int n, int states, Action<Tensor, Tensor, Tensor[]> step)
    {
        var p = R(d, s, n);
        var g = R(d, s + 1, n);
        var st = Enumerable.Range(0, states).Select(_ => Tensor.Zeros(d, n)).ToArray();
        return new BenchInstance(() => step(p, g, st), new[] { p, g }.Concat(st).ToArray<IDisposable>());
    }
}

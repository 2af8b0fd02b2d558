using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>One input: its shape, whether it gets a gradient, and how its values are drawn (uniform in ±scale, or custom).</summary>
internal sealed record GradientInput(int[] Shape, bool Differentiable = true, float Scale = 1f, Func<int, ulong, float[]>? Values = null);

/// <summary>
/// How a backward check case runs (each family's check file holds its own backward cases): through the autograd engine
/// as a user would: seeded inputs that require a gradient, the forward op, <c>Backward(g)</c> with a random output gradient g, and every input's gradient compared
/// (concatenated) with the double-precision reference gradient — and the forward's output, on its own, with the reference forward. Before a reference gradient is used it is proved against
/// central finite differences of the double reference forward (<see cref="GradientReference.ProveByFiniteDifferences"/>),
/// so the oracle is checked, not assumed (once per case and seed in a process, whichever device runs it first). The pool's
/// free blocks of each gradient's size are filled with NaN first, so a gradient element the kernels leave unwritten shows
/// as NaN.
/// </summary>
internal static class GradientCheck
{
    /// <summary>(kernel, case, seed) whose reference gradient has passed its finite-difference proof in this process.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, ulong), bool> Proven = new();

    /// <summary>Values for a <see cref="GradientInput"/>: <paramref name="count"/> uniform in [low, high) from the case seed and the input's number.</summary>
    internal static Func<int, ulong, float[]> Uniform(int count, float low, float high) => (k, seed) =>
    {
        var v = new float[count];
        Philox.FillUniform(v, seed + (ulong)k * 0x9E3779B97F4A7C15UL, low, high);
        return v;
    };

    internal static CheckCase Case(string kernel, string name, GradientInput[] inputs, Func<Tensor[], Tensor> forward,
        Func<double[][], double[]> referenceForward, Func<double[][], double[], double[]?[]> referenceBackward,
        double tolerance = CheckCase.Fp32Tolerance, bool gpuOnly = false, ElementBound? bound = null) =>
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
                float[] forwardValues;
                using (var output = forward(tensors))
                using (var gt = Tensor.FromArray(device, g, output.ShapeArray()))
                {
                    forwardValues = output.ToArray();
                    output.Backward(gt);
                }
                var got = new List<float>();
                var want = new List<double>();
                for (int k = 0; k < inputs.Length; k++)
                    if (inputs[k].Differentiable)
                    {
                        got.AddRange(tensors[k].Grad?.ToArray() ?? Enumerable.Repeat(float.NaN, host[k].Length));
                        want.AddRange(expected[k]!);
                    }
                // The forward the gradient belongs to is checked too (a loss's value, not only its gradient).
                return new CheckOutput(got.ToArray(), want.ToArray()) { Also = [("forward", forwardValues, y)] };
            }
            finally
            {
                foreach (var t in tensors)
                    t.Dispose();
            }
        }) { GpuOnly = gpuOnly, Bound = bound };
}

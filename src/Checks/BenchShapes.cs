namespace GpuNet.Kernels.Checks;

/// <summary>
/// What the families' bench cases share: the presets — small (runs on the CPU accelerator in minutes), medium and large
/// (GPU sizes: matmul 4096³, ResNet-50's 3×3 convolutions at batch 32, attention B=8 H=16 N=2048 d=64), cpu (the fast
/// CPU device's comparison shapes, plus small) — the elementwise tiers, and the helpers that build a case.
/// </summary>
public static class BenchShapes
{
    /// <summary>Preset lists a case can name.</summary>
    public static readonly string[] Small = { "small" }, Medium = { "medium" }, Large = { "large" }, MediumLarge = { "medium", "large" }, CpuPreset = { "cpu" };

    /// <summary>The elementwise and row-wise tiers: n elements, rows × cols.</summary>
    public static readonly (string[] Presets, int N, int Rows, int Cols)[] Tiers = { (Small, 1 << 16, 64, 1024), (Medium, 1 << 24, 4096, 4096), (Large, 1 << 26, 16384, 4096) };

    /// <summary>The matmul shapes M, N, K (cuBLAS is timed on the same ones).</summary>
    public static readonly (string[] Presets, int M, int N, int K)[] MatMuls = { (Small, 128, 128, 128), (Small, 97, 83, 71), (Medium, 2048, 2048, 2048), (Large, 4096, 4096, 4096), (Large, 8192, 8192, 8192) };

    /// <summary>Uniform [−1, 1) values.</summary>
    public static Tensor R(Device d, ulong seed, params int[] shape) => Tensor.RandomUniform(d, shape, seed, -1f, 1f);

    /// <summary>A shape label: 64x1024.</summary>
    public static string S(params int[] dims) => string.Join("x", dims);

    /// <summary>A forward case.</summary>
    public static BenchCase C(string kernel, string shape, double flops, double bytes, string[] presets, Func<Device, ulong, BenchInstance> create) =>
        new(kernel, shape, flops, bytes, presets, create);

    /// <summary>
    /// A training-step case of a backward kernel: <paramref name="make"/> gives the inputs (those listed in <c>Trained</c> require
    /// gradients) and the forward; one run is forward with recording, <c>Backward(g)</c>, gradients dropped — on the same shape
    /// label as the op's forward case, so the report can print backward/forward = (t_fwd+bwd − t_fwd) / t_fwd beside it.
    /// FLOPs and bytes are the forward's plus the backward's (KERNELS.md gives both).
    /// </summary>
    public static BenchCase Step(string kernel, string shape, double flops, double bytes, string[] presets,
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

    /// <summary>Every one of n inputs trained.</summary>
    public static bool[] Trained(int n) => Enumerable.Repeat(true, n).ToArray();
}

using ILGPU.Runtime.Cuda;

namespace GpuNet.Bench;

/// <summary>
/// What <c>run</c> times: every kernel family's bench cases (<see cref="KernelFamily.Bench"/>: shapes per preset with KERNELS.md's
/// FLOP and byte formulas) and the peers timed on the same shapes — cuBLAS SGEMM on the matmul shapes (CUDA only), and on the
/// fast CPU device ONNX Runtime and TensorPrimitives on the cpu preset's shapes.
/// </summary>
public static class BenchRegistry
{
    /// <summary>The cases of a preset (all cases when null). <c>cpu</c> is the small preset plus CPU-sized shapes and the CPU peers.</summary>
    public static IReadOnlyList<BenchCase> For(string? preset) =>
        All.Where(c => preset is null || c.Presets.Contains(preset) || (preset == "cpu" && c.Presets.Contains("small"))).ToList();

    /// <summary>Every case.</summary>
    public static IReadOnlyList<BenchCase> All { get; } = KernelFamilies.All.SelectMany(f => f.Bench())
        .Concat(BenchShapes.MatMuls.Select(s => CuBlasCase(s.M, s.N, s.K, s.Presets)))
        .Concat(CpuPeerCases()).Concat(TrainingStepBench.Cases()).ToList();

    /// <summary>
    /// The fast CPU device's peers on the shapes of issue #13's table (add 64K and 1M, relu and sigmoid 64K, matmul 128³/512³/1024³,
    /// softmax 64×1024 and 1024², layernorm 64×1024, two 3×3 convolutions): ONNX Runtime and TensorPrimitives on each shape they share.
    /// </summary>
    private static IEnumerable<BenchCase> CpuPeerCases()
    {
        string[] cpu = BenchShapes.CpuPreset;
        foreach (int n in new[] { 1 << 16, 1 << 20 })
        {
            yield return CpuPeers.Onnx("add", S(n), n, 12.0 * n, cpu, "Add", new[] { new[] { n }, new[] { n } }, new[] { n });
            yield return CpuPeers.Primitives("add", S(n), n, 12.0 * n, cpu, 2, n, (x, y) => System.Numerics.Tensors.TensorPrimitives.Add(x[0], x[1], y));
        }
        int small = 1 << 16;
        yield return CpuPeers.Onnx("relu", S(small), small, 8.0 * small, cpu, "Relu", new[] { new[] { small } }, new[] { small });
        yield return CpuPeers.Primitives("relu", S(small), small, 8.0 * small, cpu, 1, small, (x, y) => System.Numerics.Tensors.TensorPrimitives.Max(x[0], 0f, y));
        yield return CpuPeers.Onnx("sigmoid", S(small), 4.0 * small, 8.0 * small, cpu, "Sigmoid", new[] { new[] { small } }, new[] { small });
        yield return CpuPeers.Primitives("sigmoid", S(small), 4.0 * small, 8.0 * small, cpu, 1, small, (x, y) => System.Numerics.Tensors.TensorPrimitives.Sigmoid(x[0], y));
        foreach (var (rows, cols) in new[] { (64, 1024), (1024, 1024) })
        {
            double rc = (double)rows * cols;
            yield return CpuPeers.Onnx("softmax", S(rows, cols), 5 * rc, 12 * rc, cpu, "Softmax", new[] { new[] { rows, cols } }, new[] { rows, cols }, ("axis", -1));
            yield return CpuPeers.Primitives("softmax", S(rows, cols), 5 * rc, 12 * rc, cpu, 1, rows * cols, (x, y) => CpuPeers.SoftmaxRows(x[0], y, cols));
        }
        double ln = 64.0 * 1024;
        yield return CpuPeers.Onnx("layernorm", S(64, 1024), 8 * ln, 12 * ln + 8.0 * 1024 + 8.0 * 64, cpu, "LayerNormalization",
            new[] { new[] { 64, 1024 }, new[] { 1024 }, new[] { 1024 } }, new[] { 64, 1024 }, ("axis", -1), ("epsilon", 1e-5f));
        foreach (int m in new[] { 128, 512, 1024 })
            yield return CpuPeers.Onnx("matmul", S(m, m, m), 2.0 * m * m * m, 12.0 * m * m, cpu, "MatMul", new[] { new[] { m, m }, new[] { m, m } }, new[] { m, m });
        foreach (var (label, nb, c, h, k) in new[] { ("3x3", 1, 16, 16, 16), ("3x3", 1, 64, 56, 64) })
        {
            string shape = $"{label} {S(nb, c, h, h)} k3 s1 → {k}";
            double flops = 2.0 * nb * k * h * h * c * 9, bytes = 4.0 * ((double)nb * c * h * h + (double)k * c * 9 + (double)nb * k * h * h);
            yield return CpuPeers.Onnx("conv2d", shape, flops, bytes, cpu, "Conv", new[] { new[] { nb, c, h, h }, new[] { k, c, 3, 3 }, new[] { k } }, new[] { nb, k, h, h },
                ("pads", new[] { 1, 1, 1, 1 }), ("kernel_shape", new[] { 3, 3 }));
        }
    }

    private static string S(params int[] dims) => BenchShapes.S(dims);

    /// <summary>cuBLAS SGEMM (FP32, default math mode: no TF32) on the same row-major product, as Cᵀ = Bᵀ·Aᵀ in column-major.</summary>
    private static BenchCase CuBlasCase(int m, int n, int k, string[] presets) =>
        new BenchCase("matmul", S(m, n, k), 2.0 * m * n * k, 4.0 * ((double)m * k + (double)k * n + (double)m * n), presets, (d, s) =>
        {
            var blas = CuBlasPeer.For(d)!;
            var a = BenchShapes.R(d, s, m, k);
            var b = BenchShapes.R(d, s + 1, k, n);
            var c = Tensor.Empty(d, m, n);
            return new(() => blas.Gemm(CuBlasOperation.NonTranspose, CuBlasOperation.NonTranspose, n, m, k, 1f, b.ContiguousView, n, a.ContiguousView, k, 0f, c.ContiguousView, n), a, b, c);
        })
        { Implementation = "cublas", PeerOf = "matmul", Unavailable = CuBlasPeer.WhyNot };
}

/// <summary>One cuBLAS handle per CUDA device; when the library does not load, the reason is kept and said once.</summary>
public static class CuBlasPeer
{
    private static readonly Dictionary<Device, (CuBlas? Blas, string? Error)> _handles = new();

    public static CuBlas? For(Device device) => Get(device).Blas;

    public static string? WhyNot(Device device) => Get(device).Error;

    private static (CuBlas? Blas, string? Error) Get(Device device)
    {
        lock (_handles)
        {
            if (_handles.TryGetValue(device, out var h))
                return h;
            if (device.Accelerator is not ILGPU.Runtime.Cuda.CudaAccelerator cuda)
                h = (null, "cuBLAS needs a CUDA device");
            else
                try
                {
                    h = (new CuBlas(cuda), null);
                }
                catch (Exception e)
                {
                    h = (null, $"cuBLAS did not load ({e.GetType().Name}: {e.Message}); ILGPU.Algorithms 1.5.3 binds the CUDA 12 library names");
                }
            _handles[device] = h;
            return h;
        }
    }
}

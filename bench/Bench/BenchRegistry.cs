using ILGPU.Runtime.Cuda;

namespace GpuNet.Bench;

/// <summary>
/// Every registered kernel with shapes per preset — small (runs on the CPU accelerator in minutes), medium and large
/// (GPU sizes: matmul 4096³, ResNet-50's 3×3 convolutions at batch 32, attention B=8 H=16 N=2048 d=64) — and the peers
/// timed on the same shapes: cuBLAS SGEMM (CUDA only), attention_unfused, conv2d through im2col.
/// FLOPs and bytes are KERNELS.md's formulas.
/// </summary>
public static class BenchRegistry
{
    private static readonly string[] Small = { "small" }, Medium = { "medium" }, Large = { "large" }, MediumLarge = { "medium", "large" };

    private static Tensor R(Device d, ulong seed, params int[] shape) => Tensor.RandomUniform(d, shape, seed, -1f, 1f);

    private static string S(params int[] dims) => string.Join("x", dims);

    private static BenchCase C(string kernel, string shape, double flops, double bytes, string[] presets, Func<Device, ulong, BenchInstance> create) =>
        new(kernel, shape, flops, bytes, presets, create);

    /// <summary>The cases of a preset (all cases when null). <c>cpu</c> is the small preset plus CPU-sized shapes and the CPU peers.</summary>
    public static IReadOnlyList<BenchCase> For(string? preset) =>
        All.Where(c => preset is null || c.Presets.Contains(preset) || (preset == "cpu" && c.Presets.Contains("small"))).ToList();

    public static IReadOnlyList<BenchCase> All { get; } = Build().Concat(BackwardBench.Cases()).Concat(CpuPreset()).ToList();

    /// <summary>
    /// The fast CPU device's comparison: the shapes of issue #13's table (add 64K and 1M, matmul 128³/512³/1024³, softmax 64×1024 and
    /// 1024², layernorm 64×1024, a 3×3 convolution) with ONNX Runtime and TensorPrimitives on each shape they share.
    /// </summary>
    private static IEnumerable<BenchCase> CpuPreset()
    {
        string[] cpu = { "cpu" };
        foreach (int n in new[] { 1 << 16, 1 << 20 })
        {
            if (n != 1 << 16)
                yield return C("add", S(n), n, 12.0 * n, cpu, (d, s) => { var a = R(d, s, n); var b = R(d, s + 1, n); return new(() => Ops.Add(a, b).Dispose(), a, b); });
            yield return CpuPeers.Onnx("add", S(n), n, 12.0 * n, cpu, "Add", new[] { new[] { n }, new[] { n } }, new[] { n });
            yield return CpuPeers.Primitives("add", S(n), n, 12.0 * n, cpu, 2, n, (x, y) => TensorPrimitivesAdd(x[0], x[1], y));
        }
        int small = 1 << 16;
        yield return CpuPeers.Onnx("relu", S(small), small, 8.0 * small, cpu, "Relu", new[] { new[] { small } }, new[] { small });
        yield return CpuPeers.Primitives("relu", S(small), small, 8.0 * small, cpu, 1, small, (x, y) => System.Numerics.Tensors.TensorPrimitives.Max(x[0], 0f, y));
        yield return CpuPeers.Onnx("sigmoid", S(small), 4.0 * small, 8.0 * small, cpu, "Sigmoid", new[] { new[] { small } }, new[] { small });
        yield return CpuPeers.Primitives("sigmoid", S(small), 4.0 * small, 8.0 * small, cpu, 1, small, (x, y) => System.Numerics.Tensors.TensorPrimitives.Sigmoid(x[0], y));
        foreach (var (rows, cols) in new[] { (64, 1024), (1024, 1024) })
        {
            double rc = (double)rows * cols;
            if (rows != 64)
                yield return C("softmax", S(rows, cols), 5 * rc, 12 * rc, cpu, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Softmax(x).Dispose(), x); });
            yield return CpuPeers.Onnx("softmax", S(rows, cols), 5 * rc, 12 * rc, cpu, "Softmax", new[] { new[] { rows, cols } }, new[] { rows, cols }, ("axis", -1));
            yield return CpuPeers.Primitives("softmax", S(rows, cols), 5 * rc, 12 * rc, cpu, 1, rows * cols, (x, y) => CpuPeers.SoftmaxRows(x[0], y, cols));
        }
        double ln = 64.0 * 1024;
        yield return CpuPeers.Onnx("layernorm", S(64, 1024), 8 * ln, 12 * ln + 8.0 * 1024 + 8.0 * 64, cpu, "LayerNormalization",
            new[] { new[] { 64, 1024 }, new[] { 1024 }, new[] { 1024 } }, new[] { 64, 1024 }, ("axis", -1), ("epsilon", 1e-5f));
        foreach (int m in new[] { 128, 512, 1024 })
        {
            double flops = 2.0 * m * m * m, bytes = 12.0 * m * m;
            if (m != 128)
                yield return C("matmul", S(m, m, m), flops, bytes, cpu, (d, s) => { var a = R(d, s, m, m); var b = R(d, s + 1, m, m); return new(() => Ops.MatMul(a, b).Dispose(), a, b); });
            yield return CpuPeers.Onnx("matmul", S(m, m, m), flops, bytes, cpu, "MatMul", new[] { new[] { m, m }, new[] { m, m } }, new[] { m, m });
        }
        foreach (var (label, nb, c, h, k) in new[] { ("3x3", 1, 16, 16, 16), ("3x3", 1, 64, 56, 64) })
        {
            string shape = $"{label} {S(nb, c, h, h)} k3 s1 → {k}";
            double flops = 2.0 * nb * k * h * h * c * 9, bytes = 4.0 * ((double)nb * c * h * h + (double)k * c * 9 + (double)nb * k * h * h);
            if (c != 16)
                yield return C("conv2d", shape, flops, bytes, cpu, (d, s) =>
                { var x = R(d, s, nb, c, h, h); var w = R(d, s + 1, k, c, 3, 3); var b = R(d, s + 2, k); return new(() => Ops.Conv2d(x, w, b, Conv2dOptions.Of(padding: 1)).Dispose(), x, w, b); });
            yield return CpuPeers.Onnx("conv2d", shape, flops, bytes, cpu, "Conv", new[] { new[] { nb, c, h, h }, new[] { k, c, 3, 3 }, new[] { k } }, new[] { nb, k, h, h },
                ("pads", new[] { 1, 1, 1, 1 }), ("kernel_shape", new[] { 3, 3 }));
        }
    }

    private static void TensorPrimitivesAdd(float[] a, float[] b, float[] y) => System.Numerics.Tensors.TensorPrimitives.Add(a, b, y);

    private static IEnumerable<BenchCase> Build()
    {
        var tiers = new (string[] Presets, int N, int Rows, int Cols)[] { (Small, 1 << 16, 64, 1024), (Medium, 1 << 24, 4096, 4096), (Large, 1 << 26, 16384, 4096) };
        foreach (var (presets, n, rows, cols) in tiers)
        {
            yield return C("fill", S(n), 0, 4.0 * n, presets, (d, s) => { var a = R(d, s, n); return new(() => Ops.Fill(a, 1.5f), a); });
            yield return C("copy_strided", S(rows, cols) + "ᵀ", 0, 8.0 * rows * cols, presets, (d, s) =>
            {
                var a = R(d, s, rows, cols);
                var o = Tensor.Empty(d, cols, rows);
                return new(() => { using var t = a.Transpose(); Ops.Copy(t, o); }, a, o);
            });
            foreach (var (name, op) in new (string, Func<Tensor, Tensor, Tensor>)[] { ("add", (a, b) => Ops.Add(a, b)), ("sub", (a, b) => Ops.Sub(a, b)), ("mul", (a, b) => Ops.Mul(a, b)), ("div", (a, b) => Ops.Div(a, b)) })
                yield return C(name, S(n), n, 12.0 * n, presets, (d, s) => { var a = R(d, s, n); var b = R(d, s + 1, n); return new(() => op(a, b).Dispose(), a, b); });
            yield return C("axpy", S(n), 2.0 * n, 12.0 * n, presets, (d, s) => { var x = R(d, s, n); var y = R(d, s + 1, n); return new(() => Ops.AxpyInPlace(0.5f, x, y), x, y); });
            var acts = new (string Name, double Flops, Func<Tensor, Tensor> Op)[]
            {
                ("relu", 1, x => Ops.Relu(x)), ("leaky_relu", 2, x => Ops.LeakyRelu(x)), ("gelu_erf", 25, x => Ops.GeluErf(x)), ("gelu_tanh", 14, x => Ops.GeluTanh(x)),
                ("silu", 5, x => Ops.Silu(x)), ("sigmoid", 4, x => Ops.Sigmoid(x)), ("tanh", 8, x => Ops.Tanh(x)), ("softplus", 8, x => Ops.Softplus(x)), ("elu", 8, x => Ops.Elu(x)), ("exp", 5, x => Ops.Exp(x, 0.5f)), ("scale", 1, x => Ops.Scale(x, 1.5f)),
            };
            foreach (var (name, f, op) in acts)
                yield return C(name, S(n), f * n, 8.0 * n, presets, (d, s) => { var x = R(d, s, n); return new(() => op(x).Dispose(), x); });
            // The math family: one function per case (the function is a run-time field, so these time the same kernel).
            foreach (var (function, f) in new[] { (GpuNet.Kernels.UnaryFunction.Erf, 25.0), (GpuNet.Kernels.UnaryFunction.Sin, 12.0), (GpuNet.Kernels.UnaryFunction.Sqrt, 1.0) })
                yield return C("unary_math", S(n) + " " + function.ToString().ToLowerInvariant(), f * n, 8.0 * n, presets, (d, s) => { var x = R(d, s, n); return new(() => Ops.Unary(x, function).Dispose(), x); });
            foreach (var (function, f) in new[] { (GpuNet.Kernels.BinaryFunction.Pow, 10.0), (GpuNet.Kernels.BinaryFunction.Max, 1.0) })
                yield return C("binary_math", S(n) + " " + function.ToString().ToLowerInvariant(), f * n, 12.0 * n, presets, (d, s) => { var a = R(d, s, n); var b = R(d, s + 1, n); return new(() => Ops.Binary(a, b, function).Dispose(), a, b); });
            double rc = (double)rows * cols;
            yield return C("sum_last_axis", S(rows, cols), rc, 4 * rc + 4.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.SumLastAxis(x).Dispose(), x); });
            yield return C("reduce_sum", S(rows, cols) + " axis0", rc, 4 * rc + 4.0 * cols, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Sum(x, 0).Dispose(), x); });
            yield return C("reduce_mean", S(rows, cols), rc, 4 * rc + 4.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Mean(x, -1).Dispose(), x); });
            yield return C("reduce_max", S(rows, cols), rc, 4 * rc + 4.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Max(x, -1).Dispose(), x); });
            yield return C("reduce_min", S(rows, cols), rc, 4 * rc + 4.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Min(x, -1).Dispose(), x); });
            yield return C("reduce_prod", S(rows, cols), rc, 4 * rc + 4.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Prod(x, -1).Dispose(), x); });
            yield return C("topk", S(rows, cols) + " k8", 8 * rc, 4 * rc + 64.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.TopK(x, 8).Dispose(), x); });
            yield return C("cumsum", S(rows, cols) + " axis1", 4 * rc, 8 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.CumSum(x, 1).Dispose(), x); });
            yield return C("argmax", S(rows, cols), rc, 4 * rc + 4.0 * rows, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.ArgMax(x, -1).Dispose(), x); });
            yield return C("softmax", S(rows, cols), 5 * rc, 12 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Softmax(x).Dispose(), x); });
            yield return C("log_softmax", S(rows, cols), 5 * rc, 12 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.LogSoftmax(x).Dispose(), x); });
            int sq = Math.Min(cols, presets == Small ? 256 : 2048), heads = (int)(rc / ((double)sq * sq)) is var h && h > 0 ? h : 1;
            yield return C("softmax_causal", S(heads, sq, sq), 2.5 * heads * sq * sq, 6.0 * heads * sq * sq + 6.0 * heads * sq * sq, presets, (d, s) =>
            { var x = R(d, s, heads, sq, sq); return new(() => Ops.SoftmaxCausal(x).Dispose(), x); });
            yield return C("layernorm", S(rows, cols), 8 * rc, 12 * rc + 8.0 * cols + 8.0 * rows, presets, (d, s) =>
            { var x = R(d, s, rows, cols); var g = R(d, s + 1, cols); var b = R(d, s + 2, cols); return new(() => Ops.LayerNorm(x, g, b).Dispose(), x, g, b); });
            yield return C("rmsnorm", S(rows, cols), 6 * rc, 12 * rc + 4.0 * cols + 8.0 * rows, presets, (d, s) =>
            { var x = R(d, s, rows, cols); var g = R(d, s + 1, cols); return new(() => Ops.RmsNorm(x, g).Dispose(), x, g); });
            yield return C("transpose", S(rows, cols), 0, 8 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Transpose(x).Dispose(), x); });
            yield return C("permute", S(rows / 16, 16, cols) + " (2,0,1)", 0, 8 * rc, presets, (d, s) => { var x = R(d, s, rows / 16, 16, cols); return new(() => Ops.Permute(x, 2, 0, 1).Dispose(), x); });
            yield return C("concat", S(rows, cols) + " ×2 axis1", 0, 16 * rc, presets, (d, s) =>
            { var a = R(d, s, rows, cols); var b = R(d, s + 1, rows, cols); return new(() => Ops.Concat(new[] { a, b }, 1).Dispose(), a, b); });
            yield return C("split", S(rows, cols) + " in 4 axis1", 0, 8 * rc, presets, (d, s) =>
            { var x = R(d, s, rows, cols); return new(() => { foreach (var p in Ops.Split(x, 4, 1)) p.Dispose(); }, x); });
            yield return C("random_uniform", S(n), 0, 4.0 * n, presets, (d, s) => new(() => Ops.RandomUniform(d, new[] { n }, s).Dispose()));
            yield return C("random_normal", S(n), 0, 4.0 * n, presets, (d, s) => new(() => Ops.RandomNormal(d, new[] { n }, s).Dispose()));
            yield return C("dropout", S(n), n, 12.0 * n, presets, (d, s) => { var x = R(d, s, n); return new(() => { var (y, m) = Ops.Dropout(x, 0.1f, s); y.Dispose(); m.Dispose(); }, x); });
        }

        foreach (var (presets, m, n, k) in new[] { (Small, 128, 128, 128), (Small, 97, 83, 71), (Medium, 2048, 2048, 2048), (Large, 4096, 4096, 4096), (Large, 8192, 8192, 8192) })
        {
            double flops = 2.0 * m * n * k, bytes = 4.0 * ((double)m * k + (double)k * n + (double)m * n);
            yield return C("matmul", S(m, n, k), flops, bytes, presets, (d, s) => { var a = R(d, s, m, k); var b = R(d, s + 1, k, n); return new(() => Ops.MatMul(a, b).Dispose(), a, b); });
            yield return CuBlasCase(m, n, k, presets);
            yield return C("matmul_bias_act", S(m, n, k) + " Bᵀ+bias+gelu", flops + 26.0 * m * n, bytes + 4.0 * n, presets, (d, s) =>
            { var x = R(d, s, m, k); var w = R(d, s + 1, n, k); var b = R(d, s + 2, n); return new(() => Ops.Linear(x, w, b, FusedActivation.Gelu).Dispose(), x, w, b); });
        }
        foreach (var (presets, batch, m, n, k) in new[] { (Small, 4, 64, 64, 64), (Medium, 64, 512, 512, 64), (Large, 128, 1024, 1024, 64) })
            yield return C("batched_matmul", S(batch, m, n, k), 2.0 * batch * m * n * k, 4.0 * batch * ((double)m * k + (double)k * n + (double)m * n), presets, (d, s) =>
            { var a = R(d, s, batch, m, k); var b = R(d, s + 1, batch, k, n); return new(() => Ops.MatMul(a, b).Dispose(), a, b); });
        foreach (var (presets, n, k) in new[] { (Small, 256, 512), (Medium, 8192, 8192), (Large, 16384, 16384) })
            yield return C("gemv", S(1, n, k) + " Wᵀ", 2.0 * n * k, 4.0 * ((double)n * k + n + k), presets, (d, s) =>
            { var x = R(d, s, 1, k); var w = R(d, s + 1, n, k); return new(() => Ops.Linear(x, w).Dispose(), x, w); });

        foreach (var conv in ConvShapes())
            foreach (var (algo, impl) in new[] { (ConvAlgorithm.ImplicitGemm, "gpunet"), (ConvAlgorithm.Im2Col, "im2col") })
            {
                var (presets, label, nb, c, h, w, kout, kh, stride, pad) = conv;
                int oh = (h + 2 * pad - kh) / stride + 1, ow = (w + 2 * pad - kh) / stride + 1;
                double flops = 2.0 * nb * kout * oh * ow * c * kh * kh;
                double bytes = 4.0 * ((double)nb * c * h * w + (double)kout * c * kh * kh + (double)nb * kout * oh * ow);
                if (algo == ConvAlgorithm.Im2Col)
                    bytes += 8.0 * nb * c * kh * kh * oh * ow;
                var options = Conv2dOptions.Of(stride, pad) with { Algorithm = algo };
                yield return C("conv2d", $"{label} {S(nb, c, h, w)} k{kh} s{stride} → {kout}", flops, bytes, presets, (d, s) =>
                { var x = R(d, s, nb, c, h, w); var wt = R(d, s + 1, kout, c, kh, kh); var b = R(d, s + 2, kout); return new(() => Ops.Conv2d(x, wt, b, options).Dispose(), x, wt, b); })
                with { Implementation = impl, PeerOf = impl == "gpunet" ? null : "conv2d" };
            }
        foreach (var (presets, nb, c, l, kout, kk) in new[] { (Small, 2, 16, 256, 32, 5), (MediumLarge, 16, 256, 4096, 256, 5) })
            yield return C("conv1d", S(nb, c, l) + $" k{kk} → {kout}", 2.0 * nb * kout * l * c * kk, 4.0 * ((double)nb * c * l + (double)kout * c * kk + (double)nb * kout * l), presets, (d, s) =>
            { var x = R(d, s, nb, c, l); var w = R(d, s + 1, kout, c, kk); return new(() => Ops.Conv1d(x, w, null, 1, (kk / 2, kk / 2)).Dispose(), x, w); });
        foreach (var (presets, nb, cin, h, cout) in new[] { (Small, 2, 32, 16, 16), (MediumLarge, 16, 256, 32, 128) })
            yield return C("conv_transpose2d", S(nb, cin, h, h) + $" k2 s2 → {cout}", 2.0 * nb * cin * h * h * cout * 4, 4.0 * ((double)nb * cin * h * h + (double)cin * cout * 4 + (double)nb * cout * 4 * h * h), presets, (d, s) =>
            { var x = R(d, s, nb, cin, h, h); var w = R(d, s + 1, cin, cout, 2, 2); return new(() => Ops.ConvTranspose2d(x, w, null, stride: 2).Dispose(), x, w); });
        foreach (var (presets, nb, c, h) in new[] { (Small, 2, 16, 32), (MediumLarge, 32, 64, 112) })
        {
            double input = (double)nb * c * h * h;
            yield return C("im2col", S(nb, c, h, h) + " k3 p1", 0, 4 * input + 8 * input * 9, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.Im2Col(x, 3, 3, Conv2dOptions.Of(padding: 1)).Dispose(), x); });
            yield return C("col2im", S(nb, c, h, h) + " k3 p1", input * 9, 4 * input * 9 + 4 * input, presets, (d, s) => { var col = R(d, s, nb, c * 9, h * h); return new(() => Ops.Col2Im(col, h, h, 3, 3, 1, 1).Dispose(), col); });
            yield return C("maxpool2d", S(nb, c, h, h) + " k3 s2 p1", input * 9 / 4, 4 * input + 8 * input / 4, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.MaxPool2d(x, (3, 3), (2, 2), (1, 1)).Dispose(), x); });
            yield return C("avgpool2d", S(nb, c, h, h) + " k2 s2", input, 4 * input + 4 * input / 4, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.AvgPool2d(x, (2, 2)).Dispose(), x); });
            yield return C("adaptive_avgpool2d", S(nb, c, h, h) + " → 7x7", input, 4 * input + 4.0 * nb * c * 49, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.AdaptiveAvgPool2d(x, (7, 7)).Dispose(), x); });
            yield return C("adaptive_maxpool2d", S(nb, c, h, h) + " → 7x7", input, 4 * input + 8.0 * nb * c * 49, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.AdaptiveMaxPool2d(x, (7, 7)).Dispose(), x); });
            yield return C("global_avgpool", S(nb, c, h, h), input, 4 * input + 4.0 * nb * c, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.GlobalAvgPool(x).Dispose(), x); });
            yield return C("batchnorm2d_train", S(nb, c, h, h), 8 * input, 12 * input, presets, (d, s) =>
            { var x = R(d, s, nb, c, h, h); var g = R(d, s + 1, c); var b = R(d, s + 2, c); var rm = R(d, s + 3, c); var rv = Tensor.RandomUniform(d, new[] { c }, s + 4, 0.5f, 1.5f);
              return new(() => Ops.BatchNorm2dTrain(x, g, b, rm, rv).Dispose(), x, g, b, rm, rv); });
            yield return C("batchnorm2d_infer", S(nb, c, h, h), 2 * input, 8 * input, presets, (d, s) =>
            { var x = R(d, s, nb, c, h, h); var rm = R(d, s + 1, c); var rv = Tensor.RandomUniform(d, new[] { c }, s + 2, 0.5f, 1.5f);
              return new(() => Ops.BatchNorm2dInfer(x, rm, rv).Dispose(), x, rm, rv); });
            yield return C("groupnorm", S(nb, c, h, h) + " g8", 8 * input, 12 * input, presets, (d, s) =>
            { var x = R(d, s, nb, c, h, h); var g = R(d, s + 1, c); var b = R(d, s + 2, c); return new(() => Ops.GroupNorm(x, 8, g, b).Dispose(), x, g, b); });
            yield return C("upsample_nearest2d", S(nb, c, h, h) + " ×2", 0, 4 * input + 16 * input, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.UpsampleNearest2d(x, (2 * h, 2 * h)).Dispose(), x); });
            yield return C("upsample_bilinear2d", S(nb, c, h, h) + " ×2", 11 * 4 * input, 4 * input + 16 * input, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.UpsampleBilinear2d(x, (2 * h, 2 * h)).Dispose(), x); });
            yield return C("patchify", S(nb, c, h, h) + " p4", 0, 8 * input, presets, (d, s) => { var x = R(d, s, nb, c, h, h); return new(() => Ops.Patchify(x, 4).Dispose(), x); });
            yield return C("unpatchify", S(nb, h / 4 * (h / 4), 16 * c) + " p4", 0, 8 * input, presets, (d, s) => { var x = R(d, s, nb, h / 4 * (h / 4), 16 * c); return new(() => Ops.Unpatchify(x, 4, c, h, h).Dispose(), x); });
        }

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
            }
        foreach (var (presets, b, h, l, dh) in new[] { (Small, 1, 2, 300, 64), (MediumLarge, 16, 32, 8192, 128) })
        {
            yield return C("attention_decode", $"B{b} H{h} L{l} d{dh}", 4.0 * b * h * l * dh, 8.0 * b * h * l * dh, presets, (d, s) =>
            { var q = R(d, s, b, h, 1, dh); var k = R(d, s + 1, b, h, l, dh); var v = R(d, s + 2, b, h, l, dh); return new(() => Ops.AttentionDecode(q, k, v).Dispose(), q, k, v); });
            yield return C("kv_cache_append", $"B{b} H{h} L{l} d{dh} +1", 0, 8.0 * b * h * dh, presets, (d, s) =>
            { var cache = R(d, s, b, h, l, dh); var kv = R(d, s + 1, b, h, 1, dh); return new(() => Ops.KvCacheAppend(cache, kv, l / 2), cache, kv); });
        }
        foreach (var (presets, t, e, k, dm) in new[] { (Small, 64, 8, 2, 64), (MediumLarge, 16384, 64, 2, 1024) })
        {
            yield return C("topk_gating", $"T{t} E{e} k{k}", (k + 3.0) * t * e, 4.0 * t * e + 8.0 * t * k, presets, (d, s) => { var x = R(d, s, t, e); return new(() => Ops.TopKGating(x, k).Dispose(), x); });
            yield return C("moe_route", $"T{t} E{e} k{k}", 0, 8.0 * t * k, presets, (d, s) =>
            { var g = Ops.TopKGating(R(d, s, t, e), k); return new(() => Ops.MoeRoute(g.Indices, e, 1.25f).Dispose(), g.Weights, g.Indices); });
            yield return C("moe_dispatch", $"T{t} k{k} D{dm}", 0, 8.0 * t * k * dm, presets, (d, s) =>
            { var g = Ops.TopKGating(R(d, s, t, e), k); var x = R(d, s + 1, t, dm); var r = Ops.MoeRoute(g.Indices, e);
              return new(() => Ops.MoeDispatch(x, r).Dispose(), g.Weights, g.Indices, x, r); });
            yield return C("moe_combine", $"T{t} k{k} D{dm}", 2.0 * t * k * dm, 8.0 * t * k * dm, presets, (d, s) =>
            { var g = Ops.TopKGating(R(d, s, t, e), k); var o = R(d, s + 1, t * k, dm); var r = Ops.MoeRoute(g.Indices, e);
              return new(() => Ops.MoeCombine(o, g.Weights, r).Dispose(), g.Weights, g.Indices, o, r); });
        }
        foreach (var (presets, tokens, vocab, dim) in new[] { (Small, 512, 1000, 128), (MediumLarge, 16384, 50257, 1024) })
        {
            var ids = Enumerable.Range(0, tokens).Select(i => (int)(Philox.Word(7, i) % (uint)vocab)).ToArray();
            yield return C("gather_rows", $"{tokens} rows V{vocab} D{dim}", 0, 8.0 * tokens * dim, presets, (d, s) =>
            {
                var w = R(d, s, vocab, dim);
                var idx = Tensor.FromArray(d, ids.Select(i => (float)i).ToArray());
                return new(() => Ops.GatherRows(w, idx).Dispose(), w, idx);
            });
            yield return C("embedding", $"{tokens} ids V{vocab} D{dim}", 0, 8.0 * tokens * dim, presets, (d, s) => { var w = R(d, s, vocab, dim); return new(() => Ops.Embedding(w, ids).Dispose(), w); });
            yield return C("sinusoidal_position", S(tokens, dim), 0, 4.0 * tokens * dim, presets, (d, s) => new(() => Ops.SinusoidalPosition(d, tokens, dim).Dispose()));
            yield return C("timestep_embedding", S(tokens, dim), 0, 4.0 * tokens * dim, presets, (d, s) => { var t = Tensor.RandomUniform(d, new[] { tokens }, s, 0, 1000); return new(() => Ops.TimestepEmbedding(t, dim).Dispose(), t); });
            yield return C("sample", $"{Math.Max(1, tokens / 64)} rows V{vocab} k50 p0.9", 64.0 * (tokens / 64) * vocab, 4.0 * (tokens / 64) * vocab, presets, (d, s) =>
            { var l = R(d, s, Math.Max(1, tokens / 64), vocab); return new(() => Ops.Sample(l, 1f, 50, 0.9f, s).Dispose(), l); });
            int vqRows = presets == Small ? 128 : tokens;
            yield return C("vq_nearest", $"N{vqRows} K512 D{dim / 4}", 3.0 * vqRows * 512 * (dim / 4), 4.0 * (vqRows + 512) * (dim / 4), presets, (d, s) =>
            { var x = R(d, s, vqRows, dim / 4); var cb = R(d, s + 1, 512, dim / 4); return new(() => Ops.VqNearest(x, cb).Dispose(), x, cb); });
        }
    }

    private static IEnumerable<(string[] Presets, string Label, int N, int C, int H, int W, int K, int KH, int Stride, int Pad)> ConvShapes()
    {
        yield return (Small, "3x3", 1, 16, 16, 16, 16, 3, 1, 1);
        yield return (Small, "7x7/2", 1, 3, 32, 32, 16, 7, 2, 3);
        yield return (Medium, "resnet50 conv3_x b8", 8, 128, 28, 28, 128, 3, 1, 1);
        foreach (var (c, h, name) in new[] { (64, 56, "conv2_x"), (128, 28, "conv3_x"), (256, 14, "conv4_x"), (512, 7, "conv5_x") })
            yield return (Large, $"resnet50 {name} b32", 32, c, h, h, c, 3, 1, 1);
    }

    /// <summary>cuBLAS SGEMM (FP32, default math mode: no TF32) on the same row-major product, as Cᵀ = Bᵀ·Aᵀ in column-major.</summary>
    private static BenchCase CuBlasCase(int m, int n, int k, string[] presets) =>
        new BenchCase("matmul", S(m, n, k), 2.0 * m * n * k, 4.0 * ((double)m * k + (double)k * n + (double)m * n), presets, (d, s) =>
        {
            var blas = CuBlasPeer.For(d)!;
            var a = R(d, s, m, k);
            var b = R(d, s + 1, k, n);
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

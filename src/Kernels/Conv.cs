using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>
    /// Index math of one convolution, as a kernel parameter: where input pixel (c, ih, iw) feeding output
    /// pixel p = oh·OW + ow through kernel tap (kh, kw) lives, and whether it is padding.
    /// </summary>
    public struct ConvIndex
    {
        /// <summary>Input height and width.</summary>
        public int H, W;

        /// <summary>Kernel height and width.</summary>
        public int KH, KW;

        /// <summary>Output width (the output height follows from the pixel count).</summary>
        public int OW;

        /// <summary>Stride, leading padding (top, left) and dilation.</summary>
        public int StrideH, StrideW, PadTop, PadLeft, DilationH, DilationW;

        /// <summary>x[channel + ih·W + iw] for output pixel <paramref name="pixel"/> and tap (kh, kw); 0 in the padding.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly float Gather(ArrayView<float> x, int channel, int pixel, int kh, int kw)
        {
            int oh = pixel / OW, ow = pixel - oh * OW;
            int ih = oh * StrideH - PadTop + kh * DilationH, iw = ow * StrideW - PadLeft + kw * DilationW;
            return ih >= 0 && ih < H && iw >= 0 && iw < W ? x[channel + ih * W + iw] : 0f;
        }
    }

    /// <summary>
    /// The implicit-GEMM B operand: the column matrix col[(c, kh, kw), pixel] of one (sample, group) is never
    /// stored; each chunk of the tile is gathered from the input on the fly (chunks run along pixels, so the
    /// four loads of a chunk read neighbouring input pixels for stride 1).
    /// </summary>
    public struct Im2ColB : IOperandB
    {
        /// <summary>The convolution's index math.</summary>
        public ConvIndex Index;

        /// <inheritdoc/>
        public readonly bool KContiguous => false;

        /// <inheritdoc/>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly Float4 Load(ArrayView<float> x, int xBase, int n0, int k0, GemmParams p, int bn, int bk, int t)
        {
            int k = k0 + t / (bn / 4), n = n0 + t % (bn / 4) * 4;
            Float4 v;
            v.X = 0; v.Y = 0; v.Z = 0; v.W = 0;
            if (k >= p.K)
                return v;
            int kw = k % Index.KW, rest = k / Index.KW, kh = rest % Index.KH, c = rest / Index.KH;
            int channel = xBase + c * Index.H * Index.W;
            if (n < p.N) v.X = Index.Gather(x, channel, n, kh, kw);
            if (n + 1 < p.N) v.Y = Index.Gather(x, channel, n + 1, kh, kw);
            if (n + 2 < p.N) v.Z = Index.Gather(x, channel, n + 2, kh, kw);
            if (n + 3 < p.N) v.W = Index.Gather(x, channel, n + 3, kh, kw);
            return v;
        }
    }

    /// <summary>
    /// The convolution family. <c>conv2d</c> (NCHW; stride, asymmetric padding, dilation, groups, bias, fused
    /// activation, PixelCNN masks) runs as a GEMM per (sample, group): out[Kg, OH·OW] = W_g[Kg, Cg·KH·KW] ·
    /// col[Cg·KH·KW, OH·OW], on the tiled matmul with the bias per output channel in its epilogue. Two ways
    /// to feed col: <see cref="Im2Col"/> materializes it (N·C·KH·KW·OH·OW floats) and the matmul reads it
    /// densely; the implicit GEMM (<see cref="Im2ColB"/>) gathers it inside the matmul's tile loader and never
    /// stores it. The launcher takes im2col while the column buffer fits a memory budget, implicit GEMM
    /// beyond. <c>conv1d</c> is conv2d with height 1. <c>conv_transpose2d</c> is the adjoint: col = W_gᵀ·x on
    /// the batched matmul, then <see cref="Col2Im"/> gathers each output pixel's taps (no atomics).
    /// FLOPs: 2·N·C_out·OH·OW·(C_in/groups)·KH·KW. Bytes (implicit GEMM, minimum): 4·(N·C·H·W + C_out·Cg·KH·KW + N·C_out·OH·OW);
    /// im2col adds 8·N·C·KH·KW·OH·OW (the column buffer written, then read).
    /// </summary>
    public static class ConvKernels
    {
        /// <summary>col[n, c·KH·KW + kh·KW + kw, pixel] = x[n, c, ih, iw] (0 in the padding), for <paramref name="total"/> = N·C·KH·KW·OH·OW elements.</summary>
        public static void Im2Col(ArrayView<float> x, ArrayView<float> col, ConvIndex index, int channels, int pixels, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
            {
                int pixel = i % pixels, r = i / pixels;
                int kw = r % index.KW;
                r /= index.KW;
                int kh = r % index.KH;
                int nc = r / index.KH; // n·C + c: the input plane
                col[i] = index.Gather(x, nc * index.H * index.W, pixel, kh, kw);
            }
        }

        /// <summary>
        /// out[n, co, oh, ow] = act(bias[co] + Σ_{kh, kw} col[n, g, (co_g·KH + kh)·KW + kw, ih·W + iw]) where
        /// oh = ih·s − p + kh·d: each output pixel gathers the input pixels whose taps land on it.
        /// </summary>
        public static void Col2Im<TAct>(ArrayView<float> col, ArrayView<float> bias, ArrayView<float> o, ConvIndex index, int outH, int outW,
            int outChannels, int groups, int hasBias, int total, TAct act) where TAct : struct, IUnaryOp
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                Col2ImAt<TAct>(col, bias, o, index, outH, outW, outChannels, groups, hasBias, act, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Col2Im"/>: the per-element body of the GPU loop (the fast CPU device runs <see cref="Cpu.HostPool.Col2Im{TAct}"/>).</summary>
        public static void Col2ImAt<TAct>(ArrayView<float> col, ArrayView<float> bias, ArrayView<float> o, ConvIndex index, int outH, int outW,
            int outChannels, int groups, int hasBias, TAct act, int i) where TAct : struct, IUnaryOp
        {
            int kPerGroup = outChannels / groups, inPixels = index.H * index.W;
            int ow = i % outW, r = i / outW;
            int oh = r % outH;
            r /= outH;
            int co = r % outChannels, n = r / outChannels;
            int g = co / kPerGroup, cog = co - g * kPerGroup;
            // col block of (n, g): [kPerGroup·KH·KW, H·W]
            int colBase = (n * groups + g) * kPerGroup * index.KH * index.KW * inPixels;
            float sum = hasBias != 0 ? bias[co] : 0f;
            for (int kh = 0; kh < index.KH; kh++)
            {
                int hy = oh + index.PadTop - kh * index.DilationH;
                if (hy < 0 || hy % index.StrideH != 0)
                    continue;
                int ih = hy / index.StrideH;
                if (ih >= index.H)
                    continue;
                for (int kw = 0; kw < index.KW; kw++)
                {
                    int wx = ow + index.PadLeft - kw * index.DilationW;
                    if (wx < 0 || wx % index.StrideW != 0)
                        continue;
                    int iw = wx / index.StrideW;
                    if (iw >= index.W)
                        continue;
                    sum += col[colBase + ((cog * index.KH + kh) * index.KW + kw) * inPixels + ih * index.W + iw];
                }
            }
            o[i] = act.Apply(sum);
        }

        // ------------------------------------------------------------ launchers

        /// <summary>
        /// conv2d of contiguous <paramref name="x"/> and weight <paramref name="w"/> into <paramref name="output"/> [N, C_out, OH, OW]
        /// on the implementation for the device: the fast CPU's direct convolution (<see cref="Cpu.HostConv"/>); on ILGPU the tiled
        /// matmul with the weights as A and, as B, the image read through the im2col index (implicit GEMM) or columns unfolded
        /// into memory first — the implicit form when <paramref name="algorithm"/> asks for it or the columns would exceed
        /// <paramref name="columnBudgetBytes"/>. Arguments are validated by the op.
        /// </summary>
        internal static void RunConv2d(Device device, Tensor x, Tensor w, Tensor? bias, Tensor output, Conv2dGeometry g,
            ConvAlgorithm algorithm, long columnBudgetBytes, FusedActivation act, Tensor? packed = null, Tensor? residual = null)
        {
            const string op = "conv2d";
            int cgkk = g.Cg * g.KH * g.KW, pixels = g.OH * g.OW;
            var p = new GemmParams
            {
                M = g.Kg, N = pixels, K = cgkk, StrideAm = cgkk, StrideAk = 1, StrideBk = pixels, StrideBn = 1,
                Alpha = 1, HasBias = bias is null ? 0 : 2, BiasGroups = g.Options.Groups,
                VecA = w.IsAligned(16) && cgkk % 4 == 0 ? 1 : 0, VecC = output.IsAligned(16) && pixels % 4 == 0 ? 1 : 0,
            };
            var biasView = bias?.ContiguousView ?? output.ContiguousView;
            if (device.IsHostCpu)
            {
                ActivationDispatch.WithActivation(act, new HostConvLaunch(device, x.ContiguousView, w.ContiguousView, packed?.ContiguousView,
                    output.ContiguousView, biasView, residual?.ContiguousView, g, p));
                return;
            }
            if (residual is not null)
            {
                // The ILGPU kernels have no residual in their epilogue: the convolution, then the sum and the activation in place.
                RunConv2d(device, x, w, bias, output, g, algorithm, columnBudgetBytes, FusedActivation.None);
                ElementwiseKernels.MapBinary("add", output, residual, output, new ElementwiseOps.Add());
                if (act != FusedActivation.None)
                    ActivationDispatch.WithActivation(act, new InPlaceActivation(output, act switch
                    {
                        FusedActivation.Relu => "relu", FusedActivation.Relu6 => "relu6", FusedActivation.Silu => "silu",
                        FusedActivation.Gelu => "gelu_erf", FusedActivation.GeluTanh => "gelu_tanh", _ => act.ToString().ToLowerInvariant(),
                    }));
                return;
            }
            // Batches z = (n, group): the weight block repeats over n; the columns (or the input planes) advance with both.
            var batch = new[] { g.N, g.Options.Groups };
            var layoutA = Layout6.Create(op, batch, new[] { 0, g.Kg * cgkk });
            bool implicitGemm = algorithm switch
            {
                ConvAlgorithm.ImplicitGemm => true,
                ConvAlgorithm.Im2Col => false,
                _ => g.ColumnBytes > columnBudgetBytes,
            };
            if (implicitGemm)
            {
                var layoutB = Layout6.Create(op, batch, new[] { g.C * g.H * g.W, g.Cg * g.H * g.W });
                var views = new MatMulKernels.Views(w.ContiguousView, x.ContiguousView, output.ContiguousView, biasView);
                LaunchConvGemm(op, device, views, p, layoutA, layoutB, g.N * g.Options.Groups, act, new Im2ColB { Index = g.Index });
                return;
            }
            using var col = Tensor.Empty(device, g.N, g.C * g.KH * g.KW, pixels);
            RunIm2Col(device, x, col, g);
            p.VecB = col.IsAligned(16) && pixels % 4 == 0 ? 1 : 0;
            var layoutCol = Layout6.Create(op, batch, new[] { g.C * g.KH * g.KW * pixels, cgkk * pixels });
            var colViews = new MatMulKernels.Views(w.ContiguousView, col.ContiguousView, output.ContiguousView, biasView);
            LaunchConvGemm(op, device, colViews, p, layoutA, layoutCol, g.N * g.Options.Groups, act, default(DenseB<Flags.No>));
        }

        /// <summary>The tiled matmul with the weights as A (contiguous along k) and <typeparamref name="TB"/> as the column source.</summary>
        private static void LaunchConvGemm<TB>(string op, Device device, MatMulKernels.Views views, GemmParams p, Layout6 la, Layout6 lb, int batches,
            FusedActivation act, TB source) where TB : struct, IOperandB
        {
            if (MatMulKernels.UseLargeTile(device, p.M, p.N, batches, MatMulTile.Auto))
                ActivationDispatch.WithActivation(act, new MatMulKernels.TiledLaunch<MatMulTiles.Large, Flags.Yes, TB>(op, device, views, p, la, lb, batches, source));
            else
                ActivationDispatch.WithActivation(act, new MatMulKernels.TiledLaunch<MatMulTiles.Small, Flags.Yes, TB>(op, device, views, p, la, lb, batches, source));
        }

        /// <summary>The fast CPU device's convolution (<see cref="Cpu.HostConv"/>) with the activation as a type argument.</summary>
        private readonly record struct HostConvLaunch(Device Device, ArrayView<float> X, ArrayView<float> W, ArrayView<float>? Packed, ArrayView<float> Output,
            ArrayView<float> Bias, ArrayView<float>? Residual, Conv2dGeometry G, GemmParams P) : IActivationVisitor
        {
            public unsafe void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
            {
                using (Device.Profiler.Measure("conv2d"))
                    Cpu.HostConv.Conv2d(Cpu.HostMemory.Ptr(X), Cpu.HostMemory.Ptr(W), Packed is { } packed ? Cpu.HostMemory.Ptr(packed) : null, Cpu.HostMemory.Ptr(Output),
                        Cpu.HostMemory.Ptr(Bias), Residual is { } residual ? Cpu.HostMemory.Ptr(residual) : null, G, P, default(TAct));
            }
        }

        /// <summary>Whether <paramref name="device"/> fuses a 1×1 expansion into the depthwise convolution <paramref name="g"/>
        /// with these activations (<see cref="RunExpandDepthwise"/>): the fast CPU, for the shapes and activations
        /// <see cref="Cpu.HostConv.ExpandsDepthwise"/> takes.</summary>
        internal static bool FusesExpandDepthwise(Device device, Conv2dGeometry g, FusedActivation expandActivation, FusedActivation activation) =>
            device.IsHostCpu && Cpu.HostConv.ExpandsDepthwise(g, expandActivation, activation);

        /// <summary>
        /// A 1×1 expansion and the depthwise convolution <paramref name="g"/> that alone reads it, fused on the fast CPU
        /// (<see cref="Cpu.HostConv.ExpandDepthwise"/>) from the weights (contiguous) and their packed forms; only where
        /// <see cref="FusesExpandDepthwise"/>. Arguments are validated by the op.
        /// </summary>
        internal static unsafe void RunExpandDepthwise(Device device, Tensor x, Tensor expandWeight, Tensor expandPacked, Tensor? expandBias,
            FusedActivation expandActivation, Tensor weight, Tensor packed, Tensor? bias, Tensor output, Conv2dGeometry g, FusedActivation activation)
        {
            using (device.Profiler.Measure("conv2d"))
                Cpu.HostConv.ExpandDepthwise(Ptr(x), x.Size(1), Ptr(expandWeight), Ptr(expandPacked), Ptr(expandBias), expandActivation,
                    Ptr(weight), Ptr(packed), Ptr(bias), Ptr(output), g, activation);
        }

        /// <summary>Whether <paramref name="device"/> fuses a 1×1 expansion, the depthwise convolution <paramref name="g"/> and a
        /// 1×1 projection with these activations into one pass (<see cref="RunExpandDepthwiseProject"/>): the fast CPU, for
        /// the shapes and activations <see cref="Cpu.HostConv.ProjectsDepthwise"/> takes.</summary>
        internal static bool FusesExpandDepthwiseProject(Device device, Conv2dGeometry g, FusedActivation expandActivation, FusedActivation activation,
            FusedActivation projectActivation) =>
            device.IsHostCpu && Cpu.HostConv.ProjectsDepthwise(g, expandActivation, activation, projectActivation);

        /// <summary>
        /// A 1×1 expansion, the depthwise convolution <paramref name="g"/> and a 1×1 projection (<paramref name="projectPacked"/>
        /// of <paramref name="projectChannels"/> outputs) fused on the fast CPU (<see cref="Cpu.HostConv.ExpandDepthwiseProject"/>),
        /// the residual (or null) added before the projection's activation; only where <see cref="FusesExpandDepthwiseProject"/>.
        /// Arguments are validated by the op.
        /// </summary>
        internal static unsafe void RunExpandDepthwiseProject(Device device, Tensor x, Tensor expandPacked, Tensor? expandBias, FusedActivation expandActivation,
            Tensor packed, Tensor? bias, Conv2dGeometry g, FusedActivation activation, Tensor projectPacked, Tensor? projectBias, int projectChannels,
            FusedActivation projectActivation, Tensor? residual, Tensor output)
        {
            using (device.Profiler.Measure("conv2d"))
                Cpu.HostConv.ExpandDepthwiseProject(Ptr(x), x.Size(1), Ptr(expandPacked), Ptr(expandBias), expandActivation, Ptr(packed), Ptr(bias), g, activation,
                    Ptr(projectPacked), Ptr(projectBias), projectChannels, projectActivation, Ptr(residual), Ptr(output));
        }

        /// <summary>Whether <paramref name="device"/> runs squeeze-and-excitation with <paramref name="activation"/> after its
        /// first product as one call (<see cref="RunSqueezeExcite"/>): the fast CPU with 512-bit vectors, for the activations
        /// <see cref="Cpu.HostConv.SqueezesAndExcites"/> takes.</summary>
        internal static bool FusesSqueezeExcite(Device device, FusedActivation activation) => device.IsHostCpu && Cpu.HostConv.SqueezesAndExcites(activation);

        /// <summary>Squeeze-and-excitation of x [N, C, H, W] (contiguous) on the fast CPU (<see cref="Cpu.HostConv.SqueezeExcite"/>)
        /// from the two 1×1 convolutions' packed weights; only where <see cref="FusesSqueezeExcite"/>. Arguments are validated
        /// by the op.</summary>
        internal static unsafe void RunSqueezeExcite(Device device, Tensor x, Tensor reducePacked, Tensor? reduceBias, int reduced, FusedActivation activation,
            Tensor expandPacked, Tensor? expandBias, Tensor output)
        {
            using (device.Profiler.Measure("squeeze_excite"))
                Cpu.HostConv.SqueezeExcite(Ptr(x), x.Size(0), x.Size(1), x.Size(2) * x.Size(3), Ptr(reducePacked), Ptr(reduceBias), reduced, activation,
                    Ptr(expandPacked), Ptr(expandBias), Ptr(output));
        }

        /// <summary>The first element of a contiguous tensor on the fast CPU, or null for an absent optional operand.</summary>
        private static unsafe float* Ptr(Tensor? t) => t is null ? null : Cpu.HostMemory.Ptr(t.ContiguousView);

        /// <summary>An activation applied in place over a tensor, launched under its op's name.</summary>
        private readonly record struct InPlaceActivation(Tensor Output, string Name) : IActivationVisitor
        {
            public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp => ElementwiseKernels.MapUnary(Name, Output, Output, default(TAct));
        }

        /// <summary>Whether <paramref name="device"/> runs convolutions from packed weights (<see cref="PackConv2dWeight"/>): the
        /// fast CPU with 512-bit vectors.</summary>
        internal static bool PacksConv2dWeights(Device device) => device.IsHostCpu && Cpu.HostGemm.Wide;

        /// <summary>Floats of the fast CPU's packed form of a conv2d weight [groups·Kg, Cg, KH, KW] (cgkk = Cg·KH·KW).</summary>
        internal static long PackedConv2dLength(int groups, int kg, int cg, int kh, int kw) => Cpu.HostConv.PackedLength(groups, kg, cg, kh, kw);

        /// <summary>Packs contiguous conv2d weights [groups·Kg, Cg, KH, KW] into <paramref name="packed"/> (fast CPU only).</summary>
        internal static unsafe void PackConv2dWeight(Device device, Tensor w, Tensor packed, int groups, int kg)
        {
            using (device.Profiler.Measure("conv2d_pack"))
                Cpu.HostConv.PackWeights(Cpu.HostMemory.Ptr(w.ContiguousView), Cpu.HostMemory.Ptr(packed.ContiguousView), groups, kg, w.Size(1), w.Size(2), w.Size(3));
        }

        /// <summary>Unfolds contiguous <paramref name="x"/> into <paramref name="col"/> [N, C·KH·KW, OH·OW]: the fast CPU's host loop, else <see cref="Im2Col"/>.</summary>
        internal static unsafe void RunIm2Col(Device device, Tensor x, Tensor col, Conv2dGeometry g)
        {
            int total = col.Length;
            if (total == 0)
                return;
            if (device.IsHostCpu)
            {
                int perImage = g.C * g.H * g.W, colPerImage = g.C * g.KH * g.KW * g.OH * g.OW;
                float* px = Cpu.HostMemory.Ptr(x), pc = Cpu.HostMemory.Ptr(col);
                var index = g.Index;
                using (device.Profiler.Measure("im2col"))
                    Cpu.HostParallel.For(g.N, colPerImage, (s, e) =>
                    {
                        for (int n = s; n < e; n++)
                            Cpu.HostConv.Im2Col(px + (long)n * perImage, pc + (long)n * colPerImage, index, g.C, g.OH, g.OW);
                    });
                return;
            }
            device.Launch("im2col", Im2Col, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)),
                x.ContiguousView, col.ContiguousView, g.Index, g.C, g.OH * g.OW, total);
        }

        /// <summary>
        /// Folds contiguous columns into <paramref name="output"/> [N, outChannels, outH, outW], summing overlapping taps, plus the
        /// bias and the activation: the fast CPU's per-plane scatter (<see cref="Cpu.HostPool.Col2Im{TAct}"/>), else <see cref="Col2Im{TAct}"/>.
        /// </summary>
        internal static void RunCol2Im(Device device, Tensor col, Tensor? bias, Tensor output, ConvIndex index, int outH, int outW, int outChannels,
            int groups, FusedActivation act) =>
            ActivationDispatch.WithActivation(act, new Col2ImLaunch(device, col.ContiguousView, bias?.ContiguousView ?? col.ContiguousView, output.ContiguousView,
                index, outH, outW, outChannels, groups, bias is null ? 0 : 1, output.Length));

        private readonly record struct Col2ImLaunch(Device Device, ArrayView<float> Col, ArrayView<float> Bias, ArrayView<float> Output, ConvIndex Index,
            int OutH, int OutW, int OutChannels, int Groups, int HasBias, int Total) : IActivationVisitor
        {
            public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
            {
                if (Device.IsHostCpu)
                {
                    using (Device.Profiler.Measure("col2im"))
                        unsafe
                        {
                            Cpu.HostPool.Col2Im(Cpu.HostMemory.Ptr(Col), Cpu.HostMemory.Ptr(Bias), Cpu.HostMemory.Ptr(Output), Index, Total / (OutChannels * OutH * OutW),
                                OutH, OutW, OutChannels, Groups, HasBias != 0, default(TAct));
                        }
                    return;
                }
                Device.Launch("col2im", Col2Im<TAct>, LaunchShapes.Linear(Device, Total, LaunchShapes.ElementwiseGroup(Device)),
                    Col, Bias, Output, Index, OutH, OutW, OutChannels, Groups, HasBias, Total, default(TAct));
            }
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>How conv2d builds its column matrix.</summary>
    public enum ConvAlgorithm
    {
        /// <summary>im2col while the column buffer fits <see cref="Conv2dOptions.ColumnBudgetBytes"/>, implicit GEMM beyond.</summary>
        Auto,
        /// <summary>Materialize the column buffer, then the tiled matmul.</summary>
        Im2Col,
        /// <summary>Gather columns inside the matmul's tile loader; no buffer.</summary>
        ImplicitGemm,
    }

    /// <summary>PixelCNN's causal weight masks (van den Oord et al., 2016): taps after the centre in raster order are zeroed.</summary>
    public enum ConvMask
    {
        /// <summary>No mask.</summary>
        None,
        /// <summary>Type A: the centre tap is excluded too (the first layer).</summary>
        A,
        /// <summary>Type B: the centre tap is included.</summary>
        B,
    }

    /// <summary>conv2d hyper-parameters (PyTorch's nn.Conv2d semantics, padding possibly asymmetric).</summary>
    public sealed record Conv2dOptions
    {
        /// <summary>Stride (height, width).</summary>
        public (int H, int W) Stride { get; init; } = (1, 1);

        /// <summary>Zero padding (top, bottom, left, right).</summary>
        public (int Top, int Bottom, int Left, int Right) Padding { get; init; }

        /// <summary>Dilation (height, width).</summary>
        public (int H, int W) Dilation { get; init; } = (1, 1);

        /// <summary>Groups: C_in and C_out must both be divisible by it; C_in = groups is depthwise.</summary>
        public int Groups { get; init; } = 1;

        /// <summary>Activation fused into the epilogue.</summary>
        public FusedActivation Activation { get; init; }

        /// <summary>Column strategy.</summary>
        public ConvAlgorithm Algorithm { get; init; }

        /// <summary>Weight mask (PixelCNN).</summary>
        public ConvMask Mask { get; init; }

        /// <summary>Largest column buffer <see cref="ConvAlgorithm.Auto"/> will materialize (default 256 MiB).</summary>
        public long ColumnBudgetBytes { get; init; } = 256L << 20;

        /// <summary>Symmetric options in PyTorch's spelling.</summary>
        public static Conv2dOptions Of(int stride = 1, int padding = 0, int dilation = 1, int groups = 1) => new()
        {
            Stride = (stride, stride), Padding = (padding, padding, padding, padding), Dilation = (dilation, dilation), Groups = groups,
        };
    }

    /// <summary>The validated geometry of one conv2d: input [N, C, H, W], weight [K, C/groups, KH, KW], output [N, K, OH, OW].</summary>
    public sealed record Conv2dGeometry(int N, int C, int H, int W, int K, int KH, int KW, int OH, int OW, Conv2dOptions Options)
    {
        /// <summary>Input channels per group.</summary>
        public int Cg => C / Options.Groups;

        /// <summary>Output channels per group.</summary>
        public int Kg => K / Options.Groups;

        /// <summary>2·N·K·OH·OW·Cg·KH·KW.</summary>
        public long Flops => 2L * N * K * OH * OW * Cg * KH * KW;

        /// <summary>Bytes of the im2col column buffer.</summary>
        public long ColumnBytes => 4L * N * C * KH * KW * OH * OW;

        /// <summary>Validates shapes and hyper-parameters; every violation names its parameter.</summary>
        public static Conv2dGeometry Create(string op, int[] x, int[] w, Conv2dOptions o)
        {
            string Shape(int[] s) => GpuNetException.FormatShape(s);
            if (x.Length != 4)
                throw new ShapeMismatchException(op, "x", "[N, C, H, W]", Shape(x));
            if (w.Length != 4)
                throw new ShapeMismatchException(op, "weight", "[C_out, C_in/groups, KH, KW]", Shape(w));
            if (o.Groups < 1)
                throw new ShapeMismatchException(op, "groups", "groups ≥ 1", o.Groups.ToString());
            if (o.Stride.H < 1 || o.Stride.W < 1)
                throw new ShapeMismatchException(op, "stride", "strides ≥ 1", o.Stride.ToString());
            if (o.Dilation.H < 1 || o.Dilation.W < 1)
                throw new ShapeMismatchException(op, "dilation", "dilations ≥ 1", o.Dilation.ToString());
            if (o.Padding.Top < 0 || o.Padding.Bottom < 0 || o.Padding.Left < 0 || o.Padding.Right < 0)
                throw new ShapeMismatchException(op, "padding", "paddings ≥ 0", o.Padding.ToString());
            int n = x[0], c = x[1], h = x[2], wd = x[3], k = w[0];
            if (c % o.Groups != 0)
                throw new ShapeMismatchException(op, "groups", $"a divisor of C_in = {c}", o.Groups.ToString());
            if (k % o.Groups != 0)
                throw new ShapeMismatchException(op, "groups", $"a divisor of C_out = {k}", o.Groups.ToString());
            if (w[1] != c / o.Groups || w[2] < 1 || w[3] < 1)
                throw new ShapeMismatchException(op, "weight", $"[{k}, {c / o.Groups}, KH ≥ 1, KW ≥ 1] for C_in = {c}, groups = {o.Groups}", Shape(w));
            int oh = (h + o.Padding.Top + o.Padding.Bottom - o.Dilation.H * (w[2] - 1) - 1) / o.Stride.H + 1;
            int ow = (wd + o.Padding.Left + o.Padding.Right - o.Dilation.W * (w[3] - 1) - 1) / o.Stride.W + 1;
            if (h + o.Padding.Top + o.Padding.Bottom - o.Dilation.H * (w[2] - 1) - 1 < 0 || oh < 1)
                throw new ShapeMismatchException(op, "kernel_size", $"a dilated kernel height ≤ padded input height {h + o.Padding.Top + o.Padding.Bottom} (output height ≥ 1)", $"KH = {w[2]}, dilation {o.Dilation.H}");
            if (wd + o.Padding.Left + o.Padding.Right - o.Dilation.W * (w[3] - 1) - 1 < 0 || ow < 1)
                throw new ShapeMismatchException(op, "kernel_size", $"a dilated kernel width ≤ padded input width {wd + o.Padding.Left + o.Padding.Right} (output width ≥ 1)", $"KW = {w[3]}, dilation {o.Dilation.W}");
            return new Conv2dGeometry(n, c, h, wd, k, w[2], w[3], oh, ow, o);
        }

        internal ConvIndex Index => new()
        {
            H = H, W = W, KH = KH, KW = KW, OW = OW,
            StrideH = Options.Stride.H, StrideW = Options.Stride.W, PadTop = Options.Padding.Top, PadLeft = Options.Padding.Left,
            DilationH = Options.Dilation.H, DilationW = Options.Dilation.W,
        };
    }
}

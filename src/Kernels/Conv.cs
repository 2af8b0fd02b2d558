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

        /// <summary>Element <paramref name="i"/> of <see cref="Col2Im"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
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

    public static partial class Ops
    {
        /// <summary>
        /// 2-D convolution, NCHW: x [N, C_in, H, W], weight [C_out, C_in/groups, KH, KW], optional bias [C_out].
        /// Kernel <c>conv2d</c> (its column paths also register <c>im2col</c>).
        /// </summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>conv2d</c>.</remarks>
        public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, Conv2dOptions? options = null)
        {
            var r = Conv2dCore(x, weight, bias, options);
            Autograd.RecordNoGradient("conv2d", r, x, weight, bias);
            return r;
        }

        private static Tensor Conv2dCore(Tensor x, Tensor weight, Tensor? bias = null, Conv2dOptions? options = null)
        {
            const string op = "conv2d";
            options ??= new Conv2dOptions();
            var device = Validate.DeviceOf(op, "x", x);
            Validate.Input(op, "x", x, device);
            Validate.Input(op, "weight", weight, device);
            var g = Conv2dGeometry.Create(op, x.ShapeArray(), weight.ShapeArray(), options);
            if (bias is not null)
            {
                Validate.Input(op, "bias", bias, device);
                if (bias.Rank != 1 || bias.Length != g.K || !bias.IsContiguous)
                    throw new ShapeMismatchException(op, "bias", $"a contiguous vector [{g.K}] (C_out)", bias.Describe());
            }
            var output = Tensor.Empty(device, g.N, g.K, g.OH, g.OW);
            if (output.Length == 0)
                return output;
            using var scope = device.Scope();
            var xc = x.Contiguous();
            var w = options.Mask == ConvMask.None ? weight.Contiguous() : Mul(weight, MaskTensor(device, g.KH, g.KW, options.Mask));
            bool implicitGemm = options.Algorithm switch
            {
                ConvAlgorithm.ImplicitGemm => true,
                ConvAlgorithm.Im2Col => false,
                _ => g.ColumnBytes > options.ColumnBudgetBytes,
            };
            int cgkk = g.Cg * g.KH * g.KW, pixels = g.OH * g.OW;
            var p = new GemmParams
            {
                M = g.Kg, N = pixels, K = cgkk, StrideAm = cgkk, StrideAk = 1, StrideBk = pixels, StrideBn = 1,
                Alpha = 1, HasBias = bias is null ? 0 : 2, BiasGroups = g.Options.Groups,
                VecA = w.IsAligned(16) && cgkk % 4 == 0 ? 1 : 0, VecC = output.IsAligned(16) && pixels % 4 == 0 ? 1 : 0,
            };
            // Batches z = (n, group): the weight block repeats over n; the columns (or the input planes) advance with both.
            var batch = new[] { g.N, g.Options.Groups };
            var layoutA = Layout6.Create(op, batch, new[] { 0, g.Kg * cgkk });
            var biasView = bias?.ContiguousView ?? output.ContiguousView;
            if (device.IsHostCpu)
            {
                WithActivation(options.Activation, new HostConvLaunch(device, xc.ContiguousView, w.ContiguousView, output.ContiguousView, biasView, g, p));
                return output;
            }
            if (implicitGemm)
            {
                var layoutB = Layout6.Create(op, batch, new[] { g.C * g.H * g.W, g.Cg * g.H * g.W });
                var views = new MatMulViews(w.ContiguousView, xc.ContiguousView, output.ContiguousView, biasView);
                LaunchConvGemm(op, device, views, p, layoutA, layoutB, g.N * g.Options.Groups, options.Activation, new Im2ColB { Index = g.Index });
                return output;
            }
            var col = Tensor.Empty(device, g.N, g.C * g.KH * g.KW, pixels);
            RunIm2Col(device, xc, col, g);
            p.VecB = col.IsAligned(16) && pixels % 4 == 0 ? 1 : 0;
            var layoutCol = Layout6.Create(op, batch, new[] { g.C * g.KH * g.KW * pixels, cgkk * pixels });
            var colViews = new MatMulViews(w.ContiguousView, col.ContiguousView, output.ContiguousView, biasView);
            LaunchConvGemm(op, device, colViews, p, layoutA, layoutCol, g.N * g.Options.Groups, options.Activation, default(DenseB<Flags.No>));
            return output;
        }

        /// <summary>
        /// Unfold (PyTorch's F.unfold): x [N, C, H, W] → columns [N, C·KH·KW, OH·OW] for a kernel of
        /// [KH, KW] with the stride, padding and dilation of <paramref name="options"/> (groups ignored). Kernel <c>im2col</c>.
        /// </summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>im2col</c>.</remarks>
        public static Tensor Im2Col(Tensor x, int kh, int kw, Conv2dOptions? options = null)
        {
            var r = Im2ColCore(x, kh, kw, options);
            Autograd.RecordNoGradient("im2col", r, x);
            return r;
        }

        private static Tensor Im2ColCore(Tensor x, int kh, int kw, Conv2dOptions? options = null)
        {
            const string op = "im2col";
            options = (options ?? new Conv2dOptions()) with { Groups = 1 };
            Validate.Input(op, "x", x);
            var g = Conv2dGeometry.Create(op, x.ShapeArray(), new[] { 1, x.Rank == 4 ? x.Size(1) : 0, kh, kw }, options);
            var col = Tensor.Empty(x.Device, g.N, g.C * kh * kw, g.OH * g.OW);
            using var xc = x.Contiguous();
            RunIm2Col(x.Device, xc, col, g);
            return col;
        }

        /// <summary>The fast CPU device's convolution (<see cref="Kernels.Cpu.HostConv"/>) with the activation as a type argument.</summary>
        private readonly record struct HostConvLaunch(Device Device, ArrayView<float> X, ArrayView<float> W, ArrayView<float> Output, ArrayView<float> Bias,
            Conv2dGeometry G, GemmParams P) : IActivationVisitor
        {
            public unsafe void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
            {
                using (Device.Profiler.Measure("conv2d"))
                    Kernels.Cpu.HostConv.Conv2d(Kernels.Cpu.HostMemory.Ptr(X), Kernels.Cpu.HostMemory.Ptr(W), Kernels.Cpu.HostMemory.Ptr(Output),
                        Kernels.Cpu.HostMemory.Ptr(Bias), G, P, default(TAct));
            }
        }

        private static unsafe void RunIm2Col(Device device, Tensor x, Tensor col, Conv2dGeometry g)
        {
            int total = col.Length;
            if (total == 0)
                return;
            if (device.IsHostCpu)
            {
                int perImage = g.C * g.H * g.W, colPerImage = g.C * g.KH * g.KW * g.OH * g.OW;
                float* px = Kernels.Cpu.HostMemory.Ptr(x), pc = Kernels.Cpu.HostMemory.Ptr(col);
                var index = g.Index;
                using (device.Profiler.Measure("im2col"))
                    Kernels.Cpu.HostParallel.For(g.N, colPerImage, (s, e) =>
                    {
                        for (int n = s; n < e; n++)
                            Kernels.Cpu.HostConv.Im2Col(px + (long)n * perImage, pc + (long)n * colPerImage, index, g.C, g.OH, g.OW);
                    });
                return;
            }
            device.Launch("im2col", ConvKernels.Im2Col, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)),
                x.ContiguousView, col.ContiguousView, g.Index, g.C, g.OH * g.OW, total);
        }

        /// <summary>
        /// Fold (PyTorch's F.fold), the adjoint of <see cref="Im2Col"/>: columns [N, C·KH·KW, L] → image [N, C, outH, outW],
        /// summing overlapping taps; L must equal the number of kernel positions over the padded image. Kernel <c>col2im</c>.
        /// </summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>col2im</c>.</remarks>
        public static Tensor Col2Im(Tensor col, int outH, int outW, int kh, int kw, int stride = 1, int padding = 0, int dilation = 1)
        {
            var r = Col2ImCore(col, outH, outW, kh, kw, stride, padding, dilation);
            Autograd.RecordNoGradient("col2im", r, col);
            return r;
        }

        private static Tensor Col2ImCore(Tensor col, int outH, int outW, int kh, int kw, int stride = 1, int padding = 0, int dilation = 1)
        {
            const string op = "col2im";
            var device = Validate.DeviceOf(op, "col", col);
            Validate.Input(op, "col", col, device);
            // The positions are the output of a convolution of the image with this kernel.
            var g = Conv2dGeometry.Create(op, new[] { 1, 1, outH, outW }, new[] { 1, 1, kh, kw }, Conv2dOptions.Of(stride, padding, dilation));
            if (col.Rank != 3 || col.Size(1) % (kh * kw) != 0 || col.Size(2) != g.OH * g.OW)
                throw new ShapeMismatchException(op, "col", $"[N, C·{kh * kw}, {g.OH * g.OW}] ({g.OH}×{g.OW} kernel positions)", GpuNetException.FormatShape(col.ShapeArray()));
            int n = col.Size(0), c = col.Size(1) / (kh * kw);
            var output = Tensor.Empty(device, n, c, outH, outW);
            if (output.Length == 0)
                return output;
            using var cc = col.Contiguous();
            // In the transposed view, the kernel positions are the "input" pixels and the image is the output.
            var index = new ConvIndex
            {
                H = g.OH, W = g.OW, KH = kh, KW = kw, OW = outW, StrideH = stride, StrideW = stride, PadTop = padding, PadLeft = padding,
                DilationH = dilation, DilationW = dilation,
            };
            WithActivation(FusedActivation.None, new Col2ImLaunch(device, cc.ContiguousView, cc.ContiguousView, output.ContiguousView,
                index, outH, outW, c, 1, 0, output.Length));
            return output;
        }

        /// <summary>The tiled matmul with the weights as A (contiguous along k) and <typeparamref name="TB"/> as the column source.</summary>
        private static void LaunchConvGemm<TB>(string op, Device device, MatMulViews views, GemmParams p, Layout6 la, Layout6 lb, int batches,
            FusedActivation act, TB source) where TB : struct, IOperandB
        {
            if (UseLargeTile(device, p.M, p.N, batches, MatMulTile.Auto))
                WithActivation(act, new TiledLaunch<MatMulTiles.Large, Flags.Yes, TB>(op, device, views, p, la, lb, batches, source));
            else
                WithActivation(act, new TiledLaunch<MatMulTiles.Small, Flags.Yes, TB>(op, device, views, p, la, lb, batches, source));
        }

        /// <summary>PixelCNN mask [KH, KW]: taps before the centre in raster order are 1; the centre is 1 for type B.</summary>
        private static Tensor MaskTensor(Device device, int kh, int kw, ConvMask type)
        {
            var mask = new float[kh * kw];
            int centre = kh / 2 * kw + kw / 2;
            for (int i = 0; i < mask.Length; i++)
                mask[i] = i < centre || (i == centre && type == ConvMask.B) ? 1f : 0f;
            return Tensor.FromArray(device, mask, kh, kw);
        }

        /// <summary>
        /// 1-D convolution: x [N, C_in, L], weight [C_out, C_in/groups, K]; stride, padding (left, right),
        /// dilation, groups, bias and activation as conv2d. Kernel <c>conv1d</c> (conv2d with height 1).
        /// </summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>conv1d</c>.</remarks>
        public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, (int Left, int Right) padding = default, int dilation = 1,
            int groups = 1, FusedActivation activation = FusedActivation.None, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        {
            var r = Conv1dCore(x, weight, bias, stride, padding, dilation, groups, activation, algorithm);
            Autograd.RecordNoGradient("conv1d", r, x, weight, bias);
            return r;
        }

        private static Tensor Conv1dCore(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, (int Left, int Right) padding = default, int dilation = 1,
            int groups = 1, FusedActivation activation = FusedActivation.None, ConvAlgorithm algorithm = ConvAlgorithm.Auto)
        {
            Validate.Input("conv1d", "x", x);
            Validate.Input("conv1d", "weight", weight, x.Device);
            if (x.Rank != 3)
                throw new ShapeMismatchException("conv1d", "x", "[N, C, L]", GpuNetException.FormatShape(x.ShapeArray()));
            if (weight.Rank != 3)
                throw new ShapeMismatchException("conv1d", "weight", "[C_out, C_in/groups, K]", GpuNetException.FormatShape(weight.ShapeArray()));
            using var scope = x.Device.Scope();
            var x4 = x.Contiguous().Reshape(x.Size(0), x.Size(1), 1, x.Size(2));
            var w4 = weight.Contiguous().Reshape(weight.Size(0), weight.Size(1), 1, weight.Size(2));
            var options = new Conv2dOptions
            {
                Stride = (1, stride), Padding = (0, 0, padding.Left, padding.Right), Dilation = (1, dilation), Groups = groups,
                Activation = activation, Algorithm = algorithm,
            };
            var y = Conv2d(x4, w4, bias, options);
            return scope.Keep(y.Reshape(y.Size(0), y.Size(1), y.Size(3)));
        }

        /// <summary>
        /// Transposed 2-D convolution (PyTorch's nn.ConvTranspose2d): x [N, C_in, H, W], weight [C_in, C_out/groups, KH, KW];
        /// output size (H − 1)·stride − 2·padding + dilation·(KH − 1) + output_padding + 1. Kernels <c>conv_transpose2d</c> and <c>col2im</c>.
        /// </summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>conv_transpose2d</c>.</remarks>
        public static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0,
            int dilation = 1, int groups = 1, FusedActivation activation = FusedActivation.None)
        {
            var r = ConvTranspose2dCore(x, weight, bias, stride, padding, outputPadding, dilation, groups, activation);
            Autograd.RecordNoGradient("conv_transpose2d", r, x, weight, bias);
            return r;
        }

        private static Tensor ConvTranspose2dCore(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0,
            int dilation = 1, int groups = 1, FusedActivation activation = FusedActivation.None)
        {
            const string op = "conv_transpose2d";
            var device = Validate.DeviceOf(op, "x", x);
            Validate.Input(op, "x", x, device);
            Validate.Input(op, "weight", weight, device);
            if (x.Rank != 4)
                throw new ShapeMismatchException(op, "x", "[N, C_in, H, W]", GpuNetException.FormatShape(x.ShapeArray()));
            if (weight.Rank != 4)
                throw new ShapeMismatchException(op, "weight", "[C_in, C_out/groups, KH, KW]", GpuNetException.FormatShape(weight.ShapeArray()));
            if (groups < 1 || x.Size(1) % groups != 0)
                throw new ShapeMismatchException(op, "groups", $"a divisor of C_in = {x.Size(1)}", groups.ToString());
            if (weight.Size(0) != x.Size(1))
                throw new ShapeMismatchException(op, "weight", $"[{x.Size(1)}, C_out/groups, KH, KW] (C_in first)", GpuNetException.FormatShape(weight.ShapeArray()));
            if (stride < 1 || dilation < 1 || padding < 0)
                throw new ShapeMismatchException(op, stride < 1 ? "stride" : dilation < 1 ? "dilation" : "padding", "stride ≥ 1, dilation ≥ 1, padding ≥ 0", $"stride {stride}, dilation {dilation}, padding {padding}");
            if (outputPadding < 0 || outputPadding >= Math.Max(stride, dilation))
                throw new ShapeMismatchException(op, "output_padding", $"0 ≤ output_padding < max(stride, dilation) = {Math.Max(stride, dilation)}", outputPadding.ToString());
            int n = x.Size(0), cin = x.Size(1), h = x.Size(2), w = x.Size(3);
            int coutG = weight.Size(1), kh = weight.Size(2), kw = weight.Size(3), cout = coutG * groups, cinG = cin / groups;
            int oh = (h - 1) * stride - 2 * padding + dilation * (kh - 1) + outputPadding + 1;
            int ow = (w - 1) * stride - 2 * padding + dilation * (kw - 1) + outputPadding + 1;
            if (oh < 1 || ow < 1)
                throw new ShapeMismatchException(op, "padding", "an output size ≥ 1", $"{oh}×{ow} from padding {padding}");
            if (bias is not null)
            {
                Validate.Input(op, "bias", bias, device);
                if (bias.Rank != 1 || bias.Length != cout || !bias.IsContiguous)
                    throw new ShapeMismatchException(op, "bias", $"a contiguous vector [{cout}] (C_out)", bias.Describe());
            }
            var output = Tensor.Empty(device, n, cout, oh, ow);
            if (output.Length == 0)
                return output;
            using var scope = device.Scope();
            // col[n, g] = W_gᵀ · x[n, g]: [C_out/g·KH·KW, H·W] on the batched matmul, W broadcast over n.
            var wg = weight.Contiguous().Reshape(1, groups, cinG, coutG * kh * kw);
            var xg = x.Contiguous().Reshape(n, groups, cinG, h * w);
            var col = MatMul(wg, xg, transposeA: true);
            var index = new ConvIndex
            {
                H = h, W = w, KH = kh, KW = kw, OW = ow, StrideH = stride, StrideW = stride, PadTop = padding, PadLeft = padding,
                DilationH = dilation, DilationW = dilation,
            };
            WithActivation(activation, new Col2ImLaunch(device, col.ContiguousView, bias?.ContiguousView ?? col.ContiguousView, output.ContiguousView,
                index, oh, ow, cout, groups, bias is null ? 0 : 1, output.Length));
            return output;
        }

        private readonly record struct Col2ImLaunch(Device Device, ArrayView<float> Col, ArrayView<float> Bias, ArrayView<float> Output, ConvIndex Index,
            int OutH, int OutW, int OutChannels, int Groups, int HasBias, int Total) : IActivationVisitor
        {
            public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
            {
                var (col, bias, output, index, outH, outW, outChannels, groups, hasBias, total) = (Col, Bias, Output, Index, OutH, OutW, OutChannels, Groups, HasBias, Total);
                if (Kernels.Cpu.HostParallel.Elements(Device, "col2im", Total, Index.KH * Index.KW,
                    i => ConvKernels.Col2ImAt(col, bias, output, index, outH, outW, outChannels, groups, hasBias, default(TAct), i)))
                    return;
                Device.Launch("col2im", ConvKernels.Col2Im<TAct>, LaunchShapes.Linear(Device, Total, LaunchShapes.ElementwiseGroup(Device)),
                    Col, Bias, Output, Index, OutH, OutW, OutChannels, Groups, HasBias, Total, default(TAct));
            }
        }
    }
}

using ILGPU;
using ILGPU.Runtime;
using GpuNet.Kernels.Cpu;

namespace GpuNet.Kernels
{
    /// <summary>Window geometry of one 2-D pooling, as a kernel parameter.</summary>
    public struct PoolIndex
    {
        /// <summary>Input and output plane sizes.</summary>
        public int H, W, OH, OW;

        /// <summary>Kernel, stride, padding and dilation (unused when adaptive).</summary>
        public int KH, KW, StrideH, StrideW, PadH, PadW, DilationH, DilationW;

        /// <summary>1: PyTorch's adaptive bins [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) instead of a fixed window.</summary>
        public int Adaptive;

        /// <summary>Average pooling: 1 divides by the window clipped to the padded input, 0 by the valid taps only.</summary>
        public int CountIncludePad;
    }

    /// <summary>
    /// The pooling family: <c>maxpool2d</c>, <c>avgpool2d</c>, <c>adaptive_maxpool2d</c>, <c>adaptive_avgpool2d</c>
    /// (and <c>global_avgpool</c>, a row mean). One thread per output element, grid-stride; each walks its window
    /// (fixed: stride, padding, dilation, ceil mode; or adaptive bins) skipping taps in the padding. Max pooling
    /// also writes the argmax as a flat index ih·W + iw into the input plane (PyTorch's return_indices; the backward
    /// pass scatters through it); the first maximum wins ties and NaN propagates. Max or average is a compile-time
    /// flag. FLOPs: N·C·OH·OW·(window taps). Bytes: ≈ 4·N·C·H·W read (windows overlap in cache) + 4·N·C·OH·OW written (×2 with indices).
    /// </summary>
    public static class PoolingKernels
    {
        /// <summary>Pools <paramref name="total"/> = planes·OH·OW outputs.</summary>
        public static void Pool2d<TMax>(ArrayView<float> x, ArrayView<float> o, ArrayView<float> indices, PoolIndex q, int total)
            where TMax : struct, IFlag
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                Pool2dAt<TMax>(x, o, indices, q, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Pool2d"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void Pool2dAt<TMax>(ArrayView<float> x, ArrayView<float> o, ArrayView<float> indices, PoolIndex q, int i)
            where TMax : struct, IFlag
        {
            int ow = i % q.OW, r = i / q.OW;
            int oh = r % q.OH, plane = r / q.OH;
            int hs, he, ws, we, dh, dw;
            float divisor;
            if (q.Adaptive != 0)
            {
                hs = oh * q.H / q.OH;
                he = ((oh + 1) * q.H + q.OH - 1) / q.OH;
                ws = ow * q.W / q.OW;
                we = ((ow + 1) * q.W + q.OW - 1) / q.OW;
                dh = 1;
                dw = 1;
                divisor = (he - hs) * (we - ws);
            }
            else
            {
                hs = oh * q.StrideH - q.PadH;
                ws = ow * q.StrideW - q.PadW;
                dh = q.DilationH;
                dw = q.DilationW;
                he = hs + (q.KH - 1) * dh + 1;
                we = ws + (q.KW - 1) * dw + 1;
                // PyTorch's average divisor: the window clipped to the padded input (ceil mode can overhang it).
                int padHe = IntrinsicMath.Min(hs + q.KH, q.H + q.PadH), padWe = IntrinsicMath.Min(ws + q.KW, q.W + q.PadW);
                int validH = IntrinsicMath.Min(he, q.H) - IntrinsicMath.Max(hs, 0), validW = IntrinsicMath.Min(we, q.W) - IntrinsicMath.Max(ws, 0);
                divisor = q.CountIncludePad != 0 ? (padHe - hs) * (padWe - ws) : validH * validW;
            }
            int planeBase = plane * q.H * q.W;
            float best = float.NegativeInfinity, sum = 0f;
            int bestIndex = -1;
            for (int ih = hs; ih < he; ih += dh)
            {
                if (ih < 0 || ih >= q.H)
                    continue;
                for (int iw = ws; iw < we; iw += dw)
                {
                    if (iw < 0 || iw >= q.W)
                        continue;
                    float v = x[planeBase + ih * q.W + iw];
                    if (default(TMax).Value)
                    {
                        if (bestIndex < 0 || v > best || (float.IsNaN(v) && !float.IsNaN(best)))
                        {
                            best = v;
                            bestIndex = ih * q.W + iw;
                        }
                    }
                    else
                        sum += v;
                }
            }
            if (default(TMax).Value)
            {
                o[i] = best;
                indices[i] = bestIndex;
            }
            else
                o[i] = sum / divisor;
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>A max pooling's output and the flat argmax index (ih·W + iw) of every output element, as floats (exact below 2²⁴).</summary>
    public sealed record PoolResult(Tensor Output, Tensor Indices) : IDisposable
    {
        /// <summary>Disposes both tensors.</summary>
        public void Dispose()
        {
            Output.Dispose();
            Indices.Dispose();
        }
    }

    public static partial class Ops
    {
        /// <summary>2-D max pooling of x [N, C, H, W] (PyTorch's nn.MaxPool2d; stride defaults to the kernel). Kernel <c>maxpool2d</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>maxpool2d</c>.</remarks>
        public static PoolResult MaxPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W) padding = default,
            (int H, int W)? dilation = null, bool ceilMode = false)
        {
            var r = MaxPool2dCore(x, kernel, stride, padding, dilation, ceilMode);
            Autograd.RecordNoGradient("maxpool2d", r.Output, x);
            Autograd.RecordNoGradient("maxpool2d", r.Indices, x);
            return r;
        }

        private static PoolResult MaxPool2dCore(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W) padding = default,
            (int H, int W)? dilation = null, bool ceilMode = false)
        {
            var q = PoolGeometry("maxpool2d", x, kernel, stride ?? kernel, padding, dilation ?? (1, 1), ceilMode);
            var (output, indices) = RunPool<Flags.Yes>("maxpool2d", x, q);
            return new PoolResult(output, indices!);
        }

        /// <summary>2-D average pooling of x [N, C, H, W] (PyTorch's nn.AvgPool2d). Kernel <c>avgpool2d</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>avgpool2d</c>.</remarks>
        public static Tensor AvgPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W) padding = default,
            bool ceilMode = false, bool countIncludePad = true)
        {
            var r = AvgPool2dCore(x, kernel, stride, padding, ceilMode, countIncludePad);
            Autograd.RecordNoGradient("avgpool2d", r, x);
            return r;
        }

        private static Tensor AvgPool2dCore(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W) padding = default,
            bool ceilMode = false, bool countIncludePad = true)
        {
            var q = PoolGeometry("avgpool2d", x, kernel, stride ?? kernel, padding, (1, 1), ceilMode);
            q.CountIncludePad = countIncludePad ? 1 : 0;
            return RunPool<Flags.No>("avgpool2d", x, q).Output;
        }

        /// <summary>Adaptive average pooling to [OH, OW] with PyTorch's bins. Kernel <c>adaptive_avgpool2d</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>adaptive_avgpool2d</c>.</remarks>
        public static Tensor AdaptiveAvgPool2d(Tensor x, (int H, int W) outputSize)
        {
            var r = AdaptiveAvgPool2dCore(x, outputSize);
            Autograd.RecordNoGradient("adaptive_avgpool2d", r, x);
            return r;
        }

        private static Tensor AdaptiveAvgPool2dCore(Tensor x, (int H, int W) outputSize) =>
            RunPool<Flags.No>("adaptive_avgpool2d", x, AdaptiveGeometry("adaptive_avgpool2d", x, outputSize)).Output;

        /// <summary>Adaptive max pooling to [OH, OW] with PyTorch's bins, with argmax indices. Kernel <c>adaptive_maxpool2d</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>adaptive_maxpool2d</c>.</remarks>
        public static PoolResult AdaptiveMaxPool2d(Tensor x, (int H, int W) outputSize)
        {
            var r = AdaptiveMaxPool2dCore(x, outputSize);
            Autograd.RecordNoGradient("adaptive_maxpool2d", r.Output, x);
            Autograd.RecordNoGradient("adaptive_maxpool2d", r.Indices, x);
            return r;
        }

        private static PoolResult AdaptiveMaxPool2dCore(Tensor x, (int H, int W) outputSize)
        {
            var (output, indices) = RunPool<Flags.Yes>("adaptive_maxpool2d", x, AdaptiveGeometry("adaptive_maxpool2d", x, outputSize));
            return new PoolResult(output, indices!);
        }

        /// <summary>Mean over the spatial dimensions: [N, C, H, W] → [N, C, 1, 1] (a row mean). Kernel <c>global_avgpool</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>global_avgpool</c>.</remarks>
        public static Tensor GlobalAvgPool(Tensor x)
        {
            var r = GlobalAvgPoolCore(x);
            Autograd.RecordNoGradient("global_avgpool", r, x);
            return r;
        }

        private static Tensor GlobalAvgPoolCore(Tensor x)
        {
            Validate.Input("global_avgpool", "x", x);
            Validate.Rank("global_avgpool", "x", x, 4);
            using var xc = x.Contiguous();
            using var rows = xc.Reshape(x.Size(0), x.Size(1), x.Size(2) * x.Size(3));
            using var means = Reduce<float, ReduceOps.Mean>("global_avgpool", rows, -1, keepDim: true, null, default);
            return means.Reshape(x.Size(0), x.Size(1), 1, 1);
        }

        private static PoolIndex PoolGeometry(string op, Tensor x, (int H, int W) k, (int H, int W) s, (int H, int W) p, (int H, int W) d, bool ceil)
        {
            Validate.Input(op, "x", x);
            Validate.Rank(op, "x", x, 4);
            if (k.H < 1 || k.W < 1)
                throw new ShapeMismatchException(op, "kernel_size", "sizes ≥ 1", k.ToString());
            if (s.H < 1 || s.W < 1)
                throw new ShapeMismatchException(op, "stride", "strides ≥ 1", s.ToString());
            if (d.H < 1 || d.W < 1)
                throw new ShapeMismatchException(op, "dilation", "dilations ≥ 1", d.ToString());
            if (p.H < 0 || p.W < 0 || p.H > k.H / 2 || p.W > k.W / 2)
                throw new ShapeMismatchException(op, "padding", $"0 ≤ padding ≤ half the kernel {k}", p.ToString());
            int h = x.Size(2), w = x.Size(3);
            int OutSize(int size, int kk, int ss, int pp, int dd)
            {
                int span = size + 2 * pp - dd * (kk - 1) - 1;
                if (span < 0)
                    return 0;
                int o = (span + (ceil ? ss - 1 : 0)) / ss + 1;
                // Ceil mode: the last window must start inside the input or its left padding.
                if (ceil && (o - 1) * ss >= size + pp)
                    o--;
                return o;
            }
            int oh = OutSize(h, k.H, s.H, p.H, d.H), ow = OutSize(w, k.W, s.W, p.W, d.W);
            if (oh < 1 || ow < 1)
                throw new ShapeMismatchException(op, "kernel_size", $"a dilated kernel that fits the padded input {h + 2 * p.H}×{w + 2 * p.W}", $"{k} with dilation {d}");
            return new PoolIndex
            {
                H = h, W = w, OH = oh, OW = ow, KH = k.H, KW = k.W, StrideH = s.H, StrideW = s.W, PadH = p.H, PadW = p.W,
                DilationH = d.H, DilationW = d.W,
            };
        }

        private static PoolIndex AdaptiveGeometry(string op, Tensor x, (int H, int W) size)
        {
            Validate.Input(op, "x", x);
            Validate.Rank(op, "x", x, 4);
            if (size.H < 1 || size.W < 1)
                throw new ShapeMismatchException(op, "output_size", "sizes ≥ 1", size.ToString());
            return new PoolIndex { H = x.Size(2), W = x.Size(3), OH = size.H, OW = size.W, Adaptive = 1 };
        }

        /// <summary>Runs the pooling kernel; the indices tensor exists for max pooling only.</summary>
        private static (Tensor Output, Tensor? Indices) RunPool<TMax>(string op, Tensor x, PoolIndex q) where TMax : struct, IFlag
        {
            var device = Validate.DeviceOf(op, "x", x);
            var output = Tensor.Empty(device, x.Size(0), x.Size(1), q.OH, q.OW);
            var indices = default(TMax).Value ? Tensor.Empty(device, output.ShapeArray()) : null;
            if (output.Length > 0 && q.H * q.W > 0)
            {
                using var xc = x.Contiguous();
                var (xv, ov, iv, total) = (xc.ContiguousView, output.ContiguousView, (indices ?? output).ContiguousView, output.Length);
                if (HostParallel.Elements(device, op, total, q.Adaptive != 0 ? q.H * q.W / (q.OH * q.OW) + 1 : q.KH * q.KW, i => PoolingKernels.Pool2dAt<TMax>(xv, ov, iv, q, i)))
                    return (output, indices);
                device.Launch(op, PoolingKernels.Pool2d<TMax>, LaunchShapes.Linear(device, output.Length, LaunchShapes.ElementwiseGroup(device)),
                    xc.ContiguousView, output.ContiguousView, (indices ?? output).ContiguousView, q, output.Length);
            }
            return (output, indices);
        }
    }
}

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

    /// <summary>One output's pooling window (see <see cref="PoolingKernels.Window"/>).</summary>
    public struct PoolWindow
    {
        /// <summary>First and one-past-last input row and column (may reach into the padding), and the tap steps.</summary>
        public int Hs, He, Ws, We, Dh, Dw;

        /// <summary>The average pool's divisor.</summary>
        public float Divisor;
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

        /// <summary>Element <paramref name="i"/> of <see cref="Pool2d"/>: the per-element body of the GPU loop (the fast CPU device runs <see cref="Cpu.HostPool.Pool2d"/>).</summary>
        public static void Pool2dAt<TMax>(ArrayView<float> x, ArrayView<float> o, ArrayView<float> indices, PoolIndex q, int i)
            where TMax : struct, IFlag
        {
            int ow = i % q.OW, r = i / q.OW;
            int oh = r % q.OH, plane = r / q.OH;
            var win = Window(q, oh, ow);
            int hs = win.Hs, he = win.He, ws = win.Ws, we = win.We, dh = win.Dh, dw = win.Dw;
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
                o[i] = sum / win.Divisor;
        }

        /// <summary>The input rows [Hs, He) and columns [Ws, We) (steps Dh, Dw) output (oh, ow) pools over, padding included,
        /// and its average divisor: the forward and the backward read windows only from here, so they cannot disagree.</summary>
        public static PoolWindow Window(PoolIndex q, int oh, int ow)
        {
            PoolWindow w;
            if (q.Adaptive != 0)
            {
                w.Hs = oh * q.H / q.OH;
                w.He = ((oh + 1) * q.H + q.OH - 1) / q.OH;
                w.Ws = ow * q.W / q.OW;
                w.We = ((ow + 1) * q.W + q.OW - 1) / q.OW;
                w.Dh = 1;
                w.Dw = 1;
                w.Divisor = (w.He - w.Hs) * (w.We - w.Ws);
                return w;
            }
            w.Hs = oh * q.StrideH - q.PadH;
            w.Ws = ow * q.StrideW - q.PadW;
            w.Dh = q.DilationH;
            w.Dw = q.DilationW;
            w.He = w.Hs + (q.KH - 1) * w.Dh + 1;
            w.We = w.Ws + (q.KW - 1) * w.Dw + 1;
            // PyTorch's average divisor: the window clipped to the padded input (ceil mode can overhang it).
            int padHe = IntrinsicMath.Min(w.Hs + q.KH, q.H + q.PadH), padWe = IntrinsicMath.Min(w.Ws + q.KW, q.W + q.PadW);
            int validH = IntrinsicMath.Min(w.He, q.H) - IntrinsicMath.Max(w.Hs, 0), validW = IntrinsicMath.Min(w.We, q.W) - IntrinsicMath.Max(w.Ws, 0);
            w.Divisor = q.CountIncludePad != 0 ? (padHe - w.Hs) * (padWe - w.Ws) : validH * validW;
            return w;
        }

        /// <summary>The gradient of a pooling for <paramref name="total"/> = planes·H·W inputs (see <see cref="Pool2dBackwardAt"/>).</summary>
        public static void Pool2dBackward<TMax>(ArrayView<float> dy, ArrayView<float> indices, ArrayView<float> dx, PoolIndex q, int total)
            where TMax : struct, IFlag
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                Pool2dBackwardAt<TMax>(dy, indices, dx, q, i);
        }

        /// <summary>
        /// Input element <paramref name="i"/>'s gradient, gathered (no atomics, so every run sums in the same order): the sum over
        /// the output windows that contain it of dy — where the forward's argmax index names it (max), or divided by the
        /// window's divisor (average). A fixed window covers input row ih from output row oh when ih + pad − kh·dilation =
        /// oh·stride for a tap kh; an adaptive bin oh covers it for oh in [⌊ih·OH/H⌋, ⌈(ih+1)·OH/H⌉ − 1].
        /// </summary>
        public static void Pool2dBackwardAt<TMax>(ArrayView<float> dy, ArrayView<float> indices, ArrayView<float> dx, PoolIndex q, int i)
            where TMax : struct, IFlag
        {
            int iw = i % q.W, r = i / q.W;
            int ih = r % q.H, plane = r / q.H;
            int self = ih * q.W + iw, outBase = plane * q.OH * q.OW;
            int rows = q.Adaptive != 0 ? 0 : q.KH, cols = q.Adaptive != 0 ? 0 : q.KW;
            int ohLo = 0, ohHi = -1, owLo = 0, owHi = -1;
            if (q.Adaptive != 0)
            {
                ohLo = ih * q.OH / q.H;
                ohHi = IntrinsicMath.Min(q.OH - 1, ((ih + 1) * q.OH + q.H - 1) / q.H - 1);
                owLo = iw * q.OW / q.W;
                owHi = IntrinsicMath.Min(q.OW - 1, ((iw + 1) * q.OW + q.W - 1) / q.W - 1);
                rows = ohHi - ohLo + 1;
                cols = owHi - owLo + 1;
            }
            float sum = 0f;
            for (int a = 0; a < rows; a++)
            {
                int oh;
                if (q.Adaptive != 0)
                    oh = ohLo + a;
                else
                {
                    int t = ih + q.PadH - a * q.DilationH;
                    if (t < 0 || t % q.StrideH != 0)
                        continue;
                    oh = t / q.StrideH;
                    if (oh >= q.OH)
                        continue;
                }
                for (int b = 0; b < cols; b++)
                {
                    int ow;
                    if (q.Adaptive != 0)
                        ow = owLo + b;
                    else
                    {
                        int t = iw + q.PadW - b * q.DilationW;
                        if (t < 0 || t % q.StrideW != 0)
                            continue;
                        ow = t / q.StrideW;
                        if (ow >= q.OW)
                            continue;
                    }
                    var win = Window(q, oh, ow);
                    if (ih < win.Hs || ih >= win.He || iw < win.Ws || iw >= win.We)
                        continue;
                    int o = outBase + oh * q.OW + ow;
                    if (default(TMax).Value)
                    {
                        if ((int)indices[o] == self)
                            sum += dy[o];
                    }
                    else
                        sum += dy[o] / win.Divisor;
                }
            }
            dx[i] = sum;
        }

        /// <summary>Max (with indices) or average pooling into <paramref name="total"/> outputs: the fast CPU's per-plane loop
        /// (<see cref="Cpu.HostPool.Pool2d"/>), else the kernel <see cref="Pool2d"/>.</summary>
        /// <summary>The gradient of a pooling into <paramref name="total"/> inputs: the fast CPU's per-plane scatter
        /// (<see cref="Cpu.HostPool.Pool2dBackward"/>), else the kernel <see cref="Pool2dBackward"/>.</summary>
        internal static void RunPool2dBackward<TMax>(string op, Device device, ArrayView<float> dy, ArrayView<float> indices, ArrayView<float> dx, PoolIndex q, int total)
            where TMax : struct, IFlag
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostPool.Pool2dBackward(Cpu.HostMemory.Ptr(dy), Cpu.HostMemory.Ptr(indices), Cpu.HostMemory.Ptr(dx), q, total / (q.H * q.W), default(TMax).Value);
                    }
                return;
            }
            device.Launch(op, Pool2dBackward<TMax>, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), dy, indices, dx, q, total);
        }

        internal static void RunPool2d<TMax>(string op, Device device, ArrayView<float> x, ArrayView<float> o, ArrayView<float> indices, PoolIndex q, int total)
            where TMax : struct, IFlag
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostPool.Pool2d(Cpu.HostMemory.Ptr(x), Cpu.HostMemory.Ptr(o), Cpu.HostMemory.Ptr(indices), q, total / (q.OH * q.OW), default(TMax).Value);
                    }
                return;
            }
            device.Launch(op, Pool2d<TMax>, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), x, o, indices, q, total);
        }

        /// <summary>A fixed-window max pool's values alone: on the fast CPU the separable loop that tracks no index; elsewhere the
        /// kernel, which always writes the indices, into a scratch buffer.</summary>
        internal static void RunMaxPoolValues(string op, Device device, ArrayView<float> x, ArrayView<float> o, PoolIndex q, int total)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostPool.Pool2d(Cpu.HostMemory.Ptr(x), Cpu.HostMemory.Ptr(o), null, q, total / (q.OH * q.OW), max: true);
                    }
                return;
            }
            using var indices = Tensor.Empty(device, total);
            RunPool2d<Flags.Yes>(op, device, x, o, indices.ContiguousView, q, total);
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
}

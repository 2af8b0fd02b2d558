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

        /// <summary>Max (with indices) or average pooling into <paramref name="total"/> outputs: the fast CPU's parallel loop over
        /// <see cref="Pool2dAt"/>, else the kernel <see cref="Pool2d"/>.</summary>
        internal static void RunPool2d<TMax>(string op, Device device, ArrayView<float> x, ArrayView<float> o, ArrayView<float> indices, PoolIndex q, int total)
            where TMax : struct, IFlag
        {
            long window = q.Adaptive != 0 ? q.H * q.W / (q.OH * q.OW) + 1 : q.KH * q.KW;
            if (Cpu.HostParallel.Elements(device, op, total, window, i => Pool2dAt<TMax>(x, o, indices, q, i)))
                return;
            device.Launch(op, Pool2d<TMax>, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), x, o, indices, q, total);
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

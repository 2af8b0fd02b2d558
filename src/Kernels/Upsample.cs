using ILGPU;
using ILGPU.Runtime;
using GpuNet.Kernels.Cpu;

namespace GpuNet.Kernels
{
    /// <summary>
    /// The upsampling family: <c>upsample_nearest2d</c> and <c>upsample_bilinear2d</c> (align_corners true or false),
    /// NCHW, any output size (down-sampling included). One thread per output element, grid-stride. Source coordinates
    /// follow PyTorch's formulas in float32 arithmetic, so indices agree with it exactly at bin edges:
    /// nearest: ih = min(⌊oh·(H/OH)⌋, H − 1); bilinear: src = oh·(H − 1)/(OH − 1) with align_corners, else
    /// max((oh + ½)·H/OH − ½, 0), blended from the two neighbouring rows and columns.
    /// FLOPs: 0 (nearest), ≈ 11 per output (bilinear). Bytes: 4·N·C·OH·OW written + the input read (≈ once through cache).
    /// </summary>
    public static class UpsampleKernels
    {
        /// <summary>Nearest-neighbour resampling of planes [H, W] to [OH, OW]; <paramref name="total"/> = planes·OH·OW.</summary>
        public static void Nearest(ArrayView<float> x, ArrayView<float> o, int h, int w, int oh, int ow, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                NearestAt(x, o, h, w, oh, ow, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Nearest"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void NearestAt(ArrayView<float> x, ArrayView<float> o, int h, int w, int oh, int ow, int i)
        {
            float scaleH = (float)h / oh, scaleW = (float)w / ow;
            int ox = i % ow, r = i / ow;
            int oy = r % oh, plane = r / oh;
            int iy = IntrinsicMath.Min((int)MathF.Floor(oy * scaleH), h - 1);
            int ix = IntrinsicMath.Min((int)MathF.Floor(ox * scaleW), w - 1);
            o[i] = x[(plane * h + iy) * w + ix];
        }

        /// <summary>Bilinear resampling of planes [H, W] to [OH, OW].</summary>
        public static void Bilinear(ArrayView<float> x, ArrayView<float> o, int h, int w, int oh, int ow, int alignCorners, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                BilinearAt(x, o, h, w, oh, ow, alignCorners, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Bilinear"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void BilinearAt(ArrayView<float> x, ArrayView<float> o, int h, int w, int oh, int ow, int alignCorners, int i)
        {
            float scaleH = alignCorners != 0 ? (oh > 1 ? (float)(h - 1) / (oh - 1) : 0f) : (float)h / oh;
            float scaleW = alignCorners != 0 ? (ow > 1 ? (float)(w - 1) / (ow - 1) : 0f) : (float)w / ow;
            int ox = i % ow, r = i / ow;
            int oy = r % oh, plane = r / oh;
            float sy = alignCorners != 0 ? oy * scaleH : IntrinsicMath.Max((oy + 0.5f) * scaleH - 0.5f, 0f);
            float sx = alignCorners != 0 ? ox * scaleW : IntrinsicMath.Max((ox + 0.5f) * scaleW - 0.5f, 0f);
            int y0 = (int)sy, x0 = (int)sx;
            int y1 = y0 + (y0 < h - 1 ? 1 : 0), x1 = x0 + (x0 < w - 1 ? 1 : 0);
            float ly = sy - y0, lx = sx - x0;
            int baseIndex = plane * h * w;
            float top = (1 - lx) * x[baseIndex + y0 * w + x0] + lx * x[baseIndex + y0 * w + x1];
            float bottom = (1 - lx) * x[baseIndex + y1 * w + x0] + lx * x[baseIndex + y1 * w + x1];
            o[i] = (1 - ly) * top + ly * bottom;
        }

        /// <summary>PyTorch's nearest source index of output <paramref name="o"/> (float32 scale, as the forward computes it).</summary>
        private static int NearestSource(int o, float scale, int size) => IntrinsicMath.Min((int)MathF.Floor(o * scale), size - 1);

        /// <summary>The gradient of <see cref="Nearest"/> for <paramref name="total"/> = planes·H·W inputs (see <see cref="NearestBackwardAt"/>).</summary>
        public static void NearestBackward(ArrayView<float> dy, ArrayView<float> dx, int h, int w, int oh, int ow, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                NearestBackwardAt(dy, dx, h, w, oh, ow, i);
        }

        /// <summary>
        /// Input element <paramref name="i"/>'s gradient, gathered: the sum of dy over the outputs whose source is this element.
        /// The source index grows with the output index, so those outputs are a run of rows and a run of columns; the runs are
        /// searched in a window around oh·i/H (two either side) and each candidate is checked with the forward's own formula.
        /// </summary>
        public static void NearestBackwardAt(ArrayView<float> dy, ArrayView<float> dx, int h, int w, int oh, int ow, int i)
        {
            float scaleH = (float)h / oh, scaleW = (float)w / ow;
            int ix = i % w, r = i / w;
            int iy = r % h, plane = r / h;
            int yLo = IntrinsicMath.Max(0, iy * oh / h - 2), yHi = IntrinsicMath.Min(oh - 1, ((iy + 1) * oh + h - 1) / h + 1);
            int xLo = IntrinsicMath.Max(0, ix * ow / w - 2), xHi = IntrinsicMath.Min(ow - 1, ((ix + 1) * ow + w - 1) / w + 1);
            float sum = 0f;
            for (int oy = yLo; oy <= yHi; oy++)
            {
                if (NearestSource(oy, scaleH, h) != iy)
                    continue;
                int rowBase = (plane * oh + oy) * ow;
                for (int ox = xLo; ox <= xHi; ox++)
                    if (NearestSource(ox, scaleW, w) == ix)
                        sum += dy[rowBase + ox];
            }
            dx[i] = sum;
        }

        /// <summary>The interpolation weight of input row (or column) <paramref name="input"/> in output <paramref name="o"/>, by the
        /// forward's formulas: 1 − λ for the lower neighbour, λ for the upper, both at the last row.</summary>
        private static float BilinearWeight(int o, int input, float scale, int size, int alignCorners)
        {
            float src = alignCorners != 0 ? o * scale : IntrinsicMath.Max((o + 0.5f) * scale - 0.5f, 0f);
            int lo = (int)src, hi = lo + (lo < size - 1 ? 1 : 0);
            float lambda = src - lo;
            return (lo == input ? 1 - lambda : 0f) + (hi == input ? lambda : 0f);
        }

        /// <summary>The first and last output (row or column) that can read input <paramref name="input"/>: the source coordinate is
        /// scale·o + offset before clamping, and an input is read by sources in (input − 1, input + 1); two outputs of margin.</summary>
        private static (int Lo, int Hi) BilinearReaders(int input, float scale, int outSize, int alignCorners)
        {
            if (scale == 0f)
                return (0, outSize - 1);
            float offset = alignCorners != 0 ? 0f : 0.5f * scale - 0.5f;
            int lo = (int)MathF.Floor((input - 1 - offset) / scale) - 2, hi = (int)MathF.Ceiling((input + 1 - offset) / scale) + 2;
            return (IntrinsicMath.Max(lo, 0), IntrinsicMath.Min(hi, outSize - 1));
        }

        /// <summary>The gradient of <see cref="Bilinear"/> for <paramref name="total"/> = planes·H·W inputs (see <see cref="BilinearBackwardAt"/>).</summary>
        public static void BilinearBackward(ArrayView<float> dy, ArrayView<float> dx, int h, int w, int oh, int ow, int alignCorners, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                BilinearBackwardAt(dy, dx, h, w, oh, ow, alignCorners, i);
        }

        /// <summary>
        /// Input element <paramref name="i"/>'s gradient, gathered: Σ over the outputs that read it of (row weight)·(column weight)·dy,
        /// the weights recomputed with the forward's float32 formulas (bilinear weights are separable).
        /// </summary>
        public static void BilinearBackwardAt(ArrayView<float> dy, ArrayView<float> dx, int h, int w, int oh, int ow, int alignCorners, int i)
        {
            float scaleH = alignCorners != 0 ? (oh > 1 ? (float)(h - 1) / (oh - 1) : 0f) : (float)h / oh;
            float scaleW = alignCorners != 0 ? (ow > 1 ? (float)(w - 1) / (ow - 1) : 0f) : (float)w / ow;
            int ix = i % w, r = i / w;
            int iy = r % h, plane = r / h;
            var (yLo, yHi) = BilinearReaders(iy, scaleH, oh, alignCorners);
            var (xLo, xHi) = BilinearReaders(ix, scaleW, ow, alignCorners);
            float sum = 0f;
            for (int oy = yLo; oy <= yHi; oy++)
            {
                float wy = BilinearWeight(oy, iy, scaleH, h, alignCorners);
                if (wy == 0f)
                    continue;
                int rowBase = (plane * oh + oy) * ow;
                float row = 0f;
                for (int ox = xLo; ox <= xHi; ox++)
                {
                    float wx = BilinearWeight(ox, ix, scaleW, w, alignCorners);
                    if (wx != 0f)
                        row += wx * dy[rowBase + ox];
                }
                sum += wy * row;
            }
            dx[i] = sum;
        }

        /// <summary>The gradient of nearest upsampling into <paramref name="total"/> inputs: the fast CPU's per-plane gather
        /// (<see cref="Cpu.HostPool.NearestBackward"/>), else the kernel <see cref="NearestBackward"/>.</summary>
        internal static void RunNearestBackward(string op, Device device, ArrayView<float> dy, ArrayView<float> dx, int h, int w, int oh, int ow, int total)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostPool.NearestBackward(Cpu.HostMemory.Ptr(dy), Cpu.HostMemory.Ptr(dx), h, w, oh, ow, total / (h * w));
                    }
                return;
            }
            device.Launch(op, NearestBackward, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), dy, dx, h, w, oh, ow, total);
        }

        /// <summary>The gradient of bilinear upsampling into <paramref name="total"/> inputs: the fast CPU's per-plane gather
        /// (<see cref="Cpu.HostPool.BilinearBackward"/>), else the kernel <see cref="BilinearBackward"/>.</summary>
        internal static void RunBilinearBackward(string op, Device device, ArrayView<float> dy, ArrayView<float> dx, int h, int w, int oh, int ow, int alignCorners, int total)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        Cpu.HostPool.BilinearBackward(Cpu.HostMemory.Ptr(dy), Cpu.HostMemory.Ptr(dx), h, w, oh, ow, alignCorners, total / (h * w));
                    }
                return;
            }
            device.Launch(op, BilinearBackward, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), dy, dx, h, w, oh, ow, alignCorners, total);
        }

        /// <summary>Nearest upsampling of [N, C, h, w] to [N, C, oh, ow]: the fast CPU's parallel loop over <see cref="NearestAt"/>, else the kernel <see cref="Nearest"/>.</summary>
        internal static void RunNearest(string op, Device device, ArrayView<float> x, ArrayView<float> o, int h, int w, int oh, int ow, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 1, i => NearestAt(x, o, h, w, oh, ow, i)))
                return;
            device.Launch(op, Nearest, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), x, o, h, w, oh, ow, total);
        }

        /// <summary>Bilinear upsampling of [N, C, h, w] to [N, C, oh, ow]: the fast CPU's parallel loop over <see cref="BilinearAt"/>, else the kernel <see cref="Bilinear"/>.</summary>
        internal static void RunBilinear(string op, Device device, ArrayView<float> x, ArrayView<float> o, int h, int w, int oh, int ow, int alignCorners, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 4, i => BilinearAt(x, o, h, w, oh, ow, alignCorners, i)))
                return;
            device.Launch(op, Bilinear, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), x, o, h, w, oh, ow, alignCorners, total);
        }
    }
}

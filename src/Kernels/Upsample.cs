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

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
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    public static partial class Ops
    {
        /// <summary>Nearest-neighbour upsampling of x [N, C, H, W] to [N, C, OH, OW]. Kernel <c>upsample_nearest2d</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>upsample_nearest2d</c>.</remarks>
        public static Tensor UpsampleNearest2d(Tensor x, (int H, int W) size)
        {
            var r = UpsampleNearest2dCore(x, size);
            Autograd.RecordNoGradient("upsample_nearest2d", r, x);
            return r;
        }

        private static Tensor UpsampleNearest2dCore(Tensor x, (int H, int W) size)
        {
            var (xc, y) = UpsampleSetup("upsample_nearest2d", x, size);
            using (xc)
            {
                if (y.Length == 0)
                    return y;
                var device = Validate.DeviceOf("upsample_nearest2d", "x", x);
                var (xv, yv, h, w, total) = (xc.ContiguousView, y.ContiguousView, x.Size(2), x.Size(3), y.Length);
                if (HostParallel.Elements(device, "upsample_nearest2d", total, 1, i => UpsampleKernels.NearestAt(xv, yv, h, w, size.H, size.W, i)))
                    return y;
                device.Launch("upsample_nearest2d", UpsampleKernels.Nearest, LaunchShapes.Linear(device, y.Length, LaunchShapes.ElementwiseGroup(device)),
                    xc.ContiguousView, y.ContiguousView, x.Size(2), x.Size(3), size.H, size.W, y.Length);
                return y;
            }
        }

        /// <summary>Bilinear upsampling of x [N, C, H, W] to [N, C, OH, OW] (PyTorch's align_corners semantics). Kernel <c>upsample_bilinear2d</c>.</summary>
        /// <remarks>No backward yet: backward through the result raises <see cref="NoGradientException"/> naming <c>upsample_bilinear2d</c>.</remarks>
        public static Tensor UpsampleBilinear2d(Tensor x, (int H, int W) size, bool alignCorners = false)
        {
            var r = UpsampleBilinear2dCore(x, size, alignCorners);
            Autograd.RecordNoGradient("upsample_bilinear2d", r, x);
            return r;
        }

        private static Tensor UpsampleBilinear2dCore(Tensor x, (int H, int W) size, bool alignCorners = false)
        {
            var (xc, y) = UpsampleSetup("upsample_bilinear2d", x, size);
            using (xc)
            {
                if (y.Length == 0)
                    return y;
                var device = Validate.DeviceOf("upsample_bilinear2d", "x", x);
                var (xv, yv, h, w, total, align) = (xc.ContiguousView, y.ContiguousView, x.Size(2), x.Size(3), y.Length, alignCorners ? 1 : 0);
                if (HostParallel.Elements(device, "upsample_bilinear2d", total, 4, i => UpsampleKernels.BilinearAt(xv, yv, h, w, size.H, size.W, align, i)))
                    return y;
                device.Launch("upsample_bilinear2d", UpsampleKernels.Bilinear, LaunchShapes.Linear(device, y.Length, LaunchShapes.ElementwiseGroup(device)),
                    xc.ContiguousView, y.ContiguousView, x.Size(2), x.Size(3), size.H, size.W, alignCorners ? 1 : 0, y.Length);
                return y;
            }
        }

        private static (Tensor Input, Tensor Output) UpsampleSetup(string op, Tensor x, (int H, int W) size)
        {
            Validate.Input(op, "x", x);
            Validate.Rank(op, "x", x, 4);
            if (size.H < 1 || size.W < 1)
                throw new ShapeMismatchException(op, "size", "an output size ≥ 1×1", size.ToString());
            if (x.Size(2) < 1 || x.Size(3) < 1)
                throw new ShapeMismatchException(op, "x", "a non-empty plane (H, W ≥ 1)", GpuNetException.FormatShape(x.ShapeArray()));
            return (x.Contiguous(), Tensor.Empty(x.Device, x.Size(0), x.Size(1), size.H, size.W));
        }
    }
}

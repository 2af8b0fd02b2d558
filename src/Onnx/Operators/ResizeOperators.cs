namespace GpuNet.Onnx.Operators;

/// <summary>
/// Resize (nearest, linear, cubic over any axes, every coordinate transformation, nearest rounding mode,
/// exclude_outside and tf_crop_and_resize's extrapolation) and Upsample. Interpolation is separable: each resized axis
/// contributes taps (source index, weight) per output coordinate, and the result is the sum over tap combinations of
/// weight × gathered input — at most 2 gathers per linear axis and 4 per cubic axis.
/// </summary>
internal static class ResizeOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return new OpSpec("Resize", Resize, 10, c => c.String("mode", "nearest") is "nearest" or "linear" or "cubic" ? null : $"Resize mode '{c.String("mode", "")}' is not supported");
        yield return new OpSpec("Upsample", Upsample, 7, c => c.String("mode", "nearest") is "nearest" or "linear" or "bilinear" ? null : $"Upsample mode '{c.String("mode", "")}' is not supported");
    }

    private readonly record struct Setup(string Mode, string Transform, string Nearest, float CubicA, bool ExcludeOutside, float Extrapolation);

    private static OnnxTensor[] Resize(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        OnnxTensor? roi = null, scalesIn, sizesIn = null;
        if (c.Opset < 11)
            scalesIn = i[1];
        else
        {
            roi = i.Length > 1 ? i[1] : null;
            scalesIn = i.Length > 2 ? i[2] : null;
            sizesIn = i.Length > 3 ? i[3] : null;
        }
        int rank = x.Rank;
        var scales = scalesIn is { Length: > 0 } s ? s.Floats.Select(v => (double)v).ToArray() : null;
        var sizes = sizesIn is { Length: > 0 } z ? Values.Longs(c, z, "sizes").Select(v => (int)v).ToArray() : null;
        if (scales is null && sizes is null)
            throw c.Shape("scales/sizes", "one of scales or sizes", "neither");
        if (scales is not null && scales.Length != rank || sizes is not null && sizes.Length != rank)
            throw c.Shape("scales/sizes", $"{rank} values", (scales?.Length ?? sizes!.Length).ToString());
        var outDims = sizes ?? x.Shape.Select((d, k) => (int)Math.Floor(d * scales![k])).ToArray();
        scales ??= sizes!.Select((v, k) => (double)v / x.Dims[k]).ToArray();
        var roiValues = roi is { Length: > 0 } r ? r.Floats.Select(v => (double)v).ToArray() : null;
        var setup = new Setup(c.String("mode", "nearest"), c.Opset < 11 ? "asymmetric" : c.String("coordinate_transformation_mode", "half_pixel"),
            c.Opset < 11 ? "floor_legacy" : c.String("nearest_mode", "round_prefer_floor"), c.Float("cubic_coeff_a", -0.75f),
            c.Int("exclude_outside", 0) != 0, c.Float("extrapolation_value", 0f));
        return new[] { Interpolate(c, x, outDims, scales, roiValues, setup) };
    }

    private static OnnxTensor[] Upsample(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var scales = (c.Opset >= 9 ? i[1]!.Floats : c.Floats("scales") ?? throw c.Shape("scales", "the scales attribute", "none")).Select(v => (double)v).ToArray();
        if (scales.Length != x.Rank)
            throw c.Shape("scales", $"{x.Rank} values", scales.Length.ToString());
        var outDims = x.Shape.Select((d, k) => (int)Math.Floor(d * scales[k])).ToArray();
        string mode = c.String("mode", "nearest") == "nearest" ? "nearest" : "linear";
        return new[] { Interpolate(c, x, outDims, scales, null, new Setup(mode, "asymmetric", "floor_legacy", -0.75f, false, 0f)) };
    }

    private static OnnxTensor Interpolate(OpContext c, OnnxTensor x, int[] outDims, double[] scales, double[]? roi, Setup s)
    {
        if (Upsample2d(c, x, outDims, scales, s) is { } fast)
            return fast;
        int rank = x.Rank;
        var taps = new (long Index, double Weight)[rank][][];
        for (int d = 0; d < rank; d++)
            taps[d] = Enumerable.Range(0, outDims[d]).Select(o => AxisTaps(o, x.Dims[d], outDims[d], scales[d], roi is null ? (0, 1) : (roi[d], roi[d + rank]), s, x.Dims[d] == outDims[d] && scales[d] == 1)).ToArray();
        // Coordinates of one axis may have different tap counts (a crop's outside points have one): pad with zero weights.
        for (int d = 0; d < rank; d++)
        {
            int most = taps[d].Select(t => t.Length).DefaultIfEmpty(1).Max();
            taps[d] = taps[d].Select(t => t.Concat(Enumerable.Repeat((0L, 0.0), most - t.Length)).ToArray()).ToArray();
        }
        var strides = Values.Strides(x.Dims);
        int tapsPerAxis(int d) => outDims[d] == 0 ? 1 : taps[d][0].Length;
        int combos = Enumerable.Range(0, rank).Aggregate(1, (a, d) => a * tapsPerAxis(d));
        int n = Values.Count(outDims);
        Tensor? acc = null;
        var xt = x.On(c.Device);
        for (int combo = 0; combo < combos; combo++)
        {
            var pick = new int[rank];
            for (int d = rank - 1, rest = combo; d >= 0; d--)
            {
                pick[d] = rest % tapsPerAxis(d);
                rest /= tapsPerAxis(d);
            }
            var weights = new float[n];
            var map = new long[n];
            var idx = new int[rank];
            bool any = false;
            for (int k = 0; k < n; k++)
            {
                double w = 1;
                long at = 0;
                for (int d = 0; d < rank && w != 0; d++)
                {
                    var (src, tw) = taps[d][idx[d]][pick[d]];
                    w *= tw;
                    at = at < 0 || src < 0 ? -1 : at + src * strides[d];
                }
                (map[k], weights[k]) = (w == 0 ? 0 : at, (float)w);
                any |= w != 0;
                Values.Increment(idx, outDims);
            }
            if (!any)
                continue;
            var term = Ops.Mul(Values.GatherFlat(c, xt, map, s.Extrapolation), Tensor.FromArray(c.Device, weights, n));
            acc = acc is null ? term : Ops.Add(acc, term);
        }
        acc ??= Ops.Full(c.Device, 0f, Math.Max(n, 1));
        return Values.Float(n == 0 ? Tensor.Empty(c.Device, OnnxTensor.DeviceShape(outDims)) : acc, outDims);
    }

    /// <summary>
    /// What PyTorch's F.interpolate exports for images — a resize of H and W only, nearest (asymmetric, floor, integer
    /// factors) or linear (half-pixel or align-corners, nothing excluded) — runs on the upsample kernels, which compute the
    /// same source coordinates; anything else goes through the general taps.
    /// </summary>
    private static OnnxTensor? Upsample2d(OpContext c, OnnxTensor x, int[] outDims, double[] scales, Setup s)
    {
        // The kernels map through in/out; ONNX maps through 1/scale, the same only when the scale is exactly out/in.
        if (x.Rank != 4 || outDims[0] != x.Dims[0] || outDims[1] != x.Dims[1] || x.Length == 0 || outDims[2] == 0 || outDims[3] == 0 || s.ExcludeOutside
            || scales[2] != (double)outDims[2] / x.Dims[2] || scales[3] != (double)outDims[3] / x.Dims[3])
            return null;
        var size = (outDims[2], outDims[3]);
        if (s.Mode == "nearest" && s.Transform == "asymmetric" && s.Nearest is "floor" or "floor_legacy" && outDims[2] % x.Dims[2] == 0 && outDims[3] % x.Dims[3] == 0)
            return Values.Float(Ops.UpsampleNearest2d(x.On(c.Device), size), outDims);
        if (s.Mode == "linear" && (s.Transform == "half_pixel" || s.Transform == "pytorch_half_pixel" && outDims[2] > 1 && outDims[3] > 1 || s.Transform == "align_corners"))
            return Values.Float(Ops.UpsampleBilinear2d(x.On(c.Device), size, alignCorners: s.Transform == "align_corners"), outDims);
        return null;
    }

    /// <summary>
    /// The taps of output coordinate <paramref name="o"/> on one axis, following ONNX's reference: the source coordinate
    /// from the transformation mode; the interpolation coefficients of its fractional part (a whole coordinate counts as
    /// ratio 1, the left pixel preferred); the n source indices nearest to it (ties to the smaller), clamped to the edge,
    /// zeroed and renormalized outside with exclude_outside; index −1 (the extrapolation value) outside a crop.
    /// </summary>
    private static (long, double)[] AxisTaps(int o, int inSize, int outSize, double scale, (double Start, double End) roi, Setup s, bool identity)
    {
        if (identity)
            return new[] { ((long)o, 1.0) };
        double outWidth = scale * inSize, xo;
        switch (s.Transform)
        {
            case "align_corners": xo = outWidth == 1 ? 0 : o * (inSize - 1) / (outWidth - 1); break;
            case "asymmetric": xo = o / scale; break;
            case "pytorch_half_pixel": xo = outWidth != 1 ? (o + 0.5) / scale - 0.5 : -0.5; break;
            case "tf_half_pixel_for_nn": xo = (o + 0.5) / scale; break;
            case "tf_crop_and_resize":
                xo = outWidth != 1 ? roi.Start * (inSize - 1) + o * (roi.End - roi.Start) * (inSize - 1) / (outWidth - 1) : 0.5 * (roi.Start + roi.End) * (inSize - 1);
                if (xo < 0 || xo > inSize - 1)
                    return new[] { (-1L, 1.0) };
                break;
            default: xo = (o + 0.5) / scale - 0.5; break;
        }
        if (s.Mode == "nearest" && s.Nearest == "floor_legacy")
            return new[] { ((long)Math.Clamp(Math.Floor(xo), 0, inSize - 1), 1.0) };
        double floor = Math.Floor(xo), ratio = xo == floor ? 1 : xo - floor;
        double[] coeffs = s.Mode switch
        {
            "linear" => new[] { 1 - ratio, ratio },
            "cubic" => Cubic(ratio, s.CubicA),
            _ => s.Nearest switch
            {
                _ when xo == floor => new[] { 0.0, 1.0 },
                "round_prefer_ceil" => new[] { ratio < 0.5 ? 1.0 : 0, ratio >= 0.5 ? 1.0 : 0 },
                "floor" => new[] { 1.0, 0.0 },
                "ceil" => new[] { 0.0, 1.0 },
                _ => new[] { ratio <= 0.5 ? 1.0 : 0, ratio > 0.5 ? 1.0 : 0 },
            },
        };
        int taps = coeffs.Length, pad = (taps + 1) / 2;
        // The taps nearest to xo among the edge-padded indices [−pad, inSize − 1 + pad], ties to the smaller index.
        var near = Enumerable.Range(-pad, inSize + 2 * pad).OrderBy(j => Math.Abs(xo - j)).ThenBy(j => j).Take(taps).OrderBy(j => j).ToArray();
        if (s.ExcludeOutside)
        {
            for (int t = 0; t < taps; t++)
                if (near[t] < 0 || near[t] >= inSize)
                    coeffs[t] = 0;
            double sum = coeffs.Sum();
            for (int t = 0; t < taps; t++)
                coeffs[t] /= sum;
        }
        return near.Select((j, t) => ((long)Math.Clamp(j, 0, inSize - 1), coeffs[t])).ToArray();
    }

    /// <summary>Keys' cubic convolution coefficients of the 4 taps around a point at fraction <paramref name="r"/> (A = cubic_coeff_a).</summary>
    private static double[] Cubic(double r, double a)
    {
        double W(double t)
        {
            t = Math.Abs(t);
            return t <= 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : t < 2 ? ((a * t - 5 * a) * t + 8 * a) * t - 4 * a : 0;
        }
        return new[] { W(r + 1), W(r), W(1 - r), W(2 - r) };
    }
}

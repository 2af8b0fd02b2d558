namespace GpuNet.Kernels.Reference;

/// <summary>Pooling and resampling references over row-major [planes, H, W], written from PyTorch's definitions.</summary>
public static class PoolingReference
{
    /// <summary>PyTorch's pooling output size (floor or ceil mode; a ceil window must start inside the input or its left padding).</summary>
    public static int OutputSize(int size, int k, int s, int p, int d, bool ceil)
    {
        double raw = (size + 2.0 * p - d * (k - 1) - 1) / s;
        int o = (int)(ceil ? Math.Ceiling(raw) : Math.Floor(raw)) + 1;
        if (ceil && (o - 1) * s >= size + p)
            o--;
        return o;
    }

    /// <summary>Max pooling: values and flat argmax indices (first maximum wins).</summary>
    public static (double[] Values, double[] Indices) MaxPool(double[] x, int planes, int h, int w, (int H, int W) k, (int H, int W) s, (int H, int W) p, (int H, int W) d, bool ceil)
    {
        int oh = OutputSize(h, k.H, s.H, p.H, d.H, ceil), ow = OutputSize(w, k.W, s.W, p.W, d.W, ceil);
        var values = new double[planes * oh * ow];
        var indices = new double[values.Length];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    double best = double.NegativeInfinity;
                    int bestIndex = -1;
                    for (int a = 0; a < k.H; a++)
                        for (int b = 0; b < k.W; b++)
                        {
                            int ih = i * s.H - p.H + a * d.H, iw = j * s.W - p.W + b * d.W;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= w)
                                continue;
                            double v = x[(pl * h + ih) * w + iw];
                            // NaN propagates (PyTorch's max pool): the first NaN of the window is taken and kept.
                            if (bestIndex < 0 || v > best || (double.IsNaN(v) && !double.IsNaN(best)))
                            {
                                best = v;
                                bestIndex = ih * w + iw;
                            }
                        }
                    values[(pl * oh + i) * ow + j] = best;
                    indices[(pl * oh + i) * ow + j] = bestIndex;
                }
        return (values, indices);
    }

    /// <summary>Average pooling with PyTorch's divisor (count_include_pad: the window clipped to the padded input; else the valid taps).</summary>
    public static double[] AvgPool(double[] x, int planes, int h, int w, (int H, int W) k, (int H, int W) s, (int H, int W) p, bool ceil, bool countIncludePad)
    {
        int oh = OutputSize(h, k.H, s.H, p.H, 1, ceil), ow = OutputSize(w, k.W, s.W, p.W, 1, ceil);
        var y = new double[planes * oh * ow];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int hs = i * s.H - p.H, ws = j * s.W - p.W;
                    int he = Math.Min(hs + k.H, h + p.H), we = Math.Min(ws + k.W, w + p.W);
                    int poolSize = (he - hs) * (we - ws);
                    hs = Math.Max(hs, 0);
                    ws = Math.Max(ws, 0);
                    he = Math.Min(he, h);
                    we = Math.Min(we, w);
                    double sum = 0;
                    for (int a = hs; a < he; a++)
                        for (int b = ws; b < we; b++)
                            sum += x[(pl * h + a) * w + b];
                    y[(pl * oh + i) * ow + j] = sum / (countIncludePad ? poolSize : (he - hs) * (we - ws));
                }
        return y;
    }

    /// <summary>Adaptive pooling with bins [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉): average, or max with flat indices.</summary>
    public static (double[] Values, double[] Indices) Adaptive(double[] x, int planes, int h, int w, int oh, int ow, bool max)
    {
        var values = new double[planes * oh * ow];
        var indices = new double[values.Length];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int hs = (int)Math.Floor((double)i * h / oh), he = (int)Math.Ceiling((double)(i + 1) * h / oh);
                    int ws = (int)Math.Floor((double)j * w / ow), we = (int)Math.Ceiling((double)(j + 1) * w / ow);
                    double sum = 0, best = double.NegativeInfinity;
                    int bestIndex = -1;
                    for (int a = hs; a < he; a++)
                        for (int b = ws; b < we; b++)
                        {
                            double v = x[(pl * h + a) * w + b];
                            sum += v;
                            if (bestIndex < 0 || v > best)
                            {
                                best = v;
                                bestIndex = a * w + b;
                            }
                        }
                    values[(pl * oh + i) * ow + j] = max ? best : sum / ((he - hs) * (we - ws));
                    indices[(pl * oh + i) * ow + j] = bestIndex;
                }
        return (values, indices);
    }

    /// <summary>Nearest resampling with PyTorch's float32 source index: min(⌊dst·(in/out)⌋, in − 1).</summary>
    public static double[] Nearest(double[] x, int planes, int h, int w, int oh, int ow)
    {
        var y = new double[planes * oh * ow];
        float sh = (float)h / oh, sw = (float)w / ow;
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int a = Math.Min((int)MathF.Floor(i * sh), h - 1), b = Math.Min((int)MathF.Floor(j * sw), w - 1);
                    y[(pl * oh + i) * ow + j] = x[(pl * h + a) * w + b];
                }
        return y;
    }

    /// <summary>
    /// Output <paramref name="dst"/>'s source coordinate as PyTorch's area_pixel_compute_source_index computes it for float
    /// tensors — scale and coordinate in float32 — which is how the op defines it (its indices must agree with PyTorch's at bin
    /// edges, as <see cref="Nearest"/>'s do). Computed exactly instead, the coordinate of an odd ratio with align_corners differed
    /// by up to an ulp of the coordinate, which the blend turned into an error of ~5e-7 on outputs near zero (a failing seed:
    /// 1.04× the bound); the blend itself stays in double.
    /// </summary>
    private static double BilinearSource(int dst, int inSize, int outSize, bool alignCorners)
    {
        float scale = alignCorners ? (outSize > 1 ? (float)(inSize - 1) / (outSize - 1) : 0f) : (float)inSize / outSize;
        return alignCorners ? dst * scale : Math.Max((dst + 0.5f) * scale - 0.5f, 0f);
    }

    /// <summary>Bilinear resampling (PyTorch's area_pixel_compute_source_index, <see cref="BilinearSource"/>), blended in double.</summary>
    public static double[] Bilinear(double[] x, int planes, int h, int w, int oh, int ow, bool alignCorners)
    {
        double Source(int dst, int inSize, int outSize) => BilinearSource(dst, inSize, outSize, alignCorners);
        var y = new double[planes * oh * ow];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    double sy = Source(i, h, oh), sx = Source(j, w, ow);
                    int y0 = (int)sy, x0 = (int)sx, y1 = Math.Min(y0 + 1, h - 1), x1 = Math.Min(x0 + 1, w - 1);
                    double ly = sy - y0, lx = sx - x0;
                    double V(int a, int b) => x[(pl * h + a) * w + b];
                    y[(pl * oh + i) * ow + j] = (1 - ly) * ((1 - lx) * V(y0, x0) + lx * V(y0, x1)) + ly * ((1 - lx) * V(y1, x0) + lx * V(y1, x1));
                }
        return y;
    }

    /// <summary>Max pooling's gradient: each output's gradient added to the input its (reference) argmax index names.</summary>
    public static double[] MaxPoolBackward(double[] indices, double[] g, int planes, int h, int w)
    {
        var dx = new double[planes * h * w];
        int outPerPlane = g.Length / Math.Max(planes, 1);
        for (int o = 0; o < g.Length; o++)
            if (indices[o] >= 0)
                dx[o / outPerPlane * h * w + (int)indices[o]] += g[o];
        return dx;
    }

    /// <summary>Average pooling's gradient: each output's gradient spread over its window's valid taps, divided by the forward's divisor.</summary>
    public static double[] AvgPoolBackward(double[] g, int planes, int h, int w, (int H, int W) k, (int H, int W) s, (int H, int W) p, bool ceil, bool countIncludePad)
    {
        int oh = OutputSize(h, k.H, s.H, p.H, 1, ceil), ow = OutputSize(w, k.W, s.W, p.W, 1, ceil);
        var dx = new double[planes * h * w];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int hs = i * s.H - p.H, ws = j * s.W - p.W;
                    int he = Math.Min(hs + k.H, h + p.H), we = Math.Min(ws + k.W, w + p.W);
                    int poolSize = (he - hs) * (we - ws);
                    hs = Math.Max(hs, 0);
                    ws = Math.Max(ws, 0);
                    he = Math.Min(he, h);
                    we = Math.Min(we, w);
                    double share = g[(pl * oh + i) * ow + j] / (countIncludePad ? poolSize : (he - hs) * (we - ws));
                    for (int a = hs; a < he; a++)
                        for (int b = ws; b < we; b++)
                            dx[(pl * h + a) * w + b] += share;
                }
        return dx;
    }

    /// <summary>Adaptive average pooling's gradient: each bin's gradient spread evenly over the bin.</summary>
    public static double[] AdaptiveAvgBackward(double[] g, int planes, int h, int w, int oh, int ow)
    {
        var dx = new double[planes * h * w];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int hs = (int)Math.Floor((double)i * h / oh), he = (int)Math.Ceiling((double)(i + 1) * h / oh);
                    int ws = (int)Math.Floor((double)j * w / ow), we = (int)Math.Ceiling((double)(j + 1) * w / ow);
                    double share = g[(pl * oh + i) * ow + j] / ((he - hs) * (we - ws));
                    for (int a = hs; a < he; a++)
                        for (int b = ws; b < we; b++)
                            dx[(pl * h + a) * w + b] += share;
                }
        return dx;
    }

    /// <summary>Nearest resampling's gradient: each output's gradient added to its source element.</summary>
    public static double[] NearestBackward(double[] g, int planes, int h, int w, int oh, int ow)
    {
        var dx = new double[planes * h * w];
        float sh = (float)h / oh, sw = (float)w / ow;
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int a = Math.Min((int)MathF.Floor(i * sh), h - 1), b = Math.Min((int)MathF.Floor(j * sw), w - 1);
                    dx[(pl * h + a) * w + b] += g[(pl * oh + i) * ow + j];
                }
        return dx;
    }

    /// <summary>Bilinear resampling's gradient: each output's gradient scattered to its four neighbours with the forward's weights.</summary>
    public static double[] BilinearBackward(double[] g, int planes, int h, int w, int oh, int ow, bool alignCorners)
    {
        double Source(int dst, int inSize, int outSize) => BilinearSource(dst, inSize, outSize, alignCorners);
        var dx = new double[planes * h * w];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    double sy = Source(i, h, oh), sx = Source(j, w, ow);
                    int y0 = (int)sy, x0 = (int)sx, y1 = Math.Min(y0 + 1, h - 1), x1 = Math.Min(x0 + 1, w - 1);
                    double ly = sy - y0, lx = sx - x0, gv = g[(pl * oh + i) * ow + j];
                    dx[(pl * h + y0) * w + x0] += (1 - ly) * (1 - lx) * gv;
                    dx[(pl * h + y0) * w + x1] += (1 - ly) * lx * gv;
                    dx[(pl * h + y1) * w + x0] += ly * (1 - lx) * gv;
                    dx[(pl * h + y1) * w + x1] += ly * lx * gv;
                }
        return dx;
    }
}

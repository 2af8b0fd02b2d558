namespace GpuNet.Kernels.Reference;

/// <summary>Direct convolutions in double precision: the seven-deep loop nest, no im2col.</summary>
public static class ConvReference
{
    /// <summary>conv2d of row-major x [N, C, H, W] with w [K, C/groups, KH, KW]; padding (top, bottom, left, right).</summary>
    public static double[] Conv2d(double[] x, int[] xs, double[] w, int[] ws, double[]? bias, (int H, int W) stride, (int T, int B, int L, int R) pad,
        (int H, int W) dil, int groups, Func<double, double>? act = null)
    {
        int n = xs[0], c = xs[1], h = xs[2], wd = xs[3], k = ws[0], cg = ws[1], kh = ws[2], kw = ws[3], kg = k / groups;
        int oh = (h + pad.T + pad.B - dil.H * (kh - 1) - 1) / stride.H + 1, ow = (wd + pad.L + pad.R - dil.W * (kw - 1) - 1) / stride.W + 1;
        var y = new double[n * k * oh * ow];
        for (int b = 0; b < n; b++)
            for (int o = 0; o < k; o++)
            {
                int g = o / kg;
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        double sum = bias?[o] ?? 0;
                        for (int ci = 0; ci < cg; ci++)
                            for (int a = 0; a < kh; a++)
                                for (int e = 0; e < kw; e++)
                                {
                                    int ih = i * stride.H - pad.T + a * dil.H, iw = j * stride.W - pad.L + e * dil.W;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd)
                                        continue;
                                    sum += x[((b * c + g * cg + ci) * h + ih) * wd + iw] * w[((o * cg + ci) * kh + a) * kw + e];
                                }
                        y[((b * k + o) * oh + i) * ow + j] = act is null ? sum : act(sum);
                    }
            }
        return y;
    }

    /// <summary>conv2d's gradients (dx, dw, dbias) from the output gradient <paramref name="g"/>, as the scatter of the forward's
    /// loop nest: every tap that added w·x to an output adds g·w to dx and g·x to dw.</summary>
    public static (double[] DX, double[] DW, double[] DBias) Conv2dBackward(double[] x, int[] xs, double[] w, int[] ws, double[] g, (int H, int W) stride,
        (int T, int B, int L, int R) pad, (int H, int W) dil, int groups)
    {
        int n = xs[0], c = xs[1], h = xs[2], wd = xs[3], k = ws[0], cg = ws[1], kh = ws[2], kw = ws[3], kg = k / groups;
        int oh = (h + pad.T + pad.B - dil.H * (kh - 1) - 1) / stride.H + 1, ow = (wd + pad.L + pad.R - dil.W * (kw - 1) - 1) / stride.W + 1;
        var dx = new double[x.Length];
        var dw = new double[w.Length];
        var db = new double[k];
        for (int b = 0; b < n; b++)
            for (int o = 0; o < k; o++)
            {
                int grp = o / kg;
                for (int i = 0; i < oh; i++)
                    for (int j = 0; j < ow; j++)
                    {
                        double go = g[((b * k + o) * oh + i) * ow + j];
                        db[o] += go;
                        for (int ci = 0; ci < cg; ci++)
                            for (int a = 0; a < kh; a++)
                                for (int e = 0; e < kw; e++)
                                {
                                    int ih = i * stride.H - pad.T + a * dil.H, iw = j * stride.W - pad.L + e * dil.W;
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd)
                                        continue;
                                    int xi = ((b * c + grp * cg + ci) * h + ih) * wd + iw, wi = ((o * cg + ci) * kh + a) * kw + e;
                                    dx[xi] += go * w[wi];
                                    dw[wi] += go * x[xi];
                                }
                    }
            }
        return (dx, dw, db);
    }

    /// <summary>Transposed conv2d, as the scatter its definition is: every input pixel adds w·x into the output taps it reaches.</summary>
    public static double[] ConvTranspose2d(double[] x, int[] xs, double[] w, int[] ws, double[]? bias, int stride, int pad, int outPad, int dil, int groups)
    {
        int n = xs[0], cin = xs[1], h = xs[2], wd = xs[3], coutG = ws[1], kh = ws[2], kw = ws[3], cinG = cin / groups, cout = coutG * groups;
        int oh = (h - 1) * stride - 2 * pad + dil * (kh - 1) + outPad + 1, ow = (wd - 1) * stride - 2 * pad + dil * (kw - 1) + outPad + 1;
        var y = new double[n * cout * oh * ow];
        for (int b = 0; b < n; b++)
            for (int co = 0; co < cout; co++)
                for (int p = 0; p < oh * ow; p++)
                    y[(b * cout + co) * oh * ow + p] = bias?[co] ?? 0;
        for (int b = 0; b < n; b++)
            for (int ci = 0; ci < cin; ci++)
            {
                int g = ci / cinG;
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < wd; j++)
                    {
                        double v = x[((b * cin + ci) * h + i) * wd + j];
                        for (int cog = 0; cog < coutG; cog++)
                            for (int a = 0; a < kh; a++)
                                for (int e = 0; e < kw; e++)
                                {
                                    int oy = i * stride - pad + a * dil, ox = j * stride - pad + e * dil;
                                    if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                        continue;
                                    y[((b * cout + g * coutG + cog) * oh + oy) * ow + ox] += v * w[((ci * coutG + cog) * kh + a) * kw + e];
                                }
                    }
            }
        return y;
    }

    /// <summary>
    /// Every (column element, image element) pair of F.unfold / F.fold over x [N, C, H, W], in column order: column
    /// index first, then the flat image index it reads, or −1 where the tap falls in the padding.
    /// </summary>
    private static IEnumerable<(int Column, int Image)> Taps(int n, int c, int h, int wd, int kh, int kw, int stride, int pad, int dil)
    {
        int oh = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1, ow = (wd + 2 * pad - dil * (kw - 1) - 1) / stride + 1;
        int at = 0;
        for (int b = 0; b < n; b++)
            for (int ci = 0; ci < c; ci++)
                for (int a = 0; a < kh; a++)
                    for (int e = 0; e < kw; e++)
                        for (int i = 0; i < oh; i++)
                            for (int j = 0; j < ow; j++)
                            {
                                int ih = i * stride - pad + a * dil, iw = j * stride - pad + e * dil;
                                yield return (at++, ih >= 0 && ih < h && iw >= 0 && iw < wd ? ((b * c + ci) * h + ih) * wd + iw : -1);
                            }
    }

    /// <summary>conv_transpose2d's gradients (dx, dw, dbias), as the scatter of the forward's loop nest.</summary>
    public static (double[] DX, double[] DW, double[] DBias) ConvTranspose2dBackward(double[] x, int[] xs, double[] w, int[] ws, double[] g, int stride,
        int pad, int outPad, int dil, int groups)
    {
        int n = xs[0], cin = xs[1], h = xs[2], wd = xs[3], coutG = ws[1], kh = ws[2], kw = ws[3], cinG = cin / groups, cout = coutG * groups;
        int oh = (h - 1) * stride - 2 * pad + dil * (kh - 1) + outPad + 1, ow = (wd - 1) * stride - 2 * pad + dil * (kw - 1) + outPad + 1;
        var dx = new double[x.Length];
        var dw = new double[w.Length];
        var db = new double[cout];
        for (int b = 0; b < n; b++)
            for (int co = 0; co < cout; co++)
                for (int p = 0; p < oh * ow; p++)
                    db[co] += g[(b * cout + co) * oh * ow + p];
        for (int b = 0; b < n; b++)
            for (int ci = 0; ci < cin; ci++)
            {
                int grp = ci / cinG;
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < wd; j++)
                    {
                        int xi = ((b * cin + ci) * h + i) * wd + j;
                        for (int cog = 0; cog < coutG; cog++)
                            for (int a = 0; a < kh; a++)
                                for (int e = 0; e < kw; e++)
                                {
                                    int oy = i * stride - pad + a * dil, ox = j * stride - pad + e * dil;
                                    if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                        continue;
                                    int wi = ((ci * coutG + cog) * kh + a) * kw + e;
                                    double go = g[((b * cout + grp * coutG + cog) * oh + oy) * ow + ox];
                                    dx[xi] += go * w[wi];
                                    dw[wi] += go * x[xi];
                                }
                    }
            }
        return (dx, dw, db);
    }

    /// <summary>F.unfold: [N, C·KH·KW, OH·OW].</summary>
    public static double[] Unfold(double[] x, int[] xs, int kh, int kw, int stride, int pad, int dil)
    {
        var taps = Taps(xs[0], xs[1], xs[2], xs[3], kh, kw, stride, pad, dil).ToList();
        var col = new double[taps.Count];
        foreach (var (column, image) in taps)
            col[column] = image >= 0 ? x[image] : 0;
        return col;
    }

    /// <summary>F.fold: scatter-add of columns [N, C·KH·KW, L] into [N, C, H, W].</summary>
    public static double[] Fold(double[] col, int n, int c, int h, int wd, int kh, int kw, int stride, int pad, int dil)
    {
        var y = new double[n * c * h * wd];
        foreach (var (column, image) in Taps(n, c, h, wd, kh, kw, stride, pad, dil))
            if (image >= 0)
                y[image] += col[column];
        return y;
    }
}

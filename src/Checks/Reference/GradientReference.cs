namespace GpuNet.Kernels.Reference;

/// <summary>
/// Gradients of the references, in double precision, written from the calculus (not from the kernels), and a
/// finite-difference test that proves each of them against its reference forward before it is used as an oracle.
/// </summary>
public static class GradientReference
{
    /// <summary>Sums <paramref name="x"/> (of the broadcast shape <paramref name="xShape"/>) into the operand shape <paramref name="shape"/>.</summary>
    public static double[] SumToShape(double[] x, int[] xShape, int[] shape)
    {
        var r = new double[ShapeUtil.Product(shape)];
        for (long i = 0; i < x.Length; i++)
            r[MatMulReference.BatchOffset(ElementwiseReference.Unravel(i, xShape), shape)] += x[i];
        return r;
    }

    /// <summary>df/dx of each registered activation, by kernel name.</summary>
    public static Func<double, double> ActivationDerivative(string kernel, double parameter = 0) => kernel switch
    {
        "relu" => x => x > 0 ? 1 : 0,
        "relu6" => x => x > 0 && x < 6 ? 1 : 0,
        "leaky_relu" => x => x > 0 ? 1 : parameter,
        "gelu_erf" => x => 0.5 * (1 + ActivationReference.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI),
        "gelu_tanh" => x =>
        {
            double k = Math.Sqrt(2 / Math.PI), t = Math.Tanh(k * (x + 0.044715 * x * x * x));
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
        },
        "silu" => x => { double s = 1 / (1 + Math.Exp(-x)); return s * (1 + x * (1 - s)); },
        "sigmoid" => x => { double s = 1 / (1 + Math.Exp(-x)); return s * (1 - s); },
        "tanh" => x => 1 - Math.Tanh(x) * Math.Tanh(x),
        "softplus" => x => x > 20 ? 1 : 1 / (1 + Math.Exp(-x)),
        "elu" => x => x > 0 ? 1 : parameter * Math.Exp(x),
        "exp" => x => parameter * Math.Exp(parameter * x),
        "scale" => _ => parameter,
        _ => throw new ArgumentException($"no activation derivative named '{kernel}'"),
    };

    /// <summary>
    /// Gradients of C = alpha·op(A)·op(B) + bias (batches broadcast) for the output gradient g: dA = alpha·g·op(B)ᵀ and
    /// dB = alpha·op(A)ᵀ·g laid out as A and B (transposed back when an operand was transposed), summed over broadcast
    /// batches; dbias = Σ of g over every row.
    /// </summary>
    public static (double[] DA, double[] DB, double[] DBias) MatMul(double[] a, int[] aShape, bool transA, double[] b, int[] bShape, bool transB,
        double alpha, double[] g)
    {
        int m = transA ? aShape[^1] : aShape[^2], k = transA ? aShape[^2] : aShape[^1], n = transB ? bShape[^2] : bShape[^1];
        var batch = ElementwiseReference.BroadcastShape(aShape[..^2], bShape[..^2]);
        long batches = ShapeUtil.Product(batch);
        var dA = new double[batches * m * k];
        var dB = new double[batches * k * n];
        var dBias = new double[n];
        for (long z = 0; z < batches; z++)
        {
            var idx = ElementwiseReference.Unravel(z, batch);
            long aOff = MatMulReference.BatchOffset(idx, aShape[..^2]) * m * k, bOff = MatMulReference.BatchOffset(idx, bShape[..^2]) * k * n;
            double A(int i, int p) => transA ? a[aOff + p * m + i] : a[aOff + i * k + p];
            double B(int p, int j) => transB ? b[bOff + j * k + p] : b[bOff + p * n + j];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double gv = g[(z * m + i) * n + j];
                    dBias[j] += gv;
                    for (int p = 0; p < k; p++)
                    {
                        // ∂C[i,j]/∂op(A)[i,p] = alpha·op(B)[p,j]; written at A's own layout position.
                        dA[z * m * k + (transA ? p * m + i : i * k + p)] += alpha * gv * B(p, j);
                        dB[z * k * n + (transB ? j * k + p : p * n + j)] += alpha * gv * A(i, p);
                    }
                }
        }
        var fullA = batch.Append(transA ? k : m).Append(transA ? m : k).ToArray();
        var fullB = batch.Append(transB ? n : k).Append(transB ? k : n).ToArray();
        return (SumToShape(dA, fullA, aShape), SumToShape(dB, fullB, bShape), dBias);
    }

    /// <summary>Gradients of f(a, b) with broadcasting, from the partial derivatives ∂f/∂a and ∂f/∂b.</summary>
    public static (double[] DA, double[] DB) Binary(double[] a, int[] shapeA, double[] b, int[] shapeB, double[] g,
        Func<double, double, double> dfda, Func<double, double, double> dfdb)
    {
        var shape = ElementwiseReference.BroadcastShape(shapeA, shapeB);
        var fa = new double[g.Length];
        var fb = new double[g.Length];
        for (long i = 0; i < g.Length; i++)
        {
            var idx = ElementwiseReference.Unravel(i, shape);
            double av = ElementwiseReference.ReadBroadcast(a, shapeA, idx), bv = ElementwiseReference.ReadBroadcast(b, shapeB, idx);
            fa[i] = g[i] * dfda(av, bv);
            fb[i] = g[i] * dfdb(av, bv);
        }
        return (SumToShape(fa, shape, shapeA), SumToShape(fb, shape, shapeB));
    }

    /// <summary>Softmax (or log-softmax) backward of [rows, cols] from the output y: y(g − Σgy) or g − eʸΣg.</summary>
    public static double[] Softmax(double[] y, double[] g, int rows, int cols, bool log)
    {
        var dx = new double[y.Length];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int j = 0; j < cols; j++)
                s += log ? g[r * cols + j] : g[r * cols + j] * y[r * cols + j];
            for (int j = 0; j < cols; j++)
            {
                int i = r * cols + j;
                dx[i] = log ? g[i] - Math.Exp(y[i]) * s : y[i] * (g[i] - s);
            }
        }
        return dx;
    }

    /// <summary>
    /// Gradients of a normalization over rows whose element j sits at <paramref name="at"/>(row, j) of x and uses affine entry
    /// <paramref name="affine"/>(row, j): y = x̂·γ + β with x̂ = (x − mean)·rstd (x·rstd for RMSNorm), statistics in double.
    /// dx = rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂)) (no mean(dŷ) term for RMSNorm), dγ = Σ dy·x̂, dβ = Σ dy.
    /// </summary>
    public static (double[] DX, double[] DGamma, double[] DBeta) Normalize(double[] x, double[]? gamma, double[] g, int rows, int cols,
        Func<int, int, int> at, Func<int, int, int> affine, int affineLength, double eps, bool rms)
    {
        var dx = new double[x.Length];
        var dGamma = new double[affineLength];
        var dBeta = new double[affineLength];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, sq = 0;
            for (int j = 0; j < cols; j++)
                mean += x[at(r, j)];
            mean /= cols;
            for (int j = 0; j < cols; j++)
                sq += rms ? x[at(r, j)] * x[at(r, j)] : (x[at(r, j)] - mean) * (x[at(r, j)] - mean);
            double rstd = 1 / Math.Sqrt(sq / cols + eps), sumDy = 0, sumDyX = 0;
            double XHat(int j) => (rms ? x[at(r, j)] : x[at(r, j)] - mean) * rstd;
            double DyHat(int j) => g[at(r, j)] * (gamma is null ? 1 : gamma[affine(r, j)]);
            for (int j = 0; j < cols; j++)
            {
                sumDy += DyHat(j);
                sumDyX += DyHat(j) * XHat(j);
                dGamma[affine(r, j)] += g[at(r, j)] * XHat(j);
                dBeta[affine(r, j)] += g[at(r, j)];
            }
            for (int j = 0; j < cols; j++)
                dx[at(r, j)] = rstd * (DyHat(j) - (rms ? 0 : sumDy / cols) - XHat(j) * sumDyX / cols);
        }
        return (dx, dGamma, dBeta);
    }

    /// <summary>Per-row cross-entropy with label smoothing and an ignored class (loss 0, weight 0 for ignored rows).</summary>
    public static double[] CrossEntropyRows(double[] x, double[] target, int rows, int classes, int ignoreIndex, double smoothing)
    {
        var loss = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            int t = (int)target[r];
            if (t == ignoreIndex)
                continue;
            double max = double.NegativeInfinity, sum = 0, total = 0;
            for (int j = 0; j < classes; j++)
                max = Math.Max(max, x[r * classes + j]);
            for (int j = 0; j < classes; j++)
            {
                sum += Math.Exp(x[r * classes + j] - max);
                total += x[r * classes + j];
            }
            double lse = max + Math.Log(sum);
            loss[r] = lse - (1 - smoothing) * x[r * classes + t] - smoothing / classes * total;
        }
        return loss;
    }

    /// <summary>d(Σ g_r·loss_r)/dx of <see cref="CrossEntropyRows"/>: g_r·(softmax − (1 − ε)·onehot − ε/C), 0 on ignored rows.</summary>
    public static double[] CrossEntropyRowsBackward(double[] x, double[] target, double[] g, int rows, int classes, int ignoreIndex, double smoothing)
    {
        var dx = new double[x.Length];
        var p = SoftmaxReference.Softmax(x, rows, classes);
        for (int r = 0; r < rows; r++)
        {
            int t = (int)target[r];
            if (t == ignoreIndex)
                continue;
            for (int j = 0; j < classes; j++)
                dx[r * classes + j] = g[r] * (p[r * classes + j] - (j == t ? 1 - smoothing : 0) - smoothing / classes);
        }
        return dx;
    }

    /// <summary>
    /// Proves <paramref name="gradients"/> = ∂(Σ g·forward(inputs))/∂inputs by central differences of the double forward at up to
    /// <paramref name="samples"/> coordinates per input (h = 1e-6·max(1, |x|)); throws when any coordinate is off by more than
    /// 1e-5 of the gradient's RMS (plus 1e-9). Inputs whose gradient is null (indices, labels) are not differentiated.
    /// </summary>
    /// <exception cref="InvalidOperationException">The reference gradient disagrees with its own forward.</exception>
    public static void ProveByFiniteDifferences(string what, Func<double[][], double[]> forward, double[][] inputs, double[] g, double[]?[] gradients,
        int samples = 24)
    {
        for (int k = 0; k < inputs.Length; k++)
        {
            var grad = gradients[k];
            if (grad is null)
                continue;
            double rms = Math.Sqrt(grad.Sum(v => v * v) / Math.Max(1, grad.Length));
            int step = Math.Max(1, inputs[k].Length / samples);
            for (int i = 0; i < inputs[k].Length; i += step)
            {
                double x0 = inputs[k][i], h = 1e-6 * Math.Max(1, Math.Abs(x0));
                inputs[k][i] = x0 + h;
                var up = forward(inputs);
                inputs[k][i] = x0 - h;
                var down = forward(inputs);
                inputs[k][i] = x0;
                var here = forward(inputs);
                // Σ g·(f₊ − f₋), not Σ g·f₊ − Σ g·f₋: outputs the coordinate does not touch cancel exactly, so a large output
                // (66K log-probabilities of size ~7) adds no rounding error of its own size to the difference.
                double diff = 0, right = 0, left = 0;
                for (int j = 0; j < up.Length; j++)
                {
                    diff += g[j] * (up[j] - down[j]);
                    right += g[j] * (up[j] - here[j]);
                    left += g[j] * (here[j] - down[j]);
                }
                // A kink within ±h (hardswish's at 3 with x = 3.0000029: one seed in 2,000) leaves the two one-sided slopes
                // apart, and the derivative there a choice, not a value: such a coordinate proves nothing and is skipped.
                if (Math.Abs(right - left) > 1e-3 * (Math.Abs(right) + Math.Abs(left)) + 1e-12)
                    continue;
                double fd = diff / (2 * h);
                if (!(Math.Abs(fd - grad[i]) <= 1e-5 * rms + 1e-9 + 1e-6 * Math.Abs(fd)))
                    throw new InvalidOperationException($"{what}: reference gradient of input {k} at {i} is {grad[i]:G9}, central differences give {fd:G9}");
            }
        }
    }
}

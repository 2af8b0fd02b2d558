namespace GpuNet.Layers;

/// <summary>The mean and covariance of a set of feature vectors, in double precision on the host.</summary>
/// <param name="Mean">The mean vector [d].</param>
/// <param name="Covariance">The unbiased covariance [d, d] (divided by n − 1).</param>
/// <param name="Count">How many vectors.</param>
public sealed record FeatureStatistics(double[] Mean, double[,] Covariance, int Count)
{
    /// <summary>The dimension d.</summary>
    public int Dimension => Mean.Length;

    /// <summary>Statistics of <paramref name="count"/> row vectors of <paramref name="dimension"/> floats each (row-major).</summary>
    public static FeatureStatistics Of(ReadOnlySpan<float> features, int count, int dimension)
    {
        const string op = "feature_statistics";
        if (count < 2 || dimension < 1 || features.Length != (long)count * dimension)
            throw new InvalidArgumentException(op, "features", "at least two rows of the given dimension (count · dimension floats)",
                $"{features.Length} floats for {count} × {dimension}");
        var mean = new double[dimension];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < dimension; j++)
                mean[j] += features[i * dimension + j];
        for (int j = 0; j < dimension; j++)
            mean[j] /= count;
        // Centred first (two passes): the one-pass Σx·xᵀ − n·μ·μᵀ cancels catastrophically for features far from 0.
        var centred = new double[(long)count * dimension];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < dimension; j++)
                centred[(long)i * dimension + j] = features[i * dimension + j] - mean[j];
        var cov = new double[dimension, dimension];
        Parallel.For(0, dimension, a =>
        {
            for (int b = a; b < dimension; b++)
            {
                double sum = 0;
                for (int i = 0; i < count; i++)
                    sum += centred[(long)i * dimension + a] * centred[(long)i * dimension + b];
                cov[a, b] = cov[b, a] = sum / (count - 1);
            }
        });
        return new FeatureStatistics(mean, cov, count);
    }
}

/// <summary>
/// The Fréchet distance between two Gaussians fitted to feature sets (Heusel et al.'s FID, here in the feature space of
/// GpuNet's own Fashion-MNIST classifier): ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2·tr (Σ₁^½ Σ₂ Σ₁^½)^½, all in double precision on
/// the host. The matrix square roots come from symmetric eigendecompositions (cyclic Jacobi), so the trace term is the sum
/// of the square roots of a symmetric positive semi-definite matrix's eigenvalues — no complex parts to discard, as scipy's
/// sqrtm of the non-symmetric Σ₁Σ₂ has.
/// </summary>
public static class FrechetDistance
{
    /// <summary>The distance between the Gaussians of <paramref name="a"/> and <paramref name="b"/> (same dimension).</summary>
    public static double Between(FeatureStatistics a, FeatureStatistics b)
    {
        Validate.NotNull("frechet_distance", "a", a);
        Validate.NotNull("frechet_distance", "b", b);
        int d = a.Dimension;
        if (b.Dimension != d)
            throw new ShapeMismatchException("frechet_distance", "b", $"statistics of dimension {d}", $"dimension {b.Dimension}");
        double meanTerm = 0, traces = 0;
        for (int i = 0; i < d; i++)
        {
            double diff = a.Mean[i] - b.Mean[i];
            meanTerm += diff * diff;
            traces += a.Covariance[i, i] + b.Covariance[i, i];
        }
        var rootA = SquareRoot(a.Covariance);
        var product = Multiply(Multiply(rootA, b.Covariance), rootA);
        Symmetrize(product);
        var (values, _) = SymmetricEigen(product);
        double crossTrace = values.Sum(v => Math.Sqrt(Math.Max(v, 0)));
        return Math.Max(0, meanTerm + traces - 2 * crossTrace);
    }

    /// <summary>The symmetric positive semi-definite square root of <paramref name="m"/> (negative eigenvalues, rounding
    /// of a singular covariance, taken as 0).</summary>
    internal static double[,] SquareRoot(double[,] m)
    {
        var (values, vectors) = SymmetricEigen(m);
        int n = values.Length;
        var root = new double[n, n];
        for (int k = 0; k < n; k++)
        {
            double s = Math.Sqrt(Math.Max(values[k], 0));
            if (s == 0)
                continue;
            for (int i = 0; i < n; i++)
            {
                double vi = vectors[i, k] * s;
                for (int j = 0; j < n; j++)
                    root[i, j] += vi * vectors[j, k];
            }
        }
        return root;
    }

    /// <summary>
    /// Eigenvalues and eigenvectors (columns) of a symmetric matrix by cyclic Jacobi rotations, until the off-diagonal mass
    /// is below 1e-15 of the total (converges quadratically: 6–10 sweeps at d = 128).
    /// </summary>
    internal static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] m)
    {
        int n = m.GetLength(0);
        var a = (double[,])m.Clone();
        var v = new double[n, n];
        for (int i = 0; i < n; i++)
            v[i, i] = 1;
        double total = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                total += a[i, j] * a[i, j];
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double off = 0;
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                    off += 2 * a[i, j] * a[i, j];
            if (off <= 1e-30 * total || off == 0)
                break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p, q];
                    if (Math.Abs(apq) < 1e-300)
                        continue;
                    // The rotation that zeroes a[p, q]: tan of its angle from θ = (a_qq − a_pp) / 2a_pq, the smaller root.
                    double theta = (a[q, q] - a[p, p]) / (2 * apq);
                    double t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double akp = a[k, p], akq = a[k, q];
                        a[k, p] = c * akp - s * akq;
                        a[k, q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double apk = a[p, k], aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk;
                        a[q, k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k, p], vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq;
                        v[k, q] = s * vkp + c * vkq;
                    }
                }
        }
        var values = new double[n];
        for (int i = 0; i < n; i++)
            values[i] = a[i, i];
        return (values, v);
    }

    private static double[,] Multiply(double[,] x, double[,] y)
    {
        int n = x.GetLength(0);
        var r = new double[n, n];
        Parallel.For(0, n, i =>
        {
            for (int k = 0; k < n; k++)
            {
                double xik = x[i, k];
                if (xik == 0)
                    continue;
                for (int j = 0; j < n; j++)
                    r[i, j] += xik * y[k, j];
            }
        });
        return r;
    }

    private static void Symmetrize(double[,] m)
    {
        int n = m.GetLength(0);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                m[i, j] = m[j, i] = 0.5 * (m[i, j] + m[j, i]);
    }
}

/// <summary>
/// The feature space of the Fréchet distances GpuNet reports for Fashion-MNIST generators: the penultimate layer (the
/// 128 ReLU units after the first Linear of the classifier head) of the classifier `train cnn` trains
/// (<see cref="ModelZoo.ImageCnn"/>), run in eval mode on images in [0, 1] standardized as that classifier's training data
/// was. It also classifies (for conditional generators' accuracy by requested class).
/// </summary>
public sealed class ClassifierFeatures : IDisposable
{
    private readonly Sequential _model;
    private readonly Layer _features;
    private readonly Layer[] _head;
    private readonly Layer[] _rest;
    private readonly float _mean, _std;

    /// <summary>The classifier (<see cref="ModelZoo.ImageCnn"/>'s structure, its weights loaded) and the standardization of its
    /// inputs (pixel mean and standard deviation of its training images, in [0, 1] units). The model is owned from here on.</summary>
    public ClassifierFeatures(Sequential classifier, double pixelMean, double pixelStd)
    {
        _model = Validate.NotNull("classifier_features", "classifier", classifier);
        if (classifier.Layers.Count != 2 || classifier.Layers[1] is not Sequential head || head.Layers.Count < 4)
            throw new InvalidArgumentException("classifier_features", "classifier", "ModelZoo.ImageCnn's structure (features, classifier)", $"{classifier.Layers.Count} layers");
        _features = classifier.Layers[0];
        _head = head.Layers.Take(3).ToArray();
        _rest = head.Layers.Skip(3).ToArray();
        (_mean, _std) = ((float)pixelMean, (float)pixelStd);
        Dimension = ((Linear)_head[1]).Weight.Size(0);
        _model.Eval();
    }

    /// <summary>Loads the classifier `train cnn` wrote (cnn.safetensors) with the given input standardization.</summary>
    public static ClassifierFeatures Load(Device device, string weights, double pixelMean, double pixelStd)
    {
        var model = ModelZoo.ImageCnn(device);
        try
        {
            using var file = SafeTensors.Open(weights);
            model.Load(file);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new ClassifierFeatures(model, pixelMean, pixelStd);
    }

    /// <summary>Features per image.</summary>
    public int Dimension { get; }

    /// <summary>The device the classifier runs on.</summary>
    public Device Device => _model.Device;

    /// <summary>Features [count, <see cref="Dimension"/>] and the predicted class of <paramref name="count"/> 1×28×28 images
    /// in [0, 1] (row-major), in batches of <paramref name="batch"/>.</summary>
    public (float[] Features, int[] Classes) Extract(ReadOnlySpan<float> pixels, int count, int batch = 500)
    {
        const int size = 28 * 28;
        if (pixels.Length != (long)count * size)
            throw new ShapeMismatchException("classifier_features", "pixels", $"{count} images of 1×28×28 ({(long)count * size} floats)", $"{pixels.Length} floats");
        var features = new float[(long)count * Dimension];
        var classes = new int[count];
        using var _ = Autograd.NoGrad();
        var standardized = new float[Math.Min(batch, count) * size];
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            for (int i = 0; i < n * size; i++)
                standardized[i] = (pixels[start * size + i] - _mean) / _std;
            using var scope = Device.Scope();
            var x = Tensor.FromArray(Device, standardized.AsSpan(0, n * size), n, 1, 28, 28);
            var h = _features.Forward(x);
            foreach (var layer in _head)
                h = layer.Forward(h);
            h.ToArray().CopyTo(features.AsSpan(start * Dimension));
            var logits = h;
            foreach (var layer in _rest)
                logits = layer.Forward(logits);
            var predicted = Ops.ArgMax(logits, -1).ToArray();
            for (int i = 0; i < n; i++)
                classes[start + i] = (int)predicted[i];
        }
        return (features, classes);
    }

    /// <summary>The statistics of <see cref="Extract"/>'s features of these images.</summary>
    public FeatureStatistics Statistics(ReadOnlySpan<float> pixels, int count) => FeatureStatistics.Of(Extract(pixels, count).Features, count, Dimension);

    /// <summary>Disposes the classifier.</summary>
    public void Dispose() => _model.Dispose();
}

using System.Buffers.Binary;
using System.IO.Compression;

namespace GpuNet.Layers;

/// <summary>A dataset file that is missing or not well formed: the message names the file and what is wrong with it.</summary>
public sealed class DatasetException(string path, string problem)
    : GpuNetException("dataset_load", $"dataset_load: {path}: {problem}")
{
    /// <summary>The file (or directory).</summary>
    public string Path { get; } = path;
}

/// <summary>
/// Images and their class labels held on the host, ready to batch: pixels [N, C, H, W] as floats (already normalized),
/// labels as class indices.
/// </summary>
public sealed class ImageDataset
{
    /// <summary>Creates the dataset; <paramref name="pixels"/> holds count·channels·height·width values.</summary>
    public ImageDataset(float[] pixels, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        if (pixels.LongLength != (long)labels.Length * channels * height * width)
            throw new ShapeMismatchException("image_dataset", "pixels", $"{labels.Length}·{channels}·{height}·{width} values", pixels.Length.ToString());
        foreach (var label in labels)
            if (label < 0 || label >= classNames.Count)
                throw new InvalidArgumentException("image_dataset", "labels", $"class indices in [0, {classNames.Count})", label.ToString());
        (Pixels, Labels, Channels, Height, Width, ClassNames) = (pixels, labels, channels, height, width, classNames);
    }

    /// <summary>[N, C, H, W] values.</summary>
    public float[] Pixels { get; }

    /// <summary>N class indices.</summary>
    public int[] Labels { get; }

    /// <summary>Images.</summary>
    public int Count => Labels.Length;

    /// <summary>Channels per image.</summary>
    public int Channels { get; }

    /// <summary>Image height.</summary>
    public int Height { get; }

    /// <summary>Image width.</summary>
    public int Width { get; }

    /// <summary>Values per image.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>The class names, by index.</summary>
    public IReadOnlyList<string> ClassNames { get; }
}

/// <summary>
/// The IDX format of MNIST-style datasets (Yann LeCun's): magic 0x0000 0x08 ndims, ndims big-endian int32 sizes, then the
/// unsigned bytes; read plain or gzip-compressed (the Debian packages ship <c>.gz</c>).
/// </summary>
public static class IdxFile
{
    /// <summary>The sizes and the bytes of an unsigned-byte IDX file.</summary>
    /// <exception cref="DatasetException">The file is missing, truncated, or not an unsigned-byte IDX file.</exception>
    public static (int[] Shape, byte[] Data) Read(string path)
    {
        if (!File.Exists(path))
            throw new DatasetException(path, "no such file");
        byte[] raw;
        try
        {
            using var file = File.OpenRead(path);
            using var buffer = new MemoryStream();
            bool gzip = file.ReadByte() == 0x1F && file.ReadByte() == 0x8B;
            file.Position = 0;
            if (gzip)
            {
                using var unzip = new GZipStream(file, CompressionMode.Decompress);
                unzip.CopyTo(buffer);
            }
            else
                file.CopyTo(buffer);
            raw = buffer.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new DatasetException(path, $"not a readable gzip stream ({e.Message})");
        }
        if (raw.Length < 4 || raw[0] != 0 || raw[1] != 0)
            throw new DatasetException(path, "not an IDX file (the magic number does not start with two zero bytes)");
        if (raw[2] != 0x08)
            throw new DatasetException(path, $"element type 0x{raw[2]:X2}; expected 0x08 (unsigned byte)");
        int dims = raw[3];
        if (dims < 1 || dims > 4 || raw.Length < 4 + 4 * dims)
            throw new DatasetException(path, $"a header of {dims} dimensions that the file does not hold");
        var shape = new int[dims];
        long count = 1;
        for (int i = 0; i < dims; i++)
        {
            shape[i] = BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 + 4 * i));
            if (shape[i] < 0)
                throw new DatasetException(path, $"dimension {i} is negative ({shape[i]})");
            count *= shape[i];
        }
        long expected = 4 + 4L * dims + count;
        if (raw.Length != expected)
            throw new DatasetException(path, $"{raw.Length} bytes; the header {GpuNetException.FormatShape(shape)} needs {expected}");
        return (shape, raw.AsSpan(4 + 4 * dims).ToArray());
    }
}

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 60,000 training and 10,000 test 28×28 grey images of ten kinds of
/// clothing, read from the IDX files of Debian's <c>dataset-fashion-mnist</c> (or any directory holding the same four files).
/// </summary>
public static class FashionMnist
{
    /// <summary>Where Debian's package installs the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten classes, by label.</summary>
    public static readonly IReadOnlyList<string> ClassNames =
        new[] { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" };

    /// <summary>
    /// Both splits, pixels scaled to [0, 1] and standardized with the training split's mean and standard deviation (as
    /// torchvision's ToTensor then Normalize), or left in [0, 1] when <paramref name="standardize"/> is false (what generative
    /// models fit). <paramref name="limit"/> keeps the first images of each split (for quick runs).
    /// </summary>
    /// <exception cref="DatasetException">A file is missing or malformed; the message says which and how to get them.</exception>
    public static (ImageDataset Train, ImageDataset Test) Load(string? directory = null, int? limit = null, bool standardize = true)
    {
        directory ??= DefaultDirectory;
        if (!Directory.Exists(directory))
            throw new DatasetException(directory, "no such directory; install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass the directory holding the four IDX files");
        var (trainImages, trainLabels) = ReadSplit(directory, "train", limit);
        var (testImages, testLabels) = ReadSplit(directory, "t10k", limit);
        double sum = 0, squares = 0;
        foreach (byte b in trainImages)
        {
            double v = b / 255.0;
            sum += v;
            squares += v * v;
        }
        double mean = sum / Math.Max(trainImages.Length, 1), std = Math.Sqrt(Math.Max(squares / Math.Max(trainImages.Length, 1) - mean * mean, 1e-12));
        if (!standardize)
            (mean, std) = (0, 1);
        return (Dataset(trainImages, trainLabels, mean, std), Dataset(testImages, testLabels, mean, std));
    }

    /// <summary>The mean and standard deviation of a split's pixels in [0, 1] units: what <see cref="Load"/> standardizes with,
    /// given the training split loaded unstandardized.</summary>
    public static (double Mean, double Std) PixelStatistics(ImageDataset unitImages)
    {
        Validate.NotNull("fashion_mnist", "unitImages", unitImages);
        double sum = 0, squares = 0;
        foreach (float v in unitImages.Pixels)
        {
            sum += v;
            squares += (double)v * v;
        }
        int n = Math.Max(unitImages.Pixels.Length, 1);
        double mean = sum / n;
        return (mean, Math.Sqrt(Math.Max(squares / n - mean * mean, 1e-12)));
    }

    private static (byte[] Images, byte[] Labels) ReadSplit(string directory, string split, int? limit)
    {
        string imagesPath = Find(directory, $"{split}-images-idx3-ubyte"), labelsPath = Find(directory, $"{split}-labels-idx1-ubyte");
        var (imageShape, images) = IdxFile.Read(imagesPath);
        var (labelShape, labels) = IdxFile.Read(labelsPath);
        if (imageShape.Length != 3 || imageShape[1] != 28 || imageShape[2] != 28)
            throw new DatasetException(imagesPath, $"images {GpuNetException.FormatShape(imageShape)}; expected [N, 28, 28]");
        if (labelShape.Length != 1 || labelShape[0] != imageShape[0])
            throw new DatasetException(labelsPath, $"labels {GpuNetException.FormatShape(labelShape)}; expected [{imageShape[0]}] (one per image)");
        int bad = Array.FindIndex(labels, l => l >= ClassNames.Count);
        if (bad >= 0)
            throw new DatasetException(labelsPath, $"label {labels[bad]} at {bad}; expected classes 0–{ClassNames.Count - 1}");
        int n = Math.Min(labels.Length, limit ?? int.MaxValue);
        return (images.AsSpan(0, n * 28 * 28).ToArray(), labels.AsSpan(0, n).ToArray());
    }

    /// <summary>The file, compressed or not.</summary>
    private static string Find(string directory, string name)
    {
        foreach (var candidate in new[] { name + ".gz", name })
        {
            string path = Path.Combine(directory, candidate);
            if (File.Exists(path))
                return path;
        }
        throw new DatasetException(Path.Combine(directory, name + ".gz"), "no such file (nor uncompressed); install Debian's dataset-fashion-mnist");
    }

    private static ImageDataset Dataset(byte[] images, byte[] labels, double mean, double std)
    {
        var pixels = new float[images.Length];
        float scale = (float)(1 / (255.0 * std)), shift = (float)(mean / std);
        for (int i = 0; i < pixels.Length; i++)
            pixels[i] = images[i] * scale - shift;
        return new ImageDataset(pixels, Array.ConvertAll(labels, l => (int)l), 1, 28, 28, ClassNames);
    }
}

/// <summary>One minibatch on the device: images [B, C, H, W] and labels [B] (int32 class indices). Dispose it when done.</summary>
public sealed class ImageBatch(Tensor images, Tensor labels, int[] hostLabels) : IDisposable
{
    /// <summary>[B, C, H, W].</summary>
    public Tensor Images { get; } = images;

    /// <summary>[B] int32 class indices (what Ops.CrossEntropy takes).</summary>
    public Tensor Labels { get; } = labels;

    /// <summary>The labels on the host (for accuracy without a device read).</summary>
    public int[] HostLabels { get; } = hostLabels;

    /// <summary>B (the last batch of an epoch may be smaller).</summary>
    public int Count => HostLabels.Length;

    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>
/// Minibatches of an <see cref="ImageDataset"/> as device tensors (torch.utils.data.DataLoader's role): a seeded shuffle per
/// epoch (the same seed and epoch give the same order), the last partial batch kept unless <c>dropLast</c>, and the next
/// batch gathered on a worker thread while the caller computes on the current one.
/// </summary>
public sealed class DataLoader
{
    private readonly ImageDataset _data;
    private readonly Device _device;

    /// <summary>Creates the loader.</summary>
    /// <exception cref="InvalidArgumentException">A batch size below 1.</exception>
    public DataLoader(Device device, ImageDataset data, int batchSize, bool shuffle = true, ulong seed = 0, bool dropLast = false)
    {
        if (batchSize < 1)
            throw new InvalidArgumentException("data_loader", "batch_size", "at least 1", batchSize.ToString());
        (_device, _data, BatchSize, Shuffle, Seed, DropLast) = (Validate.NotNull("data_loader", "device", device), Validate.NotNull("data_loader", "data", data), batchSize, shuffle, seed, dropLast);
    }

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch visits the images in a fresh seeded order.</summary>
    public bool Shuffle { get; }

    /// <summary>The shuffle's seed.</summary>
    public ulong Seed { get; }

    /// <summary>Whether a last batch smaller than <see cref="BatchSize"/> is skipped.</summary>
    public bool DropLast { get; }

    /// <summary>Batches per epoch.</summary>
    public int BatchCount => DropLast ? _data.Count / BatchSize : (_data.Count + BatchSize - 1) / BatchSize;

    /// <summary>The order epoch <paramref name="epoch"/> visits the images in: Fisher–Yates on Philox draws of (seed, epoch).</summary>
    public int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, _data.Count).ToArray();
        if (!Shuffle)
            return order;
        ulong stream = Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1));
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = (int)(((ulong)Philox.Word(stream, i) * (ulong)(i + 1)) >> 32);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>The batches of one epoch, in order; each is the caller's to dispose.</summary>
    public IEnumerable<ImageBatch> Epoch(int epoch = 0)
    {
        var order = Order(epoch);
        int batches = BatchCount;
        if (batches == 0)
            yield break;
        var next = Task.Run(() => Gather(order, 0));
        for (int b = 0; b < batches; b++)
        {
            var (pixels, labels) = next.Result;
            if (b + 1 < batches)
            {
                int start = (b + 1) * BatchSize;
                next = Task.Run(() => Gather(order, start));
            }
            int count = labels.Length;
            var images = Tensor.FromArray(_device, pixels, count, _data.Channels, _data.Height, _data.Width);
            var targets = Tensor.FromArray(_device, labels, count);   // int32 class indices
            yield return new ImageBatch(images, targets, labels);
        }
    }

    private (float[] Pixels, int[] Labels) Gather(int[] order, int start)
    {
        int count = Math.Min(BatchSize, order.Length - start), size = _data.ImageSize;
        var pixels = new float[count * size];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int index = order[start + i];
            Array.Copy(_data.Pixels, (long)index * size, pixels, (long)i * size, size);
            labels[i] = _data.Labels[index];
        }
        return (pixels, labels);
    }
}

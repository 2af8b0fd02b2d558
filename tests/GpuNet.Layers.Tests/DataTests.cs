using System.IO.Compression;
using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>The IDX reader, Fashion-MNIST, the DataLoader, and a short classifier run that must learn.</summary>
public sealed class DataTests(ITestOutputHelper output)
{
    private static Device Cpu => TestDevices.Cpu;

    private static byte[] Idx(byte type, int[] shape, byte[] data)
    {
        var bytes = new List<byte> { 0, 0, type, (byte)shape.Length };
        foreach (int d in shape)
            bytes.AddRange(BitConverter.GetBytes(d).Reverse());
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    private static string Temp(byte[] content, bool gzip)
    {
        string path = Path.Combine(Path.GetTempPath(), $"gpunet-idx-{Guid.NewGuid():N}" + (gzip ? ".gz" : ""));
        if (gzip)
        {
            using var file = File.Create(path);
            using var zip = new GZipStream(file, CompressionLevel.Fastest);
            zip.Write(content);
        }
        else
            File.WriteAllBytes(path, content);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IdxFilesReadPlainOrGzipped(bool gzip)
    {
        var data = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)i).ToArray();
        string path = Temp(Idx(0x08, new[] { 2, 3, 4 }, data), gzip);
        try
        {
            var (shape, bytes) = IdxFile.Read(path);
            Assert.Equal(new[] { 2, 3, 4 }, shape);
            Assert.Equal(data, bytes);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static IEnumerable<object[]> MalformedFiles => new[]
    {
        new object[] { "wrong magic", new byte[] { 1, 2, 8, 1, 0, 0, 0, 1, 5 }, "magic" },
        new object[] { "int32 elements", Idx(0x0C, new[] { 1 }, new byte[4]), "unsigned byte" },
        new object[] { "truncated data", Idx(0x08, new[] { 10 }, new byte[7]), "needs" },
        new object[] { "extra data", Idx(0x08, new[] { 2 }, new byte[3]), "needs" },
        new object[] { "truncated header", new byte[] { 0, 0, 8, 3, 0, 0 }, "header" },
        new object[] { "negative size", Idx(0x08, new[] { -1 }, Array.Empty<byte>()), "negative" },
    };

    [Theory]
    [MemberData(nameof(MalformedFiles))]
    public void MalformedIdxFilesAreTypedErrors(string what, byte[] content, string problem)
    {
        string path = Temp(content, gzip: false);
        try
        {
            var e = Assert.Throws<DatasetException>(() => IdxFile.Read(path));
            Assert.Equal(path, e.Path);
            Assert.Contains(problem, e.Message);
            output.WriteLine($"{what}: {e.Message}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingDataSaysWhatToInstall()
    {
        var e = Assert.Throws<DatasetException>(() => FashionMnist.Load("/nonexistent/fashion"));
        Assert.Contains("dataset-fashion-mnist", e.Message);
        Assert.Throws<DatasetException>(() => IdxFile.Read("/nonexistent/file.gz"));
    }

    [Fact]
    public void FashionMnistHasItsSplitsAndIsStandardized()
    {
        var (train, test) = FashionMnist.Load();
        Assert.Equal(60000, train.Count);
        Assert.Equal(10000, test.Count);
        Assert.Equal((1, 28, 28), (train.Channels, train.Height, train.Width));
        // The classes are balanced: 6,000 training and 1,000 test images each.
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(6000, train.Labels.Count(l => l == c)));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(1000, test.Labels.Count(l => l == c)));
        double mean = train.Pixels.Average(v => (double)v), std = Math.Sqrt(train.Pixels.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(mean, -1e-3, 1e-3);
        Assert.InRange(std, 0.999, 1.001);
        Assert.Equal("Ankle boot", train.ClassNames[9]);
    }

    private static ImageDataset Synthetic(int count) =>
        new(Enumerable.Range(0, count * 4).Select(i => (float)(i / 4)).ToArray(), Enumerable.Range(0, count).Select(i => i % 3).ToArray(), 1, 2, 2,
            new[] { "a", "b", "c" });

    [Fact]
    public void DataLoaderShufflesBySeedAndKeepsTheLastBatch()
    {
        var data = Synthetic(10);
        var loader = new DataLoader(Cpu, data, 4, shuffle: true, seed: 7);
        Assert.Equal(3, loader.BatchCount);
        var order = loader.Order(0);
        Assert.Equal(Enumerable.Range(0, 10), order.OrderBy(i => i));
        Assert.Equal(order, new DataLoader(Cpu, data, 4, shuffle: true, seed: 7).Order(0));
        Assert.NotEqual(order, loader.Order(1));
        Assert.NotEqual(order, new DataLoader(Cpu, data, 4, shuffle: true, seed: 8).Order(0));
        var seen = new List<int>();
        var sizes = new List<int>();
        foreach (var batch in loader.Epoch(0))
            using (batch)
            {
                Assert.Equal(new[] { batch.Count, 1, 2, 2 }, batch.Images.ShapeArray());
                var pixels = batch.Images.ToArray();
                Assert.Equal(DType.Int32, batch.Labels.DType);
                var labels = batch.Labels.ToInt32Array();
                for (int i = 0; i < batch.Count; i++)
                {
                    int index = (int)pixels[4 * i];   // every pixel of image k holds k
                    seen.Add(index);
                    Assert.Equal(index % 3, labels[i]);
                    Assert.Equal(index % 3, batch.HostLabels[i]);
                }
                sizes.Add(batch.Count);
            }
        Assert.Equal(order, seen);
        Assert.Equal(new[] { 4, 4, 2 }, sizes);
        Assert.Equal(2, new DataLoader(Cpu, data, 4, dropLast: true).Epoch().Count());
        Assert.Equal(Enumerable.Range(0, 10), new DataLoader(Cpu, data, 3, shuffle: false).Order(5));
        Assert.Throws<InvalidArgumentException>(() => new DataLoader(Cpu, data, 0));
    }

    /// <summary>README's Training example, on the first 1,000 images of each split.</summary>
    [Fact]
    public void ReadmeCnnExampleRunsAsWritten()
    {
        using var device = Device.Open("cpu");
        var (train, test) = FashionMnist.Load(limit: 1000);
        using var model = new Sequential(device,
            new Conv2d(device, 1, 32, 3, padding: 1), new BatchNorm2d(device, 32), new ActivationLayer(device, "relu"), new MaxPool2d(device, 2),
            new Conv2d(device, 32, 64, 3, padding: 1), new BatchNorm2d(device, 64), new ActivationLayer(device, "relu"), new MaxPool2d(device, 2),
            new Flatten(device), new Linear(device, 64 * 7 * 7, 128), new ActivationLayer(device, "relu"), new Dropout(device, 0.25f),
            new Linear(device, 128, 10));
        using var optimizer = new Adam(model.Parameters(), learningRate: 1e-3f);
        var loader = new DataLoader(device, train, batchSize: 64, shuffle: true, seed: 0);
        long before = PoolAccounting.SettledBytesInUse(device);
        foreach (var batch in loader.Epoch(0))
            using (batch)
            {
                using var logits = model.Forward(batch.Images);
                using var loss = Ops.CrossEntropy(logits, batch.Labels);
                loss.Backward();
                optimizer.Step();
                optimizer.ZeroGrad();
            }
        float accuracy = ImageClassification.Evaluate(model, test);
        output.WriteLine($"test accuracy {accuracy:P2} after one epoch of 1,000 images");
        Assert.True(accuracy > 0.5f, $"accuracy {accuracy}");
        // The loop keeps nothing alive from one step to the next (the optimizer's state was made in the first step).
        Assert.True(PoolAccounting.SettledBytesInUse(device) <= before + 8L * model.ParameterCount * 4, "the training loop leaks device memory");
    }

    [Fact]
    public void TheSeedCnnLearnsFashionMnist()
    {
        var (train, test) = FashionMnist.Load(limit: 3000);
        var device = Device.Open("cpu");
        using var _ = device;
        device.ManualSeed(1);
        using var model = ModelZoo.ImageCnn(device);
        float before = ImageClassification.Evaluate(model, test);
        var (losses, epochs) = ImageClassification.Train(model, train, test, epochs: 1, batchSize: 64, seed: 1);
        output.WriteLine($"test accuracy {before:P1} untrained → {epochs[0].TestAccuracy:P1} after one epoch of {train.Count} images; loss {losses[0]:0.000} → {losses.TakeLast(5).Average():0.000}");
        // Ten classes: chance is 10 %. One epoch of 3,000 images reaches about 80 %.
        Assert.InRange(before, 0f, 0.3f);
        Assert.True(epochs[0].TestAccuracy > 0.7f, $"test accuracy {epochs[0].TestAccuracy}");
        Assert.True(losses.TakeLast(5).Average() < 0.5f * losses[0], $"loss {losses[0]} → {losses.TakeLast(5).Average()}");
        Assert.True(model.Training, "Evaluate restores training mode");
    }
}

using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;

namespace GpuNet.Layers.Tests;

public sealed class ModuleTests
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void StateDictNamesFollowPyTorch()
    {
        using var gpt = new Gpt(Cpu, new GptConfig(10, 8, 16, 2, 2));
        var names = gpt.StateDict().Select(e => e.Name).ToList();
        Assert.Contains("tok_emb.weight", names);
        Assert.Contains("blocks.1.attn.qkv.weight", names);
        Assert.Contains("blocks.0.mlp.fc.bias", names);
        Assert.Contains("ln_f.bias", names);
        Assert.Contains("head.weight", names);
        Assert.DoesNotContain("head.bias", names);
    }

    /// <summary>U(−b, b) has mean 0, standard deviation b/√3 and every value inside ±b — b as the layers compute it, in float
    /// (1/√100 rounds to 0.100000001490116, and a draw of exactly −b is a valid one: the double 0.1 failed it).</summary>
    private static void AssertUniform(Tensor t, double bound, string what)
    {
        var v = t.ToArray();
        float b = (float)bound;
        Assert.All(v, x => Assert.InRange(x, -b, b));
        double mean = v.Average(x => (double)x), std = Math.Sqrt(v.Average(x => (x - mean) * (x - mean)));
        Assert.True(Math.Abs(std - bound / Math.Sqrt(3)) < 0.1 * bound / Math.Sqrt(3), $"{what}: std {std}, want {bound / Math.Sqrt(3)}");
        Assert.True(Math.Abs(mean) < 0.1 * bound, $"{what}: mean {mean}");
    }

    [Fact]
    public void LayersAreInitializedAtConstructionAsPyTorchDoes()
    {
        using var linear = new Linear(Cpu, 100, 300);
        AssertUniform(linear.Weight, 1 / Math.Sqrt(100), "linear.weight");
        AssertUniform(linear.Bias!, 1 / Math.Sqrt(100), "linear.bias");
        using var conv = new Conv2d(Cpu, 12, 64, 3, groups: 3);
        AssertUniform(conv.Weight, 1 / Math.Sqrt(4 * 9), "conv.weight (fan_in = in/groups·k·k)");
        using var up = new ConvTranspose2d(Cpu, 16, 32, 2);
        AssertUniform(up.Weight, 1 / Math.Sqrt(32 * 4), "conv_transpose.weight (fan_in = out·k·k, PyTorch's dimension 1)");
        using var conv1 = new Conv1d(Cpu, 20, 40, 5);
        AssertUniform(conv1.Weight, 1 / Math.Sqrt(100), "conv1d.weight");
        using var embedding = new Embedding(Cpu, 100, 64);
        var e = embedding.Weight.ToArray();
        double std = Math.Sqrt(e.Average(x => (double)x * x));
        Assert.InRange(std, 0.95, 1.05);
        using var bn = new BatchNorm2d(Cpu, 6);
        Assert.All(bn.Weight.ToArray(), x => Assert.Equal(1f, x));
        Assert.All(bn.Bias.ToArray(), x => Assert.Equal(0f, x));
        Assert.All(bn.RunningVar.ToArray(), x => Assert.Equal(1f, x));
        using var ln = new LayerNorm(Cpu, 6);
        Assert.All(ln.Weight.ToArray(), x => Assert.Equal(1f, x));
        // Two layers of one device draw different seeds.
        using var other = new Linear(Cpu, 100, 300);
        Assert.NotEqual(linear.Weight.ToArray(), other.Weight.ToArray());
    }

    [Fact]
    public void TheDeviceSeedReplaysConstruction()
    {
        using var device = Device.Open("cpu");
        float[] Build()
        {
            device.ManualSeed(42);
            using var model = ModelZoo.CnnClassifier(device);
            return model.Parameters().SelectMany(p => p.Tensor.ToArray()).ToArray();
        }
        Assert.Equal(Build(), Build());
    }

    [Fact]
    public void NoSeedModelKeepsAnAllZeroWeight()
    {
        var models = new (string Name, Module Model)[]
        {
            ("mlp", ModelZoo.Mlp(Cpu)), ("cnn", ModelZoo.CnnClassifier(Cpu)), ("vgg", ModelZoo.Vgg(Cpu)), ("pixelcnn", ModelZoo.PixelCnn(Cpu, 1, 8, 4, 2)),
            ("gpt", new Gpt(Cpu, new GptConfig(10, 8, 16, 2, 2))),
        };
        foreach (var (name, model) in models)
            using (model)
                foreach (var (param, t) in model.Parameters())
                    if (t.Rank >= 2)
                        Assert.True(t.ToArray().Any(v => v != 0), $"{name}: {param} is all zeros after construction");
    }

    [Fact]
    public void TrainAndEvalReachDropoutAndBatchNormInsideSeedModels()
    {
        using var model = ModelZoo.ImageCnn(Cpu);
        using var x = Tensor.RandomUniform(Cpu, new[] { 4, 1, 28, 28 }, 3, -1f, 1f);
        var bn = (BatchNorm2d)((Sequential)model.Children[0].Child).Children[1].Child;
        model.Eval();
        var stats = bn.RunningMean.ToArray();
        float[] Run()
        {
            using var y = model.Forward(x);
            return y.ToArray();
        }
        // Eval: running statistics, no dropout — deterministic, and the statistics stay put.
        Assert.Equal(Run(), Run());
        Assert.Equal(stats, bn.RunningMean.ToArray());
        // Train: batch statistics (the running ones move) and dropout (two forwards differ).
        model.Train();
        var first = Run();
        Assert.NotEqual(stats, bn.RunningMean.ToArray());
        Assert.NotEqual(first, Run());
    }

    [Fact]
    public void LoadReportsEveryMismatchAtOnceAndWritesNothing()
    {
        using var model = new Sequential(Cpu, new Linear(Cpu, 3, 4), new ActivationLayer(Cpu, "relu"), new Linear(Cpu, 4, 2));
        model.Initialize(1);
        var before = model.StateDict().Select(e => e.Tensor.ToArray()).ToList();
        var source = new Dictionary<string, (int[], Func<float[]>)>
        {
            ["0.weight"] = (new[] { 4, 3 }, () => new float[12]),
            ["0.bias"] = (new[] { 5 }, () => new float[5]),
            ["2.weight"] = (new[] { 2, 4 }, () => new float[8]),
            ["9.weight"] = (new[] { 1 }, () => new float[1]),
        };
        var e = Assert.Throws<StateDictMismatchException>(() => model.LoadStateDict(source));
        Assert.Equal(new[] { "2.bias" }, e.Missing);
        Assert.Equal(new[] { "9.weight" }, e.Unexpected);
        Assert.Single(e.WrongShapes);
        Assert.Contains("0.bias: expected [4], got [5]", e.Message);
        Assert.Equal(before, model.StateDict().Select(x => x.Tensor.ToArray()).ToList());
    }

    [Fact]
    public void SaveAndLoadThroughSafetensors()
    {
        var path = Path.Combine(Path.GetTempPath(), $"m-{Guid.NewGuid():N}.safetensors");
        try
        {
            using var a = new Sequential(Cpu, new Linear(Cpu, 5, 6), new LayerNorm(Cpu, 6));
            a.Initialize(7);
            a.Save(path);
            using var b = new Sequential(Cpu, new Linear(Cpu, 5, 6), new LayerNorm(Cpu, 6));
            using (var f = SafeTensors.Open(path))
                b.Load(f);
            Assert.Equal(a.StateDict().Select(e => e.Tensor.ToArray()), b.StateDict().Select(e => e.Tensor.ToArray()));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void EvalModeTurnsDropoutOffEverywhere()
    {
        using var model = new Sequential(Cpu, new Dropout(Cpu, 0.9f), new Sequential(Cpu, new Dropout(Cpu, 0.9f)));
        model.Eval();
        using var x = Ops.Full(Cpu, 1f, 100);
        using var y = model.Forward(x);
        Assert.All(y.ToArray(), v => Assert.Equal(1f, v));
        model.Train();
        using var z = model.Forward(x);
        Assert.Contains(0f, z.ToArray());
    }

    [Fact]
    public void BatchNormCountsTrainingBatchesOnly()
    {
        using var bn = new BatchNorm2d(Cpu, 3);
        using var x = Tensor.RandomNormal(Cpu, new[] { 2, 3, 4, 4 }, 1);
        bn.Forward(x).Dispose();
        bn.Forward(x).Dispose();
        bn.Eval();
        bn.Forward(x).Dispose();
        Assert.Equal(new[] { 2f }, bn.BatchesTracked.ToArray());
    }

    [Fact]
    public void PaddingMaskOfTheWrongShapeIsRejected()
    {
        using var mha = new MultiheadAttention(Cpu, 8, 2);
        using var x = Tensor.Zeros(Cpu, 2, 5, 8);
        using var pad = Tensor.Zeros(Cpu, 2, 4);
        Assert.Throws<ShapeMismatchException>(() => mha.Forward(x, x, keyPadding: pad));
    }

    [Fact]
    public void ForwardDoesNotGrowMemory()
    {
        using var d = Device.Open("cpu");
        using var gpt = new Gpt(d, new GptConfig(20, 16, 16, 2, 1));
        gpt.Initialize(3);
        var ids = Enumerable.Range(0, 8).ToArray();
        gpt.Forward(ids, 1, 8).Dispose();
        long inUse = d.Pool.Stats.BytesInUse;
        for (int i = 0; i < 3; i++)
            gpt.Forward(ids, 1, 8).Dispose();
        Assert.Equal(inUse, d.Pool.Stats.BytesInUse);
    }
}

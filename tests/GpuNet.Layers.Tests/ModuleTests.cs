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

using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>Int32 tensors for class labels and token ids: made from int arrays and read back exactly on every device, viewed
/// and copied like any tensor, taken by cross-entropy, NLL, embeddings and row gathers (the same results as float labels
/// and int arrays), refused with a typed error by every op that computes.</summary>
public sealed class Int32TensorTests
{
    public static IEnumerable<object[]> Devices => new[] { "cpu", "cpu-sim" }.Concat(TestDevices.GpuIds).Select(d => new object[] { d });

    [Theory]
    [MemberData(nameof(Devices))]
    public void IntegersRoundTripExactlyThroughViewsAndCopies(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        int[] values = { 0, 1, -1, int.MaxValue, int.MinValue, 16777217, 2139095041, 7 };   // 2139095041 is a NaN's bit pattern as a float
        var t = Tensor.FromArray(device, values, 2, 4);
        Assert.Equal(DType.Int32, t.DType);
        Assert.Equal(values, t.ToInt32Array());
        Assert.Contains("int32", t.Describe());
        var column = t.Transpose(0, 1).Slice(0, 1, 2);                 // a strided view keeps the dtype
        Assert.Equal(DType.Int32, column.DType);
        Assert.Equal(new[] { 1, 16777217, -1, 2139095041 }, column.ToInt32Array());
        var copy = column.Contiguous();
        Assert.True(copy.IsContiguous);
        Assert.Equal(DType.Int32, copy.DType);
        Assert.Equal(column.ToInt32Array(), copy.ToInt32Array());
        Assert.Equal(new[] { 4 }, Tensor.FromArray(device, new[] { 4 }).ToInt32Array());
    }

    [Fact]
    public void OpsThatComputeRefuseIntegersWithATypedError()
    {
        var device = TestDevices.Cpu;
        using var scope = device.Scope();
        var labels = Tensor.FromArray(device, new[] { 1, 2, 3 });
        var floats = Tensor.Zeros(device, 3);
        var e = Assert.Throws<DTypeMismatchException>(() => Ops.Add(floats, labels));
        Assert.Equal("add", e.Op);
        Assert.Equal("Float32", e.Expected);
        Assert.Equal("Int32", e.Actual);
        Assert.Throws<DTypeMismatchException>(() => Ops.Relu(labels));
        Assert.Throws<DTypeMismatchException>(() => labels * 2f);
        Assert.Equal("copy_to", Assert.Throws<DTypeMismatchException>(() => labels.ToArray()).Op);
        Assert.Throws<DTypeMismatchException>(() => floats.ToInt32Array());
        Assert.Throws<DTypeMismatchException>(() => labels.CopyFrom(new float[3]));
        Assert.Throws<ShapeMismatchException>(() => Tensor.FromArray(device, new[] { 1, 2, 3 }, 2, 2));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void LossesTakeIntegerLabelsAsTheyTakeFloatOnes(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var logits = Tensor.RandomNormal(device, new[] { 5, 4 }, seed: 3);
        logits.RequiresGrad = true;
        var asInts = Tensor.FromArray(device, new[] { 3, 0, -100, 2, 1 });
        var asFloats = Tensor.FromArray(device, new float[] { 3, 0, -100, 2, 1 });
        var a = Ops.CrossEntropy(logits, asInts, labelSmoothing: 0.1f);
        a.Backward();
        var gradInts = logits.Grad!.ToArray();
        logits.ZeroGrad();
        var b = Ops.CrossEntropy(logits, asFloats, labelSmoothing: 0.1f);
        b.Backward();
        Assert.Equal(b.Item(), a.Item());
        Assert.Equal(logits.Grad!.ToArray(), gradInts);
        var logProbabilities = Ops.LogSoftmax(logits);
        Assert.Equal(Ops.NllLoss(logProbabilities, asFloats).Item(), Ops.NllLoss(logProbabilities, asInts).Item());
        var bad = Tensor.FromArray(device, new[] { 3, 0, 4, 2, 1 });
        var e = Assert.Throws<InvalidArgumentException>(() => Ops.CrossEntropy(logits, bad));
        Assert.Contains("4 at row 2", e.Actual);
        Assert.Throws<ShapeMismatchException>(() => Ops.CrossEntropy(logits, Tensor.FromArray(device, new[] { 1, 2 })));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void EmbeddingsAndGathersTakeIntegerIds(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var weight = Tensor.RandomNormal(device, new[] { 6, 3 }, seed: 5);
        int[] ids = { 5, 0, 2, 2, 1, 4 };
        var fromTensor = Ops.Embedding(weight, Tensor.FromArray(device, ids, 2, 3));
        var fromArray = Ops.Embedding(weight, ids, 2, 3);
        Assert.Equal(new[] { 2, 3, 3 }, fromTensor.ShapeArray());
        Assert.Equal(fromArray.ToArray(), fromTensor.ToArray());
        var gathered = Ops.GatherRows(weight, Tensor.FromArray(device, ids, 6));
        Assert.Equal(Ops.GatherRows(weight, Tensor.FromArray(device, Array.ConvertAll(ids, v => (float)v), 6)).ToArray(), gathered.ToArray());
        Assert.Throws<InvalidArgumentException>(() => Ops.Embedding(weight, Tensor.FromArray(device, new[] { 6 })));
        Assert.Throws<DTypeMismatchException>(() => Ops.Embedding(weight, Tensor.FromArray(device, new float[] { 1 })));
    }
}

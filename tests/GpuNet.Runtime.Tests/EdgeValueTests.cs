using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>
/// Values at the edges — −∞ logits, NaN activations, empty reductions, fully −∞ softmax rows — give PyTorch's answer or a
/// documented, tested choice, on the fast CPU and the simulated GPU alike; and leaked tensors leave the pool's accounting.
/// </summary>
public sealed class EdgeValueTests
{
    public static TheoryData<string> Devices => new() { "cpu", "cpu-sim" };

    [Theory]
    [MemberData(nameof(Devices))]
    public void CrossEntropyOfARowHoldingMinusInfinityIsFinite(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var logits = Tensor.FromArray(device, new[] { float.NegativeInfinity, 0f, 1f, 0.5f, float.NegativeInfinity, -1f }, 2, 3);
        logits.RequiresGrad = true;
        var target = Tensor.FromArray(device, new float[] { 2, 0 }, 2);
        var loss = Ops.CrossEntropy(logits, target, Reduction.None);
        // PyTorch 1.13: F.cross_entropy(tensor([[-inf, 0, 1], [0.5, -inf, -1]]), tensor([2, 0]), reduction='none')
        double lse0 = Math.Log(1 + Math.E), lse1 = Math.Log(Math.Exp(0.5) + Math.Exp(-1));
        var values = loss.ToArray();
        Assert.Equal(lse0 - 1, values[0], 5);           // 0.31326
        Assert.Equal(lse1 - 0.5, values[1], 5);
        Ops.SumAll(loss).Backward();
        var grad = logits.Grad!.ToArray();
        Assert.All(grad, g => Assert.True(float.IsFinite(g)));
        Assert.Equal(0f, grad[0]);
        Assert.Equal(Math.Exp(1 - lse0) - 1, grad[2], 5);
        // With label smoothing the −∞ logit's share of the target is −ε/C·log p = +∞, as in PyTorch.
        Assert.Equal(float.PositiveInfinity, Ops.CrossEntropy(logits.Detach(), target, Reduction.None, labelSmoothing: 0.1f).ToArray()[0]);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void ReluKeepsNaN(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var x = Tensor.FromArray(device, Enumerable.Range(0, 19).Select(i => i % 3 == 0 ? float.NaN : i - 9f).ToArray(), 19);
        var y = Ops.Relu(x).ToArray();
        for (int i = 0; i < 19; i++)
            Assert.Equal(i % 3 == 0 ? float.NaN : Math.Max(i - 9f, 0f), y[i]);
    }

    /// <summary>The fast CPU's vectorized argmax (eight lanes, then the lanes' best) gives what the kernel's left fold gives:
    /// the first index of the maximum, a NaN winning only at index 0, −∞ rows at 0 — along rows and down columns.</summary>
    [Fact]
    public void TheFastCpusArgmaxIsTheLeftFoldOnTiesInfinitiesAndNaN()
    {
        var device = TestDevices.Cpu;
        using var scope = device.Scope();
        const int n = 41;
        var rows = new List<float[]>();
        float[] Row(Func<int, float> f) => Enumerable.Range(0, n).Select(f).ToArray();
        rows.Add(Row(i => i % 7));                                              // ties: first 6 at index 6
        rows.Add(Row(i => i == 0 ? float.NaN : i == 30 ? 9 : 1));               // NaN first: 0
        rows.Add(Row(i => i == 3 || i == 17 ? float.NaN : i == 33 ? 5 : 1));    // NaN later: passed over
        rows.Add(Row(_ => float.NegativeInfinity));                             // all −∞: 0
        rows.Add(Row(i => i % 2 == 1 ? float.NaN : float.NegativeInfinity));    // −∞ and NaN: 0
        rows.Add(Row(i => i == 40 ? 2 : i == 39 ? 2 : 0));                      // the maximum in the scalar tail
        rows.Add(Row(i => i == 9 || i == 1 ? 3 : -1));                          // the same value in two lanes: the lower index
        static int Fold(float[] r)
        {
            int best = 0;
            for (int i = 1; i < r.Length; i++)
                if (r[i] > r[best])
                    best = i;
            return best;
        }
        var flat = rows.SelectMany(r => r).ToArray();
        var x = Tensor.FromArray(device, flat, rows.Count, n);
        Assert.Equal(rows.Select(r => (float)Fold(r)).ToArray(), Ops.ArgMax(x, -1).ToArray());
        var columns = Ops.Transpose(x, 0, 1).Contiguous();
        Assert.Equal(rows.Select(r => (float)Fold(r)).ToArray(), Ops.ArgMax(columns, 0).ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void MaximaOverAnEmptyAxisAreErrors(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var x = Tensor.Zeros(device, 3, 0);
        Assert.Contains("non-empty axis 1", Assert.Throws<ShapeMismatchException>(() => Ops.Max(x, 1)).Message);
        Assert.Throws<ShapeMismatchException>(() => Ops.ArgMax(x, -1));
        Assert.Throws<ShapeMismatchException>(() => Ops.Min(x, 1, keepDim: true));
        // Over a non-empty axis of an empty tensor the result is empty, as in PyTorch; sums of nothing are 0.
        Assert.Equal(new[] { 0 }, Ops.Max(x, 0).ShapeArray());
        Assert.Equal(new float[] { 0, 0, 0 }, Ops.Sum(x, 1).ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void AFullyMinusInfinitySoftmaxRowIsZerosByChoice(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var x = Tensor.FromArray(device, new[] { float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, 0f, 1f, float.NaN }, 2, 3);
        var y = Ops.Softmax(x).ToArray();
        Assert.Equal(new float[] { 0, 0, 0 }, y[..3]);   // PyTorch: NaN; GpuNet: zeros, as a fully masked attention row
        Assert.All(y[3..], v => Assert.True(float.IsNaN(v)));
    }

    [Fact]
    public void LeakedTensorsLeaveThePoolUnderALimit()
    {
        using var device = Device.Open("cpu");
        device.Pool.LimitBytes = 16L << 20;
        static void Leak(Device d) => Tensor.Zeros(d, 256 * 1024);   // 1 MiB, never disposed
        for (int i = 0; i < 100; i++)
            Leak(device);
        Assert.True(device.Pool.LeaksReclaimed > 0, "allocations past the limit must have collected leaked tensors");
        Assert.Equal(0, PoolAccounting.SettledBytesInUse(device));
    }
}

using GpuNet.Layers;
using Xunit;

namespace GpuNet.Layers.Tests;

/// <summary>The training loop as README writes it, under a pool limit: the tensors it leaks leave the pool's accounting.</summary>
public sealed class PoolLimitTests
{
    [Fact]
    public void TheReadmeTrainingLoopRunsUnderAPoolLimit()
    {
        // README's loop leaves each step's model output undisposed (the tape holds it until the loss is disposed, then no
        // one does): with a limit of 48 MiB and a 4,096-row batch that used to run out of memory within 50 steps.
        using var device = Device.Open("cpu");
        device.Pool.LimitBytes = 48L << 20;
        using var model = new Sequential(device,
            new Linear(device, 1, 64), new ActivationLayer(device, "relu"),
            new Linear(device, 64, 64), new ActivationLayer(device, "relu"),
            new Linear(device, 64, 1));
        model.Initialize(seed: 0);
        var xs = Enumerable.Range(0, 4096).Select(i => -2f + 4f * i / 4095).ToArray();
        using var x = Tensor.FromArray(device, xs, 4096, 1);
        using var y = Tensor.FromArray(device, xs.Select(v => 3 * v * v + 5).ToArray(), 4096, 1);
        using var optimizer = new Adam(model.Parameters(), learningRate: 1e-3f);
        for (int step = 0; step < 300; step++)
        {
            using var loss = Ops.MseLoss(model.Forward(x), y);
            loss.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        Assert.True(device.Pool.Stats.BytesInUse <= device.Pool.LimitBytes);
    }
}

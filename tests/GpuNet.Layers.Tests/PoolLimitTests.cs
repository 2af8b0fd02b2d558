using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;

namespace GpuNet.Layers.Tests;

/// <summary>The training loop as README first wrote it (each step's prediction never disposed), under a pool limit: the tensors
/// it leaks come back into the pool's cache when collected and serve the later steps. (README's loop now disposes them with a
/// scope per step; PackageTests runs it from README.md and checks its bytes in use stay flat.)</summary>
public sealed class PoolLimitTests
{
    [Fact]
    public void TheReadmeTrainingLoopRunsUnderAPoolLimit()
    {
        // README's loop leaves each step's model output undisposed (16 KiB a step at this batch): the pool counted those bytes
        // as in use forever, so under an 8 MiB limit the loop ran out of memory near step 200.
        using var device = Device.Open("cpu");
        device.Pool.LimitBytes = 8L << 20;
        using var model = new Sequential(device,
            new Linear(device, 1, 64), new ActivationLayer(device, "relu"),
            new Linear(device, 64, 64), new ActivationLayer(device, "relu"),
            new Linear(device, 64, 1));
        model.Initialize(seed: 0);
        var xs = Enumerable.Range(0, 4096).Select(i => -2f + 4f * i / 4095).ToArray();
        using var x = Tensor.FromArray(device, xs, 4096, 1);
        using var y = Tensor.FromArray(device, xs.Select(v => 3 * v * v + 5).ToArray(), 4096, 1);
        using var optimizer = new Adam(model.Parameters(), learningRate: 1e-3f);
        long settled = 0;
        MemoryPoolStats at100 = default;
        for (int step = 0; step < 600; step++)
        {
            if (step == 100)
            {
                settled = PoolAccounting.SettledBytesInUse(device);
                at100 = device.Pool.Stats;
            }
            using var loss = Ops.MseLoss(model.Forward(x), y);
            loss.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        Assert.Equal(settled, PoolAccounting.SettledBytesInUse(device));   // what was leaked no longer counts: no growth over 500 steps
        var end = device.Pool.Stats;
        Assert.True(end.LeaksReclaimed - at100.LeaksReclaimed >= 500, $"{end.LeaksReclaimed - at100.LeaksReclaimed} leaked predictions reclaimed over 500 steps");
        // Taken back into the cache, the leaked buffers serve the later steps. How many new device allocations that leaves
        // follows the garbage collector's timing, not the pool: leaked predictions are new allocations only until a collection
        // brings them back, and at the latest the limit forces one, so the pool grows past what it held at step 100 by at
        // most the predictions that fit in the room left under the limit (9 allocations here when the collector runs often,
        // 82 with DOTNET_GCgen0size=0x10000000, where it runs only when the limit calls it). A buffer freed when collected
        // instead of reused made one allocation a step: 500.
        long predictionBytes = MemoryPool.SizeClass(4096 * sizeof(float));
        long roomAt100 = device.Pool.LimitBytes - at100.BytesReserved;
        long allocations = end.DeviceAllocations - at100.DeviceAllocations;
        Assert.True(allocations <= roomAt100 / predictionBytes,
            $"{allocations} device allocations over 500 steps; room for {roomAt100 / predictionBytes} predictions under the limit at step 100 ({at100})");
    }
}

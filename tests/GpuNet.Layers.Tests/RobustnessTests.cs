using System.Diagnostics;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>
/// What held when the library was probed with misuse, and must keep holding: models trained on one device from several
/// threads at once equal the same models trained one after another, bit for bit; repeated inference keeps the pool and the
/// process's memory flat; a device, tensor or scope used after disposal is a typed error.
/// </summary>
public sealed class RobustnessTests(ITestOutputHelper output)
{
    private static Device Cpu => TestDevices.Cpu;

    /// <summary>Trains a small MLP from <paramref name="seed"/> for 40 Adam steps and returns its weights.</summary>
    private static float[] Train(Device device, int seed)
    {
        using var scope = device.Scope();
        var model = new Sequential(device, new Linear(device, 3, 16), new ActivationLayer(device, "gelu"), new Linear(device, 16, 2));
        model.Initialize(seed: (ulong)seed);
        var x = Tensor.RandomNormal(device, new[] { 33, 3 }, (ulong)seed + 100);
        var y = Tensor.RandomNormal(device, new[] { 33, 2 }, (ulong)seed + 200);
        using var optimizer = new Adam(model.Parameters(), learningRate: 1e-2f);
        for (int step = 0; step < 40; step++)
        {
            using var stepScope = device.Scope();
            var loss = Ops.MseLoss(model.Forward(x), y);
            loss.Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        return model.Parameters().SelectMany(p => p.Tensor.ToArray()).ToArray();
    }

    [Fact]
    public void EightThreadsTrainingSeparateModelsMatchOneThreadBitForBit()
    {
        var alone = Enumerable.Range(0, 8).Select(seed => Train(Cpu, seed)).ToArray();
        var together = new float[8][];
        var threads = Enumerable.Range(0, 8).Select(seed => new Thread(() => together[seed] = Train(Cpu, seed))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        for (int seed = 0; seed < 8; seed++)
            Assert.Equal(alone[seed].Select(BitConverter.SingleToInt32Bits), together[seed].Select(BitConverter.SingleToInt32Bits));
        Assert.NotEqual(alone[0], alone[1]);
    }

    [Fact]
    public void RepeatedGptInferenceKeepsThePoolAndTheProcessFlat()
    {
        using var f = Fixtures.Open("gpt");
        using var model = ModelZoo.Gpt(Cpu, f);
        model.Load(f);
        model.Eval();
        int[] Generate(int i) => model.Generate(new[] { 1 + i % 7, 2, 3 }, 6, temperature: 0.8f, topK: 20, seed: (ulong)i);
        for (int i = 0; i < 50; i++)
            Generate(i);
        long inUse = PoolAccounting.SettledBytesInUse(Cpu);
        long reserved = Cpu.Pool.Stats.BytesReserved;
        long rss = Process.GetCurrentProcess().WorkingSet64;
        for (int i = 0; i < 1500; i++)
            Generate(i);
        long inUseAfter = PoolAccounting.SettledBytesInUse(Cpu);
        long rssAfter = Process.GetCurrentProcess().WorkingSet64;
        output.WriteLine($"pool in use {inUse} → {inUseAfter} B, reserved {reserved} → {Cpu.Pool.Stats.BytesReserved} B, RSS {rss >> 20} → {rssAfter >> 20} MiB");
        Assert.Equal(inUse, inUseAfter);
        Assert.True(Cpu.Pool.Stats.BytesReserved <= reserved + (1 << 20), "the pool's cache must not grow with repetition");
        Assert.True(rssAfter - rss < 64L << 20, $"RSS grew {(rssAfter - rss) >> 20} MiB over 1,500 generations");
    }

    [Fact]
    public void DisposedDevicesTensorsAndScopesAreTypedErrors()
    {
        var device = Device.Open("cpu");
        var t = Tensor.Zeros(device, 3);
        var scope = device.Scope();
        scope.Dispose();
        scope.Dispose();
        t.Dispose();
        t.Dispose();
        Assert.Throws<TensorDisposedException>(() => Ops.Relu(t));
        var alive = Tensor.Zeros(device, 3);
        device.Dispose();
        device.Dispose();
        Assert.Throws<TensorDisposedException>(() => Tensor.Zeros(device, 2));
        Assert.Throws<TensorDisposedException>(() => Ops.Add(alive, alive));
        alive.Dispose();
    }

    [Fact]
    public void OutOfMemoryUnderALimitLeavesThePoolAsItWas()
    {
        using var device = Device.Open("cpu");
        device.Pool.LimitBytes = 1 << 20;
        using var held = Tensor.Zeros(device, 100_000);
        var before = device.Pool.Stats;
        var e = Assert.Throws<DeviceOutOfMemoryException>(() => Ops.MatMul(held.Reshape(1000, 100), held.Reshape(100, 1000)));
        Assert.Contains("out of memory", e.Message);
        Assert.Equal(before.BytesInUse, device.Pool.Stats.BytesInUse);
        using var fits = Ops.Relu(held);   // the pool still serves what fits
        Assert.Equal(100_000, fits.Length);
    }
}

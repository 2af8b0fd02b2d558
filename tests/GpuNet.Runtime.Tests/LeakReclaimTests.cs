using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>A tensor dropped without <c>Dispose</c>: its buffer goes back into the pool's cache when the garbage collector
/// finalizes it (counted in the stats), and with the leak check on it is reported with the op and the line that made it.</summary>
[Collection(nameof(LeakReclaimTests))]
public sealed class LeakReclaimTests
{
    private static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void Drop(Device device, int count)
    {
        for (int i = 0; i < count; i++)
            Tensor.Zeros(device, 64, 4);
    }

    [Fact]
    public void A_dropped_tensors_buffer_returns_to_the_cache_and_is_counted()
    {
        using var device = Device.Open("cpu");
        using var keep = Tensor.Zeros(device, 8);
        var before = device.Pool.Stats;
        Drop(device, 50);
        Assert.Equal(before.BytesInUse + 50 * MemoryPool.SizeClass(64 * 4 * sizeof(float)), device.Pool.Stats.BytesInUse);
        Collect();
        var after = device.Pool.Stats;
        Assert.Equal(before.BytesInUse, after.BytesInUse);
        Assert.Equal(50, after.LeaksReclaimed - before.LeaksReclaimed);
        Assert.Equal(50 * MemoryPool.SizeClass(64 * 4 * sizeof(float)), after.BytesCached - before.BytesCached);
        Assert.Contains("leaked tensors reclaimed 50", after.ToString());
        // The reclaimed buffers serve the next requests: no new device allocation.
        using var reused = Tensor.Zeros(device, 64, 4);
        Assert.Equal(after.DeviceAllocations, device.Pool.Stats.DeviceAllocations);
        Assert.Equal(new float[256], reused.ToArray());
    }

    [Fact]
    public void A_disposed_tensor_is_not_counted_as_a_leak_and_views_keep_their_memory()
    {
        using var device = Device.Open("cpu");
        var before = device.Pool.Stats.LeaksReclaimed;
        var x = Tensor.FromArray(device, new float[] { 1, 2, 3, 4 }, 4);
        using var view = x.Reshape(2, 2);
        x.Dispose();
        Collect();
        Assert.Equal(new float[] { 1, 2, 3, 4 }, view.ToArray());
        Assert.Equal(before, device.Pool.Stats.LeaksReclaimed);
    }

    [Fact]
    public void The_leak_check_reports_the_op_and_the_callers_line()
    {
        using var device = Device.Open("cpu");
        TensorStorage.LeakCheck = true;
        try
        {
            MakeAndDrop(device);
        }
        finally
        {
            TensorStorage.LeakCheck = Environment.GetEnvironmentVariable("GPUNET_LEAK_CHECK") == "1";
        }
        Collect();
        var report = Assert.Single(device.Pool.LeakReports);
        Assert.StartsWith("GpuNet leak check: a tensor [3, 5] on cpu was collected without Dispose(); made by Ops.Add, called at ", report);
        Assert.Contains($"{nameof(LeakReclaimTests)}.{nameof(MakeAndDrop)} (LeakReclaimTests.cs:", report);
        Assert.Equal(1, device.Pool.Stats.LeaksReclaimed);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void MakeAndDrop(Device device)
    {
        using var a = Tensor.Zeros(device, 3, 5);
        Ops.Add(a, a);
    }

    [Fact]
    public void Without_the_leak_check_nothing_is_recorded()
    {
        using var device = Device.Open("cpu");
        Drop(device, 3);
        Collect();
        Assert.Empty(device.Pool.LeakReports);
        Assert.Equal(3, device.Pool.Stats.LeaksReclaimed);
    }
}

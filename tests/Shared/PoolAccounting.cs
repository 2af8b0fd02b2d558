namespace GpuNet.Tests;

/// <summary>
/// A device's in-use bytes once the garbage collector has finalized every tensor nobody references any more: a leaked
/// tensor leaves the pool's accounting when it is finalized, which can happen at any collection, so a test that compares
/// in-use bytes on a shared device takes both readings settled, or an earlier test's leak lands between them.
/// </summary>
public static class PoolAccounting
{
    /// <summary>Collects, runs pending finalizers, and returns the bytes in use.</summary>
    public static long SettledBytesInUse(Device device)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return device.Pool.Stats.BytesInUse;
    }
}

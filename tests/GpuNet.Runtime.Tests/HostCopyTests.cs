using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>
/// Host copies must pin the managed array: ILGPU takes its address unpinned, and a compacting collection between
/// taking the address and copying would move the array (the read-back then stays zeros). Here a second thread forces
/// compacting collections while the first round-trips freshly allocated arrays, which are the ones that move.
/// </summary>
public sealed class HostCopyTests
{
    [Fact]
    public void RoundTripsSurviveCompactingCollections()
    {
        var device = TestDevices.Cpu;
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            // A pause between collections: back-to-back blocking GCs must suspend the accelerator's 256 threads
            // each time and can starve the copying thread on a loaded 2-core machine.
            while (!stop.IsCancellationRequested)
            {
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                Thread.Sleep(1);
            }
        }) { IsBackground = true };
        collector.Start();
        int bad = 0;
        try
        {
            // A fixed amount of work (about 2 s here); unpinned copies failed within the first few thousand.
            for (int i = 0; i < 20000 && bad == 0; i++)
            {
                var garbage = new byte[(i % 7 + 1) * 4096];  // churn so survivors are compacted and moved
                GC.KeepAlive(garbage);
                var host = Enumerable.Range(0, 257).Select(j => (float)(i + j + 1)).ToArray();
                using var t = Tensor.FromArray(device, host);
                var back = t.ToArray();
                if (!back.AsSpan().SequenceEqual(host))
                    bad++;
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.Equal(0, bad);
    }
}

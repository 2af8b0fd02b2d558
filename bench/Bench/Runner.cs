using ILGPU.Runtime;

namespace GpuNet.Bench;

/// <summary>
/// Times cases with device-side profiling markers (CUDA events on CUDA), never host time of asynchronous work:
/// warm-up launches first (the first compiles), then timed launches until the run count or the time budget is
/// reached; median, min and max. When one input set would fit in twice the L2 cache, several sets are made and
/// rotated so the timing measures memory, not cache.
/// </summary>
public static class Runner
{
    public static BenchResult Measure(Device device, BenchCase c, int warmup, int runs, TimeSpan budget, ulong seed)
    {
        if (c.Unavailable(device) is { } why)
            return new BenchResult(c, double.NaN, double.NaN, double.NaN, 0, 0, why);
        var first = c.Create(device, seed);
        var sets = new List<BenchInstance> { first };
        try
        {
            long cache = CacheBytes(device);
            if (first.InputBytes > 0 && first.InputBytes < 2 * cache)
            {
                int count = (int)Math.Min(8, 2 * cache / Math.Max(first.InputBytes, 1) + 1);
                long free = device.Info.MemoryBytes / 4;
                for (int i = 1; i < count && (i + 1) * first.InputBytes < free; i++)
                    sets.Add(c.Create(device, seed + (ulong)i));
            }
            for (int i = 0; i < warmup; i++)
                sets[i % sets.Count].Run();
            device.Synchronize();

            var markers = new List<(ProfilingMarker Start, ProfilingMarker End)>();
            var wall = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 0; i < runs; i++)
            {
                var start = device.Accelerator.AddProfilingMarker();
                sets[i % sets.Count].Run();
                markers.Add((start, device.Accelerator.AddProfilingMarker()));
                // The budget is checked on the host; the device times are what is reported.
                if (i >= 2 && wall.Elapsed > budget)
                    break;
            }
            device.Synchronize();
            var times = markers.Select(m => (m.End - m.Start).TotalMilliseconds).OrderBy(t => t).ToArray();
            foreach (var (s, e) in markers)
            {
                s.Dispose();
                e.Dispose();
            }
            double median = times.Length % 2 == 1 ? times[times.Length / 2] : (times[times.Length / 2 - 1] + times[times.Length / 2]) / 2;
            return new BenchResult(c, median, times[0], times[^1], times.Length, sets.Count);
        }
        finally
        {
            foreach (var s in sets)
                s.Dispose();
        }
    }

    /// <summary>The device's L2 cache (CUDA reports it), else 32 MiB (covers the host caches behind the CPU accelerator).</summary>
    public static long CacheBytes(Device device) =>
        device.Accelerator.Device is ILGPU.Runtime.Cuda.CudaDevice cuda && cuda.L2CacheSize > 0 ? cuda.L2CacheSize : 32L << 20;
}

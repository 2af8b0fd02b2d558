using ILGPU.Runtime;

namespace GpuNet.Bench;

/// <summary>
/// Times cases with device-side profiling markers (CUDA events on CUDA), never host time of asynchronous work:
/// warm-up launches first (the first compiles), then timed launches until the run count or the time budget is
/// reached; median, min and max. When one input set would fit in twice the L2 cache, several sets are made and
/// rotated so the timing measures memory, not cache. Implementations of one op on one shape (GpuNet and its peers) are
/// timed interleaved in blocks: on a shared machine (this project's 2-vCPU VMs) every implementation then sees the same
/// drift. Blocks, not single runs, and on the host CPU a settle pause before each block: ONNX Runtime's pool threads spin
/// for about 50 ms of CPU after every run (measured: 52 ms of process CPU time in a 500 ms sleep after one Run), so run by
/// run they held the second core through the next implementation's runs (GpuNet's 64K sigmoid then measured its one-thread
/// time, 0.095 ms, against 0.045 ms timed alone). Each block starts with untimed runs after the pause (see Rewarm).
/// </summary>
public static class Runner
{
    /// <summary>Times one case alone.</summary>
    public static BenchResult Measure(Device device, BenchCase c, int warmup, int runs, TimeSpan budget, ulong seed) =>
        MeasureInterleaved(device, new[] { c }, warmup, runs, budget, seed)[0];

    /// <summary>Least time each case runs untimed before its timed runs (see <see cref="MeasureInterleaved"/>).</summary>
    private static readonly TimeSpan MinWarm = TimeSpan.FromMilliseconds(30);

    /// <summary>Blocks each case's runs are split into when it shares a shape with others.</summary>
    private const int Blocks = 5;

    /// <summary>Pause before a block on the host CPU: longer than ONNX Runtime's workers spin after a run (≈ 50 ms).</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(100);

    /// <summary>Untimed runs after the pause, at least one: a vCPU idle for the pause runs the next few milliseconds slowly
    /// (softmax 64×1024 measured 0.10 ms per run for milliseconds after a 100 ms sleep, 0.04–0.07 ms in steady state).</summary>
    private static readonly TimeSpan Rewarm = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Times <paramref name="group"/> interleaved: each round runs every case for one block of consecutive runs, starting one
    /// case later than the round before (so no case always follows the same neighbour). Results in the group's order; the
    /// budget is per case.
    /// </summary>
    public static IReadOnlyList<BenchResult> MeasureInterleaved(Device device, IReadOnlyList<BenchCase> group, int warmup, int runs, TimeSpan budget, ulong seed)
    {
        var timed = new List<Timed>();
        var results = new BenchResult?[group.Count];
        try
        {
            for (int k = 0; k < group.Count; k++)
            {
                if (group[k].Unavailable(device) is { } why)
                    results[k] = new BenchResult(group[k], double.NaN, double.NaN, double.NaN, 0, 0, why);
                else
                    timed.Add(new Timed(k, Prepare(device, group[k], seed)));
            }
            // Warm-up: the count asked for, then on until each case has run for MinWarm (at most 1,000 runs): a case of a few
            // µs warmed 1–3 runs timed its cold caches and clocks (preset small's medians ran 1.3–1.4× preset cpu's for the
            // same shapes; 40× before the fast CPU's loops were compiled optimized from their first call).
            foreach (var t in timed)
            {
                var warming = System.Diagnostics.Stopwatch.StartNew();
                for (int i = 0; i < warmup || i < 1000 && warming.Elapsed < MinWarm; i++)
                {
                    t.Sets[i % t.Sets.Count].Run();
                    if (i >= warmup)
                        device.Synchronize();
                }
            }
            device.Synchronize();

            var wall = System.Diagnostics.Stopwatch.StartNew();
            var perGroupBudget = budget * Math.Max(timed.Count, 1);
            int block = timed.Count > 1 ? Math.Max(1, runs / Blocks) : runs;
            for (int done = 0, round = 0; done < runs; done += block, round++)
            {
                for (int j = 0; j < timed.Count; j++)
                {
                    var t = timed[(round + j) % timed.Count];
                    if (timed.Count > 1 && device.IsHostCpu)
                    {
                        Thread.Sleep(Settle);
                        var warm = System.Diagnostics.Stopwatch.StartNew();
                        int w = 0;
                        do
                            t.Sets[(done + w++) % t.Sets.Count].Run();
                        while (warm.Elapsed < Rewarm);
                    }
                    for (int i = done; i < Math.Min(runs, done + block); i++)
                    {
                        var start = device.Accelerator.AddProfilingMarker();
                        t.Sets[i % t.Sets.Count].Run();
                        t.Markers.Add((start, device.Accelerator.AddProfilingMarker()));
                    }
                }
                // The budget is checked on the host; the device times are what is reported.
                if (done + block >= 3 && wall.Elapsed > perGroupBudget)
                    break;
            }
            device.Synchronize();
            foreach (var t in timed)
                results[t.Index] = Summarize(group[t.Index], t);
            return results.Select(r => r!).ToArray();
        }
        finally
        {
            foreach (var t in timed)
                t.Dispose();
        }
    }

    /// <summary>The case's input sets: one, or several when one would fit in twice the cache.</summary>
    private static List<BenchInstance> Prepare(Device device, BenchCase c, ulong seed)
    {
        var sets = new List<BenchInstance> { c.Create(device, seed) };
        try
        {
            long cache = CacheBytes(device), bytes = sets[0].InputBytes;
            if (bytes > 0 && bytes < 2 * cache)
            {
                int count = (int)Math.Min(8, 2 * cache / Math.Max(bytes, 1) + 1);
                long free = device.Info.MemoryBytes / 4;
                for (int i = 1; i < count && (i + 1) * bytes < free; i++)
                    sets.Add(c.Create(device, seed + (ulong)i));
            }
            return sets;
        }
        catch
        {
            foreach (var s in sets)
                s.Dispose();
            throw;
        }
    }

    private static BenchResult Summarize(BenchCase c, Timed t)
    {
        var times = t.Markers.Select(m => (m.End - m.Start).TotalMilliseconds).OrderBy(x => x).ToArray();
        double median = times.Length % 2 == 1 ? times[times.Length / 2] : (times[times.Length / 2 - 1] + times[times.Length / 2]) / 2;
        return new BenchResult(c, median, times[0], times[^1], times.Length, t.Sets.Count);
    }

    /// <summary>A case being timed: its input sets and the markers around each of its runs.</summary>
    private sealed class Timed(int index, List<BenchInstance> sets) : IDisposable
    {
        public int Index { get; } = index;
        public List<BenchInstance> Sets { get; } = sets;
        public List<(ProfilingMarker Start, ProfilingMarker End)> Markers { get; } = new();

        public void Dispose()
        {
            foreach (var (s, e) in Markers)
            {
                s.Dispose();
                e.Dispose();
            }
            foreach (var s in Sets)
                s.Dispose();
        }
    }

    /// <summary>The device's L2 cache (CUDA reports it), else 32 MiB (covers the host caches behind the CPU accelerator).</summary>
    public static long CacheBytes(Device device) =>
        device.Accelerator.Device is ILGPU.Runtime.Cuda.CudaDevice cuda && cuda.L2CacheSize > 0 ? cuda.L2CacheSize : 32L << 20;
}

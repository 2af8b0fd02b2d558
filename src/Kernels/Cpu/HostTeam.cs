using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// The fast CPU device's own worker threads: one per core beyond the calling thread, each owning a fixed share of every
/// split loop, spinning briefly between loops before it sleeps.
/// </summary>
/// <remarks>
/// Why not <c>Parallel.For</c>: whole models run hundreds of split loops of 10–50 µs each, and there the thread pool's
/// hand-off (3–10 µs) was a large part of every node; and a chunk landed on either core from one call to the next, so
/// the data a core had just written or read (a layer's output, its weights) was in the other core's L2 for the next
/// call: summing a 614 KB array split in two ran 10.8 µs against 5.1 µs on one thread, a 960 → 160 1×1 convolution at 2×2
/// pixels 34–43 µs against 18.6 µs. Here participant p (the caller is 0) always takes chunks [p·c/P, (p+1)·c/P) first,
/// so consecutive loops split the same way find their rows in the same core's cache, and only then steals what another
/// participant has not started (a preempted core on a busy VM does not hold the loop up). A loop started from inside a
/// chunk, or while another thread's loop holds the team, runs on its calling thread.
/// </remarks>
internal static class HostTeam
{
    /// <summary>How long an idle worker spins (yielding to other runnable threads) before it sleeps: 1 ms, long enough to
    /// cover a model's single-threaded stretches between split loops. Waking a sleeping worker took tens of µs on the
    /// 2-core VM: with 50 µs of spinning resnet18 ran 4.0–4.3 ms against 3.2 with Parallel.For, with 1 ms 2.9–3.5.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 1000;

    private sealed class Job(Action<int, int> body, int count, int chunks, int participants)
    {
        public readonly Action<int, int> Body = body;
        public readonly int Count = count, Chunks = chunks, Participants = participants;

        /// <summary>Next chunk to claim in participant p's share, at [p·16] (a cache line each, so claims do not contend).</summary>
        public readonly int[] Next = CreateNext(chunks, participants);

        public int Remaining = chunks;
        public Exception? Error;

        private static int[] CreateNext(int chunks, int participants)
        {
            var next = new int[participants * 16];
            for (int p = 0; p < participants; p++)
                next[p * 16] = Start(chunks, participants, p);
            return next;
        }

        public static int Start(int chunks, int participants, int p) => (int)((long)chunks * p / participants);

        /// <summary>Runs chunks of participant <paramref name="self"/>'s share, then of the others' (in turn after it).</summary>
        public void Work(int self)
        {
            for (int i = 0; i < Participants; i++)
            {
                int owner = (self + i) % Participants, end = Start(Chunks, Participants, owner + 1);
                while (true)
                {
                    int chunk = Interlocked.Increment(ref Next[owner * 16]) - 1;
                    if (chunk >= end)
                        break;
                    try
                    {
                        if (Volatile.Read(ref Error) is null)
                        {
                            int start = (int)((long)Count * chunk / Chunks), stop = (int)((long)Count * (chunk + 1) / Chunks);
                            if (stop > start)
                                Body(start, stop);
                        }
                    }
                    catch (Exception e)
                    {
                        Interlocked.CompareExchange(ref Error, e, null);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref Remaining);
                    }
                }
            }
        }
    }

    private static readonly object StartLock = new();
    private static Worker[]? _workers;
    private static Job? _job;
    private static long _generation;
    private static int _busy;

    [ThreadStatic]
    private static bool _inside;

    /// <summary>Runs <paramref name="body"/> over [0, <paramref name="count"/>) in <paramref name="chunks"/> contiguous
    /// chunks across <paramref name="participants"/> threads (the caller and participants − 1 workers); returns when every
    /// chunk has run, rethrowing the first exception a chunk raised.</summary>
    public static void Run(int count, int chunks, int participants, Action<int, int> body)
    {
        if (_inside || participants < 2 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            body(0, count);
            return;
        }
        try
        {
            var workers = EnsureWorkers(participants - 1);
            var job = new Job(body, count, chunks, participants);
            Volatile.Write(ref _job, job);
            Interlocked.Increment(ref _generation);
            foreach (var w in workers)
                w.WakeIfParked();
            _inside = true;
            try
            {
                job.Work(0);
            }
            finally
            {
                _inside = false;
            }
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Remaining) > 0)
                spin.SpinOnce(sleep1Threshold: -1);
            if (job.Error is { } error)
                ExceptionDispatchInfo.Capture(error).Throw();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private static Worker[] EnsureWorkers(int count)
    {
        var workers = Volatile.Read(ref _workers);
        if (workers is not null && workers.Length >= count)
            return workers;
        lock (StartLock)
        {
            workers = _workers ?? [];
            if (workers.Length < count)
            {
                var grown = new Worker[count];
                Array.Copy(workers, grown, workers.Length);
                for (int i = workers.Length; i < count; i++)
                    grown[i] = new Worker(i + 1);
                Volatile.Write(ref _workers, grown);
                workers = grown;
            }
            return workers;
        }
    }

    /// <summary>A background thread that joins each loop as participant <c>Index</c> (when the loop has that many).</summary>
    private sealed class Worker
    {
        private readonly int _index;
        private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
        private int _parked;

        public Worker(int index)
        {
            _index = index;
            new Thread(Loop) { IsBackground = true, Name = $"GpuNet host worker {index}" }.Start();
        }

        /// <summary>Called after the generation moved: a parked worker is woken (a spinning one sees the generation itself).
        /// The worker parks by setting the flag and then re-reading the generation, both interlocked, so one of the two
        /// sides always sees the other.</summary>
        public void WakeIfParked()
        {
            if (Interlocked.Exchange(ref _parked, 0) == 1)
                _wake.Set();
        }

        private void Loop()
        {
            _inside = true;
            long seen = Interlocked.Read(ref _generation);
            while (true)
            {
                long started = Stopwatch.GetTimestamp();
                var spin = new SpinWait();
                while (Interlocked.Read(ref _generation) == seen)
                {
                    if (Stopwatch.GetTimestamp() - started < SpinTicks)
                    {
                        spin.SpinOnce(sleep1Threshold: -1);
                        continue;
                    }
                    Interlocked.Exchange(ref _parked, 1);
                    if (Interlocked.Read(ref _generation) == seen)
                        _wake.Wait();
                    _wake.Reset();
                    Interlocked.Exchange(ref _parked, 0);
                    started = Stopwatch.GetTimestamp();
                }
                seen = Interlocked.Read(ref _generation);
                var job = Volatile.Read(ref _job);
                if (job is not null && _index < job.Participants)
                    job.Work(_index);
            }
        }
    }
}

using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// The fast CPU device's own worker threads: one per core beyond the calling thread, each owning a fixed share of every
/// split loop, spinning (yielding) up to <see cref="Device.CpuSpinMilliseconds"/> after a loop before it sleeps.
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
/// <para>A cache line moved between the two vCPUs of the project's VM in ~270 ns (a ping-pong round trip: 540 ns), so a
/// hand-off costs what it moves: each participant claims and counts its own chunks on lines of its own (a claim word
/// tagged with the loop's id, never reset), the caller reads the workers' counts instead of all decrementing one
/// counter, and the board the workers poll is alone on its lines. An empty two-way loop went from 2.0–2.3 to 1.6–1.9 µs,
/// 16 items of 60 ns from 2.1 to 1.6, of 0.6 µs from 3.7 to 2.6 (against 2.3 on one thread).</para>
/// </remarks>
internal static class HostTeam
{
    /// <summary>How long an idle worker spins (yielding to other runnable threads) before it sleeps:
    /// <see cref="Device.CpuSpinMilliseconds"/>, 50 ms unless set. It must cover a model's single-threaded stretches between
    /// split loops (waking a sleeping worker took tens of µs on the 2-core VM: with 50 µs of spinning resnet18 ran 4.0–4.3 ms
    /// against 3.2 with Parallel.For, with 1 ms 2.9–3.5), and the gaps between one inference and the next: after a 60 ms
    /// pause a 128 → 128 3×3 convolution at 8×8 ran 0.093 ms a run for the next twelve runs with 1 ms of spinning (its vCPU
    /// idle, the core it runs on slow to come back), 0.052–0.058 with 50 ms, as back to back (10 ms: 0.093, 30 ms: fast from
    /// the sixth run). ONNX Runtime's pool spins about as long after a run.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency * Device.CpuSpinMilliseconds / 1000;

    /// <summary>How long a thread waiting for a loop (a worker for the next, the caller for the others' last chunks) spins
    /// on pause instructions alone before it also yields: a yield is a system call, and a loop arriving during one waited
    /// for its return.</summary>
    private static readonly long PauseTicks = Stopwatch.Frequency / 20000;

    /// <summary>Longs per participant in <see cref="_lanes"/>: 256 bytes, its claim counter on one 128-byte pair of cache
    /// lines and its finished count and parked flag on the next (Zen's prefetcher fetches lines in pairs), so that a core
    /// claiming its own chunks, or the caller polling another's finished count, moves no line another core is writing.</summary>
    private const int LaneLongs = 32;
    private const int DoneAt = 16, ParkedAt = 24;

    /// <summary>Bits of a lane's claim and finished words that count chunks; the job's id is above them.</summary>
    private const int ChunkBits = 16;
    private const int MaxChunks = 1 << ChunkBits;

    /// <summary>One split loop. Immutable but for <see cref="Error"/>; a new one per loop, with a larger <see cref="Id"/>.</summary>
    private sealed class Job(long id, Action<int, int> body, int count, int chunks, int participants)
    {
        public readonly long Id = id;
        public readonly Action<int, int> Body = body;
        public readonly int Count = count, Chunks = chunks, Participants = participants;
        public Exception? Error;

        public int Start(int p) => (int)((long)Chunks * p / Participants);

        /// <summary>Runs chunks of participant <paramref name="self"/>'s share, then of the others' (in turn after it); returns
        /// how many chunks it ran (or skipped after an error).</summary>
        public int Work(int self, long[] lanes)
        {
            int ran = 0;
            for (int i = 0; i < Participants; i++)
            {
                int owner = (self + i) % Participants;
                while (Claim(ref lanes[owner * LaneLongs], Start(owner), Start(owner + 1)) is var chunk && chunk >= 0)
                {
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
                    ran++;
                    // The caller counts a worker's chunks by this word (its own is counted in place).
                    if (self != 0)
                        Volatile.Write(ref lanes[self * LaneLongs + DoneAt], (Id << ChunkBits) | (uint)ran);
                }
            }
            return ran;
        }

        /// <summary>
        /// The next unclaimed chunk in [<paramref name="start"/>, <paramref name="end"/>) of one participant's share, or −1.
        /// The lane holds (job id, next chunk): a lane still tagged with an earlier job starts this one's share afresh, and a
        /// lane tagged with a later job means this loop ended long ago (a worker that saw it late must not run its chunks
        /// again) — so no lane is ever reset, and a core claiming its own share touches only its own line.
        /// </summary>
        private int Claim(ref long lane, int start, int end)
        {
            while (true)
            {
                long word = Volatile.Read(ref lane), tag = word >> ChunkBits;
                if (tag > Id)
                    return -1;
                int next = tag == Id ? (int)(word & (MaxChunks - 1)) : start;
                if (next >= end)
                    return -1;
                if (Interlocked.CompareExchange(ref lane, (Id << ChunkBits) | (uint)(next + 1), word) == word)
                    return next;
            }
        }
    }

    /// <summary>The loop in progress, for the workers to see: alone on its cache lines, as every worker polls it.</summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 256)]
    private sealed class Board
    {
        [System.Runtime.InteropServices.FieldOffset(128)]
        public Job? Current;
    }

    private static readonly object StartLock = new();
    private static Worker[]? _workers;
    private static readonly Board Posted = new();
    private static long[] _lanes = new long[2 * LaneLongs];
    private static long _lastId;
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
            var lanes = _lanes;
            var job = new Job(++_lastId, body, count, Math.Min(chunks, MaxChunks - 1), participants);
            // Published with a full fence, then each worker's parked flag read: a worker parks by setting its flag and then
            // re-reading the board, both fenced, so one of the two sides always sees the other.
            Interlocked.Exchange(ref Posted.Current, job);
            for (int w = 0; w < participants - 1; w++)
                workers[w].WakeIfParked(lanes);
            int ran;
            _inside = true;
            try
            {
                ran = job.Work(0, lanes);
            }
            finally
            {
                _inside = false;
            }
            WaitForWorkers(job, lanes, ran);
            if (job.Error is { } error)
                ExceptionDispatchInfo.Capture(error).Throw();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Waits until the workers' finished counts for <paramref name="job"/> and the caller's <paramref name="ran"/> add
    /// up to every chunk (a claimed chunk is always finished and counted by the thread that claimed it).</summary>
    private static void WaitForWorkers(Job job, long[] lanes, int ran)
    {
        long started = Stopwatch.GetTimestamp();
        var spin = new SpinWait();
        while (true)
        {
            int total = ran;
            for (int p = 1; p < job.Participants; p++)
            {
                long word = Volatile.Read(ref lanes[p * LaneLongs + DoneAt]);
                if (word >> ChunkBits == job.Id)
                    total += (int)(word & (MaxChunks - 1));
            }
            if (total >= job.Chunks)
                return;
            if (Stopwatch.GetTimestamp() - started < PauseTicks)
                Thread.SpinWait(4);
            else
                spin.SpinOnce(sleep1Threshold: -1);
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
                // The lanes grow before the new workers start (and while no loop runs: the caller holds the team).
                var lanes = new long[(count + 1) * LaneLongs];
                Array.Copy(_lanes, lanes, Math.Min(_lanes.Length, lanes.Length));
                Volatile.Write(ref _lanes, lanes);
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

        public Worker(int index)
        {
            _index = index;
            new Thread(Loop) { IsBackground = true, Name = $"GpuNet host worker {index}" }.Start();
        }

        /// <summary>Called after a loop was posted: a parked worker is woken (a spinning one sees the board itself). The flag
        /// is read before it is exchanged, so a spinning worker's line is not pulled away from it on every loop.</summary>
        public void WakeIfParked(long[] lanes)
        {
            ref long parked = ref lanes[_index * LaneLongs + ParkedAt];
            if (Volatile.Read(ref parked) == 1 && Interlocked.Exchange(ref parked, 0) == 1)
                _wake.Set();
        }

        private void Loop()
        {
            _inside = true;
            var seen = Volatile.Read(ref Posted.Current);
            while (true)
            {
                long started = Stopwatch.GetTimestamp();
                var spin = new SpinWait();
                Job? job;
                while ((job = Volatile.Read(ref Posted.Current)) == seen)
                {
                    long spun = Stopwatch.GetTimestamp() - started;
                    if (spun < PauseTicks)
                    {
                        Thread.SpinWait(4);
                        continue;
                    }
                    if (spun < SpinTicks)
                    {
                        spin.SpinOnce(sleep1Threshold: -1);
                        continue;
                    }
                    // The lanes array is only replaced while no worker can be parked on an old one being read here: it grows
                    // before new workers start, under the caller's hold of the team.
                    ref long parked = ref Volatile.Read(ref _lanes)[_index * LaneLongs + ParkedAt];
                    Interlocked.Exchange(ref parked, 1);
                    if (Volatile.Read(ref Posted.Current) == seen)
                        _wake.Wait();
                    _wake.Reset();
                    Interlocked.Exchange(ref parked, 0);
                    started = Stopwatch.GetTimestamp();
                }
                seen = job;
                if (job is not null && _index < job.Participants)
                    job.Work(_index, Volatile.Read(ref _lanes));
            }
        }
    }
}

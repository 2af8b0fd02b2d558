namespace GpuNet;

/// <summary>
/// One repeated sequence of allocations — a model's run at one input shape — planned once into a single buffer by the
/// lifetimes it showed. The second run inside <see cref="Begin"/> is recorded (the first makes what later runs find made:
/// weights uploaded once, cached windows): every request of the calling thread is served
/// by the <see cref="MemoryPool"/> as usual while the arena notes its size class and when it was returned. At the end the
/// buffers that were returned inside the run get offsets in one arena, largest first, each at the lowest offset clear of
/// every buffer whose lifetime overlaps its own (buffers that outlive the run — outputs, caches — stay with the pool).
/// Later runs take the same requests from the arena by position: no lock, no cache lookup, the same addresses every run.
/// </summary>
/// <remarks>
/// A replayed run is checked as it goes: a request of another size than recorded, or one whose place another buffer still
/// holds, is served by the pool and the arena is planned again on the next run; a buffer still held when the run ends keeps
/// the arena's memory alive (it is retired, not reused) until it is returned. A run already inside the arena on another
/// thread uses the pool.
/// </remarks>
public sealed class MemoryArena : IDisposable
{
    private readonly MemoryPool _pool;
    private readonly object _lock = new();
    private readonly List<(long Size, int Start, int End)> _recorded = new();
    private readonly Dictionary<PooledBuffer, int> _recording = new(ReferenceEqualityComparer.Instance);
    private Plan? _plan;

    /// <summary>The plan the current run replays (taken at <see cref="Begin"/>, so a <see cref="Dispose"/> meanwhile leaves
    /// the run its buffer); null while a run is recorded.</summary>
    private Plan? _replay;
    private int _clock, _next, _busy, _runs;
    private bool _invalid, _disposed;

    [ThreadStatic] private static MemoryArena? _current;

    internal MemoryArena(MemoryPool pool) => _pool = pool;

    /// <summary>The arena's size in bytes once planned; 0 before.</summary>
    public long Bytes => _plan?.Bytes ?? 0;

    /// <summary>Runs served from the planned arena (without a fallback to the pool) so far.</summary>
    public int Replays { get; private set; }

    /// <summary>Times the arena was planned (once, unless a run's requests differed from the recorded ones).</summary>
    public int Plans { get; private set; }

    /// <summary>The placement of one recorded sequence: per request its offset (−1: served by the pool), per placed
    /// request the earlier ones it shares memory with, and the buffer while any of its slices or the arena holds it.</summary>
    private sealed class Plan(long[] sizes, long[] offsets, int[][] overlaps, long bytes, PooledBuffer buffer)
    {
        public readonly long[] Sizes = sizes, Offsets = offsets;
        public readonly int[][] Overlaps = overlaps;
        public readonly long Bytes = bytes;
        public readonly PooledBuffer Buffer = buffer;
        public readonly bool[] Live = new bool[sizes.Length];

        /// <summary>Each placed request's slice, made on its first replay and handed out again by every later one.</summary>
        public readonly PooledBuffer?[] Slices = new PooledBuffer?[sizes.Length];

        /// <summary>Slices out plus one for the arena itself; the buffer goes back to the pool at zero.</summary>
        public int Holds = 1;

        /// <summary>Whether the arena has let go of its own hold (<see cref="Retire"/>).</summary>
        public bool Retired;
    }

    /// <summary>
    /// Starts a run on the calling thread: recorded if the arena has no plan, else served from it. Dispose the result when
    /// the run ends.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The arena was disposed.</exception>
    public IDisposable Begin()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            return new Scope(null, _current);
        if (_runs++ == 0)
        {
            // The first run is not recorded: it makes what later runs find made (weights uploaded once, cached windows).
            Volatile.Write(ref _busy, 0);
            return new Scope(null, _current);
        }
        var outer = _current;
        _current = this;
        _clock = _next = 0;
        _invalid = false;
        _replay = _plan;
        if (_replay is null)
        {
            _recorded.Clear();
            _recording.Clear();
        }
        return new Scope(this, outer);
    }

    private sealed class Scope(MemoryArena? arena, MemoryArena? outer) : IDisposable
    {
        private bool _ended;

        public void Dispose()
        {
            if (_ended)
                return;
            _ended = true;
            if (arena is null)
                return;
            MemoryArena._current = outer;
            arena.End();
            Volatile.Write(ref arena._busy, 0);
        }
    }

    /// <summary>The arena serving the calling thread's requests to <paramref name="pool"/>, if any.</summary>
    internal static MemoryArena? Active(MemoryPool pool) => _current is { } a && a._pool == pool ? a : null;

    /// <summary>
    /// A request of size class <paramref name="size"/> inside the run: a slice of the arena, or null for the pool to serve
    /// (recording, an escaping request, a mismatch or a conflict).
    /// </summary>
    internal PooledBuffer? Take(long size)
    {
        int index = _next++;
        if (_replay is not { } plan || _invalid)
            return null;
        if (index >= plan.Sizes.Length || plan.Sizes[index] != size)
        {
            _invalid = true;
            return null;
        }
        if (plan.Offsets[index] < 0)
            return null;
        foreach (int earlier in plan.Overlaps[index])
            if (plan.Live[earlier])
            {
                _invalid = true;
                return null;
            }
        plan.Live[index] = true;
        lock (_lock)
            plan.Holds++;
        return plan.Slices[index] ??= new PooledBuffer(plan.Buffer.Buffer, size, plan.Buffer.OffsetBytes + plan.Offsets[index], this, plan, index);
    }

    /// <summary>While recording: the pool served request <see cref="_next"/> − 1 with <paramref name="buffer"/>.</summary>
    internal void Served(PooledBuffer buffer, long size)
    {
        if (_replay is not null)
            return;
        _recording[buffer] = _recorded.Count;
        _recorded.Add((size, _clock++, -1));
    }

    /// <summary>A pool buffer returned: while recording, the end of its lifetime.</summary>
    internal void Returned(PooledBuffer buffer)
    {
        if (_replay is not null || !_recording.Remove(buffer, out int index))
            return;
        var r = _recorded[index];
        _recorded[index] = (r.Size, r.Start, _clock++);
    }

    /// <summary>An arena slice returned (on any thread, or by the pool taking back a leaked one).</summary>
    internal void Release(PooledBuffer slice)
    {
        var plan = (Plan)slice.Plan!;
        plan.Live[slice.Index] = false;
        Drop(plan);
    }

    /// <summary>The arena's own hold on <paramref name="plan"/> let go, once; its buffer goes back when no slice is out.</summary>
    private void Retire(Plan plan)
    {
        lock (_lock)
        {
            if (plan.Retired)
                return;
            plan.Retired = true;
        }
        Drop(plan);
    }

    private void Drop(Plan plan)
    {
        bool free;
        lock (_lock)
            free = --plan.Holds == 0;
        if (free)
            _pool.Return(plan.Buffer);
    }

    private void End()
    {
        if (_replay is { } plan)
        {
            _replay = null;
            bool held = false;
            foreach (bool live in plan.Live)
                held |= live;
            if (!_invalid && _next == plan.Sizes.Length && !held)
            {
                Replays++;
                return;
            }
            // Planned again next run; slices still out keep the old buffer until they come back.
            if (_plan == plan)
                _plan = null;
            Retire(plan);
            return;
        }
        PlanRecorded();
    }

    /// <summary>Offsets for the recorded requests returned inside the run: largest first, each at the lowest offset (in
    /// 64-byte steps) clear of the placed ones whose lifetimes overlap its own.</summary>
    private void PlanRecorded()
    {
        if (_disposed)
            return;
        int count = _recorded.Count;
        var sizes = new long[count];
        var offsets = new long[count];
        var order = new List<int>();
        for (int i = 0; i < count; i++)
        {
            sizes[i] = _recorded[i].Size;
            offsets[i] = -1;
            if (_recorded[i].End >= 0)
                order.Add(i);
        }
        _recording.Clear();
        if (order.Count == 0)
            return;
        order.Sort((a, b) => sizes[b] != sizes[a] ? sizes[b].CompareTo(sizes[a]) : a.CompareTo(b));
        var placed = new List<int>();
        long bytes = 0;
        foreach (int i in order)
        {
            var (size, start, end) = _recorded[i];
            // The intervals taken by placed requests alive at the same time, by offset; the first gap that fits.
            var taken = placed.Where(j => _recorded[j].Start < end && start < _recorded[j].End)
                .Select(j => (From: offsets[j], To: offsets[j] + sizes[j])).OrderBy(t => t.From);
            long at = 0;
            foreach (var (from, to) in taken)
            {
                if (at + size <= from)
                    break;
                at = Math.Max(at, (to + MemoryPool.HostAlignment - 1) / MemoryPool.HostAlignment * MemoryPool.HostAlignment);
            }
            offsets[i] = at;
            bytes = Math.Max(bytes, at + size);
            placed.Add(i);
        }
        // Per placed request: the earlier ones sharing its bytes, which must be returned before it is handed out.
        var overlaps = new int[count][];
        for (int i = 0; i < count; i++)
        {
            var list = new List<int>();
            if (offsets[i] >= 0)
                for (int j = 0; j < i; j++)
                    if (offsets[j] >= 0 && offsets[j] < offsets[i] + sizes[i] && offsets[i] < offsets[j] + sizes[j])
                        list.Add(j);
            overlaps[i] = list.ToArray();
        }
        PooledBuffer buffer;
        try
        {
            buffer = _pool.Rent(bytes, "memory_arena");
        }
        catch (DeviceOutOfMemoryException)
        {
            // No room for the arena: the runs go on from the pool, and the next one records again.
            return;
        }
        _plan = new Plan(sizes, offsets, overlaps, bytes, buffer);
        Plans++;
    }

    /// <summary>Gives the arena's buffer back to the pool (once every slice still out is returned too).</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_plan is { } plan)
        {
            _plan = null;
            Retire(plan);
        }
    }
}

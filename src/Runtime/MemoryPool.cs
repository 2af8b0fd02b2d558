using ILGPU;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>A snapshot of a <see cref="MemoryPool"/>'s accounting. All sizes in bytes.</summary>
/// <param name="BytesInUse">Bytes held by live tensors (size-class rounded).</param>
/// <param name="PeakBytesInUse">Largest <paramref name="BytesInUse"/> seen since creation or the last <see cref="MemoryPool.ResetPeak"/>.</param>
/// <param name="BytesCached">Bytes held in the cache, free for reuse.</param>
/// <param name="Requests">Allocations asked of the pool.</param>
/// <param name="CacheHits">Requests served from the cache without touching the device allocator.</param>
/// <param name="DeviceAllocations">Requests that went to the device allocator.</param>
/// <param name="LimitBytes">Cap on in-use plus cached bytes, or 0 for none.</param>
/// <param name="LeaksReclaimed">Buffers of tensors the garbage collector finalized without a <c>Dispose</c>, taken back into the
/// cache (see <see cref="MemoryPool.LeaksReclaimed"/>).</param>
public readonly record struct MemoryPoolStats(
    long BytesInUse,
    long PeakBytesInUse,
    long BytesCached,
    long Requests,
    long CacheHits,
    long DeviceAllocations,
    long LimitBytes,
    long LeaksReclaimed = 0)
{
    /// <summary>Bytes the pool holds from the device (in use plus cached).</summary>
    public long BytesReserved => BytesInUse + BytesCached;

    /// <inheritdoc />
    public override string ToString() =>
        $"in use {FormatBytes(BytesInUse)}, peak {FormatBytes(PeakBytesInUse)}, cached {FormatBytes(BytesCached)}, " +
        $"requests {Requests}, cache hits {CacheHits}, device allocations {DeviceAllocations}" +
        (LimitBytes > 0 ? $", limit {FormatBytes(LimitBytes)}" : "") +
        (LeaksReclaimed > 0 ? $", leaked tensors reclaimed {LeaksReclaimed}" : "");

    /// <summary>Formats a byte count as B, KiB, MiB or GiB.</summary>
    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.#} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB",
    };
}

/// <summary>A device buffer rented from a <see cref="MemoryPool"/>.</summary>
internal sealed class PooledBuffer
{
    internal PooledBuffer(MemoryBuffer1D<byte, Stride1D.Dense> buffer, long classBytes, long offsetBytes = 0)
    {
        Buffer = buffer;
        ClassBytes = classBytes;
        OffsetBytes = offsetBytes;
    }

    /// <summary>A slice of a <see cref="MemoryArena"/>'s buffer: request <paramref name="index"/> of its plan.</summary>
    internal PooledBuffer(MemoryBuffer1D<byte, Stride1D.Dense> buffer, long classBytes, long offsetBytes, MemoryArena arena, object plan, int index)
        : this(buffer, classBytes, offsetBytes)
    {
        Arena = arena;
        Plan = plan;
        Index = index;
    }

    /// <summary>The arena this is a slice of, or null for a buffer of the pool's own.</summary>
    internal MemoryArena? Arena { get; }

    /// <summary>The arena's plan the slice belongs to, and its request's index there.</summary>
    internal object? Plan { get; }
    internal int Index { get; }

    internal MemoryBuffer1D<byte, Stride1D.Dense> Buffer { get; }

    internal long ClassBytes { get; }

    /// <summary>Where the buffer's usable bytes start within <see cref="Buffer"/> (see <see cref="MemoryPool.HostAlignment"/>).</summary>
    internal long OffsetBytes { get; }

    /// <summary>The <see cref="ClassBytes"/> bytes tensors use.</summary>
    internal ArrayView<byte> View => Buffer.View.BaseView.SubView(OffsetBytes, ClassBytes);

    /// <summary>The device address of <see cref="View"/>'s first byte.</summary>
    internal long Address => Buffer.NativePtr.ToInt64() + OffsetBytes;
}

/// <summary>
/// A caching allocator per device. Requests are rounded up to a size class; a freed buffer goes
/// to its class's free list and serves the next request of that class without a device call
/// (device allocation is slow and synchronizing on CUDA). Classes are powers of two up to 1 MiB
/// and eight steps per power of two above, so rounding wastes at most 12.5% on large buffers.
/// </summary>
/// <remarks>
/// A tensor dropped without <c>Dispose</c> is not lost: the pool holds every rented buffer, so when the garbage collector
/// finalizes the tensor's storage its buffer is queued (the finalizer thread does nothing else) and the next call into the
/// pool on an ordinary thread puts it back in the cache, counted in <see cref="MemoryPoolStats.LeaksReclaimed"/>. With
/// <c>GPUNET_LEAK_CHECK=1</c> each tensor records where it was made and each reclaimed one is reported (standard error
/// and <see cref="LeakReports"/>) with that place.
/// </remarks>
public sealed class MemoryPool
{
    private const long MinClass = 256;

    /// <summary>
    /// Alignment in bytes of every buffer on a host (CPU) accelerator: a cache line. The host allocator's 16-byte alignment
    /// made every 64-byte vector load and store of the fast CPU kernels span two lines, and put the line at each boundary
    /// between two cores' shares of an output in both cores' caches at once, moving between them as each wrote its half
    /// (a depthwise layer split into row bands per core ran at half speed).
    /// </summary>
    internal const long HostAlignment = 64;
    private const long SmallLimit = 1 << 20;

    private readonly Device _device;
    private readonly Dictionary<long, Stack<PooledBuffer>> _free = new();
    private readonly HashSet<PooledBuffer> _rented = new(ReferenceEqualityComparer.Instance);
    private readonly System.Collections.Concurrent.ConcurrentQueue<PooledBuffer> _orphans = new();
    private readonly List<string> _leakReports = new();
    private readonly object _lock = new();
    private long _inUse, _peak, _cached, _requests, _hits, _deviceAllocs, _leaksReclaimed;

    internal MemoryPool(Device device) => _device = device;

    /// <summary>
    /// Cap on the bytes the pool may hold from the device (in use plus cached); 0 means no cap
    /// beyond the device's own memory. A request over the cap raises
    /// <see cref="DeviceOutOfMemoryException"/> exactly as a real out-of-memory would.
    /// </summary>
    public long LimitBytes { get; set; }

    /// <summary>The current accounting.</summary>
    public MemoryPoolStats Stats
    {
        get
        {
            lock (_lock)
            {
                TakeBackOrphans();
                return new MemoryPoolStats(_inUse, _peak, _cached, _requests, _hits, _deviceAllocs, LimitBytes, _leaksReclaimed);
            }
        }
    }

    /// <summary>Bytes held by live tensors now (as <see cref="Stats"/>' BytesInUse, without taking back orphaned buffers first):
    /// cheap enough to read after every node of a model.</summary>
    public long BytesInUse => Interlocked.Read(ref _inUse);

    /// <summary>The size class a request of <paramref name="bytes"/> is rounded up to.</summary>
    public static long SizeClass(long bytes)
    {
        if (bytes <= MinClass)
            return MinClass;
        if (bytes <= SmallLimit)
            return (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)bytes);
        long pow = 1L << (63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)bytes));
        long step = pow / 8;
        return (bytes + step - 1) / step * step;
    }

    /// <summary>Starts peak tracking again from the current in-use bytes.</summary>
    public void ResetPeak()
    {
        lock (_lock)
            _peak = _inUse;
    }

    /// <summary>Frees every cached (unused) buffer back to the device.</summary>
    public void TrimCache()
    {
        lock (_lock)
        {
            TakeBackOrphans();
            foreach (var stack in _free.Values)
                while (stack.Count > 0)
                    stack.Pop().Buffer.Dispose();
            _free.Clear();
            _cached = 0;
        }
    }

    /// <summary>
    /// An arena for one repeated sequence of this pool's allocations on one thread (a model's run at one input shape): see
    /// <see cref="MemoryArena"/>. The caller disposes it.
    /// </summary>
    public MemoryArena CreateArena() => new(this);

    internal PooledBuffer Rent(long bytes, string op)
    {
        _device.EnsureAlive(op);
        long cls = SizeClass(bytes);
        var arena = MemoryArena.Active(this);
        if (arena?.Take(cls) is { } slice)
        {
            lock (_lock)
            {
                _requests++;
                _hits++;
            }
            return slice;
        }
        var b = RentFromPool(cls, bytes, op);
        arena?.Served(b, cls);
        return b;
    }

    private PooledBuffer RentFromPool(long cls, long bytes, string op)
    {
        lock (_lock)
            _requests++;
        // The cache first; on a miss the device. When the device (or the limit) refuses: collect leaked tensors once (their
        // buffers come back into the cache, which may then serve this class), and give the cache back to the device before
        // each further try, so neither leaks nor cached-but-unused memory ever cause an out-of-memory.
        bool reclaimed = false;
        for (int attempt = 0; ; attempt++)
        {
            Exception? cause = null;
            bool overLimit;
            lock (_lock)
            {
                TakeBackOrphans();
                if (_free.TryGetValue(cls, out var stack) && stack.Count > 0)
                {
                    _hits++;
                    _cached -= cls;
                    return Track(stack.Pop());
                }
                overLimit = LimitBytes > 0 && _inUse + _cached + cls > LimitBytes;
            }
            if (!overLimit)
            {
                try
                {
                    // Host memory comes 16-byte aligned; tensors start on a cache line (a GPU's allocator aligns far more).
                    bool host = _device.Accelerator.AcceleratorType == AcceleratorType.CPU;
                    var buffer = _device.Accelerator.Allocate1D<byte>(host ? cls + HostAlignment : cls);
                    long offset = host ? (HostAlignment - buffer.NativePtr.ToInt64() % HostAlignment) % HostAlignment : 0;
                    lock (_lock)
                    {
                        _deviceAllocs++;
                        return Track(new PooledBuffer(buffer, cls, offset));
                    }
                }
                catch (Exception e) when (e is OutOfMemoryException or AcceleratorException or InsufficientExecutionStackException)
                {
                    cause = e;
                }
            }
            if (!reclaimed)
            {
                reclaimed = true;
                if (ReclaimLeaks())
                    continue;
            }
            if (attempt < 3 && Stats.BytesCached > 0)
            {
                TrimCache();
                continue;
            }
            throw new DeviceOutOfMemoryException(op, _device.Id, bytes, Stats, cause);
        }
    }

    private PooledBuffer Track(PooledBuffer b)
    {
        _rented.Add(b);
        _inUse += b.ClassBytes;
        if (_inUse > _peak)
            _peak = _inUse;
        return b;
    }

    internal void Return(PooledBuffer b)
    {
        if (b.Arena is { } owner)
        {
            owner.Release(b);
            return;
        }
        MemoryArena.Active(this)?.Returned(b);
        lock (_lock)
            ReturnLocked(b);
    }

    /// <summary>Under the lock: a rented buffer back into the cache (false, and nothing done, for one not rented); an arena's
    /// slice back to its arena.</summary>
    private bool ReturnLocked(PooledBuffer b)
    {
        if (b.Arena is { } owner)
        {
            owner.Release(b);
            return true;
        }
        if (!_rented.Remove(b))
            return false;
        _inUse -= b.ClassBytes;
        if (_device.IsDisposed)
            return true;
        if (!_free.TryGetValue(b.ClassBytes, out var stack))
            _free[b.ClassBytes] = stack = new Stack<PooledBuffer>();
        stack.Push(b);
        _cached += b.ClassBytes;
        return true;
    }

    /// <summary>A buffer whose tensors were collected without being disposed (TensorStorage's finalizer, on the finalizer
    /// thread): queued only, so the finalizer never waits on the pool's lock; the next call into the pool takes it back.
    /// <paramref name="report"/> is the leak check's description of the tensor, or null.</summary>
    internal void Orphan(PooledBuffer b, string? report)
    {
        if (report is not null)
        {
            Console.Error.WriteLine(report);
            lock (_leakReports)
            {
                if (_leakReports.Count == MaxLeakReports)
                    _leakReports.RemoveAt(0);
                _leakReports.Add(report);
            }
        }
        _orphans.Enqueue(b);
    }

    private const int MaxLeakReports = 100;

    /// <summary>Under the lock: the orphaned buffers back into the cache.</summary>
    private void TakeBackOrphans()
    {
        while (_orphans.TryDequeue(out var b))
            if (ReturnLocked(b))
                _leaksReclaimed++;
    }

    /// <summary>Buffers of tensors that were collected without being disposed and taken back into the cache, since creation.</summary>
    public long LeaksReclaimed => Stats.LeaksReclaimed;

    /// <summary>With <c>GPUNET_LEAK_CHECK=1</c>: the last 100 reports of tensors collected without <c>Dispose</c>, each naming
    /// the op that made the tensor and the caller's code that called it (also written to standard error); empty otherwise.</summary>
    public IReadOnlyList<string> LeakReports
    {
        get
        {
            lock (_leakReports)
                return _leakReports.ToArray();
        }
    }

    /// <summary>
    /// Before an allocation is refused: collects garbage and runs pending finalizers, so tensors nobody disposed and
    /// nobody references any more give their bytes back (their storage's finalizer calls <see cref="Orphan"/>). True when
    /// that freed anything. A program that disposes its tensors never gets here with anything to collect.
    /// </summary>
    private bool ReclaimLeaks()
    {
        long before = Stats.BytesInUse;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Stats.BytesInUse < before;
    }

    internal void ReleaseAll() => TrimCache();
}

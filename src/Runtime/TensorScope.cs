namespace GpuNet;

/// <summary>
/// Disposes the tensors created inside it (on its device and thread) when it is disposed, so a
/// block of work leaves no temporaries behind. Scopes nest; <see cref="Keep"/> hands a tensor
/// to the enclosing scope (or to the caller, when there is none).
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic]
    private static List<TensorScope>? _stack;

    // Null once disposed: the set goes back to this thread's pool (an ONNX run opens a scope per node and per op). A scope
    // disposed on another thread than it was opened on stays on its opener's stack, so readers below allow null.
    private OwnedTensors? _owned = OwnedTensors.Rent();
    private bool _disposed;

    private TensorScope(Device device) => Device = device;

    /// <summary>The device whose tensors this scope collects.</summary>
    public Device Device { get; }

    /// <summary>Number of live tensors the scope will dispose.</summary>
    public int Count => _owned?.Count ?? 0;

    internal static TensorScope Push(Device device)
    {
        var scope = new TensorScope(device);
        (_stack ??= new List<TensorScope>()).Add(scope);
        return scope;
    }

    private static TensorScope? Innermost(Device device, TensorScope? below = null)
    {
        if (_stack is null)
            return null;
        int start = below is null ? _stack.Count - 1 : _stack.IndexOf(below) - 1;
        for (int i = start; i >= 0; i--)
            if (ReferenceEquals(_stack[i].Device, device))
                return _stack[i];
        return null;
    }

    internal static void Register(Tensor t) => Innermost(t.Device)?._owned?.Add(t);

    /// <summary>Whether <paramref name="tensor"/> belongs to the innermost scope open on this thread for its device: a temporary
    /// of the block of work now running, which that scope disposes unless it is kept or escapes. (An importer can hand such
    /// a result on as it is, where a tensor it did not make needs a handle of its own.)</summary>
    public static bool IsTemporary(Tensor tensor) => Innermost(tensor.Device) is { } scope && scope._owned?.Contains(tensor) == true;

    internal static void Unregister(Tensor t)
    {
        if (_stack is null)
            return;
        for (int i = _stack.Count - 1; i >= 0; i--)
            if (_stack[i]._owned?.Remove(t) == true)
                return;
    }

    /// <summary>Takes <paramref name="tensor"/> out of whatever scope owns it: no scope will dispose it (long-lived state made
    /// while a scope happens to be open, such as optimizer moments). Returns it.</summary>
    public static Tensor Escape(Tensor tensor)
    {
        Unregister(tensor);
        return tensor;
    }

    /// <summary>Moves <paramref name="tensor"/> out of this scope into the enclosing one (or none) and returns it.</summary>
    public Tensor Keep(Tensor tensor)
    {
        if (_owned?.Remove(tensor) == true)
            Innermost(Device, this)?._owned?.Add(tensor);
        return tensor;
    }

    /// <summary>Disposes every tensor still owned and closes the scope (and any scope opened inside it and left open).</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_stack is not null)
        {
            int at = _stack.IndexOf(this);
            if (at >= 0)
            {
                for (int i = _stack.Count - 1; i > at; i--)
                    _stack[i].Dispose();
                _stack.RemoveAt(at);
            }
        }
        var owned = _owned!;
        _owned = null;
        owned.DisposeAll();
        OwnedTensors.Return(owned);
    }

    /// <summary>
    /// The tensors a scope owns: a short list searched from its end (most scopes hold a handful — an ONNX node's or an op's
    /// temporaries, created and escaped last-in first-out), which becomes a hash set past <see cref="ListLimit"/> (a training
    /// step's tape). A hash set per scope allocated its buckets, and rehashed as it grew, for every node of every run.
    /// </summary>
    private sealed class OwnedTensors
    {
        private const int ListLimit = 32;
        private readonly List<Tensor> _list = new(4);
        private HashSet<Tensor>? _set;

        /// <summary>Emptied sets of this thread's closed scopes, reused by the next ones.</summary>
        [ThreadStatic]
        private static Stack<OwnedTensors>? _pool;

        public static OwnedTensors Rent() => _pool is { Count: > 0 } pool ? pool.Pop() : new OwnedTensors();

        /// <summary>Keeps an emptied set for reuse (a few per thread: scopes nest only so deep).</summary>
        public static void Return(OwnedTensors owned)
        {
            var pool = _pool ??= new Stack<OwnedTensors>();
            if (pool.Count < 16 && owned._list.Capacity <= ListLimit)
                pool.Push(owned);
        }

        public int Count => _set?.Count ?? _list.Count;

        public void Add(Tensor t)
        {
            if (_set is not null)
            {
                _set.Add(t);
                return;
            }
            if (IndexOf(t) >= 0)
                return;
            if (_list.Count < ListLimit)
            {
                _list.Add(t);
                return;
            }
            _set = new HashSet<Tensor>(_list, ReferenceEqualityComparer.Instance) { t };
            _list.Clear();
        }

        public bool Contains(Tensor t) => _set?.Contains(t) ?? IndexOf(t) >= 0;

        public bool Remove(Tensor t)
        {
            if (_set is not null)
                return _set.Remove(t);
            int at = IndexOf(t);
            if (at < 0)
                return false;
            _list.RemoveAt(at);
            return true;
        }

        /// <summary>Disposes every owned tensor and empties the set. The scope is off the stack by now, so a disposed tensor's
        /// unregistering does not come back to this list, which is walked in place (a copy per scope was an allocation per
        /// ONNX node).</summary>
        public void DisposeAll()
        {
            if (_set is not null)
            {
                var all = _set.ToArray();
                _set = null;
                foreach (var t in all)
                    t.Dispose();
                return;
            }
            for (int i = 0; i < _list.Count; i++)
                _list[i].Dispose();
            _list.Clear();
        }

        private int IndexOf(Tensor t)
        {
            for (int i = _list.Count - 1; i >= 0; i--)
                if (ReferenceEquals(_list[i], t))
                    return i;
            return -1;
        }
    }
}

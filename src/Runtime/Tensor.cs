using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>
/// Device memory shared by a tensor and its views. Reference-counted: the buffer goes back to the
/// pool when the last tensor over it is disposed, so disposing a base tensor never invalidates a
/// view that is still alive.
/// </summary>
internal sealed class TensorStorage
{
    private int _refs = 1;

    /// <summary>With the leak check on, where the storage was made (the op, then the caller's frames); else null.</summary>
    private readonly string? _site;

    internal TensorStorage(Device device, PooledBuffer buffer, long capacity, int[]? shape = null, DType dtype = DType.Float32)
    {
        Device = device;
        Buffer = buffer;
        Capacity = capacity;
        DType = dtype;
        if (LeakCheck)
            _site = LeakSite.Describe(device, capacity, shape);
    }

    /// <summary>GPUNET_LEAK_CHECK=1: every storage records where it was made (a stack walk per tensor: for finding leaks,
    /// not for speed), and one collected without being disposed is reported with that place. Settable by the tests.</summary>
    internal static bool LeakCheck = Environment.GetEnvironmentVariable("GPUNET_LEAK_CHECK") == "1";

    internal Device Device { get; }

    /// <summary>What the elements are; every view over the storage shares it.</summary>
    internal DType DType { get; }

    internal PooledBuffer Buffer { get; }

    /// <summary>Elements a view may reach (what was asked for, not the size class the pool rounded it to).</summary>
    internal long Capacity { get; }

    internal void AddRef() => Interlocked.Increment(ref _refs);

    /// <summary>True when exactly one tensor holds the memory (so it may be updated in place without surprising a view).</summary>
    internal bool IsExclusive => Volatile.Read(ref _refs) == 1;

    internal void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            GC.SuppressFinalize(this);
            Device.Pool.Return(Buffer);
        }
    }

    /// <summary>
    /// A storage collected while a tensor over it was never disposed (a leak): the pool still holds the buffer, so it is
    /// handed back to be reused (queued here, taken back by the next pool call on an ordinary thread).
    /// </summary>
    ~TensorStorage()
    {
        if (Volatile.Read(ref _refs) > 0)
            Device.Pool.Orphan(Buffer, _site is null ? null : $"GpuNet leak check: {_site}");
    }
}

/// <summary>Where a tensor was made, for <c>GPUNET_LEAK_CHECK=1</c>: the GpuNet call the program made and the program's frames
/// that led to it (GpuNet's own frames between are left out).</summary>
internal static class LeakSite
{
    private static readonly HashSet<string> LibraryAssemblies = new(StringComparer.Ordinal)
    {
        "GpuNet.Runtime", "GpuNet.Kernels", "GpuNet.Ops", "GpuNet.Layers", "GpuNet.Onnx",
    };

    public static string Describe(Device device, long capacity, int[]? shape)
    {
        var frames = new System.Diagnostics.StackTrace(2, fNeedFileInfo: true).GetFrames();
        string what = shape is null ? $"{capacity} floats" : GpuNetException.FormatShape(shape);
        int first = Array.FindIndex(frames, f => f.GetMethod() is { } m && !LibraryAssemblies.Contains(m.Module.Assembly.GetName().Name ?? ""));
        if (first < 0)
            return $"a tensor {what} on {device.Id} was collected without Dispose(); made inside GpuNet with no caller frame";
        var api = first > 0 ? frames[first - 1].GetMethod() : null;
        var text = new System.Text.StringBuilder($"a tensor {what} on {device.Id} was collected without Dispose(); made by ");
        text.Append(api is null ? "a GpuNet call" : $"{api.DeclaringType?.Name}.{api.Name}");
        for (int i = first; i < Math.Min(frames.Length, first + 3); i++)
        {
            var m = frames[i].GetMethod();
            if (m is null)
                continue;
            text.Append(i == first ? ", called at " : " <- ").Append($"{m.DeclaringType?.FullName}.{m.Name}");
            if (frames[i].GetFileName() is { } file)
                text.Append($" ({Path.GetFileName(file)}:{frames[i].GetFileLineNumber()})");
        }
        return text.ToString();
    }
}

/// <summary>
/// An n-dimensional array on a <see cref="GpuNet.Device"/>: shape, strides (in elements) and an
/// offset over reference-counted pooled memory. Views (<c>Reshape</c>, <c>Slice</c>, <c>Permute</c>,
/// <c>Transpose</c>, <c>Expand</c>: extension methods of GpuNet.Ops, which records their gradient) share memory with their
/// source; each view is its own <see cref="IDisposable"/>. Element counts are limited to
/// <see cref="int.MaxValue"/> so kernels index with 32-bit arithmetic.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly int[] _shape;
    private readonly int[] _strides;
    private readonly TensorStorage _storage;
    private bool _disposed;
    private bool _requiresGrad;
    private GradNode? _gradFn;

    /// <summary>Every tensor and view is made here, and none is made that could reach outside its storage: the whole
    /// range a view can index (offset + Σ (size−1)·stride) is checked in 64-bit arithmetic against the storage.</summary>
    private Tensor(string op, TensorStorage storage, int[] shape, int[] strides, long offset, bool inScope = true)
    {
        ShapeUtil.CheckView(op, "tensor", shape, strides, offset, storage.Capacity);
        _storage = storage;
        _shape = shape;
        _strides = strides;
        Length = (int)ShapeUtil.Product(shape);
        IsContiguous = ShapeUtil.IsContiguous(shape, strides);
        Offset = Length == 0 ? 0 : (int)offset;
        if (inScope)
            TensorScope.Register(this);
    }

    /// <summary>The device the tensor lives on.</summary>
    public Device Device => _storage.Device;

    /// <summary>Element type (a view has its source's).</summary>
    public DType DType => _storage.DType;

    /// <summary>Size of each dimension.</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Step in elements between neighbours along each dimension (0 for broadcast dimensions).</summary>
    public IReadOnlyList<int> Strides => _strides;

    /// <summary>Position of element [0, ..., 0] in the storage, in elements.</summary>
    public int Offset { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>True when the elements are laid out row-major without gaps (strides of a fresh tensor). Fixed when the view
    /// is made (its shape and strides never change), as <see cref="Length"/> is: every launcher asks it of every operand.</summary>
    public bool IsContiguous { get; }

    /// <summary>The whole underlying buffer as floats (for kernels; index it with <see cref="Offset"/> and <see cref="Strides"/>).
    /// Never empty, even for a zero-length tensor, so it is always a valid kernel argument.</summary>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Advanced)]
    public ArrayView<float> Storage => _storage.Buffer.View.Cast<float>();

    /// <summary>The elements of a contiguous tensor, in order.</summary>
    /// <exception cref="ShapeMismatchException">The tensor is a non-contiguous view.</exception>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Advanced)]
    public ArrayView<float> ContiguousView
    {
        get
        {
            if (!IsContiguous)
                throw new ShapeMismatchException("contiguous_view", "tensor", "a contiguous tensor", $"a strided view {Describe()}; call Contiguous() first");
            return KernelView("contiguous_view");
        }
    }

    /// <summary>The storage a view reaches, from element [0, ..., 0] to its last element (index it with <see cref="Strides"/>
    /// from 0); one element at the view's start for an empty tensor, so it is always a valid kernel argument.</summary>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Advanced)]
    public ArrayView<float> StridedView => KernelView("strided_view");

    /// <summary>
    /// What every launcher hands a kernel or host loop: the storage range this view reaches, re-checked against the
    /// storage at the launch (a view's bounds were checked when it was made; this is the one place that proves it again
    /// before memory is touched, so a defect elsewhere becomes a typed error instead of a write outside the buffer).
    /// </summary>
    internal ArrayView<float> KernelView(string op)
    {
        EnsureAlive(op, "tensor");
        long reach = ShapeUtil.CheckView(op, "tensor", _shape, _strides, Offset, _storage.Capacity);
        return reach == 0 ? Storage.SubView(0, 1) : Storage.SubView(Offset, (int)reach);
    }

    /// <summary>True when the first element's device address is a multiple of <paramref name="bytes"/> (for vector loads).</summary>
    public bool IsAligned(int bytes) =>
        (_storage.Buffer.Address + (long)Offset * sizeof(float)) % bytes == 0;

    /// <summary>True when no other tensor or view shares this tensor's memory.</summary>
    internal bool IsExclusive => _storage.IsExclusive;

    // ---------------------------------------------------------------- autograd

    /// <summary>
    /// True when gradients flow to this tensor: set it on a leaf (a parameter, an input) to have <c>Backward</c>
    /// fill its <see cref="Grad"/>; a tensor computed from one that requires a gradient (outside <c>Autograd.NoGrad</c>)
    /// requires one too and cannot be switched off (use <see cref="Detach"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">Switching off a tensor that was computed by a recorded op.</exception>
    public bool RequiresGrad
    {
        get => _requiresGrad || _gradFn is not null;
        set
        {
            if (!value && _gradFn is not null)
                throw new InvalidOperationException($"requires_grad: tensor {Describe()} was computed by '{_gradFn.Op}' and requires a gradient; Detach() it instead");
            _requiresGrad = value;
        }
    }

    /// <summary>The gradient accumulated into this leaf by <c>Backward</c> (null until the first backward, or after
    /// <see cref="ZeroGrad"/>). Owned by this tensor: disposed with it.</summary>
    public Tensor? Grad { get; internal set; }

    /// <summary>The recorded op that computed this tensor (null for a leaf).</summary>
    public GradNode? GradFn => _gradFn;

    /// <summary>True for a tensor not computed by a recorded op (a parameter, an input, a detached tensor).</summary>
    public bool IsLeaf => _gradFn is null;

    internal void SetGradFn(GradNode node)
    {
        _gradFn?.Release();
        _gradFn = node;
    }

    /// <summary>Drops the accumulated gradient (PyTorch's zero_grad(set_to_none=True)): the next backward writes a fresh one.</summary>
    public void ZeroGrad()
    {
        Grad?.Dispose();
        Grad = null;
    }

    /// <summary>A view of the same memory that is a leaf not requiring a gradient: nothing flows back through it.</summary>
    public Tensor Detach()
    {
        EnsureAlive("detach", "tensor");
        var detached = new Tensor("detach", _storage, ShapeArray(), _strides.AsSpan().ToArray(), Offset);
        _storage.AddRef();
        return detached;
    }

    /// <summary>A second handle on the same memory, in no scope and without a gradient (what the tape saves).</summary>
    internal Tensor Alias()
    {
        EnsureAlive("save_for_backward", "tensor");
        var alias = new Tensor("save_for_backward", _storage, ShapeArray(), _strides.AsSpan().ToArray(), Offset, inScope: false);
        _storage.AddRef();
        return alias;
    }

    /// <summary>The shape as a new array.</summary>
    public int[] ShapeArray() => _shape.AsSpan().ToArray();

    /// <summary>Size of dimension <paramref name="dim"/>; negative counts from the end.</summary>
    public int Size(int dim) => _shape[ShapeUtil.NormalizeAxis("size", dim, Rank)];

    // ---------------------------------------------------------------- creation

    /// <summary>A new float32 tensor with uninitialized contents (pooled memory is reused as it is).</summary>
    public static Tensor Empty(Device device, params int[] shape) => Empty(device, DType.Float32, shape);

    /// <summary>A new tensor of <paramref name="dtype"/> with uninitialized contents.</summary>
    public static Tensor Empty(Device device, DType dtype, params int[] shape)
    {
        Validate.NotNull("empty", "device", device).EnsureAlive("empty");
        shape = Validate.NotNull("empty", "shape", shape).AsSpan().ToArray();
        long n = Math.Max(ShapeUtil.ElementCount("empty", "shape", shape), 1);
        var buffer = device.Pool.Rent(n * dtype.SizeInBytes(), "empty");
        return new Tensor("empty", new TensorStorage(device, buffer, n, shape, dtype), shape, ShapeUtil.ContiguousStrides(shape), 0);
    }

    /// <summary>A new tensor of zeros.</summary>
    public static Tensor Zeros(Device device, params int[] shape)
    {
        var t = Empty(device, shape);
        t.Storage.MemSetToZero();
        return t;
    }

    /// <summary>A new tensor holding <paramref name="data"/> (row-major) in the given shape.</summary>
    /// <exception cref="ShapeMismatchException">The data length does not equal the shape's element count.</exception>
    public static Tensor FromArray(Device device, ReadOnlySpan<float> data, params int[] shape) => FromBits(device, data, DType.Float32, shape);

    /// <summary>A new tensor of <paramref name="dtype"/> in <paramref name="shape"/> holding the elements' 4-byte patterns <paramref name="bits"/>.</summary>
    private static Tensor FromBits(Device device, ReadOnlySpan<float> bits, DType dtype, int[] shape)
    {
        int n = ShapeUtil.ElementCount("from_array", "shape", Validate.NotNull("from_array", "shape", shape));
        if (bits.Length != n)
            throw new ShapeMismatchException("from_array", "data", $"{n} elements for shape {GpuNetException.FormatShape(shape)}", $"{bits.Length} elements");
        var t = Empty(device, dtype, shape);
        t.CopyBitsFrom(bits, dtype);
        return t;
    }

    /// <summary>A 1-D tensor holding <paramref name="data"/>.</summary>
    public static Tensor FromArray(Device device, float[] data) => FromArray(device, data, Validate.NotNull("from_array", "data", data).Length);

    /// <summary>A new int32 tensor holding <paramref name="data"/> (row-major) in the given shape: class labels or token ids
    /// for the ops that take them (<c>Ops.CrossEntropy</c>, <c>Ops.NllLoss</c>, <c>Ops.Embedding</c>, <c>Ops.GatherRows</c>).</summary>
    /// <exception cref="ShapeMismatchException">The data length does not equal the shape's element count.</exception>
    public static Tensor FromArray(Device device, ReadOnlySpan<int> data, params int[] shape) =>
        FromBits(device, System.Runtime.InteropServices.MemoryMarshal.Cast<int, float>(data), DType.Int32, shape);

    /// <summary>A 1-D int32 tensor holding <paramref name="data"/>.</summary>
    public static Tensor FromArray(Device device, int[] data) => FromArray(device, data, Validate.NotNull("from_array", "data", data).Length);

    /// <summary>Uniform random values in [low, high) from the Philox stream of <paramref name="seed"/>: the same on every device.</summary>
    public static Tensor RandomUniform(Device device, int[] shape, ulong seed, float low = 0f, float high = 1f)
    {
        var host = new float[ShapeUtil.ElementCount("random_uniform", "shape", Validate.NotNull("random_uniform", "shape", shape))];
        Philox.FillUniform(host, seed, low, high);
        return FromArray(device, host, shape);
    }

    /// <summary>Normal random values from the Philox stream of <paramref name="seed"/>: the same on every device.</summary>
    public static Tensor RandomNormal(Device device, int[] shape, ulong seed, float mean = 0f, float std = 1f)
    {
        var host = new float[ShapeUtil.ElementCount("random_normal", "shape", Validate.NotNull("random_normal", "shape", shape))];
        Philox.FillNormal(host, seed, mean, std);
        return FromArray(device, host, shape);
    }

    // ---------------------------------------------------------------- host I/O

    /// <summary>Overwrites a contiguous float32 tensor with <paramref name="data"/> (row-major).</summary>
    public void CopyFrom(ReadOnlySpan<float> data) => CopyBitsFrom(data, DType.Float32);

    /// <summary>Overwrites a contiguous int32 tensor with <paramref name="data"/> (row-major).</summary>
    public void CopyFrom(ReadOnlySpan<int> data) => CopyBitsFrom(System.Runtime.InteropServices.MemoryMarshal.Cast<int, float>(data), DType.Int32);

    /// <summary>Copies the elements of a float32 tensor, in row-major order of its shape, into <paramref name="dest"/>.
    /// Works on any view: strided views are gathered on the host.</summary>
    public void CopyTo(Span<float> dest) => CopyBitsTo(dest, DType.Float32);

    /// <summary>Copies the elements of an int32 tensor, in row-major order of its shape, into <paramref name="dest"/>.</summary>
    public void CopyTo(Span<int> dest) => CopyBitsTo(System.Runtime.InteropServices.MemoryMarshal.Cast<int, float>(dest), DType.Int32);

    /// <summary>Raises <see cref="DTypeMismatchException"/> naming <paramref name="op"/> unless the tensor is <paramref name="dtype"/>.</summary>
    internal void EnsureDType(string op, DType dtype)
    {
        if (DType != dtype)
            throw new DTypeMismatchException(op, "tensor", dtype, DType);
    }

    /// <summary>The elements' 4-byte patterns from <paramref name="data"/> into a live contiguous tensor of <paramref name="dtype"/>.</summary>
    private void CopyBitsFrom(ReadOnlySpan<float> data, DType dtype)
    {
        EnsureAlive("copy_from", "tensor");
        EnsureDType("copy_from", dtype);
        if (data.Length != Length)
            throw new ShapeMismatchException("copy_from", "data", $"{Length} elements", $"{data.Length} elements");
        if (Length == 0)
            return;
        var view = ContiguousView;
        HostCopy.Upload(data, view);
    }

    /// <summary>The elements of an int32 tensor as a new array, row-major.</summary>
    public int[] ToInt32Array()
    {
        var result = new int[Length];
        CopyTo(result);
        return result;
    }

    /// <summary>The elements' 4-byte patterns of a live tensor of <paramref name="dtype"/> into <paramref name="dest"/>
    /// (gathered on the host for a strided view).</summary>
    private void CopyBitsTo(Span<float> dest, DType dtype)
    {
        EnsureAlive("copy_to", "tensor");
        EnsureDType("copy_to", dtype);
        if (dest.Length != Length)
            throw new ShapeMismatchException("copy_to", "dest", $"{Length} elements", $"{dest.Length} elements");
        if (Length == 0)
            return;
        var reached = KernelView("copy_to");
        if (IsContiguous)
        {
            HostCopy.Download(reached, dest);
            return;
        }
        // Read the span of storage the view touches once, then gather with the strides.
        var raw = new float[reached.IntLength];
        HostCopy.Download(reached, raw);
        ShapeUtil.Gather(raw, _shape, _strides, 0, dest);
    }

    /// <summary>The elements as a new array, row-major.</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        CopyTo(result);
        return result;
    }

    /// <summary>The value of a one-element tensor (any shape holding exactly one element), as PyTorch's <c>item()</c>.</summary>
    /// <exception cref="ShapeMismatchException">The tensor holds no element or more than one.</exception>
    public float Item()
    {
        if (Length != 1)
            throw new ShapeMismatchException("item", "tensor", "exactly one element", Describe());
        return ToArray()[0];
    }

    // ---------------------------------------------------------------- views

    /// <summary>
    /// A view of this tensor's memory with the given shape, strides and offset, checked to stay inside the storage. It
    /// records no gradient: the op layer's view methods (GpuNet.Ops' <c>TensorViews</c>) build on it and record.
    /// </summary>
    internal Tensor View(string op, int[] shape, int[] strides, long offset)
    {
        var view = new Tensor(op, _storage, shape, strides, offset);   // checks the view's whole range first
        _storage.AddRef();
        return view;
    }

    // ---------------------------------------------------------------- checks and lifetime

    /// <summary>Throws <see cref="TensorDisposedException"/> naming <paramref name="op"/> and <paramref name="argument"/> if disposed.</summary>
    public void EnsureAlive(string op, string argument)
    {
        if (_disposed)
            throw new TensorDisposedException(op, $"argument '{argument}' (tensor {GpuNetException.FormatShape(_shape)} on {_storage.Device.Id})");
        _storage.Device.EnsureAlive(op);
    }

    /// <summary>Shape, strides when not contiguous, the dtype when not float32, and device, for messages.</summary>
    public string Describe() =>
        GpuNetException.FormatShape(_shape) + (IsContiguous ? "" : " strides " + GpuNetException.FormatShape(_strides)) +
        (DType == DType.Float32 ? "" : " " + DType.Name()) + $" on {_storage.Device.Id}";

    /// <inheritdoc />
    public override string ToString() => $"Tensor {Describe()}{(_disposed ? " (disposed)" : "")}";

    /// <summary>Releases this tensor's hold on its storage; the memory returns to the pool when no view holds it.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        TensorScope.Unregister(this);
        _storage.Release();
        Grad?.Dispose();
        Grad = null;
        var node = _gradFn;
        _gradFn = null;
        node?.Release();
    }
}

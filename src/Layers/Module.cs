namespace GpuNet.Layers;

/// <summary>
/// A layer or model: named parameters and buffers in a hierarchy whose dotted names equal the PyTorch
/// <c>state_dict()</c> keys of the equivalent PyTorch module (e.g. <c>blocks.0.attn.qkv.weight</c>), children,
/// train/eval mode, and the device everything lives on. Forward passes run on the device's kernels; a module
/// disposes what it owns.
/// </summary>
public abstract class Module : IDisposable
{
    private readonly List<(string Name, Tensor Tensor, bool IsBuffer)> _tensors = new();
    private readonly List<(string Name, Module Child)> _children = new();
    private bool _disposed;

    /// <summary>Creates a module on <paramref name="device"/>.</summary>
    protected Module(Device device) => Device = device;

    /// <summary>The device of every parameter and buffer.</summary>
    public Device Device { get; }

    /// <summary>True in training mode (dropout active, batch statistics), false in eval mode.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Registers a parameter (zeros until loaded or initialized); it requires a gradient while the module trains.</summary>
    protected Tensor Parameter(string name, params int[] shape)
    {
        var t = Register(name, Tensor.Zeros(Device, shape), false);
        t.RequiresGrad = Training;
        return t;
    }

    /// <summary>Registers a buffer (state that is not trained, e.g. BatchNorm's running statistics).</summary>
    protected Tensor Buffer(string name, Tensor value) => Register(name, value, true);

    private Tensor Register(string name, Tensor t, bool buffer)
    {
        EnsureUnregistered(name);
        _tensors.Add((name, t, buffer));
        return t;
    }

    /// <summary>Raises <see cref="InvalidArgumentException"/> when a parameter, buffer or child already has <paramref name="name"/>.</summary>
    private void EnsureUnregistered(string name)
    {
        if (_tensors.Any(e => e.Name == name) || _children.Any(c => c.Name == name))
            throw new InvalidArgumentException(GetType().Name, name, "a name not registered yet", $"'{name}' registered twice");
    }

    /// <summary>Registers a child module under <paramref name="name"/>. A module of your own need not call it for modules it
    /// keeps in fields or properties: those are found by themselves (see <see cref="Children"/>).</summary>
    protected T Child<T>(string name, T module) where T : Module
    {
        Validate.NotNull(GetType().Name, name, module);
        EnsureUnregistered(name);
        if (!ReferenceEquals(module.Device, Device))
            throw new DeviceMismatchException(GetType().Name, name, Device.Label, module.Device.Label);
        _children.Add((name, module));
        return module;
    }

    /// <summary>
    /// Direct children with their names: those registered with <see cref="Child{T}"/>, then — in a module class of your own
    /// (declared outside GpuNet.Layers) — every module held in one of its fields or auto-properties and not registered yet,
    /// named as the member without a leading underscore (<c>_encoder</c> → <c>encoder</c>, property <c>Encoder</c> →
    /// <c>Encoder</c>), as PyTorch registers a module assigned to an attribute. Collections of modules go in a <see cref="ModuleList{T}"/> or
    /// <see cref="ModuleDict{T}"/>.
    /// </summary>
    public IReadOnlyList<(string Name, Module Child)> Children
    {
        get
        {
            DiscoverChildren();
            return _children;
        }
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, (string Name, System.Reflection.FieldInfo Field)[]> MemberModules = new();

    /// <summary>Registers modules held in the fields of user-declared classes (cached per type; a cheap scan of the values).</summary>
    private void DiscoverChildren()
    {
        var members = MemberModules.GetOrAdd(GetType(), static type =>
        {
            var found = new List<(string, System.Reflection.FieldInfo)>();
            for (var t = type; t is not null && t.Assembly != typeof(Module).Assembly; t = t.BaseType)
                foreach (var f in t.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.DeclaredOnly))
                    if (typeof(Module).IsAssignableFrom(f.FieldType))
                        found.Add((MemberName(f.Name), f));
            return found.ToArray();
        });
        foreach (var (name, field) in members)
            if (field.GetValue(this) is Module module && !ReferenceEquals(module, this) && !_children.Any(c => ReferenceEquals(c.Child, module)))
                Child(name, module);
    }

    /// <summary>A member's name as a state-dict key: an auto-property's backing field by the property's name, a leading underscore dropped.</summary>
    private static string MemberName(string field)
    {
        if (field.StartsWith('<') && field.IndexOf('>') is int end and > 1)
            return field[1..end];
        return field.TrimStart('_');
    }

    /// <summary>Every parameter and buffer, depth-first in registration order, with PyTorch state_dict names.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateDict(string prefix = "")
    {
        foreach (var (name, t, _) in _tensors)
            yield return (prefix + name, t);
        foreach (var (name, child) in Children)
            foreach (var entry in child.StateDict(prefix + name + "."))
                yield return entry;
    }

    /// <summary>Trainable parameters only (no buffers).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> Parameters(string prefix = "")
    {
        foreach (var (name, t, buffer) in _tensors)
            if (!buffer)
                yield return (prefix + name, t);
        foreach (var (name, child) in Children)
            foreach (var entry in child.Parameters(prefix + name + "."))
                yield return entry;
    }

    /// <summary>Number of parameter elements.</summary>
    public long ParameterCount => Parameters().Sum(p => (long)p.Tensor.Length);

    /// <summary>
    /// Sets training or eval mode on this module and every descendant. Parameters require gradients in training mode and
    /// not in eval mode, so an eval-mode forward records nothing (today's inference memory and speed); freeze a
    /// parameter in training by setting its RequiresGrad to false after this call.
    /// </summary>
    public void Train(bool training = true)
    {
        Training = training;
        foreach (var (_, t, buffer) in _tensors)
            if (!buffer)
                t.RequiresGrad = training;
        foreach (var (_, child) in Children)
            child.Train(training);
    }

    /// <summary>Eval mode (<c>Train(false)</c>).</summary>
    public void Eval() => Train(false);

    /// <summary>
    /// Sets every parameter's RequiresGrad, in this module and its descendants (PyTorch's <c>module.requires_grad_()</c>);
    /// returns the module. With false the module is frozen: a forward through it still carries gradients back to its inputs,
    /// but none accumulate in its parameters (a GAN's discriminator during the generator's step). <see cref="Train"/> sets
    /// them again (to its mode).
    /// </summary>
    public Module RequiresGrad(bool requiresGrad = true)
    {
        foreach (var (_, t) in Parameters())
            t.RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>Freezes the module's parameters (<c>RequiresGrad(false)</c>).</summary>
    public Module Freeze() => RequiresGrad(false);

    /// <summary>Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).</summary>
    public void ZeroGrad()
    {
        foreach (var (_, t) in Parameters())
            t.ZeroGrad();
    }

    /// <summary>
    /// Copies weights into the module by name. Every name and shape is checked first and all problems are reported at
    /// once (<see cref="StateDictMismatchException"/>); nothing is written unless everything fits. With
    /// <paramref name="strict"/> false, missing and unexpected names are allowed (shapes must still match).
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, (int[] Shape, Func<float[]> Read)> source, bool strict = true)
    {
        var own = StateDict().ToDictionary(e => e.Name, e => e.Tensor);
        var missing = own.Keys.Where(k => !source.ContainsKey(k)).ToList();
        var unexpected = source.Keys.Where(k => !own.ContainsKey(k)).ToList();
        var wrongShape = own.Where(e => source.TryGetValue(e.Key, out var s) && !s.Shape.SequenceEqual(e.Value.ShapeArray()))
            .Select(e => $"{e.Key}: expected {GpuNetException.FormatShape(e.Value.ShapeArray())}, got {GpuNetException.FormatShape(source[e.Key].Shape)}").ToList();
        if (wrongShape.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new StateDictMismatchException(GetType().Name, strict ? missing : new List<string>(), strict ? unexpected : new List<string>(), wrongShape);
        foreach (var (name, tensor) in own)
            if (source.TryGetValue(name, out var s))
                tensor.CopyFrom(s.Read());
    }

    /// <summary>Loads weights from a safetensors file (see <see cref="LoadStateDict"/>); names starting with "__" (fixture data) are ignored.</summary>
    public void Load(SafeTensorsFile file, bool strict = true) =>
        LoadStateDict(file.Names.Where(n => !n.StartsWith("__")).ToDictionary(n => n, n => (file.Shape(n), (Func<float[]>)(() => file.ReadFloats(n)))), strict);

    /// <summary>Saves every parameter and buffer to a safetensors file (F32).</summary>
    public void Save(string path) => SafeTensors.Save(path, StateDict());

    /// <summary>
    /// What every layer with parameters calls at the end of its constructor: <see cref="Initialize"/> with the device's next seed
    /// (<see cref="Device.NextSeed"/>), so a module is initialized as its PyTorch counterpart is the moment it exists — never
    /// all zeros — and the same device seed and construction order give the same weights.
    /// </summary>
    protected void InitializeAtConstruction() => Initialize(Device.NextSeed());

    /// <summary>Fills parameters with seeded random values the way PyTorch's defaults do for each layer type (kaiming-uniform
    /// weights and the fan-in bias bound for Linear and the convolutions, ones and zeros for norms, N(0, 1) embeddings); for an
    /// exact replay of a known initialization. Layers already call it once at construction.</summary>
    public virtual void Initialize(ulong seed)
    {
        ulong i = 0;
        foreach (var (_, child) in Children)
            child.Initialize(seed + 0x9E3779B97F4A7C15UL * ++i);
    }

    /// <summary>Disposes every parameter, buffer and child.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var (_, t, _) in _tensors)
            t.Dispose();
        foreach (var (_, child) in Children)
            child.Dispose();
    }
}

/// <summary>
/// Modules in a list, registered as children "0", "1", ... (PyTorch's nn.ModuleList): keep a model's repeated blocks in one
/// and their parameters are named <c>blocks.0.…</c>, <c>blocks.1.…</c> without hand-made prefixes.
/// </summary>
/// <typeparam name="T">The element type (<see cref="Module"/> for any).</typeparam>
public sealed class ModuleList<T> : Module, IReadOnlyList<T> where T : Module
{
    private readonly List<T> _items = new();

    /// <summary>Creates the list with <paramref name="modules"/> (each must live on <paramref name="device"/>).</summary>
    public ModuleList(Device device, IEnumerable<T>? modules = null) : base(device)
    {
        foreach (var m in modules ?? Array.Empty<T>())
            Add(m);
    }

    /// <summary>Appends <paramref name="module"/> as child "Count".</summary>
    public T Add(T module)
    {
        _items.Add(Child(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module));
        return module;
    }

    /// <summary>The module at <paramref name="index"/>.</summary>
    public T this[int index] => _items[index];

    /// <summary>Number of modules.</summary>
    public int Count => _items.Count;

    /// <inheritdoc/>
    public IEnumerator<T> GetEnumerator() => _items.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Modules by name, registered as children under their keys in insertion order (PyTorch's nn.ModuleDict).</summary>
/// <typeparam name="T">The element type (<see cref="Module"/> for any).</typeparam>
public sealed class ModuleDict<T> : Module, IReadOnlyDictionary<string, T> where T : Module
{
    private readonly Dictionary<string, T> _items = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();

    /// <summary>Creates the dictionary with <paramref name="modules"/> (each must live on <paramref name="device"/>).</summary>
    public ModuleDict(Device device, IEnumerable<KeyValuePair<string, T>>? modules = null) : base(device)
    {
        foreach (var (key, m) in modules ?? Array.Empty<KeyValuePair<string, T>>())
            Add(key, m);
    }

    /// <summary>Adds <paramref name="module"/> as child <paramref name="key"/> (a key without dots, not used yet).</summary>
    public T Add(string key, T module)
    {
        Validate.NotNull("module_dict", "key", key);
        if (key.Length == 0 || key.Contains('.'))
            throw new InvalidArgumentException("module_dict", "key", "a non-empty name without '.' (it becomes part of state-dict names)", $"'{key}'");
        if (_items.ContainsKey(key))
            throw new InvalidArgumentException("module_dict", "key", "a key not used yet", $"'{key}' twice");
        _items.Add(key, Child(key, module));
        _order.Add(key);
        return module;
    }

    /// <summary>The module under <paramref name="key"/>.</summary>
    public T this[string key] => _items.TryGetValue(key, out var m) ? m
        : throw new InvalidArgumentException("module_dict", "key", $"one of {string.Join(", ", _order)}", $"'{key}'");

    /// <summary>Keys in insertion order.</summary>
    public IEnumerable<string> Keys => _order;

    /// <summary>Modules in insertion order.</summary>
    public IEnumerable<T> Values => _order.Select(k => _items[k]);

    /// <summary>Number of modules.</summary>
    public int Count => _items.Count;

    /// <inheritdoc/>
    public bool ContainsKey(string key) => _items.ContainsKey(key);

    /// <inheritdoc/>
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out T value) => _items.TryGetValue(key, out value);

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, T>> GetEnumerator() => _order.Select(k => new KeyValuePair<string, T>(k, _items[k])).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A module with one input and one output.</summary>
public abstract class Layer : Module
{
    /// <summary>Creates the layer.</summary>
    protected Layer(Device device) : base(device) { }

    /// <summary>Runs the layer. The result is a new tensor the caller owns.</summary>
    public abstract Tensor Forward(Tensor x);
}

/// <summary>Layers applied in order; children are named "0", "1", ... as in PyTorch's nn.Sequential. Not sealed: a subclass
/// may add members or override <see cref="Forward"/>.</summary>
public class Sequential : Layer
{
    private readonly List<Layer> _layers = new();

    /// <summary>Creates the sequence; children are named by position.</summary>
    public Sequential(Device device, params Layer[] layers) : this(device, layers.Select((l, i) => (i.ToString(), l)).ToArray()) { }

    /// <summary>Creates the sequence with the given child names (PyTorch's <c>add_module</c>).</summary>
    public Sequential(Device device, params (string Name, Layer Layer)[] layers) : base(device)
    {
        foreach (var (name, layer) in layers)
            _layers.Add(Child(name, layer));
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<Layer> Layers => _layers;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor x)
    {
        // Each intermediate is freed as soon as the next layer has consumed it.
        Tensor current = x;
        foreach (var layer in _layers)
        {
            var next = layer.Forward(current);
            if (!ReferenceEquals(current, x))
                current.Dispose();
            current = next;
        }
        return ReferenceEquals(current, x) ? x.Contiguous() : current;
    }
}

/// <summary>A state dict does not fit a module: every missing, unexpected and mis-shaped name, reported at once.</summary>
public sealed class StateDictMismatchException(string module, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> wrongShapes,
    IReadOnlyList<string>? invalidValues = null)
    : GpuNetException("load_state_dict",
        $"load_state_dict: weights do not fit {module}: " + string.Join("; ", new[]
        {
            missing.Count > 0 ? "missing " + string.Join(", ", missing) : null,
            unexpected.Count > 0 ? "unexpected " + string.Join(", ", unexpected) : null,
            wrongShapes.Count > 0 ? "wrong shape " + string.Join(", ", wrongShapes) : null,
            invalidValues is { Count: > 0 } ? "invalid " + string.Join(", ", invalidValues) : null,
        }.Where(s => s is not null)))
{
    /// <summary>"name: expected .., got .." for each value that cannot be loaded (an optimizer's step count, a NaN moment).</summary>
    public IReadOnlyList<string> InvalidValues { get; } = invalidValues ?? Array.Empty<string>();

    /// <summary>Names the module has and the weights lack.</summary>
    public IReadOnlyList<string> Missing { get; } = missing;

    /// <summary>Names the weights have and the module lacks.</summary>
    public IReadOnlyList<string> Unexpected { get; } = unexpected;

    /// <summary>"name: expected [..], got [..]" for each shape mismatch.</summary>
    public IReadOnlyList<string> WrongShapes { get; } = wrongShapes;
}

using System.Diagnostics;
using GpuNet.Onnx.Operators;
using GpuNet.Onnx.Proto;

namespace GpuNet.Onnx;

/// <summary>One dimension of a model input or output: a fixed size, a symbolic name (dim_param), or unknown.</summary>
/// <param name="Value">The size, when fixed.</param>
/// <param name="Symbol">The symbolic name, when the model gives one (e.g. <c>batch</c>).</param>
public readonly record struct OnnxDimension(long? Value, string? Symbol)
{
    /// <inheritdoc/>
    public override string ToString() => Value?.ToString() ?? Symbol ?? "?";
}

/// <summary>A model input or output: name, element type and shape (null when the model does not say).</summary>
/// <param name="Name">The graph value's name.</param>
/// <param name="ElementType">Its element type.</param>
/// <param name="Dimensions">Its dimensions, or null when the model gives no shape.</param>
public sealed record OnnxValueInfo(string Name, OnnxElementType ElementType, IReadOnlyList<OnnxDimension>? Dimensions)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {ElementType} " + (Dimensions is null ? "[?]" : "[" + string.Join(", ", Dimensions) + "]");
}

/// <summary>
/// An ONNX model loaded for a GpuNet device — the shape of ONNX Runtime's InferenceSession: <see cref="Load(string, Device, bool)"/>,
/// <see cref="Inputs"/>/<see cref="Outputs"/>, <see cref="Run"/> by name. Loading parses the file, checks every node
/// (all unsupported ones are reported together, before anything runs), orders the graph, folds everything that does
/// not depend on a run-time input into constants, and plans when each intermediate tensor is released.
/// </summary>
public sealed class OnnxModel : IDisposable
{
    /// <summary>The newest default-domain opset GpuNet implements.</summary>
    public const int MaxOpset = 17;

    private readonly Device _device;
    private readonly List<(NodeProto Node, int Index, OpSpec Spec)> _plan = new();
    private readonly Dictionary<string, OnnxTensor> _constants = new();
    private readonly Dictionary<string, OnnxTensor> _defaults = new();
    private readonly HashSet<string> _outputNames;
    private readonly Dictionary<string, int[]> _assumedShapes = new();
    private Schedule? _schedule;
    private bool _disposed;

    /// <summary>One memory arena per input shape the model has run at (see <see cref="MemoryArena"/>), the most recent
    /// <see cref="MaxArenas"/>; none without optimization.</summary>
    private readonly List<(int[][] Shapes, MemoryArena Arena)> _arenas = new();
    private readonly bool _planMemory;
    private const int MaxArenas = 4;

    private OnnxModel(Device device, ModelProto model, string? directory, bool optimize)
    {
        _device = device;
        _planMemory = optimize;
        var graph = model.Graph ?? throw new OnnxFormatException("the model has no graph");
        IrVersion = model.IrVersion;
        Producer = (model.ProducerName + " " + model.ProducerVersion).Trim();
        Opset = model.DefaultOpset;
        OperatorCounts = graph.Nodes.GroupBy(n => n.Domain is "" or "ai.onnx" ? n.OpType : n.Domain + "." + n.OpType)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());
        var problems = Check(model, graph);

        var initializers = new Dictionary<string, TensorProto>();
        foreach (var t in graph.Initializers)
            initializers[t.Name] = t;
        Inputs = graph.Inputs.Where(i => !initializers.ContainsKey(i.Name)).Select(Describe).ToList();
        Outputs = graph.Outputs.Select(Describe).ToList();
        foreach (var i in graph.Inputs.Concat(graph.Outputs))
            if (i.Kind != "tensor" || OnnxTensor.ElementSize(i.ElementType) == 0)
                problems.Add($"graph {(graph.Inputs.Contains(i) ? "input" : "output")} '{i.Name}': {(i.Kind == "tensor" ? i.ElementType + " tensors are" : (i.Kind.Length > 0 ? i.Kind : "an untyped value") + " is")} not supported");
        if (problems.Count > 0)
            throw new OnnxUnsupportedException(problems);

        try
        {
            var graphInputs = graph.Inputs.Select(i => i.Name).ToHashSet();
            foreach (var (name, t) in initializers)
                (graphInputs.Contains(name) ? _defaults : _constants)[name] = OnnxTensor.FromProto(t, directory, "initializer");
            _outputNames = graph.Outputs.Select(o => o.Name).ToHashSet();
            Build(graph, graphInputs, optimize);
        }
        catch
        {
            DisposeValues();
            throw;
        }
    }

    /// <summary>Loads a model file for <paramref name="device"/>; external data is read from beside it.</summary>
    /// <exception cref="OnnxFormatException">The file is missing, malformed or truncated.</exception>
    /// <exception cref="OnnxUnsupportedException">Some nodes use ops, opsets, attributes or types GpuNet does not run (all are listed).</exception>
    /// <param name="path">The model file.</param>
    /// <param name="device">Where it runs.</param>
    /// <param name="optimize">Rewrite the graph onto fused kernels at load (batch norm folded into the convolution before it,
    /// activations into their convolution or matmul, the GELU/LayerNorm/attention subgraphs into one kernel each); false runs
    /// the graph node by node as the file has it (constant folding still runs).</param>
    public static OnnxModel Load(string path, Device device, bool optimize = true)
    {
        var proto = ParseFile(path);
        return new OnnxModel(device, proto, Path.GetDirectoryName(Path.GetFullPath(path)), optimize);
    }

    /// <summary>The file's ModelProto: a missing file is a <see cref="FileNotFoundException"/> naming it; one that is not a
    /// serialized ModelProto an <see cref="OnnxFormatException"/> that says so first, then which message and field failed.</summary>
    private static ModelProto ParseFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(Validate.NotNull("onnx", "path", path));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"onnx: no file '{path}'", path, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxFormatException($"cannot read '{path}': {e.Message}", e);
        }
        try
        {
            return ModelProto.Parse(bytes);
        }
        catch (OnnxFormatException e)
        {
            throw new OnnxFormatException($"'{path}' is not an ONNX model: {e.Message["onnx: ".Length..]}", e);
        }
    }

    /// <summary>Loads a model from its serialized bytes; <paramref name="directory"/> is where external data lives
    /// (<paramref name="optimize"/> as in <see cref="Load(string, Device, bool)"/>).</summary>
    public static OnnxModel Load(ReadOnlyMemory<byte> bytes, Device device, string? directory = null, bool optimize = true) =>
        new(device, ModelProto.Parse(bytes), directory, optimize);

    /// <summary>What <c>onnx info</c> prints, without running anything: opset, inputs, outputs, the op histogram and every unsupported construct.</summary>
    public static OnnxModelSummary Inspect(string path)
    {
        var model = ParseFile(path);
        var graph = model.Graph ?? throw new OnnxFormatException("the model has no graph");
        var initializers = graph.Initializers.Select(t => t.Name).ToHashSet();
        return new OnnxModelSummary(model.IrVersion, model.DefaultOpset, (model.ProducerName + " " + model.ProducerVersion).Trim(),
            graph.Inputs.Where(i => !initializers.Contains(i.Name)).Select(Describe).ToList(), graph.Outputs.Select(Describe).ToList(),
            graph.Nodes.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => g.Count()),
            Check(model, graph), graph.Initializers.Count);
    }

    /// <summary>IR version of the file.</summary>
    public long IrVersion { get; }

    /// <summary>The default domain's opset version.</summary>
    public int Opset { get; }

    /// <summary>Producer name and version.</summary>
    public string Producer { get; }

    /// <summary>Inputs a run takes (initializers listed as graph inputs are optional overrides and not listed).</summary>
    public IReadOnlyList<OnnxValueInfo> Inputs { get; }

    /// <summary>Outputs a run returns.</summary>
    public IReadOnlyList<OnnxValueInfo> Outputs { get; }

    /// <summary>How many nodes of each op the file has.</summary>
    public IReadOnlyDictionary<string, int> OperatorCounts { get; }

    /// <summary>Nodes left to run per call after constant folding.</summary>
    public int PlannedNodes => _plan.Count;

    /// <summary>Nodes evaluated once at load because nothing they compute depends on a run-time input.</summary>
    public int FoldedNodes { get; private set; }

    /// <summary>Nodes removed by fusing subgraphs onto fused kernels (see <see cref="PlannedOperators"/>).</summary>
    public int FusedNodes { get; private set; }

    /// <summary>The ops a run executes, in order, after folding and fusion (fused ones are named <c>GpuNet.*</c>).</summary>
    public IReadOnlyList<string> PlannedOperators => _plan.Select(p => p.Node.OpType + (p.Node.Attributes.ContainsKey("gpunet_activation") ? "+" + (FusedActivation)p.Node.Attributes["gpunet_activation"].I : "")).ToList();

    /// <summary>Device bytes the last <see cref="Run"/> held at its peak beyond what was in use before it (intermediates and
    /// outputs); with its intermediates in a planned arena, the arena's size plus the outputs.</summary>
    public long LastRunPeakBytes { get; private set; }

    /// <summary>
    /// The size in bytes of the memory arena planned for the last <see cref="Run"/>'s input shapes (0 before a second run at
    /// those shapes, or when loaded without optimization): every intermediate of a run at those shapes lives in it, placed
    /// once by lifetime, and a run takes its buffers from it by position instead of from the pool.
    /// </summary>
    public long ArenaBytes { get; private set; }

    /// <summary>
    /// Host time per op type in the last <see cref="Run"/>, slowest first: on the fast CPU device the time the op took; on
    /// a GPU the time to launch it (kernels run asynchronously).
    /// </summary>
    public IReadOnlyList<OnnxOperatorTime> LastRunProfile =>
        _lastRun is not { } run ? Array.Empty<OnnxOperatorTime>()
        : run.Schedule.Steps.Select((step, k) => (step.Node.OpType, Ticks: run.Ticks[k])).GroupBy(t => t.OpType)
            .Select(g => new OnnxOperatorTime(g.Key, g.Count(), g.Sum(t => t.Ticks) * 1000.0 / Stopwatch.Frequency))
            .OrderByDescending(t => t.Milliseconds).ToList();

    /// <summary>Host time of every node in the last <see cref="Run"/>, in the order they ran (see <see cref="LastRunProfile"/> for
    /// what the time means on each device).</summary>
    public IReadOnlyList<OnnxNodeTime> LastRunNodeProfile =>
        _lastRun is not { } run ? Array.Empty<OnnxNodeTime>()
        : run.Schedule.Steps.Select((step, k) => new OnnxNodeTime(step.Label, step.Op, run.Shapes[k], run.Ticks[k] * 1000.0 / Stopwatch.Frequency)).ToList();

    /// <summary>The last run's raw per-node times and first-output shapes: the profiles above are built from them when read, not
    /// on every run.</summary>
    private sealed record RunTimes(Schedule Schedule, long[] Ticks, int[][] Shapes);

    private RunTimes? _lastRun;

    /// <summary>The device this model runs on.</summary>
    public Device Device => _device;

    /// <summary>
    /// Runs the model: <paramref name="inputs"/> by name (every input of <see cref="Inputs"/>; an initializer listed as a graph
    /// input may be overridden). Returns every output by name; the caller owns (and disposes) the returned tensors.
    /// </summary>
    /// <exception cref="OnnxInputException">A missing or unknown input, or one of the wrong element type or shape.</exception>
    /// <exception cref="TensorDisposedException">The model was disposed.</exception>
    public Dictionary<string, OnnxTensor> Run(IReadOnlyDictionary<string, OnnxTensor> inputs)
    {
        if (_disposed)
            throw new TensorDisposedException("onnx_run", "the ONNX model");
        Validate.NotNull("onnx_run", "inputs", inputs);
        ValidateInputs(inputs);
        var schedule = _schedule ??= Compile();
        // Values by slot: constants and defaults copied from the template, then the caller's inputs; slots below Borrowed
        // are not the run's to dispose.
        var values = (OnnxTensor?[])schedule.Template.Clone();
        foreach (var (name, value) in inputs)
            values[schedule.Slots[name]] = value;
        var arena = ArenaFor(inputs);
        using var planned = arena?.Begin();
        bool replaying = arena is { Bytes: > 0 };
        long before = _device.Pool.Stats.BytesInUse, peak = before;
        var outputs = new Dictionary<string, OnnxTensor>();
        var ticks = new long[schedule.Steps.Length];
        var shapes = new int[schedule.Steps.Length][];
        // One argument array per input count for the whole run (operators read their inputs during the call only).
        var argumentArrays = new OnnxTensor?[schedule.MaxInputs + 1][];
        try
        {
            for (int k = 0; k < schedule.Steps.Length; k++)
            {
                var step = schedule.Steps[k];
                long started = Stopwatch.GetTimestamp();
                var args = argumentArrays[step.Inputs.Length] ??= new OnnxTensor?[step.Inputs.Length];
                for (int i = 0; i < args.Length; i++)
                    args[i] = step.Inputs[i] < 0 ? null : values[step.Inputs[i]];
                var results = Execute(step.Context, step.Spec, args);
                Array.Clear(args);
                ticks[k] = Stopwatch.GetTimestamp() - started;
                shapes[k] = results.Length > 0 && results[0] is { } first ? first.DimsArray : [];
                for (int i = 0; i < step.Outputs.Length; i++)
                {
                    // An output nothing reads may come back null (OpContext.Uses).
                    if (step.Outputs[i] < 0 || i >= results.Length || results[i] is null && !step.Context.Uses(i))
                        continue;
                    var value = results[i];
                    values[step.Outputs[i]] = value;
                    if (step.Assumed[i] is { } assumed && !value.Dims.SequenceEqual(assumed))
                        throw new OnnxRunException($"{step.Label}: output '{step.Node.Outputs[i]}' has shape {GpuNetException.FormatShape(value.Dims)}, but the file's value_info declares {GpuNetException.FormatShape(assumed)} (which load-time folding relied on)");
                }
                peak = Math.Max(peak, _device.Pool.BytesInUse);
                foreach (int dead in step.Dead)
                {
                    values[dead]?.Dispose();
                    values[dead] = null;
                }
            }
            _lastRun = new RunTimes(schedule, ticks, shapes);
            for (int o = 0; o < Outputs.Count; o++)
            {
                int slot = schedule.Outputs[o];
                var value = values[slot] ?? throw new OnnxFormatException($"graph output '{Outputs[o].Name}' is produced by no node");
                outputs[Outputs[o].Name] = slot < schedule.Borrowed ? value.Share() : value;
                if (slot >= schedule.Borrowed)
                    values[slot] = null;
            }
        }
        finally
        {
            for (int slot = schedule.Borrowed; slot < values.Length; slot++)
                values[slot]?.Dispose();
            ArenaBytes = arena?.Bytes ?? 0;
            LastRunPeakBytes = peak - before + (replaying ? ArenaBytes : 0);
        }
        return outputs;
    }

    /// <summary>The arena for these inputs' shapes (made on the first run at them), or null without optimization.</summary>
    private MemoryArena? ArenaFor(IReadOnlyDictionary<string, OnnxTensor> inputs)
    {
        if (!_planMemory)
            return null;
        // Runs on several threads at once each find or add their shape's arena under the lock (the arena itself serves one
        // run at a time and sends the others to the pool).
        lock (_arenas)
            return ArenaForLocked(inputs);
    }

    private MemoryArena ArenaForLocked(IReadOnlyDictionary<string, OnnxTensor> inputs)
    {
        foreach (var (shapes, known) in _arenas)
        {
            bool same = true;
            for (int i = 0; i < Inputs.Count && same; i++)
                same = inputs.TryGetValue(Inputs[i].Name, out var t) ? t.Dims.SequenceEqual(shapes[i]) : shapes[i].Length == 1 && shapes[i][0] == -1;
            if (same)
                return known;
        }
        if (_arenas.Count == MaxArenas)
        {
            _arenas[0].Arena.Dispose();
            _arenas.RemoveAt(0);
        }
        var arena = _device.Pool.CreateArena();
        // An input left out (an initializer listed as an input keeps its default) is recorded as [−1].
        _arenas.Add((Inputs.Select(i => inputs.TryGetValue(i.Name, out var t) ? t.DimsArray : [-1]).ToArray(), arena));
        return arena;
    }

    /// <summary>
    /// The plan compiled to value slots, once after folding and fusion: graph inputs, defaults and constants first (the run
    /// borrows them), then every node's outputs; per node its input and output slots and the slots that die after it (last
    /// used there, or never used, and not a graph output). A run indexes arrays where it looked each name up in dictionaries
    /// and copied every constant into one (a TransformerEncoder's 113 constants and 47 nodes: tens of µs a run).
    /// </summary>
    private sealed record Schedule(Dictionary<string, int> Slots, int Borrowed, OnnxTensor?[] Template, ScheduleStep[] Steps, int[] Outputs)
    {
        /// <summary>The most inputs any node takes.</summary>
        public int MaxInputs { get; } = Steps.Length == 0 ? 0 : Steps.Max(s => s.Inputs.Length);
    }

    /// <summary>One planned node in a <see cref="Schedule"/> (slot −1: an omitted optional input or output).</summary>
    private sealed record ScheduleStep(NodeProto Node, OpSpec Spec, OpContext Context, string Label, string Op, int[] Inputs, int[] Outputs, int[]?[] Assumed, int[] Dead);

    private Schedule Compile()
    {
        var slots = new Dictionary<string, int>();
        int Slot(string name) => slots.TryGetValue(name, out int s) ? s : slots[name] = slots.Count;
        foreach (var i in Inputs)
            Slot(i.Name);
        foreach (var name in _defaults.Keys)
            Slot(name);
        foreach (var name in _constants.Keys)
            Slot(name);
        int borrowed = slots.Count;
        foreach (var (node, _, _) in _plan)
            foreach (var o in node.Outputs)
                if (o.Length > 0)
                    Slot(o);
        foreach (var o in Outputs)
            Slot(o.Name);
        var template = new OnnxTensor?[slots.Count];
        foreach (var (name, value) in _defaults)
            template[slots[name]] = value;
        foreach (var (name, value) in _constants)
            template[slots[name]] = value;
        var outputSlots = Outputs.Select(o => slots[o.Name]).ToHashSet();
        var lastUse = new Dictionary<string, int>();
        for (int k = 0; k < _plan.Count; k++)
            foreach (var name in _plan[k].Node.Inputs)
                if (name.Length > 0)
                    lastUse[name] = k;
        var planned = PlannedOperators;
        var steps = new ScheduleStep[_plan.Count];
        for (int k = 0; k < _plan.Count; k++)
        {
            var (node, index, spec) = _plan[k];
            var dead = node.Inputs.Where(n => n.Length > 0 && lastUse[n] == k).Select(n => slots[n])
                .Concat(node.Outputs.Where(n => n.Length > 0 && !lastUse.ContainsKey(n)).Select(n => slots[n]))
                .Where(s => s >= borrowed && !outputSlots.Contains(s)).Distinct().ToArray();
            var context = new OpContext(node, index, Opset, _device)
            {
                Unread = node.Outputs.Select(n => n.Length == 0 || !lastUse.ContainsKey(n) && !outputSlots.Contains(slots[n])).ToArray(),
            };
            steps[k] = new ScheduleStep(node, spec, context, node.Label(index), planned[k],
                node.Inputs.Select(n => n.Length == 0 ? -1 : slots[n]).ToArray(),
                node.Outputs.Select(n => n.Length == 0 ? -1 : slots[n]).ToArray(),
                node.Outputs.Select(n => n.Length > 0 && _assumedShapes.TryGetValue(n, out var a) ? a : null).ToArray(),
                dead);
        }
        return new Schedule(slots, borrowed, template, steps, Outputs.Select(o => slots[o.Name]).ToArray());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        DisposeValues();
        lock (_arenas)
        {
            foreach (var (_, arena) in _arenas)
                arena.Dispose();
            _arenas.Clear();
        }
    }

    private void DisposeValues()
    {
        foreach (var v in _constants.Values.Concat(_defaults.Values))
            v.Dispose();
        _constants.Clear();
        _defaults.Clear();
    }

    // ------------------------------------------------------------------ load-time checks and planning

    private static OnnxValueInfo Describe(ValueInfoProto v) =>
        new(v.Name, v.ElementType, v.Shape?.Select(d => new OnnxDimension(d.Value, d.Param)).ToList());

    /// <summary>Every construct the model uses that GpuNet does not run, one line each.</summary>
    private static List<string> Check(ModelProto model, GraphProto graph)
    {
        var problems = new List<string>();
        foreach (var (domain, version) in model.Opsets)
            if (domain is "" or "ai.onnx" && version > MaxOpset)
                problems.Add($"opset {version} of the default domain is newer than GpuNet implements (≤ {MaxOpset})");
        if (graph.SparseInitializers > 0)
            problems.Add($"{graph.SparseInitializers} sparse initializer(s): sparse tensors are not supported");
        int opset = model.DefaultOpset;
        var functions = model.Functions.ToHashSet();
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            string label = node.Label(i);
            if (functions.Contains(node.OpType))
                problems.Add($"{label}: model-local functions are not supported");
            else if (node.Domain is not ("" or "ai.onnx"))
                problems.Add($"{label}: domain '{node.Domain}' is not supported (only the default ONNX domain)");
            else if (!OpRegistry.All.TryGetValue(node.OpType, out var spec))
                problems.Add($"{label}: op {node.OpType} is not implemented");
            else if (opset < spec.MinOpset)
                problems.Add($"{label}: {node.OpType} at opset {opset} (GpuNet implements it from opset {spec.MinOpset})");
            else if (OpRegistry.CheckInputs(node) is { } wrong)
                throw new OnnxFormatException($"{label} {wrong}");
            else if (spec.Check?.Invoke(new OpContext(node, i, opset, null!)) is { } why)
                problems.Add($"{label}: {why}");
        }
        return problems;
    }

    /// <summary>Orders the nodes and folds constants (each value's last use is worked out with the run's schedule, <see cref="Compile"/>).</summary>
    private void Build(GraphProto graph, HashSet<string> graphInputs, bool optimize)
    {
        var produced = new HashSet<string>(graphInputs.Concat(_constants.Keys).Concat(_defaults.Keys));
        var pending = graph.Nodes.Select((n, i) => (Node: n, Index: i)).ToList();
        var ordered = new List<(NodeProto Node, int Index)>();
        // Kahn's order by repeated passes: ONNX graphs are usually sorted already, so this is one pass in practice.
        while (pending.Count > 0)
        {
            var ready = pending.Where(p => p.Node.Inputs.All(x => x.Length == 0 || produced.Contains(x))).ToList();
            if (ready.Count == 0)
            {
                var (n, i) = pending[0];
                var missing = n.Inputs.First(x => x.Length > 0 && !produced.Contains(x));
                throw new OnnxFormatException($"{n.Label(i)}: input '{missing}' is produced by no node, initializer or graph input (or the graph has a cycle)");
            }
            foreach (var r in ready)
            {
                ordered.Add(r);
                produced.UnionWith(r.Node.Outputs.Where(o => o.Length > 0));
            }
            pending.RemoveAll(p => ready.Contains(p));
        }
        foreach (var o in graph.Outputs)
            if (!produced.Contains(o.Name))
                throw new OnnxFormatException($"graph output '{o.Name}' is produced by no node");

        var runtime = new HashSet<string>(graphInputs);
        // Shapes the file declares fully (graph inputs, which Run validates, and the exporter's value_info for
        // intermediates, which Run verifies when they are produced): Shape and Size of such a value are constants, so the
        // shape arithmetic after them folds too.
        var declared = graph.Inputs.Concat(graph.ValueInfo)
            .Where(v => v.Kind == "tensor" && v.Shape is { } sh && sh.All(d => d.Value is >= 0 and <= int.MaxValue))
            .GroupBy(v => v.Name).ToDictionary(g => g.Key, g => g.First().Shape!.Select(d => (int)d.Value!.Value).ToArray());
        foreach (var (node, index) in ordered)
        {
            var spec = OpRegistry.All[node.OpType];
            if (node.OpType is "Shape" or "Size" && node.Inputs.Count == 1 && declared.TryGetValue(node.Inputs[0], out var known) && node.Outputs.Count == 1)
            {
                var c = new OpContext(node, index, Opset, _device);
                int start = (int)Math.Clamp(c.Int("start", 0) is var s0 && s0 < 0 ? s0 + known.Length : s0, 0, known.Length);
                int end = (int)Math.Clamp(c.Int("end", known.Length) is var e0 && e0 < 0 ? e0 + known.Length : e0, 0, known.Length);
                _constants[node.Outputs[0]] = node.OpType == "Size"
                    ? OnnxTensor.Integers(OnnxElementType.Int64, new[] { OnnxTensor.Product(known) }, Array.Empty<int>())
                    : OnnxTensor.Integers(OnnxElementType.Int64, known[start..Math.Max(start, end)].Select(d => (long)d).ToArray(), new[] { Math.Max(0, end - start) });
                if (!graphInputs.Contains(node.Inputs[0]))
                    _assumedShapes[node.Inputs[0]] = known;
                FoldedNodes++;
                continue;
            }
            bool constant = spec.Deterministic && node.Inputs.All(x => x.Length == 0 || !runtime.Contains(x) && _constants.ContainsKey(x));
            if (constant)
            {
                foreach (var (name, value) in Execute(node, index, spec, _constants))
                    _constants[name] = value;
                FoldedNodes++;
            }
            else
            {
                _plan.Add((node, index, spec));
                runtime.UnionWith(node.Outputs.Where(o => o.Length > 0));
                if (node.Outputs.Count > 0 && !declared.ContainsKey(node.Outputs[0])
                    && ShapeInference.Output(node, Opset, n => declared.TryGetValue(n, out var d) ? d : _constants.TryGetValue(n, out var t) ? t.Shape : null,
                        n => _constants.TryGetValue(n, out var t) && !t.IsFloat ? t.Ints : null) is { } inferred)
                    declared[node.Outputs[0]] = inferred;
            }
        }
        FusedNodes = optimize ? Fusion.Apply(_plan, _constants, _outputNames, Opset) : 0;
        foreach (var constant in _constants.Values)
            constant.IsConstant = true;
    }

    /// <summary>Runs one node on the device: temporaries of the op are freed by a scope, outputs escape it. Returns one value
    /// per named output slot of the node (results past them, and those of omitted outputs, are disposed; an omitted output's
    /// entry is then a disposed value the caller skips).</summary>
    private OnnxTensor[] Execute(OpContext c, OpSpec spec, OnnxTensor?[] inputs)
    {
        var node = c.Node;
        OnnxTensor[] results;
        using (var scope = _device.Scope())
        {
            try
            {
                results = spec.Run(c, inputs);
            }
            catch (GpuNetException e) when (e is not (OnnxUnsupportedException or OnnxFormatException or DeviceOutOfMemoryException) && !e.Message.Contains(c.Label))
            {
                throw new OnnxRunException($"{c.Label}: {e.Message}", e);
            }
            foreach (var r in results)
                if (r?.DeviceTensor is { } t)
                    TensorScope.Escape(t);
        }
        int named = 0;
        foreach (var o in node.Outputs)
            named += o.Length > 0 ? 1 : 0;
        if (results.Length < named)
            throw new OnnxRunException($"{c.Label}: produced {results.Length} outputs, the node names {node.Outputs.Count}");
        for (int i = 0; i < results.Length; i++)
            if (i >= node.Outputs.Count || node.Outputs[i].Length == 0)
                results[i]?.Dispose();
        return results;
    }

    /// <summary><see cref="Execute(OpContext, OpSpec, OnnxTensor?[])"/> on named values (load-time folding).</summary>
    private IEnumerable<(string Name, OnnxTensor Value)> Execute(NodeProto node, int index, OpSpec spec, Dictionary<string, OnnxTensor> env)
    {
        var results = Execute(new OpContext(node, index, Opset, _device), spec, node.Inputs.Select(x => x.Length == 0 ? null : env[x]).ToArray());
        for (int i = 0; i < node.Outputs.Count && i < results.Length; i++)
            if (node.Outputs[i].Length > 0)
                yield return (node.Outputs[i], results[i]);
    }

    private void ValidateInputs(IReadOnlyDictionary<string, OnnxTensor> inputs)
    {
        foreach (var name in inputs.Keys)
            if (!Inputs.Any(i => i.Name == name) && !_defaults.ContainsKey(name))
                throw new OnnxInputException($"'{name}' is not an input of the model (inputs: {string.Join(", ", Inputs.Select(i => i.Name))})");
        foreach (var info in Inputs)
        {
            if (!inputs.TryGetValue(info.Name, out var value) || value is null)
                throw new OnnxInputException($"input '{info.Name}' ({info}) is missing");
            if (value.ElementType != info.ElementType)
                throw new OnnxInputException($"input '{info.Name}' must be {info.ElementType}, got {value.ElementType}");
            if (info.Dimensions is { } dims)
            {
                var shape = value.Dims;
                bool fits = shape.Length == dims.Count;
                for (int d = 0; fits && d < dims.Count; d++)
                    fits = dims[d].Value is not { } v || v == shape[d];
                if (!fits)
                    throw new OnnxInputException($"input '{info.Name}' must have shape [{string.Join(", ", dims)}], got {GpuNetException.FormatShape(shape)}");
            }
        }
    }
}

/// <summary>Time spent in one op type during a run.</summary>
/// <param name="Op">The op type (fused ones are named <c>GpuNet.*</c>).</param>
/// <param name="Count">Nodes of that type run.</param>
/// <param name="Milliseconds">Their total host time.</param>
public sealed record OnnxOperatorTime(string Op, int Count, double Milliseconds);

/// <summary>Time spent in one node during a run.</summary>
/// <param name="Node">The node, as errors name it (<c>node '/layer1/conv' (Conv)</c>).</param>
/// <param name="Op">The op as planned, with its fused activation (<c>Conv+Relu</c>).</param>
/// <param name="Output">The shape of its first output.</param>
/// <param name="Milliseconds">Its host time.</param>
public sealed record OnnxNodeTime(string Node, string Op, IReadOnlyList<int> Output, double Milliseconds);

/// <summary>An error while running a node (a shape its data cannot take): the message names the node and op.</summary>
public sealed class OnnxRunException(string message, Exception? inner = null) : GpuNetException("onnx run", "onnx run: " + message, inner);

/// <summary>What a model file holds, from <see cref="OnnxModel.Inspect"/>.</summary>
/// <param name="IrVersion">IR version.</param>
/// <param name="Opset">Default-domain opset.</param>
/// <param name="Producer">Producer name and version.</param>
/// <param name="Inputs">Run-time inputs.</param>
/// <param name="Outputs">Outputs.</param>
/// <param name="OperatorCounts">Nodes per op.</param>
/// <param name="Unsupported">Every construct GpuNet cannot run (empty when the model loads).</param>
/// <param name="Initializers">Number of initializers (weights).</param>
public sealed record OnnxModelSummary(long IrVersion, int Opset, string Producer, IReadOnlyList<OnnxValueInfo> Inputs, IReadOnlyList<OnnxValueInfo> Outputs,
    IReadOnlyDictionary<string, int> OperatorCounts, IReadOnlyList<string> Unsupported, int Initializers);

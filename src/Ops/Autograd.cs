namespace GpuNet;

/// <summary>
/// The backward of one recorded op: from the gradient of the op's output, the gradients of its inputs in order — null
/// where <paramref name="needsGrad"/> is false (nothing upstream wants it), else a tensor of the input's shape (any view;
/// each a tensor object of its own, never <paramref name="gradOutput"/> itself, which the engine disposes afterwards).
/// Runs with recording off.
/// </summary>
public delegate Tensor?[] BackwardFunction(Tensor gradOutput, bool[] needsGrad);

/// <summary>
/// The first step of a recorded op's backward when it is an elementwise factor: a fused activation's f′(z) multiplying the
/// output gradient. A consumer whose own backward ends in a kernel that can multiply by it in its epilogue (the matmul) may
/// take it over (<see cref="GatingBackwardFunction"/>), so the factor costs no kernel and no pass over memory of its own;
/// otherwise the engine applies it before the op's backward runs.
/// </summary>
public interface IGradientGate
{
    /// <summary>A new tensor: <paramref name="gradOutput"/> times the factor (same shape).</summary>
    Tensor Apply(Tensor gradOutput);
}

/// <summary>
/// A <see cref="BackwardFunction"/> that can apply the <see cref="IGradientGate"/> of the ops producing its inputs:
/// <paramref name="gates"/>[i], when not null, is the gate of input i's producer, offered because this op is the only consumer
/// of that input in the pass; the function must then return input i's gradient with the gate already applied.
/// </summary>
public delegate Tensor?[] GatingBackwardFunction(Tensor gradOutput, bool[] needsGrad, IGradientGate?[] gates);

/// <summary>
/// One recorded operation of the tape: the backward function that maps the gradient of its output to gradients of its
/// inputs, the tensors that function needs (kept alive here even after the forward's scope disposed them), and an edge to
/// each input — the node that produced it, or the leaf tensor that accumulates its <see cref="Tensor.Grad"/>.
/// Reference-counted by the tensors it produced and the nodes that consume them: when the last of those is gone (or a
/// backward pass has run through it) the node frees what it saved at once, so the pool gets the memory back deterministically.
/// </summary>
internal sealed class RecordedOp : GradNode
{
    private readonly Edge[] _inputs;
    private GatingBackwardFunction? _backward;
    private IGradientGate? _gate;
    private Tensor[] _saved;
    private int _refs;
    private bool _freed;

    internal readonly record struct Edge(RecordedOp? Node, Tensor? Leaf, int[] Shape)
    {
        public bool NeedsGrad => Node is not null || Leaf is not null;
    }

    internal RecordedOp(string op, int[] outputShape, Edge[] inputs, GatingBackwardFunction? backward, bool takesGates, IGradientGate? gate, Tensor[] saved)
        : base(op, outputShape)
    {
        _inputs = inputs;
        _backward = backward;
        TakesGates = takesGates;
        _gate = gate;
        _saved = saved;
        foreach (var e in inputs)
            e.Node?.AddRef();
    }

    /// <inheritdoc />
    public override bool IsFreed => _freed;

    /// <inheritdoc />
    public override bool HasBackward => _backward is not null;

    internal IReadOnlyList<Edge> Inputs => _inputs;

    /// <summary>The elementwise factor the backward starts with (null when none, or once freed).</summary>
    internal IGradientGate? Gate => _freed ? null : _gate;

    /// <summary>True when the backward can apply its inputs' producers' gates (recorded with a <see cref="GatingBackwardFunction"/>).</summary>
    internal bool TakesGates { get; }

    internal void AddRef() => _refs++;

    /// <inheritdoc />
    protected internal override void Release()
    {
        if (--_refs <= 0)
            Free();
    }

    internal Tensor?[] RunBackward(Tensor gradOutput, IGradientGate?[] gates)
    {
        if (_freed)
            throw new GraphFreedException(Op);
        if (_backward is null)
            throw new NoGradientException(Op);
        var grads = _backward(gradOutput, _inputs.Select(e => e.NeedsGrad).ToArray(), gates);
        if (grads.Length != _inputs.Length)
            throw new InvalidOperationException($"{Op}: backward returned {grads.Length} gradients for {_inputs.Length} inputs");
        return grads;
    }

    /// <summary>Disposes the saved tensors and lets go of the input nodes (idempotent).</summary>
    internal void Free()
    {
        if (_freed)
            return;
        _freed = true;
        _backward = null;
        _gate = null;
        foreach (var t in _saved)
            t.Dispose();
        _saved = Array.Empty<Tensor>();
        foreach (var e in _inputs)
            e.Node?.Release();
    }
}

/// <summary>
/// Reverse-mode automatic differentiation, define-by-run: while recording is on (the default; off inside
/// <see cref="NoGrad"/>) every differentiable op whose inputs require a gradient records a <see cref="GradNode"/> on its
/// output, and <see cref="TensorAutograd.Backward"/> walks the recorded graph from a result back to the leaves, accumulating into
/// their <see cref="Tensor.Grad"/>. Ops record through <see cref="Record"/>; each family's backward functions live beside
/// its forward ops in this layer, above the kernels they launch.
/// </summary>
public static class Autograd
{
    /// <summary>The gates offered to a node recorded without a <see cref="GatingBackwardFunction"/> (it ignores them).</summary>
    private static readonly IGradientGate?[] NoGates = Array.Empty<IGradientGate?>();

    [ThreadStatic]
    private static int _noGradDepth;

    /// <summary>True when ops record their backward on this thread (false inside <see cref="NoGrad"/>).</summary>
    public static bool IsEnabled => _noGradDepth == 0;

    /// <summary>A scope in which nothing is recorded (inference, optimizer steps); scopes nest. Dispose to leave it.</summary>
    public static NoGradScope NoGrad()
    {
        _noGradDepth++;
        return new NoGradScope(true);
    }

    /// <summary>
    /// A scope in which ops record even inside a <see cref="NoGrad"/> scope or a backward pass (torch.enable_grad): a backward
    /// that recomputes its forward to differentiate it opens one. Dispose to restore the outer mode.
    /// </summary>
    public static EnableGradScope EnableGrad()
    {
        var scope = new EnableGradScope(_noGradDepth);
        _noGradDepth = 0;
        return scope;
    }

    /// <summary>The scope <see cref="EnableGrad"/> opens (a struct: entering and leaving allocates nothing).</summary>
    public struct EnableGradScope : IDisposable
    {
        private int _outer;
        private bool _open;

        internal EnableGradScope(int outer) => (_outer, _open) = (outer, true);

        /// <summary>Restores the mode outside the scope.</summary>
        public void Dispose()
        {
            if (!_open)
                return;
            _open = false;
            _noGradDepth = _outer;
        }
    }

    /// <summary>The scope <see cref="NoGrad"/> opens (a struct: entering and leaving allocates nothing).</summary>
    public struct NoGradScope : IDisposable
    {
        private bool _open;

        internal NoGradScope(bool open) => _open = open;

        /// <summary>Turns recording back on (when no outer scope keeps it off).</summary>
        public void Dispose()
        {
            if (!_open)
                return;
            _open = false;
            _noGradDepth--;
        }
    }

    /// <summary>True when recording is on and any of <paramref name="inputs"/> requires a gradient: the op should record. The
    /// inputs come as a span, which the compiler builds on the stack: as an array, every op of every inference run allocated one.</summary>
    public static bool ShouldRecord(params ReadOnlySpan<Tensor?> inputs)
    {
        if (!IsEnabled)
            return false;
        foreach (var t in inputs)
            if (t is not null && t.RequiresGrad)
                return true;
        return false;
    }

    /// <summary>
    /// A handle on <paramref name="t"/>'s memory that the tape owns: it stays valid after the caller disposes
    /// <paramref name="t"/> or the enclosing scope ends, and is disposed when the node is freed. Pass it in the
    /// <c>saved</c> list of <see cref="Record"/>.
    /// </summary>
    public static Tensor Save(Tensor t) => t.Alias();

    /// <summary>
    /// Records an op on <paramref name="output"/> (see <see cref="BackwardFunction"/>). The engine owns (and disposes) what
    /// backward returns. <paramref name="saved"/> are tensors from <see cref="Save"/>, disposed when the node is freed.
    /// Call it only when <see cref="ShouldRecord"/> says so.
    /// </summary>
    public static void Record(string op, Tensor output, Tensor?[] inputs, BackwardFunction backward, params Tensor[] saved) =>
        Attach(output, new RecordedOp(op, output.ShapeArray(), Edges(inputs), (g, needs, _) => backward(g, needs), false, null, saved));

    /// <summary>
    /// Records an op whose backward may take over the gates of its inputs' producers (see <see cref="GatingBackwardFunction"/>),
    /// and whose own backward, when <paramref name="gate"/> is given, receives the output gradient with that gate applied —
    /// by the engine, or by the consumer that took it over. The gate's tensors belong in <paramref name="saved"/>.
    /// </summary>
    public static void RecordGating(string op, Tensor output, Tensor?[] inputs, GatingBackwardFunction backward, IGradientGate? gate, params Tensor[] saved) =>
        Attach(output, new RecordedOp(op, output.ShapeArray(), Edges(inputs), backward, true, gate, saved));

    /// <summary>
    /// Marks <paramref name="output"/> as computed by an op whose gradient is not implemented: it requires a gradient
    /// (so the gap is not silently a zero gradient) and backward through it raises <see cref="NoGradientException"/> naming <paramref name="op"/>.
    /// </summary>
    public static void RecordNoGradient(string op, Tensor output, params Tensor?[] inputs)
    {
        if (ShouldRecord(inputs))
            Attach(output, new RecordedOp(op, output.ShapeArray(), Edges(inputs), null, false, null, Array.Empty<Tensor>()));
    }

    private static RecordedOp.Edge[] Edges(Tensor?[] inputs) =>
        inputs.Select(t => t is null || !t.RequiresGrad
            ? new RecordedOp.Edge(null, null, t?.ShapeArray() ?? Array.Empty<int>())
            : new RecordedOp.Edge(NodeOf(t), t.GradFn is null ? t : null, t.ShapeArray())).ToArray();

    /// <summary>The node that computed <paramref name="t"/>: every node on a tensor was recorded here (only this layer sets one).</summary>
    private static RecordedOp? NodeOf(Tensor t) => (RecordedOp?)t.GradFn;

    private static void Attach(Tensor output, RecordedOp node)
    {
        node.AddRef();
        output.SetGradFn(node);
    }

    /// <summary>
    /// Runs the backward pass from <paramref name="root"/> (see <see cref="TensorAutograd.Backward"/>): nodes in reverse topological
    /// order, each gradient summed over all paths before its node runs, leaf gradients accumulated into
    /// <see cref="Tensor.Grad"/>, every node freed after it ran unless <paramref name="retainGraph"/>.
    /// </summary>
    internal static void Backward(Tensor root, Tensor? gradOutput, bool retainGraph)
    {
        root.EnsureAlive("backward", "tensor");
        if (!root.RequiresGrad)
            throw new NoGradientException("backward", "the tensor does not require a gradient and has no recorded op (set RequiresGrad on a leaf, or compute it from one outside NoGrad)");
        if (gradOutput is null && root.Length != 1)
            throw new ShapeMismatchException("backward", "gradOutput", "a gradient for a non-scalar output (Backward(gradOutput))", $"none for {GpuNetException.FormatShape(root.ShapeArray())}");
        if (gradOutput is not null)
        {
            gradOutput.EnsureAlive("backward", "gradOutput");
            if (!gradOutput.Shape.SequenceEqual(root.Shape))
                throw new ShapeMismatchException("backward", "gradOutput", GpuNetException.FormatShape(root.ShapeArray()), GpuNetException.FormatShape(gradOutput.ShapeArray()));
            if (!ReferenceEquals(gradOutput.Device, root.Device))
                throw new DeviceMismatchException("backward", "gradOutput", root.Device.Label, gradOutput.Device.Label);
        }

        using var _ = NoGrad();
        var seed = gradOutput is null ? Ops.Full(root.Device, 1f, root.ShapeArray()) : gradOutput.Alias();
        if (NodeOf(root) is not { } rootNode)
        {
            AccumulateLeaf(root, seed);
            return;
        }

        // Dependencies: how many edges from nodes reachable from the root point at each node.
        var pendingEdges = new Dictionary<RecordedOp, int>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<RecordedOp>();
        stack.Push(rootNode);
        pendingEdges[rootNode] = 0;
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            foreach (var e in node.Inputs)
                if (e.Node is not null)
                {
                    if (!pendingEdges.TryGetValue(e.Node, out int n))
                        stack.Push(e.Node);
                    pendingEdges[e.Node] = n + 1;
                }
        }

        var gateTaken = new HashSet<RecordedOp>(ReferenceEqualityComparer.Instance);

        // Hold every reachable node for the pass: a node freed after its backward lets go of its inputs, which must not be
        // freed (by their count dropping to zero) before their own turn comes.
        foreach (var node in pendingEdges.Keys)
            node.AddRef();
        var grads = new Dictionary<RecordedOp, Tensor>(ReferenceEqualityComparer.Instance) { [rootNode] = seed };
        var ready = new Stack<RecordedOp>();
        ready.Push(rootNode);
        try
        {
            while (ready.Count > 0)
            {
                var node = ready.Pop();
                var g = grads[node];
                grads.Remove(node);
                if (node.Gate is { } ownGate && !gateTaken.Contains(node))
                {
                    var ungated = g;
                    try
                    {
                        g = ownGate.Apply(ungated);
                    }
                    finally
                    {
                        ungated.Dispose();
                    }
                    TensorScope.Unregister(g);
                }
                // A producer's gate goes to the consumer whose gradient will be its only one: this node's edge is the last still
                // pending (so it is not used twice by this node) and no earlier consumer delivered a gradient. Otherwise the
                // engine applies the gate itself to the summed gradient.
                var gates = node.TakesGates ? new IGradientGate?[node.Inputs.Count] : NoGates;
                if (node.TakesGates)
                    for (int i = 0; i < gates.Length; i++)
                        if (node.Inputs[i].Node is { Gate: { } gate } producer && pendingEdges[producer] == 1 && !grads.ContainsKey(producer))
                        {
                            gates[i] = gate;
                            gateTaken.Add(producer);
                        }
                Tensor?[] inputGrads;
                try
                {
                    inputGrads = node.RunBackward(g, gates);
                }
                finally
                {
                    g.Dispose();
                }
                if (!retainGraph)
                    node.Free();
                for (int i = 0; i < inputGrads.Length; i++)
                {
                    var e = node.Inputs[i];
                    var gi = inputGrads[i];
                    // The edge counts as done whether or not a gradient came along it, so the node behind it still gets its turn.
                    bool last = e.Node is not null && --pendingEdges[e.Node] == 0;
                    if (gi is null || !e.NeedsGrad)
                    {
                        gi?.Dispose();
                        if (last && grads.ContainsKey(e.Node!))
                            ready.Push(e.Node!);
                        continue;
                    }
                    TensorScope.Unregister(gi);
                    if (!gi.Shape.SequenceEqual(e.Shape))
                    {
                        gi.Dispose();
                        throw new ShapeMismatchException(node.Op + " (backward)", $"gradient of input {i}", GpuNetException.FormatShape(e.Shape), GpuNetException.FormatShape(gi.ShapeArray()));
                    }
                    if (e.Leaf is not null)
                    {
                        AccumulateLeaf(e.Leaf, gi);
                        continue;
                    }
                    var target = e.Node!;
                    grads[target] = grads.TryGetValue(target, out var sum) ? Accumulate(sum, gi) : gi;
                    if (last)
                        ready.Push(target);
                }
            }
        }
        finally
        {
            foreach (var g in grads.Values)
                g.Dispose();
            foreach (var node in pendingEdges.Keys)
                node.Release();
        }
    }

    /// <summary>sum + g, in place when sum owns its memory alone, else into a new tensor; both arguments are consumed.</summary>
    private static Tensor Accumulate(Tensor sum, Tensor g)
    {
        if (sum.IsExclusive && sum.IsContiguous)
        {
            Ops.Add(sum, g, sum);
            g.Dispose();
            return sum;
        }
        var total = Ops.Add(sum, g);
        TensorScope.Unregister(total);
        sum.Dispose();
        g.Dispose();
        return total;
    }

    private static void AccumulateLeaf(Tensor leaf, Tensor g)
    {
        if (leaf.IsDisposed)
        {
            g.Dispose();
            throw new TensorDisposedException("backward", $"leaf tensor {GpuNetException.FormatShape(leaf.ShapeArray())} (disposed before its gradient arrived)");
        }
        if (leaf.Grad is { } existing)
        {
            Ops.Add(existing, g, existing);
            g.Dispose();
            return;
        }
        // The first gradient becomes .Grad as is when nothing else shares its memory; otherwise a contiguous copy.
        if (g.IsExclusive && g.IsContiguous)
            leaf.Grad = g;
        else
        {
            var copy = Ops.CopyOf(g);
            TensorScope.Unregister(copy);
            g.Dispose();
            leaf.Grad = copy;
        }
    }
}

/// <summary>A gradient was asked of an op that has none (or of a tensor that requires none); the message names the op.</summary>
public sealed class NoGradientException : GpuNetException
{
    /// <summary>Backward reached <paramref name="op"/>, whose gradient is not implemented.</summary>
    public NoGradientException(string op)
        : base(op, $"{op}: has no gradient (backward is not implemented for this op); compute it under Autograd.NoGrad() or Detach() its inputs") { }

    /// <summary>Backward could not start at all.</summary>
    public NoGradientException(string op, string why) : base(op, $"{op}: {why}") { }
}

/// <summary>Backward ran through a graph that an earlier backward already freed.</summary>
public sealed class GraphFreedException(string op)
    : GpuNetException(op, $"{op}: the recorded graph was already freed by an earlier Backward(); call the first Backward(retainGraph: true) to run backward twice");

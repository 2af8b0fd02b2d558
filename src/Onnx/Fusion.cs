using GpuNet.Onnx.Operators;
using GpuNet.Onnx.Proto;

namespace GpuNet.Onnx;

/// <summary>
/// Rewrites the planned graph (after constant folding) onto GpuNet's fused kernels, where the intermediates are used
/// by nothing else: MatMul + bias Add → one matmul with the bias epilogue; the erf-GELU subgraph → gelu_erf; Relu or GELU
/// after a Gemm or fused Linear → the matmul's activation epilogue; the decomposed LayerNorm (ReduceMean, Sub, Pow,
/// ReduceMean, Add ε, Sqrt, Div, Mul γ, Add β) → layernorm; Softmax(Q·Kᵀ·scale, masked) · V → fused attention; an
/// inference BatchNormalization after a Conv with constant weights → folded into those weights and bias; Relu, Clip(0, 6)
/// or x·Sigmoid(x) after a Conv (Clip(0, 6) after a Gemm too) → its activation epilogue; a residual Add (and the Relu or
/// Clip after it) → the Conv's stores; a 1×1 Conv read only by a depthwise Conv → one node that never writes its output,
/// and the 1×1 Conv (with its residual) that alone reads that node → one node for the whole inverted residual block;
/// GlobalAveragePool → 1×1 Conv → 1×1 Conv → Sigmoid → Mul with the pooled input → one squeeze-and-excitation node.
/// Each match checks the constants it relies on (√2, 1, ½, the exponent 2, the reduced axis), so a look-alike subgraph
/// computing something else is left alone.
/// </summary>
internal sealed class Fusion
{
    private readonly List<(NodeProto Node, int Index, OpSpec Spec)> _plan;
    private readonly Dictionary<string, OnnxTensor> _constants;
    private readonly HashSet<string> _outputs;
    private readonly Dictionary<string, int> _producer = new();
    private readonly Dictionary<string, int> _uses = new();
    private readonly int _opset;
    private bool[] _removed = Array.Empty<bool>();

    private Fusion(List<(NodeProto, int, OpSpec)> plan, Dictionary<string, OnnxTensor> constants, HashSet<string> outputs, int opset)
    {
        (_plan, _constants, _outputs, _opset) = (plan, constants, outputs, opset);
        RebuildIndex();
    }

    /// <summary>Fuses what it can in place; returns how many nodes the plan lost.</summary>
    public static int Apply(List<(NodeProto Node, int Index, OpSpec Spec)> plan, Dictionary<string, OnnxTensor> constants, HashSet<string> outputs, int opset)
    {
        var f = new Fusion(plan, constants, outputs, opset);
        int before = plan.Count;
        for (int k = 0; k < plan.Count; k++) f.Gelu(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.LayerNorm(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.Attention(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.AttentionOutputLayout(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.LinearBias(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.BatchNormIntoConv(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.ActivationEpilogue(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.SiluEpilogue(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.ResidualEpilogue(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.ExpandDepthwise(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.InvertedResidual(k);
        f.Compact();
        for (int k = 0; k < plan.Count; k++) f.SqueezeExcite(k);
        f.Compact();
        return before - plan.Count;
    }

    private void Compact()
    {
        var kept = _plan.Where((_, k) => !_removed[k]).ToList();
        _plan.Clear();
        _plan.AddRange(kept);
        RebuildIndex();
    }

    private void RebuildIndex()
    {
        _producer.Clear();
        _uses.Clear();
        _removed = new bool[_plan.Count];
        for (int k = 0; k < _plan.Count; k++)
        {
            foreach (var o in _plan[k].Node.Outputs)
                _producer[o] = k;
            foreach (var i in _plan[k].Node.Inputs)
                _uses[i] = _uses.GetValueOrDefault(i) + 1;
        }
    }

    // ------------------------------------------------------------------ matching helpers

    private NodeProto Node(int k) => _plan[k].Node;

    /// <summary>The live node producing <paramref name="value"/> with op <paramref name="op"/>, used only once and not a graph output.</summary>
    private int? Only(string value, string op)
    {
        if (!_producer.TryGetValue(value, out int k) || _removed[k] || Node(k).OpType != op || _uses.GetValueOrDefault(value) != 1 || _outputs.Contains(value))
            return null;
        return k;
    }

    private bool IsScalar(string value, double expected, double tolerance = 1e-6) =>
        _constants.TryGetValue(value, out var t) && t.IsFloat && t.Length == 1 && Math.Abs(t.Floats[0] - expected) <= tolerance * Math.Max(1, Math.Abs(expected));

    private float? ScalarOf(string value) => _constants.TryGetValue(value, out var t) && t.IsFloat && t.Length == 1 ? t.Floats[0] : null;

    /// <summary>The other input of a two-input node, given one of them.</summary>
    private static string? Other(NodeProto n, string one) => n.Inputs.Count == 2 ? n.Inputs[0] == one ? n.Inputs[1] : n.Inputs[1] == one ? n.Inputs[0] : null : null;

    private void Replace(int root, string op, IEnumerable<string> inputs, IEnumerable<int> removed, params AttributeProto[] attributes)
    {
        var fused = new NodeProto { Name = $"{op} ({Node(root).Name})", OpType = op };
        fused.Inputs.AddRange(inputs);
        fused.Outputs.Add(Node(root).Outputs[0]);
        foreach (var a in attributes)
            fused.Attributes[a.Name] = a;
        foreach (int k in removed)
            _removed[k] = true;
        _plan[root] = (fused, _plan[root].Index, FusedOperators.All[op]);
    }

    private static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeType.Int, I = v };

    private static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeType.Float, F = v };

    private static AttributeProto Ints(string name, IEnumerable<long> v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    // ------------------------------------------------------------------ patterns

    /// <summary>Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), ½) in any operand order → GpuNet.Gelu(x).</summary>
    private void Gelu(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Mul" || n.Inputs.Count != 2)
            return;
        string? inner = IsScalar(n.Inputs[1], 0.5) ? n.Inputs[0] : IsScalar(n.Inputs[0], 0.5) ? n.Inputs[1] : null;
        if (inner is null || Only(inner, "Mul") is not int mul)
            return;
        foreach (var x in Node(mul).Inputs)
        {
            var sum = Other(Node(mul), x);
            if (sum is null || Only(sum, "Add") is not int add)
                continue;
            var erfOut = IsScalar(Node(add).Inputs[1], 1) ? Node(add).Inputs[0] : IsScalar(Node(add).Inputs[0], 1) ? Node(add).Inputs[1] : null;
            if (erfOut is null || Only(erfOut, "Erf") is not int erf || Only(Node(erf).Inputs[0], "Div") is not int div)
                continue;
            if (Node(div).Inputs[0] != x || !IsScalar(Node(div).Inputs[1], Math.Sqrt(2), 1e-5))
                continue;
            Replace(root, "GpuNet.Gelu", new[] { x }, new[] { mul, add, erf, div });
            return;
        }
    }

    /// <summary>The opset-14 export of nn.LayerNorm over the last axis → GpuNet.LayerNorm(x, γ, β, ε).</summary>
    private void LayerNorm(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Add" || n.Inputs.Count != 2)
            return;
        foreach (var scaled in n.Inputs)
        {
            string? beta = Other(n, scaled);
            if (beta is null || !_constants.ContainsKey(beta) || Only(scaled, "Mul") is not int mulG)
                continue;
            foreach (var normalized in Node(mulG).Inputs)
            {
                string? gamma = Other(Node(mulG), normalized);
                if (gamma is null || !_constants.ContainsKey(gamma) || Only(normalized, "Div") is not int div)
                    continue;
                string d = Node(div).Inputs[0];
                if (Only(Node(div).Inputs[1], "Sqrt") is not int sqrt || Only(Node(sqrt).Inputs[0], "Add") is not int addEps)
                    continue;
                var eps = ScalarOf(Node(addEps).Inputs[1]);
                if (eps is null || Only(Node(addEps).Inputs[0], "ReduceMean") is not int varMean || !LastAxis(varMean))
                    continue;
                if (Only(Node(varMean).Inputs[0], "Pow") is not int pow || Node(pow).Inputs[0] != d || !IsScalar(Node(pow).Inputs[1], 2))
                    continue;
                // d = x − mean feeds both the Pow and the Div.
                if (!_producer.TryGetValue(d, out int sub) || Node(sub).OpType != "Sub" || _uses.GetValueOrDefault(d) != 2 || _outputs.Contains(d))
                    continue;
                string x = Node(sub).Inputs[0];
                if (Only(Node(sub).Inputs[1], "ReduceMean") is not int mean || Node(mean).Inputs[0] != x || !LastAxis(mean))
                    continue;
                Replace(root, "GpuNet.LayerNorm", new[] { x, gamma, beta }, new[] { mulG, div, sqrt, addEps, varMean, pow, sub, mean }, Float("epsilon", eps.Value));
                return;
            }
        }
    }

    private bool LastAxis(int reduce) => Node(reduce).Attributes.TryGetValue("axes", out var a) && a.Ints.Count == 1 && a.Ints[0] == -1
        && (!Node(reduce).Attributes.TryGetValue("keepdims", out var kd) || kd.I == 1) && Node(reduce).Inputs.Count == 1;

    /// <summary>
    /// MatMul(Softmax(mask(MatMul(Q·s_q, Transpose(K)) · s)), V) → GpuNet.Attention(Q, K, V[, condition]), Q, K and V of rank 3
    /// ([B·H, N, d]) or 4 ([B, H, N, d]), the scale on the scores or on Q (PyTorch's nn.MultiheadAttention divides Q). Kᵀ's
    /// transpose becomes the permutation that reads K as [.., N, d] (key_perm), and a transpose that only lays out Q or V
    /// (heads out of the tokens axis) is read through its permutation too (query_perm, value_perm): strided views the kernel
    /// reads directly, where each transpose node copied. Permutations must keep d last.
    /// </summary>
    private void Attention(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "MatMul" || Only(n.Inputs[0], "Softmax") is not int softmax)
            return;
        var sm = Node(softmax);
        // From opset 13 Softmax defaults to the last axis; before, to axis 1 of the input coerced to 2-D (the last axis only when said so).
        long axis = sm.Attributes.TryGetValue("axis", out var ax) ? ax.I : _opset >= 13 ? -1 : 1;
        string scores = sm.Inputs[0];
        var removed = new List<int> { softmax };
        string? condition = null;
        if (Only(scores, "Where") is int where)
        {
            // Where(cond, −inf, s): cond marks the masked positions.
            var w = Node(where);
            if (ScalarOf(w.Inputs[1]) is not float f || !float.IsNegativeInfinity(f))
                return;
            condition = w.Inputs[0];
            scores = w.Inputs[2];
            removed.Add(where);
        }
        float? scale = null;
        if (Scaled(scores) is var (scoresScale, unscaled, scaling))
        {
            scale = scoresScale;
            scores = unscaled;
            removed.Add(scaling);
        }
        if (Only(scores, "MatMul") is not int qk || Only(Node(qk).Inputs[1], "Transpose") is not int transpose)
            return;
        string query = Node(qk).Inputs[0];
        if (Scaled(query) is var (queryScale, unscaledQuery, queryScaling))
        {
            scale = (scale ?? 1f) * queryScale;
            query = unscaledQuery;
            removed.Add(queryScaling);
        }
        // Kᵀ = Transpose(K_in, p): K is K_in through p with its last two entries swapped.
        var keyPerm = Perm(transpose)?.ToArray();
        if (scale is null || keyPerm is null || keyPerm.Length is not (3 or 4) || !(axis == -1 || axis == keyPerm.Length - 1))
            return;
        (keyPerm[^1], keyPerm[^2]) = (keyPerm[^2], keyPerm[^1]);
        if (keyPerm[^1] != keyPerm.Length - 1)
            return;
        removed.Add(qk);
        removed.Add(transpose);
        var attributes = new List<AttributeProto> { Float("scale", scale.Value), Ints("key_perm", keyPerm) };
        string value = n.Inputs[1];
        foreach (var (name, attribute) in new[] { ("q", "query_perm"), ("v", "value_perm") })
        {
            string operand = name == "q" ? query : value;
            if (Only(operand, "Transpose") is int layout && Perm(layout) is { } p && p.Length == keyPerm.Length && p[^1] == p.Length - 1)
            {
                removed.Add(layout);
                attributes.Add(Ints(attribute, p));
                if (name == "q")
                    query = Node(layout).Inputs[0];
                else
                    value = Node(layout).Inputs[0];
            }
        }
        var inputs = new List<string> { query, Node(transpose).Inputs[0], value };
        string[] names = ["query", "key", "value"];
        for (int o = 0; o < 3; o++)
            if (Heads(inputs[o], names[o]) is var (source, extra, nodes))
            {
                inputs[o] = source;
                attributes.AddRange(extra);
                removed.AddRange(nodes);
            }
        if (condition is not null)
            inputs.Add(condition);
        Replace(root, "GpuNet.Attention", inputs, removed, attributes.ToArray());
    }

    /// <summary>
    /// An attention operand that is Reshape(Slice(x)) or Reshape(x) with a constant shape (allowzero 0) and a constant slice
    /// of one axis with step 1 — nn.MultiheadAttention's export cuts Q, K and V out of one projection [N, B, 3·E] and splits
    /// each into heads — as x with the attributes <c>{name}_slice</c> [axis, start, end] and <c>{name}_shape</c> (Reshape's
    /// shape input): the op reads the slice and the split as views of x, where each Slice copied its columns out.
    /// </summary>
    private (string Input, List<AttributeProto> Attributes, List<int> Nodes)? Heads(string operand, string name)
    {
        if (Only(operand, "Reshape") is not int reshape)
            return null;
        var r = Node(reshape);
        if (r.Inputs.Count != 2 || !_constants.TryGetValue(r.Inputs[1], out var shape) || shape.IsFloat
            || (r.Attributes.TryGetValue("allowzero", out var allowZero) && allowZero.I != 0))
            return null;
        var attributes = new List<AttributeProto> { Ints(name + "_shape", shape.Ints) };
        var nodes = new List<int> { reshape };
        string input = r.Inputs[0];
        if (Only(input, "Slice") is int slice && SliceWindow(Node(slice)) is { } window)
        {
            attributes.Add(Ints(name + "_slice", window));
            nodes.Add(slice);
            input = Node(slice).Inputs[0];
        }
        return (input, attributes, nodes);
    }

    /// <summary>A Slice of one axis with step 1 by constants (inputs from opset 10, attributes before): [axis, start, end].</summary>
    private long[]? SliceWindow(NodeProto s)
    {
        bool Given(int index, string attribute) => _opset < 10 ? s.Attributes.ContainsKey(attribute) : index < s.Inputs.Count && s.Inputs[index].Length > 0;
        long[]? Constant(int index, string attribute) => _opset < 10
            ? s.Attributes.TryGetValue(attribute, out var a) ? a.Ints.ToArray() : null
            : Given(index, attribute) && _constants.TryGetValue(s.Inputs[index], out var t) && !t.IsFloat ? t.Ints : null;
        var (starts, ends, axes, steps) = (Constant(1, "starts"), Constant(2, "ends"), Constant(3, "axes"), _opset < 10 ? null : Constant(4, "steps"));
        if (starts is not { Length: 1 } || ends is not { Length: 1 } || (Given(3, "axes") && axes is not { Length: 1 })
            || (_opset >= 10 && Given(4, "steps") && steps is not [1]))
            return null;
        return [axes?[0] ?? 0, starts[0], ends[0]];
    }

    /// <summary>
    /// Transpose(GpuNet.Attention(…)) that puts the heads back beside each other — [B·H, N, d] → [N, B·H, d] (perm 1, 0, 2;
    /// nn.MultiheadAttention's export, one batch) or [B, H, N, d] → [B, N, H, d] (0, 2, 1, 3) — → the attention writing that
    /// layout itself (output_perm): the kernel stores each head's rows at their place in [B, N, H, d], where the transpose
    /// copied the output once more.
    /// </summary>
    private void AttentionOutputLayout(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Transpose" || Only(n.Inputs[0], "GpuNet.Attention") is not int k)
            return;
        var a = Node(k);
        if (a.Attributes.ContainsKey("output_perm") || !a.Attributes.TryGetValue("key_perm", out var keyPerm) || Perm(root) is not { } p)
            return;
        long[] wanted = keyPerm.Ints.Count == 3 ? [1, 0, 2] : [0, 2, 1, 3];
        if (!p.AsSpan().SequenceEqual(wanted))
            return;
        var moved = Rebuilt(a, a.Name, a.OpType, a.Inputs, n.Outputs[0], 0);
        moved.Attributes["output_perm"] = Ints("output_perm", p);
        _plan[root] = (moved, _plan[k].Index, _plan[k].Spec);
        _removed[k] = true;
    }

    /// <summary>A value that is Div(x, c) or Mul(x, c) of a constant scalar c (and used only there): c's factor, x, the node.</summary>
    private (float Scale, string Input, int Node)? Scaled(string value)
    {
        if (Only(value, "Div") is int div && ScalarOf(Node(div).Inputs[1]) is float divisor)
            return (1f / divisor, Node(div).Inputs[0], div);
        if (Only(value, "Mul") is int mul && ScalarOf(Node(mul).Inputs[1]) is float factor)
            return (factor, Node(mul).Inputs[0], mul);
        return null;
    }

    /// <summary>A Transpose node's permutation (null when it has none: the reversal, which no attention layout uses).</summary>
    private long[]? Perm(int transpose) => Node(transpose).Attributes.TryGetValue("perm", out var p) ? p.Ints.ToArray() : null;

    /// <summary>Add(MatMul(x, W), b) with b a constant vector of W's width → GpuNet.Linear(x, W, b).</summary>
    private void LinearBias(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Add" || n.Inputs.Count != 2)
            return;
        foreach (var product in n.Inputs)
        {
            string? bias = Other(n, product);
            if (bias is null || !_constants.TryGetValue(bias, out var b) || !b.IsFloat || b.Rank != 1 || Only(product, "MatMul") is not int mm)
                continue;
            string w = Node(mm).Inputs[1];
            if (!_constants.TryGetValue(w, out var wt) || wt.Rank != 2 || wt.Dims[1] != b.Dims[0])
                continue;
            Replace(root, "GpuNet.Linear", new[] { Node(mm).Inputs[0], w, bias }, new[] { mm });
            return;
        }
    }

    /// <summary>Relu or GELU of a Gemm or fused Linear output used nowhere else → the matmul's activation epilogue.</summary>
    private void ActivationEpilogue(int root)
    {
        var n = Node(root);
        long activation = n.OpType switch
        {
            "Relu" => (long)FusedActivation.Relu,
            "GpuNet.Gelu" => (long)FusedActivation.Gelu,
            "Clip" when IsRelu6(n) => (long)FusedActivation.Relu6,
            _ => 0,
        };
        if (_removed[root] || activation == 0)
            return;
        // The convolution takes ReLU and ReLU6 here: its GELU epilogue is exact too, but no exporter writes Conv → erf-GELU.
        int? producer = Only(n.Inputs[0], "Gemm") ?? Only(n.Inputs[0], "GpuNet.Linear")
            ?? (activation != (long)FusedActivation.Gelu ? Only(n.Inputs[0], "Conv") : null);
        if (producer is not int k || Node(k).Attributes.ContainsKey("gpunet_activation"))
            return;
        MoveWithActivation(k, root, Node(k).Inputs, activation);
    }

    /// <summary>Clip to [0, 6] (MobileNet's ReLU6): bounds as constant inputs (opset 11+) or attributes (before).</summary>
    private bool IsRelu6(NodeProto n)
    {
        if (_opset < 11)
            return n.Attributes.TryGetValue("min", out var lo) && lo.F == 0 && n.Attributes.TryGetValue("max", out var hi) && hi.F == 6;
        return n.Inputs.Count == 3 && IsScalar(n.Inputs[1], 0, 0) && IsScalar(n.Inputs[2], 6, 0);
    }

    /// <summary>Puts producer <paramref name="k"/> (with <paramref name="inputs"/>) at <paramref name="root"/>'s place, writing
    /// root's output through the activation epilogue; the producer's old place is dropped.</summary>
    private void MoveWithActivation(int k, int root, IEnumerable<string> inputs, long activation)
    {
        var fused = Node(k);
        var node = Rebuilt(fused, fused.Name, fused.OpType, inputs, Node(root).Outputs[0], activation);
        node.Domain = fused.Domain;
        _plan[root] = (node, _plan[k].Index, _plan[k].Spec);
        _removed[k] = true;
    }

    /// <summary>A new node <paramref name="opType"/> with <paramref name="from"/>'s attributes, the given inputs and one output,
    /// and the epilogue activation when not 0.</summary>
    private static NodeProto Rebuilt(NodeProto from, string name, string opType, IEnumerable<string> inputs, string output, long activation)
    {
        var node = new NodeProto { Name = name, OpType = opType };
        node.Inputs.AddRange(inputs);
        node.Outputs.Add(output);
        foreach (var (key, a) in from.Attributes)
            node.Attributes[key] = a;
        if (activation != 0)
            node.Attributes["gpunet_activation"] = Int("gpunet_activation", activation);
        return node;
    }

    /// <summary>
    /// Add(z, r) (either order) with z the output of a Conv without an epilogue activation, used by that Add only → one
    /// <c>GpuNet.ConvResidual</c> node computing Conv + r in place; and when the sum feeds only a Relu or a Clip(0, 6), that
    /// activation too. A ResNet block's tail (conv2 → Add → Relu) becomes one node.
    /// </summary>
    private void ResidualEpilogue(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Add" || n.Inputs.Count != 2 || n.Inputs[0] == n.Inputs[1])
            return;
        foreach (var z in n.Inputs)
        {
            if (Only(z, "Conv") is not int conv || Node(conv).Attributes.ContainsKey("gpunet_activation"))
                continue;
            string residual = Other(n, z)!;
            var convNode = Node(conv);
            var inputs = new[] { convNode.Inputs[0], convNode.Inputs[1], convNode.Inputs.Count > 2 ? convNode.Inputs[2] : "", residual };
            // The sum's only reader a ReLU or ReLU6: it rides along, and its output becomes the fused node's.
            int target = root;
            long activation = 0;
            if (_uses.GetValueOrDefault(n.Outputs[0]) == 1 && !_outputs.Contains(n.Outputs[0]))
            {
                int? reader = Enumerable.Range(0, _plan.Count).Where(k => !_removed[k] && Node(k).Inputs.Contains(n.Outputs[0])).Cast<int?>().FirstOrDefault();
                if (reader is int k && Node(k).Inputs.Count >= 1 && Node(k).Inputs[0] == n.Outputs[0])
                {
                    if (Node(k).OpType == "Relu")
                        (target, activation) = (k, (long)FusedActivation.Relu);
                    else if (Node(k).OpType == "Clip" && IsRelu6(Node(k)))
                        (target, activation) = (k, (long)FusedActivation.Relu6);
                }
            }
            var fused = Rebuilt(convNode, $"Conv+Add ({convNode.Name})", "GpuNet.ConvResidual", inputs, Node(target).Outputs[0], activation);
            // The fused node runs where the last of the nodes it replaces ran, when the residual exists too.
            _plan[target] = (fused, _plan[target].Index, FusedOperators.All["GpuNet.ConvResidual"]);
            _removed[conv] = true;
            if (target != root)
                _removed[root] = true;
            return;
        }
    }

    /// <summary>
    /// Conv(z) depthwise (group = its channels, one output channel each, constant 2-D weights) with z the output of a 1×1
    /// Conv used by it only (one group, strides and dilations 1, no padding, constant weights) → one
    /// <c>GpuNet.ExpandDepthwise</c> node: an inverted residual block's expansion and depthwise convolution, whose expanded
    /// tensor (the block's largest) is then never written.
    /// </summary>
    private void ExpandDepthwise(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Conv" || n.Inputs.Count < 2 || Only(n.Inputs[0], "Conv") is not int expand)
            return;
        var e = Node(expand);
        if (!_constants.TryGetValue(n.Inputs[1], out var w2) || !_constants.TryGetValue(e.Inputs[1], out var w1) || w1.Rank != 4 || w2.Rank != 4)
            return;
        bool depthwise = w2.Dims[1] == 1 && Attribute(n, "group", 1) == w2.Dims[0] && w2.Dims[0] == w1.Dims[0];
        if (!IsPointwise(e, w1) || !depthwise)
            return;
        var inputs = new[] { e.Inputs[0], e.Inputs[1], e.Inputs.Count > 2 ? e.Inputs[2] : "", n.Inputs[1], n.Inputs.Count > 2 ? n.Inputs[2] : "" };
        var fused = Rebuilt(n, $"Conv+Conv ({e.Name}, {n.Name})", "GpuNet.ExpandDepthwise", inputs, n.Outputs[0], 0);
        if (e.Attributes.TryGetValue("gpunet_activation", out var activation))
            fused.Attributes["gpunet_expand_activation"] = Int("gpunet_expand_activation", activation.I);
        _plan[root] = (fused, _plan[root].Index, FusedOperators.All["GpuNet.ExpandDepthwise"]);
        _removed[expand] = true;
    }

    private static long Attribute(NodeProto node, string name, long fallback) => node.Attributes.TryGetValue(name, out var a) ? a.I : fallback;

    /// <summary>Whether <paramref name="conv"/> with constant weights <paramref name="w"/> (rank 3 or 4) is a 1×1 convolution
    /// of one group at stride and dilation 1 with no padding: a plain matrix product over the channels at every pixel.</summary>
    private static bool IsPointwise(NodeProto conv, OnnxTensor w)
    {
        bool AllOnes(string name) => !conv.Attributes.TryGetValue(name, out var a) || a.Ints.All(v => v == 1);
        return w.Rank is 3 or 4 && w.DimsArray.Skip(2).All(d => d == 1) && Attribute(conv, "group", 1) == 1 && AllOnes("strides") && AllOnes("dilations")
            && (!conv.Attributes.TryGetValue("pads", out var pads) || pads.Ints.All(v => v == 0))
            && (!conv.Attributes.TryGetValue("auto_pad", out var autoPad) || System.Text.Encoding.UTF8.GetString(autoPad.S.Span) is "NOTSET" or "VALID" or "");
    }

    /// <summary>
    /// A 1×1 Conv (one group, strides and dilations 1, no padding, constant rank-4 weights), or a
    /// <c>GpuNet.ConvResidual</c> of one, whose input is a <c>GpuNet.ExpandDepthwise</c>'s output read by it alone → one
    /// <c>GpuNet.InvertedResidual</c> node: MobileNetV2's block whole (expansion, depthwise convolution, projection, and the
    /// residual Add), which on the fast CPU never writes the depthwise output either. Inputs: the pair's five, then the
    /// projection's weights, bias and residual ("" where absent); the depthwise activation moves to
    /// <c>gpunet_depthwise_activation</c>, the projection's becomes the node's <c>gpunet_activation</c>.
    /// </summary>
    private void InvertedResidual(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType is not ("Conv" or "GpuNet.ConvResidual") || n.Inputs.Count < 2 || Only(n.Inputs[0], "GpuNet.ExpandDepthwise") is not int pair)
            return;
        if (!_constants.TryGetValue(n.Inputs[1], out var w3) || w3.Rank != 4 || !IsPointwise(n, w3))
            return;
        var p = Node(pair);
        bool residual = n.OpType == "GpuNet.ConvResidual";
        var inputs = p.Inputs.Concat(new[] { n.Inputs[1], n.Inputs.Count > 2 ? n.Inputs[2] : "", residual ? n.Inputs[3] : "" });
        const string pairPrefix = "Conv+Conv (";
        string blocks = p.Name.StartsWith(pairPrefix, StringComparison.Ordinal) ? p.Name[pairPrefix.Length..^1] : p.Name;
        var fused = Rebuilt(p, $"Conv+Conv+Conv{(residual ? "+Add" : "")} ({blocks}, {n.Name})", "GpuNet.InvertedResidual", inputs, n.Outputs[0], 0);
        fused.Attributes.Remove("gpunet_activation");
        if (p.Attributes.TryGetValue("gpunet_activation", out var depthwiseActivation))
            fused.Attributes["gpunet_depthwise_activation"] = Int("gpunet_depthwise_activation", depthwiseActivation.I);
        if (n.Attributes.TryGetValue("gpunet_activation", out var activation))
            fused.Attributes["gpunet_activation"] = Int("gpunet_activation", activation.I);
        _plan[root] = (fused, _plan[root].Index, FusedOperators.All["GpuNet.InvertedResidual"]);
        _removed[pair] = true;
    }

    /// <summary>
    /// Mul(x, Sigmoid(Conv₂(Conv₁(GlobalAveragePool(x))))) (either order) with both convolutions 1×1 (one group, stride and
    /// dilation 1, no padding) over constant weights [R, C, 1, 1] and [C, R, 1, 1] (or 1-D), the second without an activation
    /// (the first may carry one), each intermediate read by the next node only → one <c>GpuNet.SqueezeExcite</c> node
    /// (inputs X, W₁, B₁, W₂, B₂; the first convolution's activation as <c>gpunet_squeeze_activation</c>): EfficientNet's
    /// squeeze-and-excitation, five nodes a block.
    /// </summary>
    private void SqueezeExcite(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Mul" || n.Inputs.Count != 2 || n.Inputs[0] == n.Inputs[1])
            return;
        foreach (var gateName in n.Inputs)
        {
            string x = Other(n, gateName)!;
            if (Only(gateName, "Sigmoid") is not int sigmoid || Only(Node(sigmoid).Inputs[0], "Conv") is not int expand
                || Node(expand).Attributes.ContainsKey("gpunet_activation") || Only(Node(expand).Inputs[0], "Conv") is not int reduce
                || Only(Node(reduce).Inputs[0], "GlobalAveragePool") is not int pool || Node(pool).Inputs[0] != x)
                continue;
            var (e, r) = (Node(expand), Node(reduce));
            if (e.Inputs.Count < 2 || r.Inputs.Count < 2 || !_constants.TryGetValue(e.Inputs[1], out var w2) || !_constants.TryGetValue(r.Inputs[1], out var w1)
                || w1.Rank != w2.Rank || !IsPointwise(r, w1) || !IsPointwise(e, w2) || w1.Dims[0] != w2.Dims[1] || w1.Dims[1] != w2.Dims[0])
                continue;
            string Bias(NodeProto conv) => conv.Inputs.Count > 2 ? conv.Inputs[2] : "";
            var fused = new NodeProto { Name = n.Name.Length > 0 ? $"SqueezeExcite ({n.Name})" : "", OpType = "GpuNet.SqueezeExcite" };
            fused.Inputs.AddRange(new[] { x, r.Inputs[1], Bias(r), e.Inputs[1], Bias(e) });
            fused.Outputs.Add(n.Outputs[0]);
            if (r.Attributes.TryGetValue("gpunet_activation", out var activation))
                fused.Attributes["gpunet_squeeze_activation"] = Int("gpunet_squeeze_activation", activation.I);
            _plan[root] = (fused, _plan[root].Index, FusedOperators.All["GpuNet.SqueezeExcite"]);
            foreach (int k in new[] { pool, reduce, expand, sigmoid })
                _removed[k] = true;
            return;
        }
    }

    /// <summary>Mul(z, Sigmoid(z)) (either order) with z a Conv's output used by those two nodes only → the Conv with the SiLU
    /// epilogue (efficientnet's activation, exported unfused).</summary>
    private void SiluEpilogue(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "Mul" || n.Inputs.Count != 2)
            return;
        foreach (var gate in n.Inputs)
        {
            string? z = Other(n, gate);
            if (z is null || z == gate || Only(gate, "Sigmoid") is not int sigmoid || Node(sigmoid).Inputs[0] != z)
                continue;
            if (!_producer.TryGetValue(z, out int conv) || _removed[conv] || Node(conv).OpType != "Conv" || Node(conv).Attributes.ContainsKey("gpunet_activation")
                || _uses.GetValueOrDefault(z) != 2 || _outputs.Contains(z))
                continue;
            _removed[sigmoid] = true;
            MoveWithActivation(conv, root, Node(conv).Inputs, (long)FusedActivation.Silu);
            return;
        }
    }

    /// <summary>
    /// An inference BatchNormalization (constant scale, shift, mean and variance) of a Conv's output that nothing else reads,
    /// the Conv's weights and bias constants → one Conv with W′ = W·s and b′ = (b − μ)·s + β, s = γ / √(σ² + ε) per output
    /// channel, computed in double and rounded once. The BN's node and the batch-statistics pass over the activations go
    /// away; the new constants replace the old ones where nothing else reads those.
    /// </summary>
    private void BatchNormIntoConv(int root)
    {
        var n = Node(root);
        if (_removed[root] || n.OpType != "BatchNormalization" || n.Inputs.Count != 5 || n.Outputs.Count(o => o.Length > 0) != 1)
            return;
        if (n.Attributes.TryGetValue("training_mode", out var tm) && tm.I != 0 || Only(n.Inputs[0], "Conv") is not int conv)
            return;
        var c = Node(conv);
        var stats = n.Inputs.Skip(1).Select(name => _constants.TryGetValue(name, out var t) && t.IsFloat ? t : null).ToArray();
        if (stats.Any(t => t is null) || c.Inputs.Count < 2 || !_constants.TryGetValue(c.Inputs[1], out var w) || !w.IsFloat)
            return;
        OnnxTensor? b = c.Inputs.Count > 2 && c.Inputs[2].Length > 0 ? _constants.GetValueOrDefault(c.Inputs[2]) : null;
        if (c.Inputs.Count > 2 && c.Inputs[2].Length > 0 && (b is null || !b.IsFloat))
            return;
        int channels = w.Dims[0];
        if (stats.Any(t => t!.Length != channels) || b is not null && b.Length != channels || channels == 0)
            return;
        float[] gamma = stats[0]!.Floats, beta = stats[1]!.Floats, mean = stats[2]!.Floats, variance = stats[3]!.Floats, weights = w.Floats;
        double epsilon = n.Attributes.TryGetValue("epsilon", out var e) ? e.F : 1e-5;
        int perChannel = weights.Length / channels;
        var folded = new float[weights.Length];
        var bias = new float[channels];
        for (int k = 0; k < channels; k++)
        {
            double s = gamma[k] / Math.Sqrt(variance[k] + epsilon);
            for (int i = 0; i < perChannel; i++)
                folded[k * perChannel + i] = (float)(weights[k * perChannel + i] * s);
            bias[k] = (float)(((b?.Floats[k] ?? 0f) - mean[k]) * s + beta[k]);
        }
        string weightName = $"{c.Inputs[1]}⊗bn({n.Outputs[0]})", biasName = $"bias⊗bn({n.Outputs[0]})";
        _constants[weightName] = OnnxTensor.HostFloats(folded, w.Shape);
        _constants[biasName] = OnnxTensor.HostFloats(bias, new[] { channels });
        foreach (var old in c.Inputs.Skip(1).Concat(n.Inputs.Skip(1)).Where(x => x.Length > 0).Distinct())
            if (_uses.GetValueOrDefault(old) == 1 && !_outputs.Contains(old) && _constants.Remove(old, out var unused))
                unused.Dispose();
        MoveWithActivation(conv, root, new[] { c.Inputs[0], weightName, biasName }, 0);
    }
}

namespace GpuNet.Onnx.Operators;

/// <summary>
/// The ops <see cref="Fusion"/> rewrites subgraphs into (names start with <c>GpuNet.</c>; a model file never holds them).
/// Each computes exactly what the subgraph it replaced computed, on one fused kernel.
/// </summary>
internal static class FusedOperators
{
    public static IReadOnlyDictionary<string, OpSpec> All { get; } = new OpSpec[]
    {
        new("GpuNet.Gelu", (c, i) => new[] { Values.Float(Ops.GeluErf(i[0]!.On(c.Device)), i[0]!.Shape) }),
        new("GpuNet.Linear", Linear),
        new("GpuNet.LayerNorm", LayerNorm),
        new("GpuNet.Attention", Attention),
        new("GpuNet.ConvResidual", ConvResidual),
        new("GpuNet.ExpandDepthwise", ExpandDepthwise),
        new("GpuNet.InvertedResidual", InvertedResidual),
        new("GpuNet.SqueezeExcite", SqueezeExcite),
    }.ToDictionary(s => s.Name);

    /// <summary>
    /// Conv(Conv(X, W₁, B₁), W₂, B₂) with the first a 1×1 convolution (one group, stride 1, no padding) that only the second,
    /// a depthwise one, reads (inputs X, W₁, B₁, W₂, B₂; the node has the depthwise convolution's attributes, its activation,
    /// and the expansion's as <c>gpunet_expand_activation</c>): <see cref="Ops.Conv2dExpandDepthwise"/>, which on the fast CPU
    /// never writes the expanded tensor.
    /// </summary>
    private static OnnxTensor[] ExpandDepthwise(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!.On(c.Device);
        var w2 = i[3]!.On(c.Device);
        if (x.Rank != 4 || w2.Rank != 4)
            throw c.Shape("X", "a 2-D convolution's input [N, C, H, W] and kernel", $"{GpuNetException.FormatShape(i[0]!.Dims)}, {GpuNetException.FormatShape(i[3]!.Dims)}");
        var options = LinearOperators.ConvOptions(c, x, w2, Activation(c));
        var expandActivation = (FusedActivation)c.Int("gpunet_expand_activation", 0);
        var y = Ops.Conv2dExpandDepthwise(x, i[1]!.Conv2dWeights(c.Device, 1), i[2]?.On(c.Device), expandActivation,
            i[3]!.Conv2dWeights(c.Device, options.Groups), i[4]?.On(c.Device), options);
        return new[] { Values.Float(y, y.ShapeArray()) };
    }

    /// <summary>
    /// An inverted residual block: the inputs of <see cref="ExpandDepthwise"/> (X, W₁, B₁, W₂, B₂), then the 1×1 projection's
    /// W₃, B₃ and a residual R (inputs 5–7; B₃ and R optional), the depthwise convolution's attributes with its activation as
    /// <c>gpunet_depthwise_activation</c>, the expansion's as <c>gpunet_expand_activation</c> and the one after the projection
    /// and R as <c>gpunet_activation</c>: <see cref="Ops.Conv2dExpandDepthwiseProject"/>. A residual of another shape than
    /// the output is added with broadcasting after.
    /// </summary>
    private static OnnxTensor[] InvertedResidual(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!.On(c.Device);
        var w2 = i[3]!.On(c.Device);
        if (x.Rank != 4 || w2.Rank != 4)
            throw c.Shape("X", "a 2-D convolution's input [N, C, H, W] and kernel", $"{GpuNetException.FormatShape(i[0]!.Dims)}, {GpuNetException.FormatShape(i[3]!.Dims)}");
        var options = LinearOperators.ConvOptions(c, x, w2, (FusedActivation)c.Int("gpunet_depthwise_activation", 0));
        var expandActivation = (FusedActivation)c.Int("gpunet_expand_activation", 0);
        var activation = Activation(c);
        var r = i.Length > 7 ? i[7]?.On(c.Device) : null;
        var g = Conv2dGeometry.Create(c.Label, new[] { x.Size(0), w2.Size(0), x.Size(2), x.Size(3) }, w2.ShapeArray(), options);
        bool inStores = r is null || r.Rank == 4 && r.Size(0) == g.N && r.Size(1) == i[5]!.Dims[0] && r.Size(2) == g.OH && r.Size(3) == g.OW;
        var y = Ops.Conv2dExpandDepthwiseProject(x, i[1]!.Conv2dWeights(c.Device, 1), i[2]?.On(c.Device), expandActivation,
            i[3]!.Conv2dWeights(c.Device, options.Groups), i[4]?.On(c.Device), options, i[5]!.Conv2dWeights(c.Device, 1), i[6]?.On(c.Device),
            inStores ? activation : FusedActivation.None, inStores ? r : null);
        return new[] { inStores ? Values.Float(y, y.ShapeArray()) : AddActivated(c, y, y.ShapeArray(), r!, activation) };
    }

    /// <summary>
    /// X · Sigmoid(Conv(act(Conv(GlobalAveragePool(X), W₁, B₁)), W₂, B₂)) with 1×1 convolutions (inputs X, W₁, B₁, W₂, B₂; the
    /// first convolution's activation as <c>gpunet_squeeze_activation</c>): <see cref="Ops.SqueezeExcite"/>. A 1-D input
    /// [N, C, L] runs as [N, C, 1, L], as 1-D convolutions do.
    /// </summary>
    private static OnnxTensor[] SqueezeExcite(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!.On(c.Device);
        if (x.Rank is not (3 or 4))
            throw c.Shape("X", "a 1-D or 2-D convolution's input [N, C, L] or [N, C, H, W]", GpuNetException.FormatShape(i[0]!.Dims));
        using var line = x.Rank == 3 ? x.Reshape(x.Size(0), x.Size(1), 1, x.Size(2)) : null;
        var y = Ops.SqueezeExcite(line ?? x, i[1]!.Conv2dWeights(c.Device, 1), i[2]?.On(c.Device), (FusedActivation)c.Int("gpunet_squeeze_activation", 0),
            i[3]!.Conv2dWeights(c.Device, 1), i[4]?.On(c.Device));
        return new[] { Values.Float(y, i[0]!.Shape) };
    }

    /// <summary>
    /// activation(Conv(X, W, B) + R): the convolution adds the residual R (input 3) and applies the activation as it stores
    /// its output (<see cref="Ops.Conv2d(Tensor, PackedConv2dWeight, Tensor?, Conv2dOptions?, Tensor?)"/>), where the graph had
    /// an Add node and an activation node each writing a new tensor (resnet's blocks end so). A residual of another shape
    /// than the convolution's output is added with broadcasting into a new tensor.
    /// </summary>
    private static OnnxTensor[] ConvResidual(OpContext c, OnnxTensor?[] i)
    {
        var activation = Activation(c);
        if (activation is not (FusedActivation.None or FusedActivation.Relu or FusedActivation.Relu6))
            throw new OnnxRunException($"{c.Label}: no activation {activation} after a residual Add");
        var r = i[3]!.On(c.Device);
        var (conv, dims, added) = LinearOperators.ConvCore(c, i, activation, r);
        if (added)
            return new[] { Values.Float(conv, dims) };
        return new[] { AddActivated(c, conv, dims, r, activation) };
    }

    /// <summary>activation(<paramref name="y"/> + <paramref name="r"/>) with broadcasting, for a residual the fused stores do
    /// not take (another shape than the output), as ONNX shape <paramref name="dims"/>; disposes <paramref name="y"/>. The
    /// fusions put only ReLU and ReLU6 after a residual Add.</summary>
    private static OnnxTensor AddActivated(OpContext c, Tensor y, int[] dims, Tensor r, FusedActivation activation)
    {
        if (activation is not (FusedActivation.None or FusedActivation.Relu or FusedActivation.Relu6))
            throw new OnnxRunException($"{c.Label}: no activation {activation} after a residual Add");
        Tensor sum;
        using (var shaped = y.Reshape(dims))
            sum = Ops.Add(shaped, r);
        y.Dispose();
        if (activation == FusedActivation.Relu)
            Ops.Relu(sum, sum);
        else if (activation == FusedActivation.Relu6)
            Ops.Relu6(sum, sum);
        return Values.Float(sum, dims);
    }

    /// <summary>The activation a fusion moved into a matmul's epilogue.</summary>
    public static FusedActivation Activation(OpContext c) => (FusedActivation)c.Int("gpunet_activation", 0);

    /// <summary>x·W + b (x [..., K], W [K, N] constant, b [N]) with the bias (and activation) in the matmul epilogue.</summary>
    private static OnnxTensor[] Linear(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        var w = i[1]!.On(c.Device);
        if (x.Rank < 1 || x.Dims[^1] != w.Size(0))
            throw c.Shape("x", $"[..., {w.Size(0)}]", GpuNetException.FormatShape(x.Dims));
        var rows = Values.AsShape(x.On(c.Device), -1, w.Size(0));
        var y = Ops.MatMul(rows, w, bias: i[2]!.On(c.Device), activation: Activation(c));
        var dims = x.Shape;
        dims[^1] = w.Size(1);
        return new[] { Values.Float(y, dims) };
    }

    /// <summary>LayerNorm over the last axis with γ and β broadcast to it.</summary>
    private static OnnxTensor[] LayerNorm(OpContext c, OnnxTensor?[] i)
    {
        var x = i[0]!;
        int cols = x.Dims[^1];
        Tensor Vector(OnnxTensor t) => t.Length == cols ? Values.AsShape(t.On(c.Device), cols) : Ops.Add(Ops.Full(c.Device, 0f, cols), t.On(c.Device)).Reshape(cols);
        var r = Ops.LayerNorm(Values.AsShape(x.On(c.Device), -1, cols), Vector(i[1]!), Vector(i[2]!), c.Float("epsilon", 1e-5f));
        return new[] { Values.Float(r.Output, x.Shape) };
    }

    /// <summary>The attributes of Q, K and V that <see cref="Attention"/> reads (names the fusion writes).</summary>
    private static readonly (string Slice, string Shape, string Perm)[] OperandAttributes =
        [("query_slice", "query_shape", "query_perm"), ("key_slice", "key_shape", "key_perm"), ("value_slice", "value_shape", "value_perm")];

    /// <summary>
    /// Fused attention of Q [B, H, Nq, d], K, V [B, H, Nk, d]. A mask condition (true = masked) that is exactly the causal
    /// pattern for every batch and head becomes the kernel's causal flag; any other becomes an additive −inf mask.
    /// Shapes the fused kernel does not take (other ranks, d &gt; 128) run the unfused composition.
    /// </summary>
    private static OnnxTensor[] Attention(OpContext c, OnnxTensor?[] i)
    {
        // What the fusion absorbed before the operands — a slice of one axis, a reshape, a transpose — as strided views the
        // kernel reads directly (a reshape the slice's strides cannot take copies the slice first); rank 3 is [B·H, N, d].
        int queryRank = 0;
        Tensor Operand(int index)
        {
            var (sliceName, shapeName, permName) = OperandAttributes[index];
            var t = i[index]!.On(c.Device);
            if (c.Ints(sliceName) is [var axisGiven, var start, var end])
            {
                int axis = Values.Axis(c, axisGiven, t.Rank, sliceName);
                var (first, count) = ShapeOperators.SliceRange(start, end, 1, t.Size(axis));
                t = t.Slice(axis, first, count);
            }
            if (c.Ints(shapeName) is { } shape)
            {
                var dims = ShapeOperators.ReshapeDims(c, shape, false, t.ShapeArray(), t.Length);
                if (!t.IsContiguous && ShapeUtil.ViewStrides(t.ShapeArray(), t.Strides.ToArray(), dims) is null)
                    t = t.Contiguous();
                t = t.Reshape(dims);
            }
            if (c.Ints(permName) is { } p && p.Length == t.Rank)
                t = t.Permute(Array.ConvertAll(p, a => (int)a));
            if (index == 0)
                queryRank = t.Rank;
            return t.Rank == 3 ? t.Expand([1, .. t.ShapeArray()]) : t;
        }
        var (q, k, v) = (Operand(0), Operand(1), Operand(2));
        bool rank3 = queryRank == 3;
        float scale = c.Float("scale", 1f);
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw c.Shape("Q, K, V", "[B, H, N, d] or [B·H, N, d] tensors", $"{GpuNetException.FormatShape(q.ShapeArray())}, {GpuNetException.FormatShape(k.ShapeArray())}, {GpuNetException.FormatShape(v.ShapeArray())}");
        int nq = q.Size(2), nk = k.Size(2);
        bool causal = false;
        Tensor? mask = null;
        if (i.Length > 3 && i[3] is { } cond)
        {
            var dims = Values.Broadcast(c, cond.Shape, new[] { 1, 1, nq, nk });
            var masked = cond.IsFloat ? Array.ConvertAll(cond.Floats, f => f != 0 ? 1L : 0L) : cond.Ints;
            var map = Values.BroadcastMap(cond.Dims, dims);
            causal = Enumerable.Range(0, map.Length).All(e =>
            {
                int col = e % nk, row = e / nk % nq;
                return (masked[map[e]] != 0) == (col > row + nk - nq);
            });
            if (!causal)
            {
                var additive = new float[map.Length];
                for (int e = 0; e < map.Length; e++)
                    additive[e] = masked[map[e]] != 0 ? float.NegativeInfinity : 0f;
                mask = Tensor.FromArray(c.Device, additive, dims);
            }
        }
        var layout = AttentionLayout.BHND;
        if (c.Has("output_perm"))
        {
            // The fused transpose after the attention (output_perm) asks for [B, N, H, d]: the kernels' BNHD layout, whose
            // operands are the same views read through the swapped axes.
            (q, k, v) = (q.Permute(0, 2, 1, 3), k.Permute(0, 2, 1, 3), v.Permute(0, 2, 1, 3));
            layout = AttentionLayout.BNHD;
        }
        var output = q.Size(3) <= 128
            ? Ops.Attention(q, k, v, scale, causal, mask: mask, layout: layout).Output
            : Ops.AttentionUnfused(q, k, v, scale, causal, mask: mask, layout: layout);
        return new[] { Values.Float(output, rank3 ? output.ShapeArray()[1..] : output.ShapeArray()) };
    }
}

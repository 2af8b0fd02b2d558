namespace GpuNet.Onnx.Operators;

/// <summary>
/// MatMul, Gemm, Conv and ConvTranspose on the matmul family and the convolution kernels. 1-D convolutions run as
/// 2-D ones over a height of 1; ConvTranspose of any stride, padding, dilation and group count is a convolution of the
/// stride-dilated input with the flipped, transposed kernel.
/// </summary>
internal static class LinearOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return new OpSpec("MatMul", MatMul);
        yield return new OpSpec("Gemm", Gemm);
        yield return new OpSpec("Conv", Conv, 1, c => SpatialCheck(c, "Conv"));
        yield return new OpSpec("ConvTranspose", ConvTranspose, 1, c => SpatialCheck(c, "ConvTranspose"));
        yield return new OpSpec("Einsum", Einsum, 12);
    }

    /// <summary>
    /// Einsum of one or two operands, lowered to permutes and one batched matmul: letters only one operand has (and the
    /// output lacks) are summed first; then batch letters (both operands and the output), contracted letters (both, not the
    /// output), and each side's free letters make [batch, left, K] · [batch, K, right]; the result is permuted to the
    /// output's order. "..." stands for the same leading dimensions in every term. Repeated letters in one term
    /// (diagonals) are refused.
    /// </summary>
    private static OnnxTensor[] Einsum(OpContext c, OnnxTensor?[] i)
    {
        var operands = i.Select(x => x!).ToArray();
        string equation = c.String("equation", "").Replace(" ", "");
        var sides = equation.Split("->");
        var terms = sides[0].Split(',');
        if (terms.Length != operands.Length || terms.Length is < 1 or > 2)
            throw c.Shape("equation", $"one or two terms matching the {operands.Length} inputs", equation);
        int ellipsis = 0;
        for (int k = 0; k < terms.Length; k++)
            if (terms[k].Contains("..."))
                ellipsis = Math.Max(ellipsis, operands[k].Rank - (terms[k].Length - 3));
        string Expand(string term) => term.Replace("...", new string(Enumerable.Range(0, ellipsis).Select(e => (char)('A' + e)).ToArray()));
        terms = terms.Select(Expand).ToArray();
        string output = sides.Length > 1 ? Expand(sides[1])
            : new string(Enumerable.Range(0, ellipsis).Select(e => (char)('A' + e)).Concat(terms.SelectMany(t => t).Where(ch => ch >= 'a' && terms.Sum(t => t.Count(x => x == ch)) == 1).OrderBy(ch => ch)).ToArray());
        var size = new Dictionary<char, int>();
        var tensors = new Tensor[terms.Length];
        for (int k = 0; k < terms.Length; k++)
        {
            if (terms[k].Length != operands[k].Rank || terms[k].Distinct().Count() != terms[k].Length)
                throw new OnnxRunException($"{c.Label}: term '{terms[k]}' of '{equation}' does not fit input {k} {GpuNetException.FormatShape(operands[k].Dims)} (or repeats a letter: diagonals are not supported)");
            for (int d = 0; d < terms[k].Length; d++)
                if (size.TryGetValue(terms[k][d], out int s) && s != operands[k].Dims[d])
                    throw c.Shape("inputs", $"'{terms[k][d]}' of one size", $"{s} and {operands[k].Dims[d]}");
                else
                    size[terms[k][d]] = operands[k].Dims[d];
            // Sum letters that appear in no other term and not in the output.
            var t = Values.Upload(c, operands[k]);
            string term = terms[k];
            for (int d = term.Length - 1; d >= 0; d--)
                if (!output.Contains(term[d]) && !terms.Where((_, j) => j != k).Any(o => o.Contains(term[d])))
                {
                    t = Ops.Sum(t, d);
                    term = term.Remove(d, 1);
                }
            (tensors[k], terms[k]) = (t, term);
        }
        Tensor Arrange(Tensor t, string term, string order) =>
            order.Length == 0 ? t.Contiguous().Reshape(1) : t.Permute(order.Select(ch => term.IndexOf(ch)).ToArray()).Contiguous();
        int Prod(IEnumerable<char> letters) => letters.Aggregate(1, (a, ch) => a * size[ch]);
        Tensor result;
        string resultOrder;
        if (terms.Length == 1)
        {
            result = tensors[0];
            resultOrder = terms[0];
        }
        else
        {
            string a = terms[0], b = terms[1];
            var batch = a.Where(ch => b.Contains(ch) && output.Contains(ch)).ToArray();
            var contract = a.Where(ch => b.Contains(ch) && !output.Contains(ch)).ToArray();
            var left = a.Where(ch => !b.Contains(ch)).ToArray();
            var right = b.Where(ch => !a.Contains(ch)).ToArray();
            var ta = Arrange(tensors[0], a, new string(batch.Concat(left).Concat(contract).ToArray())).Reshape(Prod(batch), Prod(left), Prod(contract));
            var tb = Arrange(tensors[1], b, new string(batch.Concat(contract).Concat(right).ToArray())).Reshape(Prod(batch), Prod(contract), Prod(right));
            resultOrder = new string(batch.Concat(left).Concat(right).ToArray());
            result = Ops.MatMul(ta, tb).Reshape(resultOrder.Select(ch => size[ch]).DefaultIfEmpty(1).ToArray());
        }
        var dims = output.Select(ch => size.TryGetValue(ch, out int s) ? s : throw c.Shape("equation", "output letters that appear in an input", equation)).ToArray();
        var arranged = resultOrder.Length == 0 ? result : Arrange(result, resultOrder, output);
        return new[] { Values.Float(arranged, dims) };
    }

    /// <summary>Convolutions of 1 or 2 spatial dimensions (when the attributes say how many).</summary>
    internal static string? SpatialCheck(OpContext c, string op) =>
        c.Ints("kernel_shape") is { Length: > 2 } k ? $"{op} with {k.Length} spatial dimensions is not supported (1-D and 2-D are)" : null;

    /// <summary>NumPy matmul: a 1-D operand gains and then loses a unit dimension; batch dimensions broadcast.</summary>
    private static OnnxTensor[] MatMul(OpContext c, OnnxTensor?[] i)
    {
        var (a, b) = (i[0]!, i[1]!);
        if (a.Rank == 0 || b.Rank == 0)
            throw c.Shape("inputs", "tensors of rank ≥ 1", $"{GpuNetException.FormatShape(a.Dims)} and {GpuNetException.FormatShape(b.Dims)}");
        var ta = Values.Upload(c, a);
        var tb = Values.Upload(c, b);
        if (a.Rank == 1) ta = ta.Reshape(1, a.Dims[0]);
        if (b.Rank == 1) tb = tb.Reshape(b.Dims[0], 1);
        if (ta.Size(-1) != tb.Size(-2))
            throw c.Shape("B", $"K = {ta.Size(-1)} rows to match A {GpuNetException.FormatShape(a.Dims)}", GpuNetException.FormatShape(b.Dims));
        var y = Ops.MatMul(ta, tb);
        var dims = y.ShapeArray().ToList();
        if (b.Rank == 1) dims.RemoveAt(dims.Count - 1);
        if (a.Rank == 1) dims.RemoveAt(dims.Count - (b.Rank == 1 ? 1 : 2));
        return new[] { Values.Float(y, dims.ToArray()) };
    }

    /// <summary>Y = alpha·op(A)·op(B) + beta·C; a C of one row with beta 1 rides the matmul's bias epilogue.</summary>
    private static OnnxTensor[] Gemm(OpContext c, OnnxTensor?[] i)
    {
        var (a, b) = (Values.Upload(c, i[0]!), Values.Upload(c, i[1]!));
        bool ta = c.Int("transA", 0) != 0, tb = c.Int("transB", 0) != 0;
        float alpha = c.Float("alpha", 1f), beta = c.Float("beta", 1f);
        if (a.Rank != 2 || b.Rank != 2)
            throw c.Shape("A, B", "matrices", $"{GpuNetException.FormatShape(i[0]!.Dims)} and {GpuNetException.FormatShape(i[1]!.Dims)}");
        int n = tb ? b.Size(0) : b.Size(1);
        // Constant weights used transposed (a Linear layer's export) are read from a transposed copy kept with them, for
        // products of more than one row (one row is a GEMV, which reads B along k anyway).
        if (tb && i[1]!.IsConstant && (ta ? a.Size(1) : a.Size(0)) > 1)
            (b, tb) = (i[1]!.TransposedMatrix(c.Device), false);
        var cIn = i.Length > 2 ? i[2] : null;
        if (cIn is not null && beta == 1f && cIn.Length == n && (cIn.Rank == 1 || cIn.Rank == 2 && cIn.Dims[0] == 1) && n > 1)
        {
            var withBias = Ops.MatMul(a, b, ta, tb, alpha, bias: Values.Upload(c, cIn).Reshape(n), activation: FusedOperators.Activation(c));
            return new[] { Values.Float(withBias, withBias.ShapeArray()) };
        }
        var y = Ops.MatMul(a, b, ta, tb, alpha);
        if (cIn is not null && beta != 0f)
            y = Ops.Add(y, beta == 1f ? Values.Upload(c, cIn) : Ops.Scale(Values.Upload(c, cIn), beta));
        y = FusedOperators.Activation(c) switch
        {
            FusedActivation.None => y,
            FusedActivation.Relu => Ops.Relu(y),
            FusedActivation.Gelu => Ops.GeluErf(y),
            FusedActivation.GeluTanh => Ops.GeluTanh(y),
            FusedActivation.Silu => Ops.Silu(y),
            FusedActivation.Relu6 => Ops.Relu6(y),
            var other => throw new OnnxRunException($"{c.Label}: no activation {other} for a fused Gemm"),
        };
        return new[] { Values.Float(y, y.ShapeArray()) };
    }

    /// <summary>
    /// The window geometry of a convolution or pooling node: strides and dilations (default 1), pads (begin values, then
    /// end values) from the attribute, or from auto_pad — SAME_UPPER/SAME_LOWER pad so the output is ⌈in/stride⌉ with the
    /// odd cell at the end/begin, VALID pads nothing.
    /// </summary>
    internal static (int[] Strides, int[] Dilations, int[] Pads) WindowGeometry(OpContext c, int spatial, int[] inDims, int[] kernel)
    {
        var strides = c.Ints("strides")?.Select(v => (int)v).ToArray() ?? Enumerable.Repeat(1, spatial).ToArray();
        var dilations = c.Ints("dilations")?.Select(v => (int)v).ToArray() ?? Enumerable.Repeat(1, spatial).ToArray();
        var pads = c.Ints("pads")?.Select(v => (int)v).ToArray() ?? new int[2 * spatial];
        if (strides.Length != spatial || dilations.Length != spatial || pads.Length != 2 * spatial)
            throw c.Shape("strides/dilations/pads", $"{spatial}, {spatial} and {2 * spatial} values", $"{strides.Length}, {dilations.Length}, {pads.Length}");
        string autoPad = c.String("auto_pad", "NOTSET");
        if (autoPad is "SAME_UPPER" or "SAME_LOWER")
            for (int d = 0; d < spatial; d++)
            {
                int outSize = (inDims[d] + strides[d] - 1) / strides[d];
                int total = Math.Max((outSize - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - inDims[d], 0);
                int small = total / 2, large = total - small;
                (pads[d], pads[d + spatial]) = autoPad == "SAME_UPPER" ? (small, large) : (large, small);
            }
        else if (autoPad == "VALID")
            pads = new int[2 * spatial];
        return (strides, dilations, pads);
    }

    /// <summary>A 1-D input [N, C, L] as [N, C, 1, L]; 2-D unchanged; more is refused.</summary>
    private static Tensor As2d(OpContext c, Tensor t, string what)
    {
        if (t.Rank == 3)
            return t.Reshape(t.Size(0), t.Size(1), 1, t.Size(2));
        if (t.Rank == 4)
            return t;
        throw new OnnxRunException($"{c.Label}: {what} {GpuNetException.FormatShape(t.ShapeArray())}: only 1-D and 2-D convolutions are supported");
    }

    private static OnnxTensor[] Conv(OpContext c, OnnxTensor?[] i)
    {
        var (y, dims, _) = ConvCore(c, i, FusedOperators.Activation(c));
        return new[] { Values.Float(y, dims) };
    }

    /// <summary>The convolution of inputs X, W and the optional B with <paramref name="activation"/> in its epilogue: the
    /// result (1-D convolutions as 2-D with a height of 1) and its ONNX shape. A <paramref name="residual"/> shaped like the
    /// 2-D convolution's output is added before the activation (<c>ResidualAdded</c>); one of another shape is not, and
    /// then neither is the activation — the caller adds the residual with broadcasting and activates.</summary>
    internal static (Tensor Y, int[] Dims, bool ResidualAdded) ConvCore(OpContext c, OnnxTensor?[] i, FusedActivation activation, Tensor? residual = null)
    {
        var x = i[0]!.On(c.Device);
        var w = i[1]!.On(c.Device);
        var bias = i.Length > 2 && i[2] is { } b ? b.On(c.Device) : null;
        int spatial = x.Rank - 2;
        if (spatial is < 1 or > 2)
            throw new OnnxRunException($"{c.Label}: {spatial}-D convolution is not supported (1-D and 2-D are)");
        var options = ConvOptions(c, x, w, activation);
        var x4 = As2d(c, x, "input");
        if (residual is not null)
        {
            var g = Conv2dGeometry.Create(c.Label, x4.ShapeArray(), As2d(c, w, "kernel").ShapeArray(), options);
            if (spatial != 2 || !residual.Shape.SequenceEqual(new[] { g.N, g.K, g.OH, g.OW }))
            {
                residual = null;
                options = options with { Activation = FusedActivation.None };
            }
        }
        // A constant kernel (every exported model's) is packed once and kept with the model.
        var y = i[1]!.IsConstant
            ? Ops.Conv2d(x4, i[1]!.Conv2dWeights(c.Device, options.Groups), bias, options, residual)
            : Ops.Conv2d(x4, As2d(c, w, "kernel"), bias, options, residual);
        var dims = spatial == 1 ? new[] { y.Size(0), y.Size(1), y.Size(3) } : y.ShapeArray();
        return (y, dims, residual is not null);
    }

    /// <summary>A convolution node's options for input <paramref name="x"/> and kernel <paramref name="w"/> (1-D as 2-D with a height
    /// of 1): they follow from the attributes, the kernel and (auto_pad) the input's spatial size, parsed once per shape.</summary>
    internal static Conv2dOptions ConvOptions(OpContext c, Tensor x, Tensor w, FusedActivation activation)
    {
        if (c.Memo is ConvMemo memo && memo.Activation == activation && memo.Input.SequenceEqual(x.Shape) && memo.Kernel.SequenceEqual(w.Shape))
            return memo.Options;
        int spatial = x.Rank - 2;
        var (strides, dilations, pads) = WindowGeometry(c, spatial, x.ShapeArray()[2..], w.ShapeArray()[2..]);
        var options = spatial == 1
            ? new Conv2dOptions { Stride = (1, strides[0]), Dilation = (1, dilations[0]), Padding = (0, 0, pads[0], pads[1]), Groups = (int)c.Int("group", 1), Activation = activation }
            : new Conv2dOptions { Stride = (strides[0], strides[^1]), Dilation = (dilations[0], dilations[^1]), Padding = (pads[0], pads[spatial], pads[1], pads[^1]), Groups = (int)c.Int("group", 1), Activation = activation };
        c.Memo = new ConvMemo(x.ShapeArray(), w.ShapeArray(), activation, options);
        return options;
    }

    /// <summary>A convolution node's options for one input and kernel shape and activation (<see cref="OpContext.Memo"/>).</summary>
    private sealed record ConvMemo(int[] Input, int[] Kernel, FusedActivation Activation, Conv2dOptions Options);

    /// <summary>
    /// ConvTranspose as a convolution: insert stride−1 zeros between input elements, pad each side by
    /// dilation·(k−1) − pad (output_padding added at the end), and convolve with the kernel flipped in space and with
    /// its in/out channels swapped per group. Pads come from the attributes, auto_pad or output_shape.
    /// </summary>
    private static OnnxTensor[] ConvTranspose(OpContext c, OnnxTensor?[] i)
    {
        var xi = i[0]!;
        var wi = i[1]!;
        int spatial = xi.Rank - 2, groups = (int)c.Int("group", 1);
        if (spatial is < 1 or > 2)
            throw new OnnxRunException($"{c.Label}: {spatial}-D transposed convolution is not supported (1-D and 2-D are)");
        int n = xi.Dims[0], cin = xi.Dims[1], coutPerGroup = wi.Dims[1];
        var inDims = xi.Shape[2..];
        var kernel = wi.Shape[2..];
        var strides = c.Ints("strides") ?? Enumerable.Repeat(1L, spatial).ToArray();
        var dilations = c.Ints("dilations") ?? Enumerable.Repeat(1L, spatial).ToArray();
        var outputPadding = c.Ints("output_padding") ?? new long[spatial];
        var pads = c.Ints("pads") ?? new long[2 * spatial];
        var fullSize = Enumerable.Range(0, spatial).Select(d => strides[d] * (inDims[d] - 1) + outputPadding[d] + (kernel[d] - 1) * dilations[d] + 1).ToArray();
        string autoPad = c.String("auto_pad", "NOTSET");
        if (c.Ints("output_shape") is { } outputShape)
        {
            var target = outputShape[^spatial..];
            for (int d = 0; d < spatial; d++)
            {
                long total = fullSize[d] - target[d];
                bool upper = autoPad != "SAME_LOWER";
                (pads[d], pads[d + spatial]) = upper ? (total / 2, total - total / 2) : (total - total / 2, total / 2);
            }
        }
        else if (autoPad is "SAME_UPPER" or "SAME_LOWER")
            for (int d = 0; d < spatial; d++)
            {
                long total = fullSize[d] - inDims[d] * strides[d];
                (pads[d], pads[d + spatial]) = autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2);
            }
        // The stride-dilated input with its border: zeros between elements, dilation·(k−1) − pad at each side.
        var padded = new int[spatial];
        var before = new int[spatial];
        for (int d = 0; d < spatial; d++)
        {
            before[d] = (int)(dilations[d] * (kernel[d] - 1) - pads[d]);
            int after = (int)(dilations[d] * (kernel[d] - 1) - pads[d + spatial] + outputPadding[d]);
            padded[d] = (int)(strides[d] * (inDims[d] - 1) + 1) + before[d] + after;
            if (padded[d] < 1)
                throw c.Shape("pads", "pads that leave a positive output", "[" + string.Join(", ", pads) + "]");
        }
        var xDims = new[] { n, cin }.Concat(padded).ToArray();
        var inStrides = Values.Strides(xi.Dims);
        var xMapped = Values.GatherFlat(c, xi.On(c.Device), Values.Map(xDims, idx =>
        {
            long s = (long)idx[0] * inStrides[0] + (long)idx[1] * inStrides[1];
            for (int d = 0; d < spatial; d++)
            {
                int p = idx[2 + d] - before[d];
                if (p < 0 || p % strides[d] != 0 || p / strides[d] >= inDims[d])
                    return -1;
                s += (long)(p / strides[d]) * inStrides[2 + d];
            }
            return s;
        }));
        // Kernel [Cin, Cout/g, k...] → [Cout, Cin/g, k...] flipped.
        int cinPerGroup = cin / groups, cout = coutPerGroup * groups;
        var wDims = new[] { cout, cinPerGroup }.Concat(kernel).ToArray();
        var wStrides = Values.Strides(wi.Dims);
        var wMapped = Values.GatherFlat(c, wi.On(c.Device), Values.Map(wDims, idx =>
        {
            int g = idx[0] / coutPerGroup, oc = idx[0] % coutPerGroup, ic = g * cinPerGroup + idx[1];
            long s = (long)ic * wStrides[0] + (long)oc * wStrides[1];
            for (int d = 0; d < spatial; d++)
                s += (long)(kernel[d] - 1 - idx[2 + d]) * wStrides[2 + d];
            return s;
        }));
        var bias = i.Length > 2 && i[2] is { } b ? b.On(c.Device) : null;
        var options = spatial == 1
            ? new Conv2dOptions { Dilation = (1, (int)dilations[0]), Groups = groups }
            : new Conv2dOptions { Dilation = ((int)dilations[0], (int)dilations[1]), Groups = groups };
        var x4 = xMapped.Reshape(spatial == 1 ? new[] { n, cin, 1, padded[0] } : xDims);
        var w4 = wMapped.Reshape(spatial == 1 ? new[] { cout, cinPerGroup, 1, kernel[0] } : wDims);
        var y = Ops.Conv2d(x4, w4, bias, options);
        var dims = spatial == 1 ? new[] { y.Size(0), y.Size(1), y.Size(3) } : y.ShapeArray();
        return new[] { Values.Float(y, dims) };
    }
}

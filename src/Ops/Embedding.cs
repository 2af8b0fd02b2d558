using ILGPU;
using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// Looks up rows of <paramref name="weight"/> [V, D] for token ids (row-major in <paramref name="shape"/>): output [...shape, D].
    /// Every id is checked against V before anything is launched. Kernel <c>embedding</c>.
    /// </summary>
    /// <exception cref="ShapeMismatchException">An id is outside [0, V), or the id count does not match the shape.</exception>
    public static Tensor Embedding(Tensor weight, ReadOnlySpan<int> ids, params int[] shape)
    {
        const string op = "embedding";
        var device = Validate.Input(op, "weight", weight);
        Validate.Rank(op, "weight", weight, 2);
        if (shape.Length == 0)
            shape = new[] { ids.Length };
        if (ShapeUtil.Product(shape) != ids.Length)
            throw new ShapeMismatchException(op, "ids", $"{ShapeUtil.Product(shape)} ids for shape {GpuNetException.FormatShape(shape)}", $"{ids.Length} ids");
        int vocab = weight.Size(0), dim = weight.Size(1);
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] < 0 || ids[i] >= vocab)
                throw new InvalidArgumentException(op, "ids", $"token ids in [0, {vocab})", $"id {ids[i]} at position {i}");
        var output = Tensor.Empty(device, shape.Append(dim).ToArray());
        if (output.Length == 0)
            return output;
        using var idTensor = Tensor.Empty(device, ids.Length);
        var idView = idTensor.ContiguousView.Cast<int>();
        HostCopy.Upload(ids, idView);
        using var wc = weight.Contiguous();
        var (wv, ov, total) = (wc.ContiguousView, output.ContiguousView, output.Length);
        EmbeddingKernels.RunGather(op, device, wv, idView, ov, dim, total);
        if (Autograd.ShouldRecord(weight))
        {
            var saved = ids.ToArray();
            Autograd.Record(op, output, new[] { weight }, (g, _) => new[] { EmbeddingBackward(g, saved, vocab) });
        }
        return output;
    }

    /// <summary>
    /// Looks up rows of <paramref name="weight"/> [V, D] for the int32 token ids in <paramref name="ids"/> (any shape): output
    /// [...ids.shape, D], as <see cref="Embedding(Tensor, ReadOnlySpan{int}, int[])"/> (the ids are read to the host and checked there).
    /// </summary>
    /// <exception cref="DTypeMismatchException"><paramref name="ids"/> is not int32 (float indices: <see cref="GatherRows"/>).</exception>
    public static Tensor Embedding(Tensor weight, Tensor ids)
    {
        const string op = "embedding";
        var device = Validate.Input(op, "weight", weight);
        Validate.Input(op, "ids", ids, device, DType.Int32);
        return Embedding(weight, ids.ToInt32Array(), ids.ShapeArray());
    }

    /// <summary>
    /// The gradient of <see cref="Embedding(Tensor, ReadOnlySpan{int}, int[])"/> for weight [<paramref name="vocab"/>, D]: dW[v] = Σ of dy's rows at the positions
    /// whose id is v (ids outside [0, vocab) contribute nothing). Deterministic: positions are summed in order by one thread
    /// per (row, column), no atomics. Kernel <c>embedding_backward</c>.
    /// </summary>
    public static Tensor EmbeddingBackward(Tensor dy, ReadOnlySpan<int> ids, int vocab)
    {
        const string op = "embedding_backward";
        var device = Validate.Input(op, "dy", dy);
        if (dy.Rank < 1 || dy.Length != ids.Length * (long)dy.Size(-1))
            throw new ShapeMismatchException(op, "dy", $"[..., D] with {ids.Length} rows (one per id)", GpuNetException.FormatShape(dy.ShapeArray()));
        int dim = dy.Size(-1);
        var dw = Tensor.Zeros(device, vocab, dim);
        // Counting sort of the positions by id: segment s covers order[starts[s]..starts[s+1]) and belongs to row rows[s].
        var counts = new int[vocab];
        foreach (int id in ids)
            if ((uint)id < (uint)vocab)
                counts[id]++;
        var rowsOf = new List<int>();
        var first = new int[vocab];
        int at = 0;
        for (int v = 0; v < vocab; v++)
            if (counts[v] > 0)
            {
                rowsOf.Add(v);
                first[v] = at;
                at += counts[v];
            }
        if (rowsOf.Count == 0 || dim == 0)
            return dw;
        var order = new int[at];
        var fill = (int[])first.Clone();
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] < (uint)vocab)
                order[fill[ids[i]]++] = i;
        var starts = rowsOf.Select(v => first[v]).Append(at).ToArray();
        using var orderHolder = Tensor.Empty(device, order.Length);
        using var startsHolder = Tensor.Empty(device, starts.Length);
        using var rowsHolder = Tensor.Empty(device, rowsOf.Count);
        var orderView = Upload(orderHolder, order);
        var startsView = Upload(startsHolder, starts);
        var rowsView = Upload(rowsHolder, rowsOf.ToArray());
        using var gc = dy.Contiguous();
        var (gv, wv, total) = (gc.ContiguousView, dw.ContiguousView, rowsOf.Count * dim);
        EmbeddingKernels.RunScatterSegments(op, device, gv, orderView, startsView, rowsView, wv, dim, total, Math.Max(1, at / rowsOf.Count));
        return dw;
    }

    /// <summary>Copies ints into a float tensor's memory (4 bytes each) and returns them as an int view.</summary>
    private static ArrayView<int> Upload(Tensor holder, int[] values)
    {
        var view = holder.ContiguousView.Cast<int>().SubView(0, values.Length);
        HostCopy.Upload<int>(values, view);
        return view;
    }

    /// <summary>
    /// Rows of <paramref name="weight"/> [V, D] picked by device-side <paramref name="indices"/> (floats holding integers, any
    /// shape): output [...indices.shape, D]. An index outside [0, V) or not an integer yields a NaN row. Kernel <c>gather_rows</c>.
    /// Int32 indices are token ids: <see cref="Embedding(Tensor, Tensor)"/>.
    /// </summary>
    public static Tensor GatherRows(Tensor weight, Tensor indices)
    {
        const string op = "gather_rows";
        if (indices is { DType: DType.Int32 })
            return Embedding(weight, indices);   // int32 indices: checked like token ids (an index out of range is an error)
        var device = Validate.Input(op, "weight", weight);
        Validate.Input(op, "indices", indices, device);
        Validate.Rank(op, "weight", weight, 2);
        int rows = weight.Size(0), dim = weight.Size(1);
        var output = Tensor.Empty(device, indices.ShapeArray().Append(dim).ToArray());
        if (output.Length == 0)
            return output;
        using var wc = weight.Contiguous();
        using var ic = indices.Contiguous();
        var (wv, iv, ov, total) = (wc.ContiguousView, ic.ContiguousView, output.ContiguousView, output.Length);
        EmbeddingKernels.RunGatherIndexed(op, device, wv, iv, ov, rows, dim, total);
        if (indices.RequiresGrad)
            Autograd.RecordNoGradient("gather_rows (indices)", output, indices);
        else if (Autograd.ShouldRecord(weight))
        {
            var saved = Autograd.Save(indices);
            Autograd.Record(op, output, new[] { weight }, (g, _) =>
            {
                // The indices are read back once, to group positions by row on the host; invalid ones (NaN rows) get no gradient.
                var ids = Array.ConvertAll(saved.ToArray(), f => f >= 0 && f < rows && f == MathF.Floor(f) ? (int)f : -1);
                return new[] { EmbeddingBackward(g, ids, rows) };
            }, saved);
        }
        return output;
    }

    /// <summary>The sinusoidal position table [positions, D] (sin on even columns, cos on odd). Kernel <c>sinusoidal_position</c>.</summary>
    public static Tensor SinusoidalPosition(Device device, int positions, int dim, double baseValue = 10000)
    {
        const string op = "sinusoidal_position";
        if (positions < 0 || dim < 1)
            throw new ShapeMismatchException(op, "shape", "positions ≥ 0 and dim ≥ 1", $"{positions} × {dim}");
        var output = Tensor.Empty(device, positions, dim);
        if (output.Length == 0)
            return output;
        using var frequencies = Frequencies(device, (dim + 1) / 2, j => Math.Pow(baseValue, -2.0 * j / dim));
        var (ov, fv, total) = (output.ContiguousView, Doubles(frequencies, (dim + 1) / 2), output.Length);
        EmbeddingKernels.RunSinusoidal(op, device, ov, fv, dim, total);
        return output;
    }

    /// <summary>A device buffer of <paramref name="count"/> doubles f(0..count−1), computed on the host in double precision.</summary>
    private static Tensor Frequencies(Device device, int count, Func<int, double> f)
    {
        var host = new double[Math.Max(count, 1)];
        for (int j = 0; j < count; j++)
            host[j] = f(j);
        var buffer = Tensor.Empty(device, 2 * host.Length);
        HostCopy.Upload<double>(host, Doubles(buffer, host.Length));
        return buffer;
    }

    private static ArrayView<double> Doubles(Tensor buffer, int count) => buffer.ContiguousView.Cast<double>().SubView(0, Math.Max(count, 1));

    /// <summary>Diffusion timestep embedding of t [B] (float timesteps): [B, dim], cos half then sin half. Kernel <c>timestep_embedding</c>.</summary>
    public static Tensor TimestepEmbedding(Tensor timesteps, int dim, double maxPeriod = 10000)
    {
        const string op = "timestep_embedding";
        var device = Validate.Input(op, "timesteps", timesteps);
        Validate.Rank(op, "timesteps", timesteps, 1);
        if (dim < 1)
            throw new ShapeMismatchException(op, "dim", "dim ≥ 1", dim.ToString());
        var output = Tensor.Empty(device, timesteps.Size(0), dim);
        if (output.Length == 0)
            return output;
        using var tc = timesteps.Contiguous();
        int half = dim / 2;
        using var frequencies = Frequencies(device, half, j => Math.Exp(-Math.Log(maxPeriod) * j / half));
        var (tv, fv, ov, total) = (tc.ContiguousView, Doubles(frequencies, half), output.ContiguousView, output.Length);
        EmbeddingKernels.RunTimestep(op, device, tv, fv, ov, dim, total);
        return output;
    }

    /// <summary>
    /// ViT/DiT patch unfold: x [N, C, H, W] → [N, (H/p)·(W/p), C·p·p], patches in raster order, each patch flattened
    /// (c, py, px) — the order of a Conv2d(C, D, p, stride p) weight, so a Linear on it equals the patch-embedding conv.
    /// Kernel <c>patchify</c>.
    /// </summary>
    public static Tensor Patchify(Tensor x, int patch)
    {
        const string op = "patchify";
        Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 4);
        int n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        if (patch < 1 || h % patch != 0 || w % patch != 0)
            throw new ShapeMismatchException(op, "patch", $"a patch size dividing H = {h} and W = {w}", patch.ToString());
        using var xc = x.Contiguous();
        using var split = xc.Reshape(n, c, h / patch, patch, w / patch, patch);
        using var view = split.Permute(0, 2, 4, 1, 3, 5);
        using var patches = Tensor.Empty(x.Device, view.ShapeArray());
        LayoutKernels.CopyPermuted(op, view, patches);
        RecordCopy(op, view, patches);
        return patches.Reshape(n, h / patch * (w / patch), c * patch * patch);
    }

    /// <summary>
    /// DiT's unpatchify: x [N, (H/p)·(W/p), p·p·C] with each patch flattened (py, px, c) → [N, C, H, W]. Kernel <c>unpatchify</c>.
    /// </summary>
    public static Tensor Unpatchify(Tensor x, int patch, int channels, int height, int width)
    {
        const string op = "unpatchify";
        Validate.Input(op, "x", x);
        Validate.Rank(op, "x", x, 3);
        if (patch < 1 || height % patch != 0 || width % patch != 0 || x.Size(1) != height / patch * (width / patch) || x.Size(2) != patch * patch * channels)
            throw new ShapeMismatchException(op, "x", $"[N, {height / Math.Max(patch, 1) * (width / Math.Max(patch, 1))}, {patch * patch * channels}] for patch {patch}, {channels} channels, {height}×{width}",
                GpuNetException.FormatShape(x.ShapeArray()));
        int n = x.Size(0), hp = height / patch, wp = width / patch;
        using var xc = x.Contiguous();
        using var split = xc.Reshape(n, hp, wp, patch, patch, channels);
        using var view = split.Permute(0, 5, 1, 3, 2, 4);
        using var image = Tensor.Empty(x.Device, view.ShapeArray());
        LayoutKernels.CopyPermuted(op, view, image);
        RecordCopy(op, view, image);
        return image.Reshape(n, channels, height, width);
    }
}

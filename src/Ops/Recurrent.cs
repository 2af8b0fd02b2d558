using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// A recurrence over a sequence whose input projections are already computed (inference; kernel <c>recurrence</c>):
    /// <paramref name="xw"/> [seq, batch, gates·hidden] = x·Wᵀ + b_W for every step, <paramref name="r"/> [gates·hidden, hidden]
    /// the recurrent weights and <paramref name="rb"/> [gates·hidden] their bias, in ONNX's gate order (LSTM i, o, f, c; GRU
    /// z, r, h), from the state <paramref name="h0"/> [batch, hidden] (and an LSTM's <paramref name="c0"/>). Returns every
    /// step's hidden state [seq, batch, hidden] (in time order also when <paramref name="reverse"/> runs it backwards), the
    /// final hidden state and an LSTM's final cell state. <paramref name="linearBeforeReset"/>: a GRU's candidate uses
    /// r·(h·R_nᵀ + b_n) (PyTorch's GRU, ONNX linear_before_reset = 1) rather than (r·h)·R_nᵀ + b_n.
    /// </summary>
    /// <remarks>No backward: GpuNet.Layers' Recurrent composes the cell from differentiable ops for training;
    /// a backward through these outputs raises <see cref="NoGradientException"/> naming <c>recurrence</c>.</remarks>
    public static (Tensor Output, Tensor Hidden, Tensor? Cell) Recurrence(RecurrentCell cell, Tensor xw, Tensor r, Tensor? rb, Tensor h0, Tensor? c0 = null,
        bool reverse = false, bool linearBeforeReset = false)
    {
        const string op = "recurrence";
        Validate.Input(op, "xw", xw);
        Validate.Rank(op, "xw", xw, 3);
        return RecurrenceCore(cell, xw, null, null, null, r, rb, h0, c0, reverse, linearBeforeReset);
    }

    /// <summary>
    /// <see cref="Recurrence(RecurrentCell, Tensor, Tensor, Tensor?, Tensor, Tensor?, bool, bool)"/> over the sequence itself:
    /// <paramref name="x"/> [seq, batch, input] with the input weights <paramref name="w"/> [gates·hidden, input] and their bias
    /// <paramref name="wb"/> [gates·hidden], as ONNX's LSTM, GRU and RNN nodes hold them. On the fast CPU, with input weights
    /// of at most <see cref="RecurrentKernels.InlineProjectionFloats"/> floats, the projections are computed inside the same
    /// call (the weights transposed once, a row of products per step and sequence), without a matrix product of its own
    /// (which packed its operands on every call: a 2-layer bidirectional LSTM of 12 spent a third of its time there);
    /// elsewhere x·Wᵀ + b first, then the recurrence. Kernel <c>recurrence</c>.
    /// </summary>
    public static (Tensor Output, Tensor Hidden, Tensor? Cell) RecurrenceOfInput(RecurrentCell cell, Tensor x, Tensor w, Tensor? wb, Tensor r, Tensor? rb,
        Tensor h0, Tensor? c0 = null, bool reverse = false, bool linearBeforeReset = false)
    {
        const string op = "recurrence";
        var device = Validate.Input(op, "x", x);
        Validate.Input(op, "w", w, device);
        Validate.Rank(op, "x", x, 3);
        int gates = RecurrentKernels.Gates(cell), input = x.Size(2);
        if (w.Rank != 2 || w.Size(1) != input || w.Size(0) % gates != 0)
            throw new ShapeMismatchException(op, "w", $"[{gates}·hidden, {input}] ({gates} gates, the input's {input} features)", GpuNetException.FormatShape(w.ShapeArray()));
        if (wb is not null)
        {
            Validate.Input(op, "wb", wb, device);
            if (wb.Rank != 1 || wb.Size(0) != w.Size(0))
                throw new ShapeMismatchException(op, "wb", $"[{w.Size(0)}]", GpuNetException.FormatShape(wb.ShapeArray()));
        }
        if (RecurrentKernels.ProjectsInline(device, w.Length) && x.IsContiguous && w.IsContiguous && (wb is null || wb.IsContiguous))
            return RecurrenceCore(cell, null, x, w, wb, r, rb, h0, c0, reverse, linearBeforeReset);
        using var scope = device.Scope();
        var xw = Linear(x.Contiguous().Reshape(x.Size(0) * x.Size(1), input), w, wb).Reshape(x.Size(0), x.Size(1), w.Size(0));
        var result = RecurrenceCore(cell, xw, null, null, null, r, rb, h0, c0, reverse, linearBeforeReset);
        TensorScope.Escape(result.Output);
        TensorScope.Escape(result.Hidden);
        if (result.Cell is { } kept)
            TensorScope.Escape(kept);
        return result;
    }

    /// <summary>The recurrence from precomputed projections <paramref name="xw"/>, or (xw null) from <paramref name="x"/>,
    /// <paramref name="w"/> and <paramref name="wb"/> projected by the kernel.</summary>
    private static (Tensor Output, Tensor Hidden, Tensor? Cell) RecurrenceCore(RecurrentCell cell, Tensor? xw, Tensor? x, Tensor? w, Tensor? wb, Tensor r, Tensor? rb,
        Tensor h0, Tensor? c0, bool reverse, bool linearBeforeReset)
    {
        const string op = "recurrence";
        var sequence = xw ?? x!;
        var device = sequence.Device;
        Validate.Input(op, "r", r, device);
        Validate.Input(op, "h0", h0, device);
        Validate.Rank(op, "h0", h0, 2);
        int seq = sequence.Size(0), batch = sequence.Size(1), hidden = h0.Size(1), gates = RecurrentKernels.Gates(cell);
        if (h0.Size(0) != batch)
            throw new ShapeMismatchException(op, "h0", $"[{batch}, hidden] (batch of {(xw is null ? "x" : "xw")})", GpuNetException.FormatShape(h0.ShapeArray()));
        if (xw is not null && xw.Size(2) != gates * hidden)
            throw new ShapeMismatchException(op, "xw", $"[seq, {batch}, {gates * hidden}] ({gates} gates of {hidden})", GpuNetException.FormatShape(xw.ShapeArray()));
        if (w is not null && w.Size(0) != gates * hidden)
            throw new ShapeMismatchException(op, "w", $"[{gates * hidden}, {w.Size(1)}] ({gates} gates of {hidden})", GpuNetException.FormatShape(w.ShapeArray()));
        if (r.Rank != 2 || r.Size(0) != gates * hidden || r.Size(1) != hidden)
            throw new ShapeMismatchException(op, "r", $"[{gates * hidden}, {hidden}]", GpuNetException.FormatShape(r.ShapeArray()));
        if (rb is not null)
        {
            Validate.Input(op, "rb", rb, device);
            if (rb.Rank != 1 || rb.Size(0) != gates * hidden)
                throw new ShapeMismatchException(op, "rb", $"[{gates * hidden}]", GpuNetException.FormatShape(rb.ShapeArray()));
        }
        if (c0 is not null && cell != RecurrentCell.Lstm)
            throw new ShapeMismatchException(op, "c0", "no cell state (only an LSTM has one)", GpuNetException.FormatShape(c0.ShapeArray()));
        if (c0 is not null)
        {
            Validate.Input(op, "c0", c0, device);
            if (!c0.Shape.SequenceEqual(h0.Shape))
                throw new ShapeMismatchException(op, "c0", GpuNetException.FormatShape(h0.ShapeArray()) + " (as h0)", GpuNetException.FormatShape(c0.ShapeArray()));
        }
        var y = Tensor.Empty(device, seq, batch, hidden);
        // The kernel updates the cell state in place: a copy, never the caller's c0.
        var c = cell != RecurrentCell.Lstm ? Tensor.Empty(device, 1) : c0 is null ? Tensor.Zeros(device, batch, hidden) : LayoutKernels.ContiguousCopy(c0);
        using (var scope = device.Scope())
        {
            if (y.Length > 0)
                RecurrentKernels.RunSequence(device, cell, xw?.Contiguous(), x, w, wb, r.Contiguous(), rb?.Contiguous(), h0.Contiguous(), c, y, reverse, linearBeforeReset);
        }
        Tensor last;
        if (seq == 0)
            last = LayoutKernels.ContiguousCopy(h0);
        else
            using (var final = y.Select(0, reverse ? 0 : seq - 1))
                last = LayoutKernels.ContiguousCopy(final);
        var inputs = new[] { sequence, w, wb, r, rb, h0, c0 };
        Autograd.RecordNoGradient(op, y, inputs);
        Autograd.RecordNoGradient(op, last, inputs);
        if (cell != RecurrentCell.Lstm)
        {
            c.Dispose();
            return (y, last, null);
        }
        Autograd.RecordNoGradient(op, c, inputs);
        return (y, last, c);
    }
}

namespace GpuNet.Onnx.Operators;

/// <summary>
/// RNN, LSTM and GRU with ONNX's gate orders (LSTM i, o, f, c; GRU z, r, h), forward / reverse / bidirectional,
/// both layouts, initial states, biases, peepholes, clip, the activations attribute and sequence_lens (positions past a
/// sequence's length keep its state and output zeros). The input projection of every time step is one matmul up
/// front; each step is then one matmul with the recurrent weights and the gate arithmetic on the device.
/// </summary>
internal static class RecurrentOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return new OpSpec("RNN", (c, i) => Run(c, i, "RNN", 1), 7, Check);
        yield return new OpSpec("LSTM", (c, i) => Run(c, i, "LSTM", 4), 7, Check);
        yield return new OpSpec("GRU", (c, i) => Run(c, i, "GRU", 3), 7, Check);
    }

    private static readonly string[] Known = { "Sigmoid", "Tanh", "Relu", "LeakyRelu", "HardSigmoid", "Elu", "Softsign", "Softplus", "ThresholdedRelu", "ScaledTanh", "Affine" };

    private static string? Check(OpContext c)
    {
        if (c.Int("input_forget", 0) != 0)
            return "LSTM input_forget (coupled input and forget gates) is not supported";
        if (c.Node.Attributes.TryGetValue("activations", out var a))
            foreach (var s in a.Strings)
            {
                string name = System.Text.Encoding.UTF8.GetString(s.Span);
                if (!Known.Contains(name, StringComparer.OrdinalIgnoreCase))
                    return $"activation '{name}' is not supported";
            }
        return null;
    }

    /// <summary>True when the node's activations are the op's defaults (σ and tanh; alpha and beta are unused by those).</summary>
    private static bool DefaultActivations(OpContext c, string op)
    {
        if (!c.Node.Attributes.TryGetValue("activations", out var a))
            return true;
        var defaults = op == "RNN" ? new[] { "Tanh" } : op == "GRU" ? new[] { "Sigmoid", "Tanh" } : new[] { "Sigmoid", "Tanh", "Tanh" };
        var names = a.Strings.Select(s => System.Text.Encoding.UTF8.GetString(s.Span)).ToArray();
        return names.Select((n, k) => string.Equals(n, defaults[k % defaults.Length], StringComparison.OrdinalIgnoreCase)).All(ok => ok);
    }

    /// <summary>The activations of each direction: the attribute's (with alpha/beta) or the op's defaults.</summary>
    private static Func<Tensor, Tensor>[] Activations(OpContext c, string op, int directions)
    {
        int per = op == "LSTM" ? 3 : op == "GRU" ? 2 : 1;
        var names = c.Node.Attributes.TryGetValue("activations", out var a) ? a.Strings.Select(s => System.Text.Encoding.UTF8.GetString(s.Span)).ToArray()
            : Enumerable.Repeat(op == "RNN" ? new[] { "Tanh" } : op == "GRU" ? new[] { "Sigmoid", "Tanh" } : new[] { "Sigmoid", "Tanh", "Tanh" }, directions).SelectMany(x => x).ToArray();
        if (names.Length < per * directions)
            throw c.Shape("activations", $"{per * directions} activations", names.Length.ToString());
        var alpha = c.Floats("activation_alpha") ?? Array.Empty<float>();
        var beta = c.Floats("activation_beta") ?? Array.Empty<float>();
        return names.Select((n, k) =>
        {
            float al = k < alpha.Length ? alpha[k] : float.NaN, be = k < beta.Length ? beta[k] : float.NaN;
            float A(float d) => float.IsNaN(al) ? d : al;
            float B(float d) => float.IsNaN(be) ? d : be;
            return n.ToLowerInvariant() switch
            {
                "sigmoid" => (Func<Tensor, Tensor>)(t => Ops.Sigmoid(t)),
                "tanh" => t => Ops.Tanh(t),
                "relu" => t => Ops.Relu(t),
                "leakyrelu" => t => Ops.LeakyRelu(t, A(0.01f)),
                "hardsigmoid" => t => Ops.Unary(t, Kernels.UnaryFunction.HardSigmoid, A(0.2f), B(0.5f)),
                "elu" => t => Ops.Elu(t, A(1f)),
                "softsign" => t => Ops.Unary(t, Kernels.UnaryFunction.Softsign),
                "softplus" => t => Ops.Softplus(t),
                "thresholdedrelu" => t => Ops.Unary(t, Kernels.UnaryFunction.ThresholdedRelu, A(1f)),
                "scaledtanh" => t => Ops.Scale(Ops.Tanh(Ops.Scale(t, B(1f))), A(1f)),
                _ => t => Ops.Add(Ops.Scale(t, A(1f)), Ops.Full(t.Device, B(0f), 1)),
            };
        }).ToArray();
    }

    private static OnnxTensor[] Run(OpContext c, OnnxTensor?[] i, string op, int gates)
    {
        bool batchFirst = c.Int("layout", 0) != 0;
        string direction = c.String("direction", "forward");
        int dirs = direction == "bidirectional" ? 2 : 1;
        int hidden = (int)c.Int("hidden_size", 0);
        var x = i[0]!.On(c.Device);
        if (x.Rank != 3)
            throw c.Shape("X", "[seq, batch, input] (or [batch, seq, input] with layout 1)", GpuNetException.FormatShape(i[0]!.Dims));
        if (batchFirst)
            x = x.Permute(1, 0, 2).Contiguous();
        int seq = x.Size(0), batch = x.Size(1), inputSize = x.Size(2);
        var w = i[1]!.On(c.Device);
        var r = i[2]!.On(c.Device);
        if (hidden <= 0)
            hidden = r.Size(-1);
        if (w.Rank != 3 || w.Size(0) != dirs || w.Size(1) != gates * hidden || w.Size(2) != inputSize)
            throw c.Shape("W", $"[{dirs}, {gates * hidden}, {inputSize}]", GpuNetException.FormatShape(i[1]!.Dims));
        if (r.Rank != 3 || r.Size(0) != dirs || r.Size(1) != gates * hidden || r.Size(2) != hidden)
            throw c.Shape("R", $"[{dirs}, {gates * hidden}, {hidden}]", GpuNetException.FormatShape(i[2]!.Dims));
        Tensor? Opt(int k) => i.Length > k && i[k] is { } t ? t.On(c.Device) : null;
        var bias = Opt(3);
        var lengths = i.Length > 4 && i[4] is { } sl ? Values.Longs(c, sl, "sequence_lens") : null;
        Tensor? State(int k)
        {
            var s = Opt(k);
            return s is not null && batchFirst ? s.Permute(1, 0, 2).Contiguous() : s;
        }
        var h0 = State(5);
        var c0 = op == "LSTM" ? State(6) : null;
        var peep = op == "LSTM" ? Opt(7) : null;
        float clip = c.Float("clip", 0f);
        bool linearBeforeReset = c.Int("linear_before_reset", 0) != 0;
        // The common export runs each direction as one recurrence kernel call; only other activations, clipping, peepholes or
        // shorter sequences build the step-by-step graph (and its activation functions).
        bool fused = DefaultActivations(c, op) && clip <= 0 && peep is null && (lengths is null || lengths.All(l => l == seq));
        var acts = fused ? null : Activations(c, op, dirs);
        int per = op == "LSTM" ? 3 : op == "GRU" ? 2 : 1;
        // The slices of W, R and B below are contiguous views already (Values.Dense): a Contiguous() of each was one more view.

        var ys = new List<Tensor>();
        var hs = new List<Tensor>();
        var cs = new List<Tensor>();
        for (int d = 0; d < dirs; d++)
        {
            bool reverse = direction == "reverse" || d == 1;
            if (reverse && lengths is not null && lengths.Any(l => l != seq))
                throw new OnnxRunException($"{c.Label}: a reverse direction with sequence_lens shorter than the sequence is not supported");
            var wd = w.Select(0, d);
            var rd = r.Select(0, d);
            var bd = bias?.Select(0, d);
            Tensor? wb = bd is null ? null : Values.Dense(bd.Slice(0, 0, gates * hidden));
            Tensor? rb = bd is null ? null : Values.Dense(bd.Slice(0, gates * hidden, gates * hidden));
            var h = h0 is null ? Ops.Full(c.Device, 0f, batch, hidden) : Values.Dense(h0.Select(0, d));
            var cell = op == "LSTM" ? c0 is null ? Ops.Full(c.Device, 0f, batch, hidden) : Values.Dense(c0.Select(0, d)) : null;
            if (fused)
            {
                // The common export: the whole direction, its input projections included, in one recurrence call (one GEMV
                // and one gate pass per step).
                var kind = op == "LSTM" ? Kernels.RecurrentCell.Lstm : op == "GRU" ? Kernels.RecurrentCell.Gru : Kernels.RecurrentCell.Rnn;
                var (sequence, last, lastCell) = Ops.RecurrenceOfInput(kind, x, Values.Dense(wd), wb, rd, rb, h, cell, reverse, linearBeforeReset);
                ys.Add(sequence.Reshape(seq, 1, batch, hidden));
                hs.Add(last.Reshape(1, batch, hidden));
                if (lastCell is not null)
                    cs.Add(lastCell.Reshape(1, batch, hidden));
                continue;
            }
            // Every step's input projection at once: [seq·batch, gates·hidden].
            var xw = Ops.Linear(x.Reshape(seq * batch, inputSize), Values.Dense(wd), wb).Reshape(seq, batch, gates * hidden);
            var f = acts![d * per];
            var g = per > 1 ? acts[d * per + 1] : f;
            var hAct = per > 2 ? acts[d * per + 2] : f;
            var outputs = new Tensor[seq];
            var rdc = rd.Contiguous();
            for (int step = 0; step < seq; step++)
            {
                int t = reverse ? seq - 1 - step : step;
                var xt = xw.Select(0, t);
                Tensor Gate(Tensor all, int k) => all.Slice(1, k * hidden, hidden).Contiguous();
                Tensor Clip(Tensor v) => clip > 0 ? Ops.Unary(v, Kernels.UnaryFunction.Clip, -clip, clip) : v;
                Tensor hNew, cNew = null!;
                if (op == "GRU")
                {
                    // z and r from the full recurrent product; h's recurrent part depends on linear_before_reset.
                    var zrR = Ops.Linear(h, rdc.Slice(0, 0, 2 * hidden), rb?.Slice(0, 0, 2 * hidden));
                    var zr = Ops.Add(xt.Slice(1, 0, 2 * hidden), zrR);
                    var z = f(Clip(Gate(zr, 0)));
                    var rg = f(Clip(Gate(zr, 1)));
                    var rh = rdc.Slice(0, 2 * hidden, hidden);
                    var rbh = rb?.Slice(0, 2 * hidden, hidden);
                    var recurrent = linearBeforeReset ? Ops.Mul(rg, Ops.Linear(h, rh, rbh)) : Ops.Linear(Ops.Mul(rg, h), rh, rbh);
                    var candidate = g(Clip(Ops.Add(Gate(xt, 2), recurrent)));
                    hNew = Ops.Add(candidate, Ops.Mul(z, Ops.Sub(h, candidate)));
                }
                else
                {
                    var all = Ops.Add(xt, Ops.Linear(h, rdc, rb));
                    if (op == "RNN")
                        hNew = f(Clip(all));
                    else
                    {
                        Tensor Peep(Tensor gate, int k, Tensor state) => peep is null ? gate : Ops.Add(gate, Ops.Mul(state, peep.Select(0, d).Slice(0, k * hidden, hidden)));
                        var ig = f(Clip(Peep(Gate(all, 0), 0, cell!)));
                        var fg = f(Clip(Peep(Gate(all, 2), 2, cell!)));
                        var cc = g(Clip(Gate(all, 3)));
                        cNew = Ops.Add(Ops.Mul(fg, cell!), Ops.Mul(ig, cc));
                        var og = f(Clip(Peep(Gate(all, 1), 1, cNew)));
                        hNew = Ops.Mul(og, hAct(cNew));
                    }
                }
                if (lengths is not null && lengths.Any(l => l <= t))
                {
                    // Past its length a sequence keeps its state and outputs zeros.
                    var mask = Tensor.FromArray(c.Device, lengths.Select(l => t < l ? 1f : 0f).ToArray(), batch, 1);
                    outputs[t] = Ops.Mul(hNew, mask);
                    hNew = Ops.Add(h, Ops.Mul(mask, Ops.Sub(hNew, h)));
                    if (cell is not null)
                        cNew = Ops.Add(cell, Ops.Mul(mask, Ops.Sub(cNew, cell)));
                }
                else
                    outputs[t] = hNew;
                h = hNew;
                if (cell is not null)
                    cell = cNew;
            }
            ys.Add(Ops.Concat(outputs.Select(o => o.Reshape(1, 1, batch, hidden)).ToList(), 0));
            hs.Add(h.Reshape(1, batch, hidden));
            if (cell is not null)
                cs.Add(cell.Reshape(1, batch, hidden));
        }
        // The final states only where the graph reads them (PyTorch's exports list Y_h and Y_c and mostly drop them).
        var y = dirs == 1 ? ys[0] : Ops.Concat(ys, 1);
        var yh = !c.Uses(1) ? null : dirs == 1 ? hs[0] : Ops.Concat(hs, 0);
        var yc = cs.Count == 0 || !c.Uses(2) ? null : dirs == 1 ? cs[0] : Ops.Concat(cs, 0);
        if (batchFirst)
        {
            y = y.Permute(2, 0, 1, 3).Contiguous();
            yh = yh?.Permute(1, 0, 2).Contiguous();
            yc = yc?.Permute(1, 0, 2).Contiguous();
        }
        var results = new List<OnnxTensor> { Values.Float(y, y.ShapeArray()), yh is null ? null! : Values.Float(yh, yh.ShapeArray()) };
        if (cs.Count > 0)
            results.Add(yc is null ? null! : Values.Float(yc, yc.ShapeArray()));
        return results.ToArray();
    }
}

using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of the recurrence: each cell, both directions, a GRU resetting before and after its candidate's
/// product, odd batch and hidden sizes (not multiples of any vector width), with and without initial states and bias;
/// the output sequence, the final hidden state and an LSTM's final cell state each compared on its own.</summary>
internal static class RecurrentChecks
{
    internal static IEnumerable<CheckCase> Cases()
    {
        var cases = new (string Name, RecurrentCell Cell, int Seq, int Batch, int Input, int Hidden, bool Reverse, bool ResetAfter, bool States, bool Bias)[]
        {
            ("rnn", RecurrentCell.Rnn, 5, 3, 4, 7, false, false, true, true),
            ("lstm", RecurrentCell.Lstm, 6, 3, 5, 7, false, false, true, true),
            ("lstm_reverse_zero_state", RecurrentCell.Lstm, 4, 2, 3, 9, true, false, false, false),
            ("lstm_one_sequence_h33", RecurrentCell.Lstm, 7, 1, 6, 33, false, false, true, true),
            ("gru_reset_before", RecurrentCell.Gru, 5, 3, 4, 6, false, false, true, true),
            ("gru_reset_after", RecurrentCell.Gru, 5, 3, 4, 6, false, true, true, true),
            ("gru_reset_after_reverse_h17", RecurrentCell.Gru, 6, 1, 3, 17, true, true, false, true),
            // The fast CPU's vector steps: 8-lane gates with a scalar tail (19, 40 and 12 units), Rᵀ transposed in 8 × 8 blocks
            // with edge rows and columns (3·19 × 19), products 32 columns at a time with a tail (57, 160 and 12 columns).
            ("gru_reset_before_h19_batch2", RecurrentCell.Gru, 5, 2, 3, 19, false, false, true, true),
            ("lstm_h40_batch2_reverse", RecurrentCell.Lstm, 4, 2, 3, 40, true, false, true, true),
            ("rnn_h12", RecurrentCell.Rnn, 6, 1, 3, 12, false, false, true, true),
            // With AVX-512, 128 product columns at a time: 3·50 = 150 (a block, a 32-wide one, 6 single), reset after as
            // PyTorch's exports have it; with reset before, the candidate's 50 columns (a 32-wide block and 18 single).
            ("gru_reset_after_h50", RecurrentCell.Gru, 4, 1, 5, 50, false, true, true, true),
            ("gru_reset_before_h50_reverse", RecurrentCell.Gru, 4, 2, 5, 50, true, false, true, true),
            ("empty_sequence", RecurrentCell.Lstm, 0, 2, 3, 4, false, false, true, true),
        };
        foreach (var k in cases)
        {
            int gates = RecurrentKernels.Gates(k.Cell);
            yield return new CheckCase("recurrent", "recurrence", k.Name, $"{k.Cell} seq {k.Seq} × [{k.Batch}, {gates}·{k.Hidden}]", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                // Pre-activations of a few units (x·Wᵀ already applied): inputs of ±1 and weights of ±0.5 keep the gates off saturation.
                using var xw = Random(d, seed, 0, Math.Max(k.Seq, 0), k.Batch, gates * k.Hidden);
                using var rRaw = Random(d, seed, 1, gates * k.Hidden, k.Hidden);
                using var r = Ops.Scale(rRaw, 0.5f);
                using var rb = k.Bias ? Random(d, seed, 2, gates * k.Hidden) : null;
                using var h0 = k.States ? Random(d, seed, 3, k.Batch, k.Hidden) : Tensor.Zeros(d, k.Batch, k.Hidden);
                using var c0 = k.Cell == RecurrentCell.Lstm && k.States ? Random(d, seed, 4, k.Batch, k.Hidden) : null;
                var (y, h, c) = Ops.Recurrence(k.Cell, xw, r, rb, h0, c0, k.Reverse, k.ResetAfter);
                using (y)
                using (h)
                using (c)
                {
                    var (ey, eh, ec) = RecurrentReference.Run(k.Cell, Host(xw), Host(r), rb is null ? null : Host(rb), Host(h0), c0 is null ? null : Host(c0),
                        k.Seq, k.Batch, k.Hidden, k.Reverse, k.ResetAfter);
                    var also = new List<(string, float[], double[])> { ("hidden", h.ToArray(), eh) };
                    if (c is not null)
                        also.Add(("cell", c.ToArray(), ec));
                    return new(y.ToArray(), ey) { Also = also };
                }
            });
        }
        // From the sequence itself (Ops.RecurrenceOfInput, the ONNX nodes' form): on the fast CPU the input projections are
        // computed in the call up to 16,384 input weights — a 12-wide LSTM from 24 features as the exported bidirectional one
        // has, a GRU of 50 from 5, an RNN of 7 from 4 with no bias, an empty sequence — and by a matrix product first beyond
        // (an LSTM of 70 from 80 features: 22,400 weights).
        var ofInput = new (string Name, RecurrentCell Cell, int Seq, int Batch, int Input, int Hidden, bool Reverse, bool ResetAfter, bool Bias)[]
        {
            ("lstm_h12_of_input", RecurrentCell.Lstm, 9, 3, 24, 12, true, false, true),
            ("gru_h50_of_input", RecurrentCell.Gru, 5, 2, 5, 50, false, true, true),
            ("rnn_of_input_no_bias", RecurrentCell.Rnn, 5, 3, 4, 7, false, false, false),
            ("lstm_of_input_empty", RecurrentCell.Lstm, 0, 2, 3, 4, false, false, true),
            ("lstm_h70_of_input_by_product", RecurrentCell.Lstm, 4, 2, 80, 70, false, false, true),
        };
        foreach (var k in ofInput)
        {
            int gates = RecurrentKernels.Gates(k.Cell);
            yield return new CheckCase("recurrent", "recurrence", k.Name, $"{k.Cell} seq {k.Seq} × [{k.Batch}, {k.Input}] → [{gates}·{k.Hidden}]", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, k.Seq, k.Batch, k.Input);
                // Weights scaled by 1/√input keep the pre-activations about ±1, off the gates' saturation.
                using var wRaw = Random(d, seed, 5, gates * k.Hidden, k.Input);
                using var w = Ops.Scale(wRaw, 1f / MathF.Sqrt(k.Input));
                using var wb = k.Bias ? Random(d, seed, 6, gates * k.Hidden) : null;
                using var rRaw = Random(d, seed, 1, gates * k.Hidden, k.Hidden);
                using var r = Ops.Scale(rRaw, 0.5f);
                using var rb = k.Bias ? Random(d, seed, 2, gates * k.Hidden) : null;
                using var h0 = Random(d, seed, 3, k.Batch, k.Hidden);
                using var c0 = k.Cell == RecurrentCell.Lstm ? Random(d, seed, 4, k.Batch, k.Hidden) : null;
                var (y, h, c) = Ops.RecurrenceOfInput(k.Cell, x, w, wb, r, rb, h0, c0, k.Reverse, k.ResetAfter);
                using (y)
                using (h)
                using (c)
                {
                    double[] hx = Host(x), hw = Host(w), hwb = wb is null ? new double[gates * k.Hidden] : Host(wb);
                    var xw = new double[k.Seq * k.Batch * gates * k.Hidden];
                    for (int row = 0; row < k.Seq * k.Batch; row++)
                        for (int o = 0; o < gates * k.Hidden; o++)
                        {
                            double sum = hwb[o];
                            for (int i = 0; i < k.Input; i++)
                                sum += hx[row * k.Input + i] * hw[o * k.Input + i];
                            xw[row * gates * k.Hidden + o] = sum;
                        }
                    var (ey, eh, ec) = RecurrentReference.Run(k.Cell, xw, Host(r), rb is null ? null : Host(rb), Host(h0), c0 is null ? null : Host(c0),
                        k.Seq, k.Batch, k.Hidden, k.Reverse, k.ResetAfter);
                    var also = new List<(string, float[], double[])> { ("hidden", h.ToArray(), eh) };
                    if (c is not null)
                        also.Add(("cell", c.ToArray(), ec));
                    return new(y.ToArray(), ey) { Also = also };
                }
            });
        }
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>): the recurrence's cell and GRU reset kernels.</summary>
    internal static KernelFamily Family { get; } = new("recurrent", Cases, Variants, Bench);

    private static IEnumerable<KernelVariant> Variants() => new[]
    {
        Method("recurrence", "step", typeof(RecurrentKernels), nameof(RecurrentKernels.Step)),
        Method("recurrence", "gru_reset", typeof(RecurrentKernels), nameof(RecurrentKernels.ResetState)),
    };

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, cell, seq, batch, hidden) in new[] { (CpuPreset, RecurrentCell.Lstm, 20, 1, 64), (CpuPreset, RecurrentCell.Gru, 20, 1, 64),
                     (Small, RecurrentCell.Lstm, 16, 4, 64), (MediumLarge, RecurrentCell.Lstm, 64, 32, 512) })
        {
            int g = RecurrentKernels.Gates(cell);
            double flops = 2.0 * seq * batch * g * hidden * hidden, bytes = 4.0 * (g * hidden * hidden + seq * batch * (g + 1) * hidden);
            yield return C("recurrence", $"{cell} seq {seq} [{batch}, {g}·{hidden}]", flops, bytes, presets, (d, s) =>
            {
                var xw = R(d, s, seq, batch, g * hidden);
                var r = R(d, s + 1, g * hidden, hidden);
                var h0 = R(d, s + 2, batch, hidden);
                return new(() =>
                {
                    var (y, h, c) = Ops.Recurrence(cell, xw, r, null, h0, null, false, true);
                    y.Dispose();
                    h.Dispose();
                    c?.Dispose();
                }, xw, r, h0);
            });
        }
    }
}

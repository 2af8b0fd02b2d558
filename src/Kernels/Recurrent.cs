using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels
{
    /// <summary>The cell of a recurrence, with ONNX's gate order.</summary>
    public enum RecurrentCell
    {
        /// <summary>h′ = tanh(x·Wᵀ + h·Rᵀ + b): one gate.</summary>
        Rnn,
        /// <summary>Gates i, o, f, c: c′ = σ(f)·c + σ(i)·tanh(c̃), h′ = σ(o)·tanh(c′).</summary>
        Lstm,
        /// <summary>Gates z, r, h: n = tanh(x_n + r·(h·R_nᵀ + b_n)) (or of (r·h)·R_nᵀ), h′ = n + z·(h − n).</summary>
        Gru,
    }

    /// <summary>The shape and offsets of one time step of <see cref="RecurrentKernels.Step"/>.</summary>
    public struct RecurrentStep
    {
        /// <summary>Sequences and hidden width.</summary>
        public int Batch, Hidden;

        /// <summary><see cref="RecurrentCell"/> as an int.</summary>
        public int Cell;

        /// <summary>GRU: 1 when the recurrent product of the candidate is taken before the reset gate multiplies it
        /// (linear_before_reset, PyTorch's GRU), 0 when the reset gate scales h first.</summary>
        public int ResetAfter;

        /// <summary>Offset of this step's input projection in xw [seq, batch, gates·hidden] (t·batch·gates·hidden).</summary>
        public int InputOffset;

        /// <summary>Row stride of the recurrent products hr (gates·hidden, or 2·hidden for a GRU's z and r alone).</summary>
        public int ProductStride;

        /// <summary>Row stride and offset of the GRU candidate's recurrent product in its buffer.</summary>
        public int CandidateStride, CandidateOffset;

        /// <summary>Offsets of the previous hidden state and of the new one (rows of the output sequence, or h0).</summary>
        public int PreviousOffset, OutputOffset;
    }

    /// <summary>
    /// A recurrence (RNN, LSTM, GRU) over a sequence whose input projections x·Wᵀ + b_W are computed for every step at once
    /// beforehand (one GEMM): per step, the recurrent product h·Rᵀ + b_R (the matmul family) and one cell kernel that applies
    /// the gates elementwise over [batch, hidden] and writes h′ straight into the output sequence. On the fast CPU device the
    /// whole sequence runs in one call (<see cref="Cpu.HostRecurrent"/>): a step there is a GEMV of a few thousand
    /// multiply-adds, where the ~15 separate ops of the composed cell cost a microsecond each.
    /// FLOPs per step: 2·batch·gates·hidden² (+ ~10·batch·hidden for the gates). Bytes per step: 4·gates·hidden² (R, from
    /// cache after the first step) + 4·batch·(gates + 3)·hidden.
    /// </summary>
    public static class RecurrentKernels
    {
        /// <summary>The LSTM cell on pre-activations (ONNX order i, o, f, c): returns h′ and updates <paramref name="c"/>.</summary>
        public static float Lstm(float i, float o, float f, float g, ref float c)
        {
            c = MathFn.Sigmoid(f) * c + MathFn.Sigmoid(i) * MathFn.Tanh(g);
            return MathFn.Sigmoid(o) * MathFn.Tanh(c);
        }

        /// <summary>The GRU cell: z and r pre-activations, the candidate's input part and recurrent part (already reset-scaled
        /// when <paramref name="resetAfter"/> is false), and the previous state.</summary>
        public static float Gru(float z, float r, float inputN, float recurrentN, bool resetAfter, float h)
        {
            float n = MathFn.Tanh(inputN + (resetAfter ? MathFn.Sigmoid(r) * recurrentN : recurrentN));
            return n + MathFn.Sigmoid(z) * (h - n);
        }

        /// <summary>
        /// One step over [batch, hidden]: gates from xw (this step's input projection) and hr (h·Rᵀ + b_R, row stride
        /// <see cref="RecurrentStep.ProductStride"/>); for a GRU the candidate's recurrent part from hn; h′ written at
        /// <see cref="RecurrentStep.OutputOffset"/> of <paramref name="hOut"/>; an LSTM's cell state c updated in place.
        /// </summary>
        public static void Step(ArrayView<float> xw, ArrayView<float> hr, ArrayView<float> hn, ArrayView<float> hPrev, ArrayView<float> c,
            ArrayView<float> hOut, RecurrentStep s)
        {
            int total = s.Batch * s.Hidden;
            for (int e = Grid.GlobalIndex.X; e < total; e += Grid.DimX * Group.DimX)
            {
                int b = e / s.Hidden, j = e % s.Hidden, h = s.Hidden;
                int x = s.InputOffset + b * (s.Cell == (int)RecurrentCell.Rnn ? 1 : s.Cell == (int)RecurrentCell.Lstm ? 4 : 3) * h + j;
                int p = b * s.ProductStride + j;
                float next;
                if (s.Cell == (int)RecurrentCell.Lstm)
                {
                    float cell = c[e];
                    next = Lstm(xw[x] + hr[p], xw[x + h] + hr[p + h], xw[x + 2 * h] + hr[p + 2 * h], xw[x + 3 * h] + hr[p + 3 * h], ref cell);
                    c[e] = cell;
                }
                else if (s.Cell == (int)RecurrentCell.Gru)
                    next = Gru(xw[x] + hr[p], xw[x + h] + hr[p + h], xw[x + 2 * h], hn[b * s.CandidateStride + s.CandidateOffset + j], s.ResetAfter != 0,
                        hPrev[s.PreviousOffset + e]);
                else
                    next = MathFn.Tanh(xw[x] + hr[p]);
                hOut[s.OutputOffset + e] = next;
            }
        }

        /// <summary>
        /// A GRU's reset-scaled state (linear_before_reset = 0): rh = σ(x_r + hr_r)·h, the input of the candidate's recurrent
        /// product (rh)·R_nᵀ.
        /// </summary>
        public static void ResetState(ArrayView<float> xw, ArrayView<float> hr, ArrayView<float> hPrev, ArrayView<float> rh, RecurrentStep s)
        {
            int total = s.Batch * s.Hidden;
            for (int e = Grid.GlobalIndex.X; e < total; e += Grid.DimX * Group.DimX)
            {
                int b = e / s.Hidden, j = e % s.Hidden;
                rh[e] = MathFn.Sigmoid(xw[s.InputOffset + b * 3 * s.Hidden + s.Hidden + j] + hr[b * s.ProductStride + s.Hidden + j]) * hPrev[s.PreviousOffset + e];
            }
        }

        /// <summary>Input weights (gates·hidden × input floats) up to which the fast CPU's recurrence computes the input
        /// projections itself (<see cref="Cpu.HostRecurrent.Input"/>): they stay in L1 beside the recurrent weights, where
        /// larger ones are better served by one matrix product over the whole sequence.</summary>
        internal const int InlineProjectionFloats = 1 << 14;

        /// <summary>Whether <paramref name="device"/> computes a recurrence's input projections inside the recurrence call
        /// for input weights of <paramref name="weights"/> floats.</summary>
        internal static bool ProjectsInline(Device device, long weights) => device.IsHostCpu && weights <= InlineProjectionFloats;

        /// <summary>Gates per cell.</summary>
        public static int Gates(RecurrentCell cell) => cell switch { RecurrentCell.Lstm => 4, RecurrentCell.Gru => 3, _ => 1 };

        /// <summary>
        /// The recurrence over xw [seq, batch, gates·hidden] into y [seq, batch, hidden], from h0 (and c0: <paramref name="c"/>
        /// holds it on entry and the last cell state on return); y's last row (first, when reversed) is the final state.
        /// Arguments are validated by the op.
        /// </summary>
        internal static void RunSequence(Device device, RecurrentCell cell, Tensor? xw, Tensor? x, Tensor? w, Tensor? wb, Tensor r, Tensor? rb, Tensor h0,
            Tensor c, Tensor y, bool reverse, bool resetAfter)
        {
            const string op = "recurrence";
            var sequence = xw ?? x!;
            int seq = sequence.Size(0), batch = sequence.Size(1), hidden = h0.Size(1), gates = Gates(cell);
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        var input = x is null ? default : new Cpu.HostRecurrent.Input(Cpu.HostMemory.Ptr(x), Cpu.HostMemory.Ptr(w!), wb is null ? null : Cpu.HostMemory.Ptr(wb), x.Size(2));
                        Cpu.HostRecurrent.Run(cell, xw is null ? null : Cpu.HostMemory.Ptr(xw), input, Cpu.HostMemory.Ptr(r), rb is null ? null : Cpu.HostMemory.Ptr(rb),
                            Cpu.HostMemory.Ptr(h0), Cpu.HostMemory.Ptr(c), Cpu.HostMemory.Ptr(y), seq, batch, hidden, reverse, resetAfter);
                    }
                return;
            }
            if (xw is null)
                throw new InvalidOperationException("recurrence: the input projection is computed in the kernel only on the fast CPU");
            // A GRU resetting before its candidate's product multiplies z and r's rows of R first, the candidate's after.
            bool split = cell == RecurrentCell.Gru && !resetAfter;
            int productWidth = split ? 2 * hidden : gates * hidden;
            Tensor Rows(Tensor t, int start, int count) =>
                t.Rank == 1 ? t.View(op, new[] { count }, new[] { 1 }, t.Offset + start) : t.View(op, new[] { count, hidden }, new[] { hidden, 1 }, t.Offset + (long)start * hidden);
            using var rProduct = Rows(r, 0, productWidth);
            using var bProduct = rb is null ? null : Rows(rb, 0, productWidth);
            using var rCandidate = split ? Rows(r, productWidth, hidden) : null;
            using var bCandidate = split && rb is not null ? Rows(rb, productWidth, hidden) : null;
            using var hr = Tensor.Empty(device, batch, productWidth);
            using var hn = split ? Tensor.Empty(device, batch, hidden) : null;
            using var rh = split ? Tensor.Empty(device, batch, hidden) : null;
            var config = LaunchShapes.Linear(device, (long)batch * hidden, 256);
            for (int step = 0; step < seq; step++)
            {
                int t = reverse ? seq - 1 - step : step, previous = reverse ? t + 1 : t - 1;
                bool first = step == 0;
                using var h = first ? h0.Alias() : y.View(op, new[] { batch, hidden }, new[] { hidden, 1 }, y.Offset + (long)previous * batch * hidden);
                MatMulKernels.Run(op, h, rProduct, false, true, Array.Empty<int>(), batch, productWidth, hidden, 1f, 0f, hr, bProduct, FusedActivation.None, MatMulTile.Auto);
                var s = new RecurrentStep
                {
                    Batch = batch, Hidden = hidden, Cell = (int)cell, ResetAfter = resetAfter ? 1 : 0, InputOffset = t * batch * gates * hidden,
                    ProductStride = productWidth, CandidateStride = split ? hidden : productWidth, CandidateOffset = split ? 0 : 2 * hidden,
                    PreviousOffset = first ? 0 : previous * batch * hidden, OutputOffset = t * batch * hidden,
                };
                var previousView = first ? h0.ContiguousView : y.ContiguousView;
                if (split)
                {
                    device.Launch(op, ResetState, config, xw.ContiguousView, hr.ContiguousView, previousView, rh!.ContiguousView, s);
                    MatMulKernels.Run(op, rh, rCandidate!, false, true, Array.Empty<int>(), batch, hidden, hidden, 1f, 0f, hn!, bCandidate, FusedActivation.None, MatMulTile.Auto);
                }
                device.Launch(op, Step, config, xw.ContiguousView, hr.ContiguousView, (hn ?? hr).ContiguousView, previousView, c.ContiguousView, y.ContiguousView, s);
            }
        }
    }
}

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// A whole recurrence on the fast CPU device in one call (see <see cref="RecurrentKernels"/>): per step the recurrent
/// product h·Rᵀ + b_R through <see cref="HostGemm"/> (a GEMV for one sequence) into a per-thread buffer, then the gates of
/// <see cref="RecurrentKernels.Lstm"/> / <see cref="RecurrentKernels.Gru"/> over [batch, hidden], h′ written into its row
/// of y, which the next step reads as h. Nothing is allocated or dispatched per step.
/// </summary>
internal static unsafe class HostRecurrent
{
    private const int ProductSlot = 5, CandidateSlot = 6, ResetSlot = 7;

    public static void Run(RecurrentCell cell, float* xw, float* r, float* rb, float* h0, float* c, float* y, int seq, int batch, int hidden, bool reverse,
        bool resetAfter)
    {
        int gates = RecurrentKernels.Gates(cell);
        bool split = cell == RecurrentCell.Gru && !resetAfter;
        int width = split ? 2 * hidden : gates * hidden, stateSize = batch * hidden;
        float* hr = HostScratch.Get(ProductSlot, (long)batch * width);
        float* hn = split ? HostScratch.Get(CandidateSlot, stateSize) : null;
        float* rh = split ? HostScratch.Get(ResetSlot, stateSize) : null;
        var single = Layout6.Create("recurrence", new[] { 1 }, new[] { 0 });
        GemmParams Product(int n) => new()
        {
            M = batch, N = n, K = hidden, StrideAm = hidden, StrideAk = 1, StrideBk = 1, StrideBn = hidden, Alpha = 1, Beta = 0, HasBias = rb == null ? 0 : 1,
        };
        var product = Product(width);
        var candidate = Product(hidden);
        for (int step = 0; step < seq; step++)
        {
            int t = reverse ? seq - 1 - step : step;
            float* h = step == 0 ? h0 : y + (long)(reverse ? t + 1 : t - 1) * stateSize;
            float* x = xw + (long)t * batch * gates * hidden, output = y + (long)t * stateSize;
            HostGemm.Run(h, r, hr, rb, product, single, single, 1, default(ElementwiseOps.Identity));
            if (split)
            {
                // (σ(r)·h)·R_nᵀ + b_n: the candidate's product needs the reset gate first.
                for (int b = 0; b < batch; b++)
                    for (int j = 0; j < hidden; j++)
                        rh[b * hidden + j] = MathFn.Sigmoid(x[b * 3 * hidden + hidden + j] + hr[b * width + hidden + j]) * h[b * hidden + j];
                HostGemm.Run(rh, r + (long)width * hidden, hn, rb == null ? null : rb + width, candidate, single, single, 1, default(ElementwiseOps.Identity));
            }
            for (int b = 0; b < batch; b++)
            {
                float* xr = x + (long)b * gates * hidden, pr = hr + (long)b * width, hb = h + (long)b * hidden, ob = output + (long)b * hidden;
                for (int j = 0; j < hidden; j++)
                {
                    switch (cell)
                    {
                        case RecurrentCell.Lstm:
                            ob[j] = RecurrentKernels.Lstm(xr[j] + pr[j], xr[hidden + j] + pr[hidden + j], xr[2 * hidden + j] + pr[2 * hidden + j],
                                xr[3 * hidden + j] + pr[3 * hidden + j], ref c[b * hidden + j]);
                            break;
                        case RecurrentCell.Gru:
                            ob[j] = RecurrentKernels.Gru(xr[j] + pr[j], xr[hidden + j] + pr[hidden + j], xr[2 * hidden + j],
                                split ? hn[b * hidden + j] : pr[2 * hidden + j], resetAfter, hb[j]);
                            break;
                        default:
                            ob[j] = MathFn.Tanh(xr[j] + pr[j]);
                            break;
                    }
                }
            }
        }
    }
}

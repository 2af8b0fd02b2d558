namespace GpuNet.Kernels.Reference;

/// <summary>
/// ONNX's RNN, LSTM and GRU equations (onnx/docs/Operators.md, default activations) in double precision, written out per
/// gate from the input projections: the reference of the <c>recurrence</c> kernel.
/// </summary>
public static class RecurrentReference
{
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    /// <summary>(y [seq, batch, hidden], final h, final c) for xw [seq, batch, gates·hidden], r [gates·hidden, hidden], rb.</summary>
    public static (double[] Y, double[] H, double[] C) Run(RecurrentCell cell, double[] xw, double[] r, double[]? rb, double[] h0, double[]? c0, int seq, int batch,
        int hidden, bool reverse, bool linearBeforeReset)
    {
        int gates = RecurrentKernels.Gates(cell);
        var y = new double[seq * batch * hidden];
        var h = (double[])h0.Clone();
        var c = (double[]?)c0?.Clone() ?? new double[batch * hidden];
        // h·R_gᵀ + Rb_g for gate g, row b, unit j (v: the state it multiplies).
        double Recurrent(double[] v, int b, int g, int j)
        {
            double s = rb?[g * hidden + j] ?? 0;
            for (int k = 0; k < hidden; k++)
                s += v[b * hidden + k] * r[(g * hidden + j) * hidden + k];
            return s;
        }
        for (int step = 0; step < seq; step++)
        {
            int t = reverse ? seq - 1 - step : step;
            double X(int b, int g, int j) => xw[(t * batch + b) * gates * hidden + g * hidden + j];
            var next = new double[batch * hidden];
            var nextC = (double[])c.Clone();
            for (int b = 0; b < batch; b++)
            {
                var reset = new double[batch * hidden];
                if (cell == RecurrentCell.Gru)
                    for (int j = 0; j < hidden; j++)
                        reset[b * hidden + j] = Sigmoid(X(b, 1, j) + Recurrent(h, b, 1, j)) * h[b * hidden + j];
                for (int j = 0; j < hidden; j++)
                {
                    int e = b * hidden + j;
                    switch (cell)
                    {
                        case RecurrentCell.Lstm:
                            double i = Sigmoid(X(b, 0, j) + Recurrent(h, b, 0, j)), o = Sigmoid(X(b, 1, j) + Recurrent(h, b, 1, j));
                            double f = Sigmoid(X(b, 2, j) + Recurrent(h, b, 2, j)), g = Math.Tanh(X(b, 3, j) + Recurrent(h, b, 3, j));
                            nextC[e] = f * c[e] + i * g;
                            next[e] = o * Math.Tanh(nextC[e]);
                            break;
                        case RecurrentCell.Gru:
                            double z = Sigmoid(X(b, 0, j) + Recurrent(h, b, 0, j)), rg = Sigmoid(X(b, 1, j) + Recurrent(h, b, 1, j));
                            double n = Math.Tanh(X(b, 2, j) + (linearBeforeReset ? rg * Recurrent(h, b, 2, j) : Recurrent(reset, b, 2, j)));
                            next[e] = (1 - z) * n + z * h[e];
                            break;
                        default:
                            next[e] = Math.Tanh(X(b, 0, j) + Recurrent(h, b, 0, j));
                            break;
                    }
                }
            }
            Array.Copy(next, 0, y, t * batch * hidden, batch * hidden);
            h = next;
            c = nextC;
        }
        return (y, h, c);
    }
}

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// Selection ops on the fast CPU device — top-k gating and nearest-code search — one row per loop iteration, rows split
/// across cores. Each follows its GPU kernel's arithmetic in the same order (softmax weights as exp(l − max)/Σ, squared
/// distances summed along d), so ties and near-ties resolve exactly as on the GPU: lower index first.
/// </summary>
internal static unsafe class HostSelect
{
    private static bool After(float v, int j, float pv, int pj) => v < pv || (v == pv && j > pj);

    /// <summary>Softmax over each token's expert logits, the k largest (value descending, index ascending), renormalized.</summary>
    public static void TopKGating(float* logits, float* weights, float* indices, int tokens, int experts, int k)
    {
        HostParallel.For(tokens, (long)experts * (k + 2), (start, end) =>
        {
            for (int t = start; t < end; t++)
            {
                float* row = logits + (long)t * experts;
                float max = float.NegativeInfinity, sum = 0f;
                for (int j = 0; j < experts; j++)
                    max = Math.Max(max, row[j]);
                for (int j = 0; j < experts; j++)
                    sum += MathF.Exp(row[j] - max);
                float prevV = float.PositiveInfinity, picked = 0f;
                int prevJ = -1;
                for (int r = 0; r < k; r++)
                {
                    float bestV = float.NegativeInfinity;
                    int bestJ = int.MaxValue;
                    for (int j = 0; j < experts; j++)
                    {
                        float v = MathF.Exp(row[j] - max) / sum;
                        if (After(v, j, prevV, prevJ) && (bestJ == int.MaxValue || After(bestV, bestJ, v, j)))
                        {
                            bestV = v;
                            bestJ = j;
                        }
                    }
                    weights[(long)t * k + r] = bestV;
                    indices[(long)t * k + r] = bestJ;
                    picked += bestV;
                    prevV = bestV;
                    prevJ = bestJ;
                }
                for (int r = 0; r < k; r++)
                    weights[(long)t * k + r] /= picked;
            }
        });
    }

    /// <summary>o[n] = argmin_k Σ_d (x[n, d] − codebook[k, d])², ties to the lower index.</summary>
    public static void Nearest(float* x, float* codebook, float* o, int rows, int codes, int dim)
    {
        HostParallel.For(rows, (long)codes * dim, (start, end) =>
        {
            for (int n = start; n < end; n++)
            {
                float* xr = x + (long)n * dim;
                float best = float.PositiveInfinity;
                int bestIndex = -1;
                for (int c = 0; c < codes; c++)
                {
                    float* cr = codebook + (long)c * dim;
                    float d2 = 0f;
                    for (int d = 0; d < dim; d++)
                    {
                        float diff = xr[d] - cr[d];
                        d2 += diff * diff;
                    }
                    if (bestIndex < 0 || d2 < best)
                    {
                        best = d2;
                        bestIndex = c;
                    }
                }
                o[n] = bestIndex;
            }
        });
    }
}

using System.Runtime.Intrinsics;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// The optimizer steps on the fast CPU device. Adam and SGD (the common ones) run as Vector256 loops with the kernels'
/// formulas and order of operations, chunks split across cores; their scalar tails and the other optimizers run the kernels'
/// per-element bodies (<see cref="OptimizerKernels"/>), so the host cannot drift from the GPU.
/// </summary>
internal static unsafe class HostOptimizers
{
    public static void Adam(ILGPU.ArrayView<float> pv, ILGPU.ArrayView<float> gv, ILGPU.ArrayView<float> mv, ILGPU.ArrayView<float> vv, ILGPU.ArrayView<float> xv,
        AdamStep h, int n)
    {
        float* p = HostMemory.Ptr(pv), g = HostMemory.Ptr(gv), m = HostMemory.Ptr(mv), v = HostMemory.Ptr(vv), vMax = HostMemory.Ptr(xv);
        const int Chunk = 4096;
        HostParallel.For((n + Chunk - 1) / Chunk, 10L * Chunk, (start, end) =>
        {
            int i = start * Chunk, stop = Math.Min(n, end * Chunk);
            if (Vector256.IsHardwareAccelerated)
            {
                var (b1, b2) = (Vector256.Create(h.Beta1), Vector256.Create(h.Beta2));
                var (c1, c2) = (Vector256.Create(1f - h.Beta1), Vector256.Create(1f - h.Beta2));
                var (decay, wd) = (Vector256.Create(1f - h.Lr * h.WeightDecay), Vector256.Create(h.WeightDecay));
                var (bc2, eps, step) = (Vector256.Create(h.BiasCorrection2Sqrt), Vector256.Create(h.Eps), Vector256.Create(h.Lr / h.BiasCorrection1));
                for (; i + 8 <= stop; i += 8)
                {
                    var param = Vector256.Load(p + i);
                    var grad = Vector256.Load(g + i);
                    if (h.Decoupled != 0)
                        param *= decay;
                    else
                        grad += wd * param;
                    var mi = b1 * Vector256.Load(m + i) + c1 * grad;
                    var vi = b2 * Vector256.Load(v + i) + c2 * grad * grad;
                    Vector256.Store(mi, m + i);
                    Vector256.Store(vi, v + i);
                    if (h.AmsGrad != 0)
                    {
                        vi = Vector256.Max(Vector256.Load(vMax + i), vi);
                        Vector256.Store(vi, vMax + i);
                    }
                    Vector256.Store(param - step * mi / (Vector256.Sqrt(vi) / bc2 + eps), p + i);
                }
            }
            for (; i < stop; i++)
                OptimizerKernels.AdamAt(pv, gv, mv, vv, xv, h, i);
        });
    }

    public static void Sgd(ILGPU.ArrayView<float> pv, ILGPU.ArrayView<float> gv, ILGPU.ArrayView<float> bv, SgdStep h, int n)
    {
        float* p = HostMemory.Ptr(pv), g = HostMemory.Ptr(gv), buffer = HostMemory.Ptr(bv);
        const int Chunk = 4096;
        HostParallel.For((n + Chunk - 1) / Chunk, 5L * Chunk, (start, end) =>
        {
            int i = start * Chunk, stop = Math.Min(n, end * Chunk);
            if (Vector256.IsHardwareAccelerated)
            {
                var (wd, momentum, damp, lr) = (Vector256.Create(h.WeightDecay), Vector256.Create(h.Momentum), Vector256.Create(1f - h.Dampening), Vector256.Create(h.Lr));
                for (; i + 8 <= stop; i += 8)
                {
                    var param = Vector256.Load(p + i);
                    var d = Vector256.Load(g + i) + wd * param;
                    if (h.Momentum != 0f)
                    {
                        var b = h.FirstStep != 0 ? d : momentum * Vector256.Load(buffer + i) + damp * d;
                        Vector256.Store(b, buffer + i);
                        d = h.Nesterov != 0 ? d + momentum * b : b;
                    }
                    Vector256.Store(param - lr * d, p + i);
                }
            }
            for (; i < stop; i++)
                OptimizerKernels.SgdAt(pv, gv, bv, h, i);
        });
    }
}

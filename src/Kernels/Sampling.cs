using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using GpuNet.Kernels.Cpu;

namespace GpuNet.Kernels
{
    /// <summary>Parameters of one sampling launch (kernel parameter).</summary>
    public struct SampleParams
    {
        /// <summary>Rows, vocabulary, and the step between rows (0: one row shared by all).</summary>
        public int Rows, Vocab, RowStride;

        /// <summary>Softmax temperature; 0 samples greedily (arg-max, ties to the lower id).</summary>
        public float Temperature;

        /// <summary>Keep the k most probable tokens (0: all).</summary>
        public int TopK;

        /// <summary>Keep the smallest most-probable set whose mass reaches TopP (1: all).</summary>
        public float TopP;

        /// <summary>Philox seed; row r draws word r.</summary>
        public ulong Seed;
    }

    /// <summary>
    /// The random family, all on the counter-based Philox 4×32-10 stream of <see cref="Philox"/> (element or row i draws
    /// word i, so a seed gives the same numbers whatever the device, thread count or launch shape): <c>random_uniform</c>,
    /// <c>random_normal</c> (Box–Muller on word pairs), <c>dropout</c> (mask u ≥ p, survivors scaled by 1/(1 − p)) and
    /// <c>sample</c>.
    /// <para><b>Sampling</b> (<see cref="Sample"/>): one thread per row walks the vocabulary in index order, so every
    /// sum has one fixed order on every device. With weights e_j = exp((x_j − max)/T) ∈ (0, 1]: top-k keeps e_j ≥ τ_k, the
    /// k-th largest weight, found exactly by bisection over the IEEE bit patterns of positive floats (their integer order
    /// is their value order: 31 counting passes); top-p keeps e_j ≥ τ_p, the largest threshold whose kept mass reaches
    /// TopP (bisection on the same bits over the mass). Ties at a threshold are all kept. The token is the first index
    /// where the running kept mass exceeds u·(total kept mass), u the row's Philox word. One thread per row is the
    /// honest cost of device-independence (≈ 64·V operations per row); a split-vocabulary variant is future work.</para>
    /// </summary>
    public static class SamplingKernels
    {
        /// <summary>o[i] = low + (high − low)·u_i.</summary>
        public static void Uniform(ArrayView<float> o, ulong seed, float low, float high, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                UniformAt(o, seed, low, high, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Uniform"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void UniformAt(ArrayView<float> o, ulong seed, float low, float high, int i)
        {
            o[i] = low + (high - low) * Philox.ToUniform(Philox.Word(seed, i));
        }

        /// <summary>o[2p], o[2p+1] = mean + std·√(−2 ln u₁)·(cos, sin)(2π u₂) with u₁ from word 2p (in (0, 1]) and u₂ from word 2p + 1.</summary>
        public static void Normal(ArrayView<float> o, ulong seed, float mean, float std, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                NormalAt(o, seed, mean, std, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Normal"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void NormalAt(ArrayView<float> o, ulong seed, float mean, float std, int i)
        {
            int pair = i & ~1;
            float u1 = ((Philox.Word(seed, pair) >> 8) + 1f) * (1f / 16777216f);
            float u2 = (Philox.Word(seed, pair + 1) >> 8) * (1f / 16777216f);
            float r = MathF.Sqrt(-2f * MathF.Log(u1));
            // 2π·u₂ lies in [0, 2π): no large-argument trouble for the fast sine.
            float angle = 6.2831853071795864769f * u2;
            o[i] = mean + std * r * ((i & 1) == 0 ? MathF.Cos(angle) : MathF.Sin(angle));
        }

        /// <summary>Inverted dropout: mask[i] = u_i ≥ p, y[i] = mask·x[i]/(1 − p).</summary>
        public static void Dropout(ArrayView<float> x, ArrayView<float> y, ArrayView<float> mask, ulong seed, float p, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                DropoutAt(x, y, mask, seed, p, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Dropout"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void DropoutAt(ArrayView<float> x, ArrayView<float> y, ArrayView<float> mask, ulong seed, float p, int i)
        {
            float scale = 1f / (1f - p);
            bool keep = Philox.ToUniform(Philox.Word(seed, i)) >= p;
            mask[i] = keep ? 1f : 0f;
            y[i] = keep ? x[i] * scale : 0f;
        }

        /// <summary>The backward of <see cref="Dropout"/> from its seed alone: dx[i] = dy[i]/(1 − p) where the regenerated Philox draw kept i, else 0.</summary>
        public static void DropoutBackward(ArrayView<float> dy, ArrayView<float> dx, ulong seed, float p, int n)
        {
            for (int i = Grid.GlobalIndex.X; i < n; i += Grid.DimX * Group.DimX)
                DropoutBackwardAt(dy, dx, seed, p, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="DropoutBackward"/> (shared with the host loop).</summary>
        public static void DropoutBackwardAt(ArrayView<float> dy, ArrayView<float> dx, ulong seed, float p, int i) =>
            dx[i] = Philox.ToUniform(Philox.Word(seed, i)) >= p ? dy[i] * (1f / (1f - p)) : 0f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static int Bits(float value) => (int)Interop.FloatAsInt(value);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float FromBits(int bits) => Interop.IntAsFloat((uint)bits);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float Weight(ArrayView<float> logits, int at, float max, float temperature) => MathF.Exp((logits[at] - max) / temperature);

        /// <summary>Samples one token id per row of logits (see the class summary); ids are written as floats.</summary>
        public static void Sample(ArrayView<float> logits, ArrayView<float> tokens, SampleParams p)
        {
            for (int row = Grid.GlobalIndex.X; row < p.Rows; row += Grid.DimX * Group.DimX)
                SampleAt(logits, tokens, p, row);
        }

        /// <summary>Element <paramref name="row"/> of <see cref="Sample"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void SampleAt(ArrayView<float> logits, ArrayView<float> tokens, SampleParams p, int row)
        {
            int start = row * p.RowStride;
            float max = float.NegativeInfinity;
            int best = 0;
            for (int j = 0; j < p.Vocab; j++)
            {
                float v = logits[start + j];
                if (v > max)
                {
                    max = v;
                    best = j;
                }
            }
            if (p.Temperature <= 0f || max == float.NegativeInfinity)
            {
                tokens[row] = best;
                return;
            }

            // Weights are in (0, 1]; as non-negative floats their bit patterns order like their values.
            int lo = 0, hi = Bits(1f) + 1; // invariant: threshold bits in [lo, hi)
            if (p.TopK > 0 && p.TopK < p.Vocab)
            {
                // Largest τ with count(e ≥ τ) ≥ k: τ is then the k-th largest weight.
                while (hi - lo > 1)
                {
                    int mid = lo + (hi - lo) / 2;
                    float tau = FromBits(mid);
                    int count = 0;
                    for (int j = 0; j < p.Vocab; j++)
                        count += Weight(logits, start + j, max, p.Temperature) >= tau ? 1 : 0;
                    if (count >= p.TopK)
                        lo = mid;
                    else
                        hi = mid;
                }
            }
            float kThreshold = FromBits(lo);
            if (p.TopP < 1f)
            {
                float total = 0f;
                for (int j = 0; j < p.Vocab; j++)
                {
                    float e = Weight(logits, start + j, max, p.Temperature);
                    total += e >= kThreshold ? e : 0f;
                }
                float need = p.TopP * total;
                int plo = lo, phi = Bits(1f) + 1;
                // Largest τ ≥ τ_k whose kept mass Σ_{e ≥ τ} e still reaches TopP of the total.
                while (phi - plo > 1)
                {
                    int mid = plo + (phi - plo) / 2;
                    float tau = FromBits(mid);
                    float mass = 0f;
                    for (int j = 0; j < p.Vocab; j++)
                    {
                        float e = Weight(logits, start + j, max, p.Temperature);
                        mass += e >= tau ? e : 0f;
                    }
                    if (mass >= need)
                        plo = mid;
                    else
                        phi = mid;
                }
                lo = plo;
            }
            float threshold = FromBits(lo);
            float kept = 0f;
            for (int j = 0; j < p.Vocab; j++)
            {
                float e = Weight(logits, start + j, max, p.Temperature);
                kept += e >= threshold ? e : 0f;
            }
            float target = Philox.ToUniform(Philox.Word(p.Seed, row)) * kept, running = 0f;
            int token = best;
            for (int j = 0; j < p.Vocab; j++)
            {
                float e = Weight(logits, start + j, max, p.Temperature);
                if (e < threshold)
                    continue;
                running += e;
                token = j;
                if (running > target)
                    break;
            }
            tokens[row] = token;
        }

        /// <summary>Inverted dropout of n elements: the fast CPU's parallel loop over <see cref="DropoutAt"/>, else the kernel <see cref="Dropout"/>.</summary>
        internal static void RunDropout(string op, Device device, ArrayView<float> x, ArrayView<float> y, ArrayView<float> mask, ulong seed, float p, int n)
        {
            if (Cpu.HostParallel.Elements(device, op, n, 16, i => DropoutAt(x, y, mask, seed, p, i)))
                return;
            device.Launch(op, Dropout, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), x, y, mask, seed, p, n);
        }

        /// <summary>The dropout gradient of n elements (the mask regenerated): the fast CPU's parallel loop over <see cref="DropoutBackwardAt"/>, else the kernel <see cref="DropoutBackward"/>.</summary>
        internal static void RunDropoutBackward(string op, Device device, ArrayView<float> dy, ArrayView<float> dx, ulong seed, float p, int n)
        {
            if (Cpu.HostParallel.Elements(device, op, n, 16, i => DropoutBackwardAt(dy, dx, seed, p, i)))
                return;
            device.Launch(op, DropoutBackward, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), dy, dx, seed, p, n);
        }

        /// <summary>Fills n elements from Philox stream <paramref name="seed"/> — Box–Muller normals (mean a, deviation b) when
        /// <paramref name="normal"/>, else uniforms in [a, b): the fast CPU's block fill (<see cref="Cpu.HostSampling"/>), else
        /// the kernel <see cref="Normal"/> or <see cref="Uniform"/>.</summary>
        internal static unsafe void RunRandom(string op, Device device, bool normal, ArrayView<float> o, ulong seed, float a, float b, int n)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                {
                    if (normal)
                        Cpu.HostSampling.FillNormal(Cpu.HostMemory.Ptr(o), n, seed, a, b);
                    else
                        Cpu.HostSampling.FillUniform(Cpu.HostMemory.Ptr(o), n, seed, a, b);
                }
                return;
            }
            device.Launch(op, normal ? Normal : Uniform, LaunchShapes.Linear(device, n, LaunchShapes.ElementwiseGroup(device)), o, seed, a, b, n);
        }

        /// <summary>One token per row of logits: the fast CPU's parallel loop over <see cref="SampleAt"/>, else the kernel <see cref="Sample"/>.</summary>
        internal static void RunSample(string op, Device device, ArrayView<float> logits, ArrayView<float> tokens, SampleParams p)
        {
            if (Cpu.HostParallel.Elements(device, op, p.Rows, 4L * p.Vocab, row => SampleAt(logits, tokens, p, row)))
                return;
            device.Launch(op, Sample, LaunchShapes.Linear(device, p.Rows, LaunchShapes.ElementwiseGroup(device)), logits, tokens, p);
        }
    }
}

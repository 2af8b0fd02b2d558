using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using GpuNet.Kernels.Cpu;

namespace GpuNet.Kernels
{
    /// <summary>
    /// The MoE routing family: <c>topk_gating</c>, <c>moe_route</c>, <c>moe_dispatch</c>, <c>moe_combine</c>.
    /// <para><b>Gating</b> (<see cref="TopKGating"/>): one warp per token. The router row (E ≤ 256) is read with lanes
    /// striding over experts: a warp max and sum give the softmax; then k rounds (k ≤ 8) each pick, with a warp
    /// arg-max, the best expert strictly after the previous pick in the total order (probability descending, index
    /// ascending) — so ties go to the lower index and no selected set is kept. Weights are renormalized over the k picks.</para>
    /// <para><b>Routing</b>: assignments are (token, slot) pairs in token order. <see cref="RouteCount"/> (a thread per
    /// expert) counts them, <see cref="RouteScan"/> caps each count at the capacity and prefix-sums the kept counts into
    /// offsets, <see cref="RouteAssign"/> walks the assignments again per expert giving each its row in the expert-sorted
    /// order (−1 when over capacity: the later tokens are the ones dropped) and recording which token fills each row. All
    /// of it is deterministic: no atomics, the same result on every device.</para>
    /// <para><b>Dispatch / combine</b> are gathers: dispatched[row] = x[token of row]; y[t] = Σ_slots w[t, s]·out[row(t, s)].</para>
    /// Bytes: gating 4·T·E + 8·T·k; dispatch/combine 8·rows·D. FLOPs: gating ≈ (k + 3)·T·E; combine 2·T·k·D.
    /// </summary>
    public static class RoutingKernels
    {
        /// <summary>Is (v, j) strictly after (pv, pj) in (value descending, index ascending) order?</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool After(float v, int j, float pv, int pj) => v < pv || (v == pv && j > pj);

        /// <summary>An expert's probability and index, shuffled together in the top-k search.</summary>
        private struct Candidate
        {
            public float Value;
            public int Index;
        }

        /// <summary>Top-k gating of router logits [T, E] into weights [T, k] and expert indices [T, k] (as floats).</summary>
        public static void TopKGating(ArrayView<float> logits, ArrayView<float> weights, ArrayView<float> indices, int tokens, int experts, int k)
        {
            int lane = Warp.LaneIdx;
            int warpsPerGroup = Group.DimX / Warp.WarpSize;
            for (int t = Grid.IdxX * warpsPerGroup + Warp.WarpIdx; t < tokens; t += Grid.DimX * warpsPerGroup)
            {
                int row = t * experts;
                float max = float.NegativeInfinity;
                for (int j = lane; j < experts; j += Warp.WarpSize)
                    max = IntrinsicMath.Max(max, logits[row + j]);
                for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
                    max = IntrinsicMath.Max(max, Warp.ShuffleXor(max, delta));
                float sum = 0f;
                for (int j = lane; j < experts; j += Warp.WarpSize)
                    sum += MathF.Exp(logits[row + j] - max);
                for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
                    sum += Warp.ShuffleXor(sum, delta);

                float prevV = float.PositiveInfinity, picked = 0f;
                int prevJ = -1;
                for (int r = 0; r < k; r++)
                {
                    float bestV = float.NegativeInfinity;
                    int bestJ = int.MaxValue;
                    for (int j = lane; j < experts; j += Warp.WarpSize)
                    {
                        float v = MathF.Exp(logits[row + j] - max) / sum;
                        if (After(v, j, prevV, prevJ) && (bestJ == int.MaxValue || After(bestV, bestJ, v, j)))
                        {
                            bestV = v;
                            bestJ = j;
                        }
                    }
                    for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
                    {
                        // Value and index travel as one pair: the same two 32-bit shuffles on a GPU, one rendezvous of the
                        // warp's threads on the simulated GPU instead of two.
                        var other = Warp.ShuffleXor(new Candidate { Value = bestV, Index = bestJ }, delta);
                        if (other.Index != int.MaxValue && (bestJ == int.MaxValue || After(bestV, bestJ, other.Value, other.Index)))
                        {
                            bestV = other.Value;
                            bestJ = other.Index;
                        }
                    }
                    if (lane == 0)
                    {
                        weights[t * k + r] = bestV;
                        indices[t * k + r] = bestJ;
                    }
                    picked += bestV;
                    prevV = bestV;
                    prevJ = bestJ;
                }
                if (lane == 0)
                    for (int r = 0; r < k; r++)
                        weights[t * k + r] /= picked;
            }
        }

        /// <summary>counts[e] = number of assignments (of <paramref name="assignments"/> = T·k) to expert e.</summary>
        public static void RouteCount(ArrayView<float> indices, ArrayView<int> counts, int assignments, int experts)
        {
            for (int e = Grid.GlobalIndex.X; e < experts; e += Grid.DimX * Group.DimX)
                RouteCountAt(indices, counts, assignments, e);
        }

        /// <summary>Element <paramref name="e"/> of <see cref="RouteCount"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void RouteCountAt(ArrayView<float> indices, ArrayView<int> counts, int assignments, int e)
        {
            int n = 0;
            for (int a = 0; a < assignments; a++)
                n += (int)indices[a] == e ? 1 : 0;
            counts[e] = n;
        }

        /// <summary>One thread: kept[e] = min(counts[e], capacity); offsets = exclusive prefix sum of kept (E + 1 entries).</summary>
        public static void RouteScan(ArrayView<int> counts, ArrayView<int> offsets, int experts, int capacity)
        {
            if (Grid.GlobalIndex.X == 0)
                RouteScanSerial(counts, offsets, experts, capacity);
        }

        /// <summary>The scan of <see cref="RouteScan"/>, run by its one thread (and by the fast CPU device as it is).</summary>
        public static void RouteScanSerial(ArrayView<int> counts, ArrayView<int> offsets, int experts, int capacity)
        {
            int running = 0;
            for (int e = 0; e < experts; e++)
            {
                offsets[e] = running;
                int kept = IntrinsicMath.Min(counts[e], capacity);
                counts[e] = kept;
                running += kept;
            }
            offsets[experts] = running;
        }

        /// <summary>positions[a] = offsets[e] + rank of assignment a among e's (−1 past capacity); tokenOf[row] = the assignment's token.</summary>
        public static void RouteAssign(ArrayView<float> indices, ArrayView<int> offsets, ArrayView<int> positions, ArrayView<int> tokenOf,
            int assignments, int experts, int k, int capacity)
        {
            for (int e = Grid.GlobalIndex.X; e < experts; e += Grid.DimX * Group.DimX)
                RouteAssignAt(indices, offsets, positions, tokenOf, assignments, k, capacity, e);
        }

        /// <summary>Element <paramref name="e"/> of <see cref="RouteAssign"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void RouteAssignAt(ArrayView<float> indices, ArrayView<int> offsets, ArrayView<int> positions, ArrayView<int> tokenOf,
            int assignments, int k, int capacity, int e)
        {
            int rank = 0, start = offsets[e];
            for (int a = 0; a < assignments; a++)
            {
                if ((int)indices[a] != e)
                    continue;
                if (rank < capacity)
                {
                    positions[a] = start + rank;
                    tokenOf[start + rank] = a / k;
                }
                else
                    positions[a] = -1;
                rank++;
            }
        }

        /// <summary>dispatched[r, :] = x[tokenOf[r], :] for the first rows = offsets[E] rows; the rest are zero.</summary>
        public static void Dispatch(ArrayView<float> x, ArrayView<int> tokenOf, ArrayView<int> offsets, ArrayView<float> dispatched, int experts, int d, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                DispatchAt(x, tokenOf, offsets, dispatched, experts, d, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Dispatch"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void DispatchAt(ArrayView<float> x, ArrayView<int> tokenOf, ArrayView<int> offsets, ArrayView<float> dispatched, int experts, int d, int i)
        {
            int r = i / d, c = i - r * d;
            dispatched[i] = r < offsets[experts] ? x[tokenOf[r] * d + c] : 0f;
        }

        /// <summary>
        /// The gating backward over [T, E]: the renormalized top-k weights are a softmax over the selected logits only (the full
        /// softmax's denominator cancels), so dlogit_j = w_s·(g_s − Σ_s' g_s'·w_s') for the expert j picked in slot s, 0 for the others.
        /// </summary>
        public static void TopKGatingBackward(ArrayView<float> weights, ArrayView<float> indices, ArrayView<float> g, ArrayView<float> dLogits, int k, int experts, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                TopKGatingBackwardAt(weights, indices, g, dLogits, k, experts, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="TopKGatingBackward"/> (shared with the host loop).</summary>
        public static void TopKGatingBackwardAt(ArrayView<float> weights, ArrayView<float> indices, ArrayView<float> g, ArrayView<float> dLogits, int k, int experts, int i)
        {
            int t = i / experts, j = i - t * experts;
            float dot = 0f, own = 0f, gOwn = 0f;
            bool picked = false;
            for (int s = 0; s < k; s++)
            {
                float w = weights[t * k + s], gs = g[t * k + s];
                dot += w * gs;
                if ((int)indices[t * k + s] == j)
                {
                    picked = true;
                    own = w;
                    gOwn = gs;
                }
            }
            dLogits[i] = picked ? own * (gOwn - dot) : 0f;
        }

        /// <summary>
        /// The combine backward to the expert outputs over [rows, D]: a filled row r belongs to token t = tokenOf[r] in the slot s
        /// with positions[t·k + s] = r, and receives weights[t, s]·g[t]; rows past the kept total are 0. A gather: no atomics.
        /// </summary>
        public static void CombineBackwardRows(ArrayView<float> g, ArrayView<float> weights, ArrayView<int> tokenOf, ArrayView<int> positions, ArrayView<int> offsets,
            ArrayView<float> dOut, int k, int experts, int d, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                CombineBackwardRowsAt(g, weights, tokenOf, positions, offsets, dOut, k, experts, d, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="CombineBackwardRows"/> (shared with the host loop).</summary>
        public static void CombineBackwardRowsAt(ArrayView<float> g, ArrayView<float> weights, ArrayView<int> tokenOf, ArrayView<int> positions, ArrayView<int> offsets,
            ArrayView<float> dOut, int k, int experts, int d, int i)
        {
            int r = i / d, c = i - r * d;
            float value = 0f;
            if (r < offsets[experts])
            {
                int t = tokenOf[r];
                for (int s = 0; s < k; s++)
                    if (positions[t * k + s] == r)
                        value = weights[t * k + s] * g[t * d + c];
            }
            dOut[i] = value;
        }

        /// <summary>The combine backward to the weights over [T, k]: dw[t, s] = g[t]·expertOut[row(t, s)], 0 for a dropped slot.</summary>
        public static void CombineBackwardWeights(ArrayView<float> g, ArrayView<float> expertOut, ArrayView<int> positions, ArrayView<float> dWeights, int k, int d, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                CombineBackwardWeightsAt(g, expertOut, positions, dWeights, k, d, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="CombineBackwardWeights"/> (shared with the host loop).</summary>
        public static void CombineBackwardWeightsAt(ArrayView<float> g, ArrayView<float> expertOut, ArrayView<int> positions, ArrayView<float> dWeights, int k, int d, int i)
        {
            int t = i / k, row = positions[i];
            float sum = 0f;
            if (row >= 0)
                for (int c = 0; c < d; c++)
                    sum += g[t * d + c] * expertOut[row * d + c];
            dWeights[i] = sum;
        }

        /// <summary>y[t, :] = Σ_s weights[t, s]·expertOut[positions[t·k + s], :], skipping dropped slots.</summary>
        public static void Combine(ArrayView<float> expertOut, ArrayView<float> weights, ArrayView<int> positions, ArrayView<float> y, int k, int d, int total)
        {
            for (int i = Grid.GlobalIndex.X; i < total; i += Grid.DimX * Group.DimX)
                CombineAt(expertOut, weights, positions, y, k, d, i);
        }

        /// <summary>Element <paramref name="i"/> of <see cref="Combine"/>: the body its GPU loop and the fast CPU device's host loop share.</summary>
        public static void CombineAt(ArrayView<float> expertOut, ArrayView<float> weights, ArrayView<int> positions, ArrayView<float> y, int k, int d, int i)
        {
            int t = i / d, c = i - t * d;
            float sum = 0f;
            for (int s = 0; s < k; s++)
            {
                int row = positions[t * k + s];
                if (row >= 0)
                    sum += weights[t * k + s] * expertOut[row * d + c];
            }
            y[i] = sum;
        }

        /// <summary>Top-k gating of [tokens, experts] logits: the fast CPU device's host loop, else <see cref="TopKGating"/>.</summary>
        internal static void RunTopKGating(string op, Device device, Tensor logits, Tensor weights, Tensor indices, int tokens, int experts, int k)
        {
            if (device.IsHostCpu)
            {
                using (device.Profiler.Measure(op))
                    unsafe
                    {
                        HostSelect.TopKGating(HostMemory.Ptr(logits), HostMemory.Ptr(weights), HostMemory.Ptr(indices), tokens, experts, k);
                    }
                return;
            }
            device.Launch(op, TopKGating, LaunchShapes.Linear(device, (long)tokens * device.Info.WarpSize, LaunchShapes.ElementwiseGroup(device)),
                logits.ContiguousView, weights.ContiguousView, indices.ContiguousView, tokens, experts, k);
        }

        /// <summary>Counts, offsets, positions and token of every row of a routing: per-expert host loops on the fast CPU
        /// device, else the count, scan and assign kernels timed as one op.</summary>
        internal static void RunRoute(string op, Device device, Tensor indices, MoeRouting routing, int assignments, int experts, int k, int capacity)
        {
            var (iv, counts, offsets) = (indices.ContiguousView, MoeRouting.Ints(routing.Counts), MoeRouting.Ints(routing.Offsets));
            var (positions, tokenOf) = (MoeRouting.Ints(routing.Positions), MoeRouting.Ints(routing.TokenOf));
            if (device.IsHostCpu)
            {
                HostParallel.Elements(device, op, experts, assignments, e => RouteCountAt(iv, counts, assignments, e));
                RouteScanSerial(counts, offsets, experts, capacity);
                HostParallel.Elements(device, op, experts, assignments, e => RouteAssignAt(iv, offsets, positions, tokenOf, assignments, k, capacity, e));
                return;
            }
            int group = LaunchShapes.ElementwiseGroup(device);
            using (device.Profiler.Measure(op))   // three kernels, one op
            {
                device.Launch(null, RouteCount, LaunchShapes.Linear(device, experts, group), iv, counts, assignments, experts);
                device.Launch(null, RouteScan, new KernelConfig(1, 1), counts, offsets, experts, capacity);
                device.Launch(null, RouteAssign, LaunchShapes.Linear(device, experts, group), iv, offsets, positions, tokenOf, assignments, experts, k, capacity);
            }
        }

        /// <summary>The gradient of the gating logits: the fast CPU's parallel loop over <see cref="TopKGatingBackwardAt"/>, else the kernel <see cref="TopKGatingBackward"/>.</summary>
        internal static void RunTopKGatingBackward(string op, Device device, ArrayView<float> weights, ArrayView<float> indices, ArrayView<float> g, ArrayView<float> dLogits, int k, int experts, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 2 * k, i => TopKGatingBackwardAt(weights, indices, g, dLogits, k, experts, i)))
                return;
            device.Launch(op, TopKGatingBackward, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), weights, indices, g, dLogits, k, experts, total);
        }

        /// <summary>Token rows gathered into expert order: the fast CPU's parallel loop over <see cref="DispatchAt"/>, else the kernel <see cref="Dispatch"/>.</summary>
        internal static void RunDispatch(string op, Device device, ArrayView<float> x, ArrayView<int> tokenOf, ArrayView<int> offsets, ArrayView<float> dispatched, int experts, int d, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, 1, i => DispatchAt(x, tokenOf, offsets, dispatched, experts, d, i)))
                return;
            device.Launch(op, Dispatch, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), x, tokenOf, offsets, dispatched, experts, d, total);
        }

        /// <summary>The gradient of the expert output rows: the fast CPU's parallel loop over <see cref="CombineBackwardRowsAt"/>, else the kernel <see cref="CombineBackwardRows"/>.</summary>
        internal static void RunCombineBackwardRows(string op, Device device, ArrayView<float> g, ArrayView<float> weights, ArrayView<int> tokenOf, ArrayView<int> positions, ArrayView<int> offsets, ArrayView<float> dOut, int k, int experts, int d, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, k, i => CombineBackwardRowsAt(g, weights, tokenOf, positions, offsets, dOut, k, experts, d, i)))
                return;
            device.Launch(op, CombineBackwardRows, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), g, weights, tokenOf, positions, offsets, dOut, k, experts, d, total);
        }

        /// <summary>The gradient of the gating weights: the fast CPU's parallel loop over <see cref="CombineBackwardWeightsAt"/>, else the kernel <see cref="CombineBackwardWeights"/>.</summary>
        internal static void RunCombineBackwardWeights(string op, Device device, ArrayView<float> g, ArrayView<float> expertOut, ArrayView<int> positions, ArrayView<float> dWeights, int k, int d, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, d, i => CombineBackwardWeightsAt(g, expertOut, positions, dWeights, k, d, i)))
                return;
            device.Launch(op, CombineBackwardWeights, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), g, expertOut, positions, dWeights, k, d, total);
        }

        /// <summary>Expert outputs weighted back into token order: the fast CPU's parallel loop over <see cref="CombineAt"/>, else the kernel <see cref="Combine"/>.</summary>
        internal static void RunCombine(string op, Device device, ArrayView<float> expertOut, ArrayView<float> weights, ArrayView<int> positions, ArrayView<float> y, int k, int d, int total)
        {
            if (Cpu.HostParallel.Elements(device, op, total, k, i => CombineAt(expertOut, weights, positions, y, k, d, i)))
                return;
            device.Launch(op, Combine, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)), expertOut, weights, positions, y, k, d, total);
        }
    }
}

namespace GpuNet
{
    using GpuNet.Kernels;

    /// <summary>Top-k gating: weights [T, k] (renormalized, descending) and expert indices [T, k] (as floats).</summary>
    public sealed record GatingResult(Tensor Weights, Tensor Indices) : IDisposable
    {
        /// <summary>Disposes both tensors.</summary>
        public void Dispose()
        {
            Weights.Dispose();
            Indices.Dispose();
        }
    }

    /// <summary>
    /// The routing of T·k assignments to E experts. Rows of the dispatched tensor are sorted by expert: expert e owns rows
    /// Offsets[e] .. Offsets[e + 1]. Positions[t·k + s] is the row of token t's slot s (−1 when dropped for capacity);
    /// TokenOf[row] is the token filling a row. Counts are the kept counts.
    /// </summary>
    public sealed class MoeRouting : IDisposable
    {
        internal MoeRouting(Device device, int tokens, int k, int experts, int capacity)
        {
            Tokens = tokens;
            K = k;
            Experts = experts;
            Capacity = capacity;
            var buffers = new[] { experts, experts + 1, tokens * k, tokens * k };
            var pooled = buffers.Select(n => Tensor.Empty(device, n)).ToArray();
            (Counts, Offsets, Positions, TokenOf) = (pooled[0], pooled[1], pooled[2], pooled[3]);
        }

        /// <summary>Tokens, slots per token, experts, and the per-expert capacity (T·k when unlimited).</summary>
        public int Tokens { get; }

        /// <summary>Slots per token.</summary>
        public int K { get; }

        /// <summary>Experts.</summary>
        public int Experts { get; }

        /// <summary>Most assignments an expert keeps.</summary>
        public int Capacity { get; }

        internal Tensor Counts { get; }
        internal Tensor Offsets { get; }
        internal Tensor Positions { get; }
        internal Tensor TokenOf { get; }

        internal static ArrayView<int> Ints(Tensor t) => t.ContiguousView.Cast<int>();

        /// <summary>Kept assignments per expert (reads back to the host).</summary>
        public int[] ReadCounts() => ReadInts(Counts);

        /// <summary>Row offsets per expert, E + 1 entries (reads back to the host).</summary>
        public int[] ReadOffsets() => ReadInts(Offsets);

        /// <summary>Row of every (token, slot) assignment, −1 when dropped (reads back to the host).</summary>
        public int[] ReadPositions() => ReadInts(Positions);

        private int[] ReadInts(Tensor t)
        {
            var result = new int[t.Length];
            HostCopy.Download(Ints(t), result);
            return result;
        }

        /// <summary>Disposes the routing tables.</summary>
        public void Dispose()
        {
            Counts.Dispose();
            Offsets.Dispose();
            Positions.Dispose();
            TokenOf.Dispose();
        }
    }
}

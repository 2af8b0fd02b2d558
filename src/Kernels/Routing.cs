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

    public static partial class Ops
    {
        /// <summary>Router logits [T, E] → softmax → the k largest (ties to the lower expert) → weights renormalized over them. k ≤ 8, E ≤ 256. Kernel <c>topk_gating</c>.</summary>
        public static GatingResult TopKGating(Tensor logits, int k)
        {
            var r = TopKGatingCore(logits, k);
            if (Autograd.ShouldRecord(logits))
            {
                Autograd.RecordNoGradient("topk_gating (indices output)", r.Indices, logits);
                var (w, idx) = (Autograd.Save(r.Weights), Autograd.Save(r.Indices));
                int tokens = logits.Size(0), experts = logits.Size(1);
                Autograd.Record("topk_gating", r.Weights, new[] { logits }, (g, _) =>
                {
                    const string name = "topk_gating_backward";
                    var device = Validate.DeviceOf(name, "g", g);
                    var dLogits = Tensor.Empty(device, tokens, experts);
                    using var gc = g.Contiguous();
                    var (wv, iv, gv, dv, total) = (w.ContiguousView, idx.ContiguousView, gc.ContiguousView, dLogits.ContiguousView, dLogits.Length);
                    if (total > 0 && !HostParallel.Elements(device, name, total, 2 * k, i => RoutingKernels.TopKGatingBackwardAt(wv, iv, gv, dv, k, experts, i)))
                    {
                        device.Launch(name, RoutingKernels.TopKGatingBackward, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)),
                            wv, iv, gv, dv, k, experts, total);
                    }
                    return new[] { dLogits };
                }, w, idx);
            }
            return r;
        }

        private static GatingResult TopKGatingCore(Tensor logits, int k)
        {
            const string op = "topk_gating";
            var device = Validate.DeviceOf(op, "logits", logits);
            Validate.Input(op, "logits", logits, device);
            Validate.Rank(op, "logits", logits, 2);
            int tokens = logits.Size(0), experts = logits.Size(1);
            if (experts < 1 || experts > 256)
                throw new ShapeMismatchException(op, "logits", "1..256 experts (the last dimension)", experts.ToString());
            if (k < 1 || k > 8 || k > experts)
                throw new ShapeMismatchException(op, "k", $"1 ≤ k ≤ min(8, experts = {experts})", k.ToString());
            var weights = Tensor.Empty(device, tokens, k);
            var indices = Tensor.Empty(device, tokens, k);
            if (tokens > 0)
            {
                using var lc = logits.Contiguous();
                if (device.IsHostCpu)
                {
                    using (device.Profiler.Measure(op))
                        unsafe
                        {
                            HostSelect.TopKGating(HostMemory.Ptr(lc), HostMemory.Ptr(weights), HostMemory.Ptr(indices), tokens, experts, k);
                        }
                    return new GatingResult(weights, indices);
                }
                device.Launch(op, RoutingKernels.TopKGating, LaunchShapes.Linear(device, (long)tokens * device.Info.WarpSize, LaunchShapes.ElementwiseGroup(device)),
                    lc.ContiguousView, weights.ContiguousView, indices.ContiguousView, tokens, experts, k);
            }
            return new GatingResult(weights, indices);
        }

        /// <summary>
        /// Routes the expert indices [T, k] of a gating to <paramref name="experts"/> experts: kept counts, offsets, the row of
        /// every assignment and the token of every row. With a capacity factor, each expert keeps at most
        /// ⌈factor·T·k/E⌉ assignments, the earliest tokens first. Kernel <c>moe_route</c>.
        /// </summary>
        public static MoeRouting MoeRoute(Tensor indices, int experts, float? capacityFactor = null)
        {
            const string op = "moe_route";
            var device = Validate.DeviceOf(op, "indices", indices);
            Validate.Input(op, "indices", indices, device);
            Validate.Rank(op, "indices", indices, 2);
            if (experts < 1)
                throw new ShapeMismatchException(op, "experts", "at least one expert", experts.ToString());
            if (capacityFactor is <= 0)
                throw new ShapeMismatchException(op, "capacity_factor", "a positive factor", capacityFactor.Value.ToString());
            int tokens = indices.Size(0), k = indices.Size(1), assignments = tokens * k;
            int capacity = capacityFactor is { } f ? (int)Math.Ceiling(f * assignments / experts) : assignments;
            var routing = new MoeRouting(device, tokens, k, experts, capacity);
            using var ic = indices.Contiguous();
            int group = LaunchShapes.ElementwiseGroup(device);
            if (device.IsHostCpu)
            {
                var (iv, counts, offsets) = (ic.ContiguousView, MoeRouting.Ints(routing.Counts), MoeRouting.Ints(routing.Offsets));
                var (positions, tokenOf) = (MoeRouting.Ints(routing.Positions), MoeRouting.Ints(routing.TokenOf));
                HostParallel.Elements(device, op, experts, assignments, e => RoutingKernels.RouteCountAt(iv, counts, assignments, e));
                RoutingKernels.RouteScanSerial(counts, offsets, experts, capacity);
                HostParallel.Elements(device, op, experts, assignments, e => RoutingKernels.RouteAssignAt(iv, offsets, positions, tokenOf, assignments, k, capacity, e));
                return routing;
            }
            using (device.Profiler.Measure(op))   // three kernels, one op
            {
                device.Launch(null, RoutingKernels.RouteCount, LaunchShapes.Linear(device, experts, group), ic.ContiguousView, MoeRouting.Ints(routing.Counts), assignments, experts);
                device.Launch(null, RoutingKernels.RouteScan, new KernelConfig(1, 1), MoeRouting.Ints(routing.Counts), MoeRouting.Ints(routing.Offsets), experts, capacity);
                device.Launch(null, RoutingKernels.RouteAssign, LaunchShapes.Linear(device, experts, group), ic.ContiguousView, MoeRouting.Ints(routing.Offsets),
                    MoeRouting.Ints(routing.Positions), MoeRouting.Ints(routing.TokenOf), assignments, experts, k, capacity);
            }
            return routing;
        }

        /// <summary>Gathers token rows x [T, D] into expert order: [T·k, D], rows past the kept total are zero. Kernel <c>moe_dispatch</c>.</summary>
        public static Tensor MoeDispatch(Tensor x, MoeRouting routing)
        {
            var r = MoeDispatchCore(x, routing);
            if (Autograd.ShouldRecord(x))
            {
                // dx[t] = Σ of the gradients of t's dispatched rows: the combine gather with unit weights.
                var (positions, k, d) = (Autograd.Save(routing.Positions), routing.K, x.Size(1));
                Autograd.Record("moe_dispatch", r, new[] { x }, (g, _) =>
                {
                    using var ones = Full(g.Device, 1f, positions.Length / k, k);
                    return new[] { CombineRows("moe_dispatch_backward", g, ones, positions, k, d) };
                }, positions);
            }
            return r;
        }

        private static Tensor MoeDispatchCore(Tensor x, MoeRouting routing)
        {
            const string op = "moe_dispatch";
            var device = Validate.DeviceOf(op, "x", x);
            Validate.Input(op, "x", x, device);
            Validate.Rank(op, "x", x, 2);
            if (x.Size(0) != routing.Tokens)
                throw new ShapeMismatchException(op, "x", $"[{routing.Tokens}, D] (one row per routed token)", GpuNetException.FormatShape(x.ShapeArray()));
            int d = x.Size(1);
            var output = Tensor.Empty(device, routing.Tokens * routing.K, d);
            if (output.Length == 0)
                return output;
            using var xc = x.Contiguous();
            var (xv, tokenOf, offsets, ov, total) = (xc.ContiguousView, MoeRouting.Ints(routing.TokenOf), MoeRouting.Ints(routing.Offsets), output.ContiguousView, output.Length);
            if (HostParallel.Elements(device, op, total, 1, i => RoutingKernels.DispatchAt(xv, tokenOf, offsets, ov, routing.Experts, d, i)))
                return output;
            device.Launch(op, RoutingKernels.Dispatch, LaunchShapes.Linear(device, output.Length, LaunchShapes.ElementwiseGroup(device)),
                xc.ContiguousView, MoeRouting.Ints(routing.TokenOf), MoeRouting.Ints(routing.Offsets), output.ContiguousView,
                routing.Experts, d, output.Length);
            return output;
        }

        /// <summary>y[t] = Σ_s weights[t, s]·expertOutput[row(t, s)] (dropped slots contribute nothing): [T, D]. Kernel <c>moe_combine</c>.</summary>
        public static Tensor MoeCombine(Tensor expertOutput, Tensor weights, MoeRouting routing)
        {
            var r = MoeCombineCore(expertOutput, weights, routing);
            if (Autograd.ShouldRecord(expertOutput, weights))
            {
                var saved = new[] { Autograd.Save(expertOutput), Autograd.Save(weights), Autograd.Save(routing.TokenOf), Autograd.Save(routing.Positions), Autograd.Save(routing.Offsets) };
                var (k, experts, d, rows) = (routing.K, routing.Experts, expertOutput.Size(1), expertOutput.Size(0));
                Autograd.Record("moe_combine", r, new[] { expertOutput, weights }, (g, needs) =>
                {
                    using var gc = g.Contiguous();
                    using var wc = saved[1].Contiguous();
                    Tensor? dOut = null, dWeights = null;
                    if (needs[0])
                    {
                        dOut = Tensor.Empty(g.Device, rows, d);
                        var (gv, wv, tv, pv, ov, dv) = (gc.ContiguousView, wc.ContiguousView, MoeRouting.Ints(saved[2]), MoeRouting.Ints(saved[3]), MoeRouting.Ints(saved[4]), dOut.ContiguousView);
                        if (dOut.Length > 0 && !HostParallel.Elements(g.Device, "moe_combine_backward", dOut.Length, k, i => RoutingKernels.CombineBackwardRowsAt(gv, wv, tv, pv, ov, dv, k, experts, d, i)))
                        {
                            g.Device.Launch("moe_combine_backward", RoutingKernels.CombineBackwardRows, LaunchShapes.Linear(g.Device, dOut.Length, LaunchShapes.ElementwiseGroup(g.Device)),
                                gv, wv, tv, pv, ov, dv, k, experts, d, dOut.Length);
                        }
                    }
                    if (needs[1])
                    {
                        dWeights = Tensor.Empty(g.Device, wc.ShapeArray());
                        using var oc = saved[0].Contiguous();
                        var (gv, xv, pv, dv) = (gc.ContiguousView, oc.ContiguousView, MoeRouting.Ints(saved[3]), dWeights.ContiguousView);
                        if (dWeights.Length > 0 && !HostParallel.Elements(g.Device, "moe_combine_backward", dWeights.Length, d, i => RoutingKernels.CombineBackwardWeightsAt(gv, xv, pv, dv, k, d, i)))
                        {
                            g.Device.Launch("moe_combine_backward", RoutingKernels.CombineBackwardWeights, LaunchShapes.Linear(g.Device, dWeights.Length, LaunchShapes.ElementwiseGroup(g.Device)),
                                gv, xv, pv, dv, k, d, dWeights.Length);
                        }
                    }
                    return new[] { dOut, dWeights };
                }, saved);
            }
            return r;
        }

        /// <summary>y[t] = Σ_s w[t, s]·rows[positions[t·k + s]] through the combine kernel: moe_combine, and dispatch's backward with unit weights.</summary>
        private static Tensor CombineRows(string op, Tensor rows, Tensor weights, Tensor positions, int k, int d)
        {
            var device = Validate.DeviceOf(op, "rows", rows);
            int tokens = positions.Length / k;
            var y = Tensor.Empty(device, tokens, d);
            if (y.Length == 0)
                return y;
            using var rc = rows.Contiguous();
            using var wc = weights.Contiguous();
            var (ov, wv, pv, yv, total) = (rc.ContiguousView, wc.ContiguousView, MoeRouting.Ints(positions), y.ContiguousView, y.Length);
            if (HostParallel.Elements(device, op, total, k, i => RoutingKernels.CombineAt(ov, wv, pv, yv, k, d, i)))
                return y;
            device.Launch(op, RoutingKernels.Combine, LaunchShapes.Linear(device, total, LaunchShapes.ElementwiseGroup(device)),
                ov, wv, pv, yv, k, d, total);
            return y;
        }

        private static Tensor MoeCombineCore(Tensor expertOutput, Tensor weights, MoeRouting routing)
        {
            const string op = "moe_combine";
            var device = Validate.DeviceOf(op, "expertOutput", expertOutput);
            Validate.Input(op, "expert_output", expertOutput, device);
            Validate.Input(op, "weights", weights, device);
            Validate.Rank(op, "expert_output", expertOutput, 2);
            if (expertOutput.Size(0) != routing.Tokens * routing.K)
                throw new ShapeMismatchException(op, "expert_output", $"[{routing.Tokens * routing.K}, D] (the dispatched rows)", GpuNetException.FormatShape(expertOutput.ShapeArray()));
            if (weights.Rank != 2 || weights.Size(0) != routing.Tokens || weights.Size(1) != routing.K)
                throw new ShapeMismatchException(op, "weights", $"[{routing.Tokens}, {routing.K}]", GpuNetException.FormatShape(weights.ShapeArray()));
            return CombineRows(op, expertOutput, weights, routing.Positions, routing.K, expertOutput.Size(1));
        }
    }
}

using ILGPU;
using ILGPU.Runtime;
using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>
    /// C = act(alpha·op(A)·op(B) + beta·C + bias). A is [..., M, K] ([..., K, M] when
    /// <paramref name="transposeA"/>), B is [..., K, N] ([..., N, K] when <paramref name="transposeB"/>);
    /// batch dimensions broadcast NumPy-style and C is [...batch, M, N]. Any strides work; an operand
    /// with neither matrix dimension contiguous is copied first. <paramref name="c"/> is the output
    /// (and the beta input); it is allocated when null (then beta must be 0).
    /// Kernels: <c>matmul</c> (2-D), <c>batched_matmul</c> (batched), <c>matmul_bias_act</c> (bias or activation), <c>gemv</c> (M = 1).
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transposeA = false, bool transposeB = false, float alpha = 1f, float beta = 0f,
        Tensor? c = null, Tensor? bias = null, FusedActivation activation = FusedActivation.None, MatMulTile tile = MatMulTile.Auto)
    {
        var device = Validate.DeviceOf("matmul", "a", a);
        string op = bias is not null || activation != FusedActivation.None ? "matmul_bias_act" : a.Rank > 2 || b.Rank > 2 ? "batched_matmul" : "matmul";
        var (m, n, ka, batch, outShape) = Operands(op, a, b, transposeA, transposeB);
        if (bias is not null)
        {
            Validate.Input(op, "bias", bias, device);
            if (bias.Rank != 1 || bias.Length != n || !bias.IsContiguous)
                throw new ShapeMismatchException(op, "bias", $"a contiguous vector [{n}]", bias.Describe());
        }
        if (c is null && beta != 0)
            throw new MissingArgumentException(op, "c", $"the input/output tensor c (beta = {beta})");
        bool record = Autograd.ShouldRecord(a, b, bias);
        if (record && activation != FusedActivation.None && beta == 0)
            return FusedForTraining(op, a, b, transposeA, transposeB, alpha, c, bias, activation, tile, batch);
        var output = Validate.OutputOrNew(op, c, device, outShape);
        if (record)
            RecordMatMul(op, a, b, bias, transposeA, transposeB, alpha, beta, output, batch, null);
        if (output.Length == 0)
            return output;
        int batchCount = (int)ShapeUtil.Product(batch);
        if (m == 1 && batchCount == 1 && tile == MatMulTile.Auto && !device.IsHostCpu)
            RunGemv(op == "matmul" ? "gemv" : op, a, b, transposeB, n, ka, alpha, beta, output, bias, activation);
        else
            RunTiled(op, a, b, transposeA, transposeB, batch, m, n, ka, alpha, beta, output, bias, activation, tile);
        return output;
    }

    /// <summary>
    /// C = (alpha·op(A)·op(B)) ⊙ act′(Z): the backward of a fused activation applied in the epilogue of the matmul that
    /// produces the gradient (kernel <c>matmul_act_backward</c>, the tiled kernel's gated epilogue), so the activation's
    /// backward costs no kernel and no pass over memory of its own. Z (the pre-activation the forward kept) has C's shape.
    /// Autograd uses it when a matmul is the only consumer of a fused matmul's output (an MLP's next layer).
    /// </summary>
    public static Tensor MatMulActivationBackward(Tensor a, Tensor b, bool transposeA, bool transposeB, Tensor preActivation,
        FusedActivation activation, float alpha = 1f)
    {
        const string op = "matmul_act_backward";
        var device = Validate.DeviceOf(op, "a", a);
        var (m, n, ka, batch, outShape) = Operands(op, a, b, transposeA, transposeB);
        Validate.Input(op, "preActivation", preActivation, device);
        if (!preActivation.Shape.SequenceEqual(outShape) || !preActivation.IsContiguous)
            throw new ShapeMismatchException(op, "preActivation", $"a contiguous tensor {GpuNetException.FormatShape(outShape)} (the output's shape)", preActivation.Describe());
        if (Autograd.ShouldRecord(a, b, preActivation))
            throw new NoGradientException(op, $"{op} is itself a backward kernel; it has no gradient of its own (call it under NoGrad)");
        var output = Tensor.Empty(device, outShape);
        if (output.Length > 0)
            RunTiled(op, a, b, transposeA, transposeB, batch, m, n, ka, alpha, 0f, output, null, activation, MatMulTile.Auto, preActivation);
        return output;
    }

    /// <summary>
    /// Validates the two operands of a matmul-family op (same device, alive, rank ≥ 2, K agreeing, batches broadcasting)
    /// and returns M, N, K, the broadcast batch shape and the output shape [...batch, M, N].
    /// </summary>
    private static (int M, int N, int K, int[] Batch, int[] OutShape) Operands(string op, Tensor a, Tensor b, bool transposeA, bool transposeB)
    {
        var device = Validate.Input(op, "a", a);
        Validate.Input(op, "b", b, device);
        if (a.Rank < 2)
            throw new ShapeMismatchException(op, "a", "a matrix or a batch of matrices (rank ≥ 2)", GpuNetException.FormatShape(a.ShapeArray()));
        if (b.Rank < 2)
            throw new ShapeMismatchException(op, "b", "a matrix or a batch of matrices (rank ≥ 2)", GpuNetException.FormatShape(b.ShapeArray()));
        int m = transposeA ? a.Size(-1) : a.Size(-2), ka = transposeA ? a.Size(-2) : a.Size(-1);
        int kb = transposeB ? b.Size(-1) : b.Size(-2), n = transposeB ? b.Size(-2) : b.Size(-1);
        if (ka != kb)
            throw new ShapeMismatchException(op, "b", $"{(transposeB ? "[..., N, " + ka + "]" : "[..., " + ka + ", N]")} to match K = {ka} of a {GpuNetException.FormatShape(a.ShapeArray())}{(transposeA ? " (transposed)" : "")}",
                GpuNetException.FormatShape(b.ShapeArray()) + (transposeB ? " (transposed)" : ""));
        var batch = ShapeUtil.BroadcastShapes(op, a.ShapeArray()[..^2], b.ShapeArray()[..^2]);
        return (m, n, ka, batch, batch.Append(m).Append(n).ToArray());
    }

    /// <summary>
    /// A fused epilogue while training: the backward needs the pre-activation z, so the forward writes z (matmul + bias) and
    /// applies the activation in a second kernel. One node records both; its first backward step, act′(z), is a gate
    /// (<see cref="ActivationGate"/>) that a consuming matmul applies in its own epilogue.
    /// </summary>
    private static Tensor FusedForTraining(string op, Tensor a, Tensor b, bool transposeA, bool transposeB, float alpha, Tensor? c,
        Tensor? bias, FusedActivation activation, MatMulTile tile, int[] batch)
    {
        Tensor y;
        using (Autograd.NoGrad())
        using (var z = MatMul(a, b, transposeA, transposeB, alpha, 0f, null, bias, FusedActivation.None, tile))
        {
            y = ApplyFused(z, activation, c);
            var savedZ = Autograd.Save(z);
            RecordMatMul(op, a, b, bias, transposeA, transposeB, alpha, 0f, y, batch, new ActivationGate(savedZ, activation));
        }
        return y;
    }

    /// <summary>The activation of a fused epilogue as its own op, into <paramref name="output"/> when given.</summary>
    private static Tensor ApplyFused(Tensor z, FusedActivation activation, Tensor? output) => activation switch
    {
        FusedActivation.Relu => Relu(z, output),
        FusedActivation.Gelu => GeluErf(z, output),
        FusedActivation.GeluTanh => GeluTanh(z, output),
        FusedActivation.Silu => Silu(z, output),
        _ => throw new InvalidArgumentException("matmul_bias_act", "activation", "a FusedActivation", activation.ToString()),
    };

    /// <summary>A fused activation's backward step: g ⊙ act′(z) from the saved pre-activation z.</summary>
    private sealed class ActivationGate(Tensor preActivation, FusedActivation activation) : IGradientGate
    {
        public Tensor PreActivation => preActivation;

        public FusedActivation Activation => activation;

        public Tensor Apply(Tensor g) => activation switch
        {
            FusedActivation.Relu => ActivationBackward("relu", g, preActivation, new Activation.Relu()),
            FusedActivation.Gelu => ActivationBackward("gelu_erf", g, preActivation, new Activation.GeluErf()),
            FusedActivation.GeluTanh => ActivationBackward("gelu_tanh", g, preActivation, new Activation.GeluTanh()),
            FusedActivation.Silu => ActivationBackward("silu", g, preActivation, new Activation.Silu()),
            _ => throw new InvalidArgumentException("matmul_bias_act", "activation", "a FusedActivation", activation.ToString()),
        };
    }

    /// <summary>
    /// The backward of C = act(alpha·op(A)·op(B) + bias), by the same tiled kernel with transpose flags (no explicit
    /// transposes): dA = alpha·g·op(B)ᵀ (for a transposed A, its transpose op(B)·gᵀ), dB = alpha·op(A)ᵀ·g (or gᵀ·op(A)),
    /// dbias = Σ rows of g, where g already holds act′(z) when <paramref name="gate"/> is given (the engine or the consumer
    /// applied it). Gradients of broadcast batches are summed over the broadcast dimensions. An operand produced by a fused
    /// matmul whose gate the engine offers gets it in this matmul's epilogue (<see cref="MatMulActivationBackward"/>).
    /// </summary>
    private static void RecordMatMul(string op, Tensor a, Tensor b, Tensor? bias, bool transposeA, bool transposeB, float alpha, float beta,
        Tensor output, int[] batch, ActivationGate? gate)
    {
        if (beta != 0)
        {
            // C was also an input, overwritten in place: there is nothing left to differentiate against.
            Autograd.RecordNoGradient(op + " (beta ≠ 0, accumulating into c)", output, a, b, bias);
            return;
        }
        var savedA = b.RequiresGrad ? Autograd.Save(a) : null;
        var savedB = a.RequiresGrad ? Autograd.Save(b) : null;
        int[] shapeA = a.ShapeArray(), shapeB = b.ShapeArray();
        int n = output.Size(-1);
        var saved = new[] { savedA, savedB, gate?.PreActivation }.OfType<Tensor>().ToArray();
        Autograd.RecordGating(op, output, new[] { a, b, bias }, (g, needs, gates) => new[]
        {
            needs[0] ? (transposeA ? OperandGradient(savedB!, g, transposeB, true, alpha, shapeA, batch, gates[0])
                                   : OperandGradient(g, savedB!, false, !transposeB, alpha, shapeA, batch, gates[0])) : null,
            needs[1] ? (transposeB ? OperandGradient(g, savedA!, true, transposeA, alpha, shapeB, batch, gates[1])
                                   : OperandGradient(savedA!, g, !transposeA, false, alpha, shapeB, batch, gates[1])) : null,
            needs[2] ? SumToShape(g, new[] { n }) : null,
        }, gate, saved);
    }

    /// <summary>
    /// One operand's gradient alpha·op(x)·op(y), summed to the operand's <paramref name="shape"/> over broadcast batches, times the
    /// producer's <paramref name="gate"/> when offered: in the matmul's epilogue when no batch sum comes between, else after it.
    /// </summary>
    private static Tensor OperandGradient(Tensor x, Tensor y, bool tx, bool ty, float alpha, int[] shape, int[] batch, IGradientGate? gate)
    {
        if (gate is ActivationGate fused && shape.Length == batch.Length + 2 && shape[..^2].SequenceEqual(batch) && fused.PreActivation.Shape.SequenceEqual(shape))
            return MatMulActivationBackward(x, y, tx, ty, fused.PreActivation, fused.Activation, alpha);
        var d = ReducedTo(MatMul(x, y, tx, ty, alpha), shape);
        if (gate is null)
            return d;
        using (d)
            return gate.Apply(d);
    }

    /// <summary><paramref name="full"/> summed to <paramref name="shape"/> when broadcasting (of operands or batches) stretched it; consumes <paramref name="full"/>.</summary>
    private static Tensor ReducedTo(Tensor full, int[] shape)
    {
        if (full.Shape.SequenceEqual(shape))
            return full;
        using (full)
            return SumToShape(full, shape);
    }

    /// <summary>x·Wᵀ + bias with an optional fused activation: PyTorch's nn.Linear (W is [out, in]). Kernel <c>matmul_bias_act</c> (<c>gemv</c> for one row).</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null, FusedActivation activation = FusedActivation.None, Tensor? output = null) =>
        MatMul(x, weight, transposeB: true, c: output, bias: bias, activation: activation);

    /// <summary>y = alpha·x·W + beta·y for a row vector x [1, K] (or [K]) and W [K, N] (or [N, K] when <paramref name="transposeW"/>). Kernel <c>gemv</c>.</summary>
    public static Tensor Gemv(Tensor x, Tensor w, bool transposeW = false, float alpha = 1f, float beta = 0f, Tensor? y = null)
    {
        Validate.Input("gemv", "x", x);
        if (x.Rank != 1 && !(x.Rank == 2 && x.Size(0) == 1))
            throw new ShapeMismatchException("gemv", "x", "a vector [K] or a row [1, K]", GpuNetException.FormatShape(x.ShapeArray()));
        using var row = x.Rank == 1 ? x.Reshape(1, x.Length) : x.Reshape(x.ShapeArray());
        if (y is null)
            return MatMul(row, w, transposeB: transposeW, alpha: alpha);
        Validate.Input("gemv", "y", y, x.Device);
        using var yRow = y.Rank == 1 ? y.Reshape(1, y.Length) : y.Reshape(y.ShapeArray());
        MatMul(row, w, transposeB: transposeW, alpha: alpha, beta: beta, c: yRow);
        return y;
    }

    /// <summary>The operand as (row stride, k stride) where row is m for A and n for B; copied to contiguous
    /// when neither matrix dimension has stride 1 (the tiled loads need one contiguous direction).</summary>
    private static (Tensor View, int StrideRow, int StrideK, bool Owned) MatrixOperand(Tensor t, bool kIsLast)
    {
        var view = t;
        var (sPrev, sLast) = UsableStrides(view);
        bool owned = sPrev != 1 && sLast != 1;
        if (owned)
        {
            view = t.Contiguous();
            (sPrev, sLast) = UsableStrides(view);
        }
        return kIsLast ? (view, sPrev, sLast, owned) : (view, sLast, sPrev, owned);
    }

    /// <summary>A size-1 dimension is never stepped along, so its stride is free: call it 1 where that makes the operand count as contiguous.</summary>
    private static (int Prev, int Last) UsableStrides(Tensor t)
    {
        int sPrev = t.Strides[^2], sLast = t.Strides[^1];
        if (t.Size(-1) == 1)
            sLast = 1;
        else if (t.Size(-2) == 1 && sLast != 1)
            sPrev = 1;
        return (sPrev, sLast);
    }

    /// <summary>The tiled kernel (or the fast CPU device's GEMM); with <paramref name="gate"/>, the epilogue multiplies by act′(gate) instead.</summary>
    private static void RunTiled(string op, Tensor a, Tensor b, bool transA, bool transB, int[] batch, int m, int n, int k,
        float alpha, float beta, Tensor c, Tensor? bias, FusedActivation act, MatMulTile tile, Tensor? gate = null)
    {
        var device = Validate.DeviceOf(op, "c", c);
        var (av, sAm, sAk, ownA) = MatrixOperand(a, kIsLast: !transA);
        var (bv, sBn, sBk, ownB) = MatrixOperand(b, kIsLast: transB);
        try
        {
            var batchStridesA = ShapeUtil.BroadcastStrides(op, "a", av.ShapeArray()[..^2], av.Strides.ToArray()[..^2], batch);
            var batchStridesB = ShapeUtil.BroadcastStrides(op, "b", bv.ShapeArray()[..^2], bv.Strides.ToArray()[..^2], batch);
            var (bdims, bst) = ShapeUtil.Coalesce(batch, batchStridesA, batchStridesB);
            var layoutA = Layout6.Create(op, bdims, bst[0]);
            var layoutB = Layout6.Create(op, bdims, bst[1]);
            bool aK = sAk == 1, bK = sBk == 1;
            var p = new GemmParams
            {
                M = m, N = n, K = k, StrideAm = sAm, StrideAk = sAk, StrideBk = sBk, StrideBn = sBn,
                Alpha = alpha, Beta = beta, HasBias = bias is null ? 0 : 1, GateByDerivative = gate is null ? 0 : 1,
                VecA = av.IsAligned(16) && (aK ? sAm : sAk) % 4 == 0 && bst[0].All(s => s % 4 == 0) ? 1 : 0,
                VecB = bv.IsAligned(16) && (bK ? sBn : sBk) % 4 == 0 && bst[1].All(s => s % 4 == 0) ? 1 : 0,
                VecC = c.IsAligned(16) && (gate?.IsAligned(16) ?? true) && n % 4 == 0 ? 1 : 0,
            };
            int batchCount = (int)ShapeUtil.Product(batch);
            var views = new MatMulViews(av.StridedView, bv.StridedView, c.ContiguousView, (gate ?? bias)?.ContiguousView ?? c.ContiguousView);
            if (device.IsHostCpu)
            {
                WithActivation(act, new HostGemmLaunch(m == 1 && op == "matmul" ? "gemv" : op, device, views, p, layoutA, layoutB, batchCount));
                return;
            }
            bool large = UseLargeTile(device, m, n, batchCount, tile);
            if (large)
                LaunchTiled(op, device, views, p, layoutA, layoutB, batchCount, new MatMulTiles.Large(), aK, bK, act);
            else
                LaunchTiled(op, device, views, p, layoutA, layoutB, batchCount, new MatMulTiles.Small(), aK, bK, act);
        }
        finally
        {
            if (ownA) av.Dispose();
            if (ownB) bv.Dispose();
        }
    }

    /// <summary>Large tiles on a GPU when they still give every multiprocessor a block; small otherwise and on the CPU accelerator.</summary>
    internal static bool UseLargeTile(Device device, int m, int n, int batches, MatMulTile tile) => tile switch
    {
        MatMulTile.Large => true,
        MatMulTile.Small => false,
        _ => device.Info.IsGpu && (long)((m + 127) / 128) * ((n + 127) / 128) * batches >= device.Info.Multiprocessors,
    };

    internal readonly record struct MatMulViews(ArrayView<float> A, ArrayView<float> B, ArrayView<float> C, ArrayView<float> Bias);

    /// <summary>Something to run with the activation as a type argument (so it is a compile-time specialization).</summary>
    internal interface IActivationVisitor
    {
        void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp;
    }

    /// <summary>Calls <paramref name="visitor"/> with the struct type of <paramref name="act"/>.</summary>
    internal static void WithActivation<TVisitor>(FusedActivation act, TVisitor visitor) where TVisitor : IActivationVisitor
    {
        switch (act)
        {
            case FusedActivation.Relu: visitor.Visit<Activation.Relu>(); break;
            case FusedActivation.Gelu: visitor.Visit<Activation.GeluErf>(); break;
            case FusedActivation.GeluTanh: visitor.Visit<Activation.GeluTanh>(); break;
            case FusedActivation.Silu: visitor.Visit<Activation.Silu>(); break;
            default: visitor.Visit<ElementwiseOps.Identity>(); break;
        }
    }

    private static void LaunchTiled<TTile>(string op, Device device, MatMulViews v, GemmParams p, Layout6 la, Layout6 lb, int batchCount,
        TTile tile, bool aK, bool bK, FusedActivation act) where TTile : struct, IMatMulTile
    {
        // Each (orientation, activation) pair is its own specialization: the branches fold at compile time.
        switch ((aK, bK))
        {
            case (true, true): WithActivation(act, new TiledLaunch<TTile, Flags.Yes, DenseB<Flags.Yes>>(op, device, v, p, la, lb, batchCount, default)); break;
            case (true, false): WithActivation(act, new TiledLaunch<TTile, Flags.Yes, DenseB<Flags.No>>(op, device, v, p, la, lb, batchCount, default)); break;
            case (false, true): WithActivation(act, new TiledLaunch<TTile, Flags.No, DenseB<Flags.Yes>>(op, device, v, p, la, lb, batchCount, default)); break;
            default: WithActivation(act, new TiledLaunch<TTile, Flags.No, DenseB<Flags.No>>(op, device, v, p, la, lb, batchCount, default)); break;
        }
    }

    /// <summary>One tiled launch, waiting for its activation type (see <see cref="WithActivation"/>).</summary>
    internal readonly record struct TiledLaunch<TTile, TA, TB>(string Op, Device Device, MatMulViews V, GemmParams P, Layout6 La, Layout6 Lb, int BatchCount, TB BSource)
        : IActivationVisitor where TTile : struct, IMatMulTile where TA : struct, IFlag where TB : struct, IOperandB
    {
        public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
        {
            if (P.GateByDerivative != 0)
                Launch<TAct, Flags.Yes>();
            else
                Launch<TAct, Flags.No>();
        }

        private void Launch<TAct, TGate>() where TAct : struct, IDifferentiableUnaryOp where TGate : struct, IFlag
        {
            TTile tile = default;
            var grid = new Index3D((P.N + tile.BN - 1) / tile.BN, (P.M + tile.BM - 1) / tile.BM, BatchCount);
            var config = new KernelConfig(grid, new Index3D(tile.BM / 8 * (tile.BN / 8), 1, 1));
            Device.Launch(Op, MatMulKernels.Tiled<TTile, TA, TB, TAct, TGate>, config, V.A, V.B, V.C, V.Bias, P, La, Lb, tile, BSource, default(TAct));
        }
    }

    /// <summary>The fast CPU device's GEMM (<see cref="Kernels.Cpu.HostGemm"/>) with the activation as a type argument.</summary>
    private readonly record struct HostGemmLaunch(string Op, Device Device, MatMulViews V, GemmParams P, Layout6 La, Layout6 Lb, int BatchCount)
        : IActivationVisitor
    {
        public unsafe void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
        {
            using (Device.Profiler.Measure(Op))
                Kernels.Cpu.HostGemm.Run(Kernels.Cpu.HostMemory.Ptr(V.A), Kernels.Cpu.HostMemory.Ptr(V.B), Kernels.Cpu.HostMemory.Ptr(V.C),
                    Kernels.Cpu.HostMemory.Ptr(V.Bias), P, La, Lb, BatchCount, default(TAct));
        }
    }

    private static void RunGemv(string op, Tensor a, Tensor b, bool transB, int n, int k, float alpha, float beta,
        Tensor y, Tensor? bias, FusedActivation act)
    {
        var device = Validate.DeviceOf(op, "y", y);
        // With M = 1, a contiguous A ([1, K] or, transposed, [K, 1]) is K consecutive floats.
        using var x = Contiguous(a);
        var (wv, sBn, sBk, ownW) = MatrixOperand(b, kIsLast: transB);
        try
        {
            var p = new GemmParams
            {
                M = 1, N = n, K = k, StrideBk = sBk, StrideBn = sBn, Alpha = alpha, Beta = beta, HasBias = bias is null ? 0 : 1,
                VecA = x.IsAligned(16) ? 1 : 0, VecB = wv.IsAligned(16) && sBn % 4 == 0 ? 1 : 0,
            };
            var views = new MatMulViews(x.StridedView, wv.StridedView, y.ContiguousView, bias?.ContiguousView ?? y.ContiguousView);
            WithActivation(act, new GemvLaunch(op, device, views, p, sBk == 1));
        }
        finally
        {
            if (ownW) wv.Dispose();
        }
    }

    private readonly record struct GemvLaunch(string Op, Device Device, MatMulViews V, GemmParams P, bool KContiguous) : IActivationVisitor
    {
        public void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp
        {
            int group = LaunchShapes.ElementwiseGroup(Device);
            // k-contiguous: a warp per output; n-contiguous: a thread per output.
            if (KContiguous)
                Device.Launch(Op, MatMulKernels.GemvKContiguous<TAct>, LaunchShapes.Linear(Device, (long)P.N * Device.Info.WarpSize, group), V.A, V.B, V.C, V.Bias, P, default(TAct));
            else
                Device.Launch(Op, MatMulKernels.GemvNContiguous<TAct>, LaunchShapes.Linear(Device, P.N, group), V.A, V.B, V.C, V.Bias, P, default(TAct));
        }
    }
}

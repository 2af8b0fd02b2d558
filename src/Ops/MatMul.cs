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
        MatMulKernels.Run(op, a, b, transposeA, transposeB, batch, m, n, ka, alpha, beta, output, bias, activation, tile);
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
            MatMulKernels.Run(op, a, b, transposeA, transposeB, batch, m, n, ka, alpha, 0f, output, null, activation, MatMulTile.Auto, preActivation);
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
        // Two matrices (every Linear layer) have no batch to broadcast: no shape copies for it.
        var batch = a.Rank == 2 && b.Rank == 2 ? Array.Empty<int>() : ShapeUtil.BroadcastShapes(op, a.ShapeArray()[..^2], b.ShapeArray()[..^2]);
        var outShape = new int[batch.Length + 2];
        batch.CopyTo(outShape, 0);
        (outShape[^2], outShape[^1]) = (m, n);
        return (m, n, ka, batch, outShape);
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
        FusedActivation.Relu6 => Relu6(z, output),
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
            FusedActivation.Relu6 => ActivationBackward("relu6", g, preActivation, new Activation.Relu6()),
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
}

using System.Reflection;

namespace GpuNet.Kernels.Checks;

/// <summary>One compiled form of a kernel: the registry name it serves and the closed kernel method.</summary>
/// <param name="Kernel">Registry kernel name (<c>add</c>, ...).</param>
/// <param name="Variant">Which launch path or specialization (<c>flat</c>, <c>strided</c>, ...).</param>
/// <param name="Method">The kernel method, closed over its operator and tile specialization.</param>
public sealed record KernelVariant(string Kernel, string Variant, MethodInfo Method);

/// <summary>
/// Every kernel method that launchers can load, closed over the specializations they use, keyed by
/// the registry names. The offline PTX check and the <c>ptx</c> verb compile exactly this list.
/// </summary>
public static class KernelCatalog
{
    private static MethodInfo Closed(Type owner, string name, params Type[] args) =>
        owner.GetMethod(name, BindingFlags.Public | BindingFlags.Static)!.MakeGenericMethod(args);

    private static IEnumerable<KernelVariant> Elementwise(string kernel, Type op) => new[]
    {
        new KernelVariant(kernel, "flat", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), op)),
        new KernelVariant(kernel, "strided", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Strided), op)),
    };

    private static IEnumerable<KernelVariant> Reduce(string kernel, Type acc, Type op) => new[]
    {
        new KernelVariant(kernel, "rows", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), acc, op)),
        new KernelVariant(kernel, "columns", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Columns), acc, op)),
    };

    private static Type Unary(Type op) => typeof(UnaryAsBinary<>).MakeGenericType(op);

    private static IEnumerable<KernelVariant> Activation(string kernel, Type op) => Elementwise(kernel, Unary(op)).Take(1);

    /// <summary>An activation's backward: the flat and strided elementwise kernels closed over dy·f′(x).</summary>
    private static IEnumerable<KernelVariant> ActivationBackward(string kernel, Type op) =>
        Elementwise(kernel + "_backward", typeof(Activation.Backward<>).MakeGenericType(op));

    private static KernelVariant Tiled(string kernel, string variant, Type tile, bool aK, bool bK, Type act, bool gate = false) =>
        new(kernel, variant, Closed(typeof(MatMulKernels), nameof(MatMulKernels.Tiled), tile,
            aK ? typeof(Flags.Yes) : typeof(Flags.No), typeof(DenseB<>).MakeGenericType(bK ? typeof(Flags.Yes) : typeof(Flags.No)), act,
            gate ? typeof(Flags.Yes) : typeof(Flags.No)));

    private static IEnumerable<KernelVariant> MatMul()
    {
        var id = typeof(ElementwiseOps.Identity);
        foreach (var (tile, tileName) in new[] { (typeof(MatMulTiles.Large), "large"), (typeof(MatMulTiles.Small), "small") })
            foreach (var (aK, bK) in new[] { (true, false), (true, true), (false, false), (false, true) })
                yield return Tiled("matmul", $"{tileName}_{(aK ? "a" : "at")}_{(bK ? "bt" : "b")}", tile, aK, bK, id);
        yield return Tiled("batched_matmul", "large_a_b", typeof(MatMulTiles.Large), true, false, id);
        foreach (var act in new[] { typeof(Activation.Relu), typeof(Activation.GeluErf), typeof(Activation.GeluTanh), typeof(Activation.Silu) })
            yield return Tiled("matmul_bias_act", $"large_a_bt_{act.Name}", typeof(MatMulTiles.Large), true, true, act);
        yield return new KernelVariant("gemv", "k_contiguous", Closed(typeof(MatMulKernels), nameof(MatMulKernels.GemvKContiguous), id));
        yield return new KernelVariant("gemv", "n_contiguous", Closed(typeof(MatMulKernels), nameof(MatMulKernels.GemvNContiguous), id));
    }

    /// <summary>All variants, in registry order.</summary>
    public static IReadOnlyList<KernelVariant> All { get; } = new[]
        {
            Elementwise("fill", Unary(typeof(ElementwiseOps.Constant))),
            Elementwise("copy_strided", Unary(typeof(ElementwiseOps.Identity))),
            Elementwise("add", typeof(ElementwiseOps.Add)),
            Elementwise("sub", typeof(ElementwiseOps.Sub)),
            Elementwise("mul", typeof(ElementwiseOps.Mul)),
            Elementwise("div", typeof(ElementwiseOps.Div)),
            Elementwise("axpy", typeof(ElementwiseOps.Axpy)),
            Reduce("sum_last_axis", typeof(float), typeof(ReduceOps.Sum)).Take(1),
            Reduce("reduce_sum", typeof(float), typeof(ReduceOps.Sum)),
            Reduce("reduce_mean", typeof(float), typeof(ReduceOps.Mean)),
            Reduce("reduce_max", typeof(float), typeof(ReduceOps.Max)),
            Reduce("reduce_min", typeof(float), typeof(ReduceOps.Min)),
            Reduce("reduce_prod", typeof(float), typeof(ReduceOps.Prod)),
            Reduce("argmax", typeof(ValueIndex), typeof(ReduceOps.ArgMax)),
            new[]
            {
                new KernelVariant("softmax", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.Rows), typeof(Flags.No))),
                new KernelVariant("log_softmax", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.Rows), typeof(Flags.Yes))),
                new KernelVariant("softmax_causal", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.Rows), typeof(Flags.No))),
                new KernelVariant("layernorm", "rows", Closed(typeof(NormalizationKernels), nameof(NormalizationKernels.Rows), typeof(Flags.No))),
                new KernelVariant("groupnorm", "rows", Closed(typeof(NormalizationKernels), nameof(NormalizationKernels.Rows), typeof(Flags.No))),
                new KernelVariant("batchnorm2d_train", "channel_rows", Closed(typeof(NormalizationKernels), nameof(NormalizationKernels.Rows), typeof(Flags.No))),
                new KernelVariant("batchnorm2d_train", "running_update", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), typeof(ElementwiseOps.MomentumUpdate))),
                new KernelVariant("batchnorm2d_infer", "fold", typeof(NormalizationKernels).GetMethod(nameof(NormalizationKernels.FoldBatchNorm))!),
                new KernelVariant("batchnorm2d_infer", "channel_affine", typeof(NormalizationKernels).GetMethod(nameof(NormalizationKernels.ChannelAffine))!),
                new KernelVariant("maxpool2d", "window", Closed(typeof(PoolingKernels), nameof(PoolingKernels.Pool2d), typeof(Flags.Yes))),
                new KernelVariant("adaptive_maxpool2d", "window", Closed(typeof(PoolingKernels), nameof(PoolingKernels.Pool2d), typeof(Flags.Yes))),
                new KernelVariant("avgpool2d", "window", Closed(typeof(PoolingKernels), nameof(PoolingKernels.Pool2d), typeof(Flags.No))),
                new KernelVariant("adaptive_avgpool2d", "window", Closed(typeof(PoolingKernels), nameof(PoolingKernels.Pool2d), typeof(Flags.No))),
                new KernelVariant("global_avgpool", "rows", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), typeof(float), typeof(ReduceOps.Mean))),
                new KernelVariant("upsample_nearest2d", "gather", typeof(UpsampleKernels).GetMethod(nameof(UpsampleKernels.Nearest))!),
                new KernelVariant("upsample_bilinear2d", "gather", typeof(UpsampleKernels).GetMethod(nameof(UpsampleKernels.Bilinear))!),
                new KernelVariant("rmsnorm", "rows", Closed(typeof(NormalizationKernels), nameof(NormalizationKernels.Rows), typeof(Flags.Yes))),
            },
            Activation("relu", typeof(Activation.Relu)),
            Activation("leaky_relu", typeof(Activation.LeakyRelu)),
            Activation("gelu_erf", typeof(Activation.GeluErf)),
            Activation("gelu_tanh", typeof(Activation.GeluTanh)),
            Activation("silu", typeof(Activation.Silu)),
            Activation("sigmoid", typeof(Activation.Sigmoid)),
            Activation("tanh", typeof(Activation.Tanh)),
            Activation("softplus", typeof(Activation.Softplus)),
            Activation("elu", typeof(Activation.Elu)),
            Activation("exp", typeof(Activation.Exp)),
            Activation("scale", typeof(Activation.Scale)),
            MatMul(),
            new[]
            {
                new KernelVariant("transpose", "tiled", typeof(LayoutKernels).GetMethod(nameof(LayoutKernels.Transpose))!),
                new KernelVariant("permute", "tiled", typeof(LayoutKernels).GetMethod(nameof(LayoutKernels.Transpose))!),
            },
            Elementwise("permute", Unary(typeof(ElementwiseOps.Identity))).Skip(1),
            Elementwise("concat", Unary(typeof(ElementwiseOps.Identity))),
            new[]
            {
                new KernelVariant("attention", "fused", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.Fused))!),
                new KernelVariant("attention_decode", "partial", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.DecodePartial))!),
                new KernelVariant("attention_decode", "combine", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.DecodeCombine))!),
                new KernelVariant("attention_unfused", "scores", Tiled("attention_unfused", "scores", typeof(MatMulTiles.Large), true, true, typeof(ElementwiseOps.Identity)).Method),
            },
            Elementwise("kv_cache_append", Unary(typeof(ElementwiseOps.Identity))),
            new[]
            {
                new KernelVariant("topk_gating", "warp_per_token", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.TopKGating))!),
                new KernelVariant("moe_route", "count", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.RouteCount))!),
                new KernelVariant("moe_route", "scan", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.RouteScan))!),
                new KernelVariant("moe_route", "assign", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.RouteAssign))!),
                new KernelVariant("moe_dispatch", "gather", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.Dispatch))!),
                new KernelVariant("moe_combine", "gather", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.Combine))!),
                new KernelVariant("embedding", "gather", typeof(EmbeddingKernels).GetMethod(nameof(EmbeddingKernels.Gather))!),
                new KernelVariant("gather_rows", "gather", typeof(EmbeddingKernels).GetMethod(nameof(EmbeddingKernels.GatherIndexed))!),
                new KernelVariant("sinusoidal_position", "table", typeof(EmbeddingKernels).GetMethod(nameof(EmbeddingKernels.Sinusoidal))!),
                new KernelVariant("timestep_embedding", "table", typeof(EmbeddingKernels).GetMethod(nameof(EmbeddingKernels.Timestep))!),
                new KernelVariant("patchify", "permute", typeof(LayoutKernels).GetMethod(nameof(LayoutKernels.Transpose))!),
                new KernelVariant("unpatchify", "permute", typeof(LayoutKernels).GetMethod(nameof(LayoutKernels.Transpose))!),
                new KernelVariant("random_uniform", "philox", typeof(SamplingKernels).GetMethod(nameof(SamplingKernels.Uniform))!),
                new KernelVariant("random_normal", "philox", typeof(SamplingKernels).GetMethod(nameof(SamplingKernels.Normal))!),
                new KernelVariant("dropout", "philox", typeof(SamplingKernels).GetMethod(nameof(SamplingKernels.Dropout))!),
                new KernelVariant("sample", "row", typeof(SamplingKernels).GetMethod(nameof(SamplingKernels.Sample))!),
                new KernelVariant("vq_nearest", "rows", typeof(QuantizeKernels).GetMethod(nameof(QuantizeKernels.Nearest))!),
            },
            Elementwise("patchify", Unary(typeof(ElementwiseOps.Identity))).Skip(1),
            Elementwise("unpatchify", Unary(typeof(ElementwiseOps.Identity))).Skip(1),
            new[]
            {
                new KernelVariant("conv2d", "implicit_gemm", Closed(typeof(MatMulKernels), nameof(MatMulKernels.Tiled), typeof(MatMulTiles.Large), typeof(Flags.Yes), typeof(Im2ColB), typeof(ElementwiseOps.Identity), typeof(Flags.No))),
                new KernelVariant("conv2d", "im2col_gemm", Closed(typeof(MatMulKernels), nameof(MatMulKernels.Tiled), typeof(MatMulTiles.Large), typeof(Flags.Yes), typeof(DenseB<Flags.No>), typeof(Activation.Relu), typeof(Flags.No))),
                new KernelVariant("im2col", "gather", typeof(ConvKernels).GetMethod(nameof(ConvKernels.Im2Col))!),
                new KernelVariant("col2im", "gather", Closed(typeof(ConvKernels), nameof(ConvKernels.Col2Im), typeof(ElementwiseOps.Identity))),
                new KernelVariant("conv_transpose2d", "col2im", Closed(typeof(ConvKernels), nameof(ConvKernels.Col2Im), typeof(Activation.Relu))),
                new KernelVariant("conv1d", "implicit_gemm", Closed(typeof(MatMulKernels), nameof(MatMulKernels.Tiled), typeof(MatMulTiles.Small), typeof(Flags.Yes), typeof(Im2ColB), typeof(ElementwiseOps.Identity), typeof(Flags.No))),
            },
            Elementwise("split", Unary(typeof(ElementwiseOps.Identity))),
            Elementwise("unary_math", Unary(typeof(UnaryMath))),
            new[] { new KernelVariant("topk", "rows", typeof(SelectionKernels).GetMethod(nameof(SelectionKernels.TopK))!) },
            new[] { new KernelVariant("cumsum", "lines", typeof(ScanKernels).GetMethod(nameof(ScanKernels.CumSum))!) },
            Elementwise("binary_math", typeof(BinaryMath)),
            BackwardVariants(),
        }.SelectMany(v => v).ToList();

    /// <summary>The kernels the backward passes and optimizer steps launch, under the backward check names that exercise them.</summary>
    private static IEnumerable<KernelVariant> BackwardVariants()
    {
        var activations = new[]
        {
            ("relu", typeof(Activation.Relu)), ("leaky_relu", typeof(Activation.LeakyRelu)), ("gelu_erf", typeof(Activation.GeluErf)),
            ("gelu_tanh", typeof(Activation.GeluTanh)), ("silu", typeof(Activation.Silu)), ("sigmoid", typeof(Activation.Sigmoid)),
            ("tanh", typeof(Activation.Tanh)), ("softplus", typeof(Activation.Softplus)), ("elu", typeof(Activation.Elu)),
            ("exp", typeof(Activation.Exp)), ("scale", typeof(Activation.Scale)),
        };
        foreach (var (name, op) in activations)
            foreach (var v in ActivationBackward(name, op))
                yield return v;
        var id = typeof(ElementwiseOps.Identity);
        foreach (var (tile, aK, bK) in new[] { (typeof(MatMulTiles.Large), true, true), (typeof(MatMulTiles.Large), false, false), (typeof(MatMulTiles.Large), true, false) })
            yield return Tiled("matmul_backward", $"large_{(aK ? "a" : "at")}_{(bK ? "bt" : "b")}", tile, aK, bK, id);
        yield return Tiled("batched_matmul_backward", "large_a_bt", typeof(MatMulTiles.Large), true, true, id);
        yield return Tiled("matmul_bias_act_backward", "large_at_b", typeof(MatMulTiles.Large), false, false, id);
        // A Linear's dA = g·W with the producer's act′(z) in the epilogue: the gated specializations.
        foreach (var act in new[] { typeof(Activation.Relu), typeof(Activation.GeluErf), typeof(Activation.GeluTanh), typeof(Activation.Silu) })
            yield return Tiled("matmul_act_backward", $"large_a_b_{act.Name}", typeof(MatMulTiles.Large), true, false, act, gate: true);
        foreach (var kernel in new[] { "reduce_sum_backward", "reduce_mean_backward", "view_backward" })
            yield return new KernelVariant(kernel, "copy_strided", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Strided), Unary(id)));
        yield return new KernelVariant("reduce_mean_backward", "scale", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), Unary(typeof(Activation.Scale))));
        foreach (var (kernel, op) in new[] { ("add_backward", typeof(ElementwiseOps.Add)), ("sub_backward", typeof(ElementwiseOps.Sub)), ("mul_backward", typeof(ElementwiseOps.Mul)), ("div_backward", typeof(ElementwiseOps.Div)) })
        {
            yield return new KernelVariant(kernel, "columns", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Columns), typeof(float), typeof(ReduceOps.Sum)));
            yield return new KernelVariant(kernel, "strided", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Strided), op));
        }
        yield return new KernelVariant("softmax_backward", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.BackwardRows), typeof(Flags.No)));
        yield return new KernelVariant("log_softmax_backward", "rows", Closed(typeof(SoftmaxKernels), nameof(SoftmaxKernels.BackwardRows), typeof(Flags.Yes)));
        foreach (var (kernel, rms) in new[] { ("layernorm_backward", false), ("rmsnorm_backward", true), ("groupnorm_backward", false), ("batchnorm2d_train_backward", false) })
            yield return new KernelVariant(kernel, "rows", Closed(typeof(NormalizationKernels), nameof(NormalizationKernels.BackwardRows), rms ? typeof(Flags.Yes) : typeof(Flags.No)));
        yield return new KernelVariant("cross_entropy_backward", "forward_rows", typeof(CrossEntropyKernels).GetMethod(nameof(CrossEntropyKernels.Rows))!);
        yield return new KernelVariant("cross_entropy_backward", "backward", typeof(CrossEntropyKernels).GetMethod(nameof(CrossEntropyKernels.Backward))!);
        foreach (var kernel in new[] { "mse_loss_backward", "bce_with_logits_backward", "gaussian_kl_backward" })
            yield return new KernelVariant(kernel, "flat_mul", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), typeof(ElementwiseOps.Mul)));
        foreach (var kernel in new[] { "permute_backward", "transpose_backward" })
            yield return new KernelVariant(kernel, "tiled", typeof(LayoutKernels).GetMethod(nameof(LayoutKernels.Transpose))!);
        foreach (var kernel in new[] { "concat_backward", "split_backward" })
            yield return new KernelVariant(kernel, "copy_strided", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Strided), Unary(id)));
        yield return new KernelVariant("axpy_backward", "flat_scale", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), Unary(typeof(Activation.Scale))));
        foreach (var kernel in new[] { "embedding_backward", "gather_rows_backward" })
            yield return new KernelVariant(kernel, "scatter_segments", typeof(EmbeddingKernels).GetMethod(nameof(EmbeddingKernels.ScatterSegments))!);
        yield return new KernelVariant("dropout_backward", "philox", typeof(SamplingKernels).GetMethod(nameof(SamplingKernels.DropoutBackward))!);
        yield return new KernelVariant("attention_backward", "fused_forward", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.Fused))!);
        yield return Tiled("attention_backward", "recompute_scores", typeof(MatMulTiles.Large), true, true, id);
        yield return new KernelVariant("attention_backward", "fused_keys", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.BackwardKeys))!);
        yield return new KernelVariant("attention_backward", "fused_queries", typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.BackwardQueries))!);
        foreach (var (kernel, op) in new[] { ("l1_loss_backward", typeof(LossOps.Abs)), ("smooth_l1_loss_backward", typeof(LossOps.SmoothL1)), ("huber_loss_backward", typeof(LossOps.Huber)),
                     ("kl_div_backward", typeof(LossOps.XLogX)), ("l1_penalty_backward", typeof(LossOps.Abs)) })
        {
            yield return new KernelVariant(kernel, "forward", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), Unary(op)));
            yield return new KernelVariant(kernel, "backward", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), typeof(Activation.Backward<>).MakeGenericType(op)));
        }
        yield return new KernelVariant("l2_penalty_backward", "flat_mul", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), typeof(ElementwiseOps.Mul)));
        yield return new KernelVariant("nll_loss_backward", "forward_rows", typeof(NllKernels).GetMethod(nameof(NllKernels.Rows))!);
        yield return new KernelVariant("nll_loss_backward", "backward", typeof(NllKernels).GetMethod(nameof(NllKernels.Backward))!);
        yield return new KernelVariant("reduce_max_backward", "argmax", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), typeof(ValueIndex), typeof(ReduceOps.ArgMax)));
        yield return new KernelVariant("reduce_max_backward", "route", typeof(ReduceKernels).GetMethod(nameof(ReduceKernels.MaxBackward))!);
        yield return new KernelVariant("topk_gating_backward", "elements", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.TopKGatingBackward))!);
        yield return new KernelVariant("moe_dispatch_backward", "combine_unit_weights", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.Combine))!);
        yield return new KernelVariant("moe_combine_backward", "rows", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.CombineBackwardRows))!);
        yield return new KernelVariant("moe_combine_backward", "weights", typeof(RoutingKernels).GetMethod(nameof(RoutingKernels.CombineBackwardWeights))!);
        yield return new KernelVariant("adam_step", "fused", typeof(OptimizerKernels).GetMethod(nameof(OptimizerKernels.Adam))!);
        yield return new KernelVariant("sgd_step", "fused", typeof(OptimizerKernels).GetMethod(nameof(OptimizerKernels.Sgd))!);
        yield return new KernelVariant("rmsprop_step", "fused", typeof(OptimizerKernels).GetMethod(nameof(OptimizerKernels.RmsProp))!);
        yield return new KernelVariant("adagrad_step", "fused", typeof(OptimizerKernels).GetMethod(nameof(OptimizerKernels.Adagrad))!);
        yield return new KernelVariant("clip_grad_norm", "coefficient", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), Unary(typeof(ClipCoefficient))));
        yield return new KernelVariant("clip_grad_norm", "sqrt", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), Unary(typeof(SquareRoot))));
    }
}

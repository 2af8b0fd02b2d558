namespace GpuNet.Kernels.Checks;

/// <summary>
/// One kernel family as the tools see it, declared once in its <c>*Checks.cs</c> file: its correctness cases (forward and
/// backward) that <c>check</c> and the tests run, the compiled forms of its kernels that <c>ptx</c> and the PTX test compile,
/// and its bench shapes with their FLOP and byte formulas that <c>run</c> times. A new kernel registers in its family only.
/// </summary>
/// <param name="Name">The family's name, as its source files are named (<c>pooling</c>: src/Kernels/Pooling.cs, src/Ops/Pooling.cs, ...).</param>
/// <param name="Cases">The check cases.</param>
/// <param name="Variants">Every kernel method its launchers can load, closed over the specializations they use.</param>
/// <param name="Bench">The bench cases (GpuNet's own; peers such as cuBLAS or ONNX Runtime are the bench's).</param>
public sealed record KernelFamily(string Name, Func<IEnumerable<CheckCase>> Cases, Func<IEnumerable<KernelVariant>> Variants, Func<IEnumerable<BenchCase>> Bench);

/// <summary>Every kernel family, in the order <c>check</c>, <c>ptx</c> and <c>run</c> list them.</summary>
public static class KernelFamilies
{
    /// <summary>The families.</summary>
    public static IReadOnlyList<KernelFamily> All { get; } = new[]
    {
        ElementwiseChecks.Family, ReduceChecks.Family, ActivationChecks.Family, MathChecks.Family, SelectionChecks.Family,
        MatMulChecks.Family, SoftmaxChecks.Family, NormalizationChecks.Family, LayoutChecks.Family, ConvChecks.Family,
        PoolingChecks.Family, AttentionChecks.Family, RoutingChecks.Family, SequenceChecks.Family, RecurrentChecks.Family, OptimizerChecks.Family,
    };
}

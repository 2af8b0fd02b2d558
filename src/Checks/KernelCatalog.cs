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
/// <summary>
/// Every kernel method that launchers can load, closed over the specializations they use, keyed by the registry names: the
/// union of the families' <see cref="KernelFamily.Variants"/>. The offline PTX check and the <c>ptx</c> verb compile exactly
/// this list. The helpers close the shared kernel templates (elementwise, reduction, tiled matmul) for the families.
/// </summary>
public static class KernelCatalog
{
    /// <summary>All variants, in family order.</summary>
    public static IReadOnlyList<KernelVariant> All { get; } = KernelFamilies.All.SelectMany(f => f.Variants()).ToList();

    internal static MethodInfo Closed(Type owner, string name, params Type[] args) =>
        owner.GetMethod(name, BindingFlags.Public | BindingFlags.Static)!.MakeGenericMethod(args);

    internal static KernelVariant Method(string kernel, string variant, Type owner, string name) =>
        new(kernel, variant, owner.GetMethod(name, BindingFlags.Public | BindingFlags.Static)!);

    internal static IEnumerable<KernelVariant> Elementwise(string kernel, Type op) => new[]
    {
        new KernelVariant(kernel, "flat", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), op)),
        new KernelVariant(kernel, "strided", Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Strided), op)),
    };

    internal static KernelVariant Flat(string kernel, string variant, Type op) => new(kernel, variant, Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Flat), op));

    internal static KernelVariant Strided(string kernel, string variant, Type op) => new(kernel, variant, Closed(typeof(ElementwiseKernels), nameof(ElementwiseKernels.Strided), op));

    internal static IEnumerable<KernelVariant> Reduce(string kernel, Type acc, Type op) => new[]
    {
        new KernelVariant(kernel, "rows", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), acc, op)),
        new KernelVariant(kernel, "columns", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Columns), acc, op)),
    };

    internal static Type Unary(Type op) => typeof(UnaryAsBinary<>).MakeGenericType(op);

    internal static IEnumerable<KernelVariant> Activation(string kernel, Type op) => Elementwise(kernel, Unary(op)).Take(1);

    /// <summary>An activation's backward: the flat and strided elementwise kernels closed over dy·f′(x).</summary>
    internal static IEnumerable<KernelVariant> ActivationBackward(string kernel, Type op) =>
        Elementwise(kernel + "_backward", typeof(Activation.Backward<>).MakeGenericType(op));

    internal static KernelVariant Tiled(string kernel, string variant, Type tile, bool aK, bool bK, Type act, bool gate = false) =>
        new(kernel, variant, Closed(typeof(MatMulKernels), nameof(MatMulKernels.Tiled), tile,
            aK ? typeof(Flags.Yes) : typeof(Flags.No), typeof(DenseB<>).MakeGenericType(bK ? typeof(Flags.Yes) : typeof(Flags.No)), act,
            gate ? typeof(Flags.Yes) : typeof(Flags.No)));
}

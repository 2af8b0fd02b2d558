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

    private static Type Unary(Type op) => typeof(UnaryAsBinary<>).MakeGenericType(op);

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
            new[] { new KernelVariant("sum_last_axis", "rows", Closed(typeof(ReduceKernels), nameof(ReduceKernels.Rows), typeof(ReduceOps.Sum))) },
        }.SelectMany(v => v).ToList();
}

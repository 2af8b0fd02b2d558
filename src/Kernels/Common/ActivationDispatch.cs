namespace GpuNet.Kernels;

/// <summary>Something to run with an activation as a type argument, so each activation is a compile-time specialization of the kernel.</summary>
internal interface IActivationVisitor
{
    void Visit<TAct>() where TAct : struct, IDifferentiableUnaryOp;
}

/// <summary>Turns a <see cref="FusedActivation"/> value into the activation's struct type for a fused epilogue.</summary>
internal static class ActivationDispatch
{
    /// <summary>Calls <paramref name="visitor"/> with the struct type of <paramref name="act"/> (identity for none).</summary>
    internal static void WithActivation<TVisitor>(FusedActivation act, TVisitor visitor) where TVisitor : IActivationVisitor
    {
        switch (act)
        {
            case FusedActivation.Relu: visitor.Visit<Activation.Relu>(); break;
            case FusedActivation.Gelu: visitor.Visit<Activation.GeluErf>(); break;
            case FusedActivation.GeluTanh: visitor.Visit<Activation.GeluTanh>(); break;
            case FusedActivation.Silu: visitor.Visit<Activation.Silu>(); break;
            case FusedActivation.Relu6: visitor.Visit<Activation.Relu6>(); break;
            default: visitor.Visit<ElementwiseOps.Identity>(); break;
        }
    }
}

using System.Runtime.CompilerServices;

namespace GpuNet.Kernels;

/// <summary>
/// The kernel-layer operations the runtime's autograd engine calls (gradient accumulation, the view ops' backward
/// passes), registered with <see cref="Autograd.Kernels"/> when this assembly loads.
/// </summary>
internal sealed class GradientKernels : IGradientKernels
{
    // CA2255 warns libraries off module initializers; this one only hands the runtime layer (which may not reference this
    // assembly) its kernels, and any tensor that can need them was made by an op of this assembly, so it has loaded.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => Autograd.Kernels = new GradientKernels();

    public Tensor Add(Tensor a, Tensor b) => Ops.Add(a, b);

    public void AddInPlace(Tensor accumulator, Tensor g) => Ops.Add(accumulator, g, accumulator);

    public Tensor SumToShape(Tensor g, int[] shape) => Ops.SumToShape(g, shape);

    public Tensor Copy(Tensor t) => Ops.CopyOf(t);

    public void CopyInto(Tensor source, Tensor destination) => Ops.Copy(source, destination);

    public Tensor Full(Device device, float value, int[] shape) => Ops.Full(device, value, shape);
}

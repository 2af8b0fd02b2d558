namespace GpuNet.Kernels.Checks;

/// <summary>One timed launch set-up: inputs made on the device and the call that runs the op once (disposing its outputs).</summary>
public sealed class BenchInstance(Action run, params IDisposable[] owned) : IDisposable
{
    /// <summary>Runs the op once.</summary>
    public Action Run { get; } = run;

    /// <summary>Bytes of the inputs (to decide how many sets to rotate through so the cache cannot hold them): the owned
    /// tensors by default; a peer whose inputs are host arrays says its own, so it rotates as many sets as GpuNet does.</summary>
    public long InputBytes { get; init; } = owned.OfType<Tensor>().Sum(t => (long)t.Length * 4);

    /// <summary>Disposes the inputs.</summary>
    public void Dispose()
    {
        foreach (var o in owned)
            o.Dispose();
    }
}

/// <summary>
/// A benchmark case: kernel name (as in the check registry), a shape label, the minimum FLOPs and bytes of one launch
/// (KERNELS.md's formulas), which presets include it, and how to build it. <see cref="Implementation"/> names an implementation
/// other than GpuNet's (cublas, or a GpuNet baseline such as attention_unfused) timed on the same shape.
/// </summary>
public sealed record BenchCase(string Kernel, string Shape, double Flops, double Bytes, string[] Presets, Func<Device, ulong, BenchInstance> Create)
{
    /// <summary>Whose implementation: <c>gpunet</c>, or a peer or baseline.</summary>
    public string Implementation { get; init; } = "gpunet";

    /// <summary>For a peer row: the GpuNet kernel it is compared with.</summary>
    public string? PeerOf { get; init; }

    /// <summary>Why this case cannot run here (e.g. cuBLAS on a non-CUDA device), or null.</summary>
    public Func<Device, string?> Unavailable { get; init; } = _ => null;
}

namespace GpuNet;

/// <summary>
/// What a tensor knows of the recorded op that computed it (<see cref="Tensor.GradFn"/>). The runtime only keeps the link
/// and lets go of it when the tensor is disposed; the autograd engine that records nodes, saves their tensors and runs
/// their backward lives in the op layer (GpuNet.Ops' <c>Autograd</c>), above the kernels it needs.
/// </summary>
public abstract class GradNode
{
    /// <summary>A node for <paramref name="op"/>, whose output has shape <paramref name="outputShape"/>.</summary>
    protected GradNode(string op, int[] outputShape)
    {
        Op = op;
        OutputShape = outputShape;
    }

    /// <summary>The op that recorded the node (<c>matmul</c>, <c>add</c>, ...).</summary>
    public string Op { get; }

    /// <summary>The shape of the output whose gradient the node receives.</summary>
    public IReadOnlyList<int> OutputShape { get; }

    /// <summary>True once a backward pass (without retainGraph) or the last reference has freed the saved tensors.</summary>
    public abstract bool IsFreed { get; }

    /// <summary>True when the node has a backward; false for an op whose gradient is not implemented.</summary>
    public abstract bool HasBackward { get; }

    /// <summary>A tensor holding this node as its <see cref="Tensor.GradFn"/> let go of it (disposed, or given another node).</summary>
    protected internal abstract void Release();
}

using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>The README's embedding example, kept compiling and true.</summary>
public sealed class ReadmeExampleTests
{
    [Fact]
    public void EmbeddingExampleGivesTheDocumentedResult()
    {
        var device = TestDevices.Cpu;
        long before = PoolAccounting.SettledBytesInUse(device);
        float[] result;
        using (var scope = device.Scope())
        {
            var a = Tensor.FromArray(device, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
            var b = Tensor.FromArray(device, new float[] { 10, 20, 30 }, 3);
            var c = Ops.Add(a, b);
            var rowSums = Ops.SumLastAxis(c);
            result = rowSums.ToArray();
        }
        Assert.Equal(new float[] { 66, 75 }, result);
        Assert.Equal(before, PoolAccounting.SettledBytesInUse(device));
    }
}

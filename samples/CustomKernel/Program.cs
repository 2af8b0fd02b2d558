// A kernel of your own on GpuNet's memory: an ILGPU kernel compiled once through the device's kernel cache and launched on
// tensors' views, beside GpuNet's own ops (here a fused a·x + b·y, checked against Ops). On a GPU it compiles to PTX; on
// the cpu device it runs on ILGPU's CPU accelerator, which executes any ILGPU kernel.
// Run: dotnet run -c Release --project samples/CustomKernel [-- DEVICE]
using GpuNet;
using ILGPU;
using ILGPU.Runtime;

using var device = GpuNet.Device.Open(args.Length > 0 ? args[0] : null);   // ILGPU has a Device type too
const int n = 100_003;   // not a multiple of the group size: the kernel's bounds check matters
using var scope = device.Scope();
var x = Tensor.RandomUniform(device, new[] { n }, seed: 1);
var y = Tensor.RandomUniform(device, new[] { n }, seed: 2);
var result = Tensor.Empty(device, n);

var launch = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float>>(Kernels.Axpby);
int group = Math.Min(256, device.Accelerator.MaxNumThreadsPerGroup);
launch(device.Accelerator.DefaultStream, new KernelConfig((n + group - 1) / group, group), x.ContiguousView, y.ContiguousView, result.ContiguousView, 2f, -3f);
device.Synchronize();

var expected = Ops.Add(Ops.Scale(x, 2f), Ops.Scale(y, -3f)).ToArray();
var got = result.ToArray();
double worst = got.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
Console.WriteLine($"axpby on {device.Id}: {n} elements, largest difference from Ops {worst:G3}, kernels compiled {device.Kernels.Count}");
Console.WriteLine(worst <= 1e-6 ? "match" : "MISMATCH");

static class Kernels
{
    /// <summary>result[i] = a·x[i] + b·y[i]: an explicitly grouped kernel (GpuNet's kernel cache loads those).</summary>
    public static void Axpby(ArrayView<float> x, ArrayView<float> y, ArrayView<float> result, float a, float b)
    {
        int i = Grid.GlobalIndex.X;
        if (i < result.Length)
            result[i] = a * x[i] + b * y[i];
    }
}

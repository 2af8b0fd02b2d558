// GpuNet as the compute backend of a .NET program: open a device, make tensors, run ops, read results back.
// Run: dotnet run -c Release --project samples/Embedding [-- DEVICE]   (DEVICE: auto, cpu, cpu-sim, cuda, ...)
using GpuNet;

using var device = Device.Open(args.Length > 0 ? args[0] : null);   // GPUNET_DEVICE, else the best GPU, else the CPU
Console.WriteLine($"device: {device.Id} ({device.Info.Name})");

using (var scope = device.Scope())                                   // every tensor made inside is disposed at the end
{
    var a = Tensor.FromArray(device, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
    var b = Tensor.FromArray(device, new float[] { 10, 20, 30 }, 3);
    var c = a * 2f + b;                                              // operators broadcast as NumPy does: [2, 3] + [3]
    Console.WriteLine($"a * 2 + b = [{string.Join(", ", c.ToArray())}]");

    var w = Tensor.RandomNormal(device, new[] { 3, 4 }, seed: 7, std: 0.05f);
    var y = Ops.Softmax(Ops.MatMul(c, w));                           // [2, 4], rows sum to 1
    var rowSums = Ops.SumLastAxis(y).ToArray();
    Console.WriteLine($"softmax(c · w) row sums: {string.Join(", ", rowSums.Select(v => v.ToString("0.000")))}");
    Console.WriteLine($"largest probability: {Ops.Max(Ops.Max(y, 1), 0).Item():0.000}");
}
Console.WriteLine($"pool after the scope: {device.Pool.Stats}");

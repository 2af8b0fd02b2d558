// Training a model of your own: a Layer whose parts are fields (found and named by themselves), Adam, MSE, a scope per
// step so nothing leaks, and a checkpoint written and read back.
// Run: dotnet run -c Release --project samples/Training
using GpuNet;
using GpuNet.Layers;

using var device = Device.Open(args.Length > 0 ? args[0] : null);
device.ManualSeed(0);
using var model = new Mlp(device);
Console.WriteLine($"parameters: {string.Join(", ", model.Parameters().Select(p => p.Name))} ({model.ParameterCount} values)");

var xs = Enumerable.Range(0, 256).Select(i => -2f + 4f * i / 255).ToArray();
using var x = Tensor.FromArray(device, xs, 256, 1);
using var y = Tensor.FromArray(device, xs.Select(v => 3 * v * v + 5).ToArray(), 256, 1);
using var optimizer = new Adam(model.Parameters(), learningRate: 1e-2f);
float last = 0;
for (int step = 1; step <= 600; step++)
{
    using var scope = device.Scope();
    var loss = Ops.MseLoss(model.Forward(x), y);
    loss.Backward();
    optimizer.Step();
    optimizer.ZeroGrad();
    last = loss.Item();
    if (step % 200 == 0)
        Console.WriteLine($"step {step}: MSE {last:G4}, {device.Pool.Stats.BytesInUse} bytes in use");
}

string path = Path.Combine(Path.GetTempPath(), $"gpunet-sample-{Environment.ProcessId}.safetensors");
Checkpoint.Save(path, model, optimizer);
using var restored = new Mlp(device);
using var restoredOptimizer = new Adam(restored.Parameters(), learningRate: 1e-2f);
Checkpoint.Load(path, restored, restoredOptimizer);
File.Delete(path);
model.Eval();
restored.Eval();
using var a = model.Forward(x);
using var b = restored.Forward(x);
Console.WriteLine($"restored model gives the same predictions: {a.ToArray().SequenceEqual(b.ToArray())}");
Console.WriteLine(last < 1 ? "converged" : $"did not converge (MSE {last})");

/// <summary>y = W₂·relu(W₁·x + b₁) + b₂ with 64 hidden units; its two Linear fields are its children "hidden" and "output".</summary>
sealed class Mlp : Layer
{
    private readonly Linear _hidden, _output;

    public Mlp(Device device) : base(device) => (_hidden, _output) = (new Linear(device, 1, 64), new Linear(device, 64, 1));

    public override Tensor Forward(Tensor x)
    {
        using var h = _hidden.Forward(x);
        using var a = Ops.Relu(h);
        return _output.Forward(a);
    }
}

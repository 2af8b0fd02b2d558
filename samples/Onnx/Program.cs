// Running an ONNX model exported from PyTorch: what it takes and gives, one run on the recorded input, the answer compared
// with PyTorch's, and the time per run. The bundled model is a small CNN (two convolutions with batch norm, 16×16 inputs)
// exported by torch.onnx.export; pass another model.onnx (and a folder with input_0.pb/output_0.pb) to run yours.
// Run: dotnet run -c Release --project samples/Onnx [-- MODEL.onnx [DEVICE]]
using System.Diagnostics;
using GpuNet;
using GpuNet.Onnx;

string path = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "model", "model.onnx");
using var device = Device.Open(args.Length > 1 ? args[1] : null);
using var model = OnnxModel.Load(path, device);   // every unsupported node would be listed here, before anything runs
Console.WriteLine($"{Path.GetFileName(path)} on {device.Id}: opset {model.Opset}");
foreach (var input in model.Inputs)
    Console.WriteLine($"  input  {input}");
foreach (var output in model.Outputs)
    Console.WriteLine($"  output {output}");

string data = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "test_data_set_0");
// The recorded input when there is one, else ones in the input's shape (a symbolic dimension taken as 1).
int[] shape = (model.Inputs[0].Dimensions ?? []).Select(d => (int)(d.Value ?? 1)).ToArray();
using var x = File.Exists(Path.Combine(data, "input_0.pb"))
    ? OnnxTensor.ReadPb(Path.Combine(data, "input_0.pb"))
    : OnnxTensor.FromFloats(Enumerable.Repeat(1f, shape.Aggregate(1, (p, d) => p * d)).ToArray(), shape);
var inputs = new Dictionary<string, OnnxTensor> { [model.Inputs[0].Name] = x };
var outputs = model.Run(inputs);
var y = outputs[model.Outputs[0].Name].ToFloats();
Console.WriteLine($"first outputs: {string.Join(", ", y.Take(5).Select(v => v.ToString("0.0000")))}");
if (File.Exists(Path.Combine(data, "output_0.pb")))
{
    using var expected = OnnxTensor.ReadPb(Path.Combine(data, "output_0.pb"));
    double worst = y.Zip(expected.ToFloats(), (a, b) => Math.Abs(a - b)).Max();
    Console.WriteLine($"largest difference from PyTorch's output: {worst:G3}");
}
foreach (var o in outputs.Values)
    o.Dispose();

var clock = Stopwatch.StartNew();
int runs = 0;
while (clock.ElapsedMilliseconds < 500 || runs < 10)
{
    foreach (var o in model.Run(inputs).Values)
        o.Dispose();
    runs++;
}
Console.WriteLine($"{runs} runs, {clock.Elapsed.TotalMilliseconds / runs:0.000} ms per run (including the first ones)");

using System.Text.Json.Nodes;
using GpuNet.Kernels.Checks;
using GpuNet.Tests;
using NJsonSchema;
using Xunit;

namespace GpuNet.Bench.Tests;

public sealed class BenchTests
{
    private static Device Cpu => TestDevices.Cpu;

    private static readonly Lazy<BenchReport> _report = new(() =>
    {
        var cases = BenchRegistry.For("small").Where(c => c.Kernel is "add" or "matmul" or "attention" or "conv2d").Take(8).ToList();
        var ceilings = new DeviceCeilings(20, 1, null);
        var results = cases.Select(c => Runner.Measure(Cpu, c, 1, 3, TimeSpan.FromSeconds(1), 1)).ToList();
        return BenchReport.From(Cpu, "small", ceilings, results);
    });

    [Theory]
    [InlineData("small")]
    [InlineData("medium")]
    [InlineData("large")]
    public void EveryRegisteredKernelHasABenchCase(string preset)
    {
        var benched = BenchRegistry.For(preset).Select(c => c.Kernel).ToHashSet();
        var missing = KernelRegistry.Kernels.Where(k => !benched.Contains(k)).ToList();
        Assert.True(missing.Count == 0, "no bench case for: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task ResultsValidateAgainstTheSchemaFile()
    {
        var schema = await JsonSchema.FromFileAsync(Path.Combine(AppContext.BaseDirectory, "schema", "results.schema.json"));
        var json = _report.Value.ToJson().ToJsonString();
        var errors = schema.Validate(json);
        Assert.True(errors.Count == 0, string.Join("; ", errors.Select(e => $"{e.Path}: {e.Kind}")));
        // A document that breaks the schema is caught: the check can fail.
        var broken = JsonNode.Parse(json)!.AsObject();
        broken["results"]!.AsArray()[0]!["bound"] = "sideways";
        Assert.NotEmpty(schema.Validate(broken.ToJsonString()));
    }

    [Fact]
    public void TimesArePositiveAndCublasIsSkippedOnTheCpu()
    {
        var rows = _report.Value.Rows;
        Assert.All(rows.Where(r => r["skipped"] is null), r => Assert.True((double)r["median_ms"]! > 0));
        var blas = Assert.Single(rows.Where(r => (string?)r["implementation"] == "cublas").Take(1));
        Assert.Contains("CUDA", (string)blas["skipped"]!);
    }

    [Fact]
    public void CompareMatchesKernelAndShape()
    {
        string a = Path.GetTempFileName(), b = Path.GetTempFileName();
        try
        {
            _report.Value.WriteJson(a);
            var doubled = _report.Value.ToJson();
            foreach (var row in doubled["results"]!.AsArray())
                if (row!["median_ms"] is not null)
                    row["median_ms"] = (double)row["median_ms"]! * 2;
            File.WriteAllText(b, doubled.ToJsonString());
            var table = BenchReport.Compare(BenchReport.Load(a), BenchReport.Load(b));
            var text = new StringWriter();
            table.Print(text);
            Assert.Contains("2.00", text.ToString());
            Assert.Contains("matmul", text.ToString());
        }
        finally
        {
            File.Delete(a);
            File.Delete(b);
        }
    }

    [Fact]
    public void RooflinePlotIsAPng()
    {
        string path = Path.Combine(Path.GetTempPath(), $"roofline-{Guid.NewGuid():N}.png");
        try
        {
            _report.Value.WritePlot(path);
            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 10_000);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("NVIDIA H100 80GB HBM3", "H100")]
    [InlineData("NVIDIA H100 PCIe", "H100 PCIe")]
    [InlineData("NVIDIA H200", "H200")]
    [InlineData("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB")]
    [InlineData("NVIDIA GeForce RTX 4090", "RTX 4090")]
    public void DatasheetLookupFindsKnownGpus(string device, string expected) =>
        Assert.Equal(expected, Ceilings.Lookup(device)?.Name);

    [Fact]
    public void MeasuredCeilingsArePositive()
    {
        var c = Ceilings.Measure(Cpu);
        Assert.True(c.BandwidthGBs > 0 && c.Fp32GFlops > 0);
    }
}

/// <summary>The train verb end to end on the fast CPU device: files written, and readable by the library.</summary>
public sealed class TrainVerbTests
{
    [Fact]
    public void TrainDnnWritesWeightsAndALossCurve()
    {
        var dir = Directory.CreateTempSubdirectory("gpunet-train-").FullName;
        try
        {
            Assert.Equal(0, TrainVerb.Run("dnn", Cli.Parse(new[] { "dnn", "--device", "cpu", "--steps", "30", "--out", dir }, TrainVerb.Options)));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(dir, "dnn-loss.png"))[..4]);
            using var device = Device.Open("cpu");
            using var model = GpuNet.Layers.DnnRegression.Model(device);
            using var weights = GpuNet.Layers.SafeTensors.Open(Path.Combine(dir, "dnn.safetensors"));
            model.Load(weights);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void TrainGptWritesWeightsThatGenerate()
    {
        var dir = Directory.CreateTempSubdirectory("gpunet-train-").FullName;
        try
        {
            var args = new[] { "gpt", "--device", "cpu", "--steps", "3", "--batch", "2", "--context", "16", "--dim", "16", "--heads", "2", "--layers", "1", "--chars", "10", "--out", dir };
            Assert.Equal(0, TrainVerb.Run("gpt", Cli.Parse(args, TrainVerb.Options)));
            using var device = Device.Open("cpu");
            var (model, vocabulary) = GpuNet.Layers.CharGpt.Load(device, Path.Combine(dir, "gpt.safetensors"));
            using (model)
                Assert.Equal(15, GpuNet.Layers.CharGpt.Continue(model, vocabulary, "KING:", 10).Length);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void UnknownModelIsAUsageError() =>
        Assert.Throws<UsageException>(() => TrainVerb.Run("resnet", Cli.Parse(new[] { "resnet" }, TrainVerb.Options)));
}

public sealed class OnnxVerbTests
{
    private const string Data = "/usr/share/libonnx-testdata/data";

    private static string Capture(Func<int> run, out int code)
    {
        var old = Console.Out;
        using var writer = new StringWriter();
        Console.SetOut(writer);
        try
        {
            code = run();
        }
        finally
        {
            Console.SetOut(old);
        }
        return writer.ToString();
    }

    [Fact]
    public void TestPrintsARowPerCaseAndASummary()
    {
        string dir = Path.Combine(Path.GetTempPath(), "gpunet-onnx-verb-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(dir);
            var json = Path.Combine(dir, "r.json");
            var text = Capture(() => OnnxVerb.Run(new[] { "onnx", "test", Data + "/pytorch-operator", "--device", "cpu", "--json", json }), out int code);
            Assert.Equal(0, code);
            Assert.Contains("test_operator_conv", text);
            Assert.Matches(@"30 passed, 0 failed, 5 unsupported of 35 cases on cpu", text);
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            Assert.Equal(30, doc.RootElement.GetProperty("passed").GetInt32());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void InfoListsUnsupportedNodesAndRunPrintsOutputs()
    {
        var info = Capture(() => OnnxVerb.Run(new[] { "onnx", "info", Data + "/node/test_lstm_defaults/model.onnx" }), out int code);
        Assert.Equal(0, code);
        Assert.Contains("opset 14", info);
        var run = Capture(() => OnnxVerb.Run(new[] { "onnx", "run", Data + "/pytorch-converted/test_Conv2d_groups/model.onnx", "--device", "cpu", "--runs", "2" }), out code);
        Assert.Equal(0, code);
        Assert.Contains("Float [2, 6, 4, 4]", run);
        Assert.Contains("median of 2", run);
    }

    [Fact]
    public void MissingSubVerbOrPathIsAUsageError()
    {
        Assert.Throws<UsageException>(() => OnnxVerb.Run(new[] { "onnx" }));
        Assert.Throws<UsageException>(() => OnnxVerb.Run(new[] { "onnx", "test" }));
        Assert.Throws<UsageException>(() => OnnxVerb.Run(new[] { "onnx", "fly", "x" }));
    }
}

public sealed class OnnxModelBenchTests
{
    [Fact]
    public void RunOnnxTimesGpuNetBesideOnnxRuntimeAndComparesOutputs()
    {
        var model = Path.Combine(AppContext.BaseDirectory, "onnx-models", "torch_mlp");
        var old = Console.Out;
        using var writer = new StringWriter();
        Console.SetOut(writer);
        int code;
        try
        {
            code = OnnxModelBench.Run(Cli.Parse(new[] { "run", "--onnx", model, "--device", "cpu" }, new Dictionary<string, string> { ["onnx"] = "many", ["device"] = "one", ["runs"] = "one" }));
        }
        finally
        {
            Console.SetOut(old);
        }
        var text = writer.ToString();
        Assert.Equal(0, code);
        Assert.Contains("median of 20", text);
        Assert.Matches(@"torch_mlp\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+×", text);
        Assert.DoesNotContain("OUTPUTS DIFFER", text);
    }
}

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
        // For each kernel its first small shape with every implementation timed on it (matmul beside cuBLAS, conv2d beside im2col).
        var small = BenchRegistry.For("small");
        var cases = new[] { "add", "matmul", "attention", "conv2d" }
            .SelectMany(k => small.Where(c => c.Kernel == k && c.Shape == small.First(f => f.Kernel == k).Shape)).ToList();
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
    public void CompareMatchesKernelShapeAndImplementation()
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
            var table = BenchReport.Compare(BenchReport.Load(a), BenchReport.Load(b), out int matched);
            // Implementation to implementation: every timed row once, each against its own double (was every pair of the
            // case: gpunet × onnxruntime and so on).
            int timed = _report.Value.Rows.Count(r => r["median_ms"] is not null);
            Assert.Equal(timed, matched);
            var text = new StringWriter();
            table.Print(text);
            var ratios = text.ToString().Split('\n').Where(l => l.Contains("matmul") || l.Contains("softmax")).Select(l => l.TrimEnd().Split(' ')[^1]).ToList();
            Assert.NotEmpty(ratios);
            Assert.All(ratios, r => Assert.Equal("2.00", r));
            // Files with no implementation in common (a run against a peer's file, one row per case) pair what each has for
            // the case: every timed row of A whose case the peer timed, once.
            var peer = doubled["results"]!.AsArray().Where(r => (string?)r!["implementation"] == "gpunet").Select(r => r!.DeepClone()).ToList();
            foreach (var row in peer)
                row["implementation"] = "torch";
            doubled["results"] = new JsonArray(peer.ToArray());
            File.WriteAllText(b, doubled.ToJsonString());
            BenchReport.Compare(BenchReport.Load(a), BenchReport.Load(b), out int crossed);
            var peerCases = peer.Where(r => r["median_ms"] is not null).Select(r => (string?)r["kernel"] + "/" + (string?)r["shape"]).ToHashSet();
            Assert.Equal(_report.Value.Rows.Count(r => r["median_ms"] is not null && peerCases.Contains((string?)r["kernel"] + "/" + (string?)r["shape"])), crossed);
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

    [Fact]
    public void TheRooflineLegendHasAnEntryPerFamilyAndPeerNotPerKernel()
    {
        var plot = _report.Value.Roofline();
        var points = _report.Value.Rows.Where(r => r["gflops"] is not null && (double)r["gflops"]! > 0 && r["intensity"] is not null && (double)r["flops"]! > 0).ToList();
        var families = points.Select(r => BenchReport.FamilyOf((string)r["kernel"]!)).Distinct().ToList();
        var peers = points.Select(r => (string)r["implementation"]!).Where(i => i != "gpunet").Distinct().ToList();
        var labels = plot.Legend.ManualItems.Select(i => i.LabelText).ToList();
        Assert.Equal(families.Count + peers.Count, labels.Count);
        Assert.Equal(labels.Count, labels.Distinct().Count());
        Assert.All(families, f => Assert.Single(labels, l => l.StartsWith(f + " (")));
        Assert.Contains(labels, l => l.StartsWith("matmul ("));
        // The points themselves carry no legend text (one entry per kernel made ~125 entries over the plot); the roofs do.
        var automatic = plot.GetPlottables().SelectMany(p => p.LegendItems).Where(i => !string.IsNullOrEmpty(i.LabelText)).ToList();
        Assert.True(automatic.Count <= 3, string.Join(", ", automatic.Select(i => i.LabelText)));
        var kernels = points.Select(r => (string)r["kernel"]!).ToHashSet();
        Assert.DoesNotContain(labels, l => kernels.Contains(l.Split(' ')[0]) && !families.Contains(l.Split(' ')[0]));
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
        Assert.True(c.BandwidthSpread >= 0 && c.Fp32Spread >= 0);
    }

    [Fact]
    public void AbsentPeersAreListedOnceNotAsTableRows()
    {
        var text = new StringWriter();
        _report.Value.ToTable().Print(text);
        Assert.DoesNotContain("cublas", text.ToString());
        var absent = _report.Value.AbsentPeers().ToList();
        var blas = Assert.Single(absent, line => line.Contains("cublas"));
        Assert.Contains("CUDA", blas);
    }

    [Theory]
    [InlineData(51.0e9, "FLOP/s", "51.0 GFLOP/s")]
    [InlineData(0.0241e9, "FLOP/s", "24.1 MFLOP/s")]
    [InlineData(3.35e12, "B/s", "3.35 TB/s")]
    [InlineData(999.4, "B/s", "999 B/s")]
    [InlineData(999.6, "B/s", "1.00 kB/s")]
    public void RatesPrintWithAPrefixAndThreeDigits(double value, string unit, string expected) =>
        Assert.Equal(expected, Units.Rate(value, unit));

    [Fact]
    public void TheBoundIsDecidedAgainstTheRoofsWithTheirSpread()
    {
        // Ridge 10 FLOP/B, roofs each uncertain by 10%: the ridge by 1.21×.
        var c = new DeviceCeilings(100, 1000, null, 0.1, 0.1);
        Assert.Equal("memory", c.Bound(0.25));      // an elementwise add
        Assert.Equal("memory", c.Bound(8.0));
        Assert.Equal("balanced", c.Bound(9.0));
        Assert.Equal("balanced", c.Bound(12.0));
        Assert.Equal("compute", c.Bound(13.0));
        Assert.Equal("memory", c.Bound(0));         // a copy does no arithmetic
        // With a tiny measured FMA roof (the simulated GPU), an add is still not called compute-bound unless it is above the ridge.
        var sim = new DeviceCeilings(2.0, 0.02, null);
        Assert.Equal("compute", sim.Bound(0.083));
        Assert.Equal("memory", sim.Bound(0.005));
        Assert.Contains("20.0 MFLOP/s", sim.Describe());
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
            Assert.Equal(0, GpuNetCli.Invoke(new[] { "train", "dnn", "--device", "cpu", "--steps", "30", "--out", dir }));
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
            var args = new[] { "train", "gpt", "--device", "cpu", "--steps", "3", "--batch", "2", "--context", "16", "--dim", "16", "--heads", "2", "--layers", "1", "--chars", "10", "--out", dir };
            Assert.Equal(0, GpuNetCli.Invoke(args));
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
    public void TrainCnnWritesWeightsACurveAndTheAccuracyLine()
    {
        var dir = Directory.CreateTempSubdirectory("gpunet-train-").FullName;
        var console = Console.Out;
        var text = new StringWriter();
        try
        {
            Console.SetOut(text);
            Assert.Equal(0, GpuNetCli.Invoke(new[] { "train", "cnn", "--device", "cpu", "--limit", "300", "--epochs", "1", "--out", dir }));
            Console.SetOut(console);
            var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains(lines, l => l.StartsWith("epoch 1: train loss"));
            Assert.Matches(@"^test accuracy 0\.\d{4} after 1 epochs in [\d.]+ s \(\d+ images/s\)", lines[^1].Trim());
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(dir, "cnn-loss.png"))[..4]);
            using var device = Device.Open("cpu");
            using var model = GpuNet.Layers.ModelZoo.ImageCnn(device);
            using var weights = GpuNet.Layers.SafeTensors.Open(Path.Combine(dir, "cnn.safetensors"));
            model.Load(weights);
        }
        finally
        {
            Console.SetOut(console);
            Directory.Delete(dir, true);
        }
    }

    /// <summary>
    /// `train vae`, `train gan`, `train ddpm --cond`, `train dit`, `train vqvae` and `train pixelcnn` on a slice, with a classifier `train cnn`
    /// just wrote: each writes its weights, loss curve, samples grid and metrics (model, steps, seconds, a finite Fréchet distance
    /// with its floor and ceiling, samples; the conditional DDPM and the DiT their class accuracy, the VQ-VAE its code perplexity), and `sample`
    /// draws from the weights each wrote (the VQ-VAE's refused with a pointer to its prior).
    /// </summary>
    [Fact]
    public void GenerativeTrainersWriteWeightsSamplesAndMetricsThatSampleReads()
    {
        var dir = Directory.CreateTempSubdirectory("gpunet-generative-").FullName;
        var console = Console.Out;
        try
        {
            Console.SetOut(TextWriter.Null);
            Assert.Equal(0, GpuNetCli.Invoke(new[] { "train", "cnn", "--device", "cpu", "--limit", "300", "--epochs", "1", "--out", dir }));
            // pixelcnn after vqvae: the prior reads OUT/vqvae.safetensors.
            foreach (var model in new[] { "vae", "gan", "ddpm", "dit", "vqvae", "pixelcnn" })
            {
                var extra = model == "ddpm" ? new[] { "--timesteps", "40", "--sample-steps", "8", "--cond" }
                    : model == "dit" ? new[] { "--timesteps", "40", "--sample-steps", "8", "--width", "16", "--heads", "2", "--layers", "1" }
                    : model == "pixelcnn" ? new[] { "--hidden", "16", "--layers", "1" } : Array.Empty<string>();
                Assert.Equal(0, GpuNetCli.Invoke(new[] { "train", model, "--device", "cpu", "--limit", "300", "--epochs", "1", "--fd-samples", "100",
                    "--classifier", Path.Combine(dir, "cnn.safetensors"), "--out", dir }.Concat(extra).ToArray()));
                foreach (var png in new[] { $"{model}-loss.png", $"{model}-samples.png" })
                    Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(dir, png))[..4]);
                using var metrics = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, $"{model}-metrics.json")));
                var root = metrics.RootElement;
                Assert.Equal(model, root.GetProperty("model").GetString());
                Assert.Equal(model == "gan" ? 5 : 3, root.GetProperty("steps").GetInt32());   // 300 images (maps): 3 batches of 128, 5 of 64
                if (model is "ddpm" or "dit")
                    Assert.InRange(root.GetProperty("class_accuracy").GetDouble(), 0, 1);
                if (model == "vqvae")
                    Assert.InRange(root.GetProperty("perplexity").GetDouble(), 1, 128);
                Assert.True(root.GetProperty("seconds").GetDouble() > 0);
                Assert.Equal(100, root.GetProperty("samples").GetInt32());
                double fd = root.GetProperty("fd").GetDouble(), floor = root.GetProperty("fd_floor").GetDouble(), ceiling = root.GetProperty("fd_ceiling").GetDouble();
                Assert.True(double.IsFinite(fd) && floor >= 0 && floor < ceiling, $"{model}: fd {fd}, floor {floor}, ceiling {ceiling}");
                string png2 = Path.Combine(dir, $"{model}-more.png");
                if (model == "vqvae")
                {
                    // A VQ-VAE alone draws nothing: `sample` says to train its prior.
                    Assert.Equal(2, GpuNetCli.Invoke(new[] { "sample", "--device", "cpu", "--weights", Path.Combine(dir, "vqvae.safetensors"), "--out", png2 }));
                    continue;
                }
                Assert.Equal(0, GpuNetCli.Invoke(new[] { "sample", "--device", "cpu", "--weights", Path.Combine(dir, $"{model}.safetensors"), "--count", "10", "--out", png2 }));
                Assert.True(new FileInfo(png2).Length > 100);
            }
        }
        finally
        {
            Console.SetOut(console);
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void UnknownModelOrBadValueIsAUsageError()
    {
        Assert.Equal(2, GpuNetCli.Invoke(new[] { "train", "resnet" }));
        Assert.Equal(2, GpuNetCli.Invoke(new[] { "train", "cnn", "--model", "lenet" }));
        Assert.Equal(2, GpuNetCli.Invoke(new[] { "train", "dnn", "--steps", "-1" }));
        Assert.Equal(2, GpuNetCli.Invoke(new[] { "train", "gpt", "--lr", "zero" }));
    }
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
            var text = Capture(() => GpuNetCli.Invoke(new[] { "onnx", "test", Data + "/pytorch-operator", "--device", "cpu", "--json", json }), out int code);
            Assert.Equal(0, code);
            Assert.Contains("test_operator_conv", text);
            Assert.Matches(@"30 passed, 0 failed, 5 expected failures \(GpuNet's known list, with reasons\), 0 unsupported of 35 cases on cpu", text);
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
        var info = Capture(() => GpuNetCli.Invoke(new[] { "onnx", "info", Data + "/node/test_lstm_defaults/model.onnx" }), out int code);
        Assert.Equal(0, code);
        Assert.Contains("opset 14", info);
        var run = Capture(() => GpuNetCli.Invoke(new[] { "onnx", "run", Data + "/pytorch-converted/test_Conv2d_groups/model.onnx", "--device", "cpu", "--runs", "2" }), out code);
        Assert.Equal(0, code);
        Assert.Contains("Float [2, 6, 4, 4]", run);
        Assert.Contains("median of 2", run);
        Assert.Contains("slowest nodes (median of 2 runs; all nodes ", run);
        Assert.Matches(@"\n +\d+\.\d{3} ms  Conv +→ \[2, 6, 4, 4\]  node ", run);
    }

    [Fact]
    public void MissingSubVerbOrPathIsAUsageError()
    {
        Assert.Equal(2, GpuNetCli.Invoke(new[] { "onnx" }));
        Assert.Equal(2, GpuNetCli.Invoke(new[] { "onnx", "test" }));
        Assert.Equal(2, GpuNetCli.Invoke(new[] { "onnx", "fly", "x" }));
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
            code = GpuNetCli.Invoke(new[] { "run", "--onnx", model, "--device", "cpu" });
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
        Assert.Contains("1 of 1 models agree with ONNX Runtime", text);
    }
}

/// <summary>The command line itself: help for every verb, typed validation, summaries.</summary>
public sealed class CliTests
{
    private static (int Code, string Out, string Err) Invoke(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        using var o = new StringWriter();
        using var e = new StringWriter();
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            return (GpuNetCli.Invoke(args), o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    private static IEnumerable<string[]> Paths(System.CommandLine.Command command, string[] prefix)
    {
        foreach (var sub in command.Subcommands)
        {
            var path = prefix.Append(sub.Name).ToArray();
            yield return path;
            foreach (var deeper in Paths(sub, path))
                yield return deeper;
        }
    }

    [Fact]
    public void EveryVerbAnswersHelp()
    {
        var verbs = Paths(GpuNetCli.Build(), Array.Empty<string>()).ToList();
        Assert.True(verbs.Count >= 15, $"{verbs.Count} verbs");
        foreach (var verb in verbs)
        {
            var (code, text, err) = Invoke(verb.Append("--help").ToArray());
            Assert.True(code == 0, $"{string.Join(" ", verb)} --help exited {code}: {err}");
            Assert.Contains("Usage:", text);
            Assert.Contains(string.Join(" ", verb), text);
        }
    }

    [Fact]
    public void BadArgumentsExitTwoWithTheVerbsHelpHint()
    {
        var (code, _, err) = Invoke("check", "--bogus");
        Assert.Equal(2, code);
        Assert.Contains("--bogus", err);
        Assert.Contains("gpunet check --help", err);
        (code, _, err) = Invoke("run", "--runs", "0");
        Assert.Equal(2, code);
        Assert.Contains("--runs takes an integer ≥ 1", err);
        (code, _, err) = Invoke("run", "--preset", "huge");
        Assert.Equal(2, code);
        (code, _, err) = Invoke("check", "--kernel", "no_such_kernel");
        Assert.Equal(2, code);
        Assert.Contains("no_such_kernel", err);
        (code, var help, _) = Invoke();
        Assert.Equal(2, code);
        Assert.Contains("Commands:", help);
    }

    [Fact]
    public void CheckPrintsASummaryLine()
    {
        var (code, text, _) = Invoke("check", "--device", "cpu", "--kernel", "softmax,relu");
        Assert.Equal(0, code);
        Assert.Matches(@"[1-9]\d* passed, 0 failed, 0 skipped on cpu in \d", text);
    }

    [Fact]
    public void GenerateShowsPromptContinuationSpeedAndSettings()
    {
        var (code, text, err) = Invoke("generate", "--device", "cpu", "--prompt-ids", "1,2,3", "--max-new", "5", "--temperature", "0");
        Assert.True(code == 0, err);
        Assert.Matches(@"^1,2,3 \| \d+,\d+,\d+,\d+,\d+", text);
        Assert.Contains("5 new tokens in", text);
        Assert.Contains("tokens/s", text);
        Assert.Contains("greedy (temperature 0), top-k off, top-p off, seed 0", text);
    }
}

/// <summary>The runner's warm-up: the runs asked for, then on until the case has run untimed for 30 ms, before any timed run
/// (3 cold runs of a microsecond case timed its cold caches: preset small's medians ran 1.3–1.4× preset cpu's).</summary>
public sealed class RunnerWarmupTests
{
    [Fact]
    public void AFastCaseRunsUntimedForThirtyMillisecondsFirst()
    {
        var device = TestDevices.Cpu;
        int runs = 0;
        var c = new BenchCase("relu", "1", 1, 4, new[] { "small" }, (d, s) => new BenchInstance(() => runs++));
        var result = Runner.Measure(device, c, warmup: 3, runs: 5, TimeSpan.FromSeconds(5), seed: 1);
        Assert.True(double.IsFinite(result.MedianMs), result.Skipped);
        Assert.Equal(5, result.Runs);
        // The untimed runs go on for 30 ms (or 1,000 runs): a no-op case runs far more than the 3 + 5 asked for.
        Assert.True(runs > 100, $"{runs} runs in all");
    }
}

using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Onnx.Tests;

/// <summary>
/// ONNX's own backend conformance suite (Debian package libonnx-testdata, ONNX 1.12): every case of node/,
/// pytorch-converted/ and pytorch-operator/ passes at rtol 1e-3 / atol 1e-5 on the fast CPU, the simulated GPU and every GPU present,
/// unless src/Onnx/conformance_expected_failures.txt (<see cref="Conformance.ExpectedFailures"/>) lists it with its reason — and a listed case that passes fails until removed.
/// </summary>
public sealed class ConformanceTests(ITestOutputHelper output)
{
    public const string DataRoot = "/usr/share/libonnx-testdata/data";
    private static readonly string[] Suites = { "node", "pytorch-converted", "pytorch-operator" };


    public static IEnumerable<object[]> Cases
    {
        get
        {
            if (!Directory.Exists(DataRoot))
                return new[] { new object[] { "(libonnx-testdata is not installed: apt-get install libonnx-testdata)" } };
            return Conformance.FindCases(Suites.Select(s => Path.Combine(DataRoot, s))).Select(d => new object[] { Path.GetRelativePath(DataRoot, d) });
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PassesOnCpu(string testCase) => Check(testCase, TestDevices.Cpu);

    /// <summary>
    /// Cases the simulated GPU needs 15–25 s each for (hundreds of thousands of softmax rows or a large convolution, every
    /// barrier a thread rendezvous on 2 cores): they run on the fast CPU only, and their kernels are checked on the simulator
    /// by the kernel registry at smaller sizes.
    /// </summary>
    private static readonly HashSet<string> SlowOnSimulator = new()
    {
        "node/test_sce_NCd1d2d3d4d5_mean_weight", "node/test_sce_NCd1d2d3d4d5_mean_weight_expanded", "node/test_sce_NCd1d2d3d4d5_mean_weight_log_prob",
        "node/test_sce_NCd1d2d3d4d5_mean_weight_log_prob_expanded", "node/test_sce_NCd1d2d3d4d5_none_no_weight", "node/test_sce_NCd1d2d3d4d5_none_no_weight_expanded",
        "node/test_sce_NCd1d2d3d4d5_none_no_weight_log_prob", "node/test_sce_NCd1d2d3d4d5_none_no_weight_log_prob_expanded", "pytorch-operator/test_operator_conv",
    };

    public static IEnumerable<object[]> SimulatorCases => Cases.Where(c => !SlowOnSimulator.Contains((string)c[0]));

    [Theory]
    [MemberData(nameof(SimulatorCases))]
    public void PassesOnSimulator(string testCase) => Check(testCase, TestDevices.Simulator);

    /// <summary>Every conformance case on every GPU present (skipped without one).</summary>
    public static IEnumerable<object[]> GpuCases => TestDevices.GpuIds.SelectMany(id => Cases.Select(c => new object[] { id, c[0] }));

    [GpuTheory]
    [MemberData(nameof(GpuCases))]
    public void PassesOnGpu(string deviceId, string testCase) => Check(testCase, TestDevices.Get(deviceId));

    /// <summary>
    /// make_onnx_models.py's models in the backend-test layout: the seed families exported by torch.onnx.export, the export
    /// patterns that handed a flat device buffer to the next node (pattern_*), and every index-map op feeding each consumer
    /// that reads its input's own rank (index_map_*).
    /// </summary>
    public static IEnumerable<object[]> ExportedModels =>
        Conformance.FindCases(new[] { Path.Combine(AppContext.BaseDirectory, "Models") }).Select(d => new object[] { Path.GetFileName(d) });

    /// <summary>
    /// The torchvision CNNs take 45–120 s each on the simulated GPU of a 2-core machine (every thread of every convolution
    /// simulated): they run on the fast CPU and every real GPU; their convolutions, pooling and batch norm are checked on the
    /// simulator by the kernel registry, and the small CNN exports above run there whole.
    /// </summary>
    private static readonly HashSet<string> SimulatorTooSlow = new() { "real_resnet18", "real_mobilenet_v2", "real_efficientnet_b0" };

    [Theory]
    [MemberData(nameof(ExportedModels))]
    public void ExportedPyTorchModelsMatchPyTorchOnEveryDevice(string model)
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "Models", model);
        SeededWeights.Materialize(dir);
        var simulator = SimulatorTooSlow.Contains(model) ? Array.Empty<Device>() : new[] { TestDevices.Simulator };
        foreach (var device in new[] { TestDevices.Cpu }.Concat(simulator).Concat(TestDevices.GpuIds.Select(TestDevices.Get)))
        {
            var r = Conformance.Run(dir, device);
            output.WriteLine($"{device.Id}: {r.Status}: rel L2 {r.RelativeL2:G3}, max abs {r.MaxAbs:G3}, {r.Milliseconds:F0} ms {r.Detail}");
            Assert.True(r.Status == ConformanceStatus.Pass, $"{model} on {device.Id}: {r.Status}: {r.Detail}");
            // Beyond the conformance runner's elementwise rtol 1e-3: PyTorch's own outputs to the golden fixtures' 1e-4 relative L2.
            Assert.True(r.RelativeL2 <= 1e-4, $"{model} on {device.Id}: rel L2 {r.RelativeL2:G3} over 1e-4");
        }
    }

    [Fact]
    public void EveryExpectedFailureNamesAnExistingCaseAndAReason()
    {
        Assert.True(Directory.Exists(DataRoot), "libonnx-testdata is not installed (apt-get install libonnx-testdata); .ci/run installs it");
        var names = Cases.Select(c => Path.GetFileName((string)c[0])).ToHashSet();
        foreach (var (name, reason) in Conformance.ExpectedFailures)
        {
            Assert.True(names.Contains(name), $"{name} is listed as an expected failure but is no test case");
            Assert.False(string.IsNullOrWhiteSpace(reason), $"{name} has no reason");
        }
    }

    private void Check(string testCase, Device device)
    {
        Assert.True(Directory.Exists(DataRoot), "libonnx-testdata is not installed (apt-get install libonnx-testdata); .ci/run installs it");
        var r = Conformance.Run(Path.Combine(DataRoot, testCase), device);
        output.WriteLine($"{r.Status}: rel L2 {r.RelativeL2:G3}, max abs {r.MaxAbs:G3}, {r.Milliseconds:F0} ms {r.Detail}");
        if (Conformance.ExpectedFailures.TryGetValue(r.Case, out var reason))
            Assert.True(r.Status != ConformanceStatus.Pass, $"{r.Case} passes now: remove it from conformance_expected_failures.txt (listed as: {reason})");
        else
            Assert.True(r.Status == ConformanceStatus.Pass, $"{r.Case}: {r.Status}: {r.Detail}");
    }
}

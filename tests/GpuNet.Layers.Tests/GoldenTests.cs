using GpuNet.Kernels.Checks;
using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>
/// The seed models against PyTorch: fixtures made by make_fixtures.py (weights, an input and the float64 expected
/// output); each model loads the weights by state_dict name and must land within 1e-4 relative L2 of PyTorch.
/// </summary>
public sealed class GoldenTests(ITestOutputHelper output)
{
    private static Device Cpu => TestDevices.Cpu;

    private void AssertClose(Tensor y, SafeTensorsFile f)
    {
        Assert.Equal(f.Shape("__expected__"), y.ShapeArray());
        var (maxAbs, rel, error) = CheckRunner.Compare(y.ToArray(), f.ReadDoubles("__expected__"));
        output.WriteLine($"max abs {maxAbs:0.###e+0}, rel L2 {rel:0.###e+0}");
        Assert.Null(error);
        Assert.True(rel <= 1e-4, $"rel L2 {rel} over 1e-4");
    }

    private static Gpt GptModel(Device d, SafeTensorsFile f) => ModelZoo.Gpt(d, f);

    public static IEnumerable<object[]> Cases => GoldenModels.All.Select(c => new object[] { c.Name });

    /// <summary>Every golden on every GPU present (skipped without one).</summary>
    public static IEnumerable<object[]> GpuCases => TestDevices.GpuIds.SelectMany(id => GoldenModels.All.Select(c => new object[] { id, c.Name }));

    [Theory]
    [MemberData(nameof(Cases))]
    public void ModelMatchesPyTorch(string name) => RunGolden(Cpu, name);

    /// <summary>Every golden on the simulated GPU too — the ILGPU kernels themselves, not only the fast CPU's host code (all 26
    /// take about two minutes of one core there).</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void ModelMatchesPyTorchOnSimulatedGpu(string name) => RunGolden(TestDevices.Simulator, name);

    [GpuTheory]
    [MemberData(nameof(GpuCases))]
    public void ModelMatchesPyTorchOnGpu(string deviceId, string name) => RunGolden(TestDevices.Get(deviceId), name);

    private void RunGolden(Device device, string name)
    {
        var c = GoldenModels.All.Single(g => g.Name == name);
        using var f = Fixtures.Open(name);
        using var model = c.Build(device, f);
        model.Load(f);
        model.Eval();
        using var y = c.Run(model, f);
        AssertClose(y, f);
    }

    [Fact]
    public void GreedyGenerationWithCacheEqualsRecomputation()
    {
        using var f = Fixtures.Open("gpt");
        using var model = GptModel(Cpu, f);
        model.Load(f);
        model.Eval();
        var prompt = new[] { 1, 2, 3 };
        var cached = model.Generate(prompt, 8, temperature: 0);
        var recomputed = model.Generate(prompt, 8, temperature: 0, useCache: false);
        output.WriteLine(string.Join(",", cached));
        Assert.Equal(11, cached.Length);
        Assert.Equal(recomputed, cached);
    }

    [Fact]
    public void SampledGenerationIsReproducible()
    {
        using var f = Fixtures.Open("gpt");
        using var model = GptModel(Cpu, f);
        model.Load(f);
        model.Eval();
        var a = model.Generate(new[] { 5 }, 5, temperature: 0.9f, topK: 20, topP: 0.95f, seed: 4);
        var b = model.Generate(new[] { 5 }, 5, temperature: 0.9f, topK: 20, topP: 0.95f, seed: 4);
        Assert.Equal(a, b);
        Assert.All(a, t => Assert.InRange(t, 0, 60));
    }
}

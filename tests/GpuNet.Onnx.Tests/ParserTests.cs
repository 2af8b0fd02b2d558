using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Onnx.Tests;

/// <summary>The protobuf reader and loader on malformed input: typed errors, never a crash (fuzzed with fixed seeds).</summary>
public sealed class ParserTests(ITestOutputHelper output)
{
    private static Device Cpu => TestDevices.Cpu;

    /// <summary>Seed models: a spread of ops, initializers stored as raw bytes and as typed fields, attributes of every kind.</summary>
    private static readonly string[] SeedCases =
    {
        "node/test_conv_with_strides_padding", "node/test_gemm_default_matrix_bias", "node/test_reshape_reordered_all_dims", "node/test_slice_neg_steps",
        "node/test_layer_normalization_3d_axis0_epsilon_expanded", "node/test_constant_pad", "node/test_gather_2d_indices", "node/test_resize_upsample_scales_nearest",
        "pytorch-converted/test_Conv2d_groups", "pytorch-converted/test_BatchNorm2d_eval", "pytorch-operator/test_operator_conv", "node/test_split_variable_parts_1d",
        "node/test_top_k", "node/test_softmax_axis_1", "node/test_clip_default_inbounds", "node/test_where_example", "node/test_lstm_defaults",
    };

    private static byte[] Seed(string name) => File.ReadAllBytes(Path.Combine(ConformanceTests.DataRoot, name, "model.onnx"));

    [Fact]
    public void TruncatedModelsRaiseFormatErrors()
    {
        var bytes = Seed("node/test_conv_with_strides_padding");
        int typed = 0;
        for (int cut = 1; cut < bytes.Length; cut += Math.Max(1, bytes.Length / 200))
        {
            var e = Record.Exception(() => OnnxModel.Load(bytes.AsMemory(0, cut), Cpu).Dispose());
            if (e is null)
                continue;
            Assert.True(e is GpuNetException, $"cut at {cut}: {e.GetType().Name}: {e.Message}");
            typed++;
        }
        Assert.True(typed > 100, $"only {typed} truncations were rejected");
    }

    [Fact]
    public void ErrorsNameTheMessageAndField()
    {
        var e = Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(new byte[] { 0x3A, 0x7F, 0x01 }, Cpu));
        Assert.Contains("ModelProto", e.Message);
        Assert.Contains("graph", e.Message);
        var missing = Assert.Throws<FileNotFoundException>(() => OnnxModel.Load("/nonexistent/model.onnx", Cpu));
        Assert.Equal("onnx: no file '/nonexistent/model.onnx'", missing.Message);
        Assert.Equal("/nonexistent/model.onnx", missing.FileName);
        Assert.Throws<FileNotFoundException>(() => OnnxModel.Inspect("/nonexistent/model.onnx"));
        // A file that is not a model says so first.
        string text = Path.Combine(Path.GetTempPath(), $"gpunet-not-a-model-{Guid.NewGuid():N}.onnx");
        File.WriteAllText(text, "not a model\n");
        try
        {
            var notModel = Assert.Throws<OnnxFormatException>(() => OnnxModel.Load(text, Cpu));
            Assert.StartsWith($"onnx: '{text}' is not an ONNX model: ModelProto: ", notModel.Message);
            Assert.StartsWith($"onnx: '{text}' is not an ONNX model: ", Assert.Throws<OnnxFormatException>(() => OnnxModel.Inspect(text)).Message);
        }
        finally
        {
            File.Delete(text);
        }
    }

    /// <summary>
    /// 10,200 mutated models (600 per seed model; fixed seeds): byte flips, random bytes, truncations, duplicated and
    /// deleted spans. Each either loads (constant folding runs the ops it can) or raises a GpuNetException; one that
    /// loads is run on the seed case's inputs, which again either works or raises a GpuNetException.
    /// </summary>
    [Fact]
    public void TenThousandMutatedModelsNeverCrash()
    {
        int loaded = 0, rejected = 0, ran = 0;
        var kinds = new Dictionary<string, int>();
        for (int s = 0; s < SeedCases.Length; s++)
        {
            var original = Seed(SeedCases[s]);
            var inputFiles = Directory.GetFiles(Path.Combine(ConformanceTests.DataRoot, SeedCases[s], "test_data_set_0"), "input_*.pb").OrderBy(f => f, StringComparer.Ordinal).ToList();
            var rng = new Random(1000 + s);
            for (int m = 0; m < 600; m++)
            {
                var bytes = ByteMutations.Mutate(original, rng);
                try
                {
                    using var model = OnnxModel.Load(bytes, Cpu);
                    loaded++;
                    var inputs = new Dictionary<string, OnnxTensor>();
                    for (int k = 0; k < inputFiles.Count && k < model.Inputs.Count; k++)
                        inputs[model.Inputs[k].Name] = OnnxTensor.ReadPb(inputFiles[k]);
                    try
                    {
                        foreach (var o in model.Run(inputs).Values)
                            o.Dispose();
                        ran++;
                    }
                    catch (GpuNetException e)
                    {
                        kinds["run: " + e.GetType().Name] = kinds.GetValueOrDefault("run: " + e.GetType().Name) + 1;
                    }
                    finally
                    {
                        foreach (var t in inputs.Values)
                            t.Dispose();
                    }
                }
                catch (GpuNetException e)
                {
                    rejected++;
                    kinds[e.GetType().Name] = kinds.GetValueOrDefault(e.GetType().Name) + 1;
                }
                catch (Exception e)
                {
                    Assert.Fail($"{SeedCases[s]} mutation {m}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
            }
        }
        output.WriteLine($"{loaded} loaded ({ran} ran), {rejected} rejected: {string.Join(", ", kinds.Select(k => $"{k.Key} {k.Value}"))}");
        Assert.Equal(SeedCases.Length * 600, loaded + rejected);
    }
}

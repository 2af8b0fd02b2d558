using GpuNet.Onnx.Proto;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Onnx.Tests;

/// <summary>
/// The load-time shape inference that lets Shape nodes of intermediates fold, against ONNX's own expected outputs: every
/// one-node case of the node suite whose op it knows, inputs and initializers as the case gives them.
/// </summary>
public sealed class ShapeInferenceTests(ITestOutputHelper output)
{
    [Fact]
    public void InferredShapesAreTheConformanceOutputs()
    {
        Assert.True(Directory.Exists(ConformanceTests.DataRoot), "libonnx-testdata is not installed (apt-get install libonnx-testdata); .ci/run installs it");
        int inferred = 0, unknown = 0;
        var ops = new SortedDictionary<string, int>();
        var wrong = new List<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(ConformanceTests.DataRoot, "node")).OrderBy(d => d, StringComparer.Ordinal))
        {
            var data = Path.Combine(dir, "test_data_set_0");
            if (!File.Exists(Path.Combine(dir, "model.onnx")) || !File.Exists(Path.Combine(data, "output_0.pb")))
                continue;
            var model = ModelProto.Parse(File.ReadAllBytes(Path.Combine(dir, "model.onnx")));
            if (model.Graph is not { Nodes.Count: 1 } graph)
                continue;
            var node = graph.Nodes[0];
            // The inference is of the node's first output; output_0.pb is the graph's first (Y_h where a recurrent node omits Y).
            if (node.Outputs.Count == 0 || graph.Outputs.Count == 0 || graph.Outputs[0].Name != node.Outputs[0])
                continue;
            var shapes = new Dictionary<string, int[]>();
            var ints = new Dictionary<string, long[]>();
            int[] expectedShape;
            try
            {
                var initializers = graph.Initializers.Select(t => t.Name).ToHashSet();
                var inputs = graph.Inputs.Where(i => !initializers.Contains(i.Name)).ToList();
                for (int k = 0; k < inputs.Count && File.Exists(Path.Combine(data, $"input_{k}.pb")); k++)
                {
                    using var t = OnnxTensor.ReadPb(Path.Combine(data, $"input_{k}.pb"));
                    shapes[inputs[k].Name] = t.Shape;
                    if (!t.IsFloat)
                        ints[inputs[k].Name] = t.Ints;
                }
                foreach (var p in graph.Initializers)
                {
                    using var t = OnnxTensor.FromProto(p, dir, "initializer");
                    shapes[p.Name] = t.Shape;
                    if (!t.IsFloat)
                        ints[p.Name] = t.Ints;
                }
                using var expected = OnnxTensor.ReadPb(Path.Combine(data, "output_0.pb"));
                expectedShape = expected.Shape;
            }
            catch (GpuNetException)
            {
                // Element types GpuNet does not load (double, float16, strings), or sequences and optionals in the data
                // files: not a case for the inference.
                continue;
            }
            int[]? guess;
            try
            {
                guess = ShapeInference.Output(node, model.DefaultOpset, n => shapes.GetValueOrDefault(n), n => ints.GetValueOrDefault(n));
            }
            catch (Exception e)
            {
                wrong.Add($"{Path.GetFileName(dir)}: {e.GetType().Name}: {e.Message}");
                continue;
            }
            if (guess is null)
            {
                unknown++;
                continue;
            }
            inferred++;
            ops[node.OpType] = ops.GetValueOrDefault(node.OpType) + 1;
            if (!guess.SequenceEqual(expectedShape))
                wrong.Add($"{Path.GetFileName(dir)}: inferred {GpuNetException.FormatShape(guess)}, ONNX expects {GpuNetException.FormatShape(expectedShape)}");
        }
        output.WriteLine($"{inferred} cases inferred, {unknown} not: " + string.Join(", ", ops.Select(kv => $"{kv.Key} {kv.Value}")));
        foreach (var w in wrong)
            output.WriteLine(w);
        Assert.Empty(wrong);
        // Slice, MatMul, Squeeze, Gemm, Transpose, Reshape, Unsqueeze, Flatten and the recurrent ops each have cases here.
        foreach (var op in new[] { "Slice", "MatMul", "Squeeze", "Gemm", "Transpose", "Reshape", "Unsqueeze", "Flatten", "GRU", "LSTM" })
            Assert.True(ops.ContainsKey(op), $"no conformance case exercised the inference of {op}");
    }
}

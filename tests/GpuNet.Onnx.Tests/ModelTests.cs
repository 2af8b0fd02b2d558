using GpuNet.Tests;
using Xunit;

namespace GpuNet.Onnx.Tests;

/// <summary>The OnnxModel API: inputs and outputs, typed errors on bad input, fusion onto the fused kernels, memory.</summary>
public sealed class ModelTests
{
    private static Device Cpu => TestDevices.Cpu;

    private static string Model(string name) => Path.Combine(AppContext.BaseDirectory, "Models", name, "model.onnx");

    private static OnnxTensor Input(string name, int k = 0) => OnnxTensor.ReadPb(Path.Combine(AppContext.BaseDirectory, "Models", name, "test_data_set_0", $"input_{k}.pb"));

    [Fact]
    public void ExportedSubgraphsRunOnTheFusedKernels()
    {
        using (var gpt = OnnxModel.Load(Model("torch_gpt_block_opset14"), Cpu))
        {
            var ops = gpt.PlannedOperators;
            Assert.Contains("GpuNet.Attention", ops);
            Assert.Contains("GpuNet.LayerNorm", ops);
            Assert.Contains("GpuNet.Linear+Gelu", ops);
            Assert.DoesNotContain("Softmax", ops);
            Assert.DoesNotContain("Erf", ops);
            Assert.DoesNotContain("ReduceMean", ops);
        }
        using var mlp = OnnxModel.Load(Model("torch_mlp"), Cpu);
        Assert.Equal(new[] { "Gemm+Relu", "Gemm+Gelu", "Gemm" }, mlp.PlannedOperators);
    }

    [Fact]
    public void ASliceRunAgainWithOtherParametersSelectsTheirWindow()
    {
        // A Slice keeps its window between runs for the same input shape and parameter tensors; a run with other starts/ends
        // tensors must not reuse it.
        using var model = OnnxModel.Load("/usr/share/libonnx-testdata/data/node/test_slice/model.onnx", Cpu);
        float[] Run(int[] shape, long[] starts, long[] ends)
        {
            var x = OnnxTensor.FromFloats(Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b)).Select(v => (float)v).ToArray(), shape);
            var inputs = new Dictionary<string, OnnxTensor>
            {
                [model.Inputs[0].Name] = x,
                [model.Inputs[1].Name] = OnnxTensor.FromInt64s(starts, 2),
                [model.Inputs[2].Name] = OnnxTensor.FromInt64s(ends, 2),
                [model.Inputs[3].Name] = OnnxTensor.FromInt64s(new long[] { 0, 1 }, 2),
                [model.Inputs[4].Name] = OnnxTensor.FromInt64s(new long[] { 1, 1 }, 2),
            };
            var outputs = model.Run(inputs);
            var y = outputs[model.Outputs[0].Name].ToFloats();
            foreach (var o in outputs.Values.Concat(inputs.Values))
                o.Dispose();
            return y;
        }
        // x[a, b, c] = (a·W + b)·C + c for shape [H, W, C]: the window's first element and its size say which window ran.
        var first = Run([20, 10, 5], [0, 0], [3, 10]);
        Assert.Equal(3 * 10 * 5, first.Length);
        Assert.Equal(0f, first[0]);
        var second = Run([20, 10, 5], [1, 2], [2, 5]);
        Assert.Equal(1 * 3 * 5, second.Length);
        Assert.Equal((1 * 10 + 2) * 5f, second[0]);
        var again = Run([20, 10, 5], [0, 0], [3, 10]);
        Assert.Equal(first, again);
    }

    [Fact]
    public void EveryRunProfilesItsNodesAndOpTypes()
    {
        using var mlp = OnnxModel.Load(Model("torch_mlp"), Cpu);
        Assert.Empty(mlp.LastRunNodeProfile);
        using var x = Input("torch_mlp");
        var outputs = mlp.Run(new Dictionary<string, OnnxTensor> { [mlp.Inputs[0].Name] = x });
        var nodes = mlp.LastRunNodeProfile;
        Assert.Equal(mlp.PlannedOperators, nodes.Select(n => n.Op));
        Assert.All(nodes, n => Assert.True(n.Milliseconds >= 0 && n.Node.StartsWith("node ") && n.Node.EndsWith("(Gemm)"), n.ToString()));
        Assert.Equal(outputs[mlp.Outputs[0].Name].Shape, nodes[^1].Output);
        foreach (var o in outputs.Values)
            o.Dispose();
        // The per-type totals are the per-node times summed.
        var gemm = Assert.Single(mlp.LastRunProfile);
        Assert.Equal(("Gemm", 3), (gemm.Op, gemm.Count));
        Assert.Equal(nodes.Sum(n => n.Milliseconds), gemm.Milliseconds, 6);
    }

    [Fact]
    public void ConvolutionalNetworksFoldBatchNormAndTheirActivations()
    {
        foreach (var name in new[] { "real_resnet18", "real_mobilenet_v2", "real_efficientnet_b0" })
            SeededWeights.Materialize(Path.GetDirectoryName(Model(name))!);
        using (var resnet = OnnxModel.Load(Model("real_resnet18"), Cpu))
        {
            // 20 Conv → BatchNormalization pairs, 9 of them followed by Relu; the other 8 ReLUs come after a block's residual
            // Add, which with the block's last Conv becomes one Conv+Add node carrying the ReLU.
            Assert.DoesNotContain("BatchNormalization", resnet.PlannedOperators);
            Assert.Equal(9, resnet.PlannedOperators.Count(o => o == "Conv+Relu"));
            Assert.Equal(8, resnet.PlannedOperators.Count(o => o == "GpuNet.ConvResidual+Relu"));
            Assert.DoesNotContain("Add", resnet.PlannedOperators);
            Assert.DoesNotContain("Relu", resnet.PlannedOperators);
            Assert.Equal(20, resnet.PlannedOperators.Count(o => o.StartsWith("Conv") || o.StartsWith("GpuNet.ConvResidual")));
        }
        using (var efficientnet = OnnxModel.Load(Model("real_efficientnet_b0"), Cpu))
        {
            Assert.DoesNotContain("BatchNormalization", efficientnet.PlannedOperators);
            Assert.Contains("Conv+Silu", efficientnet.PlannedOperators);
            // The 15 MBConv blocks with an expansion: 1×1 (SiLU) then depthwise (SiLU), one node each; all 16 blocks'
            // squeeze-and-excitation (pooling, two 1×1 convolutions, SiLU, Sigmoid, Mul) one node each too.
            Assert.Equal(15, efficientnet.PlannedOperators.Count(o => o == "GpuNet.ExpandDepthwise+Silu"));
            Assert.Equal(16, efficientnet.PlannedOperators.Count(o => o == "GpuNet.SqueezeExcite"));
            Assert.DoesNotContain("Sigmoid", efficientnet.PlannedOperators);
            Assert.DoesNotContain("Mul", efficientnet.PlannedOperators);
            Assert.Equal(1, efficientnet.PlannedOperators.Count(o => o == "GlobalAveragePool"));
        }
        using (var mobilenet = OnnxModel.Load(Model("real_mobilenet_v2"), Cpu))
        {
            // ReLU6 is exported as Clip(0, 6): all 35 after a (batch-norm-folded) Conv go into its epilogue; the 16 inverted
            // residual blocks with an expansion are one node each — expansion, depthwise convolution (32 of those 35 ReLU6s),
            // projection, and in 10 of them the residual Add. Left: the stem, the first block's depthwise convolution and
            // projection, the last 1×1 convolution, the pooling, Flatten and the classifier.
            Assert.DoesNotContain("Clip", mobilenet.PlannedOperators);
            Assert.Equal(3, mobilenet.PlannedOperators.Count(o => o == "Conv+Relu6"));
            Assert.Equal(16, mobilenet.PlannedOperators.Count(o => o == "GpuNet.InvertedResidual"));
            Assert.DoesNotContain("GpuNet.ExpandDepthwise+Relu6", mobilenet.PlannedOperators);
            Assert.DoesNotContain("GpuNet.ConvResidual", mobilenet.PlannedOperators);
            Assert.DoesNotContain("Add", mobilenet.PlannedOperators);
            Assert.Equal(23, mobilenet.PlannedOperators.Count);
        }
        using var unoptimized = OnnxModel.Load(Model("real_mobilenet_v2"), Cpu, optimize: false);
        Assert.Equal(52, unoptimized.PlannedOperators.Count(o => o == "BatchNormalization"));
        Assert.Equal(0, unoptimized.FusedNodes);
    }

    [Fact]
    public void AnExpansionReadOnlyByADepthwiseConvolutionBecomesOneNode()
    {
        // Of three 1×1 → depthwise pairs only the first fuses (with both its ReLU6s): the second's 1×1 has stride 2, the
        // third's output is read by a Relu too. Their values are checked against PyTorch and the unoptimized graph above.
        using var model = OnnxModel.Load(Model("pattern_expand_depthwise"), Cpu);
        Assert.Equal(new[] { "GpuNet.ExpandDepthwise+Relu6" }, model.PlannedOperators.Where(o => o.StartsWith("GpuNet.")));
        Assert.Equal(4, model.PlannedOperators.Count(o => o == "Conv"));
        Assert.Contains("Relu", model.PlannedOperators);
    }

    [Fact]
    public void SeededWeightsAreWrittenOnceAndCheckedAgainstTheirHash()
    {
        string dir = Path.Combine(Path.GetTempPath(), "gpunet-seeded-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var first = new float[10];
            var second = new float[6];
            Philox.FillUniform(first, 7, -1f, 1f);
            Philox.FillUniform(second, 8, 0f, 2f);
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(first.Concat(second).ToArray().AsSpan()).ToArray();
            string hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes)).ToLowerInvariant();
            string Manifest(string h) => $"# sha256\t{h}\t64\na\t0\t10\t7\t-1\t1\nb\t40\t6\t8\t0\t2\n";
            File.WriteAllText(Path.Combine(dir, "weights.tsv"), Manifest(hash));
            Assert.True(SeededWeights.Materialize(dir));
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir, "weights.bin")));
            Assert.False(SeededWeights.Materialize(dir));
            File.Delete(Path.Combine(dir, "weights.bin"));
            File.WriteAllText(Path.Combine(dir, "weights.tsv"), Manifest(new string('0', 64)));
            var e = Assert.Throws<InvalidDataException>(() => SeededWeights.Materialize(dir));
            Assert.Contains("weights.tsv says", e.Message);
            Assert.False(File.Exists(Path.Combine(dir, "weights.bin")));
            File.WriteAllText(Path.Combine(dir, "weights.tsv"), "a\t0\t10\t7\t-1\t1\n");
            Assert.Throws<InvalidDataException>(() => SeededWeights.Materialize(dir));
            Assert.False(SeededWeights.Materialize(Path.Combine(dir, "no-such-model")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void AnInvertedResidualBlockBecomesOneNode()
    {
        // Four blocks become one node each: with the input added, with ReLU after the projection, with a [1, C, 1, 1] constant
        // added (after the fused kernel, with broadcasting) and over 10×10 pixels (where the fast CPU runs the projection
        // after the fused pair). Two look-alikes keep their projection apart: the depthwise output is also a graph output,
        // or the projection has stride 2. Values are checked against PyTorch and the unoptimized graph.
        using var model = OnnxModel.Load(Model("pattern_inverted_residual"), Cpu);
        Assert.Equal(new[] { "GpuNet.InvertedResidual", "GpuNet.InvertedResidual", "GpuNet.InvertedResidual+Relu", "GpuNet.InvertedResidual+Relu" },
            model.PlannedOperators.Where(o => o.StartsWith("GpuNet.InvertedResidual")).Order());
        Assert.Equal(2, model.PlannedOperators.Count(o => o == "GpuNet.ExpandDepthwise+Relu6"));
        Assert.Equal(2, model.PlannedOperators.Count(o => o == "Conv"));
        Assert.Equal(8, model.PlannedOperators.Count);
    }

    [Fact]
    public void SqueezeAndExcitationBecomesOneNode()
    {
        // Three blocks become one node each (ReLU with biases; SiLU exported as x·Sigmoid(x), the Mul's operands swapped; a
        // 1-D input); two look-alikes keep their five nodes: the gate scales another tensor than the one pooled, or the gate
        // is a graph output. Values are checked against PyTorch and the unoptimized graph.
        using var model = OnnxModel.Load(Model("pattern_squeeze_excite"), Cpu);
        Assert.Equal(3, model.PlannedOperators.Count(o => o == "GpuNet.SqueezeExcite"));
        Assert.Equal(2, model.PlannedOperators.Count(o => o == "GlobalAveragePool"));
        Assert.Equal(2, model.PlannedOperators.Count(o => o == "Mul"));
        Assert.Equal(13, model.PlannedOperators.Count);
    }

    [Fact]
    public void PyTorchMultiheadAttentionBecomesOneAttentionNode()
    {
        // nn.MultiheadAttention (torch 1.13) divides Q by √d, multiplies Q [B·H, N, d] by K transposed from [N, B·H, d] with
        // perm (1, 2, 0), takes Softmax and multiplies by V: per layer the Div, the MatMuls, the Softmax and the transposes
        // of Q, K and V become one node reading Q, K and V through their permutations.
        string dir = Path.GetDirectoryName(Model("real_transformer_encoder"))!;
        SeededWeights.Materialize(dir);
        using var encoder = OnnxModel.Load(Model("real_transformer_encoder"), Cpu);
        Assert.Equal(2, encoder.PlannedOperators.Count(o => o == "GpuNet.Attention"));
        Assert.DoesNotContain("Softmax", encoder.PlannedOperators);
        Assert.Equal(0, encoder.PlannedOperators.Count(o => o == "MatMul"));
        // Q, K and V sliced out of the in-projection and split into heads are read as views (no Slice, no Reshape before the
        // attention), and the output is written with the heads beside each other (no transpose after it): the four
        // transposes left only move the batch axis of size 1 in and out.
        Assert.DoesNotContain("Slice", encoder.PlannedOperators);
        Assert.Equal(4, encoder.PlannedOperators.Count(o => o == "Transpose"));
        Assert.Equal(4, encoder.PlannedOperators.Count(o => o == "Reshape"));
    }

    [Fact]
    public void SlicedHeadsOfOneProjectionAreReadInPlaceByTheAttention()
    {
        // Rank 4, as hand-written blocks export attention: slices of one [B, N, 3E] projection, reshaped to heads and permuted,
        // K straight to [B, H, d, N], the output permuted back to [B, N, H, d] and merged. One attention node reads them all.
        using var model = OnnxModel.Load(Model("pattern_sliced_heads_attention"), Cpu);
        Assert.Equal(new[] { "GpuNet.Linear", "GpuNet.Attention", "Reshape", "GpuNet.Linear" }, model.PlannedOperators);
    }

    /// <summary>Every rewrite of the load-time optimizer is checked on every model of the set: the optimized graph's outputs
    /// equal the unoptimized graph's within 1e-5 relative L2 (and exactly where both are integers).</summary>
    [Theory]
    [MemberData(nameof(ConformanceTests.ExportedModels), MemberType = typeof(ConformanceTests))]
    public void OptimizedGraphMatchesTheUnoptimizedGraph(string name)
    {
        string dir = Path.GetDirectoryName(Model(name))!;
        SeededWeights.Materialize(dir);
        using var optimized = OnnxModel.Load(Model(name), Cpu);
        using var plain = OnnxModel.Load(Model(name), Cpu, optimize: false);
        var inputs = new Dictionary<string, OnnxTensor>();
        var files = Directory.GetFiles(Path.Combine(dir, "test_data_set_0"), "input_*.pb").OrderBy(f => f).ToList();
        for (int k = 0; k < files.Count; k++)
            inputs[plain.Inputs[k].Name] = OnnxTensor.ReadPb(files[k]);
        var fast = optimized.Run(inputs);
        var slow = plain.Run(inputs);
        void RunsAsTheFirst()
        {
            foreach (var (output, value) in optimized.Run(inputs))
                using (value)
                    if (value.IsFloat)
                        Assert.Equal(fast[output].ToFloats(), value.ToFloats());
                    else
                        Assert.Equal(fast[output].ToInt64s(), value.ToInt64s());
        }
        // Runs two and three take their intermediates from the memory arena planned after the first: the same outputs,
        // bit for bit. The unoptimized model plans none.
        RunsAsTheFirst();
        RunsAsTheFirst();
        // On one thread the same bits as on two (the test hosts run two CPU threads): every host kernel splits its work so
        // that no output depends on the split.
        using (Device.LimitCpuThreads(1))
            RunsAsTheFirst();
        Assert.True(optimized.ArenaBytes > 0 || optimized.PlannedOperators.Count == 1, $"{name}: no arena after three runs of {optimized.PlannedOperators.Count} nodes");
        Assert.Equal(0, plain.ArenaBytes);
        foreach (var (output, expected) in slow)
        {
            using var e = expected;
            using var got = fast[output];
            if (!e.IsFloat)
            {
                Assert.Equal(e.ToInt64s(), got.ToInt64s());
                continue;
            }
            float[] want = e.ToFloats(), have = got.ToFloats();
            Assert.Equal(want.Length, have.Length);
            Assert.True(want.Zip(have).All(p => float.IsFinite(p.First) == float.IsFinite(p.Second)), $"{name} output {output}: non-finite values differ");
            var pairs = want.Zip(have).Where(p => float.IsFinite(p.First)).ToList();
            double diff = Math.Sqrt(pairs.Sum(p => ((double)p.First - p.Second) * ((double)p.First - p.Second)));
            double norm = Math.Sqrt(pairs.Sum(p => (double)p.First * p.First));
            double rel = norm == 0 ? diff : diff / norm;
            Assert.True(rel <= 1e-5, $"{name} output {output}: optimized vs unoptimized rel L2 {rel:G3} ({optimized.FusedNodes} nodes fused)");
        }
        foreach (var t in inputs.Values)
            t.Dispose();
    }

    [Fact]
    public void StaticShapesFoldTheShapeArithmetic()
    {
        // The plain export declares only its input's shape: GpuNet's own inference (Transpose, LSTM, Reshape...) folds its
        // Shape chains exactly as the value_info that onnx.shape_inference adds to the other copy does.
        using var plain = OnnxModel.Load(Model("torch_lstm"), Cpu);
        using var declared = OnnxModel.Load(Model("torch_lstm_shape_inferred"), Cpu);
        Assert.DoesNotContain("Shape", plain.PlannedOperators);
        Assert.DoesNotContain("Shape", declared.PlannedOperators);
        Assert.Equal(9, plain.PlannedNodes);
        Assert.Equal(declared.PlannedOperators, plain.PlannedOperators);
    }

    [Fact]
    public void RunAfterDisposeOrWithNullInputsIsATypedError()
    {
        var model = OnnxModel.Load(Model("torch_mlp"), Cpu);
        Assert.Throws<MissingArgumentException>(() => model.Run(null!));
        Assert.Throws<OnnxInputException>(() => model.Run(new Dictionary<string, OnnxTensor> { [model.Inputs[0].Name] = null! }));
        model.Dispose();
        var e = Assert.Throws<TensorDisposedException>(() => model.Run(new Dictionary<string, OnnxTensor>()));
        Assert.Equal("onnx_run", e.Op);
    }

    [Fact]
    public void OutputsCopyIntoTheCallersArrayOrGiveTypedErrors()
    {
        using var model = OnnxModel.Load(Model("torch_mlp"), Cpu);
        var dims = model.Inputs[0].Dimensions!.Select(d => (int)(d.Value ?? 3)).ToArray();
        using var x = OnnxTensor.FromFloats(Enumerable.Range(0, dims.Aggregate(1, (a, b) => a * b)).Select(i => MathF.Sin(i)).ToArray(), dims);
        var output = model.Run(new Dictionary<string, OnnxTensor> { [model.Inputs[0].Name] = x }).Values.Single();
        Assert.NotNull(output.DeviceTensor);
        var kept = new float[output.Length];
        Array.Fill(kept, float.NaN);
        output.CopyTo(kept);
        Assert.Equal(output.ToFloats(), kept);
        // Host data (an input's) copies the same way.
        var back = new float[x.Length];
        x.CopyTo(back);
        Assert.Equal(x.ToFloats(), back);
        Assert.Contains($"expected {output.Length}", Assert.Throws<OnnxInputException>(() => output.CopyTo(new float[output.Length + 1])).Message);
        using var integers = OnnxTensor.FromInt64s(new long[] { 1, 2 }, 2);
        Assert.Contains("Int64", Assert.Throws<OnnxInputException>(() => integers.CopyTo(new float[2])).Message);
        output.Dispose();
        Assert.Throws<TensorDisposedException>(() => output.CopyTo(kept));
    }

    [Fact]
    public void RepeatedRunsKeepThePoolFlat()
    {
        using var model = OnnxModel.Load(Model("torch_mlp"), Cpu);
        var dims = model.Inputs[0].Dimensions!.Select(d => (int)(d.Value ?? 3)).ToArray();
        using var x = OnnxTensor.FromFloats(Enumerable.Range(0, dims.Aggregate(1, (a, b) => a * b)).Select(i => MathF.Sin(i)).ToArray(), dims);
        var inputs = new Dictionary<string, OnnxTensor> { [model.Inputs[0].Name] = x };
        void RunOnce()
        {
            foreach (var o in model.Run(inputs).Values)
                o.Dispose();
        }
        for (int i = 0; i < 20; i++)
            RunOnce();
        long inUse = PoolAccounting.SettledBytesInUse(Cpu), reserved = Cpu.Pool.Stats.BytesReserved;
        for (int i = 0; i < 3000; i++)
            RunOnce();
        Assert.Equal(inUse, PoolAccounting.SettledBytesInUse(Cpu));
        Assert.True(Cpu.Pool.Stats.BytesReserved <= reserved + (1 << 20), "the pool's cache must not grow with repetition");
    }

    [Fact]
    public void InputsAndOutputsDescribeTheGraph()
    {
        using var model = OnnxModel.Load(Model("torch_gpt_block"), Cpu);
        var input = Assert.Single(model.Inputs);
        Assert.Equal("ids", input.Name);
        Assert.Equal(OnnxElementType.Int64, input.ElementType);
        Assert.Equal(new long?[] { 2, 11 }, input.Dimensions!.Select(d => d.Value));
        Assert.Equal(17, model.Opset);
        Assert.Equal("output_0", Assert.Single(model.Outputs).Name);
    }

    [Fact]
    public void BadInputsAreTypedErrorsThatNameTheInput()
    {
        using var model = OnnxModel.Load(Model("torch_mlp"), Cpu);
        using var good = Input("torch_mlp");
        var unknown = Assert.Throws<OnnxInputException>(() => model.Run(new Dictionary<string, OnnxTensor> { ["x"] = good }));
        Assert.Contains("'x' is not an input", unknown.Message);
        Assert.Contains("input_0", Assert.Throws<OnnxInputException>(() => model.Run(new Dictionary<string, OnnxTensor>())).Message);
        using var ints = OnnxTensor.FromInt64s(new long[7 * 13], 7, 13);
        Assert.Contains("must be Float", Assert.Throws<OnnxInputException>(() => model.Run(new Dictionary<string, OnnxTensor> { ["input_0"] = ints })).Message);
        using var wrong = OnnxTensor.FromFloats(new float[7 * 12], 7, 12);
        Assert.Contains("shape", Assert.Throws<OnnxInputException>(() => model.Run(new Dictionary<string, OnnxTensor> { ["input_0"] = wrong })).Message);
        // The model still runs after rejecting bad inputs.
        var outputs = model.Run(new Dictionary<string, OnnxTensor> { ["input_0"] = good });
        Assert.Equal(new[] { 7, 5 }, outputs["output_0"].Shape);
        outputs["output_0"].Dispose();
    }

    [Fact]
    public void UnsupportedNodesAreAllListedAtLoad()
    {
        var e = Assert.Throws<OnnxUnsupportedException>(() => OnnxModel.Load(Path.Combine(ConformanceTests.DataRoot, "node/test_nonmaxsuppression_center_point_box_format/model.onnx"), Cpu));
        Assert.Contains("NonMaxSuppression", e.Message);
        Assert.Single(e.Problems);
    }

    [Fact]
    public void IntermediatesAreReleasedAndRunsLeaveNothingBehind()
    {
        using var device = Device.Open("cpu");
        using var model = OnnxModel.Load(Model("torch_gpt_block"), device);
        using var ids = Input("torch_gpt_block");
        // The first run uploads the weights the file stores on the host (once, kept with the model); the second is recorded
        // and its intermediates planned into an arena, also kept with the model.
        for (int r = 0; r < 2; r++)
            foreach (var o in model.Run(new Dictionary<string, OnnxTensor> { ["ids"] = ids }).Values)
                o.Dispose();
        long before = device.Pool.Stats.BytesInUse;
        for (int r = 0; r < 3; r++)
            foreach (var o in model.Run(new Dictionary<string, OnnxTensor> { ["ids"] = ids }).Values)
                o.Dispose();
        Assert.Equal(before, device.Pool.Stats.BytesInUse);
        // The peak is the largest live set, far below the sum of every intermediate the graph names.
        Assert.InRange(model.LastRunPeakBytes, 1, 200_000);
    }
}

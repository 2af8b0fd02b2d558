using System.Numerics.Tensors;
using System.Text;
using Microsoft.ML.OnnxRuntime;

namespace GpuNet.Bench;

/// <summary>
/// Peers of the fast CPU device, timed in the same run on the same shapes: ONNX Runtime (one-node models built here,
/// run with preallocated input and output buffers, all cores, full graph optimization) and System.Numerics.Tensors'
/// TensorPrimitives on plain arrays. Host code is synchronous, so the runner's markers measure their host time exactly
/// as they measure GpuNet's.
/// </summary>
public static class CpuPeers
{
    private static string? WhyNot(Device d) => d.IsHostCpu ? null : "CPU peers run beside the fast CPU device (--device cpu)";

    private static float[] Random(int n, ulong seed)
    {
        var a = new float[n];
        Philox.FillUniform(a, seed, -1f, 1f);
        return a;
    }

    /// <summary>
    /// An ONNX Runtime case: a one-node model over inputs of the given shapes; the inputs are random, the output preallocated.
    /// The input sets the runner rotates share one session (one session each would start a spinning thread pool each); the
    /// last set disposed closes it.
    /// </summary>
    public static BenchCase Onnx(string kernel, string shape, double flops, double bytes, string[] presets, string opType, int[][] inputs, int[] output,
        params (string Name, object Value)[] attributes)
    {
        InferenceSession? session = null;
        int users = 0;
        return new BenchCase(kernel, shape, flops, bytes, presets, (d, s) =>
        {
            var shared = session ??= new InferenceSession(PeerGraphs.SingleNode(opType, inputs, output, attributes), Options());
            users++;
            var release = new Release(() =>
            {
                if (--users == 0)
                {
                    shared.Dispose();
                    session = null;
                }
            });
            var values = inputs.Select((sh, i) => OrtValue.CreateTensorValueFromMemory(Random((int)sh.Aggregate(1L, (x, y) => x * y), s + (ulong)i), sh.Select(v => (long)v).ToArray())).ToList();
            var result = OrtValue.CreateTensorValueFromMemory(new float[output.Aggregate(1, (x, y) => x * y)], output.Select(v => (long)v).ToArray());
            var names = inputs.Select((_, i) => $"x{i}").ToArray();
            var run = new RunOptions();
            return new BenchInstance(() => shared.Run(run, names, values, new[] { "y" }, new[] { result }),
                values.Cast<IDisposable>().Append(result).Append(run).Append(release).ToArray())
            { InputBytes = inputs.Sum(sh => 4L * sh.Aggregate(1L, (x, y) => x * y)) };
        })
        { Implementation = "onnxruntime", PeerOf = kernel, Unavailable = WhyNot };
    }

    private sealed class Release(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    private static SessionOptions Options() => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = Environment.ProcessorCount,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };

    /// <summary>A TensorPrimitives case over <paramref name="n"/> random floats per input.</summary>
    public static BenchCase Primitives(string kernel, string shape, double flops, double bytes, string[] presets, int inputs, int n, Action<float[][], float[]> op) =>
        new BenchCase(kernel, shape, flops, bytes, presets, (d, s) =>
        {
            var xs = Enumerable.Range(0, inputs).Select(i => Random(n, s + (ulong)i)).ToArray();
            var y = new float[n];
            return new BenchInstance(() => op(xs, y)) { InputBytes = 4L * inputs * n };
        })
        { Implementation = "tensorprimitives", PeerOf = kernel, Unavailable = WhyNot };

    /// <summary>Row-wise softmax with TensorPrimitives.SoftMax.</summary>
    public static void SoftmaxRows(float[] x, float[] y, int cols)
    {
        for (int r = 0; r < x.Length / cols; r++)
            TensorPrimitives.SoftMax(x.AsSpan(r * cols, cols), y.AsSpan(r * cols, cols));
    }
}

/// <summary>
/// Writes ONNX models (protobuf wire format, the few ModelProto fields a one-node float graph needs), so the bench needs no
/// model files and no onnx package. Field numbers are those of onnx.proto (IR version 8, opset 17).
/// </summary>
public static class PeerGraphs
{
    public static byte[] SingleNode(string opType, int[][] inputs, int[] output, (string Name, object Value)[] attributes)
    {
        var node = new ProtoWriter();
        for (int i = 0; i < inputs.Length; i++)
            node.String(1, $"x{i}");
        node.String(2, "y");
        node.String(4, opType);
        foreach (var (name, value) in attributes)
        {
            var a = new ProtoWriter();
            a.String(1, name);
            switch (value)
            {
                case float f: a.Float(2, f); a.Varint(20, 1); break;
                case int v: a.Varint(3, (ulong)(long)v); a.Varint(20, 2); break;
                case int[] vs: foreach (var v in vs) a.Varint(8, (ulong)(long)v); a.Varint(20, 7); break;
                default: throw new ArgumentException($"attribute {name}: unsupported type {value.GetType().Name}");
            }
            node.Message(5, a);
        }
        var graph = new ProtoWriter();
        graph.Message(1, node);
        graph.String(2, "gpunet_peer");
        for (int i = 0; i < inputs.Length; i++)
            graph.Message(11, ValueInfo($"x{i}", inputs[i]));
        graph.Message(12, ValueInfo("y", output));
        var opset = new ProtoWriter();
        opset.String(1, "");
        opset.Varint(2, 17);
        var model = new ProtoWriter();
        model.Varint(1, 8);
        model.String(2, "gpunet-bench");
        model.Message(7, graph);
        model.Message(8, opset);
        return model.ToArray();
    }

    private static ProtoWriter ValueInfo(string name, int[] shape)
    {
        var dims = new ProtoWriter();
        foreach (var d in shape)
        {
            var dim = new ProtoWriter();
            dim.Varint(1, (ulong)d);
            dims.Message(1, dim);
        }
        var tensor = new ProtoWriter();
        tensor.Varint(1, 1); // FLOAT
        tensor.Message(2, dims);
        var type = new ProtoWriter();
        type.Message(1, tensor);
        var info = new ProtoWriter();
        info.String(1, name);
        info.Message(2, type);
        return info;
    }

    private sealed class ProtoWriter
    {
        private readonly MemoryStream _s = new();

        private void Raw(ulong v)
        {
            while (v >= 0x80)
            {
                _s.WriteByte((byte)(v | 0x80));
                v >>= 7;
            }
            _s.WriteByte((byte)v);
        }

        public void Varint(int field, ulong v)
        {
            Raw((ulong)field << 3);
            Raw(v);
        }

        public void Float(int field, float f)
        {
            Raw(((ulong)field << 3) | 5);
            _s.Write(BitConverter.GetBytes(f));
        }

        public void Bytes(int field, byte[] b)
        {
            Raw(((ulong)field << 3) | 2);
            Raw((ulong)b.Length);
            _s.Write(b);
        }

        public void String(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

        public void Message(int field, ProtoWriter m) => Bytes(field, m.ToArray());

        public byte[] ToArray() => _s.ToArray();
    }
}

using System.Diagnostics;
using GpuNet.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace GpuNet.Bench;

/// <summary>
/// <c>run --onnx MODEL...</c>: each model end to end on the device and on ONNX Runtime's CPU execution provider in the same
/// process, in alternating blocks of warm runs with a pause between (see <see cref="BlockRuns"/>), median of ≥ 20 each
/// (inputs and outputs copied between host and device included, as a
/// caller sees them), both outputs compared.
/// </summary>
public static class OnnxModelBench
{
    /// <summary>Timed runs per block of one engine, and the pause between blocks (longer than ONNX Runtime's post-run spinning).</summary>
    private const int BlockRuns = 5, SettleMs = 60;

    /// <summary>Benches every model; returns the exit code (1 when an output disagrees beyond rtol 1e-3 / atol 1e-5).</summary>
    public static int Run(Cli cli)
    {
        using var device = Device.Open(cli.One("device"));
        int runs = Math.Max(cli.Int("runs", 20), 20);
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}; peer: ONNX Runtime {OrtEnv.Instance().GetVersionString()} (CPU, {Environment.ProcessorCount} threads); median of {runs} runs in blocks of {BlockRuns}, engines alternating, {SettleMs} ms between blocks");
        Console.WriteLine($"{"model",-28} {"GpuNet ms",10} {"ORT ms",10} {"ORT/GpuNet",11} {"nodes",12} {"rel L2",9} {"max abs",9}");
        var models = cli.Many("onnx");
        var (differ, elapsed) = ProgressReporter.Run("run --onnx", models.Count, progress =>
        {
            int differing = 0;
            foreach (var path in models)
            {
                progress.Next(path);
                differing += One(device, path, runs, !cli.Value<bool>("no-optimize"), progress) ? 0 : 1;
            }
            return (differing, progress.Elapsed);
        });
        Console.WriteLine($"{models.Count - differ} of {models.Count} models agree with ONNX Runtime on {device.Id} in {ProgressReporter.Format(elapsed)}");
        return differ == 0 ? 0 : 1;
    }

    /// <summary>Writes the seeded weights.bin beside <paramref name="modelFile"/> when its directory has a weights.tsv and no
    /// matching weights.bin (the repository's real models in a fresh checkout), saying so.</summary>
    internal static void MaterializeSeededWeights(string modelFile)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(modelFile))!;
        if (SeededWeights.Materialize(dir))
            Console.Error.WriteLine($"wrote {Path.Combine(dir, "weights.bin")} from weights.tsv (seeded weights)");
    }

    private static bool One(Device device, string path, int runs, bool optimize, ProgressReporter progress)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "model.onnx") : path;
        // A model in a directory of its own (model.onnx beside test_data_set_0, as ONNX's cases and ours are laid out) is
        // named by the directory.
        string name = Directory.Exists(path) ? Path.GetFileName(path.TrimEnd('/'))
            : Path.GetFileName(file) == "model.onnx" ? Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(file)))!
            : Path.GetFileNameWithoutExtension(path);
        MaterializeSeededWeights(file);
        using var model = GpuNet.Onnx.OnnxModel.Load(file, device, optimize);
        var inputs = Inputs(model, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "test_data_set_0"));
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount };
        using var session = new InferenceSession(file, options);
        var ortInputs = inputs.ToDictionary(kv => kv.Key, kv => kv.Value.IsFloat
            ? OrtValue.CreateTensorValueFromMemory(kv.Value.ToFloats(), kv.Value.Shape.Select(d => (long)d).ToArray())
            : kv.Value.ElementType == OnnxElementType.Bool
                ? OrtValue.CreateTensorValueFromMemory(kv.Value.ToBools(), kv.Value.Shape.Select(d => (long)d).ToArray())
                : OrtValue.CreateTensorValueFromMemory(kv.Value.ToInt64s(), kv.Value.Shape.Select(d => (long)d).ToArray()));
        var outputNames = model.Outputs.Select(o => o.Name).ToArray();
        using var runOptions = new RunOptions();
        // Outputs are read into arrays kept across runs, on both engines: a new array a run for a large output (a one-layer
        // model's 256 KiB) made .NET collect its large-object heap every few runs, 0.6–0.8 ms a run on whichever engine
        // met the collection.
        float[][] ours = new float[outputNames.Length][], theirs = new float[outputNames.Length][];
        var ourTimes = new List<double>();
        var ortTimes = new List<double>();
        var clock = new Stopwatch();
        // Blocks of runs, alternating engines, a pause between blocks: ONNX Runtime's pool spins ≈ 50 ms after a run
        // (KERNELS.md, 2026-11-24) and .NET's workers spin briefly too, so runs timed back to back across engines each had the
        // other's idle threads holding a core; within a block each engine runs warm, as a serving loop would, and the first
        // run of every block is not timed.
        // Warm first, both engines, until each has run 30 times and 0.4 s has passed (at most 3 s): .NET promotes a method to
        // its optimized tier after 30 calls and a 100 ms delay, so the first model of a process measured with one warm block
        // ran up to 3× slower than it does warm (a 3×3 convolution: 0.33 ms first in the list, 0.115 ms later in it).
        var warming = Stopwatch.StartNew();
        int warmMs = Environment.TickCount64 - _processStart < 4000 ? 2500 : 400;
        for (int n = 0; (n < 30 || warming.ElapsedMilliseconds < warmMs) && warming.ElapsedMilliseconds < warmMs + 2600; n++)
        {
            foreach (var o in model.Run(inputs).Values)
                o.Dispose();
            session.Run(runOptions, ortInputs.Keys.ToArray(), ortInputs.Values.ToArray(), outputNames).Dispose();
        }
        int blocks = (runs + BlockRuns - 1) / BlockRuns;
        for (int block = -1; block < blocks; block++)
        {
            Thread.Sleep(SettleMs);
            for (int r = 0; r <= BlockRuns; r++)
            {
                clock.Restart();
                var outputs = model.Run(inputs);
                for (int k = 0; k < outputNames.Length; k++)
                {
                    var output = outputs[outputNames[k]];
                    if (!output.IsFloat)
                        ours[k] = Array.ConvertAll(output.ToInt64s(), v => (float)v);
                    else
                        output.CopyTo(Kept(ref ours[k], output.Length));
                }
                double ourMs = clock.Elapsed.TotalMilliseconds;
                foreach (var o in outputs.Values)
                    o.Dispose();
                if (block >= 0 && r > 0)
                    ourTimes.Add(ourMs);
            }
            Thread.Sleep(SettleMs);
            for (int r = 0; r <= BlockRuns; r++)
            {
                clock.Restart();
                using (var results = session.Run(runOptions, ortInputs.Keys.ToArray(), ortInputs.Values.ToArray(), outputNames))
                    for (int k = 0; k < results.Count; k++)
                    {
                        var v = results[k];
                        if (v.GetTensorTypeAndShape().ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
                            theirs[k] = Array.ConvertAll(v.GetTensorDataAsSpan<long>().ToArray(), x => (float)x);
                        else
                        {
                            var data = v.GetTensorDataAsSpan<float>();
                            data.CopyTo(Kept(ref theirs[k], data.Length));
                        }
                    }
                double ortMs = clock.Elapsed.TotalMilliseconds;
                if (block >= 0 && r > 0)
                    ortTimes.Add(ortMs);
            }
        }
        // The conformance runner's allclose (rtol 1e-3, atol 1e-5, NaN and ±inf where expected), ORT's output as the expected one.
        double worstRel = 0, worstAbs = 0;
        bool close = true;
        for (int k = 0; k < ours.Length; k++)
        {
            using var got = OnnxTensor.FromFloats(ours[k], ours[k].Length);
            using var expected = OnnxTensor.FromFloats(theirs[k], theirs[k].Length);
            var (ok, rel, abs, _) = Conformance.Compare(got, expected, 1e-3, 1e-5);
            (close, worstRel, worstAbs) = (close && ok, Math.Max(worstRel, rel), Math.Max(worstAbs, abs));
        }
        double ourMedian = Median(ourTimes), ortMedian = Median(ortTimes);
        progress.Note($"{name,-28} {ourMedian,10:0.000} {ortMedian,10:0.000} {ortMedian / ourMedian,10:0.00}× {$"{model.PlannedNodes} ({model.FusedNodes} fused)",12} {worstRel,9:0.0e+0} {worstAbs,9:0.0e+0}{(close ? "" : "  OUTPUTS DIFFER")}");
        foreach (var t in inputs.Values)
            t.Dispose();
        foreach (var v in ortInputs.Values)
            v.Dispose();
        return close;
    }

    private static readonly long _processStart = Environment.TickCount64;

    /// <summary>The array kept in <paramref name="slot"/>, replaced by a new one when it does not hold <paramref name="length"/> elements.</summary>
    internal static float[] Kept(ref float[] slot, long length)
    {
        if (slot is null || slot.Length != length)
            slot = new float[length];
        return slot;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : 0.5 * (s[s.Count / 2 - 1] + s[s.Count / 2]);
    }

    /// <summary>The case's test inputs when the model sits in a backend-test directory, else random data of the declared (fixed) shapes.</summary>
    private static Dictionary<string, OnnxTensor> Inputs(GpuNet.Onnx.OnnxModel model, string dataSet)
    {
        var inputs = new Dictionary<string, OnnxTensor>();
        if (Directory.Exists(dataSet))
        {
            var files = Directory.GetFiles(dataSet, "input_*.pb").OrderBy(f => f, StringComparer.Ordinal).ToList();
            for (int k = 0; k < files.Count && k < model.Inputs.Count; k++)
            {
                var t = OnnxTensor.ReadPb(files[k]);
                inputs[t.Name.Length > 0 ? t.Name : model.Inputs[k].Name] = t;
            }
            return inputs;
        }
        var rng = new Random(42);
        foreach (var info in model.Inputs)
            inputs[info.Name] = RandomInput(info, rng, "and there is no test_data_set_0 beside the model");
        return inputs;
    }

    /// <summary>Random data for an input of fixed shape: floats in [−1, 1), ints and bools 0/1; a symbolic shape is a usage error (<paramref name="hint"/> says what to do).</summary>
    public static OnnxTensor RandomInput(OnnxValueInfo info, Random rng, string hint)
    {
        if (info.Dimensions is null || info.Dimensions.Any(d => d.Value is null))
            throw new UsageException($"input '{info.Name}' ({info}) has no fixed shape {hint}");
        var shape = info.Dimensions.Select(d => (int)d.Value!.Value).ToArray();
        int n = shape.Aggregate(1, (a, b) => a * b);
        return info.ElementType switch
        {
            OnnxElementType.Float => OnnxTensor.FromFloats(Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape),
            OnnxElementType.Bool => OnnxTensor.FromBools(Enumerable.Range(0, n).Select(_ => rng.Next(2) == 1).ToArray(), shape),
            _ => OnnxTensor.FromInt64s(Enumerable.Range(0, n).Select(_ => (long)rng.Next(2)).ToArray(), shape),
        };
    }
}

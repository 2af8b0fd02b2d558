using System.Diagnostics;

namespace GpuNet.Onnx;

/// <summary>The outcome of one backend-test case.</summary>
public enum ConformanceStatus
{
    /// <summary>Every output of every data set within tolerance.</summary>
    Pass,
    /// <summary>An output differs (or has the wrong shape or type), or the run raised an error.</summary>
    Fail,
    /// <summary>The model uses something GpuNet does not run (the reason says what), found at load time.</summary>
    Unsupported,
}

/// <summary>One case's result: status, worst errors over its outputs, the reason when not passing, and its time.</summary>
/// <param name="Case">The case directory's name (e.g. <c>test_add_bcast</c>).</param>
/// <param name="Status">Pass, fail or unsupported.</param>
/// <param name="RelativeL2">Largest relative L2 error over the float outputs (‖got − expected‖ / ‖expected‖).</param>
/// <param name="MaxAbs">Largest absolute error over the outputs.</param>
/// <param name="Detail">Why it failed or is unsupported.</param>
/// <param name="Milliseconds">Load plus run time.</param>
public sealed record ConformanceResult(string Case, ConformanceStatus Status, double RelativeL2, double MaxAbs, string? Detail, double Milliseconds);

/// <summary>
/// Runs ONNX backend-test cases — a directory holding <c>model.onnx</c> and <c>test_data_set_N/input_K.pb, output_K.pb</c>
/// (serialized TensorProtos) — and compares every output with NumPy's allclose rule:
/// |got − expected| ≤ atol + rtol·|expected| elementwise, NaN where NaN is expected, integers and bools exactly.
/// </summary>
public static class Conformance
{
    /// <summary>Case directories under each path (a path that is itself a case counts once), sorted by name.</summary>
    public static IReadOnlyList<string> FindCases(IEnumerable<string> paths) =>
        paths.SelectMany(p => File.Exists(Path.Combine(p, "model.onnx")) ? new[] { p }
                : Directory.Exists(p) ? Directory.GetDirectories(p).Where(d => File.Exists(Path.Combine(d, "model.onnx"))).OrderBy(d => d, StringComparer.Ordinal).ToArray()
                : throw new DirectoryNotFoundException($"onnx test: '{p}' is neither a test case nor a directory of them"))
            .ToList();

    /// <summary>
    /// The cases of ONNX's backend suite (libonnx-testdata 1.12: node/, pytorch-converted/, pytorch-operator/) GpuNet is known
    /// not to pass, by case name, each with the reason (3-D convolution, training operators, float64, an op not implemented
    /// yet, ...). <c>onnx test</c> reports a listed case that fails as expected, and GpuNet's own tests fail when a listed case
    /// starts passing, so the list stays true.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ExpectedFailures => _expectedFailures.Value;

    private static readonly Lazy<IReadOnlyDictionary<string, string>> _expectedFailures = new(() =>
    {
        using var stream = typeof(Conformance).Assembly.GetManifestResourceStream("GpuNet.Onnx.conformance_expected_failures.txt")
            ?? throw new InvalidOperationException("GpuNet.Onnx is missing its conformance_expected_failures.txt resource");
        using var reader = new StreamReader(stream);
        var list = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var parts = line.Split('\t', 2);
            list[parts[0]] = parts.Length > 1 ? parts[1] : "";
        }
        return list;
    });

    /// <summary>Loads and runs one case on <paramref name="device"/>.</summary>
    public static ConformanceResult Run(string caseDir, Device device, double rtol = 1e-3, double atol = 1e-5)
    {
        string name = Path.GetFileName(caseDir.TrimEnd(Path.DirectorySeparatorChar));
        var clock = Stopwatch.StartNew();
        double worstRel = 0, worstAbs = 0;
        try
        {
            // A case whose weights are seeded (weights.tsv, no weights.bin in a fresh checkout) gets them written first.
            SeededWeights.Materialize(caseDir);
            using var model = OnnxModel.Load(Path.Combine(caseDir, "model.onnx"), device);
            var sets = Directory.GetDirectories(caseDir, "test_data_set_*").OrderBy(d => d, StringComparer.Ordinal).ToList();
            if (sets.Count == 0)
                return new(name, ConformanceStatus.Fail, 0, 0, "no test_data_set_* directory", clock.Elapsed.TotalMilliseconds);
            foreach (var set in sets)
            {
                var inputs = new Dictionary<string, OnnxTensor>();
                try
                {
                    var files = Directory.GetFiles(set, "input_*.pb").OrderBy(Index).ToList();
                    for (int k = 0; k < files.Count; k++)
                    {
                        var t = OnnxTensor.ReadPb(files[k]);
                        // Files are named in the order of the graph's inputs; a TensorProto name, when present, wins.
                        string key = t.Name.Length > 0 ? t.Name : k < model.Inputs.Count ? model.Inputs[k].Name : $"input_{k}";
                        inputs[key] = t;
                    }
                    var outputs = model.Run(inputs);
                    try
                    {
                        var expectedFiles = Directory.GetFiles(set, "output_*.pb").OrderBy(Index).ToList();
                        for (int k = 0; k < expectedFiles.Count; k++)
                        {
                            using var expected = OnnxTensor.ReadPb(expectedFiles[k]);
                            string key = expected.Name.Length > 0 && outputs.ContainsKey(expected.Name) ? expected.Name : model.Outputs[k].Name;
                            var (ok, rel, abs, why) = Compare(outputs[key], expected, rtol, atol);
                            worstRel = Math.Max(worstRel, rel);
                            worstAbs = Math.Max(worstAbs, abs);
                            if (!ok)
                                return new(name, ConformanceStatus.Fail, worstRel, worstAbs, $"{Path.GetFileName(set)} output '{key}': {why}", clock.Elapsed.TotalMilliseconds);
                        }
                    }
                    finally
                    {
                        foreach (var o in outputs.Values)
                            o.Dispose();
                    }
                }
                finally
                {
                    foreach (var t in inputs.Values)
                        t.Dispose();
                }
            }
            return new(name, ConformanceStatus.Pass, worstRel, worstAbs, null, clock.Elapsed.TotalMilliseconds);
        }
        catch (OnnxUnsupportedException e)
        {
            return new(name, ConformanceStatus.Unsupported, 0, 0, string.Join("; ", e.Problems), clock.Elapsed.TotalMilliseconds);
        }
        catch (Exception e) when (e is GpuNetException or IOException)
        {
            return new(name, ConformanceStatus.Fail, worstRel, worstAbs, $"{e.GetType().Name}: {e.Message}", clock.Elapsed.TotalMilliseconds);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A defect of GpuNet's, not of the case: reported as a failure with where it happened, so one case cannot stop a run.
            return new(name, ConformanceStatus.Fail, worstRel, worstAbs, $"internal error {e.GetType().Name}: {e.Message} at {e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}", clock.Elapsed.TotalMilliseconds);
        }
    }

    private static int Index(string file)
    {
        var stem = Path.GetFileNameWithoutExtension(file);
        return int.TryParse(stem[(stem.LastIndexOf('_') + 1)..], out int k) ? k : int.MaxValue;
    }

    /// <summary>allclose with the errors it saw; shapes and element types must match.</summary>
    public static (bool Ok, double RelativeL2, double MaxAbs, string? Why) Compare(OnnxTensor got, OnnxTensor expected, double rtol, double atol)
    {
        if (!got.Shape.SequenceEqual(expected.Shape))
            return (false, 0, 0, $"shape {GpuNetException.FormatShape(got.Shape)}, expected {GpuNetException.FormatShape(expected.Shape)}");
        if (got.IsFloat != expected.IsFloat || !got.IsFloat && (got.ElementType == OnnxElementType.Bool) != (expected.ElementType == OnnxElementType.Bool))
            return (false, 0, 0, $"element type {got.ElementType}, expected {expected.ElementType}");
        double[] g = got.IsFloat ? Array.ConvertAll(got.ToFloats(), v => (double)v) : Array.ConvertAll(got.ToInt64s(), v => (double)v);
        double[] e = expected.IsFloat ? Array.ConvertAll(expected.ToFloats(), v => (double)v) : Array.ConvertAll(expected.ToInt64s(), v => (double)v);
        double diff2 = 0, ref2 = 0, maxAbs = 0;
        string? why = null;
        for (int k = 0; k < g.Length; k++)
        {
            bool nanE = double.IsNaN(e[k]), nanG = double.IsNaN(g[k]);
            if (nanE || nanG)
            {
                if (nanE != nanG && why is null)
                    why = $"element {k}: {g[k]}, expected {e[k]}";
                continue;
            }
            if (double.IsInfinity(e[k]) || double.IsInfinity(g[k]))
            {
                if (e[k] != g[k] && why is null)
                    why = $"element {k}: {g[k]}, expected {e[k]}";
                continue;
            }
            double d = Math.Abs(g[k] - e[k]);
            maxAbs = Math.Max(maxAbs, d);
            diff2 += d * d;
            ref2 += e[k] * e[k];
            double allowed = got.IsFloat ? atol + rtol * Math.Abs(e[k]) : 0;
            if (d > allowed && why is null)
                why = $"element {k}: {g[k]:G9}, expected {e[k]:G9} (|Δ| {d:G3} > {allowed:G3})";
        }
        double rel = ref2 > 0 ? Math.Sqrt(diff2 / ref2) : Math.Sqrt(diff2);
        return (why is null, rel, maxAbs, why is null ? null : why + $"; rel L2 {rel:G3}, max abs {maxAbs:G3}");
    }
}

using System.Diagnostics;
using System.Text.Json;
using GpuNet.Onnx;

namespace GpuNet.Bench;

/// <summary>The <c>onnx</c> verb: <c>test</c> (the backend-test runner), <c>info</c> and <c>run</c>.</summary>
public static class OnnxVerb
{
    /// <summary><c>onnx test DIR...</c>: the backend-test runner.</summary>
    public static int Test(Cli cli)
    {
        var paths = cli.Arguments("DIR");
        double rtol = cli.Float("rtol", 1e-3f), atol = cli.Float("atol", 1e-5f);
        var cases = Conformance.FindCases(paths);
        using var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}; {cases.Count} cases; rtol {rtol:G3}, atol {atol:G3}");
        Console.WriteLine($"{"status",-12} {"case",-58} {"rel L2",9} {"max abs",9} {"ms",7}  detail");
        var results = new List<ConformanceResult>();
        var clock = Stopwatch.StartNew();
        ProgressReporter.Run("onnx test", cases.Count, progress =>
        {
            foreach (var dir in cases)
            {
                progress.Next(Path.GetFileName(dir.TrimEnd('/')));
                var r = Conformance.Run(dir, device, rtol, atol);
                results.Add(r);
                bool listed = Conformance.ExpectedFailures.TryGetValue(r.Case, out var reason);
                string status = r.Status switch
                {
                    ConformanceStatus.Pass => "pass",
                    _ when listed => "expected",
                    ConformanceStatus.Fail => "FAIL",
                    _ => "unsupported",
                };
                string detail = listed ? r.Status == ConformanceStatus.Pass ? $"passes, though listed as an expected failure ({reason})" : $"{reason}: {r.Detail}" : r.Detail ?? "";
                progress.Note($"{status,-12} {r.Case,-58} {r.RelativeL2,9:0.0e+0} {r.MaxAbs,9:0.0e+0} {r.Milliseconds,7:0}  {detail}");
            }
            return 0;
        });
        // A case GpuNet's list of known failures names (with its reason) counts as expected, not failed.
        bool Expected(ConformanceResult r) => r.Status != ConformanceStatus.Pass && Conformance.ExpectedFailures.ContainsKey(r.Case);
        int pass = results.Count(r => r.Status == ConformanceStatus.Pass), expected = results.Count(Expected);
        int fail = results.Count(r => r.Status == ConformanceStatus.Fail && !Expected(r));
        int unsupported = results.Count - pass - fail - expected;
        if (cli.One("json") is { } json)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(new
            {
                device = device.Id, rtol, atol, passed = pass, failed = fail, expected_failures = expected, unsupported,
                cases = results.Select(r => new { name = r.Case, status = r.Status.ToString().ToLowerInvariant(), expected_failure = Expected(r), rel_l2 = r.RelativeL2, max_abs = r.MaxAbs, ms = r.Milliseconds, detail = r.Detail }),
            }, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {json}");
        }
        Console.WriteLine($"{pass} passed, {fail} failed, {expected} expected failures (GpuNet's known list, with reasons), {unsupported} unsupported of {results.Count} cases on {device.Id} in {clock.Elapsed.TotalSeconds:0.0} s");
        return fail > 0 ? 1 : 0;
    }

    /// <summary><c>onnx info MODEL...</c>.</summary>
    public static int Info(Cli cli)
    {
        var paths = cli.Arguments("MODEL");
        foreach (var path in paths)
        {
            var s = OnnxModel.Inspect(path);
            Console.WriteLine($"{path}: IR {s.IrVersion}, opset {s.Opset}, producer '{s.Producer}', {s.Initializers} initializers");
            foreach (var i in s.Inputs)
                Console.WriteLine($"  input  {i}");
            foreach (var o in s.Outputs)
                Console.WriteLine($"  output {o}");
            Console.WriteLine($"  ops: {string.Join(", ", s.OperatorCounts.Select(kv => $"{kv.Key} ×{kv.Value}"))}");
            Console.WriteLine(s.Unsupported.Count == 0 ? "  every node is supported" : $"  unsupported ({s.Unsupported.Count}):\n    " + string.Join("\n    ", s.Unsupported));
        }
        Console.WriteLine($"{paths.Count} model{(paths.Count == 1 ? "" : "s")} inspected");
        return 0;
    }

    /// <summary>Runs a model on inputs from .pb files (name=file), random data for the rest (fixed shapes only), and times it.</summary>
    public static int RunModel(Cli cli)
    {
        var paths = new[] { cli.Argument("MODEL") };
        using var device = Device.Open(cli.One("device"));
        int runs = cli.Int("runs", 10);
        OnnxModelBench.MaterializeSeededWeights(paths[0]);
        var clock = Stopwatch.StartNew();
        using var model = OnnxModel.Load(paths[0], device);
        double loadMs = clock.Elapsed.TotalMilliseconds;
        Console.WriteLine($"{paths[0]} on {device.Id}: loaded in {loadMs:0} ms; {model.PlannedNodes} nodes to run, {model.FoldedNodes} folded into constants");
        var inputs = new Dictionary<string, OnnxTensor>();
        foreach (var given in cli.Many("input"))
        {
            int eq = given.IndexOf('=');
            if (eq <= 0)
                throw new UsageException($"--input takes name=file.pb, got '{given}'");
            inputs[given[..eq]] = OnnxTensor.ReadPb(given[(eq + 1)..]);
        }
        var rng = new Random(cli.Int("seed", 0));
        foreach (var info in model.Inputs.Where(i => !inputs.ContainsKey(i.Name)))
        {
            inputs[info.Name] = OnnxModelBench.RandomInput(info, rng, $": give it with --input {info.Name}=file.pb");
            Console.WriteLine($"input '{info.Name}': random {info.ElementType} {GpuNetException.FormatShape(inputs[info.Name].Shape)}");
        }
        var times = new List<double>();
        var nodeTimes = new List<IReadOnlyList<OnnxNodeTime>>();
        Dictionary<string, OnnxTensor>? outputs = null;
        float[][]? kept = null;
        for (int r = 0; r <= runs; r++)
        {
            if (outputs is not null)
                foreach (var o in outputs.Values)
                    o.Dispose();
            clock.Restart();
            outputs = model.Run(inputs);
            // Include the copy back, as a user would see it, into arrays kept across runs (OnnxTensor.CopyTo): a new array a
            // run for a large output would time .NET's large-object-heap collections instead of the model.
            kept ??= new float[outputs.Count][];
            int index = 0;
            foreach (var o in outputs.Values)
            {
                if (o.IsFloat)
                    o.CopyTo(OnnxModelBench.Kept(ref kept[index], o.Length));
                else
                    _ = o.ToInt64s().Length;
                index++;
            }
            times.Add(clock.Elapsed.TotalMilliseconds);
            if (r > 0)
                nodeTimes.Add(model.LastRunNodeProfile);
        }
        foreach (var (name, value) in outputs!)
        {
            var head = value.IsFloat ? value.ToFloats().Take(6).Select(v => v.ToString("G5")) : value.ToInt64s().Take(6).Select(v => v.ToString());
            Console.WriteLine($"output '{name}': {value} = [{string.Join(", ", head)}{(value.Length > 6 ? ", ..." : "")}]");
            value.Dispose();
        }
        var steady = times.Skip(1).OrderBy(t => t).ToList();
        Console.WriteLine($"first run {times[0]:0.00} ms, median of {steady.Count} {steady[steady.Count / 2]:0.00} ms; peak intermediate memory {model.LastRunPeakBytes / 1024.0:0.0} KiB" +
            (model.ArenaBytes > 0 ? $" (intermediates in a {model.ArenaBytes / 1024.0:0.0} KiB arena planned at the second run)" : ""));
        Console.WriteLine("time per op (last run, host): " + string.Join(", ", model.LastRunProfile.Take(8).Select(t => $"{t.Op} ×{t.Count} {t.Milliseconds:0.000} ms")));
        if (nodeTimes.Count > 0)
        {
            // Each node's median over the steady runs: one run's times are too noisy to rank nodes of 10-100 µs.
            var medians = nodeTimes[0].Select((n, i) => (n.Node, n.Op, n.Output, Ms: nodeTimes.Select(r => r[i].Milliseconds).Order().ElementAt(nodeTimes.Count / 2)))
                .OrderByDescending(n => n.Ms).ToList();
            int shown = Math.Min(cli.Int("nodes", 10), medians.Count);
            Console.WriteLine($"slowest nodes (median of {nodeTimes.Count} runs; all nodes {medians.Sum(n => n.Ms):0.000} ms):");
            foreach (var n in medians.Take(shown))
                Console.WriteLine($"  {n.Ms,8:0.000} ms  {n.Op,-18} → {GpuNetException.FormatShape(n.Output.ToArray())}  {n.Node}");
        }
        foreach (var t in inputs.Values)
            t.Dispose();
        return 0;
    }
}

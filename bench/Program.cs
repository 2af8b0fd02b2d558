using System.Text.Json;
using GpuNet;
using GpuNet.Bench;
using GpuNet.Kernels;
using GpuNet.Kernels.Checks;

return GpuNetCli.Invoke(args);

internal static class Verbs
{
    public static int Devices()
    {
        var table = new Table("id", "name", "kind", "memory", "warp", "SMs", "max threads/group", "shared/group", "compute cap.", "driver");
        foreach (var d in Device.List())
            table.Add(d.Id, d.Name, d.Kind.ToString(), MemoryPoolStats.FormatBytes(d.MemoryBytes), d.WarpSize.ToString(),
                d.Multiprocessors.ToString(), d.MaxThreadsPerGroup.ToString(), MemoryPoolStats.FormatBytes(d.MaxSharedMemoryPerGroup),
                d.ComputeCapability ?? "-", d.DriverVersion ?? "-");
        table.Print(Console.Out);
        Console.WriteLine($"{Device.List().Count} devices");
        return 0;
    }

    public static int Check(Cli cli)
    {
        IReadOnlyList<CheckCase> cases;
        try
        {
            cases = KernelRegistry.Select(cli.Many("kernel"));
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        ulong? seed = cli.Value<ulong?>("seed");
        using var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}; seed {seed ?? CheckRunner.DefaultSeed}; {cases.Count} cases");
        var table = new Table("kernel", "case", "shape", "max abs err", "rel L2 err", "pass");
        var results = new List<CheckResult>();
        var elapsed = ProgressReporter.Run("check", cases.Count, progress =>
        {
            foreach (var c in cases)
            {
                progress.Next(c.Id);
                var r = CheckRunner.Run(c, device, seed);
                results.Add(r);
                table.Add(r.Kernel, r.Case, r.Shape, r.Skipped ? "-" : r.MaxAbsErr.ToString("0.00e+0"), r.Skipped ? "-" : r.RelL2Err.ToString("0.00e+0"),
                    r.Skipped ? "skip (GPU-only size)" : r.Passed ? "pass" : "FAIL");
                if (!r.Passed)
                    progress.Note($"FAILED {r}");
            }
            return progress.Elapsed;
        });
        table.Print(Console.Out);
        foreach (var r in results.Where(r => !r.Passed))
            Console.WriteLine($"FAILED {r}");
        int failed = results.Count(r => !r.Passed), skipped = results.Count(r => r.Skipped);
        Console.WriteLine($"{results.Count - failed - skipped} passed, {failed} failed, {skipped} skipped on {device.Id} in {ProgressReporter.Format(elapsed)}");
        if (cli.One("json") is { } path)
            WriteJson(path, device.Info, results);
        return failed == 0 ? 0 : 1;
    }

    public static int Run(Cli cli)
    {
        if (cli.Many("onnx").Count > 0)
            return OnnxModelBench.Run(cli);
        string? devicePreset = null;
        if (cli.One("preset") is null)
        {
            using var probe = Device.Open(cli.One("device"));
            devicePreset = probe.IsHostCpu ? "cpu" : "small"; // the fast CPU device is compared with its CPU peers by default
        }
        string preset = cli.One("preset") ?? devicePreset!;
        int runs = cli.Int("runs", preset == "small" ? 5 : 20);
        ulong seed = cli.Value<ulong?>("seed") ?? 42;
        var kernels = cli.Many("kernel");
        var unknown = kernels.Where(k => !BenchRegistry.All.Any(c => c.Kernel == k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"unknown kernel(s): {string.Join(", ", unknown)}");
        string? shapeFilter = cli.One("shape");
        var cases = BenchRegistry.For(preset).Where(c => (kernels.Count == 0 || kernels.Contains(c.Kernel)) &&
            (shapeFilter is null || c.Shape.Contains(shapeFilter, StringComparison.OrdinalIgnoreCase))).ToList();

        using var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}; preset {preset}; {cases.Count} cases");
        var ceilings = Ceilings.Measure(device);
        Console.WriteLine("measured roofs: " + ceilings.Describe() +
            (ceilings.Datasheet is { } ds ? $"; datasheet {ds.Name}: {Units.Rate(ds.BandwidthGBs * 1e9, "B/s")}, {Units.Rate(ds.Fp32GFlops * 1e9, "FLOP/s")}" : ""));
        var budget = TimeSpan.FromSeconds(preset == "small" ? 1 : 3);
        // GpuNet and its peers on one shape are timed interleaved (see Runner), in the registry's order.
        var groups = cases.GroupBy(c => (c.Kernel, c.Shape)).ToList();
        var (results, elapsed) = ProgressReporter.Run("run", groups.Count, progress =>
        {
            var measured = new List<BenchResult>();
            foreach (var g in groups)
            {
                progress.Next($"{g.Key.Kernel} {g.Key.Shape} ({string.Join(", ", g.Select(c => c.Implementation))})");
                measured.AddRange(Runner.MeasureInterleaved(device, g.ToList(), warmup: preset == "small" ? 1 : 3, runs, budget, seed));
            }
            return (measured, progress.Elapsed);
        });
        var report = BenchReport.From(device, preset, ceilings, results);
        report.ToTable().Print(Console.Out);
        if (report.CacheNote() is { } note)
            Console.WriteLine(note);
        foreach (var line in report.AbsentPeers())
            Console.WriteLine(line);
        var written = new List<string>();
        if (cli.One("json") is { } json)
        {
            report.WriteJson(json);
            written.Add(json);
        }
        if (cli.One("csv") is { } csv)
        {
            report.WriteCsv(csv);
            written.Add(csv);
        }
        if (cli.One("md") is { } md)
        {
            report.WriteMarkdown(md, "gpunet " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1)));
            written.Add(md);
        }
        if (cli.One("plot") is { } plot)
        {
            report.WritePlot(plot);
            written.Add(plot);
        }
        int timed = results.Count(r => r.Skipped is null);
        Console.WriteLine($"{timed} cases timed ({results.Count - timed} absent peers) on {device.Id} in {ProgressReporter.Format(elapsed)}" +
            (written.Count > 0 ? "; wrote " + string.Join(", ", written) : ""));
        return 0;
    }

    private static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name + ".safetensors");

    public static int Models(Cli cli)
    {
        using var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}");
        var table = new Table("model", "parameters", "forward ms", "max abs err", "rel L2 err", "pass");
        var rows = new List<object>();
        int failed = 0;
        var golden = GpuNet.Layers.ModelZoo.Golden;
        var elapsed = ProgressReporter.Run("models", golden.Count, progress =>
        {
            foreach (var c in golden)
            {
                progress.Next(c.Name);
                using var f = GpuNet.Layers.SafeTensors.Open(FixturePath(c.Name));
                using var model = c.Build(device, f);
                model.Load(f);
                model.Eval();
                c.Run(model, f).Dispose(); // compile and warm up
                device.Synchronize();
                var sw = System.Diagnostics.Stopwatch.StartNew();
                using var y = c.Run(model, f);
                device.Synchronize();
                double ms = sw.Elapsed.TotalMilliseconds;
                var (maxAbs, rel, error) = CheckRunner.Compare(y.ToArray(), f.ReadDoubles("__expected__"));
                bool pass = error is null && rel <= 1e-4;
                failed += pass ? 0 : 1;
                table.Add(c.Name, model.ParameterCount.ToString(), ms.ToString("0.00"), maxAbs.ToString("0.00e+0"), rel.ToString("0.00e+0"), pass ? "pass" : "FAIL");
                rows.Add(new { model = c.Name, parameters = model.ParameterCount, forward_ms = ms, max_abs_err = maxAbs, rel_l2_err = rel, passed = pass });
            }
            return progress.Elapsed;
        });
        table.Print(Console.Out);
        if (cli.One("json") is { } path)
        {
            File.WriteAllText(path, JsonSerializer.Serialize(new { device = device.Info.Name, results = rows }, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {path}");
        }
        Console.WriteLine($"{rows.Count - failed} passed, {failed} failed of {rows.Count} models on {device.Id} in {ProgressReporter.Format(elapsed)}");
        return failed == 0 ? 0 : 1;
    }

    public static int Generate(Cli cli)
    {
        if (cli.One("weights") is { } weights)
            return GenerateText(cli, weights);
        if (cli.One("prompt") is not null)
            throw new UsageException("--prompt (text) needs --weights from 'train gpt'; the fixture GPT takes --prompt-ids");
        var prompt = cli.Many("prompt-ids").Select(s => int.TryParse(s, out var v) ? v : throw new UsageException($"--prompt-ids takes integers, got '{s}'")).ToArray();
        if (prompt.Length == 0)
            throw new UsageException("generate needs --prompt-ids (the fixture GPT) or --weights and --prompt (a GPT from 'train gpt')");
        int maxNew = cli.Int("max-new", 20), topK = cli.Int("top-k", 0), seed = cli.Int("seed", 0);
        float temperature = cli.Float("temperature", 1f), topP = cli.Float("top-p", 1f);
        using var device = Device.Open(cli.One("device"));
        using var f = GpuNet.Layers.SafeTensors.Open(FixturePath("gpt"));
        using var gpt = GpuNet.Layers.ModelZoo.Gpt(device, f);
        gpt.Load(f);
        gpt.Eval();
        _ = gpt.Generate(prompt, Math.Min(maxNew, 2), 0f); // JIT and first-use allocations outside the timing
        device.Synchronize();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var tokens = gpt.Generate(prompt, maxNew, temperature, topK, topP, (ulong)seed);
        device.Synchronize();
        double seconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"{string.Join(",", prompt)} | {string.Join(",", tokens.Skip(prompt.Length))}");
        PrintGenerationSummary(tokens.Length - prompt.Length, "tokens", seconds, device, temperature, topK, topP, seed, $"KV cache, prompt of {prompt.Length} tokens");
        return 0;
    }

    private static void PrintGenerationSummary(int generated, string unit, double seconds, Device device, float temperature, int topK, float? topP, int seed, string detail) =>
        Console.WriteLine($"{generated} new {unit} in {seconds * 1000:0.0} ms: {generated / Math.Max(seconds, 1e-9):0.0} {unit}/s on {device.Id} ({detail}); " +
                          $"sampling: {(temperature == 0 ? "greedy (temperature 0)" : $"temperature {temperature:G3}")}, top-k {(topK == 0 ? "off" : topK)}" +
                          (topP is { } p ? $", top-p {(p >= 1 ? "off" : p.ToString("G3"))}" : "") + $", seed {seed}");

    /// <summary>Continues a text prompt with a character-level GPT written by 'train gpt'.</summary>
    private static int GenerateText(Cli cli, string weights)
    {
        if (!File.Exists(weights))
            throw new UsageException($"generate: no weights file '{weights}'");
        if (cli.Many("prompt-ids").Count > 0)
            throw new UsageException("--prompt-ids is for the fixture GPT; with --weights give --prompt TEXT");
        if (cli.Value<float?>("top-p") is not null)
            throw new UsageException("--top-p is not supported by the character GPT's sampler; use --top-k");
        string prompt = cli.One("prompt") ?? throw new UsageException("generate --weights needs --prompt TEXT");
        float temperature = cli.Float("temperature", 0.8f);
        int maxNew = cli.Int("max-new", 200), topK = cli.Int("top-k", 0), seed = cli.Int("seed", 0);
        using var device = Device.Open(cli.One("device"));
        var (model, vocabulary) = GpuNet.Layers.CharGpt.Load(device, weights);
        using (model)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            string text;
            try
            {
                text = GpuNet.Layers.CharGpt.Continue(model, vocabulary, prompt, maxNew, temperature, topK, (ulong)seed);
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
            double seconds = sw.Elapsed.TotalSeconds;
            Console.WriteLine($"{prompt} | {text[prompt.Length..]}");
            PrintGenerationSummary(text.Length - prompt.Length, "characters", seconds, device, temperature, topK, null, seed, $"{Path.GetFileName(weights)}, context {model.Config.Context}");
        }
        return 0;
    }

    public static int Compare(Cli cli)
    {
        string a = cli.Argument("A"), b = cli.Argument("B");
        BenchReport ra, rb;
        try
        {
            (ra, rb) = (BenchReport.Load(a), BenchReport.Load(b));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
        {
            throw new UsageException($"compare: {e.Message}");
        }
        Console.WriteLine($"A: {a} ({ra.Tool}, {(string?)ra.Device["name"]}, {ra.Date})");
        Console.WriteLine($"B: {b} ({rb.Tool}, {(string?)rb.Device["name"]}, {rb.Date})");
        var table = BenchReport.Compare(ra, rb, out int matched);
        table.Print(Console.Out);
        Console.WriteLine($"{matched} (kernel, shape) rows matched of {ra.Rows.Count} in A and {rb.Rows.Count} in B");
        return 0;
    }

    public static int Bdn(Cli cli)
    {
        var filters = cli.Arguments("FILTER").ToArray();
        var config = BenchmarkDotNet.Configs.ManualConfig.CreateMinimumViable()
            .AddJob(BenchmarkDotNet.Jobs.JobExtensions.WithToolchain(BenchmarkDotNet.Jobs.Job.ShortRun, BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance));
        var summaries = BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Verbs).Assembly)
            .Run(filters.Length == 0 ? new[] { "--filter", "*" } : new[] { "--filter" }.Concat(filters).ToArray(), config);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }

    public static int Ptx(Cli cli)
    {
        var kernels = cli.Many("kernel");
        var unknown = kernels.Where(k => !KernelCatalog.All.Any(v => v.Kernel == k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"unknown kernel(s): {string.Join(", ", unknown)}");
        string arch = cli.One("arch") ?? "sm_90";
        PtxCompiler compiler;
        try
        {
            compiler = new PtxCompiler(arch);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        using var _ = compiler;
        string? dir = cli.One("out");
        if (dir is not null)
            Directory.CreateDirectory(dir);
        var table = new Table("kernel", "variant", "lines", "ld.global.v4", "ld.shared.v4", "bar.sync", "shfl", "local bytes");
        int failed = 0;
        var variants = KernelCatalog.All.Where(v => kernels.Count == 0 || kernels.Contains(v.Kernel)).ToList();
        int compiled = variants.Count;
        var elapsed = ProgressReporter.Run("ptx", variants.Count, progress =>
        {
            foreach (var v in variants)
            {
                progress.Next($"{v.Kernel}/{v.Variant}");
                string ptx;
                try
                {
                    ptx = compiler.Compile(v.Method);
                }
                catch (Exception e)
                {
                    failed++;
                    table.Add(v.Kernel, v.Variant, "FAILED", e.GetType().Name, e.Message, "", "", "");
                    continue;
                }
                if (dir is not null)
                    File.WriteAllText(Path.Combine(dir, $"{v.Kernel}_{v.Variant}.ptx"), ptx);
                int Count(string pattern) => System.Text.RegularExpressions.Regex.Matches(ptx, pattern).Count;
                var local = System.Text.RegularExpressions.Regex.Matches(ptx, @"\.local \.align \d+ \.b8 \S+\[(\d+)\]").Sum(m => int.Parse(m.Groups[1].Value));
                table.Add(v.Kernel, v.Variant, ptx.Split('\n').Length.ToString(), Count(@"ld\.global(\.nc)?\.v4").ToString(), Count(@"ld\.shared\.v4").ToString(),
                    Count(@"bar\.sync").ToString(), Count(@"shfl\.sync").ToString(), local.ToString());
            }
            return progress.Elapsed;
        });
        Console.WriteLine($"PTX for {arch} (ILGPU PTX backend, O2){(dir is null ? "" : $", written to {dir}")}");
        table.Print(Console.Out);
        Console.WriteLine($"{compiled - failed} variants compiled, {failed} failed in {ProgressReporter.Format(elapsed)}");
        return failed == 0 ? 0 : 1;
    }

    private static void WriteJson(string path, DeviceInfo info, List<CheckResult> results)
    {
        var doc = new
        {
            device = new
            {
                name = info.Name, id = info.Id, kind = info.Kind.ToString().ToLowerInvariant(), memory_bytes = info.MemoryBytes,
                warp_size = info.WarpSize, multiprocessors = info.Multiprocessors, max_threads_per_group = info.MaxThreadsPerGroup,
                max_shared_memory_per_group = info.MaxSharedMemoryPerGroup, compute_capability = info.ComputeCapability, driver_version = info.DriverVersion,
            },
            results = results.Select(r => new
            {
                kernel = r.Kernel, @case = r.Case, shape = r.Shape,
                max_abs_err = double.IsFinite(r.MaxAbsErr) ? r.MaxAbsErr : (double?)null,
                rel_l2_err = double.IsFinite(r.RelL2Err) ? r.RelL2Err : (double?)null,
                passed = r.Passed, skipped = r.Skipped, seed = r.Seed, error = r.Error,
            }),
        };
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
            Directory.CreateDirectory(dir);
        File.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {path}");
    }
}

using System.Text.Json;
using GpuNet;
using GpuNet.Bench;
using GpuNet.Kernels;
using GpuNet.Kernels.Checks;

const string Usage = """
usage: gpunet-bench VERB [options]

verbs:
  devices                                  list the devices GpuNet can open
  check [--device NAME] [--kernel NAME...] [--json FILE] [--seed N]
                                           run every registered kernel against its CPU reference
                                           on one device and print a table; exit 1 on any failure
  run [--device NAME] [--kernel NAME...] [--preset small|cpu|medium|large (default: cpu on the fast CPU, else small)] [--shape TEXT] [--runs N] [--seed N]
      [--json FILE] [--csv FILE] [--md FILE] [--plot FILE.png]
                                           time every kernel (device-side), with measured ceilings and peers
  run --onnx MODEL... [--device NAME] [--runs 20]
                                           time ONNX models end to end beside ONNX Runtime (CPU) in the same run, compare outputs
  compare A.json B.json                    ratio per kernel and shape of two result files (B/A)
  bdn [FILTER...]                          BenchmarkDotNet suites (e.g. bdn '*MatMul*')
  models [--device NAME] [--json FILE]     run every seed model's golden case (PyTorch fixtures); table with ms per forward
  generate --prompt-ids 1,2,3 [--max-new 20] [--temperature T] [--top-k K] [--top-p P] [--seed N] [--device NAME]
                                           extend a prompt with the fixture GPT (KV cache); print token ids and tokens/s
  generate --weights DIR/gpt.safetensors --prompt TEXT [--max-new 200] [--temperature T] [--top-k K] [--seed N]
                                           continue text with a GPT trained by 'train gpt'
  train dnn [--device NAME] [--steps 2000] [--lr 0.001] [--seed N] [--out DIR]
                                           train the seed's MLP on y = 3x² + 5 with Adam and MSE: progress line,
                                           DIR/dnn-loss.png (loss curve) and DIR/dnn.safetensors (final weights)
  train gpt [--device NAME] [--steps 600] [--lr 0.003] [--batch 16] [--context 64] [--dim 64] [--heads 4] [--layers 2]
            [--text FILE (default: the bundled Shakespeare)] [--prompt TEXT] [--chars 200] [--seed N] [--out DIR]
                                           train a character-level GPT with AdamW and cross-entropy, write DIR/gpt.safetensors
                                           and DIR/gpt-loss.png, then continue the prompt from the trained weights
  onnx test DIR... [--device NAME] [--json FILE] [--rtol 1e-3] [--atol 1e-5]
                                           run ONNX backend-test cases (model.onnx + test_data_set_N/*.pb; a directory of
                                           cases works too): one row per case, pass / FAIL (errors) / unsupported (why)
  onnx info MODEL.onnx                     opset, inputs, outputs, op histogram and every unsupported node
  onnx run MODEL.onnx [--input NAME=FILE.pb...] [--runs 10] [--device NAME]
                                           run a model (random data for inputs not given): output shapes, times, memory
  ptx [--arch sm_90] [--out DIR] [--kernel NAME...]
                                           compile every kernel variant to PTX offline (no GPU needed),
                                           write DIR/<kernel>_<variant>.ptx and summarize what the
                                           compiler made: vector loads, barriers, shuffles, local memory

  NAME of a device: auto, cpu (host code), cpu-sim (the GPU kernels on ILGPU's simulated GPU), cuda, cuda:N,
  opencl, opencl:N (default: $GPUNET_DEVICE, else auto: the best GPU, else cpu)
""";

var verbs = new Dictionary<string, IReadOnlyDictionary<string, string>>
{
    ["devices"] = new Dictionary<string, string>(),
    ["check"] = new Dictionary<string, string> { ["device"] = "one", ["kernel"] = "many", ["json"] = "one", ["seed"] = "one" },
    ["ptx"] = new Dictionary<string, string> { ["arch"] = "one", ["out"] = "one", ["kernel"] = "many" },
    ["models"] = new Dictionary<string, string> { ["device"] = "one", ["json"] = "one" },
    ["generate"] = new Dictionary<string, string>
    {
        ["device"] = "one", ["prompt-ids"] = "many", ["max-new"] = "one", ["temperature"] = "one", ["top-k"] = "one", ["top-p"] = "one", ["seed"] = "one",
        ["weights"] = "one", ["prompt"] = "one",
    },
    ["run"] = new Dictionary<string, string>
    {
        ["device"] = "one", ["kernel"] = "many", ["preset"] = "one", ["shape"] = "one", ["runs"] = "one", ["seed"] = "one",
        ["json"] = "one", ["csv"] = "one", ["md"] = "one", ["plot"] = "one", ["onnx"] = "many",
    },
};

try
{
    if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
    {
        Console.WriteLine(Usage);
        return args.Length == 0 ? 2 : 0;
    }
    if (args[0] == "compare")
        return args.Length == 3 ? Verbs.Compare(args[1], args[2]) : throw new UsageException("compare takes two result files");
    if (args[0] == "bdn")
        return Verbs.Bdn(args[1..]);
    if (args[0] == "onnx")
        return OnnxVerb.Run(args);
    if (args[0] == "train")
        return args.Length >= 2 && !args[1].StartsWith("--")
            ? TrainVerb.Run(args[1], Cli.Parse(args[1..], TrainVerb.Options))
            : throw new UsageException("train needs a model: train dnn");
    if (!verbs.TryGetValue(args[0], out var spec))
        throw new UsageException($"unknown verb '{args[0]}'");
    var cli = Cli.Parse(args, spec);
    return cli.Verb switch
    {
        "devices" => Verbs.Devices(),
        "check" => Verbs.Check(cli),
        "ptx" => Verbs.Ptx(cli),
        "run" => Verbs.Run(cli, args),
        "models" => Verbs.Models(cli),
        "generate" => Verbs.Generate(cli),
        _ => throw new UsageException($"unknown verb '{cli.Verb}'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine(Usage);
    return 2;
}
catch (GpuNetException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

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
        ulong? seed = null;
        if (cli.One("seed") is { } s)
            seed = ulong.TryParse(s, out var v) ? v : throw new UsageException($"--seed takes a non-negative integer, got '{s}'");
        using var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}; seed {seed ?? CheckRunner.DefaultSeed}; {cases.Count} cases");
        var table = new Table("kernel", "case", "shape", "max abs err", "rel L2 err", "pass");
        var results = new List<CheckResult>();
        foreach (var c in cases)
        {
            var r = CheckRunner.Run(c, device, seed);
            results.Add(r);
            table.Add(r.Kernel, r.Case, r.Shape, r.Skipped ? "-" : r.MaxAbsErr.ToString("0.00e+0"), r.Skipped ? "-" : r.RelL2Err.ToString("0.00e+0"),
                r.Skipped ? "skip (GPU-only size)" : r.Passed ? "pass" : "FAIL");
            Console.Error.Write($"\r{results.Count}/{cases.Count} {c.Id,-50}");
        }
        Console.Error.WriteLine();
        table.Print(Console.Out);
        foreach (var r in results.Where(r => !r.Passed))
            Console.WriteLine($"FAILED {r}");
        int failed = results.Count(r => !r.Passed), skipped = results.Count(r => r.Skipped);
        Console.WriteLine($"{results.Count - failed - skipped} passed, {failed} failed, {skipped} skipped");
        if (cli.One("json") is { } path)
            WriteJson(path, device.Info, results);
        return failed == 0 ? 0 : 1;
    }

    public static int Run(Cli cli, string[] args)
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
        if (preset is not ("small" or "cpu" or "medium" or "large"))
            throw new UsageException($"--preset takes small, cpu, medium or large, got '{preset}'");
        int runs = cli.One("runs") is { } r ? (int.TryParse(r, out var n) && n > 0 ? n : throw new UsageException("--runs takes a positive integer")) : preset == "small" ? 5 : 20;
        ulong seed = cli.One("seed") is { } s ? (ulong.TryParse(s, out var v) ? v : throw new UsageException("--seed takes a non-negative integer")) : 42;
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
        Console.WriteLine($"measured ceilings: {ceilings.BandwidthGBs:0.0} GB/s (device-to-device copy, read + write), {ceilings.Fp32GFlops:0.0} GFLOP/s FP32 (FMA microkernel)" +
            (ceilings.Datasheet is { } ds ? $"; datasheet {ds.Name}: {ds.BandwidthGBs:0} GB/s, {ds.Fp32GFlops:0} GFLOP/s" : ""));
        var results = new List<BenchResult>();
        var said = new HashSet<string>();
        var budget = TimeSpan.FromSeconds(preset == "small" ? 1 : 3);
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            Console.Error.Write($"\r[{i + 1}/{cases.Count}] {c.Kernel} {c.Implementation} {c.Shape}".PadRight(100));
            var result = Runner.Measure(device, c, warmup: preset == "small" ? 1 : 3, runs, budget, seed);
            if (result.Skipped is { } why && said.Add(why))
                Console.Error.WriteLine($"\n{c.Implementation}: {why}");
            results.Add(result);
        }
        Console.Error.WriteLine();
        var report = BenchReport.From(device, preset, ceilings, results);
        report.ToTable().Print(Console.Out);
        if (cli.One("json") is { } json)
        {
            report.WriteJson(json);
            Console.WriteLine($"wrote {json}");
        }
        if (cli.One("csv") is { } csv)
            report.WriteCsv(csv);
        if (cli.One("md") is { } md)
            report.WriteMarkdown(md, "gpunet-bench " + string.Join(" ", args));
        if (cli.One("plot") is { } plot)
        {
            report.WritePlot(plot);
            Console.WriteLine($"wrote {plot}");
        }
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
        foreach (var c in GpuNet.Layers.ModelZoo.Golden)
        {
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
        table.Print(Console.Out);
        if (cli.One("json") is { } path)
            File.WriteAllText(path, JsonSerializer.Serialize(new { device = device.Info.Name, results = rows }, new JsonSerializerOptions { WriteIndented = true }));
        return failed == 0 ? 0 : 1;
    }

    public static int Generate(Cli cli)
    {
        if (cli.One("weights") is { } weights)
            return GenerateText(cli, weights);
        var prompt = cli.Many("prompt-ids").Select(s => int.TryParse(s, out var v) ? v : throw new UsageException($"--prompt-ids takes integers, got '{s}'")).ToArray();
        if (prompt.Length == 0)
            throw new UsageException("generate needs --prompt-ids");
        using var device = Device.Open(cli.One("device"));
        using var f = GpuNet.Layers.SafeTensors.Open(FixturePath("gpt"));
        using var gpt = GpuNet.Layers.ModelZoo.Gpt(device, f);
        gpt.Load(f);
        gpt.Eval();
        int maxNew = cli.Int("max-new", 20);
        _ = gpt.Generate(prompt, Math.Min(maxNew, 2), 0f); // JIT and first-use allocations outside the timing
        device.Synchronize();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var tokens = gpt.Generate(prompt, maxNew, cli.Float("temperature", 1f), cli.Int("top-k", 0), cli.Float("top-p", 1f), (ulong)cli.Int("seed", 0));
        device.Synchronize();
        double seconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine(string.Join(",", tokens));
        int generated = tokens.Length - prompt.Length;
        Console.WriteLine($"{generated} new tokens in {seconds * 1000:0.0} ms: {generated / seconds:0.0} tokens/s on {device.Id} (KV cache, prompt of {prompt.Length})");
        return 0;
    }

    /// <summary>Continues a text prompt with a character-level GPT written by 'train gpt'.</summary>
    private static int GenerateText(Cli cli, string weights)
    {
        if (!File.Exists(weights))
            throw new UsageException($"generate: no weights file '{weights}'");
        string prompt = cli.One("prompt") ?? throw new UsageException("generate --weights needs --prompt TEXT");
        float temperature = cli.Float("temperature", 0.8f);
        using var device = Device.Open(cli.One("device"));
        var (model, vocabulary) = GpuNet.Layers.CharGpt.Load(device, weights);
        using (model)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            string text;
            try
            {
                text = GpuNet.Layers.CharGpt.Continue(model, vocabulary, prompt, cli.Int("max-new", 200), temperature, cli.Int("top-k", 0), (ulong)cli.Int("seed", 0));
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
            Console.WriteLine(text);
            Console.Error.WriteLine($"{text.Length - prompt.Length} characters in {sw.Elapsed.TotalMilliseconds:0} ms on {device.Id}");
        }
        return 0;
    }

    public static int Compare(string a, string b)
    {
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
        BenchReport.Compare(ra, rb).Print(Console.Out);
        return 0;
    }

    public static int Bdn(string[] filters)
    {
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
        foreach (var v in KernelCatalog.All.Where(v => kernels.Count == 0 || kernels.Contains(v.Kernel)))
        {
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
        Console.WriteLine($"PTX for {arch} (ILGPU PTX backend, O2){(dir is null ? "" : $", written to {dir}")}");
        table.Print(Console.Out);
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

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
  ptx [--arch sm_90] [--out DIR] [--kernel NAME...]
                                           compile every kernel variant to PTX offline (no GPU needed),
                                           write DIR/<kernel>_<variant>.ptx and summarize what the
                                           compiler made: vector loads, barriers, shuffles, local memory

  NAME of a device: auto, cpu, cuda, cuda:N, opencl, opencl:N (default: $GPUNET_DEVICE, else auto)
""";

var verbs = new Dictionary<string, IReadOnlyDictionary<string, string>>
{
    ["devices"] = new Dictionary<string, string>(),
    ["check"] = new Dictionary<string, string> { ["device"] = "one", ["kernel"] = "many", ["json"] = "one", ["seed"] = "one" },
    ["ptx"] = new Dictionary<string, string> { ["arch"] = "one", ["out"] = "one", ["kernel"] = "many" },
};

try
{
    if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
    {
        Console.WriteLine(Usage);
        return args.Length == 0 ? 2 : 0;
    }
    if (!verbs.TryGetValue(args[0], out var spec))
        throw new UsageException($"unknown verb '{args[0]}'");
    var cli = Cli.Parse(args, spec);
    return cli.Verb switch
    {
        "devices" => Verbs.Devices(),
        "check" => Verbs.Check(cli),
        "ptx" => Verbs.Ptx(cli),
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

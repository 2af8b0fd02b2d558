using System.Text.Json;
using GpuNet.Kernels.Checks;

namespace GpuNet.Bench;

/// <summary>The <c>check</c> verb: every registered kernel case against its CPU reference on one device.</summary>
internal static class CheckVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run(Cli cli)
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
                if (r.Failed)
                    progress.Note($"FAILED {r}");
            }
            return progress.Elapsed;
        });
        table.Print(Console.Out);
        foreach (var r in results.Where(r => r.Failed))
            Console.WriteLine($"FAILED {r}");
        int failed = results.Count(r => r.Failed), skipped = results.Count(r => r.Skipped);
        Console.WriteLine($"{results.Count - failed - skipped} passed, {failed} failed, {skipped} skipped on {device.Id} in {ProgressReporter.Format(elapsed)}");
        if (cli.One("json") is { } path)
            WriteJson(path, device.Info, results);
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
                passed = r.Passed, skipped = r.Skipped, seed = r.Seed, error = r.Error, worst_element = r.WorstElement,
            }),
        };
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
            Directory.CreateDirectory(dir);
        File.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {path}");
    }
}

namespace GpuNet.Bench;

/// <summary>The <c>run</c> verb: the benchmark suite (or an ONNX model) timed on one device beside its peers.</summary>
internal static class RunVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run(Cli cli)
    {
        if (cli.Many("onnx").Count > 0)
            return OnnxModelBench.Run(cli);
        var kernels = cli.Many("kernel");
        var unknown = kernels.Where(k => !BenchRegistry.All.Any(c => c.Kernel == k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"unknown kernel(s): {string.Join(", ", unknown)}");
        ulong seed = cli.Value<ulong?>("seed") ?? 42;
        string? shapeFilter = cli.One("shape");

        using var device = Device.Open(cli.One("device"));
        // Without --preset, the fast CPU device is compared with its CPU peers; a GPU (or the simulator) gets the small sizes.
        string preset = cli.One("preset") ?? (device.IsHostCpu ? "cpu" : "small");
        int runs = cli.Int("runs", 20);
        var cases = BenchRegistry.For(preset).Where(c => (kernels.Count == 0 || kernels.Contains(c.Kernel)) &&
            (shapeFilter is null || c.Shape.Contains(shapeFilter, StringComparison.OrdinalIgnoreCase))).ToList();
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
                measured.AddRange(Runner.MeasureInterleaved(device, g.ToList(), warmup: 3, runs, budget, seed));
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
}

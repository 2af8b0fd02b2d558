using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GpuNet.Bench;

/// <summary>One run's results with its device and ceilings, as written to and read from the JSON schema in bench/schema.</summary>
public sealed record BenchReport(string Tool, string Date, string Preset, JsonObject Device, DeviceCeilings? Ceilings, IReadOnlyList<JsonObject> Rows)
{
    public const string SchemaId = "gpunet-bench-results/1";

    public static BenchReport From(Device device, string preset, DeviceCeilings ceilings, IReadOnlyList<BenchResult> results)
    {
        var info = device.Info;
        var deviceJson = new JsonObject
        {
            ["name"] = info.Name, ["id"] = info.Id, ["kind"] = info.Kind.ToString().ToLowerInvariant(), ["memory_bytes"] = info.MemoryBytes,
            ["multiprocessors"] = info.Multiprocessors, ["compute_capability"] = info.ComputeCapability, ["driver_version"] = info.DriverVersion,
        };
        var rows = results.Select(r => Row(r, ceilings)).ToList();
        return new BenchReport("gpunet", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), preset, deviceJson, ceilings, rows);
    }

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;

    private static JsonObject Row(BenchResult r, DeviceCeilings ceil)
    {
        bool skipped = r.Skipped is not null;
        // The fraction of what the roofline allows at this intensity (of the bandwidth roof for kernels without arithmetic).
        double fraction = r.Case.Flops > 0 ? r.GFlops / ceil.Attainable(r.Intensity) : r.GBs / ceil.BandwidthGBs;
        return new JsonObject
        {
            ["kernel"] = r.Case.Kernel, ["implementation"] = r.Case.Implementation, ["peer_of"] = r.Case.PeerOf, ["shape"] = r.Case.Shape,
            ["flops"] = r.Case.Flops, ["bytes"] = r.Case.Bytes,
            ["median_ms"] = skipped ? null : Finite(r.MedianMs), ["min_ms"] = skipped ? null : Finite(r.MinMs), ["max_ms"] = skipped ? null : Finite(r.MaxMs),
            ["runs"] = r.Runs, ["input_sets"] = r.InputSets,
            ["gflops"] = skipped ? null : Finite(r.GFlops), ["gbs"] = skipped ? null : Finite(r.GBs), ["intensity"] = Finite(r.Intensity),
            ["bound"] = ceil.Bound(r.Intensity), ["fraction_of_ceiling"] = skipped ? null : Finite(fraction), ["skipped"] = r.Skipped,
        };
    }

    public JsonObject ToJson() => new()
    {
        ["schema"] = SchemaId, ["tool"] = Tool, ["date"] = Date, ["preset"] = Preset, ["device"] = Device.DeepClone(),
        ["ceilings"] = Ceilings is null ? null : new JsonObject
        {
            ["measured_bandwidth_gbs"] = Ceilings.BandwidthGBs, ["measured_fp32_gflops"] = Ceilings.Fp32GFlops,
            ["bandwidth_spread"] = Ceilings.BandwidthSpread, ["fp32_spread"] = Ceilings.Fp32Spread,
            ["datasheet"] = Ceilings.Datasheet is null ? null : new JsonObject
            {
                ["name"] = Ceilings.Datasheet.Name, ["bandwidth_gbs"] = Ceilings.Datasheet.BandwidthGBs, ["fp32_gflops"] = Ceilings.Datasheet.Fp32GFlops,
            },
        },
        ["results"] = new JsonArray(Rows.Select(r => (JsonNode)r.DeepClone()).ToArray()),
    };

    public static BenchReport Load(string path)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"'{path}' is not a results file of gpunet run: not a JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a results file of gpunet run: not JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})", e);
        }
        if ((string?)root["schema"] != SchemaId)
            throw new InvalidDataException($"'{path}' is not a results file of gpunet run: schema is '{root["schema"]}', expected '{SchemaId}'");
        var rows = root["results"]!.AsArray().Select(n => n!.AsObject()).ToList();
        return new BenchReport((string)root["tool"]!, (string)root["date"]!, (string?)root["preset"] ?? "", root["device"]!.AsObject(), null, rows);
    }

    public void WriteJson(string path)
    {
        Ensure(path);
        File.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static string Num(JsonNode? n, string format) => n is null ? "-" : ((double)n).ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A rate (GFLOP/s or GB/s) with three significant digits: CPU-accelerator rates are small, GPU rates large.</summary>
    private static string Rate(JsonNode? n) => n is null ? "-" : Units.Number((double)n);

    /// <summary>Rows that were timed: peers absent on this device are listed once by <see cref="AbsentPeers"/> instead.</summary>
    private IEnumerable<JsonObject> Timed => Rows.Where(r => r["skipped"] is null);

    /// <summary>One line per implementation that could not run here (cuBLAS or PyTorch on a machine without them), with why and how many cases.</summary>
    public IEnumerable<string> AbsentPeers() =>
        Rows.Where(r => r["skipped"] is not null).GroupBy(r => ((string)r["implementation"]!, (string)r["skipped"]!))
            .Select(g => $"absent peer: {g.Key.Item1} — {g.Key.Item2} ({g.Count()} case{(g.Count() == 1 ? "" : "s")} not timed)");

    /// <summary>Peer time over GpuNet time for the row's (kernel, shape): above 1 means GpuNet is faster.</summary>
    private string PeerRatio(JsonObject row)
    {
        if ((string?)row["implementation"] != "gpunet" || row["median_ms"] is null)
            return "";
        var peers = Rows.Where(p => (string?)p["peer_of"] == (string?)row["kernel"] && (string?)p["shape"] == (string?)row["shape"] && p["median_ms"] is not null).ToList();
        var text = string.Join(" ", peers.Select(p => $"{(double)p["median_ms"]! / (double)row["median_ms"]!:0.00}× vs {(string?)p["implementation"]}"));
        // A backward case times forward + backward; with the forward case of the same shape, backward/forward = (t_fb − t_f)/t_f.
        if (((string)row["kernel"]!).EndsWith("_backward", StringComparison.Ordinal) && Rows.FirstOrDefault(f =>
                (string?)f["kernel"] == ((string)row["kernel"]!)[..^"_backward".Length] && (string?)f["implementation"] == "gpunet" &&
                (string?)f["shape"] == (string?)row["shape"] && f["median_ms"] is not null) is { } forward)
        {
            double tf = (double)forward["median_ms"]!, tfb = (double)row["median_ms"]!;
            text = (text.Length > 0 ? text + " " : "") + $"bwd/fwd {(tfb - tf) / tf:0.00}";
        }
        return text;
    }

    /// <summary>The fraction of the roof in percent; above 100 it is marked by what that means for the row's bound: a
    /// memory-bound case was served from cache, faster than the measured copy roof ("cache"); a compute-bound one beat the
    /// measured FMA roof ("above compute roof": the roof's microkernel is narrower or slower than what the case ran).</summary>
    private static string Percent(JsonObject r) => r["fraction_of_ceiling"] is not { } f ? "-"
        : ((double)f * 100).ToString("0.0", CultureInfo.InvariantCulture) + ((double)f <= 1 ? "" : ComputeBound(r) ? " (above compute roof)" : " (cache)");

    private static bool ComputeBound(JsonObject r) => (string?)r["bound"] == "compute";

    private bool Above(bool compute) => Timed.Any(r => r["fraction_of_ceiling"] is { } f && (double)f > 1 && ComputeBound(r) == compute);

    /// <summary>The notes that explain the marks above 100 %, when any row has one.</summary>
    public string? CacheNote()
    {
        var notes = new List<string>();
        if (Above(compute: false))
            notes.Add("(cache): above the measured memory roof — the case's data fits in a cache faster than the device-to-device copy that defines the roof");
        if (Above(compute: true))
            notes.Add("(above compute roof): faster than the measured FMA microkernel — the roof is a lower bound of the device's peak, not the peak");
        return notes.Count == 0 ? null : string.Join("\n", notes);
    }

    public Table ToTable()
    {
        var t = new Table("kernel", "impl", "shape", "median ms", "min ms", "max ms", "GFLOP/s", "GB/s", "FLOP/B", "bound", "% of roof", "vs peer");
        foreach (var r in Timed)
            t.Add((string)r["kernel"]!, (string)r["implementation"]!, (string)r["shape"]!,
                Num(r["median_ms"], "0.0000"), Num(r["min_ms"], "0.0000"), Num(r["max_ms"], "0.0000"),
                Rate(r["gflops"]), Rate(r["gbs"]), r["intensity"] is null ? "-" : Units.Number((double)r["intensity"]!), (string)r["bound"]!,
                Percent(r), PeerRatio(r));
        return t;
    }

    public void WriteCsv(string path)
    {
        Ensure(path);
        var sb = new StringBuilder("kernel,implementation,shape,median_ms,min_ms,max_ms,gflops,gbs,intensity,bound,fraction_of_ceiling\n");
        foreach (var r in Rows)
            sb.AppendLine(string.Join(",", new[] { "kernel", "implementation", "shape", "median_ms", "min_ms", "max_ms", "gflops", "gbs", "intensity", "bound", "fraction_of_ceiling" }
                .Select(k => r[k] is null ? "" : Quote(r[k]!.ToString()))));
        File.WriteAllText(path, sb.ToString());
    }

    private static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    public void WriteMarkdown(string path, string command)
    {
        Ensure(path);
        var sb = new StringBuilder();
        sb.AppendLine($"Device: {(string?)Device["name"]} ({(string?)Device["id"]}), {Date}, preset {Preset}. Command: `{command}`");
        if (Ceilings is not null)
            sb.AppendLine("Measured roofs: " + Ceilings.Describe() +
                (Ceilings.Datasheet is { } ds ? $" (datasheet {ds.Name}: {Units.Rate(ds.BandwidthGBs * 1e9, "B/s")}, {Units.Rate(ds.Fp32GFlops * 1e9, "FLOP/s")})" : ""));
        foreach (var line in AbsentPeers())
            sb.AppendLine().Append(line);
        sb.AppendLine();
        sb.AppendLine();
        sb.AppendLine("| kernel | impl | shape | median ms | GFLOP/s | GB/s | bound | % of roof | vs peer |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in Timed)
            sb.AppendLine($"| {(string)r["kernel"]!} | {(string)r["implementation"]!} | {(string)r["shape"]!} | {Num(r["median_ms"], "0.0000")} | {Rate(r["gflops"])} | {Rate(r["gbs"])} | {(string)r["bound"]!} | {Percent(r)} | {PeerRatio(r)} |");
        if (CacheNote() is { } note)
            sb.AppendLine().AppendLine(note);
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>
    /// Roofline: achieved GFLOP/s against arithmetic intensity on log–log axes with decade ticks labelled in real values
    /// (0.1, 1, 10 FLOP/B; 100 MFLOP/s, 1 GFLOP/s), the measured roofs and ridge named with their numbers in the legend,
    /// one colour per kernel (peers as hollow markers), and each point labelled with its kernel when there are few enough to read.
    /// </summary>
    public void WritePlot(string path)
    {
        Ensure(path);
        Roofline().SavePng(path, 1400, 800);
    }

    /// <summary>The roofline: a point per timed case (log intensity, log FLOP/s), a colour per kernel family, a marker per
    /// implementation, the measured roofs; the legend (families, then peers, then roofs) right of the axes.</summary>
    public ScottPlot.Plot Roofline()
    {
        var plot = new ScottPlot.Plot();
        var points = Timed.Where(r => r["gflops"] is not null && (double)r["flops"]! > 0 && r["intensity"] is not null && (double)r["gflops"]! > 0).ToList();
        double Lx(JsonObject r) => Math.Log10((double)r["intensity"]!);
        double Ly(JsonObject r) => Math.Log10((double)r["gflops"]!);
        // One colour per kernel family (16 at most, where one per kernel gave ~125 legend entries covering the plot), one
        // marker per implementation: GpuNet filled circles, each peer its own hollow marker; the legend outside the axes.
        var palette = new ScottPlot.Palettes.Category20();
        var hollow = new[] { ScottPlot.MarkerShape.OpenSquare, ScottPlot.MarkerShape.OpenTriangleUp, ScottPlot.MarkerShape.OpenDiamond, ScottPlot.MarkerShape.OpenTriangleDown, ScottPlot.MarkerShape.OpenCircle };
        var peerMarker = points.Select(r => (string)r["implementation"]!).Where(i => i != "gpunet").Distinct().OrderBy(i => i)
            .Select((impl, k) => (impl, k)).ToDictionary(p => p.impl, p => hollow[p.k % hollow.Length]);
        var legend = new List<ScottPlot.LegendItem>();
        int colour = 0;
        foreach (var family in points.GroupBy(r => FamilyOf((string)r["kernel"]!)).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var color = palette.GetColor(colour++);
            foreach (var impl in family.GroupBy(r => (string)r["implementation"]!))
            {
                var scatter = plot.Add.ScatterPoints(impl.Select(Lx).ToArray(), impl.Select(Ly).ToArray(), color);
                scatter.MarkerSize = 8;
                scatter.MarkerShape = impl.Key == "gpunet" ? ScottPlot.MarkerShape.FilledCircle : peerMarker[impl.Key];
            }
            legend.Add(new ScottPlot.LegendItem { LabelText = Kernels(family.Key, family.Select(r => (string)r["kernel"]!).Distinct().Count()), MarkerShape = ScottPlot.MarkerShape.FilledCircle, MarkerColor = color, MarkerSize = 8 });
        }
        foreach (var (impl, shape) in peerMarker.OrderBy(p => p.Key, StringComparer.Ordinal))
            legend.Add(new ScottPlot.LegendItem { LabelText = $"{impl} (hollow)", MarkerShape = shape, MarkerColor = ScottPlot.Colors.Black, MarkerSize = 8 });
        if (points.Count <= 40)
            foreach (var r in points)
            {
                var label = plot.Add.Text((string)r["kernel"]!, Lx(r), Ly(r));
                label.LabelFontSize = 10;
                label.OffsetX = 6;
                label.OffsetY = -6;
            }
        double lo = points.Count == 0 ? -2 : Math.Floor(points.Min(Lx)) - 0.5, hi = points.Count == 0 ? 3 : Math.Ceiling(points.Max(Lx)) + 0.5;
        if (Ceilings is not null)
        {
            lo = Math.Min(lo, Math.Floor(Math.Log10(Ceilings.Ridge)) - 1);
            hi = Math.Max(hi, Math.Ceiling(Math.Log10(Ceilings.Ridge)) + 1);
            var xs = new List<double>();
            for (double x = lo; x <= hi + 1e-9; x += 0.02)
                xs.Add(x);
            var memory = xs.Where(x => Math.Pow(10, x) <= Ceilings.Ridge).ToArray();
            var compute = xs.Where(x => Math.Pow(10, x) >= Ceilings.Ridge).ToArray();
            double ridgeX = Math.Log10(Ceilings.Ridge), roofY = Math.Log10(Ceilings.Fp32GFlops);
            var bandwidth = plot.Add.ScatterLine(memory.Append(ridgeX).ToArray(), memory.Select(x => Math.Log10(Ceilings.BandwidthGBs) + x).Append(roofY).ToArray());
            bandwidth.LegendText = $"memory roof {Units.Rate(Ceilings.BandwidthGBs * 1e9, "B/s")}";
            bandwidth.LineWidth = 2;
            bandwidth.Color = ScottPlot.Colors.Black;
            var flops = plot.Add.ScatterLine(compute.Prepend(ridgeX).ToArray(), compute.Select(_ => roofY).Prepend(roofY).ToArray());
            flops.LegendText = $"FP32 roof {Units.Rate(Ceilings.Fp32GFlops * 1e9, "FLOP/s")}";
            flops.LineWidth = 2;
            flops.Color = ScottPlot.Colors.DimGray;
            var ridge = plot.Add.VerticalLine(ridgeX);
            ridge.LegendText = $"ridge {Units.Number(Ceilings.Ridge)} FLOP/B";
            ridge.LinePattern = ScottPlot.LinePattern.Dotted;
            ridge.Color = ScottPlot.Colors.Gray;
        }
        double yLo = points.Count == 0 ? -3 : Math.Floor(points.Min(Ly)) - 0.5;
        double yHi = Math.Max(points.Count == 0 ? 3 : Math.Ceiling(points.Max(Ly)), Ceilings is null ? double.MinValue : Math.Ceiling(Math.Log10(Ceilings.Fp32GFlops))) + 0.5;
        plot.Axes.Bottom.TickGenerator = DecadeTicks(lo, hi, v => Units.Decade(v, ""));
        plot.Axes.Left.TickGenerator = DecadeTicks(yLo, yHi, v => Units.Decade(v * 1e9, "FLOP/s"));
        plot.Axes.SetLimits(lo, hi, yLo, yHi);
        plot.Axes.Bottom.Label.Text = "arithmetic intensity (FLOP per byte moved, log scale)";
        plot.Axes.Left.Label.Text = "achieved FP32 rate (log scale)";
        plot.Title($"GpuNet roofline — {(string?)Device["name"]}, preset {Preset}, {points.Count} timed cases");
        plot.Legend.ManualItems.AddRange(legend);
        plot.ShowLegend(ScottPlot.Edge.Right);
        return plot;
    }

    private static string Kernels(string family, int count) => $"{family} ({count} kernel{(count == 1 ? "" : "s")})";

    /// <summary>The kernel family a bench kernel belongs to (its check file's family), for the plot's colours; a kernel no
    /// family lists (a peer's own name) is its own group.</summary>
    public static string FamilyOf(string kernel) => KernelFamilyNames.Value.GetValueOrDefault(kernel, kernel);

    private static readonly Lazy<Dictionary<string, string>> KernelFamilyNames = new(() =>
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var family in GpuNet.Kernels.Checks.KernelFamilies.All)
            foreach (var c in family.Bench())
                map.TryAdd(c.Kernel, family.Name);
        return map;
    });

    /// <summary>Major ticks at each power of ten in [lo, hi] (log10 coordinates) labelled with the real value; minor ticks at 2…9.</summary>
    private static ScottPlot.TickGenerators.NumericManual DecadeTicks(double lo, double hi, Func<double, string> label)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int e = (int)Math.Floor(lo); e <= (int)Math.Ceiling(hi); e++)
        {
            ticks.AddMajor(e, label(Math.Pow(10, e)));
            for (int m = 2; m <= 9; m++)
                ticks.AddMinor(e + Math.Log10(m));
        }
        return ticks;
    }

    private static void Ensure(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
            Directory.CreateDirectory(dir);
    }

    private static string Impl(JsonObject r) => (string?)r["implementation"] ?? "";

    /// <summary>Matches rows of two reports by (kernel, shape) and implementation (every pair of the case when the two files
    /// have no implementation in common) and prints both times and B/A; <paramref name="matched"/> is the row count.</summary>
    public static Table Compare(BenchReport a, BenchReport b, out int matched)
    {
        matched = 0;
        var t = new Table("kernel", "shape", $"A ({a.Tool}) impl", "A ms", $"B ({b.Tool}) impl", "B ms", "B/A");
        static string Key(JsonObject r) => (string?)r["kernel"] + "\u0001" + (string?)r["shape"];
        var byKeyB = b.Rows.Where(r => r["median_ms"] is not null).GroupBy(Key).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var group in a.Rows.Where(r => r["median_ms"] is not null).GroupBy(Key))
        {
            if (!byKeyB.TryGetValue(group.Key, out var others))
                continue;
            // Implementation to implementation (gpunet with gpunet, cuBLAS with cuBLAS) when the two files share any; two
            // files without one in common (GpuNet's run against a PyTorch peer file) pair what each has for the case.
            var common = group.Select(Impl).Intersect(others.Select(Impl)).ToHashSet();
            foreach (var ra in group)
                foreach (var rb in others.Where(rb => common.Count == 0 || Impl(rb) == Impl(ra) && common.Contains(Impl(ra))))
                {
                    double ma = (double)ra["median_ms"]!, mb = (double)rb["median_ms"]!;
                    matched++;
                    t.Add((string)ra["kernel"]!, (string)ra["shape"]!, Impl(ra), ma.ToString("0.0000", CultureInfo.InvariantCulture),
                        Impl(rb), mb.ToString("0.0000", CultureInfo.InvariantCulture), (mb / ma).ToString("0.00", CultureInfo.InvariantCulture));
                }
        }
        return t;
    }
}

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
        bool compute = r.Intensity >= ceil.Ridge;
        double fraction = compute ? r.GFlops / ceil.Fp32GFlops : r.GBs / ceil.BandwidthGBs;
        return new JsonObject
        {
            ["kernel"] = r.Case.Kernel, ["implementation"] = r.Case.Implementation, ["peer_of"] = r.Case.PeerOf, ["shape"] = r.Case.Shape,
            ["flops"] = r.Case.Flops, ["bytes"] = r.Case.Bytes,
            ["median_ms"] = skipped ? null : Finite(r.MedianMs), ["min_ms"] = skipped ? null : Finite(r.MinMs), ["max_ms"] = skipped ? null : Finite(r.MaxMs),
            ["runs"] = r.Runs, ["input_sets"] = r.InputSets,
            ["gflops"] = skipped ? null : Finite(r.GFlops), ["gbs"] = skipped ? null : Finite(r.GBs), ["intensity"] = Finite(r.Intensity),
            ["bound"] = compute ? "compute" : "memory", ["fraction_of_ceiling"] = skipped ? null : Finite(fraction), ["skipped"] = r.Skipped,
        };
    }

    public JsonObject ToJson() => new()
    {
        ["schema"] = SchemaId, ["tool"] = Tool, ["date"] = Date, ["preset"] = Preset, ["device"] = Device.DeepClone(),
        ["ceilings"] = Ceilings is null ? null : new JsonObject
        {
            ["measured_bandwidth_gbs"] = Ceilings.BandwidthGBs, ["measured_fp32_gflops"] = Ceilings.Fp32GFlops,
            ["datasheet"] = Ceilings.Datasheet is null ? null : new JsonObject
            {
                ["name"] = Ceilings.Datasheet.Name, ["bandwidth_gbs"] = Ceilings.Datasheet.BandwidthGBs, ["fp32_gflops"] = Ceilings.Datasheet.Fp32GFlops,
            },
        },
        ["results"] = new JsonArray(Rows.Select(r => (JsonNode)r.DeepClone()).ToArray()),
    };

    public static BenchReport Load(string path)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new InvalidDataException($"{path}: not a JSON object");
        if ((string?)root["schema"] != SchemaId)
            throw new InvalidDataException($"{path}: schema is '{root["schema"]}', expected '{SchemaId}'");
        var rows = root["results"]!.AsArray().Select(n => n!.AsObject()).ToList();
        return new BenchReport((string)root["tool"]!, (string)root["date"]!, (string?)root["preset"] ?? "", root["device"]!.AsObject(), null, rows);
    }

    public void WriteJson(string path)
    {
        Ensure(path);
        File.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static string Num(JsonNode? n, string format) => n is null ? "-" : ((double)n).ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A rate with three significant digits below 100 (CPU-accelerator rates are small), none above.</summary>
    private static string Rate(JsonNode? n) => n is null ? "-" : (double)n switch
    {
        >= 100 => ((double)n).ToString("0", CultureInfo.InvariantCulture),
        >= 1 => ((double)n).ToString("0.0#", CultureInfo.InvariantCulture),
        _ => ((double)n).ToString("0.000###", CultureInfo.InvariantCulture),
    };

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

    public Table ToTable()
    {
        var t = new Table("kernel", "impl", "shape", "median ms", "min ms", "max ms", "GFLOP/s", "GB/s", "FLOP/B", "bound", "% ceiling", "vs peer");
        foreach (var r in Rows)
            t.Add((string)r["kernel"]!, (string)r["implementation"]!, (string)r["shape"]!,
                r["skipped"] is { } why ? "skipped: " + (string)why! : Num(r["median_ms"], "0.0000"), Num(r["min_ms"], "0.0000"), Num(r["max_ms"], "0.0000"),
                Rate(r["gflops"]), Rate(r["gbs"]), Num(r["intensity"], "0.00"), (string)r["bound"]!,
                r["fraction_of_ceiling"] is null ? "-" : ((double)r["fraction_of_ceiling"]! * 100).ToString("0.0", CultureInfo.InvariantCulture), PeerRatio(r));
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
            sb.AppendLine($"Measured ceilings: {Ceilings.BandwidthGBs:0} GB/s, {Ceilings.Fp32GFlops:0} GFLOP/s FP32" +
                (Ceilings.Datasheet is { } ds ? $" (datasheet {ds.Name}: {ds.BandwidthGBs:0} GB/s, {ds.Fp32GFlops:0} GFLOP/s)" : ""));
        sb.AppendLine();
        sb.AppendLine("| kernel | impl | shape | median ms | GFLOP/s | GB/s | bound | % ceiling | vs peer |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in Rows)
            sb.AppendLine($"| {(string)r["kernel"]!} | {(string)r["implementation"]!} | {(string)r["shape"]!} | {Num(r["median_ms"], "0.0000")} | {Rate(r["gflops"])} | {Rate(r["gbs"])} | {(string)r["bound"]!} | {(r["fraction_of_ceiling"] is null ? "-" : ((double)r["fraction_of_ceiling"]! * 100).ToString("0.0", CultureInfo.InvariantCulture))} | {PeerRatio(r)} |");
        File.WriteAllText(path, sb.ToString());
    }

    /// <summary>Roofline: achieved GFLOP/s against arithmetic intensity, log–log, with the measured roofs.</summary>
    public void WritePlot(string path)
    {
        Ensure(path);
        var plot = new ScottPlot.Plot();
        var points = Rows.Where(r => r["gflops"] is not null && (double)r["flops"]! > 0 && r["intensity"] is not null && (double)r["gflops"]! > 0).ToList();
        foreach (var group in points.GroupBy(r => (string)r["implementation"]!))
        {
            var xs = group.Select(r => Math.Log10((double)r["intensity"]!)).ToArray();
            var ys = group.Select(r => Math.Log10((double)r["gflops"]!)).ToArray();
            var scatter = plot.Add.ScatterPoints(xs, ys);
            scatter.LegendText = group.Key;
            scatter.MarkerSize = 7;
        }
        if (Ceilings is not null)
        {
            double lo = points.Count == 0 ? -2 : Math.Min(-2, points.Min(r => Math.Log10((double)r["intensity"]!)) - 0.5);
            double hi = points.Count == 0 ? 3 : Math.Max(3, points.Max(r => Math.Log10((double)r["intensity"]!)) + 0.5);
            var roofX = new List<double>();
            var roofY = new List<double>();
            for (double x = lo; x <= hi; x += 0.02)
            {
                roofX.Add(x);
                roofY.Add(Math.Log10(Math.Min(Ceilings.Fp32GFlops, Ceilings.BandwidthGBs * Math.Pow(10, x))));
            }
            var roof = plot.Add.ScatterLine(roofX.ToArray(), roofY.ToArray());
            roof.LegendText = $"measured roof: {Ceilings.BandwidthGBs:0} GB/s, {Ceilings.Fp32GFlops:0} GFLOP/s";
            roof.LineWidth = 2;
        }
        plot.Axes.Bottom.Label.Text = "arithmetic intensity (FLOP/byte, log10)";
        plot.Axes.Left.Label.Text = "achieved GFLOP/s (log10)";
        plot.Title($"GpuNet roofline — {(string?)Device["name"]}, preset {Preset}");
        plot.ShowLegend();
        plot.SavePng(path, 1000, 650);
    }

    private static void Ensure(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
            Directory.CreateDirectory(dir);
    }

    /// <summary>Matches rows of two reports by (kernel, shape) and prints both times and B/A.</summary>
    public static Table Compare(BenchReport a, BenchReport b)
    {
        var t = new Table("kernel", "shape", $"A ({a.Tool}) impl", "A ms", $"B ({b.Tool}) impl", "B ms", "B/A");
        foreach (var ra in a.Rows.Where(r => r["median_ms"] is not null))
            foreach (var rb in b.Rows.Where(r => r["median_ms"] is not null && (string?)r["kernel"] == (string?)ra["kernel"] && (string?)r["shape"] == (string?)ra["shape"]))
            {
                double ma = (double)ra["median_ms"]!, mb = (double)rb["median_ms"]!;
                t.Add((string)ra["kernel"]!, (string)ra["shape"]!, (string)ra["implementation"]!, ma.ToString("0.0000", CultureInfo.InvariantCulture),
                    (string)rb["implementation"]!, mb.ToString("0.0000", CultureInfo.InvariantCulture), (mb / ma).ToString("0.00", CultureInfo.InvariantCulture));
            }
        return t;
    }
}

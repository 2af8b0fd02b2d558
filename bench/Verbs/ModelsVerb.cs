using System.Text.Json;
using GpuNet.Kernels.Checks;

namespace GpuNet.Bench;

/// <summary>The <c>models</c> verb: every seed model against its PyTorch golden fixture, with the time per forward.</summary>
internal static class ModelsVerb
{
    /// <summary>A golden fixture shipped beside the CLI.</summary>
    internal static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name + ".safetensors");

    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run(Cli cli)
    {
        using var device = Device.Open(cli.One("device"));
        Console.WriteLine($"device: {device.Id} — {device.Info.Name}");
        var table = new Table("model", "parameters", "forward ms", "max abs err", "rel L2 err", "pass");
        var rows = new List<object>();
        int failed = 0;
        var golden = GpuNet.Layers.GoldenModels.All;
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
}

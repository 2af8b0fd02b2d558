using GpuNet.Kernels;
using GpuNet.Kernels.Checks;

namespace GpuNet.Bench;

/// <summary>The <c>ptx</c> verb: every kernel compiled to PTX offline, and what the compiler made of it.</summary>
internal static class PtxVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run(Cli cli)
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
        Console.WriteLine($"PTX ISA {compiler.InstructionSet} for {arch} (ILGPU PTX backend, O2; the ISA ILGPU emits with a CUDA {PtxCompiler.TargetDriverVersion / 1000}.{PtxCompiler.TargetDriverVersion % 1000 / 10} driver){(dir is null ? "" : $", written to {dir}")}");
        table.Print(Console.Out);
        Console.WriteLine($"{compiled - failed} variants compiled, {failed} failed in {ProgressReporter.Format(elapsed)}");
        return failed == 0 ? 0 : 1;
    }
}

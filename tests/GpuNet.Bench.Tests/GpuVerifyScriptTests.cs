using System.Diagnostics;
using GpuNet.Kernels.Checks;
using Xunit;

namespace GpuNet.Bench.Tests;

/// <summary>
/// bench/gpu-verify.sh dry-run on the CPU, so the first minutes on a GPU go to measuring: the PTX step with a stand-in ptxas
/// that prints what ptxas -v prints (one kernel failing, the matmuls spilling), and the devices, check, models and train-gpt
/// steps with the built CLI; the summary, the per-kernel table and the packed folder are read back.
/// </summary>
public sealed class GpuVerifyScriptTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("gpunet-verify-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GpuNet.sln")))
                return dir.FullName;
        throw new InvalidOperationException("GpuNet.sln not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task DryRunOnTheCpuWritesTheSummaryThePtxasTableAndThePackedFolder()
    {
        if (OperatingSystem.IsWindows())
            return; // a bash script for Linux GPU machines
        string ptxas = Path.Combine(_root, "ptxas"), results = Path.Combine(_root, "results"), @out = Path.Combine(_root, "out");
        Directory.CreateDirectory(@out);
        File.WriteAllText(ptxas, """
            #!/bin/sh
            case "$3" in
              */relu_flat.ptx) echo "ptxas error   : Unknown symbol" >&2; exit 255;;
              *matmul_large*) echo "    0 bytes stack frame, 24 bytes spill stores, 24 bytes spill loads" >&2
                              echo "ptxas info    : Used 255 registers, used 1 barriers, 16384 bytes smem, 400 bytes cmem[0]" >&2;;
              *) echo "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads" >&2
                 echo "ptxas info    : Used 32 registers, used 0 barriers, 380 bytes cmem[0]" >&2;;
            esac
            """.Replace("\r", ""));
        File.SetUnixFileMode(ptxas, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var start = new ProcessStartInfo("bash", $"bench/gpu-verify.sh \"{results}\"")
        {
            WorkingDirectory = RepositoryRoot(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["GPUNET_VERIFY_DEVICE"] = "cpu";
        start.Environment["GPUNET_APP"] = $"dotnet {Path.Combine(AppContext.BaseDirectory, "gpunet.dll")}";
        start.Environment["GPUNET_VERIFY_ONLY"] = "devices ptxas models train-gpt";
        start.Environment["PTXAS"] = ptxas;
        start.Environment["OUT"] = @out;
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, stderr + await stdout);

        var summary = File.ReadAllLines(Path.Combine(results, "summary.txt"));
        Assert.Contains(summary, l => l.StartsWith("devices ") && l.Contains(" ok ") && l.Contains("CUDA: "));
        Assert.Contains(summary, l => l.StartsWith("models ") && l.Contains($"{GpuNet.Layers.GoldenModels.All.Count} passed, 0 failed"));
        Assert.Contains(summary, l => l.StartsWith("train-gpt ") && l.Contains(" ok ") && l.Contains("step "));
        var line = Assert.Single(summary, l => l.StartsWith("ptxas "));
        Assert.Contains("exit 1", line);
        Assert.Matches(@"ptxas -arch=sm_90: \d+ kernels, 1 failed, \d+ spill", line);

        var table = File.ReadAllLines(Path.Combine(results, "ptxas.tsv")).Select(l => l.Split('\t')).ToList();
        Assert.Equal("kernel registers spill_stores spill_loads shared_bytes stack_bytes occupancy_256 status", string.Join(' ', table[0]));
        Assert.Equal(KernelCatalog.All.Count, table.Count - 1);
        Assert.StartsWith("FAILED: ptxas error", Assert.Single(table, r => r[0] == "relu_flat")[7]);
        var matmul = table.First(r => r[0].StartsWith("matmul_large"));
        // 255 registers: 8 warps × 32 × 256 (rounded to 256 per warp) = 65,536 — one block of 256 threads per SM, 12.5%.
        Assert.Equal(new[] { "255", "24", "24", "16384", "0", "12.5%", "ok" }, matmul[1..]);
        Assert.Equal(new[] { "32", "0", "0", "0", "0", "100.0%", "ok" }, table.First(r => r[0] == "adam_step_fused")[1..]);
        Assert.Contains("PTX ISA 8.8 for sm_90", File.ReadAllText(Path.Combine(results, "ptxas.txt")));

        Assert.True(File.Exists(Path.Combine(@out, "gpu-verify.tar.gz")));
        Assert.Equal(File.ReadAllText(Path.Combine(results, "summary.txt")), File.ReadAllText(Path.Combine(@out, "summary.txt")));
    }
}

using System.Diagnostics;

namespace GpuNet.Bench.Tests;

/// <summary>The CLI in a fresh process, as a user runs it (a process of its own also binds native drivers anew).</summary>
internal static class GpunetProcess
{
    /// <summary>Runs <c>gpunet ARGS</c> with <paramref name="environment"/> added; returns the exit code, stdout and stderr.</summary>
    public static (int Code, string Out, string Err) Run(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "gpunet.dll"));
        foreach (var a in args)
            start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr);
    }
}

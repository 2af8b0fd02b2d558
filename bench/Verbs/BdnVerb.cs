namespace GpuNet.Bench;

/// <summary>The <c>bdn</c> verb: the BenchmarkDotNet suites.</summary>
internal static class BdnVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run(Cli cli)
    {
        var filters = cli.Arguments("FILTER").ToArray();
        var config = BenchmarkDotNet.Configs.ManualConfig.CreateMinimumViable()
            .AddJob(BenchmarkDotNet.Jobs.JobExtensions.WithToolchain(BenchmarkDotNet.Jobs.Job.ShortRun, BenchmarkDotNet.Toolchains.InProcess.Emit.InProcessEmitToolchain.Instance));
        var summaries = BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(BdnVerb).Assembly)
            .Run(filters.Length == 0 ? new[] { "--filter", "*" } : new[] { "--filter" }.Concat(filters).ToArray(), config);
        return summaries.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }
}

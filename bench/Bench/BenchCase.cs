namespace GpuNet.Bench;

/// <summary>One measured case.</summary>
public sealed record BenchResult(BenchCase Case, double MedianMs, double MinMs, double MaxMs, int Runs, int InputSets, string? Skipped = null)
{
    public double GFlops => Case.Flops / (MedianMs * 1e6);

    public double GBs => Case.Bytes / (MedianMs * 1e6);

    public double Intensity => Case.Bytes > 0 ? Case.Flops / Case.Bytes : double.PositiveInfinity;
}

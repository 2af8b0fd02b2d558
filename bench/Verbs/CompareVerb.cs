namespace GpuNet.Bench;

/// <summary>The <c>compare</c> verb: the ratio per kernel and shape of two result files.</summary>
internal static class CompareVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run(Cli cli)
    {
        string a = cli.Argument("A"), b = cli.Argument("B");
        BenchReport ra, rb;
        try
        {
            (ra, rb) = (BenchReport.Load(a), BenchReport.Load(b));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
        {
            throw new UsageException($"compare: {e.Message}");
        }
        Console.WriteLine($"A: {a} ({ra.Tool}, {(string?)ra.Device["name"]}, {ra.Date})");
        Console.WriteLine($"B: {b} ({rb.Tool}, {(string?)rb.Device["name"]}, {rb.Date})");
        var table = BenchReport.Compare(ra, rb, out int matched);
        table.Print(Console.Out);
        Console.WriteLine($"{matched} (kernel, shape) rows matched of {ra.Rows.Count} in A and {rb.Rows.Count} in B");
        return 0;
    }
}

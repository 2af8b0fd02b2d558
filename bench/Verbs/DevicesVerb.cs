using GpuNet;

namespace GpuNet.Bench;

/// <summary>The <c>devices</c> verb: every device GpuNet can open, with what it reports.</summary>
internal static class DevicesVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run()
    {
        var table = new Table("id", "name", "kind", "memory", "warp", "SMs", "max threads/group", "shared/group", "compute cap.", "driver");
        foreach (var d in Device.List())
            table.Add(d.Id, d.Name, d.Kind.ToString(), MemoryPoolStats.FormatBytes(d.MemoryBytes), d.WarpSize.ToString(),
                d.Multiprocessors.ToString(), d.MaxThreadsPerGroup.ToString(), MemoryPoolStats.FormatBytes(d.MaxSharedMemoryPerGroup),
                d.ComputeCapability ?? "-", d.DriverVersion ?? "-");
        table.Print(Console.Out);
        Console.WriteLine($"{Device.List().Count} devices");
        if (Device.CudaUnavailable() is { } why)
            Console.WriteLine(why);
        return 0;
    }
}

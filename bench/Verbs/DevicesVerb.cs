using GpuNet;

namespace GpuNet.Bench;

/// <summary>The <c>devices</c> verb: every device GpuNet can open, with what it reports.</summary>
internal static class DevicesVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run()
    {
        var table = new Table("id", "name", "kind", "memory", "warp", "SMs", "max threads/group", "shared/group", "compute cap.", "driver");
        var listed = Device.List();
        foreach (var d in listed)
        {
            // The fast CPU runs host code: warps, multiprocessors, groups and shared memory are the GPU kernels' notions (its ILGPU
            // accelerator's values describe the simulator, listed as cpu-sim), so they are left blank there.
            bool host = d.Kind == DeviceKind.Cpu;
            string Gpu(string value) => host ? "-" : value;
            table.Add(d.Id, d.Name, d.Kind.ToString(), MemoryPoolStats.FormatBytes(d.MemoryBytes), Gpu(d.WarpSize.ToString()),
                Gpu(d.Multiprocessors.ToString()), Gpu(d.MaxThreadsPerGroup.ToString()), Gpu(MemoryPoolStats.FormatBytes(d.MaxSharedMemoryPerGroup)),
                d.ComputeCapability ?? "-", d.DriverVersion ?? "-");
        }
        table.Print(Console.Out);
        Console.WriteLine($"{listed.Count} devices");
        if (Device.CudaUnavailable(listed) is { } why)
            Console.WriteLine(why);
        return 0;
    }
}

using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Bench;

/// <summary>Datasheet peaks of one GPU: FP32 (non-tensor) GFLOP/s and memory GB/s.</summary>
public sealed record Datasheet(string Name, double Fp32GFlops, double BandwidthGBs);

/// <summary>The two ceilings measured on the device, with the datasheet's beside them when the device is known.</summary>
public sealed record DeviceCeilings(double BandwidthGBs, double Fp32GFlops, Datasheet? Datasheet)
{
    /// <summary>Arithmetic intensity (FLOP/byte) where the roofs meet.</summary>
    public double Ridge => Fp32GFlops / BandwidthGBs;
}

/// <summary>
/// Measures the ceilings: bandwidth by a device-to-device copy through the driver (bytes read plus written), FP32 rate by
/// a microkernel of eight independent multiply-add chains per thread (which ptxas turns into FFMA) over a grid large
/// enough to fill the device.
/// </summary>
public static class Ceilings
{
    /// <summary>Known GPUs, matched by a substring of the device name (most specific first). Sources: vendor datasheets.</summary>
    public static readonly Datasheet[] Table =
    {
        new("H100 SXM", 66_900, 3_350), new("H100 PCIe", 51_200, 2_000), new("H100 NVL", 60_000, 3_900), new("H100", 66_900, 3_350),
        new("H200", 66_900, 4_800), new("GH200", 66_900, 4_000),
        new("A100-SXM4-80GB", 19_500, 2_039), new("A100-SXM4-40GB", 19_500, 1_555), new("A100-PCIE-80GB", 19_500, 1_935), new("A100", 19_500, 1_555),
        new("L40S", 91_600, 864), new("L40", 90_500, 864), new("L4", 30_300, 300), new("A10G", 31_200, 600), new("A10", 31_200, 600),
        new("RTX 4090", 82_600, 1_008), new("RTX 4080", 48_700, 717), new("RTX 4070 Ti", 40_100, 504), new("RTX 4070", 29_100, 504),
        new("RTX 3090 Ti", 40_000, 1_008), new("RTX 3090", 35_600, 936), new("RTX 3080 Ti", 34_100, 912), new("RTX 3080", 29_800, 760),
        new("RTX 3070", 20_300, 448), new("RTX 3060", 12_700, 360), new("V100", 15_700, 900), new("T4", 8_100, 320),
    };

    public static Datasheet? Lookup(string deviceName) =>
        Table.FirstOrDefault(d => deviceName.Contains(d.Name, StringComparison.OrdinalIgnoreCase) ||
                                  deviceName.Replace("-", " ").Contains(d.Name.Replace("-", " "), StringComparison.OrdinalIgnoreCase));

    public static DeviceCeilings Measure(Device device)
    {
        bool cpu = device.Info.UsesCpuAccelerator;
        // The fast CPU device's ops are host code: its FMA roof is host SIMD on every core, not the simulator's kernel.
        double fma = device.IsHostCpu ? MeasureHostFma() : MeasureFma(device, cpu);
        return new DeviceCeilings(MeasureCopy(device, cpu ? 64L << 20 : 1L << 30), fma, cpu ? null : Lookup(device.Info.Name));
    }

    /// <summary>Twelve independent 256-bit FMA chains per core (enough in flight to cover the FMA latency), all cores: FLOP/s.</summary>
    private static double MeasureHostFma()
    {
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported)
            return double.NaN;
        const int iterations = 2_000_000;
        static float Chains(int n)
        {
            var b = Vector256.Create(0.999f);
            var c = Vector256.Create(1e-3f);
            Vector256<float> a0 = Vector256.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
            for (int k = 0; k < n; k++)
            {
                a0 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a0, b, c); a1 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a1, b, c);
                a2 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a2, b, c); a3 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a3, b, c);
                a4 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a4, b, c); a5 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a5, b, c);
                a6 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a6, b, c); a7 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a7, b, c);
                a8 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a8, b, c); a9 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a9, b, c);
                a10 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a10, b, c); a11 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a11, b, c);
            }
            return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
        int workers = Environment.ProcessorCount;
        Chains(1000);
        var best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Parallel.For(0, workers, _ => Chains(iterations));
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 12.0 * 8 * 2 * iterations * workers / best / 1e9;
    }

    private static double MeasureCopy(Device device, long bytes)
    {
        using var a = Tensor.RandomUniform(device, new[] { (int)(bytes / 4) }, 1);
        using var b = Tensor.Empty(device, (int)(bytes / 4));
        var src = a.ContiguousView;
        var dst = b.ContiguousView;
        var stream = device.Accelerator.DefaultStream;
        src.CopyTo(stream, dst);
        device.Synchronize();
        var best = double.MaxValue;
        for (int i = 0; i < 10; i++)
        {
            var s = device.Accelerator.AddProfilingMarker();
            src.CopyTo(stream, dst);
            var e = device.Accelerator.AddProfilingMarker();
            device.Synchronize();
            best = Math.Min(best, (e - s).TotalSeconds);
            s.Dispose();
            e.Dispose();
        }
        return 2.0 * bytes / best / 1e9;
    }

    /// <summary>Eight independent multiply-add chains per thread: 16 FLOPs per iteration, no memory traffic inside the loop.</summary>
    public static void FmaKernel(ArrayView<float> o, int iterations, float b)
    {
        int i = Grid.GlobalIndex.X;
        float a0 = i, a1 = i + 1, a2 = i + 2, a3 = i + 3, a4 = i + 4, a5 = i + 5, a6 = i + 6, a7 = i + 7;
        const float c = 0.999f;
        for (int k = 0; k < iterations; k++)
        {
            a0 = a0 * b + c; a1 = a1 * b + c; a2 = a2 * b + c; a3 = a3 * b + c;
            a4 = a4 * b + c; a5 = a5 * b + c; a6 = a6 * b + c; a7 = a7 * b + c;
        }
        o[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    }

    private static double MeasureFma(Device device, bool cpu)
    {
        int groups = cpu ? 4 : device.Info.Multiprocessors * 16, threads = 256, iterations = cpu ? 2_000 : 65_536;
        using var o = Tensor.Empty(device, groups * threads);
        var k = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, float>>(FmaKernel);
        var config = new KernelConfig(groups, threads);
        k(device.Accelerator.DefaultStream, config, o.ContiguousView, 8, 0.5f);
        device.Synchronize();
        var best = double.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            var s = device.Accelerator.AddProfilingMarker();
            k(device.Accelerator.DefaultStream, config, o.ContiguousView, iterations, 0.5f);
            var e = device.Accelerator.AddProfilingMarker();
            device.Synchronize();
            best = Math.Min(best, (e - s).TotalSeconds);
            s.Dispose();
            e.Dispose();
        }
        return 16.0 * iterations * groups * threads / best / 1e9;
    }
}

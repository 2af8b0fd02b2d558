using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Bench;

/// <summary>Datasheet peaks of one GPU: FP32 (non-tensor) GFLOP/s and memory GB/s.</summary>
public sealed record Datasheet(string Name, double Fp32GFlops, double BandwidthGBs);

/// <summary>
/// The two ceilings measured on the device (the best of repeated runs), how far the runs spread below the best (relative:
/// 0.05 = the median run was 5% slower), and the datasheet's peaks beside them when the device is known.
/// </summary>
public sealed record DeviceCeilings(double BandwidthGBs, double Fp32GFlops, Datasheet? Datasheet, double BandwidthSpread = 0, double Fp32Spread = 0)
{
    /// <summary>Arithmetic intensity (FLOP/byte) where the roofs meet.</summary>
    public double Ridge => Fp32GFlops / BandwidthGBs;

    /// <summary>The factor the ridge is uncertain by: intensities within [Ridge/f, Ridge·f] cannot be called either bound.</summary>
    public double RidgeUncertainty => (1 + BandwidthSpread) * (1 + Fp32Spread);

    /// <summary>
    /// Which roof limits a kernel of <paramref name="intensity"/> FLOP/byte: memory below the ridge, compute above it, and
    /// "balanced" within the ridge's measured uncertainty (or for a kernel that does no arithmetic: memory).
    /// </summary>
    public string Bound(double intensity) =>
        !(intensity > 0) || intensity < Ridge / RidgeUncertainty ? "memory" : intensity > Ridge * RidgeUncertainty ? "compute" : "balanced";

    /// <summary>The roofline's attainable GFLOP/s at <paramref name="intensity"/>: min(compute roof, bandwidth × intensity).</summary>
    public double Attainable(double intensity) => Math.Min(Fp32GFlops, BandwidthGBs * intensity);

    /// <summary>The roofs as a person reads them: <c>21.3 GB/s ± 4%, 51.0 GFLOP/s ± 1%</c>.</summary>
    public string Describe() =>
        $"{Units.Rate(BandwidthGBs * 1e9, "B/s")}{Spread(BandwidthSpread)} (device-to-device copy, read + write), " +
        $"{Units.Rate(Fp32GFlops * 1e9, "FLOP/s")}{Spread(Fp32Spread)} FP32 (FMA microkernel); ridge {Units.Number(Ridge)} FLOP/B";

    private static string Spread(double s) => s > 0 ? $" ± {Math.Max(s * 100, 0.5):0}%" : "";
}

/// <summary>Rates and numbers with SI prefixes and three significant digits, so no roof or rate prints as 0.</summary>
public static class Units
{
    /// <summary><paramref name="perSecond"/> in the unit with a prefix that keeps 1–999: <c>51.0 GFLOP/s</c>, <c>24.1 MFLOP/s</c>.</summary>
    public static string Rate(double perSecond, string unit)
    {
        if (!double.IsFinite(perSecond))
            return "- " + unit;
        var (v, prefix) = Prefixed(Math.Abs(perSecond));
        return $"{Number(Math.Sign(perSecond) * v)} {prefix}{unit}";
    }

    /// <summary>A power of ten as an axis label: <c>0.01</c>, <c>10</c>, <c>100 MFLOP/s</c>, <c>1 TFLOP/s</c> (a prefix only with a unit).</summary>
    public static string Decade(double value, string unit)
    {
        if (unit.Length == 0)
            return value.ToString("0.#########", System.Globalization.CultureInfo.InvariantCulture);
        var (v, prefix) = Prefixed(value);
        return $"{v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} {prefix}{unit}";
    }

    /// <summary>A non-negative value divided by 1000 until it is below 999.5 (up to peta), and the SI prefix that says so.</summary>
    private static (double Value, string Prefix) Prefixed(double value)
    {
        string[] prefixes = { "", "k", "M", "G", "T", "P" };
        int p = 0;
        while (value >= 999.5 && p < prefixes.Length - 1)
        {
            value /= 1000;
            p++;
        }
        return (value, prefixes[p]);
    }

    /// <summary>Three significant digits (no exponent between 0.001 and 99,950).</summary>
    public static string Number(double v) => Math.Abs(v) switch
    {
        0 => "0",
        >= 99.95 => v.ToString("0", System.Globalization.CultureInfo.InvariantCulture),
        >= 9.995 => v.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture),
        >= 0.9995 => v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture),
        >= 0.001 => v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString("0.00e+0", System.Globalization.CultureInfo.InvariantCulture),
    };
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
        var (fma, fmaSpread) = device.IsHostCpu ? MeasureHostFma() : MeasureFma(device, cpu);
        var (copy, copySpread) = MeasureCopy(device, cpu ? 64L << 20 : 1L << 30);
        return new DeviceCeilings(copy, fma, cpu ? null : Lookup(device.Info.Name), copySpread, fmaSpread);
    }

    /// <summary>The best of the runs' rates and the median run's shortfall from it (relative spread).</summary>
    private static (double Best, double Spread) BestAndSpread(List<double> seconds, double work)
    {
        seconds.Sort();
        double best = work / seconds[0], median = work / seconds[seconds.Count / 2];
        return (best, best / median - 1);
    }

    /// <summary>
    /// Twelve independent FMA chains per core (enough in flight to cover the FMA latency), all cores: FLOP/s. The chains are
    /// 512-bit where the CPU runs AVX-512 at full rate — the width the fast CPU GEMM then uses, so its roof is the one it can
    /// reach (a 256-bit roof put the AVX-512 GEMM at 155 % of it) — else 256-bit.
    /// </summary>
    private static (double, double) MeasureHostFma()
    {
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported)
            return (double.NaN, 0);
        const int iterations = 2_000_000;
        bool wide = Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported;
        static float Chains256(int n)
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
        static float Chains512(int n)
        {
            var b = Vector512.Create(0.999f);
            var c = Vector512.Create(1e-3f);
            Vector512<float> a0 = Vector512.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
            for (int k = 0; k < n; k++)
            {
                a0 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a0, b, c); a1 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a1, b, c);
                a2 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a2, b, c); a3 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a3, b, c);
                a4 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a4, b, c); a5 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a5, b, c);
                a6 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a6, b, c); a7 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a7, b, c);
                a8 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a8, b, c); a9 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a9, b, c);
                a10 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a10, b, c); a11 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a11, b, c);
            }
            return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
        Func<int, float> chains = wide ? Chains512 : Chains256;
        int workers = Environment.ProcessorCount;
        chains(1000);
        var times = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            Parallel.For(0, workers, _ => chains(iterations));
            times.Add(sw.Elapsed.TotalSeconds);
        }
        return BestAndSpread(times, 12.0 * (wide ? 16 : 8) * 2 * iterations * workers / 1e9);
    }

    private static (double, double) MeasureCopy(Device device, long bytes)
    {
        using var a = Tensor.RandomUniform(device, new[] { (int)(bytes / 4) }, 1);
        using var b = Tensor.Empty(device, (int)(bytes / 4));
        var src = a.ContiguousView;
        var dst = b.ContiguousView;
        var stream = device.Accelerator.DefaultStream;
        src.CopyTo(stream, dst);
        device.Synchronize();
        var times = new List<double>();
        for (int i = 0; i < 10; i++)
        {
            var s = device.Accelerator.AddProfilingMarker();
            src.CopyTo(stream, dst);
            var e = device.Accelerator.AddProfilingMarker();
            device.Synchronize();
            times.Add((e - s).TotalSeconds);
            s.Dispose();
            e.Dispose();
        }
        return BestAndSpread(times, 2.0 * bytes / 1e9);
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

    private static (double, double) MeasureFma(Device device, bool cpu)
    {
        int groups = cpu ? 4 : device.Info.Multiprocessors * 16, threads = 256, iterations = cpu ? 2_000 : 65_536;
        using var o = Tensor.Empty(device, groups * threads);
        var k = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, float>>(FmaKernel);
        var config = new KernelConfig(groups, threads);
        k(device.Accelerator.DefaultStream, config, o.ContiguousView, 8, 0.5f);
        device.Synchronize();
        var times = new List<double>();
        for (int i = 0; i < 5; i++)
        {
            var s = device.Accelerator.AddProfilingMarker();
            k(device.Accelerator.DefaultStream, config, o.ContiguousView, iterations, 0.5f);
            var e = device.Accelerator.AddProfilingMarker();
            device.Synchronize();
            times.Add((e - s).TotalSeconds);
            s.Dispose();
            e.Dispose();
        }
        return BestAndSpread(times, 16.0 * iterations * groups * threads / 1e9);
    }
}

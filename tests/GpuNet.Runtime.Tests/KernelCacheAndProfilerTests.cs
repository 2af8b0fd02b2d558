using Xunit;

namespace GpuNet.Runtime.Tests;

public sealed class KernelCacheAndProfilerTests
{
    [Fact]
    public void KernelsCompileOncePerSpecialization()
    {
        using var d = Device.Open("cpu-sim");
        using var a = Tensor.Zeros(d, 8);
        Ops.Add(a, a).Dispose();
        int afterFirst = d.Kernels.Count;
        Ops.Add(a, a).Dispose();
        Assert.Equal(afterFirst, d.Kernels.Count);
        Ops.Mul(a, a).Dispose(); // another operator struct: another specialization
        Assert.Equal(afterFirst + 1, d.Kernels.Count);
        Assert.Contains(d.Profiler.CompileTimes.Keys, k => k.Contains("Flat<Add>"));
        Assert.Contains(d.Profiler.CompileTimes.Keys, k => k.Contains("Flat<Mul>"));
    }

    [Fact]
    public void FastCpuRunsHostCodeWithoutCompilingKernels()
    {
        using var d = Device.Open("cpu");
        using var a = Tensor.FromArray(d, new float[] { 1, 2, 3 });
        using var s = Ops.Add(a, a);
        Assert.Equal(new float[] { 2, 4, 6 }, s.ToArray());
        Assert.Equal(0, d.Kernels.Count);
    }

    [Fact]
    public void ProfilerCountsLaunchesAndDeviceTime()
    {
        using var d = Device.Open("cpu");
        using var a = Tensor.Zeros(d, 1024);
        Ops.Add(a, a).Dispose(); // compile outside the timed region
        d.Profiler.Enabled = true;
        for (int i = 0; i < 3; i++)
            Ops.Add(a, a).Dispose();
        Ops.Fill(a, 1);
        var report = d.Profiler.Report();
        var add = Assert.Single(report, p => p.Op == "add");
        Assert.Equal(3, add.Launches);
        // Three launches of a 1024-element add take measurable time, and not more than a second.
        Assert.InRange(add.TotalMs, 1e-6, 1000);
        Assert.Equal(1, Assert.Single(report, p => p.Op == "fill").Launches);
        var table = d.Profiler.Table();
        Assert.Contains("add", table);
        Assert.Contains("compile", table);
        d.Profiler.Reset();
        Assert.DoesNotContain(d.Profiler.Report(), p => p.Op == "add");
    }

    [Fact]
    public void DisabledProfilerRecordsNoLaunches()
    {
        using var d = Device.Open("cpu");
        using var a = Tensor.Zeros(d, 16);
        Ops.Add(a, a).Dispose();
        Assert.DoesNotContain(d.Profiler.Report(), p => p.Launches > 0);
    }
}

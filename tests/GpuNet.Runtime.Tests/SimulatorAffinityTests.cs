using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>A fact for Linux machines that let this process use two or more cores (the CI machine has two).</summary>
public sealed class MultiCoreLinuxFactAttribute : FactAttribute
{
    public MultiCoreLinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
            Skip = "thread affinity is set through Linux's sched_setaffinity";
        else if (SimulatorAffinityTests.AllowedCores().Count < 2)
            Skip = "this process may use one core only";
    }
}

public sealed class SimulatorAffinityTests
{
    [Theory]
    [InlineData(null, null)]
    [InlineData(" ", null)]
    [InlineData("3", 3)]
    [InlineData(" 12 ", 12)]
    public void CpuThreadsComeFromTheVariable(string? text, int? expected) => Assert.Equal(expected, Device.ParseCpuThreads(text));

    [Theory]
    [InlineData("0")]
    [InlineData("-2")]
    [InlineData("two")]
    [InlineData("2.5")]
    public void MalformedCpuThreadsIsATypedErrorNamingTheVariable(string text)
    {
        var e = Assert.Throws<UnsupportedDeviceException>(() => Device.ParseCpuThreads(text));
        Assert.Equal("open_device", e.Op);
        Assert.Contains($"GPUNET_CPU_THREADS='{text}'", e.Message);
        Assert.Contains("integer ≥ 1", e.Message);
    }

    [Theory]
    [InlineData(null, 50)]
    [InlineData(" ", 50)]
    [InlineData("0", 0)]
    [InlineData(" 7 ", 7)]
    public void CpuSpinComesFromTheVariable(string? text, int expected) => Assert.Equal(expected, Device.ParseCpuSpin(text));

    [Theory]
    [InlineData("-1")]
    [InlineData("fifty")]
    [InlineData("1.5")]
    public void MalformedCpuSpinIsATypedErrorNamingTheVariable(string text)
    {
        var e = Assert.Throws<UnsupportedDeviceException>(() => Device.ParseCpuSpin(text));
        Assert.Equal("open_device", e.Op);
        Assert.Contains($"GPUNET_CPU_SPIN_MS='{text}'", e.Message);
        Assert.Contains("integer ≥ 0", e.Message);
    }

    /// <summary>tests/test.runsettings reaches the test host: without it the simulators float and the suite takes ~2.5× longer.</summary>
    [Fact]
    public void TestHostsRunWithOneProcessorAndTwoCpuThreads()
    {
        Assert.Equal(1, Environment.ProcessorCount);
        Assert.Equal(2, Device.CpuThreads);
    }

    /// <summary>A thread-limit scope lowers the calling thread's count only, nests (an inner scope cannot raise it) and
    /// restores the count before it when disposed.</summary>
    [Fact]
    public void CpuThreadLimitsNestAndStayOnTheirThread()
    {
        int all = Device.CpuThreads;
        using (Device.LimitCpuThreads(1))
        {
            Assert.Equal(1, Device.CpuThreads);
            int elsewhere = 0;
            var other = new Thread(() => elsewhere = Device.CpuThreads);
            other.Start();
            other.Join();
            Assert.Equal(all, elsewhere);
            using (Device.LimitCpuThreads(8))
                Assert.Equal(1, Device.CpuThreads);
            Assert.Equal(1, Device.CpuThreads);
        }
        Assert.Equal(all, Device.CpuThreads);
        using (Device.LimitCpuThreads(all + 5))
            Assert.Equal(all, Device.CpuThreads);
        Assert.Throws<ArgumentOutOfRangeException>(() => Device.LimitCpuThreads(0));
        Assert.Equal(all, Device.CpuThreads);
    }

    [MultiCoreLinuxFact]
    public void EverySimulatorThreadRunsOnTheCoreItsDeviceReports()
    {
        var before = SimulatorAffinity.SimulatorThreads();
        using var sim = Device.Open("cpu-sim");
        var started = SimulatorAffinity.SimulatorThreads().Except(before).ToList();
        Assert.True(started.Count >= sim.Info.MaxThreadsPerGroup, $"{started.Count} simulator threads started");
        Assert.NotNull(sim.SimulatorCore);
        Assert.Contains(sim.SimulatorCore!.Value, AllowedCores());
        foreach (int tid in started)
            Assert.Equal(sim.SimulatorCore.ToString(), CpusAllowed($"/proc/self/task/{tid}/status"));
        // The thread that opened the simulator keeps every core (only the simulator's own threads were pinned).
        Assert.Equal(CpusAllowed("/proc/self/status"), CpusAllowed("/proc/thread-self/status"));

        using var a = Tensor.FromArray(sim, new float[] { 1, 2, 3 });
        using var sum = Ops.Add(a, a);
        Assert.Equal(new float[] { 2, 4, 6 }, sum.ToArray());
    }

    [MultiCoreLinuxFact]
    public void ASimulatorThatCannotPinEveryThreadPinsNone()
    {
        var real = SimulatorAffinity.PinThread;
        int calls = 0;
        // The tenth thread refuses its core: the nine before it must get every core back, and the device reports none.
        SimulatorAffinity.PinThread = (tid, size, mask) => ++calls == 10 ? -1 : real(tid, size, mask);
        try
        {
            var before = SimulatorAffinity.SimulatorThreads();
            using var sim = Device.Open("cpu-sim");
            var started = SimulatorAffinity.SimulatorThreads().Except(before).ToList();
            Assert.True(calls >= 10, $"only {calls} threads were pinned");
            Assert.Null(sim.SimulatorCore);
            foreach (int tid in started)
                Assert.Equal(CpusAllowed("/proc/self/status"), CpusAllowed($"/proc/self/task/{tid}/status"));

            using var a = Tensor.FromArray(sim, new float[] { 1, 2, 3 });
            using var sum = Ops.Add(a, a);
            Assert.Equal(new float[] { 2, 4, 6 }, sum.ToArray());
        }
        finally
        {
            SimulatorAffinity.PinThread = real;
        }
    }

    internal static List<int> AllowedCores() => Expand(CpusAllowed("/proc/self/status"));

    private static string CpusAllowed(string statusFile) =>
        File.ReadLines(statusFile).First(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal)).Split(':')[1].Trim();

    /// <summary>"0-2,5" → 0, 1, 2, 5.</summary>
    private static List<int> Expand(string list) =>
        list.Split(',').SelectMany(part =>
        {
            var ends = part.Split('-').Select(int.Parse).ToArray();
            return Enumerable.Range(ends[0], ends[^1] - ends[0] + 1);
        }).ToList();
}

using System.Diagnostics;
using Xunit;

namespace GpuNet.Tests;

/// <summary>Builds the stand-in CUDA driver of fake_cuda.c with the C compiler, answering as told (see the C file).</summary>
internal static class FakeCudaDriver
{
    /// <summary>Compiles the stand-in into <paramref name="folder"/>/<paramref name="name"/>: cuInit returns <paramref name="init"/>,
    /// the driver reports CUDA <paramref name="version"/> (1000·major + 10·minor) and <paramref name="devices"/> devices of compute
    /// capability <paramref name="major"/>.<paramref name="minor"/>.</summary>
    public static string Build(string folder, string name = "libcuda.so.1", int init = 0, int version = 13000, int devices = 1, int major = 9, int minor = 0)
    {
        Directory.CreateDirectory(folder);
        string output = Path.Combine(folder, name);
        string source = Path.Combine(AppContext.BaseDirectory, "fake_cuda.c");
        var start = new ProcessStartInfo("cc", $"-shared -fPIC -O1 -DINIT_RESULT={init} -DDRIVER_VERSION={version} -DDEVICE_COUNT={devices} " +
            $"-DCC_MAJOR={major} -DCC_MINOR={minor} -o \"{output}\" \"{source}\"") { RedirectStandardError = true };
        using var cc = Process.Start(start)!;
        string errors = cc.StandardError.ReadToEnd();
        cc.WaitForExit();
        Assert.True(cc.ExitCode == 0, $"cc failed building the fake driver: {errors}");
        return output;
    }
}

using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>
/// Finding the CUDA driver, and saying why CUDA is absent, on a machine without a GPU: the search order on fake folders, and
/// every outcome of the probe against stand-in drivers built from tests/Shared/fake_cuda.c with the C compiler (a stub, a failing
/// cuInit, an old driver, no device, a usable device).
/// </summary>
public sealed class CudaDriverTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("gpunet-cuda-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Folder(string relative)
    {
        string path = Path.Combine(_root, relative);
        Directory.CreateDirectory(path);
        return path;
    }

    private static string Touch(string folder, string name)
    {
        string path = Path.Combine(folder, name);
        File.WriteAllText(path, "");
        return path;
    }

    private static CudaDriverSearch Search(params string[] folders) => new(null, folders, LoaderSearch: false);

    [Fact]
    public void SearchTriesTheVersionedNameFirstAndMarksStubs()
    {
        string stubs = Folder("cuda/lib64/stubs"), toolkit = Folder("toolkit"), driver = Folder("driver");
        Touch(stubs, "libcuda.so");
        Touch(toolkit, "libcuda.so");
        Touch(driver, "libcuda.so.1");
        var found = CudaDriver.Candidates(new CudaDriverSearch(null, [stubs, toolkit, driver + "/", driver], LoaderSearch: true), File.Exists);
        Assert.Equal(new[]
        {
            (driver + "/libcuda.so.1", false), (stubs + "/libcuda.so", true), (toolkit + "/libcuda.so", false),
            ("libcuda.so.1", false), ("libcuda.so", false),
        }, found.Select(c => (c.Path, c.IsStub)).ToArray());
    }

    [Fact]
    public void TheOverrideReplacesTheSearch()
    {
        string driver = Folder("driver");
        Touch(driver, "libcuda.so.1");
        var found = CudaDriver.Candidates(new CudaDriverSearch("/opt/mine/libcuda.so.1", [driver], LoaderSearch: true), File.Exists);
        Assert.Equal("/opt/mine/libcuda.so.1", Assert.Single(found).Path);

        var status = CudaDriver.Probe(new CudaDriverSearch(Path.Combine(_root, "missing", "libcuda.so.1"), [driver], LoaderSearch: true));
        Assert.Equal(CudaDriverOutcome.NotFound, status.Outcome);
        Assert.Contains($"{CudaDriver.LibraryVariable}={Path.Combine(_root, "missing", "libcuda.so.1")} names no file", status.Message);
    }

    [Fact]
    public void NothingFoundSaysWhereItLooked()
    {
        string a = Folder("a"), b = Folder("b");
        var status = CudaDriver.Probe(Search(a, b));
        Assert.Equal(CudaDriverOutcome.NotFound, status.Outcome);
        Assert.Null(status.LibraryPath);
        Assert.Equal($"no NVIDIA driver library (libcuda.so.1) found (looked in {a}, {b}); install the driver or set GPUNET_CUDA_LIBRARY=PATH", status.Message);
    }

    [Fact]
    public void AStubFolderIsNeverLoaded()
    {
        string stub = FakeCudaDriver.Build(Path.Combine(_root, "cuda", "stubs"), "libcuda.so", init: 34);
        var status = CudaDriver.Probe(Search(Path.GetDirectoryName(stub)!));
        Assert.Equal(CudaDriverOutcome.StubLibrary, status.Outcome);
        Assert.Equal(stub, status.LibraryPath);
        Assert.Contains($"only the CUDA toolkit's stub library was found ({stub})", status.Message);
        Assert.Contains("(skipped: a stub library)", Assert.Single(status.LookedIn));
    }

    [Fact]
    public void AStubAnywhereElseIsRecognizedByItsCuInitAndTheSearchGoesOn()
    {
        string stub = FakeCudaDriver.Build(Path.Combine(_root, "toolkit"), "libcuda.so", init: 34);
        var status = CudaDriver.Probe(Search(Path.GetDirectoryName(stub)!));
        Assert.Equal(CudaDriverOutcome.StubLibrary, status.Outcome);
        Assert.Contains("cuInit returned 34, CUDA_ERROR_STUB_LIBRARY", Assert.Single(status.LookedIn));

        // A real driver after the stub in the search: the stub is passed over.
        string real = FakeCudaDriver.Build(Path.Combine(_root, "driver"), "libcuda.so");
        status = CudaDriver.Probe(Search(Path.GetDirectoryName(stub)!, Path.GetDirectoryName(real)!));
        Assert.Equal(CudaDriverOutcome.Ready, status.Outcome);
        Assert.Equal(real, status.LibraryPath);
    }

    [Theory]
    [InlineData(100, "CUDA_ERROR_NO_DEVICE", "the driver sees no CUDA device")]
    [InlineData(999, "CUDA_ERROR_UNKNOWN", "")]
    public void AFailedCuInitNamesItsError(int error, string name, string hint)
    {
        string lib = FakeCudaDriver.Build(Path.Combine(_root, "driver"), init: error);
        var status = CudaDriver.Probe(Search(Path.GetDirectoryName(lib)!));
        Assert.Equal(CudaDriverOutcome.InitFailed, status.Outcome);
        Assert.Equal(error, status.ErrorCode);
        Assert.Equal(name, status.ErrorName);
        Assert.StartsWith($"the driver at {lib} failed in cuInit with error {error} ({name})", status.Message);
        Assert.Contains(hint, status.Message);
    }

    [Fact]
    public void AnOldDriverIsTooOldForTheDevice()
    {
        string lib = FakeCudaDriver.Build(Path.Combine(_root, "driver"), version: 9000, major: 9, minor: 0);
        var status = CudaDriver.Probe(Search(Path.GetDirectoryName(lib)!));
        Assert.Equal(CudaDriverOutcome.DriverTooOld, status.Outcome);
        Assert.Equal("9.0", status.DriverVersion);
        var device = Assert.Single(status.Devices);
        Assert.Equal(("GpuNet fake GPU", "sm_90"), (device.Name, device.Architecture));
        Assert.Null(device.PtxIsa);
        Assert.Matches(@"reports GpuNet fake GPU \(sm_90\): driver CUDA 9\.0 is too old for it \(ILGPU needs CUDA 1\d\.\d or newer\)", status.Message);
    }

    [Fact]
    public void ADriverWithoutDevicesSaysSo()
    {
        string lib = FakeCudaDriver.Build(Path.Combine(_root, "driver"), devices: 0);
        var status = CudaDriver.Probe(Search(Path.GetDirectoryName(lib)!));
        Assert.Equal(CudaDriverOutcome.NoDevice, status.Outcome);
        Assert.Equal($"the driver at {lib} (CUDA 13.0) reports no device", status.Message);
    }

    [Fact]
    public void AUsableDriverReportsThePtxIsaIlgpuWillEmit()
    {
        string lib = FakeCudaDriver.Build(Path.Combine(_root, "driver"));
        var status = CudaDriver.Probe(Search(Path.GetDirectoryName(lib)!));
        Assert.True(status.IsReady, status.Message);
        Assert.Equal("13.0", status.DriverVersion);
        var device = Assert.Single(status.Devices);
        Assert.Null(device.Problem);
        // ILGPU 1.5.3 emits the newest PTX ISA it knows that the driver accepts: for an H200 with driver 13.0, 8.x.
        Assert.Matches(@"^8\.\d$", device.PtxIsa);
        Assert.Equal($"driver {lib} (CUDA 13.0): GpuNet fake GPU (sm_90, PTX ISA {device.PtxIsa})", status.Message);
    }

    [Fact]
    public void AFileThatIsNotALibraryFailsToLoadWithTheLoadersWords()
    {
        string folder = Folder("driver");
        File.WriteAllText(Path.Combine(folder, "libcuda.so.1"), "not an ELF file");
        var status = CudaDriver.Probe(Search(folder));
        Assert.Equal(CudaDriverOutcome.LoadFailed, status.Outcome);
        Assert.StartsWith($"{folder}/libcuda.so.1 could not be loaded: ", status.Message);
    }

    [Fact]
    public void ThisMachinesCudaIsAbsentForAReasonDevicesAndOpenBothGive()
    {
        if (Device.AnyGpu())
            return; // the statement is about machines without CUDA; on a GPU machine the other tests speak
        string? reason = Device.CudaUnavailable();
        Assert.NotNull(reason);
        Assert.StartsWith("CUDA: ", reason);
        Assert.Equal($"CUDA: {CudaDriver.Status.Message}", reason);
        var e = Assert.Throws<UnsupportedDeviceException>(() => Device.Open("cuda"));
        Assert.Contains(CudaDriver.Status.Message, e.Message);
    }
}

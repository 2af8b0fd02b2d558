using BenchmarkDotNet.Attributes;

namespace GpuNet.Bench;

/// <summary>
/// BenchmarkDotNet suites, one per kernel family, on the device named by GPUNET_DEVICE (default: auto). Each invocation
/// runs the op and synchronizes, so BenchmarkDotNet's statistics are over complete launches. Run: <c>bdn '*MatMul*'</c>.
/// </summary>
public abstract class DeviceSuite
{
    protected Device Device { get; private set; } = null!;

    [GlobalSetup]
    public void OpenDevice()
    {
        Device = Device.Open();
        Setup();
    }

    protected abstract void Setup();

    [GlobalCleanup]
    public void CloseDevice() => Device.Dispose();

    protected Tensor Random(params int[] shape) => Tensor.RandomUniform(Device, shape, 1, -1, 1);
}

public class ElementwiseSuite : DeviceSuite
{
    private Tensor _a = null!, _b = null!;

    [Params(1 << 16, 1 << 20, 1 << 24)]
    public int N { get; set; }

    protected override void Setup() => (_a, _b) = (Random(N), Random(N));

    [Benchmark]
    public void Add()
    {
        Ops.Add(_a, _b).Dispose();
        Device.Synchronize();
    }

    [Benchmark]
    public void GeluErf()
    {
        Ops.GeluErf(_a).Dispose();
        Device.Synchronize();
    }
}

public class MatMulSuite : DeviceSuite
{
    private Tensor _a = null!, _b = null!;

    [Params(128, 512, 2048)]
    public int Size { get; set; }

    protected override void Setup() => (_a, _b) = (Random(Size, Size), Random(Size, Size));

    [Benchmark]
    public void MatMul()
    {
        Ops.MatMul(_a, _b).Dispose();
        Device.Synchronize();
    }
}

public class SoftmaxNormSuite : DeviceSuite
{
    private Tensor _x = null!;

    [Params(1024, 32768)]
    public int Cols { get; set; }

    protected override void Setup() => _x = Random(256, Cols);

    [Benchmark]
    public void Softmax()
    {
        Ops.Softmax(_x).Dispose();
        Device.Synchronize();
    }

    [Benchmark]
    public void LayerNorm()
    {
        Ops.LayerNorm(_x).Dispose();
        Device.Synchronize();
    }
}

public class ConvSuite : DeviceSuite
{
    private Tensor _x = null!, _w = null!;

    [Params(ConvAlgorithm.Im2Col, ConvAlgorithm.ImplicitGemm)]
    public ConvAlgorithm Algorithm { get; set; }

    protected override void Setup() => (_x, _w) = (Random(4, 64, 28, 28), Random(64, 64, 3, 3));

    [Benchmark]
    public void Conv3x3()
    {
        Ops.Conv2d(_x, _w, null, Conv2dOptions.Of(padding: 1) with { Algorithm = Algorithm }).Dispose();
        Device.Synchronize();
    }
}

public class AttentionSuite : DeviceSuite
{
    private Tensor _q = null!, _k = null!, _v = null!;

    [Params(128, 1024)]
    public int N { get; set; }

    [Params(false, true)]
    public bool Causal { get; set; }

    protected override void Setup() => (_q, _k, _v) = (Random(1, 4, N, 64), Random(1, 4, N, 64), Random(1, 4, N, 64));

    [Benchmark]
    public void Fused()
    {
        Ops.Attention(_q, _k, _v, causal: Causal).Dispose();
        Device.Synchronize();
    }

    [Benchmark]
    public void Unfused()
    {
        Ops.AttentionUnfused(_q, _k, _v, causal: Causal).Dispose();
        Device.Synchronize();
    }
}

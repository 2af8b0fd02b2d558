using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>conv2d (im2col and implicit GEMM), conv1d, conv_transpose2d, im2col, col2im.</summary>
public sealed class ConvTests(ITestOutputHelper output) : KernelFamilyTests<ConvFamily>(output)
{
    private static Device Cpu => TestDevices.Cpu;

    private static ShapeMismatchException Fails(int[] xs, int[] ws, Conv2dOptions o)
    {
        using var x = Tensor.Zeros(Cpu, xs);
        using var w = Tensor.Zeros(Cpu, ws);
        return Assert.Throws<ShapeMismatchException>(() => Ops.Conv2d(x, w, null, o));
    }

    [Fact]
    public void OutputSizeBelowOneNamesTheKernel()
    {
        var e = Fails(new[] { 1, 3, 4, 4 }, new[] { 2, 3, 5, 5 }, Conv2dOptions.Of());
        Assert.Equal("conv2d", e.Op);
        Assert.Equal("kernel_size", e.Argument);
    }

    [Fact]
    public void ChannelsNotDivisibleByGroupsNamesGroups()
    {
        var e = Fails(new[] { 1, 6, 8, 8 }, new[] { 4, 2, 3, 3 }, Conv2dOptions.Of(groups: 4));
        Assert.Equal("groups", e.Argument);
        Assert.Contains("C_in = 6", e.Expected);
    }

    [Fact]
    public void MismatchedWeightNamesWeight()
    {
        var e = Fails(new[] { 1, 6, 8, 8 }, new[] { 4, 5, 3, 3 }, Conv2dOptions.Of(groups: 2));
        Assert.Equal("weight", e.Argument);
        Assert.Contains("[4, 3, KH", e.Expected);
    }

    [Fact]
    public void BadStrideAndPaddingAreNamed()
    {
        Assert.Equal("stride", Fails(new[] { 1, 1, 8, 8 }, new[] { 1, 1, 3, 3 }, Conv2dOptions.Of(stride: 0)).Argument);
        Assert.Equal("padding", Fails(new[] { 1, 1, 8, 8 }, new[] { 1, 1, 3, 3 }, Conv2dOptions.Of(padding: -1)).Argument);
        Assert.Equal("dilation", Fails(new[] { 1, 1, 8, 8 }, new[] { 1, 1, 3, 3 }, Conv2dOptions.Of(dilation: 0)).Argument);
    }

    [Fact]
    public void TransposedConvRejectsOutputPaddingTooLarge()
    {
        using var x = Tensor.Zeros(Cpu, 1, 2, 4, 4);
        using var w = Tensor.Zeros(Cpu, 2, 3, 3, 3);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.ConvTranspose2d(x, w, stride: 2, outputPadding: 2));
        Assert.Equal("output_padding", e.Argument);
    }

    [Fact]
    public void PackedWeightsRefuseOtherGroupsAndUseAfterDispose()
    {
        using var x = Tensor.RandomNormal(Cpu, new[] { 1, 4, 6, 6 }, 1);
        using var w = Tensor.RandomNormal(Cpu, new[] { 6, 2, 3, 3 }, 2);
        var packed = Ops.PackConv2dWeight(w, groups: 2);
        var e = Assert.Throws<InvalidArgumentException>(() => Ops.Conv2d(x, packed, null, Conv2dOptions.Of(padding: 1)));
        Assert.Equal("options.Groups", e.Argument);
        Assert.Contains("(2)", e.Expected);
        packed.Dispose();
        Assert.Throws<TensorDisposedException>(() => Ops.Conv2d(x, packed, null, Conv2dOptions.Of(padding: 1, groups: 2)));
        Assert.Throws<InvalidArgumentException>(() => Ops.PackConv2dWeight(w, groups: 4));
        Assert.False(w.IsDisposed);
    }

    [Fact]
    public void ExpandDepthwiseNamesWhatDoesNotFit()
    {
        using var x = Tensor.RandomNormal(Cpu, new[] { 1, 4, 5, 5 }, 1);
        using var w1 = Tensor.RandomNormal(Cpu, new[] { 8, 4, 1, 1 }, 2);
        using var w3 = Tensor.RandomNormal(Cpu, new[] { 8, 4, 3, 3 }, 3);
        using var w2 = Tensor.RandomNormal(Cpu, new[] { 8, 1, 3, 3 }, 4);
        using var expand = Ops.PackConv2dWeight(w1);
        using var notPointwise = Ops.PackConv2dWeight(w3);
        using var depthwise = Ops.PackConv2dWeight(w2, groups: 8);
        var o = Conv2dOptions.Of(padding: 1, groups: 8);
        var e1 = Assert.Throws<ShapeMismatchException>(() => Ops.Conv2dExpandDepthwise(x, notPointwise, null, FusedActivation.None, depthwise, null, o));
        Assert.Equal("expand", e1.Argument);
        var e2 = Assert.Throws<InvalidArgumentException>(() => Ops.Conv2dExpandDepthwise(x, expand, null, FusedActivation.None, depthwise, null, o with { Groups = 4 }));
        Assert.Equal("depthwiseOptions.Groups", e2.Argument);
        Assert.Contains("(8)", e2.Expected);
        using var shortBias = Tensor.Zeros(Cpu, 7);
        var e3 = Assert.Throws<ShapeMismatchException>(() => Ops.Conv2dExpandDepthwise(x, expand, shortBias, FusedActivation.None, depthwise, null, o));
        Assert.Equal("expandBias", e3.Argument);
        using var wrongChannels = Tensor.Zeros(Cpu, 1, 3, 5, 5);
        Assert.Throws<ShapeMismatchException>(() => Ops.Conv2dExpandDepthwise(wrongChannels, expand, null, FusedActivation.None, depthwise, null, o));
        var disposed = Ops.PackConv2dWeight(w2, groups: 8);
        disposed.Dispose();
        Assert.Throws<TensorDisposedException>(() => Ops.Conv2dExpandDepthwise(x, expand, null, FusedActivation.None, disposed, null, o));
    }

    /// <summary>While autograd records, the fused expansion and depthwise convolution run as the two convolutions: the same
    /// gradients as those written out.</summary>
    [Fact]
    public void ExpandDepthwiseRecordsTheComposedGradients()
    {
        var o = Conv2dOptions.Of(padding: 1, groups: 12) with { Activation = FusedActivation.Relu6 };
        float[][] Grads(bool fused)
        {
            using var x = Tensor.RandomNormal(Cpu, new[] { 1, 5, 4, 4 }, 5);
            using var w1 = Tensor.RandomNormal(Cpu, new[] { 12, 5, 1, 1 }, 6);
            using var w2 = Tensor.RandomNormal(Cpu, new[] { 12, 1, 3, 3 }, 7);
            x.RequiresGrad = w1.RequiresGrad = w2.RequiresGrad = true;
            using var p1 = Ops.PackConv2dWeight(w1);
            using var p2 = Ops.PackConv2dWeight(w2, groups: 12);
            using (var scope = Cpu.Scope())
            {
                var y = fused ? Ops.Conv2dExpandDepthwise(x, p1, null, FusedActivation.Relu6, p2, null, o)
                    : Ops.Conv2d(Ops.Conv2d(x, w1, null, new Conv2dOptions { Activation = FusedActivation.Relu6 }), w2, null, o);
                Ops.SumAll(Ops.Mul(y, y)).Backward();
            }
            return new[] { x.Grad!.ToArray(), w1.Grad!.ToArray(), w2.Grad!.ToArray() };
        }
        SameGradients(Grads);
    }

    [Fact]
    public void InvertedResidualNamesWhatDoesNotFit()
    {
        using var x = Tensor.RandomNormal(Cpu, new[] { 1, 4, 5, 5 }, 1);
        using var w1 = Tensor.RandomNormal(Cpu, new[] { 8, 4, 1, 1 }, 2);
        using var w2 = Tensor.RandomNormal(Cpu, new[] { 8, 1, 3, 3 }, 3);
        using var w3 = Tensor.RandomNormal(Cpu, new[] { 4, 8, 1, 1 }, 4);
        using var w3x3 = Tensor.RandomNormal(Cpu, new[] { 4, 8, 3, 3 }, 5);
        using var w7 = Tensor.RandomNormal(Cpu, new[] { 4, 7, 1, 1 }, 6);
        using var expand = Ops.PackConv2dWeight(w1);
        using var depthwise = Ops.PackConv2dWeight(w2, groups: 8);
        using var project = Ops.PackConv2dWeight(w3);
        using var notPointwise = Ops.PackConv2dWeight(w3x3);
        using var otherChannels = Ops.PackConv2dWeight(w7);
        var o = Conv2dOptions.Of(padding: 1, groups: 8);
        Tensor Run(PackedConv2dWeight p, Tensor? bias = null, Tensor? residual = null) =>
            Ops.Conv2dExpandDepthwiseProject(x, expand, null, FusedActivation.None, depthwise, null, o, p, bias, FusedActivation.None, residual);
        var e1 = Assert.Throws<ShapeMismatchException>(() => Run(notPointwise));
        Assert.Equal("project", e1.Argument);
        Assert.Contains("[C_out, 8, 1, 1]", e1.Expected);
        Assert.Equal("project", Assert.Throws<ShapeMismatchException>(() => Run(otherChannels)).Argument);
        using var shortBias = Tensor.Zeros(Cpu, 3);
        Assert.Equal("projectBias", Assert.Throws<ShapeMismatchException>(() => Run(project, shortBias)).Argument);
        using var wrongResidual = Tensor.Zeros(Cpu, 1, 4, 3, 3);
        var e2 = Assert.Throws<ShapeMismatchException>(() => Run(project, null, wrongResidual));
        Assert.Equal("residual", e2.Argument);
        Assert.Contains("[1, 4, 5, 5]", e2.Expected);
        Assert.Equal("depthwiseOptions.Groups", Assert.Throws<InvalidArgumentException>(() =>
            Ops.Conv2dExpandDepthwiseProject(x, expand, null, FusedActivation.None, depthwise, null, o with { Groups = 4 }, project)).Argument);
        var disposed = Ops.PackConv2dWeight(w3);
        disposed.Dispose();
        Assert.Throws<TensorDisposedException>(() => Run(disposed));
        using var y = Run(project, null, x);
        Assert.Equal(new[] { 1, 4, 5, 5 }, y.ShapeArray());
    }

    /// <summary>While autograd records, the fused block runs as its three convolutions and the add: the same gradients as
    /// those written out.</summary>
    [Fact]
    public void InvertedResidualRecordsTheComposedGradients()
    {
        var o = Conv2dOptions.Of(padding: 1, groups: 12) with { Activation = FusedActivation.Relu6 };
        float[][] Grads(bool fused)
        {
            using var x = Tensor.RandomNormal(Cpu, new[] { 1, 5, 4, 4 }, 5);
            using var w1 = Tensor.RandomNormal(Cpu, new[] { 12, 5, 1, 1 }, 6);
            using var w2 = Tensor.RandomNormal(Cpu, new[] { 12, 1, 3, 3 }, 7);
            using var w3 = Tensor.RandomNormal(Cpu, new[] { 5, 12, 1, 1 }, 8);
            x.RequiresGrad = w1.RequiresGrad = w2.RequiresGrad = w3.RequiresGrad = true;
            using var p1 = Ops.PackConv2dWeight(w1);
            using var p2 = Ops.PackConv2dWeight(w2, groups: 12);
            using var p3 = Ops.PackConv2dWeight(w3);
            using (var scope = Cpu.Scope())
            {
                var y = fused ? Ops.Conv2dExpandDepthwiseProject(x, p1, null, FusedActivation.Relu6, p2, null, o, p3, null, FusedActivation.Relu, x)
                    : Ops.Relu(Ops.Add(Ops.Conv2d(Ops.Conv2d(Ops.Conv2d(x, w1, null, new Conv2dOptions { Activation = FusedActivation.Relu6 }), w2, null, o), w3), x));
                Ops.SumAll(Ops.Mul(y, y)).Backward();
            }
            return new[] { x.Grad!.ToArray(), w1.Grad!.ToArray(), w2.Grad!.ToArray(), w3.Grad!.ToArray() };
        }
        SameGradients(Grads);
    }

    [Fact]
    public void SqueezeExciteNamesWhatDoesNotFit()
    {
        using var x = Tensor.RandomNormal(Cpu, new[] { 2, 8, 3, 3 }, 1);
        using var w1 = Tensor.RandomNormal(Cpu, new[] { 2, 8, 1, 1 }, 2);
        using var w2 = Tensor.RandomNormal(Cpu, new[] { 8, 2, 1, 1 }, 3);
        using var w3x3 = Tensor.RandomNormal(Cpu, new[] { 2, 8, 3, 3 }, 4);
        using var w7 = Tensor.RandomNormal(Cpu, new[] { 7, 2, 1, 1 }, 5);
        using var reduce = Ops.PackConv2dWeight(w1);
        using var expand = Ops.PackConv2dWeight(w2);
        using var notPointwise = Ops.PackConv2dWeight(w3x3);
        using var otherChannels = Ops.PackConv2dWeight(w7);
        var e1 = Assert.Throws<ShapeMismatchException>(() => Ops.SqueezeExcite(x, notPointwise, null, FusedActivation.Relu, expand, null));
        Assert.Equal("reduce", e1.Argument);
        Assert.Contains("[R, 8, 1, 1]", e1.Expected);
        var e2 = Assert.Throws<ShapeMismatchException>(() => Ops.SqueezeExcite(x, reduce, null, FusedActivation.Relu, otherChannels, null));
        Assert.Equal("expand", e2.Argument);
        Assert.Contains("[8, 2, 1, 1]", e2.Expected);
        using var shortBias = Tensor.Zeros(Cpu, 7);
        Assert.Equal("expandBias", Assert.Throws<ShapeMismatchException>(() => Ops.SqueezeExcite(x, reduce, null, FusedActivation.Relu, expand, shortBias)).Argument);
        Assert.Equal("reduceBias", Assert.Throws<ShapeMismatchException>(() => Ops.SqueezeExcite(x, reduce, shortBias, FusedActivation.Relu, expand, null)).Argument);
        using var flat = Tensor.Zeros(Cpu, 2, 8);
        Assert.Throws<ShapeMismatchException>(() => Ops.SqueezeExcite(flat, reduce, null, FusedActivation.Relu, expand, null));
        var disposed = Ops.PackConv2dWeight(w2);
        disposed.Dispose();
        Assert.Throws<TensorDisposedException>(() => Ops.SqueezeExcite(x, reduce, null, FusedActivation.Relu, disposed, null));
        using var y = Ops.SqueezeExcite(x, reduce, null, FusedActivation.Relu, expand, null);
        Assert.Equal(x.ShapeArray(), y.ShapeArray());
    }

    /// <summary>While autograd records, squeeze-and-excitation runs as its pooling, convolutions, sigmoid and product: the
    /// same gradients as those written out.</summary>
    [Fact]
    public void SqueezeExciteRecordsTheComposedGradients()
    {
        float[][] Grads(bool fused)
        {
            using var x = Tensor.RandomNormal(Cpu, new[] { 2, 6, 3, 4 }, 7);
            using var w1 = Tensor.RandomNormal(Cpu, new[] { 3, 6, 1, 1 }, 8);
            using var w2 = Tensor.RandomNormal(Cpu, new[] { 6, 3, 1, 1 }, 9);
            x.RequiresGrad = w1.RequiresGrad = w2.RequiresGrad = true;
            using var p1 = Ops.PackConv2dWeight(w1);
            using var p2 = Ops.PackConv2dWeight(w2);
            using (var scope = Cpu.Scope())
            {
                var y = fused ? Ops.SqueezeExcite(x, p1, null, FusedActivation.Silu, p2, null)
                    : Ops.Mul(x, Ops.Sigmoid(Ops.Conv2d(Ops.Conv2d(Ops.GlobalAvgPool(x), w1, null, new Conv2dOptions { Activation = FusedActivation.Silu }), w2)));
                Ops.SumAll(Ops.Mul(y, y)).Backward();
            }
            return new[] { x.Grad!.ToArray(), w1.Grad!.ToArray(), w2.Grad!.ToArray() };
        }
        SameGradients(Grads);
    }

    [Fact]
    public void ResidualOfAnotherShapeNamesResidual()
    {
        using var x = Tensor.Zeros(Cpu, 1, 3, 5, 5);
        using var w = Tensor.Zeros(Cpu, 4, 3, 3, 3);
        using var r = Tensor.Zeros(Cpu, 1, 4, 5, 5);
        var e = Assert.Throws<ShapeMismatchException>(() => Ops.Conv2d(x, w, null, Conv2dOptions.Of(), r));
        Assert.Equal("residual", e.Argument);
        Assert.Contains("[1, 4, 3, 3]", e.Expected);
    }

    /// <summary>While autograd records, the packed form and the residual run as their compositions: the gradients of the
    /// weight, the input and the residual equal those of conv → add → relu written out.</summary>
    [Fact]
    public void PackedConvolutionWithResidualRecordsTheComposedGradients()
    {
        var opt = Conv2dOptions.Of(padding: 1) with { Activation = FusedActivation.Relu };
        float[][] Grads(bool fused)
        {
            using var x = Tensor.RandomNormal(Cpu, new[] { 2, 3, 7, 6 }, 3);
            using var w = Tensor.RandomNormal(Cpu, new[] { 5, 3, 3, 3 }, 4);
            using var r = Tensor.RandomNormal(Cpu, new[] { 2, 5, 7, 6 }, 5);
            x.RequiresGrad = w.RequiresGrad = r.RequiresGrad = true;
            using var packed = Ops.PackConv2dWeight(w);
            using (var scope = Cpu.Scope())
            {
                var y = fused ? Ops.Conv2d(x, packed, null, opt, r) : Ops.Relu(Ops.Add(Ops.Conv2d(x, w, null, Conv2dOptions.Of(padding: 1)), r));
                Ops.SumAll(Ops.Mul(y, y)).Backward();
            }
            return new[] { x.Grad!.ToArray(), w.Grad!.ToArray(), r.Grad!.ToArray() };
        }
        SameGradients(Grads);
    }

    [Fact]
    public void AutoPicksImplicitGemmOverBudgetAndIm2ColUnder()
    {
        foreach (var (budget, expectIm2Col) in new[] { (16L, false), (1L << 30, true) })
        {
            using var d = Device.Open("cpu-sim");
            using var x = Tensor.Zeros(d, 1, 2, 6, 6);
            using var w = Tensor.Zeros(d, 3, 2, 3, 3);
            using var y = Ops.Conv2d(x, w, null, Conv2dOptions.Of(padding: 1) with { ColumnBudgetBytes = budget });
            Assert.Equal(expectIm2Col, d.Profiler.CompileTimes.Keys.Any(k => k.StartsWith("ConvKernels.Im2Col")));
        }
    }

    /// <summary>The gradients a fused op records (<paramref name="grads"/>(true)) equal those of its composition written out
    /// (<paramref name="grads"/>(false)), bit for bit.</summary>
    private static void SameGradients(Func<bool, float[][]> grads)
    {
        var fused = grads(true);
        var composed = grads(false);
        Assert.Equal(composed.Length, fused.Length);
        for (int i = 0; i < composed.Length; i++)
            Assert.Equal(composed[i], fused[i]);
    }
}

public sealed class ConvFamily : IKernelFamily { public static string Name => "conv"; }

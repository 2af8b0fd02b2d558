using GpuNet.Tests;
using Xunit;

namespace GpuNet.Runtime.Tests;

public sealed class TensorTests
{
    private static Device Cpu => TestDevices.Cpu;

    [Fact]
    public void RoundTripsHostData()
    {
        var data = new float[] { 1, 2, 3, 4, 5, 6 };
        using var t = Tensor.FromArray(Cpu, data, 2, 3);
        Assert.Equal(new[] { 2, 3 }, t.ShapeArray());
        Assert.Equal(new[] { 3, 1 }, t.Strides.ToArray());
        Assert.Equal(6, t.Length);
        Assert.True(t.IsContiguous);
        Assert.Equal(DType.Float32, t.DType);
        Assert.Equal(data, t.ToArray());
        var span = new float[6];
        t.CopyTo(span);
        Assert.Equal(data, span);
    }

    [Fact]
    public void DataLengthMustMatchShape()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => Tensor.FromArray(Cpu, new float[5], 2, 3));
        Assert.Equal("from_array", e.Op);
        Assert.Contains("6 elements", e.Message);
    }

    [Fact]
    public void NegativeDimensionIsRejected() =>
        Assert.Throws<ShapeMismatchException>(() => Tensor.Empty(Cpu, 2, -1));

    [Fact]
    public void ZerosAreZero()
    {
        using var t = Tensor.Zeros(Cpu, 7, 3);
        Assert.All(t.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void ReshapeSharesMemoryAndInfersMinusOne()
    {
        using var t = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using var r = t.Reshape(3, -1);
        Assert.Equal(new[] { 3, 2 }, r.ShapeArray());
        t.CopyFrom(new float[] { 6, 5, 4, 3, 2, 1 });
        Assert.Equal(new float[] { 6, 5, 4, 3, 2, 1 }, r.ToArray());
        Assert.Throws<ShapeMismatchException>(() => t.Reshape(4, 2));
        Assert.Throws<ShapeMismatchException>(() => t.Reshape(-1, -1));
    }

    [Fact]
    public void ReshapeOfStridedViewIsRejectedWhereItsElementsCannotTakeTheShape()
    {
        using var t = Tensor.FromArray(Cpu, new float[6], 2, 3);
        using var tt = t.Transpose(0, 1);
        var e = Assert.Throws<ShapeMismatchException>(() => tt.Reshape(6));
        Assert.Contains("Contiguous()", e.Message);
        // A slice of the last axis cannot merge its rows: they are not one run of memory.
        using var x = Tensor.FromArray(Cpu, new float[24], 2, 12);
        using var part = x.Slice(1, 4, 8);
        Assert.Throws<ShapeMismatchException>(() => part.Reshape(16));
    }

    [Fact]
    public void ReshapeOfStridedViewSplitsAndMergesRunsInPlace()
    {
        // [tokens, 3·heads·d] sliced to K's columns and split into heads: the view reads the same elements as a copy would.
        var data = Enumerable.Range(0, 5 * 24).Select(i => (float)i).ToArray();
        using var qkv = Tensor.FromArray(Cpu, data, 5, 1, 24);
        using var k = qkv.Slice(2, 8, 8);
        using var heads = k.Reshape(5, 2, 4);
        Assert.Equal(new[] { 24, 4, 1 }, heads.Strides.ToArray());
        using var copy = k.Contiguous();
        Assert.Equal(copy.ToArray(), heads.ToArray());
        qkv.CopyFrom(data.Select(v => -v).ToArray());
        Assert.Equal(copy.ToArray().Select(v => -v).ToArray(), heads.ToArray());   // a view, not a copy
        // Merging the dimensions of one run of a permuted tensor ([2, 3, 4] → [4, 2, 3] → [4, 6]) is a view too.
        using var t = Tensor.FromArray(Cpu, Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 2, 3, 4);
        using var p = t.Permute(2, 0, 1);
        using var merged = p.Reshape(4, 6);
        Assert.Equal(new[] { 1, 4 }, merged.Strides.ToArray());
        using var pc = p.Contiguous();
        Assert.Equal(pc.ToArray(), merged.ToArray());
        // Size-1 dimensions anywhere and an empty tensor take any shape.
        using var ones = k.Reshape(5, 1, 2, 1, 4);
        Assert.Equal(heads.ToArray(), ones.ToArray());
        using var empty = Tensor.Zeros(Cpu, 0, 6);
        using var emptyView = empty.Transpose(0, 1).Reshape(3, 0, 2);
        Assert.Equal(0, emptyView.Length);
    }

    [Fact]
    public void SliceTransposePermuteExpandReadCorrectly()
    {
        var data = Enumerable.Range(0, 24).Select(i => (float)i).ToArray();
        using var t = Tensor.FromArray(Cpu, data, 2, 3, 4);

        using var s = t.Slice(2, 1, 2);
        Assert.False(s.IsContiguous);
        Assert.Equal(new float[] { 1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22 }, s.ToArray());

        using var p = t.Permute(2, 0, 1);
        Assert.Equal(new[] { 4, 2, 3 }, p.ShapeArray());
        var pv = p.ToArray();
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++)
                    Assert.Equal(data[i * 12 + j * 4 + k], pv[k * 6 + i * 3 + j]);

        using var tr = t.Transpose();
        Assert.Equal(new[] { 2, 4, 3 }, tr.ShapeArray());
        Assert.Equal(4f, tr.ToArray()[1]);

        using var row = Tensor.FromArray(Cpu, new float[] { 1, 2, 3 }, 1, 3);
        using var e = row.Expand(2, 2, 3);
        Assert.Equal(new float[] { 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3 }, e.ToArray());
        Assert.Throws<ShapeMismatchException>(() => row.Expand(2, 4));
    }

    [Fact]
    public void InvalidViewsAreRejected()
    {
        using var t = Tensor.Zeros(Cpu, 2, 3);
        Assert.Throws<ShapeMismatchException>(() => t.Slice(1, 2, 2));
        Assert.Throws<ShapeMismatchException>(() => t.Slice(5, 0, 1));
        Assert.Throws<ShapeMismatchException>(() => t.Permute(0, 0));
        Assert.Throws<ShapeMismatchException>(() => t.Permute(0));
    }

    [Fact]
    public void ViewOutlivesDisposedBase()
    {
        var t = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, 4 }, 2, 2);
        using var v = t.Transpose(0, 1);
        t.Dispose();
        Assert.Equal(new float[] { 1, 3, 2, 4 }, v.ToArray());
    }

    [Fact]
    public void UseAfterDisposeNamesTheOp()
    {
        var t = Tensor.Zeros(Cpu, 3);
        t.Dispose();
        var e = Assert.Throws<TensorDisposedException>(() => t.ToArray());
        Assert.Equal("copy_to", e.Op);
        Assert.Throws<TensorDisposedException>(() => t.Reshape(3));
        t.Dispose(); // twice is harmless
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cpu-sim")]
    public void RandomIsSeededAndDeviceIndependent(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var a = Tensor.RandomUniform(device, new[] { 1000 }, 42, -2, 3);
        using var b = Tensor.RandomUniform(device, new[] { 1000 }, 42, -2, 3);
        using var c = Tensor.RandomUniform(device, new[] { 1000 }, 43, -2, 3);
        var va = a.ToArray();
        Assert.Equal(va, b.ToArray());
        Assert.NotEqual(va, c.ToArray());
        Assert.All(va, v => Assert.InRange(v, -2f, 3f));
        // The stream spelled out here, not by the production fill: element i is word i mod 4 of the block at counter
        // (i / 4, 0, 0, 0) with key (seed, 0) — the block function itself is held to Random123's vectors below — and the
        // word's top 24 bits scaled to [0, 1), then to [low, high).
        var expected = new float[1000];
        for (int i = 0; i < expected.Length; i++)
        {
            var block = Philox.Block((uint)(i / 4), 0, 0, 0, 42, 0);
            uint word = (i % 4) switch { 0 => block.X0, 1 => block.X1, 2 => block.X2, _ => block.X3 };
            expected[i] = -2f + 5f * (float)((word >> 8) / 16777216.0);
        }
        Assert.Equal(expected, va);
    }

    [Fact]
    public void RandomDistributionsHaveTheirMoments()
    {
        const int n = 200_000;
        using var u = Tensor.RandomUniform(Cpu, new[] { n }, 7);
        using var g = Tensor.RandomNormal(Cpu, new[] { n }, 7, 1.5f, 2f);
        var uv = u.ToArray();
        var gv = g.ToArray();
        double um = uv.Average(v => (double)v), gm = gv.Average(v => (double)v);
        double uvar = uv.Average(v => (v - um) * (v - um)), gsd = Math.Sqrt(gv.Average(v => (v - gm) * (v - gm)));
        // Standard errors at n = 2e5: mean(U) 6.5e-4, var(U) 1.3e-4 (rel. to 1/12), mean(N) 4.5e-3, sd(N) 3.2e-3: bounds are ~8 σ.
        Assert.InRange(um, 0.5 - 0.005, 0.5 + 0.005);
        Assert.InRange(uvar, 1 / 12.0 - 0.001, 1 / 12.0 + 0.001);
        Assert.InRange(gm, 1.5 - 0.04, 1.5 + 0.04);
        Assert.InRange(gsd, 2 - 0.03, 2 + 0.03);
    }

    [Fact]
    public void PhiloxMatchesPublishedKnownAnswer()
    {
        // Random123's kat_vectors: philox4x32_10 with counter 0 and key 0.
        var x = Philox.Block(0, 0, 0, 0, 0, 0);
        Assert.Equal((0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u), (x.X0, x.X1, x.X2, x.X3));
        // counter all ones, key all ones
        var y = Philox.Block(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff);
        Assert.Equal((0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu), (y.X0, y.X1, y.X2, y.X3));
    }
}

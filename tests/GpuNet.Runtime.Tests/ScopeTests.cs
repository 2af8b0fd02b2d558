using Xunit;

namespace GpuNet.Runtime.Tests;

public sealed class ScopeTests
{
    [Fact]
    public void ScopeDisposesTemporariesButKeepsKept()
    {
        using var d = Device.Open("cpu");
        Tensor kept, temp, view;
        using (var scope = d.Scope())
        {
            temp = Tensor.Zeros(d, 10);
            view = temp.Reshape(2, 5);
            kept = scope.Keep(Tensor.Zeros(d, 3));
            Assert.Equal(2, scope.Count);
        }
        Assert.True(temp.IsDisposed);
        Assert.True(view.IsDisposed);
        Assert.False(kept.IsDisposed);
        kept.Dispose();
        Assert.Equal(0, d.Pool.Stats.BytesInUse);
    }

    [Fact]
    public void NestedScopesHandKeptTensorsOutward()
    {
        using var d = Device.Open("cpu");
        Tensor inner;
        using (var outer = d.Scope())
        {
            using (var s = d.Scope())
                inner = s.Keep(Tensor.Zeros(d, 4));
            Assert.False(inner.IsDisposed);
            Assert.Equal(1, outer.Count);
        }
        Assert.True(inner.IsDisposed);
    }

    [Fact]
    public void ExplicitDisposeInsideScopeIsFine()
    {
        using var d = Device.Open("cpu");
        using (var s = d.Scope())
        {
            var t = Tensor.Zeros(d, 4);
            t.Dispose();
            Assert.Equal(0, s.Count);
        }
        Assert.Equal(0, d.Pool.Stats.BytesInUse);
    }
}

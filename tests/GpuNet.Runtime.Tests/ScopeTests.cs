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

    /// <summary>A scope keeps a short list and turns it into a hash set past 32 tensors: ownership, Keep, Escape and explicit
    /// disposal behave the same on both sides of the switch.</summary>
    [Theory]
    [InlineData(5)]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(200)]
    public void OwnershipHoldsForSmallAndLargeScopes(int count)
    {
        using var d = Device.Open("cpu");
        var made = new List<Tensor>();
        Tensor kept, escaped;
        using (var outer = d.Scope())
        {
            using (var s = d.Scope())
            {
                for (int i = 0; i < count; i++)
                    made.Add(Tensor.Zeros(d, 2));
                kept = s.Keep(made[count / 2]);
                escaped = TensorScope.Escape(made[0]);
                made[^1].Dispose();
                Assert.Equal(count - (count > 2 ? 3 : 2), s.Count);
            }
            Assert.Equal(1, outer.Count);
            Assert.False(kept.IsDisposed);
        }
        Assert.True(kept.IsDisposed);
        Assert.False(escaped.IsDisposed);
        Assert.All(made.Where(t => !ReferenceEquals(t, escaped)), t => Assert.True(t.IsDisposed));
        escaped.Dispose();
        Assert.Equal(0, d.Pool.Stats.BytesInUse);
    }
}

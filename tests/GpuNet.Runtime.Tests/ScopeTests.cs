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

    [Fact]
    public void ClosedScopesLeaveNothingBehindForTheNextOnes()
    {
        // Closed scopes hand their (emptied) sets to the next scopes of the thread: a new scope starts empty and owns only
        // what is made inside it; a closed scope counts nothing and keeps nothing.
        using var d = Device.Open("cpu");
        TensorScope first;
        using (first = d.Scope())
            Tensor.Zeros(d, 4);
        Assert.Equal(0, first.Count);
        var late = Tensor.Zeros(d, 2);
        Assert.Same(late, first.Keep(late));
        Assert.False(late.IsDisposed);
        Tensor made;
        using (var second = d.Scope())
        {
            Assert.Equal(0, second.Count);
            made = Tensor.Zeros(d, 3);
            Assert.Equal(1, second.Count);
        }
        Assert.True(made.IsDisposed);
        late.Dispose();
        Assert.Equal(0, d.Pool.Stats.BytesInUse);
    }

    [Fact]
    public void AScopeClosedOnAnotherThreadDoesNotBreakItsOpener()
    {
        // An async caller may open a scope on one thread and close it on another: the opener's thread keeps making tensors
        // (they are no longer collected by that scope, as before) without an exception.
        using var d = Device.Open("cpu");
        var scope = d.Scope();
        var other = new Thread(scope.Dispose);
        other.Start();
        other.Join();
        using var t = Tensor.Zeros(d, 5);
        Assert.False(TensorScope.IsTemporary(t));
        Assert.Equal(0, scope.Count);
    }
}

using Xunit;

namespace GpuNet.Runtime.Tests;

/// <summary>
/// <see cref="MemoryArena"/>: a recorded run's buffers placed by lifetime and handed out again by position. Every tensor a
/// run makes is filled with values of its own and checked before it is freed, so two live tensors placed on the same bytes
/// fail the test; tensors that leave a run are checked after later runs.
/// </summary>
public sealed class MemoryArenaTests
{
    /// <summary>A model-like run: a chain of intermediates of several sizes, each freed after the next is made, a value kept
    /// across two steps, and one output of size <paramref name="outputLength"/> that leaves the run.</summary>
    private static Tensor Run(Device d, MemoryArena arena, int seed, int outputLength = 300, bool keepOne = false, List<Tensor>? kept = null)
    {
        using var scope = arena.Begin();
        int[] lengths = [1000, 700, 2500, 64, 1000, 4000, 90];
        var live = new List<(Tensor T, float[] Data)>();
        (Tensor, float[]) Make(int n, int tag)
        {
            var data = Expected(seed, n, tag);
            return (Tensor.FromArray(d, data, n), data);
        }
        var skip = Make(333, 99); // lives through the whole chain
        for (int k = 0; k < lengths.Length; k++)
        {
            live.Add(Make(lengths[k], k));
            if (live.Count > 2)
            {
                var (t, data) = live[0];
                live.RemoveAt(0);
                Assert.Equal(data, t.ToArray());
                if (keepOne && k == 4)
                    kept!.Add(t);
                else
                    t.Dispose();
            }
        }
        foreach (var (t, data) in live.Append(skip))
        {
            Assert.Equal(data, t.ToArray());
            t.Dispose();
        }
        var (output, _) = Make(outputLength, 7);
        return output;
    }

    private static float[] Expected(int seed, int n, int tag) => Enumerable.Range(0, n).Select(i => seed * 1000f + tag * 10f + i % 7).ToArray();

    [Theory]
    [InlineData("cpu")]
    [InlineData("cpu-sim")]
    public void ReplayedRunsTakeTheirBuffersFromTheArenaAndKeepOutputsIntact(string device)
    {
        using var d = Device.Open(device);
        using var arena = d.Pool.CreateArena();
        // The first run is not recorded (it would make what later runs find made); the second is.
        var outputs = new List<Tensor> { Run(d, arena, 1) };
        Assert.Equal(0, arena.Plans);
        outputs.Add(Run(d, arena, 2));
        Assert.Equal(1, arena.Plans);
        // Seven chained buffers and one alive throughout: the arena is smaller than their sum.
        long sum = new[] { 1000, 700, 2500, 64, 1000, 4000, 90, 333 }.Sum(n => MemoryPool.SizeClass(n * 4L));
        Assert.InRange(arena.Bytes, MemoryPool.SizeClass(4000 * 4), sum - 1);
        var before = d.Pool.Stats;
        for (int seed = 3; seed <= 6; seed++)
            outputs.Add(Run(d, arena, seed));
        var after = d.Pool.Stats;
        Assert.Equal(4, arena.Replays);
        Assert.Equal(1, arena.Plans);
        // The pool allocated only for the four outputs held meanwhile.
        Assert.Equal(4, after.DeviceAllocations - before.DeviceAllocations);
        // The outputs came from the pool, not the arena the later runs wrote over.
        for (int i = 0; i < outputs.Count; i++)
        {
            Assert.Equal(Expected(i + 1, 300, 7), outputs[i].ToArray());
            outputs[i].Dispose();
        }
    }

    [Fact]
    public void ARunOfOtherSizesFallsBackToThePoolAndIsPlannedAgain()
    {
        using var d = Device.Open("cpu");
        using var arena = d.Pool.CreateArena();
        for (int seed = 1; seed <= 3; seed++)
            Run(d, arena, seed).Dispose();
        Assert.Equal(1, arena.Replays);
        // The output's size class differs from the recorded one: that request and the rest of the run use the pool.
        using (var other = Run(d, arena, 4, outputLength: 5000))
            Assert.Equal(Expected(4, 5000, 7), other.ToArray());
        Assert.Equal(1, arena.Replays);
        Run(d, arena, 5, outputLength: 5000).Dispose();
        Assert.Equal(2, arena.Plans);
        Run(d, arena, 6, outputLength: 5000).Dispose();
        Assert.Equal(2, arena.Replays);
    }

    [Fact]
    public void AnIntermediateKeptPastItsRunKeepsItsBytes()
    {
        using var d = Device.Open("cpu");
        using var arena = d.Pool.CreateArena();
        Run(d, arena, 1).Dispose();
        Run(d, arena, 2).Dispose();
        var kept = new List<Tensor>();
        Run(d, arena, 3, keepOne: true, kept: kept).Dispose();
        Assert.Single(kept);
        // Still held when its run ended: the arena is retired (its bytes stay with the held tensor) and planned again.
        for (int seed = 4; seed <= 6; seed++)
            Run(d, arena, seed).Dispose();
        Assert.Equal(2, arena.Plans);
        Assert.Equal(Expected(3, 2500, 2), kept[0].ToArray());
        kept[0].Dispose();
        Run(d, arena, 7).Dispose();
    }

    [Fact]
    public void RunsOnTwoThreadsAtOnceStayApart()
    {
        using var d = Device.Open("cpu");
        using var arena = d.Pool.CreateArena();
        Run(d, arena, 1).Dispose();
        Run(d, arena, 2).Dispose();
        // One thread holds the arena while the other's runs, finding it busy, use the pool; every tensor is checked.
        Exception? failure = null;
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            try
            {
                for (int i = 0; i < 200; i++)
                    using (var output = Run(d, arena, 10 + t))
                        Assert.Equal(Expected(10 + t, 300, 7), output.ToArray());
            }
            catch (Exception e)
            {
                failure = e;
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Null(failure);
        Assert.True(arena.Replays > 0);
    }

    [Fact]
    public void AnArenaDisposedDuringARunLetsTheRunFinish()
    {
        using var d = Device.Open("cpu");
        long inUse = d.Pool.Stats.BytesInUse;
        var arena = d.Pool.CreateArena();
        Run(d, arena, 1).Dispose();
        Run(d, arena, 2).Dispose();
        // A replayed run whose arena is disposed halfway (a model evicting it for another shape on another thread): its
        // slices stay valid until they are returned, and then the bytes go back to the pool.
        Tensor third;
        int arenaFloats = (int)(arena.Bytes / 4);
        using (arena.Begin())
        {
            var first = Tensor.FromArray(d, Expected(3, 333, 99), 333);
            var second = Tensor.FromArray(d, Expected(3, 1000, 0), 1000);
            arena.Dispose();
            third = Tensor.FromArray(d, Expected(3, 700, 1), 700);
            Assert.Equal(Expected(3, 333, 99), first.ToArray());
            Assert.Equal(Expected(3, 1000, 0), second.ToArray());
            first.Dispose();
            second.Dispose();
        }
        // The third slice outlives both the run and the arena: its bytes must not go back to the pool (and be handed out
        // again) before it does.
        var others = Enumerable.Range(0, 4).Select(k => Tensor.FromArray(d, Expected(9, arenaFloats, 5), arenaFloats)).ToList();
        Assert.Equal(Expected(3, 700, 1), third.ToArray());
        third.Dispose();
        others.ForEach(t => t.Dispose());
        Assert.Equal(inUse, d.Pool.Stats.BytesInUse);
    }

    [Fact]
    public void ADisposedArenaGivesItsBytesBack()
    {
        using var d = Device.Open("cpu");
        long inUse = d.Pool.Stats.BytesInUse;
        var arena = d.Pool.CreateArena();
        Run(d, arena, 1).Dispose();
        Run(d, arena, 2).Dispose();
        Assert.True(d.Pool.Stats.BytesInUse > inUse);
        arena.Dispose();
        Assert.Equal(inUse, d.Pool.Stats.BytesInUse);
        Assert.Throws<ObjectDisposedException>(() => arena.Begin());
    }
}

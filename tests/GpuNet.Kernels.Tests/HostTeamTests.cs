using GpuNet.Kernels.Cpu;
using Xunit;

namespace GpuNet.Kernels.Tests;

/// <summary>The fast CPU device's worker team (<see cref="HostTeam"/>): every item once, errors as thrown, no deadlock when
/// loops nest or several threads split loops at once.</summary>
public class HostTeamTests
{
    [Theory]
    [InlineData(1, 1, 2)]
    [InlineData(7, 7, 2)]
    [InlineData(1000, 8, 2)]
    [InlineData(1001, 3, 2)]
    [InlineData(5, 2, 4)]
    [InlineData(100, 16, 3)]
    public void Every_item_runs_exactly_once(int count, int chunks, int participants)
    {
        for (int round = 0; round < 200; round++)
        {
            var visits = new int[count];
            HostTeam.Run(count, chunks, participants, (start, end) =>
            {
                for (int i = start; i < end; i++)
                    Interlocked.Increment(ref visits[i]);
            });
            Assert.All(visits, v => Assert.Equal(1, v));
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(6)]
    public void No_chunk_of_a_loop_runs_after_the_loop_returned(int participants)
    {
        // Tiny loops back to back: the caller often runs every chunk before a worker sees the loop, and the worker then
        // finds it already replaced by the next one (more participants than cores: workers are often preempted mid-claim).
        // A chunk of an ended loop run late would see that loop's closed flag.
        const int rounds = 20000;
        var closed = new int[rounds];
        int late = 0, wrong = 0;
        for (int round = 0; round < rounds; round++)
        {
            int r = round, visited = 0;
            HostTeam.Run(2 * participants, 2 * participants, participants, (s, e) =>
            {
                if (Volatile.Read(ref closed[r]) != 0)
                    Interlocked.Increment(ref late);
                Interlocked.Add(ref visited, e - s);
            });
            Volatile.Write(ref closed[r], 1);
            if (visited != 2 * participants)
                wrong++;
        }
        Thread.Sleep(20);
        Assert.Equal(0, Volatile.Read(ref late));
        Assert.Equal(0, wrong);
    }

    [Fact]
    public void Chunks_are_contiguous_and_cover_the_range_in_order()
    {
        var ranges = new System.Collections.Concurrent.ConcurrentBag<(int Start, int End)>();
        HostTeam.Run(10, 4, 2, (s, e) => ranges.Add((s, e)));
        var sorted = ranges.OrderBy(r => r.Start).ToArray();
        Assert.Equal(new[] { (0, 2), (2, 5), (5, 7), (7, 10) }, sorted);
    }

    [Fact]
    public void A_chunk_error_reaches_the_caller_as_thrown_after_every_started_chunk_ended()
    {
        int finished = 0;
        var error = Assert.Throws<InvalidOperationException>(() => HostTeam.Run(8, 8, 2, (s, e) =>
        {
            if (s == 5)
                throw new InvalidOperationException("chunk 5");
            Thread.Sleep(1);
            Interlocked.Increment(ref finished);
        }));
        Assert.Equal("chunk 5", error.Message);
        int after = Volatile.Read(ref finished);
        Thread.Sleep(20);
        Assert.Equal(after, Volatile.Read(ref finished));
        // The team is free again.
        int sum = 0;
        HostTeam.Run(4, 4, 2, (s, e) => Interlocked.Add(ref sum, e - s));
        Assert.Equal(4, sum);
    }

    [Fact]
    public void A_loop_split_inside_a_chunk_runs_on_that_chunks_thread()
    {
        int total = 0;
        HostTeam.Run(4, 4, 2, (s, e) =>
        {
            int thread = Environment.CurrentManagedThreadId;
            HostTeam.Run(10, 5, 2, (s2, e2) =>
            {
                Assert.Equal(thread, Environment.CurrentManagedThreadId);
                Interlocked.Add(ref total, e2 - s2);
            });
        });
        Assert.Equal(40, total);
    }

    [Fact]
    public void Threads_splitting_loops_at_once_all_finish_with_every_item_once()
    {
        const int threads = 4, rounds = 300, count = 257;
        var failures = 0;
        var runners = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
        {
            for (int r = 0; r < rounds; r++)
            {
                var visits = new int[count];
                HostTeam.Run(count, 8, 2, (s, e) =>
                {
                    for (int i = s; i < e; i++)
                        Interlocked.Increment(ref visits[i]);
                });
                if (visits.Any(v => v != 1))
                    Interlocked.Increment(ref failures);
            }
        })).ToArray();
        foreach (var t in runners)
            t.Start();
        foreach (var t in runners)
            Assert.True(t.Join(TimeSpan.FromMinutes(2)), "a thread splitting loops did not finish");
        Assert.Equal(0, failures);
    }

    [Fact]
    public void A_worker_that_slept_is_woken_for_the_next_loop()
    {
        // A pause longer than the spin parks the worker; the next loop's second chunk (the caller sleeps 50 ms in the first)
        // must then run on the woken worker. A lost wake-up would leave every round on the caller alone.
        int twoThreadRounds = 0;
        for (int round = 0; round < 5; round++)
        {
            Thread.Sleep(10);
            var threadsSeen = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
            HostTeam.Run(2, 2, 2, (s, e) =>
            {
                threadsSeen[Environment.CurrentManagedThreadId] = true;
                Thread.Sleep(50);
            });
            if (threadsSeen.Count == 2)
                twoThreadRounds++;
        }
        Assert.True(twoThreadRounds >= 1, "no loop after a pause ran on a worker");
    }
}

using GpuNet;

namespace GpuNet.Tests;

/// <summary>
/// Runs a test assembly's simulated-GPU work ahead of its tests, on <see cref="Device.CpuThreads"/> worker threads that each
/// own a simulator (pinned to a core of its own, see <see cref="Device.SimulatorCore"/>); a test asks for its item's result
/// and waits for it, and an item asked for before a worker reached it goes next. xunit runs a test assembly's tests one at a
/// time, and a simulator keeps one core busy, so without this the simulator cases used one of the two cores while the
/// other idled. Every item still reports in its own test, with its own result.
/// </summary>
/// <typeparam name="TResult">What one item's run returns (exceptions are caught and rethrown to the test that asks).</typeparam>
public sealed class SimulatorQueue<TResult>
{
    private readonly Func<Device, string, TResult> _run;
    private readonly Dictionary<string, TaskCompletionSource<TResult>> _results = new();
    private readonly LinkedList<string> _pending = new();
    private readonly Dictionary<string, LinkedListNode<string>> _nodes = new();

    /// <summary>Starts the workers on <paramref name="keys"/> in order (duplicates are run once).</summary>
    public SimulatorQueue(IEnumerable<string> keys, Func<Device, string, TResult> run)
    {
        _run = run;
        foreach (var key in keys)
            if (!_results.ContainsKey(key))
            {
                _results[key] = new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously);
                _nodes[key] = _pending.AddLast(key);
            }
        for (int i = 0; i < Math.Max(1, Device.CpuThreads); i++)
            new Thread(Work) { IsBackground = true, Name = $"simulator queue {i}" }.Start();
    }

    /// <summary>The result of <paramref name="key"/>, waiting for it (and moving it to the front when no worker took it yet).</summary>
    /// <exception cref="ArgumentException"><paramref name="key"/> was not given to the constructor.</exception>
    public TResult Get(string key)
    {
        if (!_results.TryGetValue(key, out var result))
            throw new ArgumentException($"'{key}' is not queued for the simulator", nameof(key));
        lock (_pending)
        {
            if (_nodes.Remove(key, out var node))
            {
                _pending.Remove(node);
                _nodes[key] = _pending.AddFirst(key);
            }
        }
        return result.Task.GetAwaiter().GetResult();
    }

    private void Work()
    {
        // A worker's simulator is opened on, and only ever driven from, its own thread.
        Device device;
        try
        {
            device = Device.Open("cpu-sim");
        }
        catch (Exception e)
        {
            // No simulator: every item still waiting fails with the reason, none hangs.
            lock (_pending)
            {
                foreach (var key in _pending)
                    _results[key].TrySetException(e);
                _pending.Clear();
                _nodes.Clear();
            }
            return;
        }
        using var owned = device;
        while (true)
        {
            string key;
            lock (_pending)
            {
                if (_pending.First is not { } first)
                    return;
                key = first.Value;
                _pending.RemoveFirst();
                _nodes.Remove(key);
            }
            try
            {
                _results[key].SetResult(_run(device, key));
            }
            catch (Exception e)
            {
                _results[key].SetException(e);
            }
        }
    }
}

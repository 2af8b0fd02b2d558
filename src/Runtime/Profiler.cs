using System.Text;
using ILGPU.Runtime;

namespace GpuNet;

/// <summary>What the profiler measured for one op.</summary>
/// <param name="Op">The op name given at launch (e.g. <c>matmul</c>).</param>
/// <param name="Launches">Timed launches.</param>
/// <param name="TotalMs">Device time of all launches, in milliseconds.</param>
/// <param name="CompileMs">Compile (load) time of the kernels it used, in milliseconds.</param>
public sealed record OpProfile(string Op, int Launches, double TotalMs, double CompileMs)
{
    /// <summary>Mean device time per launch, in milliseconds.</summary>
    public double MeanMs => Launches == 0 ? 0 : TotalMs / Launches;
}

/// <summary>
/// Optional per-op profiler. When <see cref="Enabled"/>, every launch is bracketed by device
/// profiling markers (CUDA events on CUDA), so the times are device time, not host time of
/// asynchronous work. Markers are resolved lazily by <see cref="Report"/>.
/// </summary>
public sealed class Profiler
{
    private readonly Device _device;
    private readonly List<(string Op, ProfilingMarker Start, ProfilingMarker End)> _pending = new();
    private readonly Dictionary<string, (int Launches, double TotalMs)> _times = new();
    private readonly Dictionary<string, double> _compileMs = new();

    internal Profiler(Device device) => _device = device;

    /// <summary>Turns timing of launches on or off (off by default: markers cost a little).</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Brackets one launch of <paramref name="op"/>. Dispose the returned region right after the
    /// launch call (use <c>using</c>). Does nothing while the profiler is disabled.
    /// </summary>
    public Region Measure(string op) =>
        Enabled ? new Region(this, op, _device.Accelerator.AddProfilingMarker()) : default;

    internal void RecordCompile(string kernel, TimeSpan elapsed)
    {
        lock (_compileMs)
            _compileMs[kernel] = _compileMs.GetValueOrDefault(kernel) + elapsed.TotalMilliseconds;
    }

    /// <summary>Compile time per kernel method, in milliseconds (recorded whether or not <see cref="Enabled"/>).</summary>
    public IReadOnlyDictionary<string, double> CompileTimes
    {
        get
        {
            lock (_compileMs)
                return new Dictionary<string, double>(_compileMs);
        }
    }

    /// <summary>Synchronizes the device and returns the per-op totals, slowest first.</summary>
    public IReadOnlyList<OpProfile> Report()
    {
        _device.Synchronize();
        foreach (var (op, start, end) in _pending)
        {
            double ms = (end - start).TotalMilliseconds;
            var (n, total) = _times.GetValueOrDefault(op);
            _times[op] = (n + 1, total + ms);
            start.Dispose();
            end.Dispose();
        }
        _pending.Clear();
        var compile = CompileTimes;
        return _times
            .Select(kv => new OpProfile(kv.Key, kv.Value.Launches, kv.Value.TotalMs, 0))
            .Concat(compile.Select(kv => new OpProfile("compile " + kv.Key, 0, 0, kv.Value)))
            .OrderByDescending(p => p.TotalMs + p.CompileMs)
            .ToList();
    }

    /// <summary>The report as an aligned text table.</summary>
    public string Table()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{"op",-48} {"launches",9} {"total ms",11} {"mean ms",10} {"compile ms",11}");
        foreach (var p in Report())
            sb.AppendLine($"{p.Op,-48} {p.Launches,9} {p.TotalMs,11:0.###} {p.MeanMs,10:0.####} {p.CompileMs,11:0.#}");
        return sb.ToString();
    }

    /// <summary>Forgets the launch times measured so far (compile times stay).</summary>
    public void Reset()
    {
        _device.Synchronize();
        foreach (var (_, s, e) in _pending)
        {
            s.Dispose();
            e.Dispose();
        }
        _pending.Clear();
        _times.Clear();
    }

    /// <summary>A timed launch; disposing it records the end marker.</summary>
    public readonly struct Region : IDisposable
    {
        private readonly Profiler? _owner;
        private readonly string _op;
        private readonly ProfilingMarker? _start;

        internal Region(Profiler owner, string op, ProfilingMarker start)
        {
            _owner = owner;
            _op = op;
            _start = start;
        }

        /// <summary>Records the end marker.</summary>
        public void Dispose()
        {
            if (_owner is null || _start is null)
                return;
            _owner._pending.Add((_op, _start, _owner._device.Accelerator.AddProfilingMarker()));
        }
    }
}

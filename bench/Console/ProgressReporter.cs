using System.Diagnostics;
using Spectre.Console;

namespace GpuNet.Bench;

/// <summary>
/// Progress of a verb's long loop (cases, models, steps): on a terminal a live Spectre.Console bar with the current item,
/// elapsed time and time left; when output is redirected (CI logs, pipes) plain lines on stderr — the first item, then at
/// most one every <see cref="PlainInterval"/>, so a log shows the run moving without a line per case. Lines the loop wants
/// to print while the bar is live go through <see cref="Note"/> so they land above it.
/// </summary>
public sealed class ProgressReporter
{
    /// <summary>How often the plain (redirected) form reports.</summary>
    public static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(10);

    private readonly string _title;
    private readonly int _total;
    private readonly ProgressTask? _task;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _lastPlain = TimeSpan.MinValue;
    private int _done;

    private ProgressReporter(string title, int total, ProgressTask? task) => (_title, _total, _task) = (title, total, task);

    /// <summary>True when stdout and stderr are a terminal that can redraw a live display.</summary>
    public static bool Live => !Console.IsOutputRedirected && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="body"/> with a reporter over <paramref name="total"/> items and returns what it returns.</summary>
    public static T Run<T>(string title, int total, Func<ProgressReporter, T> body)
    {
        if (!Live)
            return body(new ProgressReporter(title, total, null));
        return AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                     new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx => body(new ProgressReporter(title, total, ctx.AddTask(Markup.Escape(title), true, Math.Max(total, 1)))));
    }

    /// <summary>Starts item <paramref name="label"/> (call before the work; the previous item counts as done).</summary>
    public void Next(string label)
    {
        int index = _done + 1;
        if (_task is not null)
        {
            _task.Description = Markup.Escape($"{_title} [{index}/{_total}] {label}");
            _task.Value = _done;
        }
        else if (_lastPlain == TimeSpan.MinValue || _clock.Elapsed - _lastPlain >= PlainInterval)
        {
            _lastPlain = _clock.Elapsed;
            Console.Error.WriteLine($"{_title} [{index}/{_total}] {label} — {Format(_clock.Elapsed)} elapsed{Remaining()}");
        }
        _done = index;
    }

    /// <summary>A line printed while the loop runs (above the live bar on a terminal, on stdout otherwise).</summary>
    public void Note(string line)
    {
        if (_task is not null)
            AnsiConsole.WriteLine(line);
        else
            Console.WriteLine(line);
    }

    /// <summary>Wall time since the reporter started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    private string Remaining()
    {
        int finished = _done;
        if (finished == 0 || _total <= finished)
            return "";
        var left = TimeSpan.FromTicks(_clock.Elapsed.Ticks / finished * (_total - finished));
        return $", about {Format(left)} left";
    }

    /// <summary>A duration as a person reads it: 4.2 s, 3 min 10 s, 1 h 5 min.</summary>
    public static string Format(TimeSpan t) => t.TotalSeconds switch
    {
        < 60 => $"{t.TotalSeconds:0.0} s",
        < 3600 => $"{(int)t.TotalMinutes} min {t.Seconds} s",
        _ => $"{(int)t.TotalHours} h {t.Minutes} min",
    };
}

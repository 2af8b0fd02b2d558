using Spectre.Console;

namespace GpuNet.Bench;

/// <summary>
/// A results table: header and rows of text. On a terminal it renders as a Spectre.Console table; written anywhere else
/// (a pipe, a file, a test's writer) as aligned plain text — header, a rule, rows — that greps and diffs cleanly.
/// </summary>
public sealed class Table(params string[] header)
{
    private readonly List<string[]> _rows = new();

    public void Add(params string[] cells) => _rows.Add(cells);

    public void Print(TextWriter w)
    {
        if (ReferenceEquals(w, Console.Out) && ProgressReporter.Live)
        {
            var table = new Spectre.Console.Table { Border = Spectre.Console.TableBorder.Simple };
            foreach (var h in header)
                table.AddColumn(Spectre.Console.Markup.Escape(h));
            foreach (var r in _rows)
                table.AddRow(r.Select(c => Spectre.Console.Markup.Escape(c)).ToArray());
            Spectre.Console.AnsiConsole.Write(table);
            return;
        }
        var widths = header.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) => c.PadRight(widths[i]))).TrimEnd();
        w.WriteLine(Line(header));
        w.WriteLine(string.Join("  ", widths.Select(n => new string('-', n))));
        foreach (var r in _rows)
            w.WriteLine(Line(r));
    }
}

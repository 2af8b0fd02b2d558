namespace GpuNet.Bench;

/// <summary>An aligned text table: header, a rule, rows.</summary>
public sealed class Table(params string[] header)
{
    private readonly List<string[]> _rows = new();

    public void Add(params string[] cells) => _rows.Add(cells);

    public void Print(TextWriter w)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        string Line(string[] cells) => string.Join("  ", cells.Select((c, i) => c.PadRight(widths[i]))).TrimEnd();
        w.WriteLine(Line(header));
        w.WriteLine(string.Join("  ", widths.Select(n => new string('-', n))));
        foreach (var r in _rows)
            w.WriteLine(Line(r));
    }
}

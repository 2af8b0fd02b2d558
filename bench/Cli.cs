namespace GpuNet.Bench;

/// <summary>Parsed command line: a verb, its options (--name value...), and flags.</summary>
public sealed class Cli
{
    private readonly Dictionary<string, List<string>> _options = new();

    private Cli(string verb) => Verb = verb;

    public string Verb { get; }

    /// <summary>
    /// Parses <c>VERB [--opt value...]...</c>. <paramref name="spec"/> names each allowed option and
    /// whether it takes values ("many": one or more values, "one": exactly one, "flag": none).
    /// </summary>
    public static Cli Parse(string[] args, IReadOnlyDictionary<string, string> spec)
    {
        var cli = new Cli(args[0]);
        for (int i = 1; i < args.Length; i++)
        {
            string a = args[i];
            if (!a.StartsWith("--") || !spec.TryGetValue(a[2..], out var kind))
                throw new UsageException($"unknown argument '{a}' for '{cli.Verb}'");
            var values = cli._options.TryGetValue(a[2..], out var v) ? v : cli._options[a[2..]] = new List<string>();
            if (kind == "flag")
                continue;
            int start = i;
            while (i + 1 < args.Length && !args[i + 1].StartsWith("--"))
            {
                values.Add(args[++i]);
                if (kind == "one")
                    break;
            }
            if (i == start)
                throw new UsageException($"'{a}' needs a value");
        }
        return cli;
    }

    public string? One(string name) => _options.TryGetValue(name, out var v) ? v.LastOrDefault() : null;

    public IReadOnlyList<string> Many(string name) =>
        _options.TryGetValue(name, out var v) ? v.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries)).ToList() : Array.Empty<string>();

    public bool Flag(string name) => _options.ContainsKey(name);

    /// <summary>The integer option <paramref name="name"/>, or <paramref name="fallback"/> when absent; below <paramref name="min"/> is a usage error.</summary>
    public int Int(string name, int fallback, int min = int.MinValue) =>
        One(name) is { } s ? (int.TryParse(s, out var v) && v >= min ? v
            : throw new UsageException($"--{name} takes {(min == 0 ? "a non-negative integer" : min == 1 ? "a positive integer" : "an integer")}")) : fallback;

    /// <summary>The number option <paramref name="name"/>, or <paramref name="fallback"/> when absent; with <paramref name="positive"/>, ≤ 0 is a usage error.</summary>
    public float Float(string name, float fallback, bool positive = false) =>
        One(name) is { } s ? (float.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var v) && (!positive || v > 0) ? v
            : throw new UsageException($"--{name} takes {(positive ? "a positive number" : "a number")}")) : fallback;
}

/// <summary>Bad command line: print usage and exit 2.</summary>
public sealed class UsageException(string message) : Exception(message);

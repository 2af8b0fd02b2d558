using System.CommandLine;

namespace GpuNet.Bench;

/// <summary>
/// What one verb's handler reads from its parsed command line (System.CommandLine did the parsing, typing and validation):
/// options by their name without dashes, positional arguments by name. A verb asks only for options it declared; asking
/// for another one reads as absent.
/// </summary>
public sealed class Cli(ParseResult result)
{
    private Option? Find(string name)
    {
        for (var c = result.CommandResult; c is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
            if (c.Command.Options.FirstOrDefault(o => o.Name == "--" + name) is { } option)
                return option;
        return null;
    }

    /// <summary>The command's name path, e.g. <c>train gpt</c>.</summary>
    public string Verb
    {
        get
        {
            var names = new List<string>();
            for (var c = result.CommandResult; c?.Parent is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
                names.Insert(0, c.Command.Name);
            return string.Join(" ", names);
        }
    }

    /// <summary>A typed option's value, or default when absent.</summary>
    public T? Value<T>(string name) => Find(name) is null ? default : result.GetValue<T>("--" + name);

    /// <summary>A string option's value, or null when absent.</summary>
    public string? One(string name) => Value<string>(name);

    /// <summary>A list option's values, commas splitting values too (<c>--kernel a,b --kernel c</c>).</summary>
    public IReadOnlyList<string> Many(string name) =>
        (Value<string[]>(name) ?? Array.Empty<string>()).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries)).ToList();

    /// <summary>An integer option, or <paramref name="fallback"/> when absent (its range is validated when parsed).</summary>
    public int Int(string name, int fallback) => Value<int?>(name) ?? fallback;

    /// <summary>A number option, or <paramref name="fallback"/> when absent (its range is validated when parsed).</summary>
    public float Float(string name, float fallback) => Value<float?>(name) ?? fallback;

    /// <summary>A positional argument's values.</summary>
    public IReadOnlyList<string> Arguments(string name) => result.GetValue<string[]>(name) ?? Array.Empty<string>();

    /// <summary>A single positional argument.</summary>
    public string Argument(string name) => result.GetValue<string>(name) ?? throw new UsageException($"missing {name}");
}

/// <summary>A command line that parsed but asks for something impossible: printed with a pointer to the verb's help, exit 2.</summary>
public sealed class UsageException(string message) : Exception(message);

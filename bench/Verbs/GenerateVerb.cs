namespace GpuNet.Bench;

/// <summary>The <c>generate</c> verb: the fixture GPT from token ids, or a character GPT from <c>train gpt</c> from text.</summary>
internal static class GenerateVerb
{
    /// <summary>Runs the verb; returns the exit code.</summary>
    public static int Run(Cli cli)
    {
        if (cli.One("weights") is { } weights)
            return GenerateText(cli, weights);
        if (cli.One("prompt") is not null)
            throw new UsageException("--prompt (text) needs --weights from 'train gpt'; the fixture GPT takes --prompt-ids");
        var prompt = cli.Many("prompt-ids").Select(s => int.TryParse(s, out var v) ? v : throw new UsageException($"--prompt-ids takes integers, got '{s}'")).ToArray();
        if (prompt.Length == 0)
            throw new UsageException("generate needs --prompt-ids (the fixture GPT) or --weights and --prompt (a GPT from 'train gpt')");
        int maxNew = cli.Int("max-new", 20), topK = cli.Int("top-k", 0), seed = cli.Int("seed", 0);
        float temperature = cli.Float("temperature", 1f), topP = cli.Float("top-p", 1f);
        using var device = Device.Open(cli.One("device"));
        using var f = GpuNet.Layers.SafeTensors.Open(ModelsVerb.FixturePath("gpt"));
        using var gpt = GpuNet.Layers.ModelZoo.Gpt(device, f);
        gpt.Load(f);
        gpt.Eval();
        _ = gpt.Generate(prompt, Math.Min(maxNew, 2), 0f); // JIT and first-use allocations outside the timing
        device.Synchronize();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var tokens = gpt.Generate(prompt, maxNew, temperature, topK, topP, (ulong)seed);
        device.Synchronize();
        double seconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"{string.Join(",", prompt)} | {string.Join(",", tokens.Skip(prompt.Length))}");
        PrintGenerationSummary(tokens.Length - prompt.Length, "tokens", seconds, device, temperature, topK, topP, seed, $"KV cache, prompt of {prompt.Length} tokens");
        return 0;
    }

    private static void PrintGenerationSummary(int generated, string unit, double seconds, Device device, float temperature, int topK, float? topP, int seed, string detail) =>
        Console.WriteLine($"{generated} new {unit} in {seconds * 1000:0.0} ms: {generated / Math.Max(seconds, 1e-9):0.0} {unit}/s on {device.Id} ({detail}); " +
                          $"sampling: {(temperature == 0 ? "greedy (temperature 0)" : $"temperature {temperature:G3}")}, top-k {(topK == 0 ? "off" : topK)}" +
                          (topP is { } p ? $", top-p {(p >= 1 ? "off" : p.ToString("G3"))}" : "") + $", seed {seed}");

    /// <summary>Continues a text prompt with a character-level GPT written by 'train gpt'.</summary>
    private static int GenerateText(Cli cli, string weights)
    {
        if (!File.Exists(weights))
            throw new UsageException($"generate: no weights file '{weights}'");
        if (cli.Many("prompt-ids").Count > 0)
            throw new UsageException("--prompt-ids is for the fixture GPT; with --weights give --prompt TEXT");
        if (cli.Value<float?>("top-p") is not null)
            throw new UsageException("--top-p is not supported by the character GPT's sampler; use --top-k");
        string prompt = cli.One("prompt") ?? throw new UsageException("generate --weights needs --prompt TEXT");
        float temperature = cli.Float("temperature", 0.8f);
        int maxNew = cli.Int("max-new", 200), topK = cli.Int("top-k", 0), seed = cli.Int("seed", 0);
        using var device = Device.Open(cli.One("device"));
        var (model, vocabulary) = GpuNet.Layers.CharGpt.Load(device, weights);
        using (model)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            string text;
            try
            {
                text = GpuNet.Layers.CharGpt.Continue(model, vocabulary, prompt, maxNew, temperature, topK, (ulong)seed);
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
            double seconds = sw.Elapsed.TotalSeconds;
            Console.WriteLine($"{prompt} | {text[prompt.Length..]}");
            PrintGenerationSummary(text.Length - prompt.Length, "characters", seconds, device, temperature, topK, null, seed, $"{Path.GetFileName(weights)}, context {model.Config.Context}");
        }
        return 0;
    }
}

using System.Diagnostics;
using System.Globalization;

namespace GpuNet.Layers;

/// <summary>A character-level tokenizer: every distinct character of a text is one token, in ordinal order.</summary>
public sealed class CharVocabulary
{
    private readonly Dictionary<char, int> _index;

    /// <summary>The vocabulary of <paramref name="characters"/> (duplicates ignored).</summary>
    public CharVocabulary(IEnumerable<char> characters)
    {
        Characters = characters.Distinct().OrderBy(c => c).ToArray();
        _index = Characters.Select((c, i) => (c, i)).ToDictionary(e => e.c, e => e.i);
    }

    /// <summary>The characters, token id = position.</summary>
    public char[] Characters { get; }

    /// <summary>Vocabulary size.</summary>
    public int Count => Characters.Length;

    /// <summary>Token ids of <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">A character is not in the vocabulary.</exception>
    public int[] Encode(string text) => text.Select(c => _index.TryGetValue(c, out int i) ? i
        : throw new ArgumentException($"char_vocabulary: '{c}' (U+{(int)c:X4}) is not in the vocabulary")).ToArray();

    /// <summary>The text of token ids.</summary>
    public string Decode(IEnumerable<int> ids) => new(ids.Select(i => Characters[i]).ToArray());

    /// <summary>The characters as a string of code points ("67,97,..."), for a weights file's metadata.</summary>
    public string Serialize() => string.Join(",", Characters.Select(c => ((int)c).ToString(CultureInfo.InvariantCulture)));

    /// <summary>Reads <see cref="Serialize"/>'s form.</summary>
    public static CharVocabulary Deserialize(string text) =>
        new(text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => (char)int.Parse(s, CultureInfo.InvariantCulture)));
}

/// <summary>
/// A GPT trained on characters (the seed's "train gpt"): random windows of a text, next-character cross-entropy, AdamW,
/// then generation from the trained weights. The weights file carries the sizes and the vocabulary in its metadata, so
/// <see cref="Load"/> rebuilds the model from it alone.
/// </summary>
public static class CharGpt
{
    /// <summary>Trains <paramref name="model"/> on <paramref name="text"/>: each step draws <paramref name="batch"/> windows of
    /// the model's context length (Philox, from <paramref name="seed"/>) and predicts every next character. Returns each step's loss.</summary>
    public static float[] Train(Gpt model, CharVocabulary vocabulary, string text, int steps, int batch = 16, float learningRate = 3e-3f,
        ulong seed = 0, Action<TrainProgress>? progress = null, int reportEvery = 10)
    {
        int length = model.Config.Context;
        var ids = vocabulary.Encode(text);
        if (ids.Length <= length + 1)
            throw new InvalidArgumentException("train_gpt", "text", $"more than the context + 1 = {length + 1} characters", $"{ids.Length}");
        var device = model.Device;
        model.Train();
        using var optimizer = new AdamW(model.Parameters(), learningRate, weightDecay: 0.01f);
        var losses = new float[steps];
        var input = new int[batch * length];
        var target = new float[batch * length];
        var clock = Stopwatch.StartNew();
        for (int step = 1; step <= steps; step++)
        {
            for (int b = 0; b < batch; b++)
            {
                int start = (int)(Philox.Word(seed + (ulong)step, b) % (uint)(ids.Length - length - 1));
                for (int t = 0; t < length; t++)
                {
                    input[b * length + t] = ids[start + t];
                    target[b * length + t] = ids[start + t + 1];
                }
            }
            using (var scope = device.Scope())
            {
                var logits = model.Forward(input, batch, length);
                var rows = logits.Reshape(batch * length, vocabulary.Count);
                var targets = Tensor.FromArray(device, target);
                var loss = Ops.CrossEntropy(rows, targets);
                loss.Backward();
                losses[step - 1] = loss.ToArray()[0];
            }
            Ops.ClipGradNorm(optimizer.Parameters.Select(p => p.Tensor.Grad).OfType<Tensor>().ToList(), 1f).Dispose();
            optimizer.Step();
            optimizer.ZeroGrad();
            if (progress is not null && (step % reportEvery == 0 || step == steps))
                progress(new TrainProgress(step, losses[step - 1], step / clock.Elapsed.TotalSeconds));
        }
        model.Eval();
        return losses;
    }

    /// <summary>Writes the weights with the sizes and the vocabulary as metadata.</summary>
    public static void Save(string path, Gpt model, CharVocabulary vocabulary)
    {
        var c = model.Config;
        SafeTensors.Save(path, model.StateDict(), new Dictionary<string, string>
        {
            ["vocab"] = c.Vocab.ToString(CultureInfo.InvariantCulture), ["context"] = c.Context.ToString(CultureInfo.InvariantCulture),
            ["d"] = c.Dim.ToString(CultureInfo.InvariantCulture), ["h"] = c.Heads.ToString(CultureInfo.InvariantCulture),
            ["layers"] = c.Layers.ToString(CultureInfo.InvariantCulture), ["chars"] = vocabulary.Serialize(),
        });
    }

    /// <summary>The model and vocabulary of a file written by <see cref="Save"/>, in eval mode.</summary>
    /// <exception cref="SafeTensorsFormatException">The file lacks the character vocabulary.</exception>
    public static (Gpt Model, CharVocabulary Vocabulary) Load(Device device, string path)
    {
        using var f = SafeTensors.Open(path);
        if (!f.Metadata.TryGetValue("chars", out var chars))
            throw new SafeTensorsFormatException(path, "no 'chars' metadata: not a character-level GPT written by train gpt");
        var model = ModelZoo.Gpt(device, f);
        model.Load(f);
        model.Eval();
        return (model, CharVocabulary.Deserialize(chars));
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> by <paramref name="characters"/> characters, sampling with temperature and top-k:
    /// within the context through the KV cache, beyond it on a sliding window of the last context-length characters.
    /// </summary>
    public static string Continue(Gpt model, CharVocabulary vocabulary, string prompt, int characters, float temperature = 0.8f, int topK = 0, ulong seed = 0)
    {
        var tokens = vocabulary.Encode(prompt).ToList();
        if (tokens.Count == 0)
            throw new ArgumentException("generate: the prompt is empty");
        int context = model.Config.Context;
        if (tokens.Count > context)
            tokens = tokens.GetRange(tokens.Count - context, context);
        int first = Math.Min(characters, context - tokens.Count);
        if (first > 0)
            tokens = model.Generate(tokens, first, temperature, topK, 1f, seed).ToList();
        using var _ = Autograd.NoGrad();
        for (int step = Math.Max(first, 0); step < characters; step++)
        {
            using var scope = model.Device.Scope();
            var window = tokens.Skip(tokens.Count - (context - 1)).ToArray();
            var logits = model.Forward(window, 1, window.Length);
            var last = logits.Select(0, 0).Slice(0, window.Length - 1, 1);
            tokens.Add((int)Ops.Sample(last, temperature, topK, 1f, seed + (ulong)step).ToArray()[0]);
        }
        return vocabulary.Decode(tokens);
    }
}

using Xunit;

namespace GpuNet.Bench.Tests;

/// <summary>
/// Every verb given bad paths and values, each in a fresh process as a user runs it: one line saying what was wrong, exit 2
/// (bad arguments, unreadable or foreign files), never a stack trace or the runtime's "Unhandled exception", and nothing
/// written before the arguments were checked.
/// </summary>
public sealed class CliErrorTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("gpunet-cli-errors-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static (int Code, string Out, string Err) Gpunet(params string[] args) => GpunetProcess.Run(null, args);

    public static IEnumerable<object[]> BadCommands()
    {
        // {0} is a fresh temporary folder; not-a-model.onnx holds text; short.txt three characters.
        string[][] cases =
        {
            new[] { "onnx", "test", "/nonexistent/cases" },
            new[] { "onnx", "test", "{0}/not-a-model.onnx" },
            new[] { "onnx", "info", "/nonexistent/model.onnx" },
            new[] { "onnx", "info", "{0}/not-a-model.onnx" },
            new[] { "onnx", "run", "/nonexistent/model.onnx", "--device", "cpu" },
            new[] { "onnx", "run", "{0}/not-a-model.onnx", "--device", "cpu" },
            new[] { "onnx", "run", "{0}/not-a-model.onnx", "--input", "x=/nonexistent.pb" },
            new[] { "train", "dnn", "--steps", "0", "--out", "{0}/dnn" },
            new[] { "train", "gpt", "--steps", "0", "--out", "{0}/gpt" },
            new[] { "train", "gpt", "--text", "{0}/short.txt", "--steps", "2", "--out", "{0}/gpt" },
            new[] { "train", "gpt", "--text", "/nonexistent.txt", "--out", "{0}/gpt" },
            new[] { "train", "dnn", "--steps", "2", "--out", "{0}/not-a-model.onnx/sub" },
            new[] { "train", "cnn", "--data", "/nonexistent", "--limit", "10", "--out", "{0}/cnn" },
            new[] { "train", "vae", "--data", "/nonexistent", "--limit", "10", "--out", "{0}/vae" },
            new[] { "train", "vae", "--classifier", "/nonexistent/cnn.safetensors", "--limit", "20", "--out", "{0}/vae" },
            new[] { "train", "vae", "--classifier", "{0}/not-a-model.onnx", "--limit", "20", "--out", "{0}/vae" },
            new[] { "train", "gan", "--data", "/nonexistent", "--limit", "10", "--out", "{0}/gan" },
            new[] { "train", "gan", "--classifier", "{0}/not-a-model.onnx", "--limit", "20", "--out", "{0}/gan" },
            new[] { "train", "ddpm", "--schedule", "quadratic", "--limit", "20", "--out", "{0}/ddpm" },
            new[] { "train", "ddpm", "--timesteps", "10", "--sample-steps", "20", "--limit", "20", "--out", "{0}/ddpm" },
            new[] { "train", "vqvae", "--ema", "1.5", "--limit", "20", "--out", "{0}/vqvae" },
            new[] { "train", "pixelcnn", "--limit", "20", "--out", "{0}/pixelcnn" },
            new[] { "train", "pixelcnn", "--vqvae", "{0}/not-a-model.onnx", "--limit", "20", "--out", "{0}/pixelcnn" },
            new[] { "train", "dit", "--patch", "5", "--limit", "20", "--out", "{0}/dit" },
            new[] { "train", "dit", "--width", "30", "--heads", "4", "--limit", "20", "--out", "{0}/dit" },
            new[] { "train", "dit", "--ema", "1", "--limit", "20", "--out", "{0}/dit" },
            new[] { "sample", "--out", "{0}/samples.png" },
            new[] { "sample", "--weights", "/nonexistent.safetensors", "--out", "{0}/samples.png" },
            new[] { "sample", "--weights", "{0}/not-a-model.onnx", "--out", "{0}/samples.png" },
            new[] { "compare", "/nonexistent/a.json", "/nonexistent/b.json" },
            new[] { "compare", "{0}/not-a-model.onnx", "{0}/not-a-model.onnx" },
            new[] { "generate", "--weights", "/nonexistent.safetensors", "--prompt", "x" },
            new[] { "generate", "--weights", "{0}/not-a-model.onnx", "--prompt", "x" },
            new[] { "run", "--onnx", "/nonexistent/model.onnx", "--device", "cpu" },
            new[] { "run", "--onnx", "{0}/not-a-model.onnx", "--device", "cpu" },
            new[] { "run", "--kernel", "relu", "--preset", "huge" },
            new[] { "ptx", "--out", "{0}/not-a-model.onnx/ptx", "--kernel", "relu" },
            new[] { "ptx", "--arch", "sm_1000", "--kernel", "relu" },
            new[] { "check", "--device", "nope" },
            new[] { "models", "--device", "cuda:7" },
        };
        return cases.Select(c => new object[] { string.Join(' ', c) });
    }

    [Theory]
    [MemberData(nameof(BadCommands))]
    public void ABadCommandIsOneLineAndExit2(string command)
    {
        File.WriteAllText(Path.Combine(_root, "not-a-model.onnx"), "not a model\n");
        File.WriteAllText(Path.Combine(_root, "short.txt"), "abc");
        var args = command.Split(' ').Select(a => a.Replace("{0}", _root)).ToArray();
        var (code, stdout, stderr) = Gpunet(args);
        string all = stdout + stderr;
        Assert.DoesNotContain("Unhandled exception", all);
        Assert.DoesNotMatch(@"\n\s+at \S+\(", all);   // a stack frame
        Assert.True(code == 2, $"exit {code}\n{all}");
        var errors = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error: ")).ToList();
        Assert.True(errors.Count == 1, $"{errors.Count} error lines:\n{all}");
        // Nothing was trained or written before the arguments were found wrong.
        Assert.Empty(Directory.GetFiles(_root, "*.safetensors", SearchOption.AllDirectories));
    }

    [Fact]
    public void AFileThatIsNotAModelSaysSoFirst()
    {
        string path = Path.Combine(_root, "not-a-model.onnx");
        File.WriteAllText(path, "not a model\n");
        var (_, _, info) = Gpunet("onnx", "info", path);
        Assert.StartsWith($"error: onnx: '{path}' is not an ONNX model: ", info);
        var (_, _, weights) = Gpunet("generate", "--weights", path, "--prompt", "x");
        Assert.StartsWith($"error: safetensors_load: {path}: not a safetensors file: ", weights);
        var (_, _, missing) = Gpunet("onnx", "info", "/nonexistent/model.onnx");
        Assert.StartsWith("error: onnx: no file '/nonexistent/model.onnx'", missing);
    }

    [Fact]
    public void AFailureInsideAVerbIsOneLineAndExit1()
    {
        var old = Console.Error;
        using var writer = new StringWriter();
        Console.SetError(writer);
        int code;
        try
        {
            code = GpuNetCli.Guard("train dnn", () => throw new InvalidOperationException("the loss went missing"));
        }
        finally
        {
            Console.SetError(old);
        }
        Assert.Equal(1, code);
        Assert.Equal("error: train dnn failed: InvalidOperationException: the loss went missing (set GPUNET_DEBUG=1 for the stack trace)",
            writer.ToString().TrimEnd());
    }
}

namespace GpuNet.Layers.Tests;

/// <summary>The PyTorch fixtures copied next to the test assembly (make_fixtures.py, make_training_fixtures.py).</summary>
internal static class Fixtures
{
    /// <summary>Path of Fixtures/<paramref name="name"/>.safetensors.</summary>
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name + ".safetensors");

    /// <summary>Opens Fixtures/<paramref name="name"/>.safetensors.</summary>
    public static SafeTensorsFile Open(string name) => SafeTensors.Open(PathOf(name));
}

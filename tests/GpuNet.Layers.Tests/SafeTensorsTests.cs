using System.Text;
using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;

namespace GpuNet.Layers.Tests;

/// <summary>safetensors load and save, and every kind of malformed file: a typed error, never a crash.</summary>
public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpunet-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A file from a header (as JSON text) and a data section.</summary>
    private string File(string name, string header, byte[] data, long? claimedLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = BitConverter.GetBytes((ulong)(claimedLength ?? h.Length)).Concat(h).Concat(data).ToArray();
        return Write(name, bytes);
    }

    private static SafeTensorsFormatException Fails(string path)
    {
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Open(path).Dispose());
        Assert.Equal("safetensors_load", e.Op);
        Assert.Contains(path, e.Message);
        return e;
    }

    [Fact]
    public void SaveThenLoadRoundTrips()
    {
        var d = TestDevices.Cpu;
        using var a = Tensor.RandomNormal(d, new[] { 3, 4 }, 1);
        using var b = Tensor.RandomNormal(d, new[] { 5 }, 2);
        var path = Path.Combine(_dir, "rt.safetensors");
        SafeTensors.Save(path, new[] { ("a", a), ("b.c", b) }, new Dictionary<string, string> { ["format"] = "pt" });
        using var f = SafeTensors.Open(path);
        Assert.Equal(new[] { "a", "b.c" }, f.Names);
        Assert.Equal(new[] { 3, 4 }, f.Shape("a"));
        Assert.Equal(a.ToArray(), f.ReadFloats("a"));
        Assert.Equal(b.ToArray(), f.ReadFloats("b.c"));
        Assert.Equal("pt", f.Metadata["format"]);
    }

    [Fact]
    public void HalfBFloatAndDoubleReadAsFloat()
    {
        var values = new[] { 1.5f, -2.25f, 0.125f };
        var f16 = values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray();
        var bf16 = values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(v) >> 16))).ToArray();
        var f64 = values.SelectMany(v => BitConverter.GetBytes((double)v)).ToArray();
        var header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[6,12]},"
                   + "\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[12,36]}}";
        using var f = SafeTensors.Open(File("mixed.safetensors", header, f16.Concat(bf16).Concat(f64).ToArray()));
        Assert.Equal(values, f.ReadFloats("h"));
        Assert.Equal(values, f.ReadFloats("b"));
        Assert.Equal(values.Select(v => (double)v).ToArray(), f.ReadDoubles("d"));
    }

    [Fact]
    public void TruncatedFile() => Assert.Contains("shorter than the 8-byte", Fails(Write("t.safetensors", new byte[5])).Message);

    [Fact]
    public void HeaderLengthPastTheEnd() =>
        Assert.Contains("runs past the end", Fails(File("p.safetensors", "{}", Array.Empty<byte>(), claimedLength: 1000)).Message);

    [Fact]
    public void HeaderTooLong() =>
        Assert.Contains("exceeds", Fails(File("l.safetensors", "{}", Array.Empty<byte>(), claimedLength: 200L << 20)).Message);

    [Fact]
    public void BadJson() => Assert.Contains("not valid JSON", Fails(File("j.safetensors", "{\"a\": [", Array.Empty<byte>())).Message);

    [Fact]
    public void HeaderNotAnObject() => Assert.Contains("does not start with '{'", Fails(File("o.safetensors", "[1,2]", Array.Empty<byte>())).Message);

    [Fact]
    public void UnknownDtype() =>
        Assert.Contains("dtype 'C64'", Fails(File("u.safetensors", "{\"a\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,16]}}", new byte[16])).Message);

    [Fact]
    public void OffsetsOutOfRange() =>
        Assert.Contains("need 16 bytes of data but the data section has 8", Fails(File("r.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8])).Message);

    [Fact]
    public void SizeDoesNotMatchShape() =>
        Assert.Contains("needs 12", Fails(File("s.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[12])).Message);

    [Fact]
    public void OverlappingTensors() =>
        Assert.Contains("overlap", Fails(File("v.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12])).Message);

    [Fact]
    public void MissingFields() =>
        Assert.Contains("needs dtype", Fails(File("m.safetensors", "{\"a\":{\"dtype\":\"F32\"}}", Array.Empty<byte>())).Message);

    [Fact]
    public void NegativeShape() =>
        Assert.Contains("invalid shape", Fails(File("n.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", Array.Empty<byte>())).Message);

    [Fact]
    public void MetadataMustBeStrings() =>
        Assert.Contains("__metadata__", Fails(File("md.safetensors", "{\"__metadata__\":{\"a\":1}}", Array.Empty<byte>())).Message);

    [Fact]
    public void MissingFileIsFileNotFound()
    {
        // A missing file is .NET's FileNotFoundException (naming the op and the path), not a format error.
        string path = Path.Combine(_dir, "nope.safetensors");
        var e = Assert.Throws<FileNotFoundException>(() => SafeTensors.Open(path).Dispose());
        Assert.Equal($"safetensors_load: no file '{path}'", e.Message);
        Assert.Equal(path, e.FileName);
    }

    [Fact]
    public void AFileThatIsNotSafetensorsSaysSoFirst()
    {
        string path = Path.Combine(_dir, "text.safetensors");
        System.IO.File.WriteAllText(path, "not a model\n");
        Assert.StartsWith($"safetensors_load: {path}: not a safetensors file: header length ", Fails(path).Message);
    }

    [Fact]
    public void UnknownTensorNameIsTyped()
    {
        using var f = SafeTensors.Open(File("e.safetensors", "{}", Array.Empty<byte>()));
        Assert.Contains("no tensor named 'x'", Assert.Throws<SafeTensorsFormatException>(() => f.ReadFloats("x")).Message);
    }
}

using System.Text;
using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Layers.Tests;

/// <summary>
/// safetensors as strict as the reference implementation: what it rejects is a typed error naming the problem, what it
/// accepts loads (every dtype, empty tensors included), and ten thousand mutated files never raise anything else.
/// </summary>
public sealed class SafeTensorsStrictTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gpunet-st-strict-").FullName;
    private static Device Cpu => TestDevices.Cpu;

    public void Dispose() => Directory.Delete(_dir, true);

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A file from a header (JSON text, or raw bytes) and a data section; the header length field may lie.</summary>
    private static byte[] Build(byte[] header, byte[] data, long? claimedLength = null) =>
        BitConverter.GetBytes((ulong)(claimedLength ?? header.Length)).Concat(header).Concat(data).ToArray();

    private static byte[] Build(string header, byte[] data, long? claimedLength = null) => Build(Encoding.UTF8.GetBytes(header), data, claimedLength);

    private string Fails(byte[] file, string expected)
    {
        var path = Write(Guid.NewGuid().ToString("N") + ".safetensors", file);
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Open(path).Dispose());
        Assert.Equal("safetensors_load", e.Op);
        Assert.Contains(expected, e.Message);
        return e.Message;
    }

    private const string Two = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    [Fact]
    public void DuplicatesAreRejected()
    {
        Fails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]),
            "tensor 'a' appears twice");
        Fails(Build("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", Array.Empty<byte>()), "key 'k' appears twice");
        Fails(Build("{\"__metadata__\":{},\"__metadata__\":{}}", Array.Empty<byte>()), "__metadata__ appears twice");
        Fails(Build("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]), "the key 'dtype' twice");
    }

    [Fact]
    public void TextThatIsNotUnicodeIsRejected()
    {
        var bad = Encoding.UTF8.GetBytes(Two);
        bad[2] = 0xFF;   // inside the name "a"
        Fails(Build(bad, new byte[8]), "not valid UTF-8");
        Fails(Build("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]), "lone surrogate");
        Fails(Build("{\"a\":{\"dtype\":\"F3\\udc002\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]), "lone surrogate");
        Fails(Build("{\"__metadata__\":{\"\\udfff\":\"x\"}}", Array.Empty<byte>()), "lone surrogate");
        Fails(Build(" " + Two, new byte[8]), "does not start with '{'");
    }

    [Fact]
    public void ElementCountsThatOverflowAreRejected()
    {
        Fails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", new byte[8]), "overflows");
        // 2^62 elements of 4 bytes: the byte size wraps to 0 in 64 bits, which an unchecked product would accept.
        Fails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2],\"data_offsets\":[0,0]}}", Array.Empty<byte>()), "overflows");
        Fails(Build("{\"a\":{\"dtype\":\"F64\",\"shape\":[65536,65536,65536,65536],\"data_offsets\":[0,0]}}", Array.Empty<byte>()), "overflows");
    }

    [Fact]
    public void TensorsMustCoverTheDataSectionExactly()
    {
        var data = new byte[16];
        // The header length field 1–6 bytes short: the reader used to load the data shifted (3.6e37 and the like).
        var header = Encoding.UTF8.GetBytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}" + new string(' ', 6));
        for (int shortBy = 1; shortBy <= 6; shortBy++)
            Fails(Build(header, new byte[8], header.Length - shortBy), "header");
        Fails(Build(Two, data), "cover 8 bytes but the data section has 16");
        Fails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]), "gap");
        Fails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]), "overlap");
        Fails(Build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]), "need 16 bytes");
        Fails(Build("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]), "dtype 'Q4'");
    }

    [Fact]
    public void AnEmptyTensorAtTheEndOfTheDataLoads()
    {
        using var scope = Cpu.Scope();
        var path = Path.Combine(_dir, "empty.safetensors");
        SafeTensors.Save(path, new[] { ("w", Tensor.FromArray(Cpu, new float[] { 1.5f, -2 }, 2)), ("empty", Tensor.Zeros(Cpu, 0, 4)) });
        using var f = SafeTensors.Open(path);
        Assert.Equal(new[] { "w", "empty" }, f.Names);
        Assert.Equal(new float[] { 1.5f, -2 }, f.ReadFloats("w"));
        Assert.Empty(f.ReadFloats("empty"));
        Assert.Equal(new[] { 0, 4 }, f.ToTensor(Cpu, "empty").ShapeArray());
        var onlyEmpty = Path.Combine(_dir, "only-empty.safetensors");
        SafeTensors.Save(onlyEmpty, new[] { ("e", Tensor.Zeros(Cpu, 3, 0)) });
        using var g = SafeTensors.Open(onlyEmpty);
        Assert.Empty(g.ReadFloats("e"));
    }

    [Theory]
    [InlineData("F32")]
    [InlineData("F64")]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void EveryWritableDTypeRoundTrips(string dtype)
    {
        using var scope = Cpu.Scope();
        var values = new float[] { 0, 1, -2.5f, 0.125f, 1024, -0.0078125f, float.PositiveInfinity, 3 };   // exact in every dtype
        var path = Path.Combine(_dir, dtype + ".safetensors");
        SafeTensors.Save(path, new[] { ("x", Tensor.FromArray(Cpu, values, 2, 4)), ("none", Tensor.Zeros(Cpu, 0)) }, dtype: dtype);
        using var f = SafeTensors.Open(path);
        Assert.Equal(dtype, f.DType("x"));
        Assert.Equal(values, f.ReadFloats("x"));
        Assert.Empty(f.ReadFloats("none"));
        Assert.Throws<SafeTensorsFormatException>(() => SafeTensors.Save(path, new[] { ("x", Tensor.Zeros(Cpu, 1)) }, dtype: "I8"));
    }

    [Fact]
    public void EveryDTypeOfTheReferenceReads()
    {
        // One tensor per dtype, written by hand: 3 elements each, in the reference's little-endian layout.
        var parts = new (string DType, byte[] Bytes, float[] Expected)[]
        {
            ("I64", new long[] { -3, 0, 1L << 40 }.SelectMany(BitConverter.GetBytes).ToArray(), new float[] { -3, 0, 1L << 40 }),
            ("U64", new ulong[] { 0, 7, ulong.MaxValue }.SelectMany(BitConverter.GetBytes).ToArray(), new float[] { 0, 7, ulong.MaxValue }),
            ("I32", new[] { int.MinValue, -1, 5 }.SelectMany(BitConverter.GetBytes).ToArray(), new float[] { int.MinValue, -1, 5 }),
            ("U32", new uint[] { 0, 9, uint.MaxValue }.SelectMany(BitConverter.GetBytes).ToArray(), new float[] { 0, 9, uint.MaxValue }),
            ("I16", new short[] { -32768, 2, 300 }.SelectMany(BitConverter.GetBytes).ToArray(), new float[] { -32768, 2, 300 }),
            ("U16", new ushort[] { 65535, 2, 0 }.SelectMany(BitConverter.GetBytes).ToArray(), new float[] { 65535, 2, 0 }),
            ("I8", new byte[] { 0x80, 0xFF, 0x7F }, new float[] { -128, -1, 127 }),
            ("U8", new byte[] { 0x80, 0xFF, 0x00 }, new float[] { 128, 255, 0 }),
            ("BOOL", new byte[] { 1, 0, 1 }, new float[] { 1, 0, 1 }),
            // E4M3: 0x38 = 1.0, 0xC4 = −(1 + 4/8)·2^1 = −3, 0x7E = 448 (largest finite); E5M2: 0x3C = 1.0, 0x7C = +inf, 0x01 = 2^−16.
            ("F8_E4M3", new byte[] { 0x38, 0xC4, 0x7E }, new float[] { 1, -3, 448 }),
            ("F8_E5M2", new byte[] { 0x3C, 0x7C, 0x01 }, new float[] { 1, float.PositiveInfinity, MathF.Pow(2, -16) }),
        };
        var header = new StringBuilder("{");
        long offset = 0;
        foreach (var (dtype, bytes, _) in parts)
        {
            header.Append($"\"{dtype}\":{{\"dtype\":\"{dtype}\",\"shape\":[3],\"data_offsets\":[{offset},{offset + bytes.Length}]}},");
            offset += bytes.Length;
        }
        header.Length--;
        header.Append('}');
        var path = Write("dtypes.safetensors", Build(header.ToString(), parts.SelectMany(p => p.Bytes).ToArray()));
        using var f = SafeTensors.Open(path);
        foreach (var (dtype, _, expected) in parts)
            Assert.Equal(expected, f.ReadFloats(dtype));
        Assert.Equal(SafeTensorsFile.DTypes.OrderBy(d => d), parts.Select(p => p.DType).Concat(new[] { "F64", "F32", "F16", "BF16" }).OrderBy(d => d));
    }

    /// <summary>
    /// 12,000 mutations of three valid files (fixed seeds): byte flips, random bytes, truncations, deleted and repeated
    /// spans, a wrong header length, and edits of the JSON (a duplicated entry, a lone surrogate, a huge shape, a new
    /// dtype, moved offsets). Each file either opens, and then every tensor reads with exactly its shape's element count
    /// and the tensors' sizes add up to the data section, or raises <see cref="SafeTensorsFormatException"/>; a file that
    /// opens is also loaded as a checkpoint, which reads or raises a typed error. Afterwards the pool holds what it held.
    /// </summary>
    [Fact]
    public void TenThousandMutatedFilesAreTypedErrorsOrLoadExactly()
    {
        using var seedScope = Cpu.Scope();
        var seeds = new List<byte[]>();
        var checkpointModel = new Linear(Cpu, 3, 2);
        using var checkpointOptimizer = new Adam(checkpointModel.Parameters());
        {
            var x = Tensor.RandomNormal(Cpu, new[] { 4, 3 }, 5);
            using (var loss = Ops.MseLoss(checkpointModel.Forward(x), Tensor.Zeros(Cpu, 4, 2)))
                loss.Backward();
            checkpointOptimizer.Step();
            var path = Path.Combine(_dir, "seed-checkpoint.safetensors");
            Checkpoint.Save(path, checkpointModel, checkpointOptimizer);
            seeds.Add(File.ReadAllBytes(path));
            var mixed = Path.Combine(_dir, "seed-mixed.safetensors");
            SafeTensors.Save(mixed, new[] { ("a.w", Tensor.RandomNormal(Cpu, new[] { 3, 5 }, 1)), ("b", Tensor.Zeros(Cpu, 0, 2)), ("c", Tensor.RandomNormal(Cpu, new[] { 7 }, 2)) },
                new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode" }, dtype: "BF16");
            seeds.Add(File.ReadAllBytes(mixed));
            var f64 = Path.Combine(_dir, "seed-f64.safetensors");
            SafeTensors.Save(f64, new[] { ("z", Tensor.RandomNormal(Cpu, new[] { 2, 2, 2 }, 3)) }, dtype: "F64");
            seeds.Add(File.ReadAllBytes(f64));
        }
        long baseline = PoolAccounting.SettledBytesInUse(Cpu);
        int opened = 0, rejected = 0, checkpoints = 0;
        var problems = new Dictionary<string, int>();
        for (int s = 0; s < seeds.Count; s++)
        {
            var rng = new Random(7000 + s);
            for (int m = 0; m < 4000; m++)
            {
                var bytes = Mutate(seeds[s], rng);
                var path = Write("mutant.safetensors", bytes);
                try
                {
                    using var f = SafeTensors.Open(path);
                    opened++;
                    long headerLength = BitConverter.ToInt64(bytes, 0);
                    long covered = f.Names.Sum(n => ShapeUtil.Product(f.Shape(n)) * DTypeSize(f.DType(n)));
                    Assert.True(covered == bytes.Length - 8 - headerLength, $"seed {s} mutation {m}: tensors cover {covered} of {bytes.Length - 8 - headerLength} data bytes");
                    foreach (var n in f.Names)
                        Assert.Equal(ShapeUtil.Product(f.Shape(n)), f.ReadFloats(n).Length);
                    if (s == 0)
                    {
                        try
                        {
                            Checkpoint.Load(path, checkpointModel, checkpointOptimizer);
                            checkpoints++;
                        }
                        catch (GpuNetException e)
                        {
                            problems["checkpoint: " + e.GetType().Name] = problems.GetValueOrDefault("checkpoint: " + e.GetType().Name) + 1;
                        }
                    }
                }
                catch (SafeTensorsFormatException e)
                {
                    rejected++;
                    string kind = e.Message[(e.Message.IndexOf(": ", e.Message.IndexOf(path) + path.Length - 1) + 2)..];
                    kind = string.Join(' ', kind.Split(' ').Take(3));
                    problems[kind] = problems.GetValueOrDefault(kind) + 1;
                }
                catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                {
                    Assert.Fail($"seed {s} mutation {m}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
            }
        }
        output.WriteLine($"{opened} opened ({checkpoints} loaded as checkpoints), {rejected} rejected");
        foreach (var (kind, count) in problems.OrderByDescending(p => p.Value).Take(25))
            output.WriteLine($"  {count,5}  {kind}");
        Assert.Equal(seeds.Count * 4000, opened + rejected);
        Assert.True(opened > 500 && rejected > 5000, "the mutations must reach both outcomes");
        Assert.Equal(baseline, PoolAccounting.SettledBytesInUse(Cpu));
    }

    private static int DTypeSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        _ => 1,
    };

    private static byte[] Mutate(byte[] source, Random rng)
    {
        long headerLength = BitConverter.ToInt64(source, 0);
        var header = Encoding.UTF8.GetString(source, 8, (int)headerLength);
        var data = source.Skip(8 + (int)headerLength).ToArray();
        switch (rng.Next(4))
        {
            case 0:   // the JSON, edited
            {
                string[] edits =
                {
                    "\"dtype\":\"F16\"", "\"dtype\":\"I8\"", "\"dtype\":\"U64\"", "\"dtype\":\"Q8\"", "\"\\ud83d\"", "\"\\ude00x\"",
                    "[2147483647,2147483647,2]", "[4611686018427387904]", "[-1]", "[0]", "[1.5]", "\"data_offsets\":[0,0]",
                    "\"data_offsets\":[8,4]", "{}", "[]", "null", "\"__metadata__\"", "\"shape\":[]",
                };
                int at = rng.Next(header.Length);
                string piece = edits[rng.Next(edits.Length)];
                header = rng.Next(3) switch
                {
                    0 => header[..at] + piece + header[at..],
                    1 => header[..at] + piece + header[Math.Min(header.Length, at + rng.Next(1, 24))..],
                    _ => header.Insert(header.IndexOf(',', at) is int comma and > 0 ? comma : 1, "," + ExistingEntry(header, rng)),
                };
                return Build(header.TrimEnd(), data);
            }
            case 1:   // the header length field, off by a little
                return Build(Encoding.UTF8.GetBytes(header), data, headerLength + rng.Next(-8, 9));
            default:   // the bytes
                return ByteMutations.Mutate(source, rng);
        }
    }

    /// <summary>A copy of one "name":{...} entry of the header (so the mutant holds it twice), or a bare name when none is found.</summary>
    private static string ExistingEntry(string header, Random rng)
    {
        int start = header.IndexOf("\":{\"", rng.Next(header.Length), StringComparison.Ordinal);
        if (start < 0)
            start = header.IndexOf("\":{\"", StringComparison.Ordinal);
        if (start < 0)
            return "\"x\":1";
        int nameStart = header.LastIndexOf('"', start - 1);
        int end = header.IndexOf('}', start);
        return end < 0 ? "\"x\":1" : header[nameStart..(end + 1)];
    }

    [Fact]
    public void OptimizerStateIsValidatedLikeAStateDict()
    {
        using var scope = Cpu.Scope();
        var model = new Linear(Cpu, 3, 2);
        model.Initialize(seed: 3);
        using var adam = new Adam(model.Parameters());
        var x = Tensor.RandomNormal(Cpu, new[] { 4, 3 }, 5);
        using (var loss = Ops.MseLoss(model.Forward(x), Tensor.RandomNormal(Cpu, new[] { 4, 2 }, 6)))
            loss.Backward();
        adam.Step();
        var state = adam.StateDict().ToDictionary(e => e.Name, e => (e.Tensor.ShapeArray(), e.Tensor.ToArray()));
        var before = model.Parameters().Select(p => p.Tensor.ToArray()).ToList();
        var stateBefore = adam.StateDict().Select(e => e.Tensor.ToArray()).ToList();

        StateDictMismatchException Rejects(Func<Dictionary<string, (int[], float[])>, Dictionary<string, (int[], float[])>> edit)
        {
            var edited = edit(state.ToDictionary(e => e.Key, e => (e.Value.Item1, (float[])e.Value.Item2.Clone())));
            var e = Assert.Throws<StateDictMismatchException>(() =>
                adam.LoadStateDict(edited.ToDictionary(p => p.Key, p => (p.Value.Item1, (Func<float[]>)(() => p.Value.Item2)))));
            Assert.Equal(stateBefore, adam.StateDict().Select(t => t.Tensor.ToArray()).ToList());   // nothing written
            return e;
        }

        Assert.Contains("weight.exp_avg_sq", Rejects(s => { s.Remove("weight.exp_avg_sq"); return s; }).Missing);
        Assert.Contains("weight.step", Rejects(s => { s.Remove("weight.step"); return s; }).Missing);
        Assert.Contains("weight.momentum", Rejects(s => { s["weight.momentum"] = s["weight.exp_avg"]; return s; }).Unexpected);
        foreach (float step in new[] { -5f, 0f, 1e10f, 2.5f, float.NaN, float.PositiveInfinity })
            Assert.Contains("step count", Assert.Single(Rejects(s => { s["weight.step"] = (new[] { 1 }, new[] { step }); return s; }).InvalidValues));
        Assert.Contains("non-negative", Assert.Single(Rejects(s => { s["bias.exp_avg_sq"].Item2[0] = -1; return s; }).InvalidValues));
        Assert.Contains("finite", Assert.Single(Rejects(s => { s["bias.exp_avg"].Item2[1] = float.NaN; return s; }).InvalidValues));

        adam.LoadStateDict(state.ToDictionary(p => p.Key, p => (p.Value.Item1, (Func<float[]>)(() => p.Value.Item2))));
        adam.Step();
        Assert.All(model.Parameters(), p => Assert.All(p.Tensor.ToArray(), v => Assert.True(float.IsFinite(v))));
        Assert.NotEqual(before[0], model.Parameters().First().Tensor.ToArray());
    }

    [Fact]
    public void AnOptimizerUsedAfterDisposeRaisesATypedError()
    {
        using var scope = Cpu.Scope();
        var model = new Linear(Cpu, 2, 2);
        var sgd = new Sgd(model.Parameters(), 0.1f);
        sgd.Dispose();
        var e = Assert.Throws<TensorDisposedException>(() => sgd.Step());
        Assert.Contains("optimizer Sgd", e.Message);
        Assert.Throws<TensorDisposedException>(() => sgd.LoadStateDict(new Dictionary<string, (int[], Func<float[]>)>()));
    }
}

using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace GpuNet.Layers;

/// <summary>A safetensors file that is not well formed: the message says what and where.</summary>
public sealed class SafeTensorsFormatException(string path, string problem)
    : GpuNetException("safetensors_load", $"safetensors_load: {path}: {problem}")
{
    /// <summary>The file.</summary>
    public string Path { get; } = path;
}

/// <summary>
/// A memory-mapped safetensors file (the Hugging Face format: an 8-byte little-endian header length, a JSON header
/// mapping names to dtype, shape and [begin, end) byte offsets into the data that follows, and the raw little-endian
/// data). The header is validated completely on open — size limits, JSON, dtypes, shapes, offsets inside the file,
/// sizes matching shapes, no overlaps — so a malformed file is a <see cref="SafeTensorsFormatException"/>, never a crash.
/// Every dtype of the reference implementation reads as float32 (<see cref="DTypes"/>); F64 also reads as double, for
/// references. As strict as the reference implementation: see <c>Parse</c>.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly Dictionary<string, Entry> _entries = new();
    private readonly long _dataStart;

    private sealed record Entry(string DType, int[] Shape, long Begin, long End);

    /// <summary>Bytes per element of each dtype the reference implementation knows (every one reads as float32).</summary>
    private static int SizeOf(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => 0,
    };

    /// <summary>The dtypes <see cref="ReadFloats"/> reads: all of the reference implementation's.</summary>
    public static IReadOnlyList<string> DTypes { get; } = new[] { "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2" };

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    public SafeTensorsFile(string path)
    {
        Path = path;
        long length;
        try
        {
            length = new FileInfo(path).Length;
        }
        catch (FileNotFoundException)
        {
            throw new FileNotFoundException($"safetensors_load: no file '{path}'", path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new SafeTensorsFormatException(path, $"cannot be read ({e.Message})");
        }
        if (!File.Exists(path))
            throw new FileNotFoundException($"safetensors_load: no file '{path}'", path);
        if (length < 8)
            throw new SafeTensorsFormatException(path, $"not a safetensors file: is {length} bytes long, shorter than the 8-byte header length");
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        try
        {
            ulong headerLength = _view.ReadUInt64(0);
            if (headerLength > MaxHeaderBytes)
                throw new SafeTensorsFormatException(path, $"not a safetensors file: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            if ((long)headerLength > length - 8)
                throw new SafeTensorsFormatException(path, $"not a safetensors file: header length {headerLength} runs past the end of the {length}-byte file (truncated?)");
            var header = new byte[headerLength];
            _view.ReadArray(8, header, 0, header.Length);
            _dataStart = 8 + (long)headerLength;
            Parse(header, length - _dataStart);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json raises this where a name it compares or returns holds a lone surrogate escape.
            Dispose();
            throw new SafeTensorsFormatException(path, $"header holds text that is not valid Unicode ({e.Message})");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The file path.</summary>
    public string Path { get; }

    /// <summary>The optional <c>__metadata__</c> string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; private set; } = new Dictionary<string, string>();

    /// <summary>Tensor names, in header order.</summary>
    public IReadOnlyList<string> Names => _entries.Keys.ToList();

    /// <summary>Shape of a tensor.</summary>
    public int[] Shape(string name) => (int[])Get(name).Shape.Clone();

    /// <summary>dtype of a tensor (F32, F16, BF16, F64).</summary>
    public string DType(string name) => Get(name).DType;

    private Entry Get(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new SafeTensorsFormatException(Path, $"has no tensor named '{name}'");

    /// <summary>
    /// Validates the header as strictly as the reference implementation: UTF-8 text starting with '{', a JSON object
    /// without duplicate keys, every entry well formed, every element count and byte size computed without overflow,
    /// and the tensors' byte ranges tiling the data section exactly — in offset order, each starting where the last
    /// ended, the last ending at the end of the file (no gap, no overlap, no trailing bytes). Anything else is a
    /// <see cref="SafeTensorsFormatException"/> naming what is wrong.
    /// </summary>
    private void Parse(byte[] header, long dataLength)
    {
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(header);
        }
        catch (DecoderFallbackException e)
        {
            throw new SafeTensorsFormatException(Path, $"not a safetensors file: header is not valid UTF-8 (byte {e.Index})");
        }
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new SafeTensorsFormatException(Path, "not a safetensors file: header does not start with '{'");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(Path, $"not a safetensors file: header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(Path, "not a safetensors file: header is not a JSON object");
            bool sawMetadata = false;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                string name = Text(p, "a tensor name");
                if (name == "__metadata__")
                {
                    if (sawMetadata)
                        throw new SafeTensorsFormatException(Path, "__metadata__ appears twice");
                    sawMetadata = true;
                    Metadata = ParseMetadata(p.Value);
                    continue;
                }
                if (_entries.ContainsKey(name))
                    throw new SafeTensorsFormatException(Path, $"tensor '{name}' appears twice in the header");
                _entries[name] = ParseEntry(name, p.Value);
            }
        }
        long cursor = 0;
        foreach (var (name, e) in _entries.OrderBy(e => e.Value.Begin).ThenBy(e => e.Value.End))
        {
            if (e.Begin != cursor)
                throw new SafeTensorsFormatException(Path, e.Begin < cursor
                    ? $"tensor '{name}' data_offsets [{e.Begin}, {e.End}) overlap the tensor before it, which ends at {cursor}"
                    : $"tensor '{name}' data_offsets [{e.Begin}, {e.End}) leave a gap after byte {cursor} of the data section");
            cursor = e.End;
        }
        if (cursor != dataLength)
            throw new SafeTensorsFormatException(Path, cursor > dataLength
                ? $"the tensors need {cursor} bytes of data but the data section has {dataLength} (truncated, or the header length is wrong)"
                : $"the tensors cover {cursor} bytes but the data section has {dataLength} (the header length is wrong, or bytes follow the data)");
    }

    /// <summary>A property's name, rejecting the ones JSON can spell but UTF-16 cannot hold (a lone surrogate escape).</summary>
    private string Text(JsonProperty p, string what)
    {
        try
        {
            return p.Name;
        }
        catch (InvalidOperationException)
        {
            throw new SafeTensorsFormatException(Path, $"{what} is not valid Unicode (a lone surrogate)");
        }
    }

    private string Text(JsonElement e, string what)
    {
        if (e.ValueKind != JsonValueKind.String)
            throw new SafeTensorsFormatException(Path, $"{what} is not a string");
        try
        {
            return e.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new SafeTensorsFormatException(Path, $"{what} is not valid Unicode (a lone surrogate)");
        }
    }

    private Dictionary<string, string> ParseMetadata(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(Path, "__metadata__ must map strings to strings");
        var metadata = new Dictionary<string, string>();
        foreach (var m in value.EnumerateObject())
        {
            string key = Text(m, "a __metadata__ key");
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new SafeTensorsFormatException(Path, $"__metadata__ must map strings to strings ('{key}' is {m.Value.ValueKind})");
            if (!metadata.TryAdd(key, Text(m.Value, $"__metadata__ '{key}'")))
                throw new SafeTensorsFormatException(Path, $"__metadata__ key '{key}' appears twice");
        }
        return metadata;
    }

    private Entry ParseEntry(string name, JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' needs dtype (string), shape (array) and data_offsets ([begin, end])");
        var keys = new HashSet<string>();
        foreach (var k in e.EnumerateObject())
            if (!keys.Add(Text(k, $"a key of tensor '{name}'")))
                throw new SafeTensorsFormatException(Path, $"tensor '{name}' has the key '{k.Name}' twice");
        string dtype = Text(dt, $"tensor '{name}' dtype");
        int size = SizeOf(dtype);
        if (size == 0)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' has dtype '{dtype}'; known: {string.Join(", ", DTypes)}");
        var shape = new List<int>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int v) || v < 0)
                throw new SafeTensorsFormatException(Path, $"tensor '{name}' has an invalid shape entry {d.GetRawText()} (expected an integer in [0, {int.MaxValue}])");
            shape.Add(v);
        }
        var o = off.EnumerateArray().ToArray();
        if (o.Any(x => x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out long y) || y < 0))
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' has invalid data_offsets {off.GetRawText()} (expected two non-negative integers)");
        long begin = o[0].GetInt64(), end = o[1].GetInt64();
        if (begin > end)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' data_offsets [{begin}, {end}) end before they begin");
        long elements = ShapeUtil.Product(shape.ToArray());
        if (elements > long.MaxValue / size)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' shape {GpuNetException.FormatShape(shape.ToArray())} has an element count that overflows");
        if (end - begin != elements * size)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' spans {end - begin} bytes but {dtype} {GpuNetException.FormatShape(shape.ToArray())} needs {elements * size}");
        return new Entry(dtype, shape.ToArray(), begin, end);
    }

    /// <summary>A tensor's values as float32: F16/BF16/F8 widened, F64 narrowed, integers and BOOL converted (integers
    /// beyond ±2^24 round to the nearest float).</summary>
    /// <exception cref="SafeTensorsFormatException">No tensor of that name, or more than <see cref="int.MaxValue"/> elements.</exception>
    public float[] ReadFloats(string name)
    {
        var e = Get(name);
        long count = ShapeUtil.Product(e.Shape);
        if (count > int.MaxValue)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' has {count} elements, more than a GpuNet tensor holds ({int.MaxValue})");
        var raw = ReadBytes(e);
        int n = (int)count;
        var result = new float[n];
        switch (e.DType)
        {
            case "F32": MemoryMarshal.Cast<byte, float>(raw).CopyTo(result); break;
            case "F64": Convert(MemoryMarshal.Cast<byte, double>(raw), result, v => (float)v); break;
            case "F16": Convert(MemoryMarshal.Cast<byte, Half>(raw), result, v => (float)v); break;
            case "BF16": Convert(MemoryMarshal.Cast<byte, ushort>(raw), result, v => BitConverter.Int32BitsToSingle(v << 16)); break;
            case "I64": Convert(MemoryMarshal.Cast<byte, long>(raw), result, v => v); break;
            case "U64": Convert(MemoryMarshal.Cast<byte, ulong>(raw), result, v => v); break;
            case "I32": Convert(MemoryMarshal.Cast<byte, int>(raw), result, v => v); break;
            case "U32": Convert(MemoryMarshal.Cast<byte, uint>(raw), result, v => v); break;
            case "I16": Convert(MemoryMarshal.Cast<byte, short>(raw), result, v => v); break;
            case "U16": Convert(MemoryMarshal.Cast<byte, ushort>(raw), result, v => v); break;
            case "I8": Convert(MemoryMarshal.Cast<byte, sbyte>(raw), result, v => v); break;
            case "U8": Convert<byte>(raw, result, v => v); break;
            case "BOOL": Convert<byte>(raw, result, v => v != 0 ? 1f : 0f); break;
            case "F8_E4M3": Convert<byte>(raw, result, v => Float8(v, exponentBits: 4, bias: 7, hasInfinity: false)); break;
            default: Convert<byte>(raw, result, v => Float8(v, exponentBits: 5, bias: 15, hasInfinity: true)); break;
        }
        return result;
    }

    private static void Convert<T>(ReadOnlySpan<T> source, float[] result, Func<T, float> f)
    {
        for (int i = 0; i < result.Length; i++)
            result[i] = f(source[i]);
    }

    /// <summary>An 8-bit float (OCP FP8: E4M3 has no infinity and NaN only at S.1111.111; E5M2 is IEEE-like).</summary>
    private static float Float8(byte bits, int exponentBits, int bias, bool hasInfinity)
    {
        int mantissaBits = 7 - exponentBits;
        int sign = bits >> 7, exponent = (bits >> mantissaBits) & ((1 << exponentBits) - 1), mantissa = bits & ((1 << mantissaBits) - 1);
        int maxExponent = (1 << exponentBits) - 1;
        float value;
        if (hasInfinity && exponent == maxExponent)
            value = mantissa == 0 ? float.PositiveInfinity : float.NaN;
        else if (!hasInfinity && exponent == maxExponent && mantissa == (1 << mantissaBits) - 1)
            value = float.NaN;
        else if (exponent == 0)
            value = mantissa * MathF.Pow(2, 1 - bias - mantissaBits);
        else
            value = (1 + mantissa / (float)(1 << mantissaBits)) * MathF.Pow(2, exponent - bias);
        return sign != 0 ? -value : value;
    }

    /// <summary>A tensor's values as double (exact for F64 references).</summary>
    public double[] ReadDoubles(string name)
    {
        var e = Get(name);
        return e.DType == "F64" ? MemoryMarshal.Cast<byte, double>(ReadBytes(e)).ToArray() : Array.ConvertAll(ReadFloats(name), v => (double)v);
    }

    /// <summary>A tensor loaded onto a device.</summary>
    public Tensor ToTensor(Device device, string name) => Tensor.FromArray(device, ReadFloats(name), Shape(name));

    private byte[] ReadBytes(Entry e)
    {
        var bytes = new byte[e.End - e.Begin];
        if (bytes.Length > 0)   // an empty tensor may sit at the very end of the file, where the view has no byte to read
            _view!.ReadArray(_dataStart + e.Begin, bytes, 0, bytes.Length);
        return bytes;
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        _view?.Dispose();
        _map?.Dispose();
    }
}

/// <summary>Writing safetensors files.</summary>
public static class SafeTensors
{
    /// <summary>Opens and validates a file.</summary>
    public static SafeTensorsFile Open(string path) => new(path);

    /// <summary>Writes tensors in order, with an optional metadata map, as <paramref name="dtype"/>: F32 (default), F64, F16 or
    /// BF16 (rounded to nearest even).</summary>
    /// <exception cref="SafeTensorsFormatException">Another dtype, or a tensor name that appears twice.</exception>
    public static void Save(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null, string dtype = "F32")
    {
        int size = dtype switch { "F32" => 4, "F64" => 8, "F16" or "BF16" => 2, _ => 0 };
        if (size == 0)
            throw new SafeTensorsFormatException(path, $"cannot be written as {dtype}; writable: F32, F64, F16, BF16");
        var list = tensors.ToList();
        var header = new Dictionary<string, object>();
        if (metadata is not null)
            header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, t) in list)
        {
            if (!header.TryAdd(name, new { dtype, shape = t.ShapeArray(), data_offsets = new[] { offset, offset + (long)t.Length * size } }))
                throw new SafeTensorsFormatException(path, $"cannot hold the name '{name}' twice");
            offset += (long)t.Length * size;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        // Pad the header with spaces to an 8-byte boundary, as the reference writer does.
        int padded = (json.Length + 7) / 8 * 8;
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)padded));
        f.Write(json);
        for (int i = json.Length; i < padded; i++)
            f.WriteByte((byte)' ');
        foreach (var (_, t) in list)
        {
            var values = t.ToArray();
            switch (dtype)
            {
                case "F32": f.Write(MemoryMarshal.AsBytes(values.AsSpan())); break;
                case "F64": f.Write(MemoryMarshal.AsBytes(Array.ConvertAll(values, v => (double)v).AsSpan())); break;
                case "F16": f.Write(MemoryMarshal.AsBytes(Array.ConvertAll(values, v => (Half)v).AsSpan())); break;
                default: f.Write(MemoryMarshal.AsBytes(Array.ConvertAll(values, ToBFloat16).AsSpan())); break;
            }
        }
    }

    /// <summary>float32 → bfloat16, rounded to nearest even (NaN stays a quiet NaN).</summary>
    private static ushort ToBFloat16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        if (float.IsNaN(v))
            return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}

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
/// F32, F16 and BF16 read as float32; F64 reads as float32 or, for references, double.
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

    private static int SizeOf(string dtype) => dtype switch
    {
        "F64" => 8,
        "F32" => 4,
        "F16" or "BF16" => 2,
        _ => 0,
    };

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    public SafeTensorsFile(string path)
    {
        Path = path;
        long length;
        try
        {
            length = new FileInfo(path).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new SafeTensorsFormatException(path, $"cannot be read ({e.Message})");
        }
        if (!File.Exists(path))
            throw new SafeTensorsFormatException(path, "does not exist");
        if (length < 8)
            throw new SafeTensorsFormatException(path, $"is {length} bytes long, shorter than the 8-byte header length");
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        try
        {
            ulong headerLength = _view.ReadUInt64(0);
            if (headerLength > MaxHeaderBytes)
                throw new SafeTensorsFormatException(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            if ((long)headerLength > length - 8)
                throw new SafeTensorsFormatException(path, $"header length {headerLength} runs past the end of the {length}-byte file (truncated?)");
            var header = new byte[headerLength];
            _view.ReadArray(8, header, 0, header.Length);
            _dataStart = 8 + (long)headerLength;
            Parse(header, length - _dataStart);
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

    private void Parse(byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(Path, $"header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(Path, "header is not a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__")
                {
                    if (p.Value.ValueKind != JsonValueKind.Object || p.Value.EnumerateObject().Any(m => m.Value.ValueKind != JsonValueKind.String))
                        throw new SafeTensorsFormatException(Path, "__metadata__ must map strings to strings");
                    Metadata = p.Value.EnumerateObject().ToDictionary(m => m.Name, m => m.Value.GetString()!);
                    continue;
                }
                _entries[p.Name] = ParseEntry(p.Name, p.Value, dataLength);
            }
        }
        var ranges = _entries.OrderBy(e => e.Value.Begin).ToList();
        for (int i = 1; i < ranges.Count; i++)
            if (ranges[i].Value.Begin < ranges[i - 1].Value.End)
                throw new SafeTensorsFormatException(Path, $"tensors '{ranges[i - 1].Key}' and '{ranges[i].Key}' overlap in the data section");
    }

    private Entry ParseEntry(string name, JsonElement e, long dataLength)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' needs dtype (string), shape (array) and data_offsets ([begin, end])");
        string dtype = dt.GetString()!;
        int size = SizeOf(dtype);
        if (size == 0)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' has dtype {dtype}; supported: F32, F16, BF16, F64");
        var shape = new List<int>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int v) || v < 0)
                throw new SafeTensorsFormatException(Path, $"tensor '{name}' has an invalid shape entry {d}");
            shape.Add(v);
        }
        var o = off.EnumerateArray().ToArray();
        if (o.Any(x => x.ValueKind != JsonValueKind.Number || !x.TryGetInt64(out long y) || y < 0))
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' has invalid data_offsets");
        long begin = o[0].GetInt64(), end = o[1].GetInt64();
        if (begin > end || end > dataLength)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' data_offsets [{begin}, {end}) fall outside the {dataLength}-byte data section");
        long expected = ShapeUtil.Product(shape.ToArray()) * size;
        if (end - begin != expected)
            throw new SafeTensorsFormatException(Path, $"tensor '{name}' spans {end - begin} bytes but {dtype} {GpuNetException.FormatShape(shape.ToArray())} needs {expected}");
        return new Entry(dtype, shape.ToArray(), begin, end);
    }

    /// <summary>A tensor's values as float32 (F16/BF16 widened, F64 narrowed).</summary>
    public float[] ReadFloats(string name)
    {
        var e = Get(name);
        var raw = ReadBytes(e);
        int n = (int)ShapeUtil.Product(e.Shape);
        var result = new float[n];
        switch (e.DType)
        {
            case "F32":
                MemoryMarshal.Cast<byte, float>(raw).CopyTo(result);
                break;
            case "F16":
                var halves = MemoryMarshal.Cast<byte, Half>(raw);
                for (int i = 0; i < n; i++)
                    result[i] = (float)halves[i];
                break;
            case "BF16":
                var bf = MemoryMarshal.Cast<byte, ushort>(raw);
                for (int i = 0; i < n; i++)
                    result[i] = BitConverter.Int32BitsToSingle(bf[i] << 16);
                break;
            default:
                var doubles = MemoryMarshal.Cast<byte, double>(raw);
                for (int i = 0; i < n; i++)
                    result[i] = (float)doubles[i];
                break;
        }
        return result;
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

    /// <summary>Writes tensors as F32, in order, with an optional metadata map.</summary>
    public static void Save(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new Dictionary<string, object>();
        if (metadata is not null)
            header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, t) in list)
        {
            long bytes = (long)t.Length * 4;
            header[name] = new { dtype = "F32", shape = t.ShapeArray(), data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
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
            f.Write(MemoryMarshal.AsBytes(t.ToArray().AsSpan()));
    }
}

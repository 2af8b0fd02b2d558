using System.Buffers.Binary;
using System.Text;

namespace GpuNet.Onnx.Proto;

/// <summary>
/// A reader of the protobuf wire format over one message's bytes. Hand-written rather than generated: ONNX files are
/// read once, field by field, and every way a file can be malformed (a varint past the end, a length beyond the
/// message, a wire type a field cannot have) must surface as <see cref="OnnxFormatException"/> naming the message and
/// field — never an IndexOutOfRange or a silently short array. Length-delimited payloads are slices of the file's
/// memory, so raw tensor data is never copied while parsing.
/// </summary>
internal struct WireReader(ReadOnlyMemory<byte> data, string message)
{
    private static readonly UTF8Encoding Utf8 = new(false, true);
    private readonly ReadOnlyMemory<byte> _data = data;
    private int _pos;

    /// <summary>The message being read (for error messages).</summary>
    public readonly string Message => message;

    /// <summary>True when every byte was consumed.</summary>
    public readonly bool AtEnd => _pos >= _data.Length;

    /// <summary>The next field's number and wire type; false at the end of the message.</summary>
    public bool Next(out int field, out WireType type)
    {
        if (AtEnd)
        {
            (field, type) = (0, default);
            return false;
        }
        ulong key = Varint("field key");
        field = (int)(key >> 3);
        type = (WireType)(key & 7);
        if (field <= 0 || key >> 3 > int.MaxValue)
            throw Error($"field number {key >> 3} is not valid");
        if (type is not (WireType.Varint or WireType.Fixed64 or WireType.LengthDelimited or WireType.Fixed32))
            throw Error($"field {field} has wire type {(int)type}, which ONNX files do not use (groups are obsolete)");
        return true;
    }

    /// <summary>A varint.</summary>
    public ulong Varint(string what)
    {
        var span = _data.Span;
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= span.Length)
                throw Error($"the {what} runs past the end of the message (truncated file?)");
            byte b = span[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return result;
        }
        throw Error($"the {what} is a varint longer than 10 bytes");
    }

    /// <summary>A length-delimited payload, as a slice of the message's memory.</summary>
    public ReadOnlyMemory<byte> Bytes(string what)
    {
        ulong length = Varint(what + " length");
        if (length > (ulong)(_data.Length - _pos))
            throw Error($"the {what} claims {length} bytes but only {_data.Length - _pos} remain (truncated file?)");
        var slice = _data.Slice(_pos, (int)length);
        _pos += (int)length;
        return slice;
    }

    /// <summary>A UTF-8 string.</summary>
    public string String(string what)
    {
        var bytes = Bytes(what);
        try
        {
            return Utf8.GetString(bytes.Span);
        }
        catch (DecoderFallbackException)
        {
            throw Error($"the {what} is not valid UTF-8");
        }
    }

    /// <summary>A 4-byte little-endian value.</summary>
    public uint Fixed32(string what)
    {
        if (_data.Length - _pos < 4)
            throw Error($"the {what} runs past the end of the message (truncated file?)");
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data.Span[_pos..]);
        _pos += 4;
        return v;
    }

    /// <summary>An 8-byte little-endian value.</summary>
    public ulong Fixed64(string what)
    {
        if (_data.Length - _pos < 8)
            throw Error($"the {what} runs past the end of the message (truncated file?)");
        ulong v = BinaryPrimitives.ReadUInt64LittleEndian(_data.Span[_pos..]);
        _pos += 8;
        return v;
    }

    /// <summary>Skips a field this reader does not use.</summary>
    public void Skip(int field, WireType type)
    {
        switch (type)
        {
            case WireType.Varint: Varint($"field {field}"); break;
            case WireType.Fixed64: Fixed64($"field {field}"); break;
            case WireType.Fixed32: Fixed32($"field {field}"); break;
            default: Bytes($"field {field}"); break;
        }
    }

    /// <summary>A varint field as an int64 (negative numbers are ten-byte two's complement varints).</summary>
    public long Int64(string what) => (long)Varint(what);

    /// <summary>A varint field that must fit an int32 (enums, int32 fields are sign-extended on the wire).</summary>
    public int Int32(string what)
    {
        long v = Int64(what);
        if (v is < int.MinValue or > int.MaxValue)
            throw Error($"the {what} ({v}) does not fit 32 bits");
        return (int)v;
    }

    /// <summary>Appends a repeated int64 field, packed (one payload of varints) or one value per occurrence.</summary>
    public void Int64s(WireType type, List<long> into, string what)
    {
        if (type == WireType.Varint)
        {
            into.Add(Int64(what));
            return;
        }
        Expect(type, WireType.LengthDelimited, what);
        var packed = new WireReader(Bytes(what), Message);
        while (!packed.AtEnd)
            into.Add(packed.Int64(what));
    }

    /// <summary>Appends a repeated float field, packed or one value per occurrence.</summary>
    public void Floats(WireType type, List<float> into, string what)
    {
        if (type == WireType.Fixed32)
        {
            into.Add(BitConverter.UInt32BitsToSingle(Fixed32(what)));
            return;
        }
        Expect(type, WireType.LengthDelimited, what);
        var bytes = Bytes(what);
        if (bytes.Length % 4 != 0)
            throw Error($"the packed {what} has {bytes.Length} bytes, not a multiple of 4");
        for (int i = 0; i < bytes.Length; i += 4)
            into.Add(BinaryPrimitives.ReadSingleLittleEndian(bytes.Span[i..]));
    }

    /// <summary>Appends a repeated double field, packed or one value per occurrence.</summary>
    public void Doubles(WireType type, List<double> into, string what)
    {
        if (type == WireType.Fixed64)
        {
            into.Add(BitConverter.UInt64BitsToDouble(Fixed64(what)));
            return;
        }
        Expect(type, WireType.LengthDelimited, what);
        var bytes = Bytes(what);
        if (bytes.Length % 8 != 0)
            throw Error($"the packed {what} has {bytes.Length} bytes, not a multiple of 8");
        for (int i = 0; i < bytes.Length; i += 8)
            into.Add(BinaryPrimitives.ReadDoubleLittleEndian(bytes.Span[i..]));
    }

    /// <summary>Throws unless the field has the wire type its schema gives it.</summary>
    public readonly void Expect(WireType actual, WireType expected, string what)
    {
        if (actual != expected)
            throw Error($"the {what} has wire type {actual}, expected {expected}");
    }

    /// <summary>An error at the current position.</summary>
    public readonly OnnxFormatException Error(string problem) => new($"{message}: {problem} (at byte {_pos} of {_data.Length})");
}

/// <summary>Protobuf wire types.</summary>
internal enum WireType
{
    Varint = 0,
    Fixed64 = 1,
    LengthDelimited = 2,
    Fixed32 = 5,
}

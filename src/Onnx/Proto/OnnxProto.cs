namespace GpuNet.Onnx.Proto;


// The subset of onnx.proto GpuNet reads, with the official field numbers (onnx/onnx.proto, IR version 8).
// Unknown fields are skipped, as protobuf requires; fields that change meaning when present (sparse initializers,
// model-local functions, tensor segments) are recorded so the loader can refuse them by name.


/// <summary>ModelProto.</summary>
internal sealed class ModelProto
{
    public long IrVersion;
    public readonly List<(string Domain, long Version)> Opsets = new();
    public string ProducerName = "", ProducerVersion = "";
    public GraphProto? Graph;
    public readonly Dictionary<string, string> Metadata = new();
    public readonly List<string> Functions = new();

    /// <summary>The default domain's opset: the newest one imported; 1 when none is (files before IR version 3 carry no imports).</summary>
    public int DefaultOpset => (int)Opsets.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();

    public static ModelProto Parse(ReadOnlyMemory<byte> bytes)
    {
        var m = new ModelProto();
        var r = new WireReader(bytes, "ModelProto");
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: m.IrVersion = r.Int64("ir_version"); break;
                case 2: m.ProducerName = r.String("producer_name"); break;
                case 3: m.ProducerVersion = r.String("producer_version"); break;
                case 7: r.Expect(t, WireType.LengthDelimited, "graph"); m.Graph = GraphProto.Parse(r.Bytes("graph"), "graph"); break;
                case 8:
                    r.Expect(t, WireType.LengthDelimited, "opset_import");
                    var o = new WireReader(r.Bytes("opset_import"), "OperatorSetIdProto");
                    string domain = "";
                    long version = 0;
                    while (o.Next(out int of, out var ot))
                        switch (of)
                        {
                            case 1: domain = o.String("domain"); break;
                            case 2: version = o.Int64("version"); break;
                            default: o.Skip(of, ot); break;
                        }
                    m.Opsets.Add((domain, version));
                    break;
                case 14:
                    var (k, v) = StringPair(r.Bytes("metadata_props"));
                    m.Metadata[k] = v;
                    break;
                case 25:
                    var fr = new WireReader(r.Bytes("functions"), "FunctionProto");
                    string name = "?";
                    while (fr.Next(out int ff, out var ft))
                        if (ff == 1) name = fr.String("name"); else fr.Skip(ff, ft);
                    m.Functions.Add(name);
                    break;
                default: r.Skip(f, t); break;
            }
        return m;
    }

    public static (string Key, string Value) StringPair(ReadOnlyMemory<byte> bytes)
    {
        var r = new WireReader(bytes, "StringStringEntryProto");
        string key = "", value = "";
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: key = r.String("key"); break;
                case 2: value = r.String("value"); break;
                default: r.Skip(f, t); break;
            }
        return (key, value);
    }
}

/// <summary>GraphProto.</summary>
internal sealed class GraphProto
{
    public string Name = "";
    public readonly List<NodeProto> Nodes = new();
    public readonly List<TensorProto> Initializers = new();
    public readonly List<ValueInfoProto> Inputs = new(), Outputs = new(), ValueInfo = new();
    public int SparseInitializers;

    public static GraphProto Parse(ReadOnlyMemory<byte> bytes, string where)
    {
        var g = new GraphProto();
        var r = new WireReader(bytes, $"GraphProto ({where})");
        while (r.Next(out int f, out var t))
        {
            if (f is 1 or 5 or 11 or 12 or 13 or 15)
                r.Expect(t, WireType.LengthDelimited, $"field {f}");
            switch (f)
            {
                case 1: g.Nodes.Add(NodeProto.Parse(r.Bytes("node"), g.Nodes.Count)); break;
                case 2: g.Name = r.String("name"); break;
                case 5: g.Initializers.Add(TensorProto.Parse(r.Bytes("initializer"), "initializer")); break;
                case 11: g.Inputs.Add(ValueInfoProto.Parse(r.Bytes("input"))); break;
                case 12: g.Outputs.Add(ValueInfoProto.Parse(r.Bytes("output"))); break;
                case 13: g.ValueInfo.Add(ValueInfoProto.Parse(r.Bytes("value_info"))); break;
                case 15: r.Bytes("sparse_initializer"); g.SparseInitializers++; break;
                default: r.Skip(f, t); break;
            }
        }
        return g;
    }
}

/// <summary>NodeProto.</summary>
internal sealed class NodeProto
{
    public readonly List<string> Inputs = new(), Outputs = new();
    public string Name = "", OpType = "", Domain = "";
    public readonly Dictionary<string, AttributeProto> Attributes = new();

    /// <summary>The node as error messages name it: its name (or index) and op.</summary>
    public string Label(int index) => $"node {(Name.Length > 0 ? "'" + Name + "'" : "#" + index)} ({OpType})";

    public static NodeProto Parse(ReadOnlyMemory<byte> bytes, int index)
    {
        var n = new NodeProto();
        var r = new WireReader(bytes, $"NodeProto #{index}");
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: n.Inputs.Add(r.String("input")); break;
                case 2: n.Outputs.Add(r.String("output")); break;
                case 3: n.Name = r.String("name"); break;
                case 4: n.OpType = r.String("op_type"); break;
                case 7: n.Domain = r.String("domain"); break;
                case 5:
                    r.Expect(t, WireType.LengthDelimited, "attribute");
                    var a = AttributeProto.Parse(r.Bytes("attribute"));
                    if (!n.Attributes.TryAdd(a.Name, a))
                        throw new OnnxFormatException($"NodeProto #{index} ({n.OpType}): attribute '{a.Name}' appears twice");
                    break;
                default: r.Skip(f, t); break;
            }
        return n;
    }
}

/// <summary>AttributeProto.AttributeType.</summary>
internal enum AttributeType
{
    Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, Floats = 6, Ints = 7, Strings = 8, Tensors = 9, Graphs = 10,
    SparseTensor = 11, SparseTensors = 12, TypeProto = 13, TypeProtos = 14,
}

/// <summary>AttributeProto.</summary>
internal sealed class AttributeProto
{
    public string Name = "", RefAttrName = "";
    public AttributeType Type;
    public float F;
    public long I;
    public ReadOnlyMemory<byte> S;
    public TensorProto? T;
    public GraphProto? G;
    public readonly List<float> Floats = new();
    public readonly List<long> Ints = new();
    public readonly List<ReadOnlyMemory<byte>> Strings = new();
    public readonly List<TensorProto> Tensors = new();
    public readonly List<GraphProto> Graphs = new();

    public static AttributeProto Parse(ReadOnlyMemory<byte> bytes)
    {
        var a = new AttributeProto();
        var r = new WireReader(bytes, "AttributeProto");
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: a.Name = r.String("name"); break;
                case 21: a.RefAttrName = r.String("ref_attr_name"); break;
                case 20: a.Type = (AttributeType)r.Int32("type"); break;
                case 2: r.Expect(t, WireType.Fixed32, "f"); a.F = BitConverter.UInt32BitsToSingle(r.Fixed32("f")); break;
                case 3: a.I = r.Int64("i"); break;
                case 4: a.S = r.Bytes("s"); break;
                case 5: a.T = TensorProto.Parse(r.Bytes("t"), $"attribute '{a.Name}'"); break;
                case 6: a.G = GraphProto.Parse(r.Bytes("g"), $"attribute '{a.Name}'"); break;
                case 7: r.Floats(t, a.Floats, "floats"); break;
                case 8: r.Int64s(t, a.Ints, "ints"); break;
                case 9: a.Strings.Add(r.Bytes("strings")); break;
                case 10: a.Tensors.Add(TensorProto.Parse(r.Bytes("tensors"), $"attribute '{a.Name}'")); break;
                case 11: a.Graphs.Add(GraphProto.Parse(r.Bytes("graphs"), $"attribute '{a.Name}'")); break;
                default: r.Skip(f, t); break;
            }
        return a;
    }
}

/// <summary>ValueInfoProto with its TypeProto flattened: tensors carry an element type and (optionally) a shape.</summary>
internal sealed class ValueInfoProto
{
    public string Name = "";

    /// <summary>"tensor", "sequence", "map", "optional", "sparse_tensor", "opaque", or "" when no type was given.</summary>
    public string Kind = "";
    public OnnxElementType ElementType;

    /// <summary>Dimensions (a value, or a symbolic name, or neither); null when the shape is unknown.</summary>
    public List<(long? Value, string? Param)>? Shape;

    public static ValueInfoProto Parse(ReadOnlyMemory<byte> bytes)
    {
        var v = new ValueInfoProto();
        var r = new WireReader(bytes, "ValueInfoProto");
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: v.Name = r.String("name"); break;
                case 2: v.ParseType(r.Bytes("type")); break;
                default: r.Skip(f, t); break;
            }
        return v;
    }

    private void ParseType(ReadOnlyMemory<byte> bytes)
    {
        var r = new WireReader(bytes, $"TypeProto of '{Name}'");
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: Kind = "tensor"; ParseTensorType(r.Bytes("tensor_type")); break;
                case 4: Kind = "sequence"; r.Skip(f, t); break;
                case 5: Kind = "map"; r.Skip(f, t); break;
                case 7: Kind = "opaque"; r.Skip(f, t); break;
                case 8: Kind = "sparse_tensor"; r.Skip(f, t); break;
                case 9: Kind = "optional"; r.Skip(f, t); break;
                default: r.Skip(f, t); break;
            }
    }

    private void ParseTensorType(ReadOnlyMemory<byte> bytes)
    {
        var r = new WireReader(bytes, $"TypeProto.Tensor of '{Name}'");
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: ElementType = (OnnxElementType)r.Int32("elem_type"); break;
                case 2:
                    Shape = new();
                    var s = new WireReader(r.Bytes("shape"), $"TensorShapeProto of '{Name}'");
                    while (s.Next(out int sf, out var st))
                    {
                        if (sf != 1)
                        {
                            s.Skip(sf, st);
                            continue;
                        }
                        var d = new WireReader(s.Bytes("dim"), $"TensorShapeProto.Dimension of '{Name}'");
                        long? value = null;
                        string? param = null;
                        while (d.Next(out int df, out var dt))
                            switch (df)
                            {
                                case 1: value = d.Int64("dim_value"); break;
                                case 2: param = d.String("dim_param"); break;
                                default: d.Skip(df, dt); break;
                            }
                        Shape.Add((value, param));
                    }
                    break;
                default: r.Skip(f, t); break;
            }
    }
}

/// <summary>TensorProto: dimensions, element type and the data in whichever field the writer chose.</summary>
internal sealed class TensorProto
{
    public readonly List<long> Dims = new();
    public OnnxElementType DataType;
    public string Name = "";
    public readonly List<float> FloatData = new();
    public readonly List<long> Int32Data = new(), Int64Data = new(), UInt64Data = new();
    public readonly List<double> DoubleData = new();
    public readonly List<ReadOnlyMemory<byte>> StringData = new();
    public ReadOnlyMemory<byte>? RawData;
    public readonly Dictionary<string, string> ExternalData = new();
    public bool External, Segmented;

    public static TensorProto Parse(ReadOnlyMemory<byte> bytes, string where)
    {
        var p = new TensorProto();
        var r = new WireReader(bytes, $"TensorProto ({where})");
        while (r.Next(out int f, out var t))
            switch (f)
            {
                case 1: r.Int64s(t, p.Dims, "dims"); break;
                case 2: p.DataType = (OnnxElementType)r.Int32("data_type"); break;
                case 3: p.Segmented = true; r.Skip(f, t); break;
                case 4: r.Floats(t, p.FloatData, "float_data"); break;
                case 5: r.Int64s(t, p.Int32Data, "int32_data"); break;
                case 6: p.StringData.Add(r.Bytes("string_data")); break;
                case 7: r.Int64s(t, p.Int64Data, "int64_data"); break;
                case 8: p.Name = r.String("name"); break;
                case 9: p.RawData = r.Bytes("raw_data"); break;
                case 10: r.Doubles(t, p.DoubleData, "double_data"); break;
                case 11: r.Int64s(t, p.UInt64Data, "uint64_data"); break;
                case 13:
                    var (k, v) = ModelProto.StringPair(r.Bytes("external_data"));
                    p.ExternalData[k] = v;
                    break;
                case 14: p.External = r.Int32("data_location") == 1; break;
                default: r.Skip(f, t); break;
            }
        return p;
    }
}

using Google.Protobuf;

namespace Scst.Actors.Serialization;

/// <summary>
/// Hand-written protobuf wire format (no protoc in the build): fields are written in tag order and
/// unknown fields are skipped, so adding a field with a new number stays compatible with old journals.
/// </summary>
public sealed class ProtoWriter
{
    readonly MemoryStream _ms = new();
    readonly CodedOutputStream _out;
    public ProtoWriter() => _out = new CodedOutputStream(_ms, leaveOpen: true);

    public ProtoWriter Int64(int field, long v) { if (v != 0) { _out.WriteTag(field, WireFormat.WireType.Varint); _out.WriteInt64(v); } return this; }
    public ProtoWriter Int32(int field, int v) { if (v != 0) { _out.WriteTag(field, WireFormat.WireType.Varint); _out.WriteInt32(v); } return this; }
    public ProtoWriter Bool(int field, bool v) { if (v) { _out.WriteTag(field, WireFormat.WireType.Varint); _out.WriteBool(v); } return this; }
    public ProtoWriter Double(int field, double v) { if (v != 0) { _out.WriteTag(field, WireFormat.WireType.Fixed64); _out.WriteDouble(v); } return this; }
    public ProtoWriter String(int field, string? v) { if (!string.IsNullOrEmpty(v)) { _out.WriteTag(field, WireFormat.WireType.LengthDelimited); _out.WriteString(v); } return this; }
    public ProtoWriter Bytes(int field, ByteString v) { if (!v.IsEmpty) { _out.WriteTag(field, WireFormat.WireType.LengthDelimited); _out.WriteBytes(v); } return this; }

    /// <summary>Packed repeated int32 (proto3 default for scalars).</summary>
    public ProtoWriter PackedInt32(int field, IReadOnlyList<int> values)
    {
        if (values.Count == 0) return this;
        var len = 0;
        foreach (var v in values) len += CodedOutputStream.ComputeInt32Size(v);
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteLength(len);
        foreach (var v in values) _out.WriteInt32(v);
        return this;
    }

    public ProtoWriter PackedInt64(int field, IReadOnlyList<long> values)
    {
        if (values.Count == 0) return this;
        var len = 0;
        foreach (var v in values) len += CodedOutputStream.ComputeInt64Size(v);
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteLength(len);
        foreach (var v in values) _out.WriteInt64(v);
        return this;
    }

    public ProtoWriter PackedFloat(int field, IReadOnlyList<float> values)
    {
        if (values.Count == 0) return this;
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteLength(values.Count * 4);
        foreach (var v in values) _out.WriteFloat(v);
        return this;
    }

    public ProtoWriter PackedDouble(int field, IReadOnlyList<double> values)
    {
        if (values.Count == 0) return this;
        _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _out.WriteLength(values.Count * 8);
        foreach (var v in values) _out.WriteDouble(v);
        return this;
    }

    /// <summary>Repeated string; every element is written (empty ones too), so positions survive the round trip.</summary>
    public ProtoWriter Strings(int field, IReadOnlyList<string> values)
    {
        foreach (var v in values) { _out.WriteTag(field, WireFormat.WireType.LengthDelimited); _out.WriteString(v); }
        return this;
    }

    public ProtoWriter Map(int field, IReadOnlyDictionary<string, string> map)
    {
        foreach (var (k, v) in map.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var entry = new ProtoWriter().String(1, k).String(2, v).ToBytes();
            _out.WriteTag(field, WireFormat.WireType.LengthDelimited);
            _out.WriteBytes(ByteString.CopyFrom(entry));
        }
        return this;
    }

    public byte[] ToBytes() { _out.Flush(); return _ms.ToArray(); }
}

/// <summary>Reads a message written by <see cref="ProtoWriter"/>: call <see cref="Next"/> and switch on the field number.</summary>
public sealed class ProtoReader
{
    readonly CodedInputStream _in;
    uint _tag;
    public ProtoReader(byte[] bytes) => _in = new CodedInputStream(bytes);

    public int Next() { _tag = _in.ReadTag(); return _tag == 0 ? 0 : WireFormat.GetTagFieldNumber(_tag); }
    public long Int64() => _in.ReadInt64();
    public int Int32() => _in.ReadInt32();
    public bool Bool() => _in.ReadBool();
    public double Double() => _in.ReadDouble();
    public string String() => _in.ReadString();
    public ByteString Bytes() => _in.ReadBytes();
    public void Skip() => _in.SkipLastField();

    /// <summary>Accepts packed and unpacked encodings, as protobuf parsers must.</summary>
    public void Int32s(List<int> into)
    {
        if (WireFormat.GetTagWireType(_tag) != WireFormat.WireType.LengthDelimited) { into.Add(_in.ReadInt32()); return; }
        var bytes = _in.ReadBytes().ToByteArray();
        var sub = new CodedInputStream(bytes);
        while (!sub.IsAtEnd) into.Add(sub.ReadInt32());
    }

    public void Int64s(List<long> into)
    {
        if (WireFormat.GetTagWireType(_tag) != WireFormat.WireType.LengthDelimited) { into.Add(_in.ReadInt64()); return; }
        var sub = new CodedInputStream(_in.ReadBytes().ToByteArray());
        while (!sub.IsAtEnd) into.Add(sub.ReadInt64());
    }

    public void Floats(List<float> into)
    {
        if (WireFormat.GetTagWireType(_tag) != WireFormat.WireType.LengthDelimited) { into.Add(_in.ReadFloat()); return; }
        var sub = new CodedInputStream(_in.ReadBytes().ToByteArray());
        while (!sub.IsAtEnd) into.Add(sub.ReadFloat());
    }

    public void Doubles(List<double> into)
    {
        if (WireFormat.GetTagWireType(_tag) != WireFormat.WireType.LengthDelimited) { into.Add(_in.ReadDouble()); return; }
        var sub = new CodedInputStream(_in.ReadBytes().ToByteArray());
        while (!sub.IsAtEnd) into.Add(sub.ReadDouble());
    }

    public void MapEntry(Dictionary<string, string> into)
    {
        var r = new ProtoReader(_in.ReadBytes().ToByteArray());
        string k = "", v = "";
        for (int f; (f = r.Next()) != 0;)
            switch (f) { case 1: k = r.String(); break; case 2: v = r.String(); break; default: r.Skip(); break; }
        into[k] = v;
    }
}

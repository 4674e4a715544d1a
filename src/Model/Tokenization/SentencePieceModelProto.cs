using System.Buffers.Binary;
using System.Text;

namespace Scst.Model.Tokenization;

/// <summary>Piece types of <c>ModelProto.SentencePiece.Type</c> (sentencepiece_model.proto).</summary>
public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>
/// The parts of sentencepiece's <c>ModelProto</c> (sentencepiece_model.proto, proto2) that encoding and decoding
/// read: pieces, the trainer_spec fields that shape them and the normalizer_spec. Defaults are the proto's.
/// </summary>
public sealed class SentencePieceModelProto
{
    public List<(string Piece, float Score, PieceType Type)> Pieces { get; } = [];

    // trainer_spec
    public int ModelType { get; private set; } = 1; // UNIGRAM
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public bool ByteFallback { get; private set; }
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string UnkSurface { get; private set; } = " \u2047 ";

    // normalizer_spec
    public string NormalizerName { get; private set; } = "";
    public byte[] PrecompiledCharsmap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    /// <summary>Whether the file has a denormalizer_spec with rules (decode would then rewrite its output).</summary>
    public bool HasDenormalizer { get; private set; }

    public static SentencePieceModelProto Parse(ReadOnlySpan<byte> bytes)
    {
        var m = new SentencePieceModelProto();
        var r = new Reader(bytes);
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            if (wire != 2) { r.Skip(wire); continue; }
            var body = r.Bytes();
            switch (field)
            {
                case 1: m.Pieces.Add(ParsePiece(body)); break;
                case 2: m.ParseTrainerSpec(body); break;
                case 3: m.ParseNormalizerSpec(body, denormalizer: false); break;
                case 5: m.ParseNormalizerSpec(body, denormalizer: true); break;
            }
        }
        return m;
    }

    private static (string, float, PieceType) ParsePiece(ReadOnlySpan<byte> body)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        var r = new Reader(body);
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            if (field == 1 && wire == 2) piece = Encoding.UTF8.GetString(r.Bytes());
            else if (field == 2 && wire == 5) score = r.Fixed32Float();
            else if (field == 3 && wire == 0) type = (PieceType)(int)r.Varint();
            else r.Skip(wire);
        }
        return (piece, score, type);
    }

    private void ParseTrainerSpec(ReadOnlySpan<byte> body)
    {
        var r = new Reader(body);
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            if (wire == 0)
            {
                // int32 fields are sign-extended 64-bit varints (-1 takes ten bytes).
                var v = (int)(long)r.Varint();
                switch (field)
                {
                    case 3: ModelType = v; break;
                    case 24: TreatWhitespaceAsSuffix = v != 0; break;
                    case 35: ByteFallback = v != 0; break;
                    case 40: UnkId = v; break;
                    case 41: BosId = v; break;
                    case 42: EosId = v; break;
                    case 43: PadId = v; break;
                }
            }
            else if (field == 44 && wire == 2) UnkSurface = Encoding.UTF8.GetString(r.Bytes());
            else r.Skip(wire);
        }
    }

    private void ParseNormalizerSpec(ReadOnlySpan<byte> body, bool denormalizer)
    {
        var r = new Reader(body);
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            if (denormalizer)
            {
                if (field == 2 && wire == 2) HasDenormalizer |= r.Bytes().Length > 0;
                else r.Skip(wire);
                continue;
            }
            if (field == 1 && wire == 2) NormalizerName = Encoding.UTF8.GetString(r.Bytes());
            else if (field == 2 && wire == 2) PrecompiledCharsmap = r.Bytes().ToArray();
            else if (field is 3 or 4 or 5 && wire == 0)
            {
                var on = r.Varint() != 0;
                if (field == 3) AddDummyPrefix = on;
                else if (field == 4) RemoveExtraWhitespaces = on;
                else EscapeWhitespaces = on;
            }
            else r.Skip(wire);
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> b)
    {
        private readonly ReadOnlySpan<byte> _b = b;
        private int _pos;

        public readonly bool End => _pos >= _b.Length;

        public (int Field, int Wire) Tag()
        {
            var t = Varint();
            var field = (int)(t >> 3);
            if (field == 0) throw new InvalidDataException("protobuf field number 0.");
            return (field, (int)(t & 7));
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _b.Length) throw new InvalidDataException("truncated protobuf varint.");
                var x = _b[_pos++];
                v |= (ulong)(x & 0x7F) << shift;
                if (x < 0x80) return v;
            }
            throw new InvalidDataException("malformed protobuf varint.");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            var len = Varint();
            if (len > (ulong)(_b.Length - _pos)) throw new InvalidDataException("truncated protobuf field.");
            var s = _b.Slice(_pos, (int)len);
            _pos += (int)len;
            return s;
        }

        public float Fixed32Float()
        {
            if (_b.Length - _pos < 4) throw new InvalidDataException("truncated protobuf fixed32.");
            var v = BinaryPrimitives.ReadSingleLittleEndian(_b.Slice(_pos, 4));
            _pos += 4;
            return v;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Bytes(); break;
                case 5: Advance(4); break;
                default: throw new InvalidDataException($"unsupported protobuf wire type {wire}.");
            }
        }

        private void Advance(int n)
        {
            if (_b.Length - _pos < n) throw new InvalidDataException("truncated protobuf field.");
            _pos += n;
        }
    }
}

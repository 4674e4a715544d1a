namespace Scst.Model.Tokenization;

/// <summary>
/// An immutable byte-wise trie over UTF-8 keys, each key holding an int value. The root's children are a direct
/// 256-entry table; deeper nodes keep their children as a label-sorted slice of flat arrays, so a walk is a few
/// array reads per byte and allocates nothing.
/// </summary>
internal sealed class ByteTrie
{
    public const int Root = 0;

    private readonly int[] _rootChildren = new int[256];
    private readonly int[] _childStart; // node i's children are [_childStart[i], _childStart[i + 1])
    private readonly byte[] _labels;
    private readonly int[] _targets;
    private readonly int[] _values;     // -1: no key ends here

    private ByteTrie(int[] childStart, byte[] labels, int[] targets, int[] values)
    {
        _childStart = childStart;
        _labels = labels;
        _targets = targets;
        _values = values;
        Array.Fill(_rootChildren, -1);
        for (var c = childStart[Root]; c < childStart[Root + 1]; c++) _rootChildren[labels[c]] = targets[c];
    }

    public bool IsEmpty => _values.Length == 1;

    /// <summary>Builds the trie; a key given twice keeps its first value (<paramref name="duplicate"/> is told of the others).</summary>
    public static ByteTrie Build(IEnumerable<(byte[] Key, int Value)> entries, Action<byte[]>? duplicate = null)
    {
        var children = new List<SortedDictionary<byte, int>> { new() };
        var values = new List<int> { -1 };
        foreach (var (key, value) in entries)
        {
            var node = Root;
            foreach (var b in key)
            {
                if (!children[node].TryGetValue(b, out var next))
                {
                    next = children.Count;
                    children.Add(new SortedDictionary<byte, int>());
                    values.Add(-1);
                    children[node][b] = next;
                }
                node = next;
            }
            if (values[node] >= 0) duplicate?.Invoke(key);
            else values[node] = value;
        }
        var start = new int[children.Count + 1];
        for (var i = 0; i < children.Count; i++) start[i + 1] = start[i] + children[i].Count;
        var labels = new byte[start[^1]];
        var targets = new int[start[^1]];
        for (var i = 0; i < children.Count; i++)
        {
            var at = start[i];
            foreach (var (label, target) in children[i]) { labels[at] = label; targets[at] = target; at++; }
        }
        return new ByteTrie(start, labels, targets, [.. values]);
    }

    /// <summary>The child of <paramref name="node"/> along byte <paramref name="b"/>, or −1.</summary>
    public int Child(int node, byte b)
    {
        if (node == Root) return _rootChildren[b];
        int lo = _childStart[node], hi = _childStart[node + 1] - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >> 1;
            var l = _labels[mid];
            if (l == b) return _targets[mid];
            if (l < b) lo = mid + 1;
            else hi = mid - 1;
        }
        return -1;
    }

    public int Value(int node) => _values[node];

    /// <summary>Length of the longest key that is a prefix of <paramref name="text"/>, or 0 when none is.</summary>
    public int LongestPrefix(ReadOnlySpan<byte> text)
    {
        int node = Root, best = 0;
        for (var i = 0; i < text.Length; i++)
        {
            node = Child(node, text[i]);
            if (node < 0) break;
            if (_values[node] >= 0) best = i + 1;
        }
        return best;
    }
}

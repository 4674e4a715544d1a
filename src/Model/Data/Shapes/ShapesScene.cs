namespace Scst.Model.Data.Shapes;

public enum ShapeKind { Circle, Square, Triangle }

public enum ShapeSize { Small, Large }

/// <summary>One shape on the 3×3 layout grid; <see cref="Row"/> 0 is the top, <see cref="Col"/> 0 the left.</summary>
public sealed record ShapeObject(ShapeKind Kind, ShapeColor Color, ShapeSize Size, int Row, int Col, float CenterX, float CenterY, float Radius);

public sealed record ShapeColor(string Name, byte R, byte G, byte B);

/// <summary>A scene: 1–3 shapes in distinct grid cells with distinct (kind, colour) pairs, on black.</summary>
public sealed record ShapesScene(IReadOnlyList<ShapeObject> Objects)
{
    public static readonly ShapeColor[] Colors =
    [
        new("red", 220, 40, 40),
        new("green", 40, 180, 60),
        new("blue", 50, 90, 235),
        new("yellow", 235, 215, 40),
        new("purple", 150, 60, 200),
        new("white", 235, 235, 235),
    ];

    /// <summary>Draws a random scene for an image of <paramref name="imageSize"/> pixels.</summary>
    public static ShapesScene Sample(Random rng, int imageSize)
    {
        // 1, 2 or 3 shapes with probabilities 0.4 / 0.35 / 0.25.
        var u = rng.NextDouble();
        var count = u < 0.4 ? 1 : u < 0.75 ? 2 : 3;
        var cells = Enumerable.Range(0, 9).ToArray();
        rng.Shuffle(cells);
        var cell = imageSize / 3f;
        var objects = new List<ShapeObject>();
        var used = new HashSet<(ShapeKind, string)>();
        for (var k = 0; k < count; k++)
        {
            ShapeKind kind;
            ShapeColor color;
            // Distinct (kind, colour) pairs keep every caption unambiguous about which shape it describes.
            do
            {
                kind = (ShapeKind)rng.Next(3);
                color = Colors[rng.Next(Colors.Length)];
            } while (!used.Add((kind, color.Name)));
            var size = rng.NextDouble() < 0.5 ? ShapeSize.Small : ShapeSize.Large;
            var (row, col) = (cells[k] / 3, cells[k] % 3);
            var jitter = cell * 0.12f;
            var cx = (col + 0.5f) * cell + (float)(rng.NextDouble() * 2 - 1) * jitter;
            var cy = (row + 0.5f) * cell + (float)(rng.NextDouble() * 2 - 1) * jitter;
            var radius = cell * (size == ShapeSize.Small ? 0.2f : 0.38f);
            objects.Add(new ShapeObject(kind, color, size, row, col, cx, cy, radius));
        }
        return new ShapesScene(objects);
    }
}

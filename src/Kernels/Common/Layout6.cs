using System.Runtime.CompilerServices;

namespace GpuNet.Kernels;

/// <summary>
/// A shape of up to <see cref="MaxRank"/> dimensions and one operand's strides, as kernel
/// parameters (ILGPU kernels take plain structs, not arrays). Launchers coalesce dimensions first
/// (<see cref="ShapeUtil.Coalesce"/>), so rank 6 covers every practical view; shapes are padded
/// with leading 1s so the index math is straight-line code with no loop or switch.
/// </summary>
public struct Layout6
{
    /// <summary>Largest rank a strided kernel handles after coalescing.</summary>
    public const int MaxRank = 6;

    /// <summary>Sizes, outermost first.</summary>
    public int D0, D1, D2, D3, D4, D5;

    /// <summary>Strides in elements, outermost first.</summary>
    public int S0, S1, S2, S3, S4, S5;

    /// <summary>Builds a layout from a coalesced shape and strides (rank ≤ 6), padding with leading 1s.</summary>
    public static Layout6 Create(string op, ReadOnlySpan<int> shape, ReadOnlySpan<int> strides)
    {
        if (shape.Length > MaxRank)
            throw new ShapeMismatchException(op, "tensor", $"a view of at most {MaxRank} non-mergeable dimensions", GpuNetException.FormatShape(shape));
        Span<int> d = stackalloc int[MaxRank];
        Span<int> s = stackalloc int[MaxRank];
        d.Fill(1);
        s.Clear();
        int pad = MaxRank - shape.Length;
        for (int i = 0; i < shape.Length; i++)
        {
            d[pad + i] = shape[i];
            s[pad + i] = strides[i];
        }
        return new Layout6
        {
            D0 = d[0], D1 = d[1], D2 = d[2], D3 = d[3], D4 = d[4], D5 = d[5],
            S0 = s[0], S1 = s[1], S2 = s[2], S3 = s[3], S4 = s[4], S5 = s[5],
        };
    }

    /// <summary>Storage offset of the element at row-major position <paramref name="linear"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int Offset(int linear)
    {
        int i = linear, off = 0, c;
        c = i % D5; i /= D5; off += c * S5;
        c = i % D4; i /= D4; off += c * S4;
        c = i % D3; i /= D3; off += c * S3;
        c = i % D2; i /= D2; off += c * S2;
        c = i % D1; i /= D1; off += c * S1;
        return off + i * S0;
    }

    /// <summary>The same shape read with other strides (another operand).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly Layout6 WithStrides(Layout6 other) => this with
    {
        S0 = other.S0, S1 = other.S1, S2 = other.S2, S3 = other.S3, S4 = other.S4, S5 = other.S5,
    };
}

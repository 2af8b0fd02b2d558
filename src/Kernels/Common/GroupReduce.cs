using System.Runtime.CompilerServices;
using ILGPU;

namespace GpuNet.Kernels;

/// <summary>An associative combine of two partial results (sum, max, (max, Σexp), Welford, ...).</summary>
public interface ICombine<T> where T : unmanaged
{
    /// <summary>Combines two partials.</summary>
    T Combine(T a, T b);
}

/// <summary>a + b: the group sum.</summary>
public struct FloatSum : ICombine<float>
{
    /// <inheritdoc/>
    public readonly float Combine(float a, float b) => a + b;
}

/// <summary>A pair of floats summed together (two row sums in one reduction).</summary>
public struct Float2
{
    /// <summary>The two components.</summary>
    public float X, Y;

    /// <summary>Componentwise sum.</summary>
    public readonly Float2 Add(Float2 o) => new() { X = X + o.X, Y = Y + o.Y };

    /// <summary>Componentwise maximum.</summary>
    public readonly Float2 Max(Float2 o) => new() { X = IntrinsicMath.Max(X, o.X), Y = IntrinsicMath.Max(Y, o.Y) };

    /// <summary>The group sum of pairs.</summary>
    public struct Sum : ICombine<Float2>
    {
        /// <inheritdoc/>
        public readonly Float2 Combine(Float2 a, Float2 b) => a.Add(b);
    }
}

/// <summary>Three floats summed together (three row sums in one reduction).</summary>
public struct Float3
{
    /// <summary>The three components.</summary>
    public float X, Y, Z;

    /// <summary>Componentwise sum.</summary>
    public readonly Float3 Add(Float3 o) => new() { X = X + o.X, Y = Y + o.Y, Z = Z + o.Z };

    /// <summary>The group sum of triples.</summary>
    public struct Sum : ICombine<Float3>
    {
        /// <inheritdoc/>
        public readonly Float3 Combine(Float3 a, Float3 b) => a.Add(b);
    }
}

/// <summary>Cooperative reductions of one value per thread across a group.</summary>
public static class GroupReduce
{
    /// <summary>
    /// Combines one partial per thread across the group and returns the total to every thread. Warp
    /// shuffles first (no shared memory, no barrier; ILGPU splits a struct into 32-bit shuffles), then warp
    /// leaders meet in <paramref name="slots"/> (≥ one per warp, at most 32) and thread 0 folds them.
    /// Contains barriers: every thread of the group must call it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T AllReduce<T, TOp>(T value, ArrayView<T> slots, TOp op) where T : unmanaged where TOp : struct, ICombine<T>
    {
        for (int delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
        {
            var other = Warp.ShuffleDown(value, delta);
            // A lane whose partner is past the warp keeps its value; only lane 0's chain is read, and it never crosses.
            value = Warp.LaneIdx + delta < Warp.WarpSize ? op.Combine(value, other) : value;
        }
        if (Warp.LaneIdx == 0)
            slots[Warp.WarpIdx] = value;
        Group.Barrier();
        if (Group.IdxX == 0)
        {
            int warps = (Group.DimX + Warp.WarpSize - 1) / Warp.WarpSize;
            var total = slots[0];
            for (int w = 1; w < warps; w++)
                total = op.Combine(total, slots[w]);
            slots[0] = total;
        }
        Group.Barrier();
        var result = slots[0];
        // Callers loop over rows and reuse the slots: nobody may overwrite slot 0 before all have read it.
        Group.Barrier();
        return result;
    }
}

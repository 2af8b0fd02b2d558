namespace GpuNet;

/// <summary>
/// Philox 4×32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
/// counter-based generator, so element <c>i</c> of a random tensor depends only on (seed, i) and
/// every device, thread count or launch shape produces the same values. The device-side sampling
/// kernels use the same function, so host and device streams agree bit for bit.
/// </summary>
public static class Philox
{
    /// <summary>The round multipliers and the key increments (Weyl constants).</summary>
    internal const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>Ten rounds of Philox 4×32 on counter (c0..c3) with key (k0, k1). Plain integer code: kernels call it too.</summary>
    public static PhiloxBlock Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
            c0 = n0;
            c1 = lo1;
            c2 = n2;
            c3 = lo0;
            k0 += W0;
            k1 += W1;
        }
        return new PhiloxBlock { X0 = c0, X1 = c1, X2 = c2, X3 = c3 };
    }

    /// <summary>The <paramref name="index"/>-th 32-bit word of the stream for <paramref name="seed"/> (the same on host and device).</summary>
    public static uint Word(ulong seed, long index)
    {
        long block = index >> 2;
        var b = Block((uint)block, (uint)(block >> 32), 0, 0, (uint)seed, (uint)(seed >> 32));
        long lane = index & 3;
        return lane == 0 ? b.X0 : lane == 1 ? b.X1 : lane == 2 ? b.X2 : b.X3;
    }

    /// <summary>Maps a word to [0, 1) with 24 bits (every float32 result exactly representable).</summary>
    public static float ToUniform(uint word) => (word >> 8) * (1.0f / 16777216.0f);

    /// <summary>Fills <paramref name="dest"/> with uniform values in [low, high); element i uses word i.</summary>
    public static void FillUniform(Span<float> dest, ulong seed, float low, float high)
    {
        for (int i = 0; i < dest.Length; i++)
            dest[i] = low + (high - low) * ToUniform(Word(seed, i));
    }

    /// <summary>
    /// Fills <paramref name="dest"/> with normal values (Box–Muller): elements 2p and 2p+1 use
    /// words 2p and 2p+1 as one pair.
    /// </summary>
    public static void FillNormal(Span<float> dest, ulong seed, float mean, float std)
    {
        for (int i = 0; i < dest.Length; i += 2)
        {
            double u1 = ((Word(seed, i) >> 8) + 1.0) / 16777216.0; // (0, 1]: log stays finite
            double u2 = (Word(seed, i + 1) >> 8) / 16777216.0;
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            dest[i] = (float)(mean + std * r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < dest.Length)
                dest[i + 1] = (float)(mean + std * r * Math.Sin(2 * Math.PI * u2));
        }
    }
}

/// <summary>The four 32-bit words of one Philox block.</summary>
public struct PhiloxBlock
{
    /// <summary>Output words.</summary>
    public uint X0, X1, X2, X3;
}

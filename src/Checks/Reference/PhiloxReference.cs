using System.Numerics;

namespace GpuNet.Kernels.Reference;

/// <summary>
/// Philox 4×32-10 written again from the paper (Salmon et al., SC 2011), apart from the production <see cref="Philox"/>: the
/// multiply-high with BigInteger, the rounds as the paper's S-box and permutation, and the stream layout (seed, index →
/// counter, key, word) and the 24-bit uniform mapping spelled out here, so the random ops' references do not call the code
/// under test. <see cref="KnownAnswers"/> are Random123's published test vectors; the checks prove this reference against
/// them before using it.
/// </summary>
public static class PhiloxReference
{
    /// <summary>(counter, key, output) of Random123's kat_vectors for philox4x32-10.</summary>
    public static readonly (uint[] Counter, uint[] Key, uint[] Output)[] KnownAnswers =
    {
        (new uint[] { 0, 0, 0, 0 }, new uint[] { 0, 0 }, new uint[] { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }),
        (new uint[] { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff }, new uint[] { 0xffffffff, 0xffffffff }, new uint[] { 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd }),
        (new uint[] { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344 }, new uint[] { 0xa4093822, 0x299f31d0 }, new uint[] { 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 }),
    };

    /// <summary>The ten-round block function.</summary>
    public static uint[] Block(uint[] counter, uint[] key)
    {
        var x = (uint[])counter.Clone();
        uint k0 = key[0], k1 = key[1];
        for (int round = 0; round < 10; round++)
        {
            // S-box: two 32×32 → 64-bit products of the multipliers with x0 and x2, split into high and low halves.
            var product0 = new BigInteger(0xD2511F53u) * x[0];
            var product2 = new BigInteger(0xCD9E8D57u) * x[2];
            uint hi0 = (uint)(product0 >> 32), lo0 = (uint)(product0 & uint.MaxValue);
            uint hi2 = (uint)(product2 >> 32), lo2 = (uint)(product2 & uint.MaxValue);
            // Permutation and key mixing: (hi2 ⊕ x1 ⊕ k0, lo2, hi0 ⊕ x3 ⊕ k1, lo0).
            x = new[] { hi2 ^ x[1] ^ k0, lo2, hi0 ^ x[3] ^ k1, lo0 };
            unchecked
            {
                k0 += 0x9E3779B9;   // the golden ratio's fraction
                k1 += 0xBB67AE85;   // √3 − 1's
            }
        }
        return x;
    }

    /// <summary>GpuNet's stream: word i of seed s is word (i mod 4) of the block at counter (i / 4 as 64 bits, 0, 0) with key s.</summary>
    public static uint Word(ulong seed, long index)
    {
        ulong block = (ulong)index / 4;
        var output = Block(new[] { (uint)(block & uint.MaxValue), (uint)(block >> 32), 0u, 0u }, new[] { (uint)(seed & uint.MaxValue), (uint)(seed >> 32) });
        return output[index % 4];
    }

    /// <summary>A word's top 24 bits as a uniform in [0, 1).</summary>
    public static double Uniform(uint word) => Math.Floor(word / 256.0) / 16777216.0;

    /// <summary>Throws unless <see cref="Block"/> reproduces every known answer.</summary>
    public static void ProveAgainstKnownAnswers()
    {
        foreach (var (counter, key, output) in KnownAnswers)
            if (!Block(counter, key).SequenceEqual(output))
                throw new InvalidOperationException($"the Philox reference misses Random123's known answer for counter {string.Join(",", counter.Select(c => c.ToString("x8")))}");
    }
}

namespace GpuNet.Tests;

/// <summary>The byte-level mutations the loaders' fuzz tests apply to a valid file: one to four of bit flips, random bytes,
/// truncations, deleted spans, repeated spans and set high bits, at random places.</summary>
public static class ByteMutations
{
    /// <summary>A mutated copy of <paramref name="source"/>.</summary>
    public static byte[] Mutate(byte[] source, Random rng)
    {
        var b = source.ToList();
        int edits = 1 + rng.Next(4);
        for (int e = 0; e < edits && b.Count > 0; e++)
        {
            int at = rng.Next(b.Count);
            switch (rng.Next(6))
            {
                case 0: b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: b[at] = (byte)rng.Next(256); break;
                case 2: b.RemoveRange(at, b.Count - at); break;
                case 3: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(16))); break;
                case 4: b.InsertRange(at, b.Skip(rng.Next(b.Count)).Take(1 + rng.Next(16)).ToList()); break;
                default: b[at] = (byte)(b[at] | 0x80); break;
            }
        }
        return b.ToArray();
    }
}

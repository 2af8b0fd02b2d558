using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuNet.Kernels.Cpu;

/// <summary>
/// The fast CPU device's random fills: the same Philox 4×32-10 words and the same per-element arithmetic as the kernels'
/// <c>UniformAt</c>/<c>NormalAt</c>, generated a block at a time. The per-element loop computed a whole Philox block (ten
/// rounds) for each word it used — four per block for uniform, eight for a normal pair — and a normal's logarithm and root
/// for each of the pair's two elements: 64K uniforms took 1.2 ms, 64K normals 1.9–3.7 ms. Here four blocks run side by
/// side in the 64-bit lanes of AVX2 vectors (the rounds' 32 × 32 → 64-bit products are <c>vpmuludq</c>), two such sets at
/// once, and each block's four words become four outputs.
/// </summary>
internal static unsafe class HostSampling
{
    /// <summary>Blocks per parallel chunk item (64 outputs).</summary>
    private const int BlocksPerItem = 16;

    /// <summary>o[i] = low + (high − low)·u(word i) for i &lt; n.</summary>
    public static void FillUniform(float* o, int n, ulong seed, float low, float high) =>
        Fill(o, n, seed, (words, at, count) =>
        {
            for (int k = 0; k < count; k++)
                at[k] = low + (high - low) * Philox.ToUniform(words[k]);
        }, workPerBlock: 40);

    /// <summary>Box–Muller on word pairs (2p, 2p + 1) → o[2p], o[2p + 1], as <c>NormalAt</c> computes each.</summary>
    public static void FillNormal(float* o, int n, ulong seed, float mean, float std) =>
        Fill(o, n, seed, (words, at, count) =>
        {
            for (int k = 0; k < count; k += 2)
            {
                float u1 = ((words[k] >> 8) + 1f) * (1f / 16777216f);
                float u2 = (words[k + 1] >> 8) * (1f / 16777216f);
                float r = MathF.Sqrt(-2f * MathF.Log(u1));
                float angle = 6.2831853071795864769f * u2;
                at[k] = mean + std * r * MathF.Cos(angle);
                if (k + 1 < count)
                    at[k + 1] = mean + std * r * MathF.Sin(angle);
            }
        }, workPerBlock: 120);

    /// <summary>Turns up to 32 consecutive words (from an even index, so normal pairs never split) into outputs.</summary>
    private delegate void Emit(uint* words, float* at, int count);

    /// <summary>Words for o[0..n) block by block across the cores, each 32 handed to <paramref name="emit"/>.</summary>
    private static void Fill(float* o, int n, ulong seed, Emit emit, long workPerBlock)
    {
        long blocks = ((long)n + 3) / 4;
        int items = (int)((blocks + BlocksPerItem - 1) / BlocksPerItem);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        HostParallel.For(items, BlocksPerItem * workPerBlock, (start, end) =>
        {
            uint* words = stackalloc uint[32];
            for (long b = (long)start * BlocksPerItem, last = Math.Min(blocks, (long)end * BlocksPerItem); b < last; b += 8)
            {
                EightBlocks(b, k0, k1, words);
                long first = b * 4;
                int count = (int)Math.Min(32, n - first);
                emit(words, o + first, count);
            }
        });
    }

    /// <summary>Words 4b … 4b + 31 (blocks b … b + 7) in order: two sets of four blocks interleaved, since each round waits on
    /// the last one's products (about 7 cycles) and one set alone left the multipliers idle most of the time.</summary>
    private static void EightBlocks(long b, uint k0, uint k1, uint* words)
    {
        if (!Avx2.IsSupported)
        {
            for (int j = 0; j < 8; j++)
            {
                long block = b + j;
                var w = Philox.Block((uint)block, (uint)(block >> 32), 0, 0, k0, k1);
                words[4 * j] = w.X0;
                words[4 * j + 1] = w.X1;
                words[4 * j + 2] = w.X2;
                words[4 * j + 3] = w.X3;
            }
            return;
        }
        // Counter words in the low halves of 64-bit lanes, one block per lane.
        var low = Vector256.Create(0xFFFFFFFFUL);
        var counterA = Vector256.Create((ulong)b, (ulong)b + 1, (ulong)b + 2, (ulong)b + 3);
        var counterB = counterA + Vector256.Create(4UL);
        Vector256<ulong> a0 = counterA & low, a1 = counterA >> 32, a2 = Vector256<ulong>.Zero, a3 = Vector256<ulong>.Zero;
        Vector256<ulong> b0 = counterB & low, b1 = counterB >> 32, b2 = Vector256<ulong>.Zero, b3 = Vector256<ulong>.Zero;
        var m0 = Vector256.Create((ulong)Philox.M0).AsUInt32();
        var m1 = Vector256.Create((ulong)Philox.M1).AsUInt32();
        uint key0 = k0, key1 = k1;
        for (int round = 0; round < 10; round++)
        {
            var v0 = Vector256.Create((ulong)key0);
            var v1 = Vector256.Create((ulong)key1);
            var pa0 = Avx2.Multiply(a0.AsUInt32(), m0);
            var pa1 = Avx2.Multiply(a2.AsUInt32(), m1);
            var pb0 = Avx2.Multiply(b0.AsUInt32(), m0);
            var pb1 = Avx2.Multiply(b2.AsUInt32(), m1);
            a0 = (pa1 >> 32) ^ a1 ^ v0;
            a2 = (pa0 >> 32) ^ a3 ^ v1;
            a1 = pa1 & low;
            a3 = pa0 & low;
            b0 = (pb1 >> 32) ^ b1 ^ v0;
            b2 = (pb0 >> 32) ^ b3 ^ v1;
            b1 = pb1 & low;
            b3 = pb0 & low;
            key0 += Philox.W0;
            key1 += Philox.W1;
        }
        Store(a0, a1, a2, a3, words);
        Store(b0, b1, b2, b3, words + 16);
    }

    /// <summary>Four blocks' words (block j in lane j of x0..x3) in stream order.</summary>
    private static void Store(Vector256<ulong> x0, Vector256<ulong> x1, Vector256<ulong> x2, Vector256<ulong> x3, uint* words)
    {
        for (int j = 0; j < 4; j++)
        {
            words[4 * j] = (uint)x0.GetElement(j);
            words[4 * j + 1] = (uint)x1.GetElement(j);
            words[4 * j + 2] = (uint)x2.GetElement(j);
            words[4 * j + 3] = (uint)x3.GetElement(j);
        }
    }
}

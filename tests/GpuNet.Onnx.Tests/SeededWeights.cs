using System.Security.Cryptography;

namespace GpuNet.Onnx.Tests;

/// <summary>
/// The weights of models too large to commit (make_onnx_models.py's export_seeded): weights.tsv lists each parameter's
/// offset, element count, Philox seed and bounds, and the SHA-256 of the whole file; this writes weights.bin beside the
/// model from <see cref="Philox.FillUniform"/> and checks the hash, so the values PyTorch computed the expected outputs
/// with are exactly the ones loaded here.
/// </summary>
internal static class SeededWeights
{
    private static readonly object Gate = new();

    /// <summary>Writes <c>weights.bin</c> in <paramref name="caseDir"/> when the case has a weights.tsv and the file is missing or stale.</summary>
    public static void Materialize(string caseDir)
    {
        string manifest = Path.Combine(caseDir, "weights.tsv"), target = Path.Combine(caseDir, "weights.bin");
        if (!File.Exists(manifest))
            return;
        lock (Gate)
        {
            var lines = File.ReadAllLines(manifest);
            var header = lines[0].Split('\t');
            if (header[0] != "# sha256")
                throw new InvalidDataException($"{manifest}: the first line must be '# sha256<TAB>hash<TAB>bytes'");
            string hash = header[1];
            long bytes = long.Parse(header[2]);
            if (File.Exists(target) && new FileInfo(target).Length == bytes && Sha256(File.ReadAllBytes(target)) == hash)
                return;
            var data = new byte[bytes];
            foreach (var line in lines.Skip(1).Where(l => l.Length > 0))
            {
                var f = line.Split('\t');
                long offset = long.Parse(f[1]);
                int count = int.Parse(f[2]);
                var values = new float[count];
                Philox.FillUniform(values, ulong.Parse(f[3]), float.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture),
                    float.Parse(f[5], System.Globalization.CultureInfo.InvariantCulture));
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(data.AsSpan((int)offset));
            }
            string got = Sha256(data);
            if (got != hash)
                throw new InvalidDataException($"{caseDir}: the regenerated weights hash to {got}, weights.tsv says {hash}: Philox here and in make_onnx_models.py disagree");
            File.WriteAllBytes(target, data);
        }
    }

    private static string Sha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant();
}

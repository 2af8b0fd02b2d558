namespace GpuNet.Kernels.Checks;

/// <summary>What one check case produced: the kernel's output and the reference's.</summary>
/// <param name="Got">The device result, read back.</param>
/// <param name="Expected">The double-precision reference.</param>
public sealed record CheckOutput(float[] Got, double[] Expected)
{
    /// <summary>Further outputs of the same launch (attention's logsumexp beside its output), each compared on its own
    /// against the case's tolerance: one run checks all of them instead of a case per output repeating the launch.</summary>
    public IReadOnlyList<(string Name, float[] Got, double[] Expected)> Also { get; init; } = [];
}

/// <summary>
/// The bound every element of a case's output must meet, beside the relative L2 error of the whole: |got − ref| ≤
/// Rtol·|ref| + Atol·scale, the scale 1 — or, with <see cref="ScaleByRms"/>, the RMS of the reference, for outputs that are
/// sums of many terms, whose elements near zero carry the rounding of terms far larger than themselves. The L2 norm alone
/// lets a wide-range output hide its small elements (exp on [−20, 20] returning 0 below 8 has a relative L2 error of 6e-6);
/// the element bound does not. Each family's bound, and why, is in KERNELS.md ("Element bounds").
/// </summary>
public readonly record struct ElementBound(double Rtol, double Atol, bool ScaleByRms = false)
{
    /// <summary>The family's bound (see KERNELS.md); a case may set its own.</summary>
    public static ElementBound ForFamily(string family) => family switch
    {
        // Sums of many float32 terms (dot products, reductions, normalizations, attention, convolutions, gradients, optimizer
        // states, losses): rounding grows with the number of terms and an element near zero inherits that of its terms.
        "reduce" or "matmul" or "softmax" or "normalization" or "conv" or "attention" or "routing" or "backward" or "optimizer" or "sequence"
            => new(1e-4, 1e-5, ScaleByRms: true),
        "pooling" => new(1e-5, 1e-6, ScaleByRms: true),
        // One float32 function per element: a few ulp relative, an absolute floor for results that round to ~0.
        _ => new(2e-5, 1e-6),
    };
}

/// <summary>
/// One correctness case of one kernel: <see cref="Run"/> makes fresh seeded inputs on a device,
/// poisons the output with NaN, launches the op and returns its output with the CPU reference's.
/// </summary>
/// <param name="Family">Kernel family (one test class each): <c>elementwise</c>, <c>reduce</c>, ...</param>
/// <param name="Kernel">Stable snake_case kernel name (<c>add</c>, <c>sum_last_axis</c>, ...).</param>
/// <param name="Name">Case name, unique within the kernel.</param>
/// <param name="Shape">Shapes involved, as printed in the table.</param>
/// <param name="Tolerance">Largest relative L2 error that passes.</param>
/// <param name="Run">Runs the case on a device with a seed.</param>
public sealed record CheckCase(string Family, string Kernel, string Name, string Shape, double Tolerance, Func<Device, ulong, CheckOutput> Run)
{
    /// <summary>The default tolerance: float32 arithmetic against a double reference.</summary>
    public const double Fp32Tolerance = 1e-5;

    /// <summary>The element bound (the family's unless the case sets its own).</summary>
    public ElementBound? Bound { get; init; }

    /// <summary>The bound this case's elements are held to.</summary>
    public ElementBound EffectiveBound => Bound ?? ElementBound.ForFamily(Family);

    /// <summary><c>kernel/case</c>.</summary>
    public string Id => $"{Kernel}/{Name}";

    /// <summary>A size the simulated GPU (cpu-sim) cannot run in reasonable time: skipped there (and reported as skipped).</summary>
    public bool GpuOnly { get; init; }

    /// <summary>A case whose double-precision reference alone takes seconds on a CPU (≳ 10⁸ multiply-adds): run on GPUs only,
    /// where the device side is what is being checked at scale.</summary>
    public bool HeavyReference { get; init; }

    /// <summary>True when this case runs on the simulated GPU: neither a GPU-only size nor a heavy reference.</summary>
    public bool RunsOnSimulator => !GpuOnly && !HeavyReference;

    /// <summary>True when this case runs on <paramref name="device"/>: everything on a GPU; on the fast CPU all but heavy
    /// references; on the simulated GPU what <see cref="RunsOnSimulator"/> says.</summary>
    public bool RunsOn(Device device) =>
        device.Info.IsGpu || (device.Kind == DeviceKind.CpuSimulator ? RunsOnSimulator : !HeavyReference);
}

/// <summary>The verdict on one case. <see cref="Seed"/> is the run's seed: <c>GPUNET_SEED=seed</c> (or <c>check --seed</c>) replays the case.</summary>
public sealed record CheckResult(string Kernel, string Case, string Shape, double MaxAbsErr, double RelL2Err, bool Passed, ulong Seed, string? Error)
{
    /// <summary>The worst element's error as a fraction of its bound (≤ 1 passes; see <see cref="ElementBound"/>).</summary>
    public double WorstElement { get; init; }

    /// <summary>True when the case was not run on this device (a GPU-only size on the CPU accelerator): neither passed nor
    /// failed — <see cref="Passed"/> is false, and <see cref="Failed"/> too.</summary>
    public bool Skipped { get; init; }

    /// <summary>True when the case ran and missed its reference (or threw).</summary>
    public bool Failed => !Passed && !Skipped;

    /// <summary>One line for logs and assertion messages.</summary>
    public override string ToString() =>
        $"{Kernel}/{Case} {Shape}: max abs {MaxAbsErr:0.###e+0}, rel L2 {RelL2Err:0.###e+0}, {(Skipped ? "skip" : Passed ? "pass" : "FAIL")} (seed {Seed})" +
        (Error is null ? "" : $": {Error}");
}

/// <summary>Runs check cases and judges them.</summary>
public static class CheckRunner
{
    /// <summary>The seed for this process: <c>GPUNET_SEED</c> if set, else fresh from the clock (printed with every result, so a failure can be replayed).</summary>
    public static ulong DefaultSeed { get; } =
        ulong.TryParse(Environment.GetEnvironmentVariable("GPUNET_SEED"), out var s) ? s : (ulong)DateTime.UtcNow.Ticks;

    /// <summary>Runs <paramref name="c"/> on <paramref name="device"/>; exceptions become failed results, never escape.</summary>
    public static CheckResult Run(CheckCase c, Device device, ulong? seed = null)
    {
        ulong runSeed = seed ?? DefaultSeed, caseSeed = Mix(runSeed, c.Id);
        if (!c.RunsOn(device))
            return new CheckResult(c.Kernel, c.Name, c.Shape, double.NaN, double.NaN, false, runSeed, "skipped: GPU-only size") { Skipped = true };
        try
        {
            var output = c.Run(device, caseSeed);
            double maxAbs = 0, relL2 = 0, worst = 0;
            string? error = null;
            var bound = c.EffectiveBound;
            foreach (var (name, got, expected) in output.Also.Prepend(("", output.Got, output.Expected)))
            {
                var (abs, rel, e) = Compare(got, expected);
                maxAbs = Math.Max(maxAbs, abs);
                relL2 = Math.Max(relL2, rel);
                if (e is null && rel > c.Tolerance)
                    e = $"rel L2 {rel:0.###e+0} over tolerance {c.Tolerance:0.#e+0}";
                if (e is null)
                {
                    var (ratio, at) = WorstElement(got, expected, bound);
                    worst = Math.Max(worst, ratio);
                    if (ratio > 1)
                        e = $"element {at}: got {got[at]:G9}, reference {expected[at]:G9}, {ratio:0.##}× its bound (rtol {bound.Rtol:0.#e+0}, atol {bound.Atol:0.#e+0}{(bound.ScaleByRms ? "·rms" : "")})";
                }
                // The first failing output is reported, named when it is not the main one.
                if (e is not null)
                    error ??= name.Length == 0 ? e : $"{name}: {e}";
            }
            return new CheckResult(c.Kernel, c.Name, c.Shape, maxAbs, relL2, error is null, runSeed, error) { WorstElement = worst };
        }
        catch (Exception e)
        {
            return new CheckResult(c.Kernel, c.Name, c.Shape, double.NaN, double.NaN, false, runSeed, $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Max absolute error and relative L2 error ‖got − expected‖ / ‖expected‖ (the absolute L2
    /// error when the reference is all zeros). Non-finite expected values must be matched exactly;
    /// a NaN where a number was expected (an unwritten, poisoned element) always fails.
    /// </summary>
    public static (double MaxAbs, double RelL2, string? Error) Compare(ReadOnlySpan<float> got, ReadOnlySpan<double> expected)
    {
        if (got.Length != expected.Length)
            return (double.NaN, double.NaN, $"output has {got.Length} elements, reference {expected.Length}");
        double maxAbs = 0, diff2 = 0, ref2 = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double g = got[i], e = expected[i];
            if (!double.IsFinite(e))
            {
                bool same = double.IsNaN(e) ? double.IsNaN(g) : g == e;
                if (!same)
                    return (double.PositiveInfinity, double.PositiveInfinity, $"element {i}: expected {e}, got {g}");
                continue;
            }
            if (!double.IsFinite(g))
                return (double.PositiveInfinity, double.PositiveInfinity, $"element {i}: expected {e}, got {g}{(double.IsNaN(g) ? " (unwritten or invalid)" : "")}");
            double d = Math.Abs(g - e);
            maxAbs = Math.Max(maxAbs, d);
            diff2 += d * d;
            ref2 += e * e;
        }
        double rel = ref2 > 0 ? Math.Sqrt(diff2 / ref2) : Math.Sqrt(diff2);
        return (maxAbs, rel, null);
    }

    /// <summary>The element with the largest |got − ref| / (Rtol·|ref| + Atol·scale), and that ratio (finite elements only:
    /// <see cref="Compare"/> already judged the others). A zero bound (an exact case) asks for equality.</summary>
    public static (double Ratio, int At) WorstElement(ReadOnlySpan<float> got, ReadOnlySpan<double> expected, ElementBound bound)
    {
        double scale = 1;
        if (bound.ScaleByRms)
        {
            double sum = 0;
            int n = 0;
            foreach (var e in expected)
                if (double.IsFinite(e))
                {
                    sum += e * e;
                    n++;
                }
            scale = n == 0 ? 0 : Math.Sqrt(sum / n);
        }
        double worst = 0;
        int at = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double e = expected[i];
            if (!double.IsFinite(e))
                continue;
            double diff = Math.Abs(got[i] - e), allowed = bound.Rtol * Math.Abs(e) + bound.Atol * scale;
            double ratio = diff == 0 ? 0 : allowed > 0 ? diff / allowed : double.PositiveInfinity;
            if (ratio > worst)
                (worst, at) = (ratio, i);
        }
        return (worst, at);
    }

    /// <summary>A tensor of <paramref name="shape"/> full of NaN, written from the host (so no kernel under test is involved).</summary>
    public static Tensor Poisoned(Device device, params int[] shape)
    {
        var host = new float[ShapeUtil.Product(shape)];
        Array.Fill(host, float.NaN);
        return Tensor.FromArray(device, host, shape);
    }

    /// <summary>Returns NaN-filled blocks of each shape's size class to the pool, so the next allocations of that size (outputs an op allocates itself) start poisoned.</summary>
    public static void PoisonPool(Device device, IEnumerable<int[]> shapes)
    {
        var blocks = new List<Tensor>();
        foreach (var shape in shapes)
            for (int i = 0; i < 4; i++)
                blocks.Add(Poisoned(device, shape));
        foreach (var b in blocks)
            b.Dispose();
    }

    /// <summary>Uniform random input in [-1, 1) from the case seed and an input number.</summary>
    public static Tensor Random(Device device, ulong seed, int input, params int[] shape) =>
        Tensor.RandomUniform(device, shape, seed + (ulong)input * 0x9E3779B97F4A7C15UL, -1f, 1f);

    /// <summary>The tensor's elements as doubles, for the reference.</summary>
    public static double[] Host(Tensor t) => Array.ConvertAll(t.ToArray(), v => (double)v);

    /// <summary>Formats shapes for the table: <c>[37, 53] + [53]</c>.</summary>
    public static string Shapes(params int[][] shapes) => string.Join(" + ", shapes.Select(s => GpuNetException.FormatShape(s)));

    private static ulong Mix(ulong seed, string id)
    {
        ulong h = seed ^ 0xCBF29CE484222325UL;
        foreach (char ch in id)
            h = (h ^ ch) * 0x100000001B3UL;
        return h;
    }
}

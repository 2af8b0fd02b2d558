namespace GpuNet.Kernels.Checks;

/// <summary>
/// Every kernel's correctness cases, in one list (the families' <see cref="KernelFamily.Cases"/>): <c>bench check</c> runs it
/// on the user's device and the test projects run it on every device present.
/// </summary>
public static class KernelRegistry
{
    private static readonly Lazy<IReadOnlyList<CheckCase>> _all = new(() => KernelFamilies.All.SelectMany(f => f.Cases()).ToList());

    /// <summary>All cases, grouped by family and kernel.</summary>
    public static IReadOnlyList<CheckCase> All => _all.Value;

    /// <summary>Kernel names in registry order.</summary>
    public static IReadOnlyList<string> Kernels => All.Select(c => c.Kernel).Distinct().ToList();

    /// <summary>Cases of the given kernels (all when none given).</summary>
    /// <exception cref="ArgumentException">A name is not a registered kernel.</exception>
    public static IReadOnlyList<CheckCase> Select(IReadOnlyCollection<string>? kernels)
    {
        if (kernels is null || kernels.Count == 0)
            return All;
        var unknown = kernels.Where(k => !Kernels.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown kernel(s): {string.Join(", ", unknown)}; registered: {string.Join(", ", Kernels)}");
        return All.Where(c => kernels.Contains(c.Kernel)).ToList();
    }
}

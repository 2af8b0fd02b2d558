using System.Reflection;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Runtime.Tests;

/// <summary>
/// Every public op that takes integers (sizes, strides, paddings, axes, positions, counts) called with integers from the
/// edges — 0, −1, int.MinValue, int.MaxValue, near 2^30 and 2^31 — on small valid tensors: a typed
/// <see cref="GpuNetException"/> or a result, never another exception, and the guard tensors around the inputs keep
/// their contents. Geometry that wraps in 32 bits (an output size, a dilated kernel extent) must be rejected before a
/// kernel computes indices from it.
/// </summary>
public sealed class ExtremeArgumentTests(ITestOutputHelper output)
{
    private const float Guard = 777.25f;
    private static readonly int[] Extremes = { 0, -1, 1, 2, int.MinValue, int.MaxValue, int.MaxValue - 1, 1 << 30, (1 << 30) + 1, 65536, 46341 };

    private static bool IsInt(Type t) => t == typeof(int) || t == typeof((int, int)) || t == typeof((int, int)?);

    private static IEnumerable<MethodInfo> IntegerOps() =>
        typeof(Ops).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Where(m => !m.IsGenericMethodDefinition && !m.IsSpecialName
                && m.GetParameters().All(p => !p.ParameterType.IsByRef && !p.ParameterType.IsByRefLike && !p.ParameterType.IsPointer)
                && m.GetParameters().Any(p => IsInt(p.ParameterType))
                && m.GetParameters().All(p => IsInt(p.ParameterType) || p.ParameterType == typeof(Tensor) || p.HasDefaultValue
                    || p.ParameterType == typeof(float) || p.ParameterType == typeof(Device) || p.ParameterType == typeof(int[])));

    private static object Int(Type t, Random rng)
    {
        int Pick() => rng.Next(3) == 0 ? rng.Next(1, 4) : Extremes[rng.Next(Extremes.Length)];
        if (t == typeof(int))
            return Pick();
        return (Pick(), Pick());
    }

    public static TheoryData<string, int> Runs => new() { { "cpu", 40 }, { "cpu-sim", 6 } };

    [Theory]
    [MemberData(nameof(Runs))]
    public void IntegersAtTheEdgesAreTypedErrorsOrResults(string deviceId, int callsPerShape)
    {
        // A device of its own with a pool limit: a legal but huge output (2^30 positions) is a typed out-of-memory error
        // instead of gigabytes the machine does not have.
        using var device = Device.Open(deviceId);
        device.Pool.LimitBytes = 64L << 20;
        var rng = new Random(deviceId.Length * 7919);
        var failures = new List<string>();
        int calls = 0, typed = 0, results = 0;
        // Shapes every tensor argument takes in turn: an image batch, a matrix, a [B, H, N, d] block, a vector.
        int[][] shapes = { new[] { 1, 2, 5, 5 }, new[] { 2, 3 }, new[] { 1, 2, 3, 4 }, new[] { 6 } };
        foreach (var m in IntegerOps())
            foreach (var shape in shapes)
                for (int call = 0; call < callsPerShape; call++)
                {
                    using var scope = device.Scope();
                    var guards = new List<Tensor>();
                    object? Arg(ParameterInfo p)
                    {
                        var t = p.ParameterType;
                        if (t == typeof(Tensor))
                        {
                            if (p.HasDefaultValue && rng.Next(2) == 0)
                                return null;
                            guards.Add(Tensor.FromArray(device, Enumerable.Repeat(Guard, 29).ToArray(), 29));
                            var values = Enumerable.Range(0, (int)ShapeUtil.Product(shape)).Select(i => (float)(i % 3)).ToArray();
                            var tensor = Tensor.FromArray(device, values, shape);
                            guards.Add(Tensor.FromArray(device, Enumerable.Repeat(Guard, 31).ToArray(), 31));
                            return tensor;
                        }
                        if (t == typeof(Device))
                            return device;
                        if (t == typeof(int[]))
                            return new[] { Extremes[rng.Next(Extremes.Length)], 2 };
                        if (IsInt(t))
                            return rng.Next(5) == 0 && p.HasDefaultValue ? p.DefaultValue : Int(t, rng);
                        if (t == typeof(float))
                            return p.HasDefaultValue ? p.DefaultValue : 1f;
                        return p.DefaultValue;
                    }
                    var ps = m.GetParameters();
                    var args = ps.Select(Arg).ToArray();
                    string what = $"{m.Name}({string.Join(", ", ps.Zip(args, (p, a) => $"{p.Name}={Describe(a)}"))})";
                    calls++;
                    try
                    {
                        using (Autograd.NoGrad())
                            m.Invoke(null, args);
                        results++;
                    }
                    catch (TargetInvocationException e) when (e.InnerException is GpuNetException)
                    {
                        typed++;
                    }
                    catch (TargetInvocationException e)
                    {
                        failures.Add($"{what}: {e.InnerException!.GetType().Name}: {e.InnerException.Message} {e.InnerException.StackTrace?.Split('\n')[0].Trim()}");
                    }
                    foreach (var g in guards)
                        if (g.ToArray().Any(v => v != Guard))
                            failures.Add($"{what}: wrote into a guard tensor");
                }
        device.Pool.TrimCache();
        output.WriteLine($"{deviceId}: {calls} calls, {results} results, {typed} typed errors");
        Assert.True(calls > 200, $"only {calls} calls");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Distinct().Take(40)));
    }

    private static string Describe(object? a) => a switch
    {
        null => "null",
        Tensor t => GpuNetException.FormatShape(t.ShapeArray()),
        int[] v => GpuNetException.FormatShape(v),
        _ => a.ToString() ?? "",
    };
}

using System.Reflection;
using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Runtime.Tests;

/// <summary>
/// Every public op, with null where a tensor (or a list of them, or a device) belongs, raises a typed
/// <see cref="GpuNetException"/> naming the op — never a NullReferenceException from inside it. Each reference argument is
/// made null in turn, the others given small valid tensors, and then all of them at once.
/// </summary>
public sealed class NullArgumentTests(ITestOutputHelper output)
{
    private static readonly NullabilityInfoContext Nullability = new();

    private static IEnumerable<MethodInfo> PublicOps() =>
        typeof(Ops).GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Concat(typeof(Tensor).GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => !m.IsGenericMethodDefinition && !m.IsSpecialName
                && m.GetParameters().All(p => !p.ParameterType.IsByRef && !p.ParameterType.IsByRefLike && !p.ParameterType.IsPointer))
            .Where(m => m.GetParameters().Any(p => Nullable(p.ParameterType)));

    private static bool Nullable(Type t) =>
        t == typeof(Tensor) || t == typeof(Device) || typeof(IEnumerable<Tensor>).IsAssignableFrom(t) || t == typeof(int[]) || t == typeof(float[]);

    /// <summary>A small valid value of a parameter's type: a [2, 3] tensor, a list of two, the declared default, else zero-ish.</summary>
    private static object? Valid(ParameterInfo p, Device device)
    {
        var t = p.ParameterType;
        if (t == typeof(Tensor))
            return Tensor.FromArray(device, new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        if (t == typeof(Device))
            return device;
        if (typeof(IEnumerable<Tensor>).IsAssignableFrom(t) && t.IsAssignableFrom(typeof(Tensor[])))
            return new[] { Tensor.Zeros(device, 2, 3), Tensor.Zeros(device, 2, 3) };
        if (t == typeof(int[]))
            return new[] { 2, 3 };
        if (t == typeof(float[]))
            return new float[] { 1, 2, 3, 4, 5, 6 };
        if (p.HasDefaultValue)
            return p.DefaultValue;
        if (t == typeof(int))
            return 1;
        if (t == typeof(float))
            return 1f;
        if (t == typeof(string))
            return "relu";
        return t.IsValueType ? Activator.CreateInstance(t) : null;
    }

    [Fact]
    public void EveryOpNamesAMissingArgument()
    {
        var device = TestDevices.Cpu;
        var failures = new List<string>();
        int calls = 0, methods = 0;
        foreach (var m in PublicOps())
        {
            methods++;
            var ps = m.GetParameters();
            // Arguments declared nullable (an optional output, bias or mask) may be null: they are given valid values.
            var nullable = Enumerable.Range(0, ps.Length).Where(i => Nullable(ps[i].ParameterType) && Nullability.Create(ps[i]).WriteState != NullabilityState.Nullable).ToList();
            if (nullable.Count == 0)
                continue;
            foreach (var nulls in nullable.Select(i => new[] { i }).Append(nullable.ToArray()))
            {
                using var scope = device.Scope();
                var args = ps.Select((p, i) => nulls.Contains(i) ? null : Valid(p, device)).ToArray();
                calls++;
                try
                {
                    using (Autograd.NoGrad())
                        m.Invoke(null, args);
                    failures.Add($"{m.DeclaringType!.Name}.{m.Name}({string.Join(", ", ps.Select(p => p.Name))}) with {string.Join(", ", nulls.Select(i => ps[i].Name))} null: returned");
                }
                catch (TargetInvocationException e) when (e.InnerException is GpuNetException g)
                {
                    if (g is MissingArgumentException missing && !nulls.Select(i => ps[i].Name).Any(n => missing.Argument.Contains(n!, StringComparison.OrdinalIgnoreCase) || n!.Contains(missing.Argument, StringComparison.OrdinalIgnoreCase)))
                        output.WriteLine($"note: {m.Name} names '{missing.Argument}' for null {string.Join(", ", nulls.Select(i => ps[i].Name))}");
                }
                catch (TargetInvocationException e)
                {
                    failures.Add($"{m.DeclaringType!.Name}.{m.Name}({string.Join(", ", ps.Select(p => p.Name))}) with {string.Join(", ", nulls.Select(i => ps[i].Name))} null: {e.InnerException!.GetType().Name}: {e.InnerException.Message} {e.InnerException.StackTrace?.Split('\n')[0].Trim()}");
                }
            }
        }
        output.WriteLine($"{methods} public ops, {calls} calls with null arguments");
        Assert.True(methods > 100, $"only {methods} ops found");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}

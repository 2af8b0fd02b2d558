using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;

namespace GpuNet;

/// <summary>
/// Compiled kernels of one device, one entry per (kernel method, specialization). A generic kernel
/// closed over different specialization structs (tile shapes, operators) is a different method
/// and so a different entry; each is compiled once, on first use, and its compile time is
/// recorded in the device's <see cref="Profiler"/>.
/// </summary>
public sealed class KernelCache
{
    private readonly Device _device;
    private readonly ConcurrentDictionary<(MethodInfo Method, Type Launcher), Delegate> _loaded = new();

    internal KernelCache(Device device) => _device = device;

    /// <summary>Number of compiled kernels held.</summary>
    public int Count => _loaded.Count;

    /// <summary>
    /// Returns the launcher of <paramref name="kernel"/> (an explicitly grouped ILGPU kernel: a static
    /// method whose first parameter is not an index), compiling it on first use.
    /// <typeparamref name="TLauncher"/> is <c>Action&lt;AcceleratorStream, KernelConfig, ...kernel parameters&gt;</c>.
    /// </summary>
    public TLauncher Get<TLauncher>(Delegate kernel) where TLauncher : Delegate
    {
        _device.EnsureAlive("load_kernel");
        var method = kernel.Method;
        return (TLauncher)_loaded.GetOrAdd((method, typeof(TLauncher)), key =>
        {
            var sw = Stopwatch.StartNew();
            var launcher = _device.Accelerator.LoadKernel<TLauncher>(key.Method);
            _device.Profiler.RecordCompile(KernelName(key.Method), sw.Elapsed);
            return launcher;
        });
    }

    /// <summary>A readable name for a kernel method: <c>Type.Method&lt;Spec&gt;</c>.</summary>
    public static string KernelName(MethodInfo method)
    {
        string name = $"{method.DeclaringType?.Name}.{method.Name}";
        if (method.IsGenericMethod)
            name += "<" + string.Join(",", method.GetGenericArguments().Select(t => t.Name)) + ">";
        return name;
    }
}

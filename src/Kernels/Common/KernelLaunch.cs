using ILGPU;
using ILGPU.Runtime;

namespace GpuNet.Kernels;

/// <summary>
/// Typed kernel launches: <c>device.Launch(op, Kernel, config, a, b, ...)</c> reads like a call of the kernel method, loads
/// (and on first use compiles) it through the device's kernel cache, and times it in the profiler under <c>op</c>. The
/// argument types are inferred from the arguments and the kernel method group must convert to <c>Action</c> of exactly
/// those types, so a launch whose arguments do not fit the kernel is a compile error, not a failure at load time.
/// An op made of several kernels passes a null <c>op</c> and times them together in its own profiler scope. One overload
/// per arity (ILGPU kernels here take up to 12 parameters).
/// </summary>
public static class KernelLaunch
{
    /// <summary>Launches a 1-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1>(this Device device, string? op, Action<T1> kernel, KernelConfig config, T1 a1)
        where T1 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1);
    }

    /// <summary>Launches a 2-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2>(this Device device, string? op, Action<T1, T2> kernel, KernelConfig config, T1 a1, T2 a2)
        where T1 : struct where T2 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2);
    }

    /// <summary>Launches a 3-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3>(this Device device, string? op, Action<T1, T2, T3> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3)
        where T1 : struct where T2 : struct where T3 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3);
    }

    /// <summary>Launches a 4-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4>(this Device device, string? op, Action<T1, T2, T3, T4> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4);
    }

    /// <summary>Launches a 5-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5>(this Device device, string? op, Action<T1, T2, T3, T4, T5> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5);
    }

    /// <summary>Launches a 6-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5, T6>(this Device device, string? op, Action<T1, T2, T3, T4, T5, T6> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6);
    }

    /// <summary>Launches a 7-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5, T6, T7>(this Device device, string? op, Action<T1, T2, T3, T4, T5, T6, T7> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7);
    }

    /// <summary>Launches a 8-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5, T6, T7, T8>(this Device device, string? op, Action<T1, T2, T3, T4, T5, T6, T7, T8> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8);
    }

    /// <summary>Launches a 9-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9>(this Device device, string? op, Action<T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9);
    }

    /// <summary>Launches a 10-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(this Device device, string? op, Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
    }

    /// <summary>Launches a 11-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(this Device device, string? op, Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
    }

    /// <summary>Launches a 12-parameter kernel on the default stream, timed as <paramref name="op"/> (null: not timed here).</summary>
    public static void Launch<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(this Device device, string? op, Action<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11, T12 a12)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct
    {
        var launcher = device.Kernels.Get<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>>(kernel);
        using (op is null ? default : device.Profiler.Measure(op))
            launcher(device.Accelerator.DefaultStream, config, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
    }
}

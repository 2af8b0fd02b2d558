using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>topk.</summary>
public sealed class SelectionTests(ITestOutputHelper output) : KernelFamilyTests<SelectionFamily>(output);

public sealed class SelectionFamily : IKernelFamily { public static string Name => "selection"; }

/// <summary>cumsum.</summary>
public sealed class ScanTests(ITestOutputHelper output) : KernelFamilyTests<ScanFamily>(output);

public sealed class ScanFamily : IKernelFamily { public static string Name => "scan"; }

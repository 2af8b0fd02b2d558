using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>Backward kernels through the autograd engine, against finite-difference-proved double references.</summary>
public sealed class BackwardTests(ITestOutputHelper output) : KernelFamilyTests<BackwardFamily>(output);

public sealed class BackwardFamily : IKernelFamily { public static string Name => "backward"; }

/// <summary>Fused optimizer steps against PyTorch's update formulas in double precision.</summary>
public sealed class OptimizerTests(ITestOutputHelper output) : KernelFamilyTests<OptimizerFamily>(output);

public sealed class OptimizerFamily : IKernelFamily { public static string Name => "optimizer"; }

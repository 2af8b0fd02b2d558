using Xunit.Abstractions;

namespace GpuNet.Kernels.Tests;

/// <summary>recurrence (RNN, LSTM, GRU over a sequence).</summary>
public sealed class RecurrentTests(ITestOutputHelper output) : KernelFamilyTests<RecurrentFamily>(output);

public sealed class RecurrentFamily : IKernelFamily { public static string Name => "recurrent"; }

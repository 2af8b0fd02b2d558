using GpuNet.Kernels;

namespace GpuNet;

public static partial class Ops
{
    /// <summary>f(x) elementwise for one of the <see cref="UnaryFunction"/>s with parameters A, B. Kernel <c>unary_math</c>.</summary>
    public static Tensor Unary(Tensor x, UnaryFunction function, float a = 0f, float b = 0f, Tensor? output = null) =>
        NoGradient("unary_math", Unary("unary_math", x, output, new UnaryMath { Function = function, A = a, B = b }), x);

    /// <summary>f(a, b) elementwise with broadcasting for one of the <see cref="BinaryFunction"/>s. Kernel <c>binary_math</c>.</summary>
    public static Tensor Binary(Tensor a, Tensor b, BinaryFunction function, Tensor? output = null) =>
        NoGradient("binary_math", Binary("binary_math", a, b, output, new BinaryMath { Function = function }), a, b);

    /// <summary>These ops are for inference (ONNX import): asking for their gradient is a typed error naming the op.</summary>
    private static Tensor NoGradient(string op, Tensor output, params Tensor[] inputs)
    {
        Autograd.RecordNoGradient(op, output, inputs);
        return output;
    }
}

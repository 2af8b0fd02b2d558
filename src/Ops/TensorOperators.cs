namespace GpuNet;

/// <summary>
/// Arithmetic on tensors with C# operators: <c>a + b</c>, <c>a - b</c>, <c>a * b</c>, <c>a / b</c> (elementwise, NumPy
/// broadcasting), the same with a <see cref="float"/> on either side, and <c>-a</c>. Each is the op of the same name
/// (<see cref="Ops.Add"/>, <see cref="Ops.Sub"/>, <see cref="Ops.Mul"/>, <see cref="Ops.Div"/>, <see cref="Ops.Scale"/>),
/// with its gradient, errors and device checks, and returns a new tensor: in an expression such as <c>a * b + c</c> the
/// intermediate <c>a * b</c> is yours to dispose too, so write such expressions inside a <see cref="TensorScope"/>
/// (<c>using var scope = device.Scope();</c>).
/// </summary>
public static class TensorOperators
{
    /// <summary>A scalar's op: the scalar as a one-element tensor on <paramref name="like"/>'s device, broadcast.</summary>
    private static Tensor WithScalar(string name, Tensor like, float value, Func<Tensor, Tensor, Tensor> op, bool scalarFirst)
    {
        Validate.Input(name, scalarFirst ? "b" : "a", like);
        using var scalar = Ops.Full(like.Device, value, 1);
        return scalarFirst ? op(scalar, like) : op(like, scalar);
    }

    extension(Tensor)
    {
        /// <summary>a + b elementwise with broadcasting (<see cref="Ops.Add"/>).</summary>
        public static Tensor operator +(Tensor a, Tensor b) => Ops.Add(a, b);

        /// <summary>a − b elementwise with broadcasting (<see cref="Ops.Sub"/>).</summary>
        public static Tensor operator -(Tensor a, Tensor b) => Ops.Sub(a, b);

        /// <summary>a · b elementwise with broadcasting (<see cref="Ops.Mul"/>; matrix products are <see cref="Ops.MatMul"/>).</summary>
        public static Tensor operator *(Tensor a, Tensor b) => Ops.Mul(a, b);

        /// <summary>a / b elementwise with broadcasting (<see cref="Ops.Div"/>).</summary>
        public static Tensor operator /(Tensor a, Tensor b) => Ops.Div(a, b);

        /// <summary>−a (<see cref="Ops.Scale"/> by −1).</summary>
        public static Tensor operator -(Tensor a) => Ops.Scale(a, -1f);

        /// <summary>a · s (<see cref="Ops.Scale"/>).</summary>
        public static Tensor operator *(Tensor a, float s) => Ops.Scale(a, s);

        /// <summary>s · a (<see cref="Ops.Scale"/>).</summary>
        public static Tensor operator *(float s, Tensor a) => Ops.Scale(a, s);

        /// <summary>a / s, a true division of every element (not a multiplication by 1/s, which rounds differently).</summary>
        public static Tensor operator /(Tensor a, float s) => WithScalar("div", a, s, (x, y) => Ops.Div(x, y), scalarFirst: false);

        /// <summary>s / a elementwise.</summary>
        public static Tensor operator /(float s, Tensor a) => WithScalar("div", a, s, (x, y) => Ops.Div(x, y), scalarFirst: true);

        /// <summary>a + s.</summary>
        public static Tensor operator +(Tensor a, float s) => WithScalar("add", a, s, (x, y) => Ops.Add(x, y), scalarFirst: false);

        /// <summary>s + a.</summary>
        public static Tensor operator +(float s, Tensor a) => WithScalar("add", a, s, (x, y) => Ops.Add(x, y), scalarFirst: true);

        /// <summary>a − s.</summary>
        public static Tensor operator -(Tensor a, float s) => WithScalar("sub", a, s, (x, y) => Ops.Sub(x, y), scalarFirst: false);

        /// <summary>s − a.</summary>
        public static Tensor operator -(float s, Tensor a) => WithScalar("sub", a, s, (x, y) => Ops.Sub(x, y), scalarFirst: true);
    }
}

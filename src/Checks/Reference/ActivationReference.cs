namespace GpuNet.Kernels.Reference;

/// <summary>Double-precision references of the activations, written from their definitions.</summary>
public static class ActivationReference
{
    /// <summary>erf x: its Maclaurin series below |x| = 3 (≤ 1e-13 error there), 1 − erfc from the continued fraction above.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        if (ax >= 3)
            return Math.Sign(x) * (1 - Erfc(ax));
        double term = x, sum = x, x2 = x * x;
        for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
        {
            term *= -x2 / n;
            sum += term / (2 * n + 1);
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    /// <summary>erfc x; for x ≥ 2 the Laplace continued fraction e^−x²/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + ...)))), evaluated backwards.</summary>
    public static double Erfc(double x)
    {
        if (x < 2)
            return 1 - Erf(x);
        double f = x;
        for (int n = 80; n >= 1; n--)
            f = x + n / 2.0 / f;
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }

    /// <summary>The reference of each registered activation, by kernel name.</summary>
    public static Func<double, double> Of(string kernel, double parameter = 0) => kernel switch
    {
        "relu" => x => Math.Max(x, 0),
        "relu6" => x => Math.Min(Math.Max(x, 0), 6),
        "leaky_relu" => x => x >= 0 ? x : parameter * x,
        "gelu_erf" => x => 0.5 * x * (1 + Erf(x / Math.Sqrt(2))),
        "gelu_tanh" => x => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
        "silu" => x => x / (1 + Math.Exp(-x)),
        "sigmoid" => x => 1 / (1 + Math.Exp(-x)),
        "tanh" => Math.Tanh,
        "softplus" => x => x > 20 ? x : Math.Log(1 + Math.Exp(x)),
        "elu" => x => x > 0 ? x : parameter * (Math.Exp(x) - 1),
        "exp" => x => Math.Exp(parameter * x),
        "scale" => x => parameter * x,
        _ => throw new ArgumentException($"no activation reference named '{kernel}'"),
    };
}

namespace GpuNet.Layers;

/// <summary>
/// nn.RNN (tanh) and nn.LSTM: multi-layer, batch_first either way, parameters weight_ih_l{k} [G·H, in], weight_hh_l{k}
/// [G·H, H], bias_ih_l{k}, bias_hh_l{k} with G = 1 (RNN) or 4 (LSTM, gates i, f, g, o). Per layer the input projection
/// of every timestep is one matmul; each step then adds h·W_hhᵀ + b_hh into that step's slice in place (beta = 1) and
/// applies the cell update on the device.
/// </summary>
public sealed class Recurrent : Module
{
    private readonly Tensor[] _wih, _whh, _bih, _bhh;

    /// <summary>Creates an RNN (<paramref name="lstm"/> false) or an LSTM.</summary>
    public Recurrent(Device device, int inputSize, int hiddenSize, int layers = 1, bool batchFirst = false, bool lstm = true) : base(device)
    {
        (InputSize, HiddenSize, Layers, BatchFirst, IsLstm) = (inputSize, hiddenSize, layers, batchFirst, lstm);
        int g = lstm ? 4 : 1;
        _wih = new Tensor[layers];
        _whh = new Tensor[layers];
        _bih = new Tensor[layers];
        _bhh = new Tensor[layers];
        for (int l = 0; l < layers; l++)
        {
            _wih[l] = Parameter($"weight_ih_l{l}", g * hiddenSize, l == 0 ? inputSize : hiddenSize);
            _whh[l] = Parameter($"weight_hh_l{l}", g * hiddenSize, hiddenSize);
            _bih[l] = Parameter($"bias_ih_l{l}", g * hiddenSize);
            _bhh[l] = Parameter($"bias_hh_l{l}", g * hiddenSize);
        }
        InitializeAtConstruction();
    }

    /// <summary>Sizes and layout.</summary>
    public int InputSize { get; }

    /// <summary>Hidden width.</summary>
    public int HiddenSize { get; }

    /// <summary>Stacked layers.</summary>
    public int Layers { get; }

    /// <summary>True: [B, T, *] tensors; false: [T, B, *].</summary>
    public bool BatchFirst { get; }

    /// <summary>LSTM (true) or tanh RNN (false).</summary>
    public bool IsLstm { get; }

    /// <summary>
    /// Runs the sequence x ([B, T, in] or [T, B, in]) from zero state. Returns the last layer's outputs in x's layout and
    /// the final hidden (and, for an LSTM, cell) state [layers, B, H].
    /// </summary>
    public (Tensor Output, Tensor Hidden, Tensor? Cell) Forward(Tensor x)
    {
        const string op = "recurrent";
        Validate.Input(op, "x", x, Device);
        Validate.Rank(op, "x", x, 3);
        if (x.Size(2) != InputSize)
            throw new ShapeMismatchException(op, "x", $"[.., .., {InputSize}]", GpuNetException.FormatShape(x.ShapeArray()));
        int b = BatchFirst ? x.Size(0) : x.Size(1), t = BatchFirst ? x.Size(1) : x.Size(0), h = HiddenSize;
        using var scope = Device.Scope();
        // Time-major throughout: step s is rows [s·B, (s+1)·B).
        var input = BatchFirst ? Ops.Permute(x, 1, 0, 2) : x.Contiguous();
        var finalHidden = new List<Tensor>();
        var finalCell = new List<Tensor>();
        for (int l = 0; l < Layers; l++)
        {
            // All timesteps' input projections at once: [T·B, G·H]; each step adds its recurrent projection. Every step is a
            // new tensor (no writes into preallocated outputs), so the same code records the tape when training.
            var gates = Ops.Linear(input.Reshape(t * b, input.Size(2)), _wih[l], _bih[l]);
            var steps = new Tensor[t];
            var hPrev = Tensor.Zeros(Device, b, h);
            var cPrev = Tensor.Zeros(Device, b, h);
            for (int s = 0; s < t; s++)
            {
                var step = Ops.Add(gates.Slice(0, s * b, b), Ops.Linear(hPrev, _whh[l], _bhh[l]));
                Tensor hNext;
                if (IsLstm)
                {
                    var i = Ops.Sigmoid(step.Slice(1, 0, h));
                    var f = Ops.Sigmoid(step.Slice(1, h, h));
                    var gg = Ops.Tanh(step.Slice(1, 2 * h, h));
                    var o = Ops.Sigmoid(step.Slice(1, 3 * h, h));
                    var cNext = Ops.Add(Ops.Mul(f, cPrev), Ops.Mul(i, gg));
                    hNext = Ops.Mul(o, Ops.Tanh(cNext));
                    cPrev = cNext;
                }
                else
                    hNext = Ops.Tanh(step);
                steps[s] = hNext.Reshape(1, b, h);
                hPrev = hNext;
            }
            finalHidden.Add(hPrev.Reshape(1, b, h));
            if (IsLstm)
                finalCell.Add(cPrev.Reshape(1, b, h));
            input = Ops.Concat(steps, 0);
        }
        var hidden = Ops.Concat(finalHidden, 0);
        var cell = IsLstm ? Ops.Concat(finalCell, 0) : null;
        var result = BatchFirst ? Ops.Permute(input, 1, 0, 2) : input.Contiguous();
        scope.Keep(hidden);
        if (cell is not null)
            scope.Keep(cell);
        return (scope.Keep(result), hidden, cell);
    }

    /// <inheritdoc/>
    public override void Initialize(ulong seed)
    {
        float bound = 1f / MathF.Sqrt(HiddenSize);
        ulong i = 0;
        foreach (var (_, p) in StateDict())
            ParameterInit.Uniform(p, seed + ++i, bound);
    }
}

using GpuNet.Kernels;

namespace GpuNet.Layers;

/// <summary>
/// Updates parameters from their gradients, as torch.optim: <see cref="Step"/> runs one fused kernel per parameter that has
/// a gradient (recording nothing), <see cref="ZeroGrad"/> drops the gradients. State (moments, buffers) lives in device
/// tensors created on first use; <see cref="StateDict"/> and <see cref="LoadStateDict"/> save and restore it exactly, so a
/// run resumes where it stopped (see <see cref="Checkpoint"/>).
/// </summary>
public abstract class Optimizer : IDisposable
{
    private readonly List<Dictionary<string, Tensor>> _state;
    private readonly int[] _steps;
    private bool _disposed;

    /// <summary>Creates the optimizer over named parameters (a module's <see cref="Module.Parameters"/>).</summary>
    protected Optimizer(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate)
    {
        string op = GetType().Name.ToLowerInvariant();
        Parameters = Validate.NotNull(op, "parameters", parameters).ToList();
        if (Parameters.Count == 0)
            throw new InvalidArgumentException(op, "parameters", "at least one parameter to optimize", "none");
        if (Parameters.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new InvalidArgumentException(op, "parameters", "unique names (the optimizer's state is saved and loaded by name)",
                $"'{twice.Key}' {twice.Count()} times (wrap the model's Parameters() once, or give sub-modules distinct names)");
        if (!(learningRate >= 0))
            throw new InvalidArgumentException(op, "learningRate", "a learning rate ≥ 0", learningRate.ToString(System.Globalization.CultureInfo.InvariantCulture));
        LearningRate = learningRate;
        _state = Parameters.Select(_ => new Dictionary<string, Tensor>()).ToList();
        _steps = new int[Parameters.Count];
    }

    /// <summary>The parameters, with their names.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> Parameters { get; }

    /// <summary>The learning rate of the next step (schedules change it).</summary>
    public float LearningRate { get; set; }

    /// <summary>Steps taken so far.</summary>
    public int StepCount { get; private set; }

    /// <summary>Applies one update to every parameter that has a gradient.</summary>
    /// <exception cref="TensorDisposedException">A parameter was disposed.</exception>
    public void Step()
    {
        EnsureAlive(GetType().Name.ToLowerInvariant() + "_step");
        using var _ = Autograd.NoGrad();
        StepCount++;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i].Tensor;
            p.EnsureAlive(GetType().Name.ToLowerInvariant() + "_step", Parameters[i].Name);
            if (p.Grad is { } g)
            {
                _steps[i]++;
                Update(i, p, g);
            }
        }
    }

    /// <summary>Updates parameter <paramref name="index"/> from its gradient (state through <see cref="State"/>).</summary>
    protected abstract void Update(int index, Tensor param, Tensor grad);

    /// <summary>The state keys every updated parameter has with this configuration (besides "step"), and whether each
    /// must be non-negative (running squares and sums: a negative one would make the next step's square root NaN).</summary>
    protected abstract IEnumerable<(string Key, bool NonNegative)> StateKeys { get; }

    private void EnsureAlive(string op)
    {
        if (_disposed)
            throw new TensorDisposedException(op, $"optimizer {GetType().Name}");
    }

    /// <summary>Drops every parameter's gradient (zero_grad(set_to_none=True)).</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in Parameters)
            p.ZeroGrad();
    }

    /// <summary>The state tensor <paramref name="key"/> of parameter <paramref name="index"/>: zeros of the parameter's shape on
    /// first use (or of <paramref name="shape"/>), owned by the optimizer (no open scope disposes it).</summary>
    protected Tensor State(int index, string key, int[]? shape = null)
    {
        if (!_state[index].TryGetValue(key, out var t))
        {
            var p = Parameters[index].Tensor;
            t = TensorScope.Escape(Tensor.Zeros(p.Device, shape ?? p.ShapeArray()));
            _state[index][key] = t;
        }
        return t;
    }

    /// <summary>True when parameter <paramref name="index"/> has state <paramref name="key"/> already.</summary>
    protected bool HasState(int index, string key) => _state[index].ContainsKey(key);

    /// <summary>Updates applied to parameter <paramref name="index"/> so far, this one included during <see cref="Update"/>
    /// (parameters without a gradient in a step are not counted, as PyTorch's per-parameter 'step').</summary>
    protected int StepsOf(int index) => _steps[index];

    /// <summary>
    /// Every state tensor as "parameter name.key", including "parameter name.step" (a [1] tensor with that parameter's update
    /// count) for each parameter that has been updated. The tensors stay owned by the optimizer.
    /// </summary>
    public IEnumerable<(string Name, Tensor Tensor)> StateDict()
    {
        for (int i = 0; i < Parameters.Count; i++)
        {
            if (_steps[i] > 0)
                State(i, "step", new[] { 1 }).CopyFrom(new[] { (float)_steps[i] });
            foreach (var (key, t) in _state[i].OrderBy(e => e.Key, StringComparer.Ordinal))
                yield return ($"{Parameters[i].Name}.{key}", t);
        }
    }

    /// <summary>
    /// Restores state saved by <see cref="StateDict"/> (names relative to the optimizer), step counts included. Every name
    /// and shape is checked before anything is written.
    /// </summary>
    /// <exception cref="StateDictMismatchException">An unknown parameter or state key, a parameter whose state lacks a key
    /// this optimizer keeps (or its step count), a shape that does not fit, a step count that is not a whole number in
    /// [1, 2^31), or a value that is not finite (or negative where it is a running square or sum).</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, (int[] Shape, Func<float[]> Read)> source)
    {
        EnsureAlive("load_state_dict");
        var byName = Parameters.Select((p, i) => (p.Name, i)).ToDictionary(e => e.Name, e => e.i);
        var keys = StateKeys.ToDictionary(k => k.Key, k => k.NonNegative);
        var (missing, unexpected, wrong, invalid) = (new List<string>(), new List<string>(), new List<string>(), new List<string>());
        var plan = new List<(int Index, string Key, int[] Shape, float[] Data)>();
        var withState = new HashSet<int>();
        foreach (var (name, (shape, read)) in source)
        {
            int dot = name.LastIndexOf('.');
            if (dot < 0 || !byName.TryGetValue(name[..dot], out int index))
            {
                unexpected.Add(name);
                continue;
            }
            withState.Add(index);
            string key = name[(dot + 1)..];
            if (key != "step" && !keys.ContainsKey(key))
            {
                unexpected.Add(name);
                continue;
            }
            var expected = key == "step" ? new[] { 1 } : Parameters[index].Tensor.ShapeArray();
            if (!shape.SequenceEqual(expected))
            {
                wrong.Add($"{name}: expected {GpuNetException.FormatShape(expected)}, got {GpuNetException.FormatShape(shape)}");
                continue;
            }
            var data = read();
            if (key == "step" && !(data[0] >= 1 && data[0] < 2147483648f && data[0] == MathF.Floor(data[0])))
                invalid.Add($"{name}: expected a whole step count in [1, 2^31), got {data[0]}");
            else if (Array.FindIndex(data, v => !float.IsFinite(v) || (v < 0 && keys.GetValueOrDefault(key))) is int bad and >= 0)
                invalid.Add($"{name}: expected finite{(keys.GetValueOrDefault(key) ? ", non-negative" : "")} values, got {data[bad]} at {bad}");
            else
                plan.Add((index, key, shape, data));
        }
        // A parameter with any state has all of it: the step count and every key this configuration keeps.
        foreach (var index in withState)
            foreach (var key in keys.Keys.Append("step"))
                if (!source.ContainsKey($"{Parameters[index].Name}.{key}"))
                    missing.Add($"{Parameters[index].Name}.{key}");
        if (missing.Count > 0 || unexpected.Count > 0 || wrong.Count > 0 || invalid.Count > 0)
            throw new StateDictMismatchException(GetType().Name, missing, unexpected, wrong, invalid);
        foreach (var (index, key, shape, data) in plan)
        {
            State(index, key, shape).CopyFrom(data);
            if (key == "step")
                _steps[index] = (int)data[0];
        }
        StepCount = _steps.Length == 0 ? 0 : _steps.Max();
    }

    /// <summary>Disposes the state tensors (not the parameters).</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var s in _state)
            foreach (var t in s.Values)
                t.Dispose();
    }
}

/// <summary>Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).</summary>
public sealed class Sgd(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate, float momentum = 0f, float dampening = 0f,
    float weightDecay = 0f, bool nesterov = false) : Optimizer(parameters, learningRate)
{
    private readonly bool _nesterov = !nesterov || (momentum > 0 && dampening == 0)
        ? nesterov : throw new ArgumentException("sgd: Nesterov momentum needs momentum > 0 and zero dampening");

    /// <inheritdoc/>
    protected override IEnumerable<(string Key, bool NonNegative)> StateKeys =>
        momentum != 0 ? new[] { ("momentum_buffer", false) } : Array.Empty<(string, bool)>();

    /// <inheritdoc/>
    protected override void Update(int index, Tensor param, Tensor grad)
    {
        bool first = !HasState(index, "momentum_buffer");
        var buffer = momentum != 0 ? State(index, "momentum_buffer") : null;
        Ops.SgdUpdate(param, grad, buffer, new SgdStep
        {
            Lr = LearningRate, Momentum = momentum, Dampening = dampening, WeightDecay = weightDecay,
            Nesterov = _nesterov ? 1 : 0, FirstStep = first ? 1 : 0,
        });
    }
}

/// <summary>Adam with bias corrections, optional L2 weight decay and AMSGrad (torch.optim.Adam); <see cref="AdamW"/> decouples the decay.</summary>
public class Adam(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
    float eps = 1e-8f, float weightDecay = 0f, bool amsGrad = false) : Optimizer(parameters, learningRate)
{
    /// <summary>True for AdamW's decoupled weight decay.</summary>
    protected virtual bool Decoupled => false;

    /// <inheritdoc/>
    protected override IEnumerable<(string Key, bool NonNegative)> StateKeys =>
        amsGrad ? new[] { ("exp_avg", false), ("exp_avg_sq", true), ("max_exp_avg_sq", true) } : new[] { ("exp_avg", false), ("exp_avg_sq", true) };

    /// <inheritdoc/>
    protected override void Update(int index, Tensor param, Tensor grad)
    {
        int t = StepsOf(index);
        Ops.AdamUpdate(param, grad, State(index, "exp_avg"), State(index, "exp_avg_sq"), amsGrad ? State(index, "max_exp_avg_sq") : null, new AdamStep
        {
            Lr = LearningRate, Beta1 = beta1, Beta2 = beta2, Eps = eps, WeightDecay = weightDecay,
            BiasCorrection1 = 1f - MathF.Pow(beta1, t), BiasCorrection2Sqrt = MathF.Sqrt(1f - MathF.Pow(beta2, t)),
            Decoupled = Decoupled ? 1 : 0, AmsGrad = amsGrad ? 1 : 0,
        });
    }
}

/// <summary>Adam with decoupled weight decay, p ← p·(1 − lr·λ) before the Adam update (torch.optim.AdamW; default λ = 0.01).</summary>
public sealed class AdamW(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
    float eps = 1e-8f, float weightDecay = 0.01f, bool amsGrad = false) : Adam(parameters, learningRate, beta1, beta2, eps, weightDecay, amsGrad)
{
    /// <inheritdoc/>
    protected override bool Decoupled => true;
}

/// <summary>RMSprop with optional centering, momentum and L2 weight decay (torch.optim.RMSprop).</summary>
public sealed class RmsProp(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate = 1e-2f, float alpha = 0.99f, float eps = 1e-8f,
    float weightDecay = 0f, float momentum = 0f, bool centered = false) : Optimizer(parameters, learningRate)
{
    /// <inheritdoc/>
    protected override IEnumerable<(string Key, bool NonNegative)> StateKeys =>
        new[] { ("square_avg", true) }.Concat(centered ? new[] { ("grad_avg", false) } : []).Concat(momentum > 0 ? new[] { ("momentum_buffer", false) } : []);
    /// <inheritdoc/>
    protected override void Update(int index, Tensor param, Tensor grad) =>
        Ops.RmsPropUpdate(param, grad, State(index, "square_avg"), centered ? State(index, "grad_avg") : null,
            momentum > 0 ? State(index, "momentum_buffer") : null,
            new RmsPropStep { Lr = LearningRate, Alpha = alpha, Eps = eps, Momentum = momentum, WeightDecay = weightDecay, Centered = centered ? 1 : 0 });
}

/// <summary>Adagrad with learning-rate decay and L2 weight decay (torch.optim.Adagrad).</summary>
public sealed class Adagrad(IEnumerable<(string Name, Tensor Tensor)> parameters, float learningRate = 1e-2f, float learningRateDecay = 0f,
    float weightDecay = 0f, float initialAccumulator = 0f, float eps = 1e-10f) : Optimizer(parameters, learningRate)
{
    /// <inheritdoc/>
    protected override IEnumerable<(string Key, bool NonNegative)> StateKeys => new[] { ("sum", true) };
    /// <inheritdoc/>
    protected override void Update(int index, Tensor param, Tensor grad)
    {
        bool first = !HasState(index, "sum");
        var sum = State(index, "sum");
        if (first && initialAccumulator != 0)
            Ops.Fill(sum, initialAccumulator);
        Ops.AdagradUpdate(param, grad, sum, new AdagradStep
        {
            Lr = LearningRate / (1f + (StepsOf(index) - 1) * learningRateDecay), Eps = eps, WeightDecay = weightDecay,
        });
    }
}

/// <summary>
/// An exponential moving average of a module's parameters (Polyak averaging; what diffusion models are sampled from): after
/// each optimizer step <see cref="Update"/> moves every average toward its parameter by 1 − d, with the warm-up
/// d = min(decay, (1 + n)/(10 + n)) after n updates so the first averages are not held at the initialization;
/// <see cref="Apply"/> puts the averages into the module until the returned handle is disposed. The averages live on the
/// module's device, and updates are two elementwise kernels per parameter.
/// </summary>
public sealed class WeightAverage : IDisposable
{
    private readonly List<(Tensor Parameter, Tensor Average)> _pairs;
    private bool _applied;

    /// <summary>Starts the averages at the module's current parameters.</summary>
    /// <exception cref="InvalidArgumentException">A decay outside (0, 1).</exception>
    public WeightAverage(Module module, float decay = 0.999f)
    {
        Validate.NotNull("weight_average", "module", module);
        if (!(decay > 0f && decay < 1f))
            throw new InvalidArgumentException("weight_average", "decay", "a decay in (0, 1)", decay.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Decay = decay;
        using var _ = Autograd.NoGrad();
        _pairs = module.Parameters().Select(p => (p.Tensor, Copy(p.Tensor))).ToList();
    }

    /// <summary>The decay after the warm-up.</summary>
    public float Decay { get; }

    /// <summary>A new tensor (own memory, outside any scope) holding t's values.</summary>
    private static Tensor Copy(Tensor t)
    {
        var copy = TensorScope.Escape(Tensor.Empty(t.Device, t.ShapeArray()));
        Ops.Copy(t, copy);
        return copy;
    }

    /// <summary>Updates so far.</summary>
    public int Updates { get; private set; }

    /// <summary>average ← d·average + (1 − d)·parameter for every parameter.</summary>
    public void Update()
    {
        if (_applied)
            throw new InvalidOperationException("weight_average: Update while the averages are applied to the module; dispose the handle of Apply first");
        float d = Math.Min(Decay, (1f + Updates) / (10f + Updates));
        Updates++;
        using var _ = Autograd.NoGrad();
        foreach (var (parameter, average) in _pairs)
        {
            Ops.Scale(average, d, output: average);
            Ops.Axpy(1 - d, parameter, average, output: average);
        }
    }

    /// <summary>Puts the averages into the module's parameters; disposing the handle puts the trained values back.</summary>
    public IDisposable Apply()
    {
        if (_applied)
            throw new InvalidOperationException("weight_average: the averages are already applied");
        using var _ = Autograd.NoGrad();
        var saved = _pairs.Select(p => Copy(p.Parameter)).ToList();
        foreach (var (parameter, average) in _pairs)
            Ops.Copy(average, parameter);
        _applied = true;
        return new Restore(this, saved);
    }

    private sealed class Restore(WeightAverage owner, List<Tensor> saved) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (_done)
                return;
            _done = true;
            using (Autograd.NoGrad())
                for (int i = 0; i < saved.Count; i++)
                {
                    Ops.Copy(saved[i], owner._pairs[i].Parameter);
                    saved[i].Dispose();
                }
            owner._applied = false;
        }
    }

    /// <summary>Disposes the averages.</summary>
    public void Dispose()
    {
        foreach (var (_, average) in _pairs)
            average.Dispose();
    }
}

using System.Globalization;

namespace GpuNet.Layers;

/// <summary>A learning-rate schedule: call <see cref="Step"/> once per epoch (or per step, as the schedule is meant) after the optimizer's step.</summary>
public abstract class LearningRateSchedule
{
    /// <summary>Attaches the schedule to <paramref name="optimizer"/>, whose current rate is the base rate.</summary>
    protected LearningRateSchedule(Optimizer optimizer)
    {
        Optimizer = optimizer;
        BaseRate = optimizer.LearningRate;
        optimizer.LearningRate = RateAt(0);
    }

    /// <summary>The optimizer whose rate is set.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The rate the optimizer had when the schedule was attached.</summary>
    public float BaseRate { get; }

    /// <summary>Calls to <see cref="Step"/> so far.</summary>
    public int Epoch { get; private set; }

    /// <summary>Advances one epoch and sets the optimizer's rate.</summary>
    public void Step() => Optimizer.LearningRate = RateAt(++Epoch);

    /// <summary>The rate after <paramref name="epoch"/> steps.</summary>
    public abstract float RateAt(int epoch);
}

/// <summary>Multiplies the rate by γ every <c>stepSize</c> epochs (torch.optim.lr_scheduler.StepLR).</summary>
public sealed class StepLR(Optimizer optimizer, int stepSize, float gamma = 0.1f) : LearningRateSchedule(Check(optimizer, stepSize))
{
    private static Optimizer Check(Optimizer o, int stepSize) =>
        stepSize > 0 ? o : throw new ArgumentOutOfRangeException(nameof(stepSize), "step_lr: step size must be ≥ 1");

    /// <inheritdoc/>
    public override float RateAt(int epoch) => BaseRate * MathF.Pow(gamma, epoch / stepSize);
}

/// <summary>Cosine annealing from the base rate to <c>minRate</c> over <c>periods</c> epochs (torch's CosineAnnealingLR, closed form).</summary>
public sealed class CosineAnnealingLR(Optimizer optimizer, int periods, float minRate = 0f) : LearningRateSchedule(optimizer)
{
    /// <inheritdoc/>
    public override float RateAt(int epoch) =>
        minRate + (BaseRate - minRate) * (1 + MathF.Cos(MathF.PI * Math.Min(epoch, periods) / periods)) / 2;
}

/// <summary>Linear warm-up from <c>startFactor</c>·base to the base rate over <c>warmupSteps</c>, then constant (torch's LinearLR).</summary>
public sealed class LinearWarmup(Optimizer optimizer, int warmupSteps, float startFactor = 1f / 3) : LearningRateSchedule(optimizer)
{
    /// <inheritdoc/>
    public override float RateAt(int epoch) =>
        BaseRate * (epoch >= warmupSteps ? 1f : startFactor + (1f - startFactor) * epoch / warmupSteps);
}

/// <summary>Stops training when a validation metric has not improved by more than <c>minDelta</c> for <c>patience</c> checks.</summary>
public sealed class EarlyStopping(int patience, float minDelta = 0f, bool lowerIsBetter = true)
{
    /// <summary>Best value seen.</summary>
    public float Best { get; private set; } = lowerIsBetter ? float.PositiveInfinity : float.NegativeInfinity;

    /// <summary>Checks since the last improvement.</summary>
    public int BadChecks { get; private set; }

    /// <summary>True once patience ran out.</summary>
    public bool ShouldStop => BadChecks >= patience;

    /// <summary>Records a metric value; returns true when it improved on the best.</summary>
    public bool Observe(float value)
    {
        bool better = lowerIsBetter ? value < Best - minDelta : value > Best + minDelta;
        if (better)
        {
            Best = value;
            BadChecks = 0;
        }
        else
            BadChecks++;
        return better;
    }
}

/// <summary>
/// A training checkpoint in one safetensors file: the module's state dict under its own names and the optimizer's state
/// under "optimizer." (moments, buffers, per-parameter step counts), so <see cref="Load"/> resumes a run exactly.
/// </summary>
public static class Checkpoint
{
    private const string Prefix = "optimizer.";

    /// <summary>Writes the module (parameters and buffers) and the optimizer state.</summary>
    public static void Save(string path, Module module, Optimizer optimizer) =>
        SafeTensors.Save(path, module.StateDict().Concat(optimizer.StateDict().Select(e => (Prefix + e.Name, e.Tensor))),
            new Dictionary<string, string> { ["optimizer"] = optimizer.GetType().Name, ["step"] = optimizer.StepCount.ToString(CultureInfo.InvariantCulture) });

    /// <summary>Loads both parts; names and shapes are checked before anything is written.</summary>
    public static void Load(string path, Module module, Optimizer optimizer)
    {
        using var file = SafeTensors.Open(path);
        var entries = file.Names.ToDictionary(n => n, n => (file.Shape(n), (Func<float[]>)(() => file.ReadFloats(n))));
        var own = entries.Where(e => !e.Key.StartsWith(Prefix, StringComparison.Ordinal)).ToDictionary(e => e.Key, e => e.Value);
        var state = entries.Where(e => e.Key.StartsWith(Prefix, StringComparison.Ordinal)).ToDictionary(e => e.Key[Prefix.Length..], e => e.Value);
        module.LoadStateDict(own);
        optimizer.LoadStateDict(state);
    }
}

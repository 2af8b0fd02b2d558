using System.Diagnostics;

namespace GpuNet.Layers;

/// <summary>One logged point of a training run.</summary>
/// <param name="Step">Steps done (1-based).</param>
/// <param name="Loss">The training loss of that step.</param>
/// <param name="StepsPerSecond">Throughput since the run started.</param>
public readonly record struct TrainProgress(int Step, float Loss, double StepsPerSecond);

/// <summary>
/// The seed notes' first trainer: an MLP that learns y = 3x² + 5 from 256 points on [−2, 2], full batch, with Adam
/// (lr 1e-3) and the mean squared error — the complete loop (forward, loss, backward, step, zero_grad) as a user writes it.
/// The network is nn.Sequential(Linear(1, 64), ReLU, Linear(64, 64), ReLU, Linear(64, 1)), state-dict names "0.weight" …
/// </summary>
public static class DnnRegression
{
    /// <summary>Points on the grid x_i = −2 + 4i/(n − 1).</summary>
    public const int Points = 256;

    /// <summary>The network, initialized as PyTorch's defaults do (kaiming-uniform from the seed).</summary>
    public static Sequential Model(Device device, ulong seed = 0)
    {
        var model = new Sequential(device,
            new Linear(device, 1, 64), new ActivationLayer(device, "relu"),
            new Linear(device, 64, 64), new ActivationLayer(device, "relu"),
            new Linear(device, 64, 1));
        model.Initialize(seed);
        return model;
    }

    /// <summary>Inputs x [n, 1] on the grid and targets y = 3x² + 5 [n, 1].</summary>
    public static (Tensor X, Tensor Y) Data(Device device, int points = Points)
    {
        var x = Enumerable.Range(0, points).Select(i => -2f + 4f * i / (points - 1)).ToArray();
        return (Tensor.FromArray(device, x, points, 1), Tensor.FromArray(device, x.Select(v => 3 * v * v + 5).ToArray(), points, 1));
    }

    /// <summary>
    /// Trains <paramref name="model"/> for <paramref name="steps"/> Adam steps on <see cref="Data"/> and returns every step's
    /// loss. <paramref name="progress"/> is called every <paramref name="reportEvery"/> steps and at the last one.
    /// </summary>
    public static float[] Train(Module model, Func<Tensor, Tensor> forward, int steps, float learningRate = 1e-3f,
        Action<TrainProgress>? progress = null, int reportEvery = 50)
    {
        var device = model.Device;
        var (x, y) = Data(device);
        using var _x = x;
        using var _y = y;
        using var optimizer = new Adam(model.Parameters(), learningRate);
        var losses = new float[steps];
        var clock = Stopwatch.StartNew();
        for (int step = 1; step <= steps; step++)
        {
            using (var prediction = forward(x))
            using (var loss = Ops.MseLoss(prediction, y))
            {
                loss.Backward();
                optimizer.Step();
                optimizer.ZeroGrad();
                losses[step - 1] = loss.ToArray()[0];
            }
            if (progress is not null && (step % reportEvery == 0 || step == steps))
                progress(new TrainProgress(step, losses[step - 1], step / clock.Elapsed.TotalSeconds));
        }
        return losses;
    }
}

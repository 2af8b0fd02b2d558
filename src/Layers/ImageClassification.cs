using System.Diagnostics;

namespace GpuNet.Layers;

/// <summary>Where an image-classification run stands, after a training batch.</summary>
/// <param name="Epoch">The epoch (1-based).</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches per epoch.</param>
/// <param name="Loss">Mean cross-entropy over this epoch's batches so far.</param>
/// <param name="Accuracy">Training accuracy over this epoch's batches so far (dropout and batch statistics on).</param>
/// <param name="ImagesPerSecond">Training throughput since the run started.</param>
/// <param name="Left">The time the rest of the run should take at that throughput (test passes excluded).</param>
public readonly record struct ClassifierProgress(int Epoch, int Batch, int Batches, float Loss, float Accuracy, double ImagesPerSecond, TimeSpan Left);

/// <summary>One finished epoch.</summary>
/// <param name="Epoch">The epoch (1-based).</param>
/// <param name="TrainLoss">Mean training cross-entropy of the epoch.</param>
/// <param name="TrainAccuracy">Training accuracy of the epoch.</param>
/// <param name="TestAccuracy">Accuracy on the test set after the epoch (eval mode).</param>
/// <param name="Seconds">Wall time of the run so far, test passes included.</param>
/// <param name="ImagesPerSecond">Training images per second of training time so far.</param>
public readonly record struct EpochResult(int Epoch, float TrainLoss, float TrainAccuracy, float TestAccuracy, double Seconds, double ImagesPerSecond);

/// <summary>
/// The seed classifier trainer: minibatch training of any image classifier with cross-entropy and Adam — forward, loss,
/// backward, step, zero_grad, as a PyTorch user writes the loop — in training mode (dropout, batch statistics), then the test
/// accuracy in eval mode after every epoch.
/// </summary>
public static class ImageClassification
{
    /// <summary>
    /// Trains <paramref name="model"/> for <paramref name="epochs"/> epochs with Adam, the rate annealed along a cosine from
    /// <paramref name="learningRate"/> to zero over the run's steps (torch's CosineAnnealingLR stepped per batch) unless
    /// <paramref name="cosine"/> is false. <paramref name="progress"/> is called every <paramref name="reportEvery"/> batches and at
    /// the end of each epoch, <paramref name="epochDone"/> after each epoch's test. Returns every step's training loss and the
    /// epochs' results.
    /// </summary>
    public static (float[] StepLosses, IReadOnlyList<EpochResult> Epochs) Train(Layer model, ImageDataset train, ImageDataset test, int epochs,
        int batchSize = 64, float learningRate = 1e-3f, ulong seed = 0, Action<ClassifierProgress>? progress = null,
        Action<EpochResult>? epochDone = null, int reportEvery = 10, bool cosine = true)
    {
        Validate.NotNull("image_classification", "model", model);
        if (epochs < 0)
            throw new InvalidArgumentException("image_classification", "epochs", "0 or more", epochs.ToString());
        var loader = new DataLoader(model.Device, train, batchSize, shuffle: true, seed: seed);
        using var optimizer = new Adam(model.Parameters(), learningRate);
        var schedule = cosine ? new CosineAnnealingLR(optimizer, Math.Max(1, epochs * loader.BatchCount)) : null;
        var losses = new List<float>();
        var results = new List<EpochResult>();
        var clock = Stopwatch.StartNew();
        var training = new Stopwatch();
        long seen = 0, total = (long)epochs * train.Count;
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            model.Train();
            double lossSum = 0;
            long correct = 0, count = 0;
            int b = 0;
            training.Start();
            foreach (var batch in loader.Epoch(epoch - 1))
                using (batch)
                {
                    float loss;
                    using (var logits = model.Forward(batch.Images))
                    {
                        using (var l = Ops.CrossEntropy(logits, batch.Labels))
                        {
                            l.Backward();
                            loss = l.ToArray()[0];
                        }
                        optimizer.Step();
                        optimizer.ZeroGrad();
                        schedule?.Step();
                        correct += Correct(logits, batch.HostLabels);
                    }
                    losses.Add(loss);
                    lossSum += loss * batch.Count;
                    count += batch.Count;
                    seen += batch.Count;
                    b++;
                    if (progress is not null && (b % reportEvery == 0 || b == loader.BatchCount))
                    {
                        double rate = seen / training.Elapsed.TotalSeconds;
                        progress(new ClassifierProgress(epoch, b, loader.BatchCount, (float)(lossSum / count), (float)correct / count, rate,
                            TimeSpan.FromSeconds((total - seen) / Math.Max(rate, 1e-9))));
                    }
                }
            training.Stop();
            float testAccuracy = Evaluate(model, test, Math.Max(batchSize, 256));
            var result = new EpochResult(epoch, (float)(lossSum / Math.Max(count, 1)), (float)correct / Math.Max(count, 1), testAccuracy,
                clock.Elapsed.TotalSeconds, seen / Math.Max(training.Elapsed.TotalSeconds, 1e-9));
            results.Add(result);
            epochDone?.Invoke(result);
        }
        model.Train();
        return (losses.ToArray(), results);
    }

    /// <summary>The fraction of <paramref name="data"/> that <paramref name="model"/> classifies right, in eval mode (the
    /// module's mode is restored afterwards).</summary>
    public static float Evaluate(Layer model, ImageDataset data, int batchSize = 256)
    {
        Validate.NotNull("image_classification", "model", model);
        bool wasTraining = model.Training;
        model.Eval();
        try
        {
            long correct = 0;
            using var _ = Autograd.NoGrad();
            foreach (var batch in new DataLoader(model.Device, data, batchSize, shuffle: false).Epoch())
                using (batch)
                using (var logits = model.Forward(batch.Images))
                    correct += Correct(logits, batch.HostLabels);
            return data.Count == 0 ? 0f : (float)correct / data.Count;
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>How many rows of logits [B, classes] have their largest value at the label.</summary>
    private static long Correct(Tensor logits, int[] labels)
    {
        using var _ = Autograd.NoGrad();
        using var predicted = Ops.ArgMax(logits, -1);
        var p = predicted.ToArray();
        long correct = 0;
        for (int i = 0; i < labels.Length; i++)
            if ((int)p[i] == labels[i])
                correct++;
        return correct;
    }
}

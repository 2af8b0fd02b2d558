namespace GpuNet.Onnx.Operators;

/// <summary>
/// NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over [N, C, d1...] with int64 targets [N, d1...], class
/// weights, ignore_index and the mean/sum/none reductions. The picked log-probabilities are gathered on the device; the
/// per-element weights (a class's weight, 0 where ignored) are known on the host from the targets.
/// </summary>
internal static class LossOperators
{
    public static IEnumerable<OpSpec> Specs()
    {
        yield return new OpSpec("NegativeLogLikelihoodLoss", (c, i) => new[] { Nll(c, i[0]!.On(c.Device), i[0]!.Shape, i[1]!, i.Length > 2 ? i[2] : null) }, 12, ReductionCheck);
        yield return new OpSpec("SoftmaxCrossEntropyLoss", SoftmaxCrossEntropy, 12, ReductionCheck);
    }

    private static string? ReductionCheck(OpContext c) =>
        c.String("reduction", "mean") is "mean" or "sum" or "none" ? null : $"reduction '{c.String("reduction", "")}' is not one of mean, sum, none";

    private static OnnxTensor Nll(OpContext c, Tensor logProb, int[] dims, OnnxTensor target, OnnxTensor? weight)
    {
        if (dims.Length < 2)
            throw c.Shape("input", "[N, C, d1...]", GpuNetException.FormatShape(dims));
        var labels = Values.Longs(c, target, "target");
        int n = dims[0], classes = dims[1], inner = Values.Count(dims[2..]);
        var targetDims = new[] { n }.Concat(dims[2..]).ToArray();
        if (!target.Shape.SequenceEqual(targetDims))
            throw c.Shape("target", GpuNetException.FormatShape(targetDims), GpuNetException.FormatShape(target.Dims));
        long ignore = c.Int("ignore_index", long.MinValue);
        var classWeights = weight?.Floats;
        var map = new long[labels.Length];
        var w = new float[labels.Length];
        double total = 0;
        for (int k = 0; k < labels.Length; k++)
        {
            long t = labels[k];
            if (t == ignore)
            {
                map[k] = -1;
                continue;
            }
            if (t < 0 || t >= classes)
                throw c.Shape("target", $"class indices in [0, {classes}) or ignore_index", t.ToString());
            int batch = k / inner, at = k % inner;
            map[k] = ((long)batch * classes + t) * inner + at;
            w[k] = classWeights is null ? 1f : classWeights[t];
            total += w[k];
        }
        var picked = Values.GatherFlat(c, logProb, map);
        var losses = Ops.Mul(picked, Tensor.FromArray(c.Device, w, w.Length));
        return c.String("reduction", "mean") switch
        {
            "none" => Values.Float(Ops.Unary(losses, Kernels.UnaryFunction.Neg), targetDims),
            "sum" => Values.Float(Ops.Scale(Ops.SumAll(losses), -1f), Array.Empty<int>()),
            _ => Values.Float(Ops.Scale(Ops.SumAll(losses), (float)(-1.0 / total)), Array.Empty<int>()),
        };
    }

    /// <summary>Log-softmax over the class axis (moved last for the row kernel), then the NLL above; the log-probabilities are the optional second output.</summary>
    private static OnnxTensor[] SoftmaxCrossEntropy(OpContext c, OnnxTensor?[] i)
    {
        var scores = i[0]!;
        var dims = scores.Shape;
        var x = scores.On(c.Device);
        Tensor logProb;
        if (dims.Length == 2)
            logProb = Ops.LogSoftmax(x);
        else
        {
            var order = new[] { 0 }.Concat(Enumerable.Range(2, dims.Length - 2)).Append(1).ToArray();
            var inverse = new int[order.Length];
            for (int d = 0; d < order.Length; d++)
                inverse[order[d]] = d;
            logProb = Ops.LogSoftmax(x.Permute(order).Contiguous()).Permute(inverse).Contiguous();
        }
        var loss = Nll(c, logProb, dims, i[1]!, i.Length > 2 ? i[2] : null);
        return c.Node.Outputs.Count > 1 ? new[] { loss, Values.Float(logProb, dims) } : new[] { loss };
    }
}

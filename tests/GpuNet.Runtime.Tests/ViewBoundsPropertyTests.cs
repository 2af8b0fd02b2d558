using GpuNet.Tests;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Runtime.Tests;

/// <summary>
/// Drives every view op (and the ops that take an offset or position) with random and extreme arguments on the fast
/// CPU and the simulated GPU. Each view is also built by a reference that knows nothing of strides: a view is the list
/// of storage positions of its elements, in row-major order. An op must either raise a typed <see cref="GpuNetException"/>
/// exactly when the reference finds the arguments invalid, or give a view whose elements read back as the reference's
/// and whose writes land on the reference's positions and nowhere else. The tensor under test lies between guard
/// tensors whose contents are checked after every step.
/// </summary>
public sealed class ViewBoundsPropertyTests(ITestOutputHelper output)
{
    private const float Guard = -12345.5f;

    public static TheoryData<string, int, int> Runs => new()
    {
        { "cpu", 11, 2000 },
        { "cpu", 12, 2000 },
        { "cpu-sim", 13, 250 },
    };

    /// <summary>A view as the positions of its elements in the storage, row-major: no strides, no offsets.</summary>
    private sealed record RefView(int[] Shape, long[] Positions)
    {
        public static RefView Fresh(int[] shape)
        {
            long n = 1;
            foreach (int d in shape)
                n *= d;
            return new RefView(shape, Enumerable.Range(0, (int)n).Select(i => (long)i).ToArray());
        }

        public long Count => Positions.Length;

        /// <summary>A valid view of up to 2^31 elements that the test does not enumerate (its shape is still checked).</summary>
        public bool TooLargeToList { get; init; }

        /// <summary>Row-major index of a multi-index.</summary>
        public long Flat(int[] index)
        {
            long f = 0;
            for (int i = 0; i < Shape.Length; i++)
                f = f * Shape[i] + index[i];
            return f;
        }

        public IEnumerable<int[]> Indices()
        {
            var idx = new int[Shape.Length];
            for (long n = 0, count = ShapeUtil.Product(Shape); n < count; n++)
            {
                yield return (int[])idx.Clone();
                for (int d = Shape.Length - 1; d >= 0; d--)
                {
                    if (++idx[d] < Shape[d])
                        break;
                    idx[d] = 0;
                }
            }
        }

        public RefView Map(int[] shape, Func<int[], int[]> source)
        {
            var next = new RefView(shape, Array.Empty<long>());
            var positions = new List<long>();
            foreach (var i in next.Indices())
                positions.Add(Positions[Flat(source(i))]);
            return next with { Positions = positions.ToArray() };
        }
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public void ViewsStayInsideTheirStorage(string deviceId, int seed, int chains)
    {
        var device = TestDevices.Get(deviceId);
        var rng = new Random(seed);
        long baseline = PoolAccounting.SettledBytesInUse(device);
        int typed = 0, views = 0, writes = 0;
        for (int chain = 0; chain < chains; chain++)
        {
            using var scope = device.Scope();
            var shape = Enumerable.Range(0, rng.Next(1, 5)).Select(_ => rng.Next(0, 5)).ToArray();
            var before = Tensor.FromArray(device, Enumerable.Repeat(Guard, 37).ToArray(), 37);
            var values = Enumerable.Range(0, (int)ShapeUtil.Product(shape)).Select(i => (float)i + 1).ToArray();
            var baseTensor = Tensor.FromArray(device, values, shape);
            var after = Tensor.FromArray(device, Enumerable.Repeat(Guard, 41).ToArray(), 41);
            var storage = (float[])values.Clone();
            var (tensor, reference) = (baseTensor, RefView.Fresh(shape));
            for (int step = 0; step < 6; step++)
            {
                var (name, apply, expected) = RandomViewOp(rng, reference);
                Tensor? view = null;
                GpuNetException? error = null;
                try
                {
                    view = apply(tensor);
                }
                catch (GpuNetException e)
                {
                    error = e;
                }
                string what = $"{deviceId} seed {seed} chain {chain} step {step}: {name} on {tensor.Describe()}";
                if (expected is null)
                {
                    Assert.True(error is not null, $"{what}: accepted, but the reference rejects it (view {view?.Describe()})");
                    typed++;
                    continue;   // a rejected op changes nothing: go on from the same view
                }
                Assert.True(error is null, $"{what}: the reference accepts it (shape {GpuNetException.FormatShape(expected.Shape)}), got {error?.Message}");
                views++;
                Assert.Equal(expected.Shape, view!.ShapeArray());
                if (expected.TooLargeToList)
                    break;
                Assert.Equal(expected.Positions.Select(p => storage[p]).ToArray(), view.ToArray());
                if (view.Length > 0 && expected.Positions.Distinct().Count() == expected.Positions.Length)
                {
                    // Write through the view: 2·src lands on exactly the reference's positions.
                    var src = Enumerable.Range(0, view.Length).Select(i => 1000f + i).ToArray();
                    var srcTensor = Tensor.FromArray(device, src, view.ShapeArray());
                    Ops.Add(srcTensor, srcTensor, view);
                    for (int i = 0; i < src.Length; i++)
                        storage[expected.Positions[i]] = 2 * src[i];
                    writes++;
                    Assert.Equal(storage, baseTensor.ToArray());
                }
                (tensor, reference) = (view, expected);
            }
            Assert.All(before.ToArray(), v => Assert.Equal(Guard, v));
            Assert.All(after.ToArray(), v => Assert.Equal(Guard, v));
        }
        Assert.Equal(baseline, PoolAccounting.SettledBytesInUse(device));
        output.WriteLine($"{deviceId} seed {seed}: {chains} chains, {views} views checked, {writes} writes through views, {typed} typed rejections");
        Assert.True(typed > chains / 10 && views > chains && writes > chains / 4, "the generator must exercise both outcomes");
    }

    /// <summary>An argument from the edges (0, −1, int.MinValue, int.MaxValue, near 2^31) or, half the time, a plausible one.</summary>
    private static int Arg(Random rng, int size)
    {
        int[] extremes = { 0, -1, int.MinValue, int.MaxValue, int.MaxValue - 1, 1 << 30, (1 << 30) + 1, size, (int)Math.Min(size + 1L, int.MaxValue), -size, 65536 };
        return rng.Next(3) == 0 ? extremes[rng.Next(extremes.Length)] : rng.Next(-1, (int)Math.Min(size + 2L, int.MaxValue));
    }

    private static int? Axis(int axis, int rank) => axis >= -rank && axis < rank ? (axis < 0 ? axis + rank : axis) : null;

    /// <summary>A random view op: its name, how to apply it, and the reference's view (null when the arguments are invalid).</summary>
    private static (string, Func<Tensor, Tensor>, RefView?) RandomViewOp(Random rng, RefView r)
    {
        int rank = r.Shape.Length;
        int size = rank == 0 ? 1 : r.Shape[rng.Next(rank)];
        switch (rng.Next(7))
        {
            case 0:
            case 1:
            {
                bool narrow = rng.Next(2) == 0;
                int dim = rng.Next(4) == 0 ? Arg(rng, rank) : rng.Next(-rank, Math.Max(rank, 1));
                int? d = Axis(dim, rank);
                int extent = d is int dd ? r.Shape[dd] : size;
                int start = Arg(rng, extent), length = Arg(rng, extent);
                RefView? v = null;
                if (d is int a)
                {
                    long s = narrow && start < 0 ? (long)start + extent : start;
                    if (s >= 0 && length >= 0 && s + length <= extent)
                    {
                        var shape = (int[])r.Shape.Clone();
                        shape[a] = length;
                        v = r.Map(shape, i => { var j = (int[])i.Clone(); j[a] += (int)s; return j; });
                    }
                }
                return narrow
                    ? ($"Narrow({dim}, {start}, {length})", t => t.Narrow(dim, start, length), v)
                    : ($"Slice({dim}, {start}, {length})", t => t.Slice(dim, start, length), v);
            }
            case 2:
            {
                int dim = rng.Next(-rank, Math.Max(rank, 1));
                int index = Arg(rng, size);
                RefView? v = null;
                if (Axis(dim, rank) is int a && index >= 0 && index < r.Shape[a])
                    v = r.Map(r.Shape.Where((_, i) => i != a).ToArray(), i => i.Take(a).Append(index).Concat(i.Skip(a)).ToArray());
                return ($"Select({dim}, {index})", t => t.Select(dim, index), v);
            }
            case 3:
            {
                var order = Enumerable.Range(0, rank).OrderBy(_ => rng.Next()).ToArray();
                if (rank > 0 && rng.Next(3) == 0)
                    order[rng.Next(rank)] = rng.Next(3) == 0 ? Arg(rng, rank) : rng.Next(-rank, rank);
                if (rng.Next(8) == 0)
                    order = order.Append(0).ToArray();
                RefView? v = null;
                var axes = order.Select(o => Axis(o, rank)).ToArray();
                if (order.Length == rank && axes.All(x => x is not null) && axes.Distinct().Count() == rank)
                {
                    var perm = axes.Select(x => x!.Value).ToArray();
                    v = r.Map(perm.Select(p => r.Shape[p]).ToArray(), i => { var j = new int[rank]; for (int k = 0; k < rank; k++) j[perm[k]] = i[k]; return j; });
                }
                return ($"Permute({string.Join(", ", order)})", t => t.Permute(order), v);
            }
            case 4:
            {
                int d0 = rng.Next(3) == 0 ? Arg(rng, rank) : rng.Next(-rank, Math.Max(rank, 1));
                int d1 = rng.Next(-rank, Math.Max(rank, 1));
                RefView? v = null;
                if (Axis(d0, rank) is int a && Axis(d1, rank) is int b)
                {
                    var shape = (int[])r.Shape.Clone();
                    (shape[a], shape[b]) = (shape[b], shape[a]);
                    v = r.Map(shape, i => { var j = (int[])i.Clone(); (j[a], j[b]) = (j[b], j[a]); return j; });
                }
                return ($"Transpose({d0}, {d1})", t => t.Transpose(d0, d1), v);
            }
            case 5:
            {
                int lead = rng.Next(3);
                var target = Enumerable.Range(0, lead).Select(_ => rng.Next(4) == 0 ? Arg(rng, 3) : rng.Next(1, 4))
                    .Concat(r.Shape.Select(d => rng.Next(3) switch { 0 when d == 1 => rng.Next(4) == 0 ? Arg(rng, 5) : rng.Next(0, 5), 1 => Arg(rng, d), _ => d }))
                    .ToArray();
                if (rng.Next(6) == 0)
                    target = r.Shape.Take(Math.Max(rank - 1, 0)).ToArray();
                RefView? v = null;
                bool ok = target.Length >= rank && target.All(x => x >= 0);
                for (int i = 0; ok && i < rank; i++)
                    ok = r.Shape[i] == target[lead + i] || r.Shape[i] == 1;
                if (ok && ShapeUtil.Product(target) > 1 << 16 && ShapeUtil.Product(target) <= int.MaxValue)
                    v = new RefView(target, Array.Empty<long>()) { TooLargeToList = true };
                else if (ok && ShapeUtil.Product(target) <= int.MaxValue)
                {
                    int extra = target.Length - rank;
                    v = r.Map(target, i => Enumerable.Range(0, rank).Select(k => r.Shape[k] == 1 ? 0 : i[extra + k]).ToArray());
                }
                return ($"Expand({string.Join(", ", target)})", t => t.Expand(target), v);
            }
            default:
            {
                var count = r.Count;
                var target = rng.Next(3) switch
                {
                    0 => new[] { -1 },
                    1 => new[] { Arg(rng, (int)Math.Min(count, 9)), -1 },
                    _ => Enumerable.Range(0, rng.Next(1, 4)).Select(_ => Arg(rng, 4)).ToArray(),
                };
                RefView? v = null;
                int minusOnes = target.Count(x => x == -1);
                if (minusOnes <= 1 && target.All(x => x >= -1))
                {
                    long known = target.Where(x => x != -1).Aggregate(1L, (p, x) => p * x);
                    var resolved = (int[])target.Clone();
                    bool ok = minusOnes == 0 ? known == count : known != 0 && count % known == 0;
                    if (ok && minusOnes == 1)
                        resolved[Array.IndexOf(resolved, -1)] = (int)(count / known);
                    // A reshape is a view when the elements, in order, lie on a grid of the new shape.
                    if (ok && OnGrid(resolved, r.Positions))
                        v = new RefView(resolved, r.Positions);
                }
                return ($"Reshape({string.Join(", ", target)})", t => t.Reshape(target), v);
            }
        }
    }

    /// <summary>Whether <paramref name="positions"/>, read in row-major order of <paramref name="shape"/>, are p₀ + Σ iₖ·stepₖ
    /// for some steps (each taken from the element one step along its dimension): the elements can take the shape in place.</summary>
    private static bool OnGrid(int[] shape, long[] positions)
    {
        if (positions.Length == 0)
            return true;
        var steps = new long[shape.Length];
        long unit = 1;
        for (int k = shape.Length - 1; k >= 0; k--)
        {
            steps[k] = shape[k] > 1 ? positions[unit] - positions[0] : 0;
            unit *= shape[k];
        }
        var index = new int[shape.Length];
        for (long n = 0; n < positions.Length; n++)
        {
            long at = positions[0];
            for (int k = 0; k < shape.Length; k++)
                at += index[k] * steps[k];
            if (positions[n] != at)
                return false;
            for (int k = shape.Length - 1; k >= 0 && ++index[k] == shape[k]; k--)
                index[k] = 0;
        }
        return true;
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cpu-sim")]
    public void KvCacheAppendTakesOnlyPositionsInsideTheCache(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var before = Tensor.FromArray(device, Enumerable.Repeat(Guard, 33).ToArray(), 33);
        var cache = Tensor.FromArray(device, Enumerable.Range(0, 2 * 3 * 5 * 4).Select(i => (float)i).ToArray(), 2, 3, 5, 4);
        var after = Tensor.FromArray(device, Enumerable.Repeat(Guard, 33).ToArray(), 33);
        var values = Tensor.FromArray(device, Enumerable.Range(0, 2 * 3 * 2 * 4).Select(i => -1f - i).ToArray(), 2, 3, 2, 4);
        var expected = cache.ToArray();
        using (Autograd.NoGrad())
        {
            foreach (int position in new[] { int.MaxValue, int.MaxValue - 1, int.MinValue, -1, 4, 5, 1 << 30 })
                Assert.Throws<InvalidArgumentException>(() => Ops.KvCacheAppend(cache, values, position));
            Assert.Equal(expected, cache.ToArray());
            Ops.KvCacheAppend(cache, values, 3);
        }
        for (int b = 0; b < 2; b++)
            for (int h = 0; h < 3; h++)
                for (int n = 0; n < 2; n++)
                    for (int d = 0; d < 4; d++)
                        expected[((b * 3 + h) * 5 + 3 + n) * 4 + d] = -1f - (((b * 3 + h) * 2 + n) * 4 + d);
        Assert.Equal(expected, cache.ToArray());
        Assert.All(before.ToArray(), v => Assert.Equal(Guard, v));
        Assert.All(after.ToArray(), v => Assert.Equal(Guard, v));
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cpu-sim")]
    public void CausalOffsetsAtTheEdgesStayInBounds(string deviceId)
    {
        var device = TestDevices.Get(deviceId);
        using var scope = device.Scope();
        var x = Tensor.FromArray(device, Enumerable.Range(0, 3 * 5).Select(i => (float)Math.Sin(i)).ToArray(), 3, 5);
        foreach (int offset in new[] { 0, 2, 5, -1, -3, int.MaxValue, int.MinValue, 1 << 30, -(1 << 30) })
        {
            var y = Ops.SoftmaxCausal(x, offset).ToArray();
            for (int i = 0; i < 3; i++)
            {
                // Row i sees keys j ≤ i + offset (in 64 bits: no wrap at the edges); a row that sees none is all zeros.
                long visible = Math.Clamp((long)i + offset + 1, 0, 5);
                var row = x.ToArray().Skip(i * 5).Take(5).Select(v => (double)v).ToArray();
                double max = visible == 0 ? 0 : row.Take((int)visible).Max();
                double sum = row.Take((int)visible).Sum(v => Math.Exp(v - max));
                for (int j = 0; j < 5; j++)
                    Assert.Equal(j < visible ? Math.Exp(row[j] - max) / sum : 0.0, y[i * 5 + j], 5);
            }
        }
    }

    [Fact]
    public void SizesThatOverflowAreTypedAndLeaveThePoolAsItWas()
    {
        var device = TestDevices.Cpu;
        long baseline = PoolAccounting.SettledBytesInUse(device);
        // 2^64 wraps to 0 in 64-bit products; 2^32 · 2^31 wraps negative.
        Assert.Throws<ShapeMismatchException>(() => Tensor.Zeros(device, 65536, 65536, 65536, 65536));
        Assert.Throws<ShapeMismatchException>(() => Tensor.Empty(device, 65536, 65536, 32768, 65536, 2));
        Assert.Throws<ShapeMismatchException>(() => Tensor.Empty(device, int.MaxValue, int.MaxValue, int.MaxValue));
        Assert.Throws<ShapeMismatchException>(() => Tensor.Empty(device, 65536, 32768));
        Assert.Throws<ShapeMismatchException>(() => Tensor.RandomNormal(device, new[] { 65536, 32768 }, 1));
        Assert.Throws<ShapeMismatchException>(() => Tensor.RandomUniform(device, new[] { 65536, 65536, 65536, 65536 }, 1));
        using (var one = Tensor.Zeros(device, 1))
        {
            Assert.Throws<ShapeMismatchException>(() => one.Expand(65536, 65536));
            Assert.Throws<ShapeMismatchException>(() => one.Expand(65536, 65536, 65536, 65536));
            Assert.Throws<ShapeMismatchException>(() => one.Expand(-1));
        }
        using (var empty = Tensor.Zeros(device, 0, 65536, 65536))   // empty: 0 elements however large the rest
            Assert.Equal(0, empty.Length);
        Assert.Equal(baseline, PoolAccounting.SettledBytesInUse(device));
    }

    [Fact]
    public void TheSliceFromTheReportIsRejectedAndWritesNothing()
    {
        var device = TestDevices.Cpu;
        using var scope = device.Scope();
        var src = Tensor.FromArray(device, new float[] { 1, 2, 3, 4 }, 2, 2);
        var e = Assert.Throws<ShapeMismatchException>(() => src.Slice(0, int.MaxValue, 1));
        Assert.Equal("slice", e.Op);
        Assert.Throws<ShapeMismatchException>(() => src.Slice(1, 1, int.MaxValue));
        Assert.Throws<ShapeMismatchException>(() => src.Narrow(0, int.MinValue, 1));
        Assert.Equal(new float[] { 1, 2, 3, 4 }, src.ToArray());
    }
}

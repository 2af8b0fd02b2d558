using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of transpose, permute (tiled and strided paths), concat and split.</summary>
internal static class LayoutChecks
{
    private static CheckCase Permuted(string kernel, string name, int[] shape, Func<Tensor, Tensor> op, Func<Tensor, Tensor> view) =>
        new("layout", kernel, name, Shapes(shape), CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = Random(d, seed, 0, shape);
            using var v = view(x);
            using var o = op(x);
            return new(o.ToArray(), ElementwiseReference.StridedView(Host(x), v.ShapeArray(), v.Strides.ToArray(), v.Offset));
        });

    internal static IEnumerable<CheckCase> Cases()
    {
        foreach (var (name, shape) in new[] { ("tiny", new[] { 1, 1 }), ("odd", new[] { 37, 29 }), ("tile_multiple", new[] { 64, 32 }), ("batched", new[] { 3, 33, 65 }), ("rank4", new[] { 2, 3, 17, 9 }) })
            yield return Permuted("transpose", name, shape, x => Ops.Transpose(x), x => x.Transpose());
        yield return Permuted("transpose", "outer_dims", new[] { 5, 6, 7 }, x => Ops.Transpose(x, 0, 1), x => x.Transpose(0, 1));
        yield return new CheckCase("layout", "transpose", "sliced_rows", "[40, 70] cols 5..44", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            // Input rows have a stride (70) larger than their length (39): the tiled path must use it.
            using var x = Random(d, seed, 0, 40, 70);
            using var s = x.Slice(1, 5, 39);
            using var o = Ops.Transpose(s);
            return new(o.ToArray(), ElementwiseReference.StridedView(Host(x), new[] { 39, 40 }, new[] { 1, 70 }, 5));
        });
        var perms = new (string Name, int[] Shape, int[] Order)[]
        {
            ("move_last_to_front", new[] { 5, 7, 11 }, new[] { 2, 0, 1 }),
            ("swap_inner_batched", new[] { 4, 6, 9 }, new[] { 0, 2, 1 }),
            ("nchw_to_nhwc", new[] { 2, 3, 5, 7 }, new[] { 0, 2, 3, 1 }),
            ("inner_kept_strided", new[] { 2, 3, 4, 5 }, new[] { 2, 0, 1, 3 }),
            ("reverse_rank6", new[] { 2, 3, 2, 3, 2, 5 }, new[] { 5, 4, 3, 2, 1, 0 }),
        };
        foreach (var (name, shape, order) in perms)
            yield return Permuted("permute", name, shape, x => Ops.Permute(x, order), x => x.Permute(order));

        var concats = new (string Name, int[][] Shapes, int Axis)[]
        {
            ("axis0", new[] { new[] { 3, 5 }, new[] { 1, 5 }, new[] { 4, 5 } }, 0),
            ("axis1", new[] { new[] { 3, 5 }, new[] { 3, 2 } }, 1),
            ("middle_axis", new[] { new[] { 2, 3, 4 }, new[] { 2, 7, 4 }, new[] { 2, 1, 4 } }, 1),
            ("single", new[] { new[] { 6, 7 } }, -1),
        };
        foreach (var (name, shapes, axis) in concats)
            yield return new CheckCase("layout", "concat", name, Shapes(shapes) + $" axis {axis}", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                var inputs = shapes.Select((s, i) => Random(d, seed, i, s)).ToList();
                try
                {
                    using var o = Ops.Concat(inputs, axis);
                    int a = axis < 0 ? axis + shapes[0].Length : axis;
                    return new(o.ToArray(), ConcatReference(inputs.Select(Host).ToList(), shapes, a));
                }
                finally
                {
                    inputs.ForEach(t => t.Dispose());
                }
            });
        yield return new CheckCase("layout", "concat", "strided_input", "[4, 6]ᵀ + [6, 3] axis 1", CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var a = Random(d, seed, 0, 4, 6);
            using var at = a.Transpose(0, 1);
            using var b = Random(d, seed, 1, 6, 3);
            using var o = Ops.Concat(new[] { at, b }, 1);
            var ha = ElementwiseReference.StridedView(Host(a), new[] { 6, 4 }, new[] { 1, 6 }, 0);
            return new(o.ToArray(), ConcatReference(new List<double[]> { ha, Host(b) }, new[] { new[] { 6, 4 }, new[] { 6, 3 } }, 1));
        });

        foreach (var (name, shape, sizes, axis) in new[] { ("axis1", new[] { 4, 10, 3 }, new[] { 3, 5, 2 }, 1), ("last_axis", new[] { 5, 9 }, new[] { 4, 0, 5 }, -1), ("axis0", new[] { 7, 2 }, new[] { 7 }, 0) })
            yield return new CheckCase("layout", "split", name, Shapes(shape) + " into [" + string.Join(", ", sizes) + "]", CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, shape);
                var pieces = Ops.Split(x, sizes, axis);
                var got = pieces.SelectMany(p => p.ToArray()).ToArray();
                foreach (var p in pieces)
                    p.Dispose();
                // Splitting and concatenating back along the axis is the identity: the reference is each slice in order.
                int a = axis < 0 ? axis + shape.Length : axis;
                var expected = new List<double>();
                int at = 0;
                var strides = ShapeUtil.ContiguousStrides(shape);
                foreach (int size in sizes)
                {
                    var sliceShape = (int[])shape.Clone();
                    sliceShape[a] = size;
                    expected.AddRange(ElementwiseReference.StridedView(Host(x), sliceShape, strides, at * strides[a]));
                    at += size;
                }
                return new(got, expected.ToArray());
            });
    }

    private static double[] ConcatReference(List<double[]> inputs, int[][] shapes, int axis)
    {
        int outer = (int)ShapeUtil.Product(shapes[0].AsSpan(0, axis));
        int inner = (int)ShapeUtil.Product(shapes[0].AsSpan(axis + 1));
        var result = new List<double>();
        for (int p = 0; p < outer; p++)
            for (int t = 0; t < inputs.Count; t++)
            {
                int block = shapes[t][axis] * inner;
                result.AddRange(inputs[t].Skip(p * block).Take(block));
            }
        return result.ToArray();
    }
}

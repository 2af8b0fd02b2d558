using static GpuNet.Kernels.Checks.KernelCatalog;
using static GpuNet.Kernels.Checks.BenchShapes;
using GpuNet.Kernels.Reference;
using static GpuNet.Kernels.Checks.CheckRunner;

namespace GpuNet.Kernels.Checks;

/// <summary>Check cases of transpose, permute (tiled and strided paths), concat and split.</summary>
internal static class LayoutChecks
{
    /// <summary>A permutation checked against the index formula written out (out[j₀..] = x[i] with i[order[k]] = j[k], row-major
    /// offsets from the shapes), not through the tensor's view of the same strides the op copies through.</summary>
    private static CheckCase Permuted(string kernel, string name, int[] shape, Func<Tensor, Tensor> op, int[] order) =>
        new("layout", kernel, name, Shapes(shape), CheckCase.Fp32Tolerance, (d, seed) =>
        {
            using var x = Random(d, seed, 0, shape);
            using var o = op(x);
            return new(o.ToArray(), PermuteReference(Host(x), shape, order));
        });

    /// <summary>The permutation of row-major x [shape] by <paramref name="order"/>, by explicit index arithmetic.</summary>
    private static double[] PermuteReference(double[] x, int[] shape, int[] order)
    {
        int rank = shape.Length;
        var outShape = order.Select(a => shape[a]).ToArray();
        var y = new double[x.Length];
        var j = new int[rank];
        for (int flat = 0; flat < y.Length; flat++)
        {
            for (int k = rank - 1, rest = flat; k >= 0; k--)
            {
                j[k] = rest % outShape[k];
                rest /= outShape[k];
            }
            var i = new int[rank];
            for (int k = 0; k < rank; k++)
                i[order[k]] = j[k];
            int source = 0;
            for (int a = 0; a < rank; a++)
                source = source * shape[a] + i[a];
            y[flat] = x[source];
        }
        return y;
    }

    /// <summary>The order that swaps dimensions a and b.</summary>
    private static int[] Swap(int rank, int a, int b)
    {
        var order = Enumerable.Range(0, rank).ToArray();
        (order[(a + rank) % rank], order[(b + rank) % rank]) = (order[(b + rank) % rank], order[(a + rank) % rank]);
        return order;
    }

    internal static IEnumerable<CheckCase> Cases()
    {
        foreach (var (name, shape) in new[] { ("tiny", new[] { 1, 1 }), ("odd", new[] { 37, 29 }), ("tile_multiple", new[] { 64, 32 }), ("batched", new[] { 3, 33, 65 }), ("rank4", new[] { 2, 3, 17, 9 }) })
            yield return Permuted("transpose", name, shape, x => Ops.Transpose(x), Swap(shape.Length, -2, -1));
        yield return Permuted("transpose", "outer_dims", new[] { 5, 6, 7 }, x => Ops.Transpose(x, 0, 1), Swap(3, 0, 1));
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
            yield return Permuted("permute", name, shape, x => Ops.Permute(x, order), order);

        var concats = new (string Name, int[][] Shapes, int Axis)[]
        {
            ("axis0", new[] { new[] { 3, 5 }, new[] { 1, 5 }, new[] { 4, 5 } }, 0),
            ("axis1", new[] { new[] { 3, 5 }, new[] { 3, 2 } }, 1),
            ("middle_axis", new[] { new[] { 2, 3, 4 }, new[] { 2, 7, 4 }, new[] { 2, 1, 4 } }, 1),
            ("single", new[] { new[] { 6, 7 } }, -1),
            // An ONNX LSTM's two directions [seq, 1, batch, hidden] side by side, and an input empty along the axis.
            ("lstm_directions", new[] { new[] { 9, 1, 3, 12 }, new[] { 9, 1, 3, 12 } }, 1),
            ("empty_input", new[] { new[] { 3, 0, 2 }, new[] { 3, 4, 2 }, new[] { 3, 1, 2 } }, 1),
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

    /// <summary>Constant padding of the trailing dimensions of a row-major tensor, in double.</summary>
    private static double[] PadReference(double[] x, int[] shape, (int Before, int After)[] padding, double value)
    {
        int first = shape.Length - padding.Length;
        var outShape = shape.Select((d, i) => i < first ? d : d + padding[i - first].Before + padding[i - first].After).ToArray();
        var y = Enumerable.Repeat(value, (int)ShapeUtil.Product(outShape)).ToArray();
        var index = new int[shape.Length];
        for (int e = 0; e < x.Length; e++)
        {
            int rest = e, at = 0;
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                index[d] = rest % shape[d];
                rest /= shape[d];
            }
            for (int d = 0; d < shape.Length; d++)
                at = at * outShape[d] + index[d] + (d >= first ? padding[d - first].Before : 0);
            y[at] = x[e];
        }
        return y;
    }

    private static readonly (string Name, int[] Shape, (int, int)[] Padding)[] PadCases =
    {
        ("unet_skip", new[] { 2, 3, 4, 3 }, new[] { (0, 1), (1, 0) }),
        ("all_dims", new[] { 3, 5 }, new[] { (2, 1), (0, 3) }),
        ("last_only", new[] { 2, 3, 7 }, new[] { (1, 2) }),
    };

    /// <summary>Constant padding (the UNet's up path), forward.</summary>
    internal static IEnumerable<CheckCase> PadForward()
    {
        foreach (var (name, shape, padding) in PadCases)
            yield return new CheckCase("layout", "pad", name, Shapes(shape) + " pad " + string.Join(" ", padding), CheckCase.Fp32Tolerance, (d, seed) =>
            {
                using var x = Random(d, seed, 0, shape);
                using var y = Ops.Pad(x, padding, 0.5f);
                return new(y.ToArray(), PadReference(Host(x), shape, padding, 0.5));
            });
    }

    internal static IEnumerable<CheckCase> BackwardLayouts()
    {
        foreach (var (name, padShape, padding) in PadCases)
        {
            yield return GradientCheck.Case("pad_backward", name, new[] { new GradientInput(padShape) }, t => Ops.Pad(t[0], padding),
                x => PadReference(x[0], padShape, padding, 0),
                (x, g) =>
                {
                    // The gradient's interior: the entries the forward copied x into.
                    var positions = PadReference(Enumerable.Range(0, x[0].Length).Select(i => (double)i + 1).ToArray(), padShape, padding, 0);
                    var dx = new double[x[0].Length];
                    for (int i = 0; i < positions.Length; i++)
                        if (positions[i] > 0)
                            dx[(int)positions[i] - 1] = g[i];
                    return new[] { dx };
                });
        }
        var shape = new[] { 3, 4, 5 };
        yield return GradientCheck.Case("permute_backward", "rank3", new[] { new GradientInput(shape) }, t => Ops.Permute(t[0], 2, 0, 1),
            x => Permuted(x[0], shape), (x, g) => new[] { Unpermuted(g, shape) });
        yield return GradientCheck.Case("transpose_backward", "rank3", new[] { new GradientInput(shape) }, t => Ops.Transpose(t[0], 0, 2),
            x => Permuted(x[0], shape, transpose: true), (x, g) => new[] { Unpermuted(g, shape, transpose: true) });
        var a = new[] { 3, 2, 5 };
        var b = new[] { 3, 4, 5 };
        yield return GradientCheck.Case("concat_backward", "axis1", new[] { new GradientInput(a), new GradientInput(b) }, t => Ops.Concat(t, 1),
            x => Concat(x[0], x[1], 3, 2, 4, 5),
            (x, g) =>
            {
                var (ga, gb) = SplitBack(g, 3, 2, 4, 5);
                return new[] { ga, gb };
            });
        yield return GradientCheck.Case("split_backward", "axis1_sizes_2_4", new[] { new GradientInput(new[] { 3, 6, 5 }) },
            t =>
            {
                var pieces = Ops.Split(t[0], new[] { 2, 4 }, 1);
                using (pieces[0])
                using (pieces[1])
                using (var scaled = Ops.Scale(pieces[1], 3f))
                    return Ops.Concat(new[] { scaled, pieces[0] }, 1);
            },
            x =>
            {
                var (p0, p1) = SplitBack(x[0], 3, 2, 4, 5);
                return Concat(p1.Select(v => 3 * v).ToArray(), p0, 3, 4, 2, 5);
            },
            (x, g) =>
            {
                var (g1, g0) = SplitBack(g, 3, 4, 2, 5);
                return new[] { Concat(g0, g1.Select(v => 3 * v).ToArray(), 3, 2, 4, 5) };
            });
        var y = new[] { 4, 7 };
        yield return GradientCheck.Case("axpy_backward", "broadcast_x", new[] { new GradientInput(new[] { 7 }), new GradientInput(y) }, t => Ops.Axpy(-1.5f, t[0], t[1]),
            x => ElementwiseReference.Binary(x[0], new[] { 7 }, x[1], y, (p, q) => -1.5 * p + q),
            (x, g) =>
            {
                var (ga, gb) = GradientReference.Binary(x[0], new[] { 7 }, x[1], y, g, (_, _) => -1.5, (_, _) => 1);
                return new[] { ga, gb };
            });
    }

    // [A, B, C] → [C, A, B] (or [C, B, A] for the transpose of axes 0 and 2), and back.
    private static double[] Permuted(double[] x, int[] s, bool transpose = false)
    {
        var o = new double[x.Length];
        for (int i = 0; i < s[0]; i++)
            for (int j = 0; j < s[1]; j++)
                for (int k = 0; k < s[2]; k++)
                    o[transpose ? (k * s[1] + j) * s[0] + i : (k * s[0] + i) * s[1] + j] = x[(i * s[1] + j) * s[2] + k];
        return o;
    }

    private static double[] Unpermuted(double[] g, int[] s, bool transpose = false)
    {
        var dx = new double[g.Length];
        for (int i = 0; i < s[0]; i++)
            for (int j = 0; j < s[1]; j++)
                for (int k = 0; k < s[2]; k++)
                    dx[(i * s[1] + j) * s[2] + k] = g[transpose ? (k * s[1] + j) * s[0] + i : (k * s[0] + i) * s[1] + j];
        return dx;
    }

    // [n, p, c] and [n, q, c] joined along axis 1, and the inverse.
    private static double[] Concat(double[] a, double[] b, int n, int p, int q, int c)
    {
        var o = new double[n * (p + q) * c];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(a, i * p * c, o, i * (p + q) * c, p * c);
            Array.Copy(b, i * q * c, o, (i * (p + q) + p) * c, q * c);
        }
        return o;
    }

    private static (double[] A, double[] B) SplitBack(double[] o, int n, int p, int q, int c)
    {
        var a = new double[n * p * c];
        var b = new double[n * q * c];
        for (int i = 0; i < n; i++)
        {
            Array.Copy(o, i * (p + q) * c, a, i * p * c, p * c);
            Array.Copy(o, (i * (p + q) + p) * c, b, i * q * c, q * c);
        }
        return (a, b);
    }

    internal static IEnumerable<CheckCase> BackwardViews()
    {
        // permute → slice → expand → reshape of a contiguous copy: every view's backward maps the gradient home.
        var shape = new[] { 5, 6, 7 };
        yield return GradientCheck.Case("view_backward", "permute_slice_expand", new[] { new GradientInput(shape) },
            t =>
            {
                using var p = t[0].Permute(2, 0, 1);          // [7, 5, 6]
                using var s = p.Slice(0, 2, 4);               // [4, 5, 6]: x[:, :, 2:6] permuted
                using var sel = s.Select(2, 1);               // [4, 5]: x[:, 1, 2:6]ᵀ
                using var e = sel.Transpose(0, 1);            // [5, 4]
                using var c = e.Contiguous();
                using var r = c.Reshape(1, 20);
                using var x = r.Expand(3, 20);                // [3, 20]: each element used three times
                return Ops.Scale(x, 2f);
            },
            x =>
            {
                var o = new double[60];
                for (int k = 0; k < 3; k++)
                    for (int i = 0; i < 5; i++)
                        for (int j = 0; j < 4; j++)
                            o[k * 20 + i * 4 + j] = 2 * x[0][(i * 6 + 1) * 7 + 2 + j];
                return o;
            },
            (x, g) =>
            {
                var dx = new double[x[0].Length];
                for (int k = 0; k < 3; k++)
                    for (int i = 0; i < 5; i++)
                        for (int j = 0; j < 4; j++)
                            dx[(i * 6 + 1) * 7 + 2 + j] += 2 * g[k * 20 + i * 4 + j];
                return new[] { dx };
            });
    }

    /// <summary>The family's descriptor (see <see cref="KernelFamily"/>).</summary>
    internal static KernelFamily Family { get; } = new("layout", () => Cases().Concat(PadForward()).Concat(BackwardViews()).Concat(BackwardLayouts()), Variants, Bench);

    private static IEnumerable<KernelVariant> Variants()
    {
        var copy = Unary(typeof(ElementwiseOps.Identity));
        yield return Method("transpose", "tiled", typeof(LayoutKernels), nameof(LayoutKernels.Transpose));
        yield return Method("permute", "tiled", typeof(LayoutKernels), nameof(LayoutKernels.Transpose));
        yield return Strided("permute", "strided", copy);
        foreach (var v in Elementwise("concat", copy).Concat(Elementwise("split", copy)))
            yield return v;
        yield return Strided("view_backward", "copy_strided", copy);
        foreach (var kernel in new[] { "permute_backward", "transpose_backward" })
            yield return Method(kernel, "tiled", typeof(LayoutKernels), nameof(LayoutKernels.Transpose));
        foreach (var kernel in new[] { "concat_backward", "split_backward" })
            yield return Strided(kernel, "copy_strided", copy);
        yield return Flat("axpy_backward", "flat_scale", Unary(typeof(Activation.Scale)));
        foreach (var kernel in new[] { "pad", "pad_backward" })
        {
            yield return Flat(kernel, "fill", Unary(typeof(ElementwiseOps.Constant)));
            yield return Strided(kernel, "copy_strided", copy);
        }
    }

    private static IEnumerable<BenchCase> Bench()
    {
        foreach (var (presets, n, rows, cols) in Tiers)
        {
            double rc = (double)rows * cols;
            yield return C("transpose", S(rows, cols), 0, 8 * rc, presets, (d, s) => { var x = R(d, s, rows, cols); return new(() => Ops.Transpose(x).Dispose(), x); });
            yield return C("permute", S(rows / 16, 16, cols) + " (2,0,1)", 0, 8 * rc, presets, (d, s) => { var x = R(d, s, rows / 16, 16, cols); return new(() => Ops.Permute(x, 2, 0, 1).Dispose(), x); });
            yield return C("concat", S(rows, cols) + " ×2 axis1", 0, 16 * rc, presets, (d, s) =>
            { var a = R(d, s, rows, cols); var b = R(d, s + 1, rows, cols); return new(() => Ops.Concat(new[] { a, b }, 1).Dispose(), a, b); });
            yield return C("split", S(rows, cols) + " in 4 axis1", 0, 8 * rc, presets, (d, s) =>
            { var x = R(d, s, rows, cols); return new(() => { foreach (var p in Ops.Split(x, 4, 1)) p.Dispose(); }, x); });
            // A [rows/16, 16, cols] map padded by one on each side of its last two dimensions (a UNet skip's F.pad).
            double padded = (rows / 16) * 18.0 * (cols + 2);
            yield return C("pad", S(rows / 16, 16, cols) + " +1 each side", 0, 4 * rc + 8 * padded, presets, (d, s) =>
            { var x = R(d, s, rows / 16, 16, cols); return new(() => Ops.Pad(x, new[] { (1, 1), (1, 1) }).Dispose(), x); });
            yield return Step("pad_backward", S(rows / 16, 16, cols) + " +1 each side", 0, 8 * rc + 12 * padded, presets, (d, s) =>
                (new[] { R(d, s, rows / 16, 16, cols) }, Trained(1), t => Ops.Pad(t[0], new[] { (1, 1), (1, 1) })));
            yield return Step("axpy_backward", S(n), 3.0 * n, 28.0 * n, presets, (d, s) => (new[] { R(d, s, n), R(d, s + 1, n) }, Trained(2), t => Ops.Axpy(0.5f, t[0], t[1])));
            yield return Step("transpose_backward", S(rows, cols), 0, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, Trained(1), t => Ops.Transpose(t[0])));
            yield return Step("permute_backward", S(rows / 16, 16, cols) + " (2,0,1)", 0, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows / 16, 16, cols) }, Trained(1), t => Ops.Permute(t[0], 2, 0, 1)));
            yield return Step("concat_backward", S(rows, cols) + " ×2 axis1", 0, 32 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols), R(d, s + 1, rows, cols) }, Trained(2), t => Ops.Concat(t, 1)));
            yield return Step("split_backward", S(rows, cols) + " in 2 axis1", 0, 24 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, Trained(1), t =>
            {
                var p = Ops.Split(t[0], 2, 1);
                using (p[0])
                using (p[1])
                    return Ops.Add(p[0], p[1]);
            }));
            yield return Step("view_backward", S(rows, cols) + " slice+expand", 0, 16 * rc, presets, (d, s) => (new[] { R(d, s, rows, cols) }, Trained(1), t =>
            {
                using var half = t[0].Slice(1, 0, cols / 2);
                using var c = half.Contiguous();
                return Ops.Scale(c, 2f);
            }));
        }
    }
}

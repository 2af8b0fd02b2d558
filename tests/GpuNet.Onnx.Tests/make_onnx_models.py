#!/usr/bin/python3
"""Exports small PyTorch models of GpuNet's seed families to ONNX in the backend-test layout (model.onnx +
test_data_set_0/input_K.pb, output_K.pb), so the ONNX import is checked on what torch.onnx.export really produces.
Run with Debian's python3-torch (1.13) and python3-onnx (1.12):  /usr/bin/python3 make_onnx_models.py
CI does not need PyTorch: the files are committed."""
import math, os
import torch
import torch.nn as nn
import torch.nn.functional as F
import onnx
from onnx import numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Models")


def export(name, model, inputs, opset=17, input_names=None, dynamic_axes=None):
    model.eval()
    case = os.path.join(HERE, name)
    data = os.path.join(case, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    input_names = input_names or [f"input_{k}" for k in range(len(inputs))]
    with torch.no_grad():
        outputs = model(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    output_names = [f"output_{k}" for k in range(len(outputs))]
    torch.onnx.export(model, tuple(inputs), os.path.join(case, "model.onnx"), opset_version=opset, input_names=input_names,
                      output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=False)
    for k, (n, t) in enumerate(zip(input_names, inputs)):
        with open(os.path.join(data, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), n).SerializeToString())
    for k, (n, t) in enumerate(zip(output_names, outputs)):
        with open(os.path.join(data, f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.detach().numpy(), n).SerializeToString())
    ops = sorted({n.op_type for n in onnx.load(os.path.join(case, "model.onnx")).graph.node})
    print(f"{name}: opset {opset}, ops {', '.join(ops)}")


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 5))

    def forward(self, x):
        return self.net(x)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        # Each BatchNorm follows a ReLU, so the exporter cannot fold it into the convolution: the file keeps BatchNormalization.
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.BatchNorm2d(16), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class GptBlock(nn.Module):
    """Token and position embeddings, one pre-norm block (causal self-attention by a tril mask, erf-GELU MLP), logits."""
    def __init__(self, vocab=50, context=16, d=32, heads=4):
        super().__init__()
        self.heads = heads
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)
        self.lnf = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(context, context)).view(1, 1, context, context))

    def forward(self, ids):
        b, t = ids.shape
        x = self.tok(ids) + self.pos(torch.arange(t).unsqueeze(0))
        h = self.ln1(x)
        q, k, v = self.qkv(h).split(x.shape[-1], dim=2)
        dh = x.shape[-1] // self.heads
        q, k, v = (z.view(b, t, self.heads, dh).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(dh)
        att = att.masked_fill(self.mask[:, :, :t, :t] == 0, float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).contiguous().view(b, t, -1)
        x = x + self.proj(y)
        x = x + self.out(F.gelu(self.fc(self.ln2(x))))
        return self.head(self.lnf(x))


class Lstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 12, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(24, 3)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y)


class UNet(nn.Module):
    """Two levels: conv blocks with GroupNorm and SiLU, max-pool down, nearest upsample, skip concatenation."""
    def __init__(self):
        super().__init__()
        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(4, o), nn.SiLU(), nn.Conv2d(o, o, 3, padding=1), nn.GroupNorm(4, o), nn.SiLU())
        self.down = block(3, 8)
        self.mid = block(8, 16)
        self.up = block(24, 8)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        a = self.down(x)
        m = self.mid(F.max_pool2d(a, 2))
        u = F.interpolate(m, scale_factor=2, mode="nearest")
        return self.out(self.up(torch.cat([u, a], 1)))


class Moe(nn.Module):
    """Top-2 of 4 experts: softmax over the kept gate logits, experts evaluated densely and combined by a one-hot mask."""
    def __init__(self, d=16, hidden=24, experts=4, k=2):
        super().__init__()
        self.k, self.experts = k, experts
        self.gate = nn.Linear(d, experts)
        self.w1 = nn.ModuleList(nn.Linear(d, hidden) for _ in range(experts))
        self.w2 = nn.ModuleList(nn.Linear(hidden, d) for _ in range(experts))

    def forward(self, x):
        values, indices = torch.topk(self.gate(x), self.k, dim=-1)
        weights = F.softmax(values, dim=-1)
        onehot = (indices.unsqueeze(-1) == torch.arange(self.experts)).to(x.dtype)
        combine = (weights.unsqueeze(-1) * onehot).sum(-2)
        outs = torch.stack([w2(F.relu(w1(x))) for w1, w2 in zip(self.w1, self.w2)], -1)
        return (outs * combine.unsqueeze(-2)).sum(-1)


class AvgPoolStem(nn.Module):
    """F.avg_pool2d(x, 2): exported as an all-zero Pad then AveragePool."""
    def forward(self, x):
        return F.avg_pool2d(x, 2) * 2


class PadThenSlice(nn.Module):
    def forward(self, x):
        return F.pad(x, (0, 0, 0, 1))[:, 1:]


class SelectThenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(x[:, 0])


class GatherExpandMul(nn.Module):
    """MoE-style combine: rows picked by torch.gather with expanded indices, weighted by a broadcast Mul."""
    def __init__(self):
        super().__init__()
        self.register_buffer("idx", torch.tensor([[0, 3], [5, 1], [2, 2], [4, 0], [1, 5]]))

    def forward(self, y, w):
        return torch.gather(y, 1, self.idx.unsqueeze(-1).expand(-1, -1, y.shape[-1])) * w.unsqueeze(-1)


class ReflectPadConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(F.pad(x, (1, 2, 2, 1), mode="reflect"))


class SlicedHeadsAttention(nn.Module):
    """Attention as hand-written blocks export it, rank 4: Q, K, V sliced out of one projection [B, N, 3E], each split into
    heads [B, N, H, d] and moved to [B, H, N, d] (K straight to [B, H, d, N]), the output moved back and merged."""
    def __init__(self, e=24, heads=3):
        super().__init__()
        self.e, self.h = e, heads
        self.qkv = nn.Linear(e, 3 * e)
        self.out = nn.Linear(e, e)

    def forward(self, x):
        b, n, e = x.shape
        y = self.qkv(x)
        d = e // self.h
        q = y[:, :, :e].reshape(b, n, self.h, d).permute(0, 2, 1, 3)
        k = y[:, :, e:2 * e].reshape(b, n, self.h, d).permute(0, 2, 3, 1)
        v = y[:, :, 2 * e:].reshape(b, n, self.h, d).permute(0, 2, 1, 3)
        a = torch.softmax(q @ k / math.sqrt(d), dim=-1) @ v
        return self.out(a.permute(0, 2, 1, 3).reshape(b, n, e))


def attention_pattern_cases():
    torch.manual_seed(40)
    export("pattern_sliced_heads_attention", SlicedHeadsAttention(), [torch.randn(2, 7, 24)])


PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85


def philox_uniform(seed, count, low, high):
    """GpuNet's Philox.FillUniform, bit for bit: word i is lane i mod 4 of the 10-round Philox 4x32 block at counter
    (i / 4, 0, 0, 0) with key (seed), its top 24 bits scaled to [0, 1), then low + (high - low) * u in float32."""
    import numpy as np
    mask = np.uint64(0xFFFFFFFF)
    blocks = np.arange((count + 3) // 4, dtype=np.uint64)
    c0, c1 = blocks & mask, blocks >> np.uint64(32)
    c2, c3 = np.zeros_like(blocks), np.zeros_like(blocks)
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    for _ in range(10):
        p0, p1 = np.uint64(PHILOX_M0) * c0, np.uint64(PHILOX_M1) * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & mask, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & mask
        k0, k1 = (k0 + np.uint64(PHILOX_W0)) & mask, (k1 + np.uint64(PHILOX_W1)) & mask
    words = np.stack([c0, c1, c2, c3], axis=1).reshape(-1)[:count]
    u = (words >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    return np.float32(low) + (np.float32(high) - np.float32(low)) * u


def export_seeded(name, model, inputs, seed, opset=17):
    """A model too large to commit (torchvision's): every float parameter and buffer is drawn from GpuNet's Philox stream
    (weights and biases ±1/sqrt(fan_in) as PyTorch's default init, batch norm's scale and variance in [0.5, 1.5], its
    shift and mean in ±0.1), exported with batch norm kept as a node (TrainingMode.PRESERVE in eval: no export-time
    folding), and the parameters written as external data in weights.bin, which is not committed: weights.tsv holds each
    one's offset, count, seed and bounds, and the SHA-256 of the file, and the tests regenerate it with Philox.FillUniform."""
    import hashlib
    import numpy as np
    from onnx import TensorProto
    model.eval()
    rows, blobs, offset = [], [], 0
    with torch.no_grad():
        for k, (n, t) in enumerate(model.state_dict().items()):
            if not t.is_floating_point():
                continue
            leaf = n.rsplit(".", 1)[-1]
            if leaf in ("running_var",) or (leaf == "weight" and t.dim() == 1):
                low, high = 0.5, 1.5
            elif leaf == "running_mean" or (leaf == "bias" and n.replace("bias", "weight") in model.state_dict() and model.state_dict()[n.replace("bias", "weight")].dim() == 1):
                low, high = -0.1, 0.1
            else:
                owner = model.state_dict().get(n.rsplit(".", 1)[0] + ".weight", t)
                fan_in = owner[0].numel() if owner.dim() > 1 else owner.numel()
                low, high = -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in)
            values = philox_uniform(seed + k, t.numel(), low, high)
            t.copy_(torch.from_numpy(values.reshape(t.shape)))
            rows.append((n, offset, t.numel(), seed + k, float(np.float32(low)), float(np.float32(high))))
            blobs.append(values.tobytes())
            offset += 4 * t.numel()
    case = os.path.join(HERE, name)
    data = os.path.join(case, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    with torch.no_grad():
        outputs = model(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    path = os.path.join(case, "model.onnx")
    torch.onnx.export(model, tuple(inputs), path, opset_version=opset, input_names=[f"input_{k}" for k in range(len(inputs))],
                      output_names=[f"output_{k}" for k in range(len(outputs))], do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE)
    proto = onnx.load(path)
    placed = {n: (o, c) for n, o, c, *_ in rows}
    for init in proto.graph.initializer:
        if init.name in placed and init.data_type == TensorProto.FLOAT:
            o, c = placed.pop(init.name)
            init.ClearField("raw_data")
            init.ClearField("float_data")
            init.data_location = TensorProto.EXTERNAL
            for key, value in (("location", "weights.bin"), ("offset", str(o)), ("length", str(4 * c))):
                entry = init.external_data.add()
                entry.key, entry.value = key, value
    onnx.save(proto, path)
    blob = b"".join(blobs)
    with open(os.path.join(case, "weights.tsv"), "w") as f:
        f.write(f"# sha256\t{hashlib.sha256(blob).hexdigest()}\t{len(blob)}\n")
        for n, o, c, sd, low, high in rows:
            f.write(f"{n}\t{o}\t{c}\t{sd}\t{low!r}\t{high!r}\n")
    for k, t in enumerate(inputs):
        with open(os.path.join(data, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.numpy(), f"input_{k}").SerializeToString())
    for k, t in enumerate(outputs):
        with open(os.path.join(data, f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(t.detach().numpy(), f"output_{k}").SerializeToString())
    unused = [n for n in placed]
    ops = sorted({n.op_type for n in proto.graph.node})
    print(f"{name}: {len(rows)} seeded tensors ({offset / 1e6:.1f} MB, {len(unused)} not in the graph), ops {', '.join(ops)}")


def real_models():
    """torchvision's classifiers and an nn.TransformerEncoder at small inputs, seeded weights (issue #26)."""
    import torchvision.models as tv
    export_seeded("real_resnet18", tv.resnet18(), [torch.randn(1, 3, 64, 64)], 1000)
    export_seeded("real_mobilenet_v2", tv.mobilenet_v2(), [torch.randn(1, 3, 64, 64)], 2000)
    export_seeded("real_efficientnet_b0", tv.efficientnet_b0(), [torch.randn(1, 3, 64, 64)], 3000)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False)
    export_seeded("real_transformer_encoder", encoder, [torch.randn(1, 16, 64)], 4000)
    export_seeded("real_gru", nn.GRU(32, 64, num_layers=2, batch_first=True), [torch.randn(1, 20, 32)], 5000)


def save_graph(name, nodes, inputs, initializers, outputs):
    """A hand-built graph: inputs and outputs as {name: float32/int64 array}, initializers as constant arrays."""
    from onnx import helper, mapping
    kind = lambda a: mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype]
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, kind(x), x.shape) for n, x in inputs.items()],
                              [helper.make_tensor_value_info(n, kind(y), y.shape) for n, y in outputs.items()],
                              [numpy_helper.from_array(v, n) for n, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="make_onnx_models.py")
    onnx.checker.check_model(model)
    case = os.path.join(HERE, name)
    data = os.path.join(case, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    onnx.save(model, os.path.join(case, "model.onnx"))
    for k, (n, x) in enumerate(inputs.items()):
        with open(os.path.join(data, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, n).SerializeToString())
    for k, (n, y) in enumerate(outputs.items()):
        with open(os.path.join(data, f"output_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(y, n).SerializeToString())


def index_map_cases():
    """Every index-map op (its result is built by an index map on the device) feeding the consumers that read their input's
    own rank: max and average pooling, Conv, a Slice, a broadcasting Mul on rank-4 results; Gemm, Slice and Mul on rank-2
    ones. Expectations from NumPy and PyTorch in float64 (issue #26: a flat device buffer under an N-D ONNX shape)."""
    import numpy as np
    from onnx import helper
    rng = np.random.default_rng(70)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    i64 = lambda v: np.array(v, dtype=np.int64)

    def d2s(x, b):  # ONNX DepthToSpace, DCR mode
        n, c, h, w = x.shape
        return x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // (b * b), h * b, w * b)

    def s2d(x, b):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, h // b, w // b)

    def reverse_sequence(x, lens):  # time axis 0, batch axis 1
        y = x.copy()
        for b, n in enumerate(lens):
            y[:n, b] = x[:n, b][::-1]
        return y

    def cases(rank):
        """(op name, input shape, node builder(x, y) -> (nodes, initializers), numpy reference)."""
        big = np.iinfo(np.int64).max
        four = rank == 4
        shape = (2, 3, 5, 6) if four else (5, 6)
        gather_idx = i64([2, 0, 1, 2] if four else [4, 0, 1])
        elements_idx = rng.integers(0, shape[1], size=shape).astype(np.int64)
        nd_idx = i64([[1], [0], [1]] if four else [[4], [0], [2], [2]])
        small = (1, 3, 1, 6) if four else (1, 6)
        target = (2, 3, 5, 6) if four else (5, 6)
        tile_src = (1, 3, 3, 2) if four else (2, 3)
        reps = i64([2, 1, 2, 3] if four else [3, 2])
        keep = np.array([True, False, True] if four else [False, True, True, True, False, True])
        lens = i64([3, 1, 2] if four else [5, 2, 1, 4, 3, 6])
        out = [
            ("pad", shape, lambda x, y: ([helper.make_node("Pad", [x, "pads"], [y], mode="constant")],
                                         {"pads": i64([0] * (rank - 2) + [1, 2] + [0] * (rank - 2) + [2, 1])}),
             lambda x: np.pad(x, [(0, 0)] * (rank - 2) + [(1, 2), (2, 1)])),
            ("gather", shape, lambda x, y: ([helper.make_node("Gather", [x, "idx"], [y], axis=1 if four else 0)], {"idx": gather_idx}),
             lambda x: np.take(x, gather_idx, axis=1 if four else 0)),
            ("gather_elements", shape, lambda x, y: ([helper.make_node("GatherElements", [x, "idx"], [y], axis=1)], {"idx": elements_idx}),
             lambda x: np.take_along_axis(x, elements_idx, axis=1)),
            ("gather_nd", shape, lambda x, y: ([helper.make_node("GatherND", [x, "idx"], [y])], {"idx": nd_idx}), lambda x: x[nd_idx[:, 0]]),
            ("expand", small, lambda x, y: ([helper.make_node("Expand", [x, "shape"], [y])], {"shape": i64(target)}),
             lambda x: np.broadcast_to(x, target).copy()),
            ("tile", tile_src, lambda x, y: ([helper.make_node("Tile", [x, "reps"], [y])], {"reps": reps}), lambda x: np.tile(x, reps)),
            ("trilu", shape, lambda x, y: ([helper.make_node("Trilu", [x, "k"], [y], upper=0)], {"k": i64(1)}), lambda x: np.tril(x, 1)),
            ("stepped_slice", shape, lambda x, y: ([helper.make_node("Slice", [x, "starts", "ends", "axes", "steps"], [y])],
                                                    {"starts": i64([-1, 0]), "ends": i64([-big, big]), "axes": i64([rank - 2, rank - 1]), "steps": i64([-2, 2])}),
             lambda x: x[..., ::-2, ::2].copy()),
            ("compress", shape, lambda x, y: ([helper.make_node("Compress", [x, "keep"], [y], axis=1)], {"keep": keep}),
             lambda x: np.compress(keep, x, axis=1)),
            ("reverse_sequence", (4, 3, 5, 6) if four else (7, 6),
             lambda x, y: ([helper.make_node("ReverseSequence", [x, "lens"], [y], time_axis=0, batch_axis=1)], {"lens": lens}),
             lambda x: reverse_sequence(x, lens)),
        ]
        if four:
            out += [
                ("depth_to_space", (1, 8, 3, 4), lambda x, y: ([helper.make_node("DepthToSpace", [x], [y], blocksize=2, mode="DCR")], {}),
                 lambda x: d2s(x, 2)),
                ("space_to_depth", (1, 2, 6, 8), lambda x, y: ([helper.make_node("SpaceToDepth", [x], [y], blocksize=2)], {}),
                 lambda x: s2d(x, 2)),
            ]
        return out

    for rank in (4, 2):
        for op, shape, build, reference in cases(rank):
            x = f32(*shape)
            y = reference(x.astype(np.float64))
            nodes, inits = build("x", "y")
            outputs = {}
            scale = f32(y.shape[-1])
            inits = dict(inits, scale=scale, starts1=i64([1]), ends1=i64([np.iinfo(np.int64).max]), axes1=i64([1]))
            nodes += [helper.make_node("Slice", ["y", "starts1", "ends1", "axes1"], ["sliced"]), helper.make_node("Mul", ["y", "scale"], ["scaled"])]
            outputs["sliced"] = y[:, 1:]
            outputs["scaled"] = y * scale.astype(np.float64)
            if rank == 4:
                weight = f32(2, y.shape[1], 3, 3)
                inits["weight"] = weight
                nodes += [helper.make_node("MaxPool", ["y"], ["max_pooled"], kernel_shape=[2, 2], strides=[2, 2]),
                          helper.make_node("AveragePool", ["y"], ["avg_pooled"], kernel_shape=[2, 2], strides=[2, 2]),
                          helper.make_node("Conv", ["y", "weight"], ["convolved"], pads=[1, 1, 1, 1])]
                t = torch.from_numpy(y)
                outputs["max_pooled"] = F.max_pool2d(t, 2).numpy()
                outputs["avg_pooled"] = F.avg_pool2d(t, 2).numpy()
                outputs["convolved"] = F.conv2d(t, torch.from_numpy(weight.astype(np.float64)), padding=1).numpy()
            else:
                b = f32(y.shape[1], 3)
                inits["b"] = b
                nodes.append(helper.make_node("Gemm", ["y", "b"], ["gemm"]))
                outputs["gemm"] = y @ b.astype(np.float64)
            save_graph(f"index_map_{op}_rank{rank}", nodes, {"x": x}, inits, {k: v.astype(np.float32) for k, v in outputs.items()})
            print(f"index_map_{op}_rank{rank}: {list(shape)} -> {list(y.shape)}, consumers {', '.join(outputs)}")


def expand_depthwise_cases():
    """A 1×1 Conv read only by a depthwise Conv (fused into one node), beside two look-alikes that must not fuse: a 1×1 Conv at
    stride 2 before a depthwise one, and a 1×1 Conv whose output a depthwise Conv and a Relu both read. Expectations from
    PyTorch in float64."""
    import numpy as np
    from onnx import helper
    g = torch.Generator().manual_seed(77)
    r = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1
    x = r(1, 8, 6, 6)
    w = {name: r(*shape) for name, shape in [("w1", (24, 8, 1, 1)), ("b1", (24,)), ("w2", (24, 1, 3, 3)), ("b2", (24,)),
                                              ("w3", (24, 8, 1, 1)), ("w4", (24, 1, 3, 3)), ("w5", (24, 8, 1, 1)), ("w6", (24, 1, 3, 3))]}
    clip6 = lambda t: t.clamp(0, 6)
    y1 = clip6(F.conv2d(clip6(F.conv2d(x, w["w1"], w["b1"])), w["w2"], w["b2"], padding=1, groups=24))
    y2 = F.conv2d(F.conv2d(x, w["w3"], stride=2), w["w4"], padding=1, groups=24)
    z = F.conv2d(x, w["w5"])
    y3 = F.conv2d(z, w["w6"], padding=1, groups=24)
    y4 = z.relu()
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["e1"], kernel_shape=[1, 1]),
        helper.make_node("Clip", ["e1", "lo", "hi"], ["a1"]),
        helper.make_node("Conv", ["a1", "w2", "b2"], ["d1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=24),
        helper.make_node("Clip", ["d1", "lo", "hi"], ["y1"]),
        helper.make_node("Conv", ["x", "w3"], ["e2"], kernel_shape=[1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["e2", "w4"], ["y2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=24),
        helper.make_node("Conv", ["x", "w5"], ["z"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["z", "w6"], ["y3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=24),
        helper.make_node("Relu", ["z"], ["y4"]),
    ]
    f32 = lambda t: t.float().numpy()
    initializers = {k: f32(v) for k, v in w.items()}
    initializers["lo"], initializers["hi"] = np.array(0, "float32"), np.array(6, "float32")
    save_graph("pattern_expand_depthwise", nodes, {"x": f32(x)}, initializers,
               {"y1": f32(y1), "y2": f32(y2), "y3": f32(y3), "y4": f32(y4)})


def inverted_residual_cases():
    """Inverted residual blocks (1×1 expansion, depthwise, 1×1 projection) fused into one node: with the block's input added
    (5×5, ReLU6 after the expansion and the depthwise layer); with ReLU after all three and a strided 5×5 depthwise layer;
    with a constant [1, C, 1, 1] added (a residual the fused stores do not take) and ReLU after; over 10×10 pixels. Beside
    them two look-alikes whose projection must stay apart: the depthwise output read by the projection and as a graph output,
    and a projection at stride 2. Expectations from PyTorch in float64."""
    import numpy as np
    from onnx import helper
    g = torch.Generator().manual_seed(78)
    r = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1
    x = r(1, 16, 5, 5)
    x2 = r(1, 8, 10, 10)
    shapes = {"we": (72, 16, 1, 1), "be": (72,), "wd": (72, 1, 3, 3), "bd": (72,), "wp": (16, 72, 1, 1), "bp": (16,),
              "we5": (40, 16, 1, 1), "wd5": (40, 1, 5, 5), "wp5": (24, 40, 1, 1), "bp5": (24,), "shift": (1, 16, 1, 1),
              "we2": (24, 8, 1, 1), "wd2": (24, 1, 3, 3), "wp2": (8, 24, 1, 1)}
    w = {name: r(*shape) for name, shape in shapes.items()}
    clip6 = lambda t: t.clamp(0, 6)
    hidden = clip6(F.conv2d(clip6(F.conv2d(x, w["we"], w["be"])), w["wd"], w["bd"], padding=1, groups=72))
    y1 = F.conv2d(hidden, w["wp"], w["bp"]) + x
    y2 = F.conv2d(F.conv2d(F.conv2d(x, w["we5"]).relu(), w["wd5"], stride=2, padding=2, groups=40).relu(), w["wp5"], w["bp5"]).relu()
    y3 = (F.conv2d(hidden, w["wp"]) + w["shift"]).relu()
    y4 = F.conv2d(F.conv2d(F.conv2d(x2, w["we2"]), w["wd2"], padding=1, groups=24), w["wp2"]) + x2
    y5 = F.conv2d(hidden, w["wp"], stride=2)
    def block(tag, expand_input, projection_inputs, output, **projection):
        return [helper.make_node("Conv", [expand_input, "we", "be"], [f"e{tag}"], kernel_shape=[1, 1]),
                helper.make_node("Clip", [f"e{tag}", "lo", "hi"], [f"a{tag}"]),
                helper.make_node("Conv", [f"a{tag}", "wd", "bd"], [f"d{tag}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=72),
                helper.make_node("Clip", [f"d{tag}", "lo", "hi"], [f"h{tag}"]),
                helper.make_node("Conv", [f"h{tag}"] + projection_inputs, [output], kernel_shape=[1, 1], **projection)]
    nodes = block("1", "x", ["wp", "bp"], "p1") + [helper.make_node("Add", ["p1", "x"], ["y1"])]
    nodes += [helper.make_node("Conv", ["x", "we5"], ["e2"], kernel_shape=[1, 1]),
              helper.make_node("Relu", ["e2"], ["a2"]),
              helper.make_node("Conv", ["a2", "wd5"], ["d2"], kernel_shape=[5, 5], strides=[2, 2], pads=[2, 2, 2, 2], group=40),
              helper.make_node("Relu", ["d2"], ["h2"]),
              helper.make_node("Conv", ["h2", "wp5", "bp5"], ["p2"], kernel_shape=[1, 1]),
              helper.make_node("Relu", ["p2"], ["y2"])]
    nodes += block("3", "x", ["wp"], "p3") + [helper.make_node("Add", ["shift", "p3"], ["s3"]), helper.make_node("Relu", ["s3"], ["y3"])]
    nodes += [helper.make_node("Conv", ["x2", "we2"], ["e4"], kernel_shape=[1, 1]),
              helper.make_node("Conv", ["e4", "wd2"], ["d4"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=24),
              helper.make_node("Conv", ["d4", "wp2"], ["p4"], kernel_shape=[1, 1]),
              helper.make_node("Add", ["x2", "p4"], ["y4"])]
    # The look-alikes: the first's depthwise output is also a graph output; the second projects at stride 2.
    nodes += block("5", "x", ["wp"], "y5", strides=[2, 2])
    nodes += block("6", "x", ["wp", "bp"], "y6")
    f32 = lambda t: t.float().numpy()
    initializers = {k: f32(v) for k, v in w.items()}
    initializers["lo"], initializers["hi"] = np.array(0, "float32"), np.array(6, "float32")
    save_graph("pattern_inverted_residual", nodes, {"x": f32(x), "x2": f32(x2)}, initializers,
               {"y1": f32(y1), "y2": f32(y2), "y3": f32(y3), "y4": f32(y4), "y5": f32(y5), "y6": f32(F.conv2d(hidden, w["wp"], w["bp"])), "h6": f32(hidden)})


def squeeze_excite_cases():
    """Squeeze-and-excitation (GlobalAveragePool, 1×1 Conv, activation, 1×1 Conv, Sigmoid, Mul with the pooled input) fused
    into one node: with ReLU and biases at 5×3; with x·Sigmoid(x) (SiLU) after the first convolution and no biases, the
    Mul's operands swapped; over a 1-D input [N, C, L] with 1-D convolutions. Beside them two look-alikes that must not
    fuse: the gate multiplies another tensor than the one pooled, and the gate is also a graph output. Expectations from
    PyTorch in float64."""
    import numpy as np
    from onnx import helper
    g = torch.Generator().manual_seed(79)
    r = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1
    x, x2, x1d = r(2, 40, 5, 3), r(2, 40, 5, 3), r(1, 24, 7)
    shapes = {"w1": (10, 40, 1, 1), "b1": (10,), "w2": (40, 10, 1, 1), "b2": (40,), "v1": (6, 40, 1, 1), "v2": (40, 6, 1, 1),
              "u1": (5, 24, 1), "u2": (24, 5, 1)}
    w = {name: r(*shape) for name, shape in shapes.items()}
    mean = lambda t: t.mean(dim=tuple(range(2, t.dim())), keepdim=True)
    gate1 = torch.sigmoid(F.conv2d(F.conv2d(mean(x), w["w1"], w["b1"]).relu(), w["w2"], w["b2"]))
    h2 = F.conv2d(mean(x), w["v1"])
    gate2 = torch.sigmoid(F.conv2d(h2 * torch.sigmoid(h2), w["v2"]))
    gate3 = torch.sigmoid(F.conv1d(F.conv1d(mean(x1d), w["u1"]).relu(), w["u2"]))
    gate4 = torch.sigmoid(F.conv2d(F.conv2d(mean(x), w["w1"], w["b1"]).relu(), w["w2"], w["b2"]))
    def se(tag, source, w1, w2, bias=True, activation="Relu", kernel=(1, 1)):
        nodes = [helper.make_node("GlobalAveragePool", [source], [f"m{tag}"]),
                 helper.make_node("Conv", [f"m{tag}", w1] + (["b1"] if bias else []), [f"z{tag}"], kernel_shape=list(kernel))]
        if activation == "Relu":
            nodes.append(helper.make_node("Relu", [f"z{tag}"], [f"h{tag}"]))
        else:
            nodes += [helper.make_node("Sigmoid", [f"z{tag}"], [f"s{tag}"]), helper.make_node("Mul", [f"z{tag}", f"s{tag}"], [f"h{tag}"])]
        nodes += [helper.make_node("Conv", [f"h{tag}", w2] + (["b2"] if bias else []), [f"e{tag}"], kernel_shape=list(kernel)),
                  helper.make_node("Sigmoid", [f"e{tag}"], [f"gate{tag}"])]
        return nodes
    nodes = se("1", "x", "w1", "w2") + [helper.make_node("Mul", ["x", "gate1"], ["y1"])]
    nodes += se("2", "x", "v1", "v2", bias=False, activation="Silu") + [helper.make_node("Mul", ["gate2", "x"], ["y2"])]
    nodes += se("3", "x1d", "u1", "u2", bias=False, kernel=(1,)) + [helper.make_node("Mul", ["x1d", "gate3"], ["y3"])]
    # The look-alikes: the gate of x scales x2; the gate of another copy of the first block is also a graph output.
    nodes += se("4", "x", "w1", "w2") + [helper.make_node("Mul", ["x2", "gate4"], ["y4"])]
    nodes += se("5", "x", "w1", "w2") + [helper.make_node("Mul", ["x", "gate5"], ["y5"])]
    f32 = lambda t: t.float().numpy()
    save_graph("pattern_squeeze_excite", nodes, {"x": f32(x), "x2": f32(x2), "x1d": f32(x1d)}, {k: f32(v) for k, v in w.items()},
               {"y1": f32(x * gate1), "y2": f32(gate2 * x), "y3": f32(x1d * gate3), "y4": f32(x2 * gate4), "y5": f32(x * gate1), "gate5": f32(gate1)})


def node_case(name, op_type, xs, y, opset=12, **attributes):
    """One node over float32 (and int64) inputs with a numpy-computed expected output: for ops whose backend-suite cases
    are all float64 (Einsum, CumSum)."""
    from onnx import helper, TensorProto, mapping
    names = [f"x{k}" for k in range(len(xs))]
    node = helper.make_node(op_type, names, ["y"], **attributes)
    kind = lambda a: mapping.NP_TYPE_TO_TENSOR_TYPE[a.dtype]
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info(n, kind(x), x.shape) for n, x in zip(names, xs)],
                              [helper.make_tensor_value_info("y", kind(y), y.shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_onnx_models.py")
    case = os.path.join(HERE, name)
    data = os.path.join(case, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    onnx.save(model, os.path.join(case, "model.onnx"))
    for k, (n, x) in enumerate(zip(names, xs)):
        with open(os.path.join(data, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, n).SerializeToString())
    with open(os.path.join(data, "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(y, "y").SerializeToString())
    print(f"{name}: {op_type} {attributes} -> {list(y.shape)}")


def einsum_case(name, equation, shapes, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(sh).astype(np.float32) for sh in shapes]
    node_case(name, "Einsum", xs, np.einsum(equation, *xs).astype(np.float32), equation=equation)


def cumsum_cases():
    import numpy as np
    rng = np.random.default_rng(60)
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    for axis in (0, 1, -1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                v = np.flip(x, axis) if reverse else x
                y = np.cumsum(v, axis=axis, dtype=np.float64)
                if exclusive:
                    y = y - v
                y = np.flip(y, axis) if reverse else y
                node_case(f"cumsum_axis{axis}_ex{exclusive}_rev{reverse}".replace("-", "m"), "CumSum", [x, np.array(axis, dtype=np.int64)],
                          y.astype(np.float32), opset=14, exclusive=exclusive, reverse=reverse)


def einsum_cases():
    for k, (eq, shapes) in enumerate([("ij,jk->ik", [(3, 5), (5, 4)]), ("bij,bjk->bik", [(2, 3, 5), (2, 5, 4)]), ("i,i", [(7,), (7,)]),
                                      ("ij->i", [(3, 6)]), ("ij->ji", [(3, 6)]), ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
                                      ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]), ("ij,ij->ij", [(3, 4), (3, 4)]), ("abc,cd", [(2, 3, 4), (4, 5)]),
                                      ("ijk,k->ij", [(2, 3, 4), (4,)])]):
        einsum_case(f"einsum_{k}", eq, shapes, 40 + k)


if __name__ == "__main__":
    torch.manual_seed(31)
    export("torch_mlp", Mlp(), [torch.randn(7, 13)])
    torch.manual_seed(32)
    cnn = Cnn()
    for m in cnn.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    export("torch_cnn_batchnorm", cnn, [torch.randn(2, 3, 16, 16)])
    torch.manual_seed(33)
    export("torch_gpt_block", GptBlock(), [torch.randint(0, 50, (2, 11))], input_names=["ids"])
    torch.manual_seed(34)
    export("torch_gpt_block_opset14", GptBlock(), [torch.randint(0, 50, (2, 11))], opset=14, input_names=["ids"])
    torch.manual_seed(35)
    export("torch_lstm", Lstm(), [torch.randn(3, 9, 6)])
    torch.manual_seed(36)
    export("torch_unet", UNet(), [torch.randn(1, 3, 16, 16)])
    torch.manual_seed(37)
    export("torch_moe_topk", Moe(), [torch.randn(5, 16)])
    einsum_cases()
    cumsum_cases()
    # The shapes users' exports hand between nodes (issue #26): each failed before device results kept their ONNX shape.
    torch.manual_seed(38)
    export("pattern_avg_pool", AvgPoolStem(), [torch.randn(1, 3, 9, 8)])
    export("pattern_pad_slice", PadThenSlice(), [torch.randn(2, 3, 4, 5)])
    export("pattern_select_linear", SelectThenLinear(), [torch.randn(2, 4, 8)])
    export("pattern_gather_expand_mul", GatherExpandMul(), [torch.randn(5, 6, 7), torch.randn(5, 2)])
    export("pattern_reflect_pad_conv", ReflectPadConv(), [torch.randn(1, 3, 7, 6)])
    expand_depthwise_cases()
    inverted_residual_cases()
    squeeze_excite_cases()
    attention_pattern_cases()
    index_map_cases()
    torch.manual_seed(39)
    real_models()
    # The LSTM after ONNX's own shape inference: value_info now declares every intermediate's static shape, so Shape
    # nodes (and the shape arithmetic after them) fold at load.
    import shutil
    shutil.copytree(os.path.join(HERE, "torch_lstm"), os.path.join(HERE, "torch_lstm_shape_inferred"), dirs_exist_ok=True)
    inferred = onnx.shape_inference.infer_shapes(onnx.load(os.path.join(HERE, "torch_lstm", "model.onnx")))
    onnx.save(inferred, os.path.join(HERE, "torch_lstm_shape_inferred", "model.onnx"))
    print(f"torch_lstm_shape_inferred: {len(inferred.graph.value_info)} value_info entries")

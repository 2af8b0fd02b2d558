#!/usr/bin/env python3
"""Golden fixtures for the layer-graph tests: each PyTorch module below is built with a fixed seed; its state_dict,
an input and the expected output computed in float64 are written to Fixtures/<name>.safetensors (weights as F32
under their state_dict names, "__input__" as F32, "__expected__" as F64, the model's sizes in __metadata__).
Run by hand with Debian's python3-torch (CI never needs PyTorch):

    /usr/bin/python3 tests/GpuNet.Layers.Tests/make_fixtures.py
"""
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors, metadata):
    """The safetensors format by hand: u64 header length, JSON header, raw little-endian data."""
    header, blobs, offset = {"__metadata__": {k: str(v) for k, v in metadata.items()}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        dtype = {torch.float32: "F32", torch.float64: "F64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def save(name, model, x, run, metadata, extra=None):
    model.eval()
    state = {k: v.float() for k, v in model.state_dict().items()}
    extra = extra or {}
    xin = x if x.dtype == torch.long else x.double().requires_grad_(True)
    # Grad enabled on the input keeps PyTorch off its inference fast paths: the expectation is the plain math.
    with torch.enable_grad():
        expected = run(model.double(), xin, {k: (v if v.dtype in (torch.bool, torch.long) else v.double()) for k, v in extra.items()}).detach()
    tensors = dict(state)
    tensors["__input__"] = x.float()
    for k, v in extra.items():
        tensors[f"__{k}__"] = v.float()
    tensors["__expected__"] = expected.double()
    write_safetensors(os.path.join(HERE, "Fixtures", f"{name}.safetensors"), tensors, metadata)
    print(f"{name}: {sum(v.numel() for v in state.values())} parameters, output {tuple(expected.shape)}")


def mlp():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 24), nn.GELU(), nn.Linear(24, 5))
    save("mlp", model, torch.randn(7, 13), lambda m, x, e: m(x), {"layers": "13-32-24-5"})


def cnn():
    torch.manual_seed(2)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 2)))
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
    model = nn.Sequential()
    model.add_module("features", features)
    model.add_module("classifier", classifier)
    # Non-trivial running statistics, as after training.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    save("cnn", model, torch.randn(3, 3, 13, 11), lambda m, x, e: m(x), {"classes": 10})


class CausalSelfAttention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, c // self.h).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c // self.h)
        att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.ln1, self.attn, self.ln2, self.mlp = nn.LayerNorm(d), CausalSelfAttention(d, h), nn.LayerNorm(d), Mlp(d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Gpt(nn.Module):
    def __init__(self, vocab, context, d, h, layers):
        super().__init__()
        self.tok_emb, self.pos_emb = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, h) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(ids.shape[1]))
        for b in self.blocks:
            x = b(x)
        return self.head(self.ln_f(x))


def gpt():
    torch.manual_seed(3)
    cfg = dict(vocab=61, context=32, d=48, h=4, layers=2)
    model = Gpt(cfg["vocab"], cfg["context"], cfg["d"], cfg["h"], cfg["layers"])
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)  # livelier logits than the default init, so greedy decoding is not a tie-fest
    ids = torch.randint(0, cfg["vocab"], (2, 11))
    save("gpt", model, ids, lambda m, x, e: m(x), {k: v for k, v in cfg.items()})


def padding(lengths, total):
    return torch.arange(total)[None, :] >= torch.tensor(lengths)[:, None]


def encoder_layers():
    torch.manual_seed(4)
    post = nn.TransformerEncoderLayer(16, 4, 40, dropout=0.1, activation="relu", batch_first=True)
    save("encoder_post_norm", post, torch.randn(2, 7, 16), lambda m, x, e: m(x), {"d": 16, "h": 4, "ff": 40, "activation": "relu", "norm_first": 0})
    torch.manual_seed(5)
    pre = nn.TransformerEncoderLayer(16, 2, 24, dropout=0.1, activation="gelu", batch_first=True, norm_first=True)
    save("encoder_pre_norm_padded", pre, torch.randn(2, 7, 16), lambda m, x, e: m(x, src_key_padding_mask=e["padding"]),
         {"d": 16, "h": 2, "ff": 24, "activation": "gelu", "norm_first": 1}, {"padding": padding([7, 4], 7)})


def decoder_layer():
    torch.manual_seed(6)
    dec = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.1, activation="relu", batch_first=True)
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)
    save("decoder_post_norm", dec, torch.randn(2, 6, 16),
         lambda m, x, e: m(x, e["memory"], tgt_mask=causal, memory_key_padding_mask=e["padding"]),
         {"d": 16, "h": 4, "ff": 32, "activation": "relu", "norm_first": 0}, {"memory": torch.randn(2, 9, 16), "padding": padding([9, 5], 9)})


def recurrent():
    torch.manual_seed(7)
    lstm = nn.LSTM(5, 8, num_layers=2, batch_first=True)
    save("lstm", lstm, torch.randn(3, 6, 5), lambda m, x, e: m(x)[0],
         {"input": 5, "hidden": 8, "layers": 2, "batch_first": 1, "lstm": 1})
    torch.manual_seed(8)
    rnn = nn.RNN(4, 6, num_layers=2)
    save("rnn", rnn, torch.randn(7, 2, 4), lambda m, x, e: m(x)[0],
         {"input": 4, "hidden": 6, "layers": 2, "batch_first": 0, "lstm": 0})


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, mid=None):
        super().__init__()
        mid = mid or cout
        self.double_conv = nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                                         nn.Conv2d(mid, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout, bilinear):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(cin, cout, cin // 2)
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
            self.conv = DoubleConv(cin, cout)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        dy, dx = x2.size(2) - x1.size(2), x2.size(3) - x1.size(3)
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class OutConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, cin, classes, base, bilinear):
        super().__init__()
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(cin, base)
        self.down1 = Down(base, base * 2)
        self.down2 = Down(base * 2, base * 4 // factor)
        self.up1 = Up(base * 4, base * 2 // factor, bilinear)
        self.up2 = Up(base * 2, base, bilinear)
        self.outc = OutConv(base, classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        return self.outc(self.up2(self.up1(x3, x2), x1))


def unet():
    for bilinear in (False, True):
        torch.manual_seed(9 + bilinear)
        model = UNet(3, 2, 8, bilinear)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.3, 0.3)
                    m.running_var.uniform_(0.5, 1.5)
        # 18x14 halves to 9x7 then 4x3: the up path has to pad (F.pad) back to the skip sizes.
        save("unet_bilinear" if bilinear else "unet", model, torch.randn(2, 3, 18, 14), lambda m, x, e: m(x),
             {"in": 3, "classes": 2, "base": 8, "depth": 2, "bilinear": int(bilinear)})


class RMSNorm(nn.Module):
    """PyTorch 1.13 has no nn.RMSNorm: x / sqrt(mean(x²) + eps) · weight."""

    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.rand(d) + 0.5)

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LearnedPositions(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, d))

    def forward(self, x):
        return x + self.weight[: x.shape[1]]


class SinusoidalPositions(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        pos = torch.arange(n, dtype=torch.float64)[:, None]
        i = torch.arange(d, dtype=torch.float64)[None, :]
        angle = pos / torch.pow(10000.0, 2 * (i // 2) / d)
        self.register_buffer("pe", torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle)))

    def forward(self, x):
        return x + self.pe[: x.shape[1]]


class ConvSequenceEncoder(nn.Module):
    def __init__(self, cin, hidden, cout, n):
        super().__init__()
        self.conv1 = nn.Conv1d(cin, hidden, 5, padding=2)
        self.norm = nn.GroupNorm(2, hidden)
        self.conv2 = nn.Conv1d(hidden, cout, 3, stride=2, padding=1)
        self.pos = LearnedPositions(n, cout)
        self.sin = SinusoidalPositions(n, cout)
        self.rms = RMSNorm(cout)

    def forward(self, x):
        h = self.conv2(F.gelu(self.norm(self.conv1(x))))
        return self.rms(self.sin(self.pos(h.transpose(1, 2))))


def conv_sequence_encoder():
    torch.manual_seed(11)
    model = ConvSequenceEncoder(4, 8, 6, 16)
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.uniform_(-0.3, 0.3)
    save("conv_sequence_encoder", model, torch.randn(2, 4, 21), lambda m, x, e: m(x),
         {"in": 4, "hidden": 8, "out": 6, "max_length": 16})


# ---------------------------------------------------------------- second wave: the rest of the seed models


def vgg():
    torch.manual_seed(12)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    model = nn.Sequential()
    model.add_module("features", features)
    model.add_module("avgpool", nn.AdaptiveAvgPool2d((2, 2)))
    model.add_module("classifier", nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10)))
    save("vgg", model, torch.randn(2, 3, 17, 15), lambda m, x, e: m(x), {"classes": 10})


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ResNet layout at toy size: a 3×3 stem, stages of blocks, global pooling, fc."""

    def __init__(self, block, stages, width, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin, layers = width, []
        for i, blocks in enumerate(stages):
            planes, stage = width * 2 ** i, []
            for j in range(blocks):
                stage.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
            layers.append(nn.Sequential(*stage))
        self.layers = nn.ModuleList(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for layer in self.layers:
            x = layer(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomize_batchnorm(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def resnet():
    for name, block, stages in (("resnet_basic", BasicBlock, [2, 2]), ("resnet_bottleneck", Bottleneck, [1, 2])):
        torch.manual_seed(13 if block is BasicBlock else 14)
        model = ResNet(block, stages, 8, 10)
        randomize_batchnorm(model)
        save(name, model, torch.randn(2, 3, 15, 13), lambda m, x, e: m(x),
             {"block": "basic" if block is BasicBlock else "bottleneck", "stages": ",".join(map(str, stages)), "width": 8, "classes": 10})


class Seq2Seq(nn.Module):
    """The original Transformer: embeddings scaled by √d plus sinusoidal positions, nn.Transformer, a vocabulary projection."""

    def __init__(self, src_vocab, tgt_vocab, d, h, ff, layers, n):
        super().__init__()
        self.d = d
        self.src_emb, self.tgt_emb = nn.Embedding(src_vocab, d), nn.Embedding(tgt_vocab, d)
        self.pe = SinusoidalPositions(n, d)
        self.transformer = nn.Transformer(d, h, layers, layers, ff, dropout=0.1, batch_first=True)
        self.generator = nn.Linear(d, tgt_vocab)

    def forward(self, src, tgt, src_padding):
        x = self.pe(self.src_emb(src) * math.sqrt(self.d))
        y = self.pe(self.tgt_emb(tgt) * math.sqrt(self.d))
        causal = torch.ones(tgt.shape[1], tgt.shape[1], dtype=torch.bool).triu(1)
        out = self.transformer(x, y, tgt_mask=causal, src_key_padding_mask=src_padding, memory_key_padding_mask=src_padding)
        return self.generator(out)


def seq2seq():
    torch.manual_seed(15)
    cfg = dict(src_vocab=23, tgt_vocab=19, d=16, h=4, ff=32, layers=2, max_length=16)
    model = Seq2Seq(cfg["src_vocab"], cfg["tgt_vocab"], cfg["d"], cfg["h"], cfg["ff"], cfg["layers"], cfg["max_length"])
    src, tgt = torch.randint(0, 23, (2, 9)), torch.randint(0, 19, (2, 7))
    save("seq2seq_transformer", model, src, lambda m, x, e: m(x, e["target"], e["padding"]), cfg,
         {"target": tgt, "padding": padding([9, 6], 9)})


class MoeFeedForward(nn.Module):
    """Softmax router, top-k experts renormalized (Mixtral-style), each expert a GELU MLP."""

    def __init__(self, d, ff, experts, k):
        super().__init__()
        self.k = k
        self.router = nn.Linear(d, experts, bias=False)
        self.experts = nn.ModuleList(nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d)) for _ in range(experts))

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        probs = self.router(flat).softmax(-1)
        weights, idx = probs.topk(self.k, -1)
        weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = (idx == e).nonzero(as_tuple=True)
            if len(rows):
                out = out.index_add(0, rows, expert(flat[rows]) * weights[rows, slot, None])
        return out.reshape(x.shape)


class MoeBlock(nn.Module):
    def __init__(self, d, h, ff, experts, k):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(d), CausalSelfAttention(d, h), nn.LayerNorm(d)
        self.moe = MoeFeedForward(d, ff, experts, k)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.moe(self.ln2(x))


def moe():
    torch.manual_seed(16)
    cfg = dict(d=16, h=4, ff=24, experts=6, k=2)
    model = MoeBlock(cfg["d"], cfg["h"], cfg["ff"], cfg["experts"], cfg["k"])
    with torch.no_grad():
        model.moe.router.weight.mul_(3.0)  # decisive routing: no near-ties between the 2nd and 3rd expert
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        probs = model.moe.router(model.ln2(x + model.attn(model.ln1(x)))).softmax(-1).sort(-1, descending=True).values
        assert (probs[..., 1] - probs[..., 2]).min() > 1e-3, "near-tie in routing: pick another seed"
    save("moe_block", model, x, lambda m, x, e: m(x), cfg)


class MaskedConv2d(nn.Conv2d):
    """PixelCNN's masked convolution: taps after the centre in raster order (and the centre for type A) are zero."""

    def __init__(self, kind, *args, **kwargs):
        super().__init__(*args, **kwargs)
        kh, kw = self.kernel_size
        mask = torch.ones(kh, kw)
        mask[kh // 2, kw // 2 + (kind == "B"):] = 0
        mask[kh // 2 + 1:] = 0
        self.kind_mask = mask

    def forward(self, x):
        return F.conv2d(x, self.weight * self.kind_mask.to(self.weight.dtype), self.bias, self.stride, self.padding)


def pixelcnn():
    torch.manual_seed(17)
    model = nn.Sequential(MaskedConv2d("A", 1, 16, 7, padding=3), nn.ReLU(),
                          MaskedConv2d("B", 16, 16, 3, padding=1), nn.ReLU(),
                          MaskedConv2d("B", 16, 16, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(16, 4, 1))
    save("pixelcnn", model, torch.randn(2, 1, 9, 11), lambda m, x, e: m(x), {"channels": 1, "hidden": 16, "levels": 4, "layers": 2})


class VectorQuantizer(nn.Module):
    """VQ-VAE's quantizer: each [D] vector of z [B, D, H, W] replaced by its nearest codebook row."""

    def __init__(self, codes, dim):
        super().__init__()
        self.embedding = nn.Embedding(codes, dim)

    def forward(self, z):
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        dist = (flat ** 2).sum(1, keepdim=True) - 2 * flat @ self.embedding.weight.t() + (self.embedding.weight ** 2).sum(1)
        q = self.embedding(dist.argmin(1))
        return q.reshape(b, h, w, d).permute(0, 3, 1, 2)


def vq():
    torch.manual_seed(18)
    model = VectorQuantizer(12, 5)
    z = torch.randn(2, 5, 4, 3)
    with torch.no_grad():
        flat = z.permute(0, 2, 3, 1).reshape(-1, 5)
        dist = torch.cdist(flat.double(), model.embedding.weight.double()).sort(1).values
        assert (dist[:, 1] - dist[:, 0]).min() > 1e-3, "near-tie: pick another seed"
    save("vq_quantizer", model, z, lambda m, x, e: m(x), {"codes": 12, "dim": 5})


class Vae(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.Flatten())
        self.fc_mu, self.fc_logvar = nn.Linear(16 * 4 * 4, latent), nn.Linear(16 * 4 * 4, latent)
        self.decoder_input = nn.Linear(latent, 16 * 4 * 4)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Sigmoid())

    def forward(self, x, eps):
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + eps * torch.exp(0.5 * logvar)
        recon = self.decoder(self.decoder_input(z).view(-1, 16, 4, 4))
        return torch.cat([recon.flatten(1), mu, logvar], 1)


def vae():
    torch.manual_seed(19)
    model = Vae(6)
    save("vae", model, torch.rand(2, 1, 16, 16), lambda m, x, e: m(x, e["eps"]), {"latent": 6}, {"eps": torch.randn(2, 6)})


class VaeFashion(nn.Module):
    """The VAE of `train vae` (GpuNet.Layers.Vae with an image size and width): no sigmoid, the output is the logits."""

    def __init__(self, latent, size=28, width=4):
        super().__init__()
        features = 2 * width * (size // 4) ** 2
        self.size, self.width = size, width
        self.encoder = nn.Sequential(nn.Conv2d(1, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU(), nn.Flatten())
        self.fc_mu, self.fc_logvar = nn.Linear(features, latent), nn.Linear(features, latent)
        self.decoder_input = nn.Linear(latent, features)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(width, 1, 4, 2, 1))

    def forward(self, x, eps):
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + eps * torch.exp(0.5 * logvar)
        logits = self.decoder(self.decoder_input(z).view(-1, 2 * self.width, self.size // 4, self.size // 4))
        return torch.cat([logits.flatten(1), mu, logvar], 1)


def vae_fashion():
    torch.manual_seed(41)
    model = VaeFashion(5)
    save("vae_fashion", model, torch.rand(2, 1, 28, 28), lambda m, x, e: m(x, e["eps"]), {"latent": 5, "size": 28, "width": 4}, {"eps": torch.randn(2, 5)})


class VqVaeFashion(nn.Module):
    """The VQ-VAE of `train vqvae` (GpuNet.Layers.VqVae): the output is [logits, z_e, z_q] flattened per image, the logits
    decoded from the straight-through z_e + (z_q - z_e).detach(), so one loss reaches the decoder, encoder and codebook."""

    def __init__(self, codes, dim, width):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(), nn.Conv2d(2 * width, dim, 1))
        self.vq = VectorQuantizer(codes, dim)
        self.decoder = nn.Sequential(nn.Conv2d(dim, 2 * width, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(width, 1, 4, 2, 1))

    def code_gap(self, x):
        """The smallest gap between a position's nearest and second-nearest code distance: a near-tie would let float32
        pick the other code."""
        with torch.no_grad():
            z = self.encoder(x)
            flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).double()
            dist = torch.cdist(flat, self.vq.embedding.weight.double()).sort(1).values
            return (dist[:, 1] - dist[:, 0]).min().item()

    def forward(self, x):
        z_e = self.encoder(x)
        z_q = self.vq(z_e)
        logits = self.decoder(z_e + (z_q - z_e).detach())
        return torch.cat([logits.flatten(1), z_e.flatten(1), z_q.flatten(1)], 1)


def vqvae_fashion_model(seed):
    """A small VQ-VAE whose codebook is its encoder's outputs on a batch plus noise, as `train vqvae` seeds it: every
    position then has a clear nearest code (a random N(0, 1) codebook leaves them all on one or two codes)."""
    torch.manual_seed(seed)
    model = VqVaeFashion(12, 5, 4)
    with torch.no_grad():
        z = model.encoder(torch.rand(3, 1, 28, 28)).permute(0, 2, 3, 1).reshape(-1, 5)
        model.vq.embedding.weight.copy_(z[torch.randperm(z.shape[0])[:12]] + 0.05 * torch.randn(12, 5))
    return model


def vqvae_fashion():
    model = vqvae_fashion_model(47)
    x = torch.rand(2, 1, 28, 28)
    assert model.double().code_gap(x.double()) > 1e-3, "near-tie: pick another seed"
    save("vqvae_fashion", model.float(), x, lambda m, x, e: m(x), {"codes": 12, "dim": 5, "width": 4})


def timestep_embedding(t, dim, max_period=10000):
    """cos half then sin half, as GpuNet's timestep_embedding kernel (and DiT's reference code)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    args = t.double()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class TinyNoiseModel(nn.Module):
    """ε_θ(x_t, t) for the DDPM golden cases: conv → + projected timestep embedding → SiLU → conv."""

    def __init__(self, channels, hidden, temb):
        super().__init__()
        self.temb = temb
        self.time_mlp = nn.Sequential(nn.Linear(temb, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x, t):
        te = self.time_mlp(timestep_embedding(t, self.temb).to(x.dtype))
        return self.conv2(F.silu(self.conv1(x) + te[:, :, None, None]))


def betas(schedule, steps):
    if schedule == "linear":
        return torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    s = 0.008
    f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=0.999)


def ddpm_sample(model, x, noise, b):
    """The DDPM reverse process: x_{t-1} = (x_t − β_t/√(1−ᾱ_t)·ε)/√α_t + σ_t·z with σ_t² = β̃_t, no noise at t = 0."""
    a = 1 - b
    ab = torch.cumprod(a, 0)
    for t in reversed(range(len(b))):
        eps = model(x, torch.full((x.shape[0],), t, dtype=torch.float64))
        mean = (x - b[t] / torch.sqrt(1 - ab[t]) * eps) / torch.sqrt(a[t])
        if t > 0:
            var = b[t] * (1 - ab[t - 1]) / (1 - ab[t])
            mean = mean + torch.sqrt(var) * noise[t]
        x = mean
    return x


def ddpm():
    for schedule, seed in (("linear", 20), ("cosine", 21)):
        torch.manual_seed(seed)
        steps = 6
        model = TinyNoiseModel(2, 8, 16)
        noise = torch.randn(steps, 2, 2, 6, 5)
        save(f"ddpm_{schedule}", model, torch.randn(2, 2, 6, 5), lambda m, x, e: ddpm_sample(m, x, e["noise"], betas(schedule, steps)),
             {"schedule": schedule, "steps": steps, "channels": 2, "hidden": 8, "temb": 16}, {"noise": noise})


class DiT(nn.Module):
    """DiT at toy size: patch-embedding conv, learned positions, time + class embedding added to every patch,
    pre-norm transformer blocks, final norm and linear head, unpatchify."""

    def __init__(self, channels, size, patch, d, h, layers, classes, temb):
        super().__init__()
        self.c, self.p, self.size, self.temb = channels, patch, size, temb
        self.x_embedder = nn.Conv2d(channels, d, patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.randn(1, (size // patch) ** 2, d) * 0.1)
        self.t_embedder = nn.Sequential(nn.Linear(temb, d), nn.SiLU(), nn.Linear(d, d))
        self.y_embedder = nn.Embedding(classes, d)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(d, h, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
                                    for _ in range(layers))
        self.final_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, patch * patch * channels)

    def forward(self, x, t, y):
        tokens = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        cond = self.t_embedder(timestep_embedding(t, self.temb).to(x.dtype)) + self.y_embedder(y)
        tokens = tokens + cond[:, None]
        for blk in self.blocks:
            tokens = blk(tokens)
        out = self.head(self.final_norm(tokens))
        n, g = x.shape[0], self.size // self.p
        out = out.reshape(n, g, g, self.p, self.p, self.c)
        return torch.einsum("nhwpqc->nchpwq", out).reshape(n, self.c, self.size, self.size)


def dit():
    torch.manual_seed(22)
    cfg = dict(channels=3, size=8, patch=2, d=32, h=4, layers=2, classes=5, temb=16)
    model = DiT(**cfg)
    save("dit", model, torch.randn(2, 3, 8, 8), lambda m, x, e: m(x, e["timesteps"], e["labels"]), cfg,
         {"timesteps": torch.tensor([3.0, 517.0]), "labels": torch.tensor([4, 1])})


def modulate(x, shift, scale):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """DiT's adaLN-Zero block: shift, scale, gate of the attention and the MLP branches from a linear map of SiLU(c)."""

    def __init__(self, d, h):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(d, 4 * d))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(4 * d, d))
        self.adaLN_modulation = nn.Linear(d, 6 * d)

    def forward(self, x, c):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        h = modulate(x, shift1, scale1)
        x = x + gate1[:, None] * self.attn(h, h, h, need_weights=False)[0]
        return x + gate2[:, None] * self.mlp(modulate(x, shift2, scale2))


class DiTFinalLayer(nn.Module):
    def __init__(self, d, out):
        super().__init__()
        self.linear = nn.Linear(d, out)
        self.adaLN_modulation = nn.Linear(d, 2 * d)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(x, shift, scale))


class DiTAdaLn(DiT):
    """`train dit`'s DiT: the condition (timestep + class, the last class row meaning "no class") through SiLU into every
    adaLN-Zero block and the adaLN final layer. The zero-started maps get small random weights here, so that every
    parameter has a gradient to compare."""

    def __init__(self, channels, size, patch, d, h, layers, classes, temb):
        super().__init__(channels, size, patch, d, h, 0, classes + 1, temb)
        del self.final_norm, self.head
        self.blocks = nn.ModuleList(DiTBlock(d, h) for _ in range(layers))
        self.final_layer = DiTFinalLayer(d, patch * patch * channels)

    def forward(self, x, t, y):
        tokens = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = F.silu(self.t_embedder(timestep_embedding(t, self.temb).to(x.dtype)) + self.y_embedder(y))
        for blk in self.blocks:
            tokens = blk(tokens, c)
        out = self.final_layer(tokens, c)
        n, g = x.shape[0], self.size // self.p
        out = out.reshape(n, g, g, self.p, self.p, self.c)
        return torch.einsum("nhwpqc->nchpwq", out).reshape(n, self.c, self.size, self.size)


def dit_adaln_model(seed):
    torch.manual_seed(seed)
    cfg = dict(channels=1, size=8, patch=2, d=32, h=4, layers=2, classes=5, temb=16)
    return DiTAdaLn(**cfg), cfg


def dit_adaln():
    model, cfg = dit_adaln_model(23)
    save("dit_adaln", model, torch.randn(2, 1, 8, 8), lambda m, x, e: m(x, e["timesteps"], e["labels"]), cfg,
         {"timesteps": torch.tensor([3.0, 517.0]), "labels": torch.tensor([4, 5])})


class HubertLabeler(nn.Module):
    """HuBERT's target assignment: features → linear → Transformer encoder → nearest k-means centroid."""

    def __init__(self, features, d, h, ff, layers, clusters):
        super().__init__()
        self.proj = nn.Linear(features, d)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, h, ff, dropout=0.1, activation="gelu", batch_first=True), layers)
        self.register_buffer("centroids", torch.randn(clusters, d))

    def hidden(self, x):
        return self.encoder(self.proj(x))

    def forward(self, x):
        hdn = self.hidden(x)
        return ((hdn[..., None, :] - self.centroids) ** 2).sum(-1).argmin(-1).double()


def hubert():
    torch.manual_seed(23)
    cfg = dict(features=10, d=16, h=2, ff=32, layers=2, clusters=7)
    model = HubertLabeler(**cfg)
    x = torch.randn(2, 11, 10)
    with torch.no_grad():
        model.eval()
        dist = ((model.double().hidden(x.double())[..., None, :] - model.centroids) ** 2).sum(-1).sort(-1).values
        assert (dist[..., 1] - dist[..., 0]).min() > 1e-3, "near-tie: pick another seed"
    save("hubert_labels", model, x, lambda m, x, e: m(x), cfg)


class ConformerBlock(nn.Module):
    """The Conformer block (Gulati et al. 2020), the encoder of Best-RQ: ½·FFN, self-attention, convolution module, ½·FFN, LayerNorm."""

    def __init__(self, d, h, ff, kernel):
        super().__init__()
        self.ffn1 = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, ff), nn.SiLU(), nn.Linear(ff, d))
        self.attn_norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.conv_norm = nn.LayerNorm(d)
        self.pointwise1 = nn.Conv1d(d, 2 * d, 1)
        self.depthwise = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.conv_bn = nn.BatchNorm1d(d)
        self.pointwise2 = nn.Conv1d(d, d, 1)
        self.ffn2 = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, ff), nn.SiLU(), nn.Linear(ff, d))
        self.final_norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x + 0.5 * self.ffn1(x)
        a = self.attn_norm(x)
        x = x + self.attn(a, a, a, need_weights=False)[0]
        c = F.glu(self.pointwise1(self.conv_norm(x).transpose(1, 2)), dim=1)
        c = self.pointwise2(F.silu(self.conv_bn(self.depthwise(c))))
        x = x + c.transpose(1, 2)
        x = x + 0.5 * self.ffn2(x)
        return self.final_norm(x)


def conformer():
    torch.manual_seed(24)
    cfg = dict(d=16, h=4, ff=32, kernel=7)
    model = ConformerBlock(**cfg)
    randomize_batchnorm(model)
    save("conformer_block", model, torch.randn(2, 13, 16), lambda m, x, e: m(x), cfg)


class RandomProjectionQuantizer(nn.Module):
    """Best-RQ's frozen quantizer: project stacked frames with a random matrix, l2-normalize, nearest normalized code."""

    def __init__(self, features, code_dim, codes):
        super().__init__()
        self.register_buffer("projection", nn.init.xavier_uniform_(torch.empty(features, code_dim)))
        self.register_buffer("codebook", torch.randn(codes, code_dim))

    def forward(self, x):
        z = F.normalize(x @ self.projection, dim=-1)
        c = F.normalize(self.codebook, dim=-1)
        return ((z[..., None, :] - c) ** 2).sum(-1).argmin(-1).double()


def random_projection_quantizer():
    torch.manual_seed(25)
    cfg = dict(features=12, code_dim=6, codes=9)
    model = RandomProjectionQuantizer(**cfg)
    x = torch.randn(2, 10, 12)
    with torch.no_grad():
        z = F.normalize(x.double() @ model.projection.double(), dim=-1)
        c = F.normalize(model.codebook.double(), dim=-1)
        dist = ((z[..., None, :] - c) ** 2).sum(-1).sort(-1).values
        assert (dist[..., 1] - dist[..., 0]).min() > 1e-3, "near-tie: pick another seed"
    save("random_projection_quantizer", model, x, lambda m, x, e: m(x), cfg)


class ResBlock(nn.Module):
    """Diffusion UNet residual block: GroupNorm → SiLU → conv, + projected time embedding, GroupNorm → SiLU → conv, + skip."""

    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(2, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_proj = nn.Linear(temb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(2, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t):
        h = self.conv1(F.silu(self.norm1(x))) + self.time_proj(F.silu(t))[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class CrossAttentionBlock(nn.Module):
    """Image tokens attend to a text embedding: GroupNorm, context projected to the channels, nn.MultiheadAttention, linear out, residual."""

    def __init__(self, c, heads, context_dim):
        super().__init__()
        self.norm = nn.GroupNorm(2, c)
        self.context_proj = nn.Linear(context_dim, c)
        self.attn = nn.MultiheadAttention(c, heads, batch_first=True)
        self.proj_out = nn.Linear(c, c)

    def forward(self, x, context):
        b, c, h, w = x.shape
        q = self.norm(x).flatten(2).transpose(1, 2)
        ctx = self.context_proj(context)
        a = self.attn(q, ctx, ctx, need_weights=False)[0]
        return x + self.proj_out(a).transpose(1, 2).reshape(b, c, h, w)


class ConditionalUNet(nn.Module):
    """The text-to-image diffusion UNet in miniature: timestep MLP, ResBlocks with the time embedding, cross-attention
    to the text context at every level, one down/up level with a concatenated skip."""

    def __init__(self, channels, base, temb, context_dim, heads):
        super().__init__()
        self.temb = temb
        self.time_embed = nn.Sequential(nn.Linear(temb, 4 * base), nn.SiLU(), nn.Linear(4 * base, 4 * base))
        self.conv_in = nn.Conv2d(channels, base, 3, padding=1)
        self.down_res, self.down_attn = ResBlock(base, base, 4 * base), CrossAttentionBlock(base, heads, context_dim)
        self.downsample = nn.Conv2d(base, base, 3, stride=2, padding=1)
        self.mid_res, self.mid_attn = ResBlock(base, 2 * base, 4 * base), CrossAttentionBlock(2 * base, heads, context_dim)
        self.up_conv = nn.Conv2d(2 * base, base, 3, padding=1)
        self.up_res, self.up_attn = ResBlock(2 * base, base, 4 * base), CrossAttentionBlock(base, heads, context_dim)
        self.norm_out, self.conv_out = nn.GroupNorm(2, base), nn.Conv2d(base, channels, 3, padding=1)

    def forward(self, x, t, context):
        te = self.time_embed(timestep_embedding(t, self.temb).to(x.dtype))
        skip = self.down_attn(self.down_res(self.conv_in(x), te), context)
        h = self.mid_attn(self.mid_res(self.downsample(skip), te), context)
        h = self.up_conv(F.interpolate(h, scale_factor=2, mode="nearest"))
        h = self.up_attn(self.up_res(torch.cat([h, skip], 1), te), context)
        return self.conv_out(F.silu(self.norm_out(h)))


def conditional_unet():
    torch.manual_seed(26)
    cfg = dict(channels=3, base=8, temb=16, context_dim=12, heads=2)
    model = ConditionalUNet(**cfg)
    save("conditional_unet", model, torch.randn(2, 3, 8, 6), lambda m, x, e: m(x, e["timesteps"], e["context"]), cfg,
         {"timesteps": torch.tensor([11.0, 730.0]), "context": torch.randn(2, 5, 12)})


class DcganGenerator(nn.Module):
    """`train gan`'s generator: Linear to 2w x 7 x 7, BN, ReLU, ConvTranspose to w x 14 x 14, BN, ReLU, ConvTranspose to 1 x 28 x 28, tanh."""

    def __init__(self, latent, width):
        super().__init__()
        self.width = width
        self.project = nn.Linear(latent, 2 * width * 49)
        self.body = nn.Sequential(nn.BatchNorm2d(2 * width), nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
                                  nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.body(self.project(z).view(-1, 2 * self.width, 7, 7))


class DcganDiscriminator(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width),
                                  nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * width * 49, 1))

    def forward(self, x):
        return self.body(x)


class GanPair(nn.Module):
    """The generator step of `train gan`: D(G(z)), both networks in one module so one fixture holds both gradients."""

    def __init__(self, latent, width):
        super().__init__()
        self.generator, self.discriminator = DcganGenerator(latent, width), DcganDiscriminator(width)

    def forward(self, z):
        return self.discriminator(self.generator(z))


def gan_pair_model(seed):
    torch.manual_seed(seed)
    model = GanPair(8, 4)
    randomize_batchnorm(model)
    return model


class DiffusionUNet(nn.Module):
    """`train ddpm`'s UNet (GpuNet.Layers.DiffusionUNet): time MLP (+ class embedding, the last row "no class"), ResBlocks at
    28, 14 and 7, stride-2 convolutions down, nearest upsampling + convolution up with the skips concatenated, GroupNorm,
    SiLU, conv_out."""

    def __init__(self, width, classes):
        super().__init__()
        w, temb = width, 4 * width
        self.width = width
        self.time_embed = nn.Sequential(nn.Linear(w, temb), nn.SiLU(), nn.Linear(temb, temb))
        if classes:
            self.class_embed = nn.Embedding(classes + 1, temb)
        self.classes = classes
        self.conv_in = nn.Conv2d(1, w, 3, padding=1)
        self.res1 = ResBlock(w, w, temb)
        self.down1 = nn.Conv2d(w, w, 3, 2, 1)
        self.res2 = ResBlock(w, 2 * w, temb)
        self.down2 = nn.Conv2d(2 * w, 2 * w, 3, 2, 1)
        self.mid = ResBlock(2 * w, 2 * w, temb)
        self.up2 = nn.Conv2d(2 * w, 2 * w, 3, padding=1)
        self.res3 = ResBlock(4 * w, 2 * w, temb)
        self.up1 = nn.Conv2d(2 * w, w, 3, padding=1)
        self.res4 = ResBlock(2 * w, w, temb)
        self.norm_out = nn.GroupNorm(2, w)
        self.conv_out = nn.Conv2d(w, 1, 3, padding=1)

    def forward(self, x, t, y):
        t = self.time_embed(timestep_embedding(t, self.width).to(x.dtype))
        if self.classes:
            t = t + self.class_embed(y)
        skip1 = self.res1(self.conv_in(x), t)
        skip2 = self.res2(self.down1(skip1), t)
        h = self.mid(self.down2(skip2), t)
        h = self.up2(F.interpolate(h, size=(14, 14), mode="nearest"))
        h = self.res3(torch.cat([h, skip2], 1), t)
        h = self.up1(F.interpolate(h, size=(28, 28), mode="nearest"))
        h = self.res4(torch.cat([h, skip1], 1), t)
        return self.conv_out(F.silu(self.norm_out(h)))


def diffusion_unet_model(seed, classes):
    torch.manual_seed(seed)
    model = DiffusionUNet(4, classes)
    with torch.no_grad():
        # Non-trivial GroupNorm affines, as after training.
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return model


class CodePrior(nn.Module):
    """`train pixelcnn`'s prior: code embedding, 7x7 mask-A conv, 3x3 mask-B convs with ReLU, 1x1 to the code logits."""

    def __init__(self, codes, embed, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(codes, embed)
        body = [MaskedConv2d("A", embed, hidden, 7, padding=3), nn.ReLU()]
        for _ in range(layers):
            body += [MaskedConv2d("B", hidden, hidden, 3, padding=1), nn.ReLU()]
        body.append(nn.Conv2d(hidden, codes, 1))
        self.body = nn.Sequential(*body)

    def forward(self, codes):
        return self.body(self.embed(codes).permute(0, 3, 1, 2))


def code_prior_model(seed):
    torch.manual_seed(seed)
    return CodePrior(6, 4, 8, 2)


def generative_models():
    """Forward fixtures of the trainers' models whose gradients make_training_fixtures.py checks."""
    save("gan_pair", gan_pair_model(51), torch.randn(3, 8), lambda m, x, e: m(x), {"latent": 8, "width": 4})
    for classes in (0, 10):
        save("diffusion_unet_c%d" % classes, diffusion_unet_model(52 + classes, classes), torch.randn(2, 1, 28, 28),
             lambda m, x, e: m(x, e["timesteps"], e["labels"]), {"width": 4, "classes": classes},
             {"timesteps": torch.tensor([17.0, 803.0]), "labels": torch.tensor([3, 10]) if classes else torch.tensor([0, 0])})
    save("code_prior", code_prior_model(53), torch.randint(0, 6, (2, 7, 7)), lambda m, x, e: m(x), {"codes": 6, "embed": 4, "hidden": 8, "layers": 2})


if __name__ == "__main__":
    torch.set_num_threads(2)
    mlp()
    cnn()
    gpt()
    encoder_layers()
    decoder_layer()
    recurrent()
    unet()
    conv_sequence_encoder()
    vgg()
    resnet()
    seq2seq()
    moe()
    pixelcnn()
    vq()
    vae()
    vae_fashion()
    vqvae_fashion()
    ddpm()
    dit_adaln()
    generative_models()
    dit()
    hubert()
    conformer()
    random_projection_quantizer()
    conditional_unet()

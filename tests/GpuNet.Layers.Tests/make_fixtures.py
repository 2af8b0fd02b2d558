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
        expected = run(model.double(), xin, {k: (v if v.dtype == torch.bool else v.double()) for k, v in extra.items()}).detach()
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

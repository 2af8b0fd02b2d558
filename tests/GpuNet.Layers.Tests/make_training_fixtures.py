#!/usr/bin/env python3
"""Golden fixtures for training: PyTorch's initial weights, losses and gradients, written to Fixtures/<name>.safetensors
(weights as F32 under their state_dict names, expectations as F64 under "__name__"). Run by hand with Debian's
python3-torch (CI never needs PyTorch):

    /usr/bin/python3 tests/GpuNet.Layers.Tests/make_training_fixtures.py
"""
import copy
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_fixtures import (BasicBlock, Bottleneck, ConformerBlock, DiT, Gpt, MaskedConv2d, MoeBlock, ResNet, UNet, Vae, VaeFashion, padding,
                           vqvae_fashion_model, dit_adaln_model, gan_pair_model, diffusion_unet_model, code_prior_model,
                           randomize_batchnorm, write_safetensors)

HERE = os.path.dirname(os.path.abspath(__file__))


def dnn(steps=2000):
    """The seed's dnn: y = 3x^2 + 5 on 256 grid points in [-2, 2], full batch, Adam(lr=1e-3), MSE."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    x = torch.linspace(-2, 2, 256).unsqueeze(1)
    y = 3 * x ** 2 + 5
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    tensors = dict(state)
    tensors["__losses__"] = torch.tensor(losses, dtype=torch.float64)
    write_safetensors(os.path.join(HERE, "Fixtures", "dnn.safetensors"), tensors, {"steps": steps, "lr": 1e-3, "points": 256})
    print(f"dnn: loss after 1 step {losses[0]:.6f}, after 5 {losses[4]:.6f}, after {steps} {losses[-1]:.6f}")


KINK_MARGIN = 1e-5


def kink_margin(forward, model, inputs):
    """The smallest distance to a kink over the float64 forward, relative to the scale of the values there: for each ReLU,
    min |input| / rms(input); for each max pooling, the gap between a window's largest and second-largest value over the
    rms of the input (windows whose largest value is exactly 0, ReLU zeros, excepted). GpuNet computes in float32, so a ReLU input within rounding (~1e-6 relative) of zero can take the
    other branch there, and one flipped element moves a small model's gradients by percents (unet_bilinear's first seed
    had a batch-norm output of 2.6e-7 feeding a ReLU: cpu-sim's rounding made it -5.1e-7 and the test failed there). A
    fixture is only made where every kink is at least KINK_MARGIN away, so the comparison measures GpuNet, not the luck
    of a sign."""
    margins = []
    relu, torch_relu, max_pool2d = F.relu, torch.relu, F.max_pool2d

    def scale(x):
        return x.detach().double().pow(2).mean().sqrt().item() or 1.0

    def record_relu(x):
        margins.append(x.detach().abs().min().item() / scale(x))

    def checked_relu(x, inplace=False):
        record_relu(x)
        return torch_relu_(x) if inplace else torch_relu(x)

    def checked_torch_relu(x):
        record_relu(x)
        return torch_relu(x)

    torch_relu_ = torch.relu_

    def checked_max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        st = k if stride is None or stride == [] else ((stride, stride) if isinstance(stride, int) else tuple(stride))
        p = (padding, padding) if isinstance(padding, int) else tuple(padding)
        padded = F.pad(x.detach(), (p[1], p[1], p[0], p[0]), value=float("-inf")) if p != (0, 0) else x.detach()
        windows = padded.unfold(2, k[0], st[0]).unfold(3, k[1], st[1]).reshape(*padded.shape[:2], -1, k[0] * k[1])
        top = windows.topk(2, dim=-1).values
        # A window of ReLU zeros ties harmlessly: the ReLU below passes no gradient to any of them.
        gaps = (top[..., 0] - top[..., 1])[top[..., 0] != 0]
        margins.append(gaps.min().item() / scale(x) if gaps.numel() else float("inf"))
        return max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)

    leaky_relu = F.leaky_relu

    def checked_leaky_relu(x, negative_slope=0.01, inplace=False):
        record_relu(x)
        return leaky_relu(x, negative_slope, inplace)

    F.relu, F.max_pool2d, torch.relu, F.leaky_relu = checked_relu, checked_max_pool2d, checked_torch_relu, checked_leaky_relu
    try:
        with torch.no_grad():
            forward(model, inputs)
    finally:
        F.relu, F.max_pool2d, torch.relu, F.leaky_relu = relu, max_pool2d, torch_relu, leaky_relu
    return min(margins, default=float("inf"))


def gradients(name, model, inputs, target, loss_fn, metadata, adam_steps=5, lr=1e-3, run=None, extra=None, train_mode=False):
    """Every parameter's gradient after one forward/backward of loss_fn in float64, and the losses of adam_steps Adam
    steps from the same weights (the loss before each step, then after the last), next to the F32 weights. Dropout is
    off (eval mode); GpuNet builds these layers without dropout, as the files carry no dropout metadata. With train_mode
    (metadata mode=train) batch norm uses the batch statistics, as in training, and only the dropout modules are in eval
    mode; the state written is the one before the first forward. run(model, x, extra) defaults to model(x)."""
    model.eval()
    if train_mode:
        model.train()
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.eval()
        metadata = dict(metadata, mode="train")
    state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    as_double = lambda t: t if t.dtype in (torch.long, torch.bool) else t.double()
    extra = extra or {}
    ex = {k: as_double(v) for k, v in extra.items()}
    forward = (lambda m, x: run(m, x, ex)) if run else (lambda m, x: m(x))
    m = copy.deepcopy(model).double()
    margin = kink_margin(forward, copy.deepcopy(m), as_double(inputs))
    if os.environ.get("MARGINS_ONLY"):
        print(f"{name}: kink margin {margin:.3g}")
        return
    if margin < KINK_MARGIN:
        raise SystemExit(f"{name}: a ReLU input or max-pool gap {margin:.3g} (relative) from its kink: pick another seed")
    loss = loss_fn(forward(m, as_double(inputs)), as_double(target))
    loss.backward()
    tensors = dict(state)
    for n, p in m.named_parameters():
        tensors[f"__grad__.{n}"] = p.grad.detach().double()
    if train_mode:
        # Batch norm's running statistics after that one training-mode forward (momentum 0.1, unbiased variance, counter).
        # After the Adam steps they would also carry the drift of a bias whose gradient is zero in exact arithmetic (a
        # convolution's bias before batch norm), which Adam's normalization turns from float rounding into real steps.
        for n, b in m.named_buffers():
            tensors[f"__after__.{n}"] = b.detach().double().reshape(-1)
    tensors["__loss__"] = loss.detach().double().reshape(1)
    m = copy.deepcopy(model).double()
    opt = torch.optim.Adam(m.parameters(), lr=lr)
    losses = []
    for _ in range(adam_steps):
        opt.zero_grad()
        l = loss_fn(forward(m, as_double(inputs)), as_double(target))
        l.backward()
        opt.step()
        losses.append(l.item())
    with torch.no_grad():
        losses.append(loss_fn(forward(m, as_double(inputs)), as_double(target)).item())
    tensors["__adam_losses__"] = torch.tensor(losses, dtype=torch.float64)

    tensors["__input__"] = inputs.float()
    tensors["__target__"] = target.float()
    for k, v in extra.items():
        tensors[f"__{k}__"] = v.float()
    write_safetensors(os.path.join(HERE, "Fixtures", f"{name}.safetensors"), tensors, metadata)
    print(f"{name}: loss {loss.item():.6f}, after {adam_steps} Adam steps {losses[-1]:.6f}")


def mlp_grad():
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 24), nn.GELU(), nn.Linear(24, 5))
    gradients("mlp_grad", model, torch.randn(7, 13), torch.randn(7, 5), F.mse_loss, {"layers": "13-32-24-5", "loss": "mse"})


def gpt_grad():
    torch.manual_seed(13)
    cfg = dict(vocab=61, context=32, d=48, h=4, layers=2)
    model = Gpt(cfg["vocab"], cfg["context"], cfg["d"], cfg["h"], cfg["layers"])
    ids = torch.randint(0, cfg["vocab"], (2, 11))
    target = torch.randint(0, cfg["vocab"], (2, 11))
    gradients("gpt_grad", model, ids, target, lambda logits, t: F.cross_entropy(logits.reshape(-1, cfg["vocab"]), t.reshape(-1).long()),
              dict(cfg, loss="cross_entropy"))


def sequence_grads():
    """LSTM, RNN and the Transformer encoder/decoder layers of the golden fixtures, trained on MSE to a random target."""
    torch.manual_seed(17)
    lstm = nn.LSTM(5, 8, num_layers=2, batch_first=True)
    gradients("lstm_grad", lstm, torch.randn(3, 6, 5), torch.randn(3, 6, 8), F.mse_loss,
              {"input": 5, "hidden": 8, "layers": 2, "batch_first": 1, "lstm": 1, "loss": "mse"}, run=lambda m, x, e: m(x)[0])
    torch.manual_seed(18)
    rnn = nn.RNN(4, 6, num_layers=2)
    gradients("rnn_grad", rnn, torch.randn(5, 3, 4), torch.randn(5, 3, 6), F.mse_loss,
              {"input": 4, "hidden": 6, "layers": 2, "batch_first": 0, "lstm": 0, "loss": "mse"}, run=lambda m, x, e: m(x)[0])
    torch.manual_seed(19)
    post = nn.TransformerEncoderLayer(16, 4, 40, dropout=0.1, activation="relu", batch_first=True)
    gradients("encoder_post_norm_grad", post, torch.randn(2, 7, 16), torch.randn(2, 7, 16), F.mse_loss,
              {"d": 16, "h": 4, "ff": 40, "activation": "relu", "norm_first": 0, "loss": "mse"})
    torch.manual_seed(20)
    pre = nn.TransformerEncoderLayer(16, 2, 24, dropout=0.1, activation="gelu", batch_first=True, norm_first=True)
    gradients("encoder_pre_norm_padded_grad", pre, torch.randn(2, 7, 16), torch.randn(2, 7, 16), F.mse_loss,
              {"d": 16, "h": 2, "ff": 24, "activation": "gelu", "norm_first": 1, "loss": "mse"},
              run=lambda m, x, e: m(x, src_key_padding_mask=e["padding"]), extra={"padding": padding([7, 4], 7)})
    torch.manual_seed(21)
    dec = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.1, activation="relu", batch_first=True)
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)
    gradients("decoder_post_norm_grad", dec, torch.randn(2, 6, 16), torch.randn(2, 6, 16), F.mse_loss,
              {"d": 16, "h": 4, "ff": 32, "activation": "relu", "norm_first": 0, "loss": "mse"},
              run=lambda m, x, e: m(x, e["memory"], tgt_mask=causal, memory_key_padding_mask=e["padding"]),
              extra={"memory": torch.randn(2, 9, 16), "padding": padding([9, 5], 9)})


def moe_grad():
    """The MoE Transformer block (top-2 of 6 experts) with decisive routing, so no step of Adam flips a choice."""
    torch.manual_seed(23)
    cfg = dict(d=16, h=4, ff=24, experts=6, k=2)
    model = MoeBlock(cfg["d"], cfg["h"], cfg["ff"], cfg["experts"], cfg["k"])
    with torch.no_grad():
        model.moe.router.weight.mul_(3.0)
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        probs = model.moe.router(model.ln2(x + model.attn(model.ln1(x)))).softmax(-1).sort(-1, descending=True).values
        assert (probs[..., 1] - probs[..., 2]).min() > 1e-3, "near-tie in routing: pick another seed"
    gradients("moe_block_grad", model, x, torch.randn(3, 5, 16), F.mse_loss, dict(cfg, loss="mse"))


def conv_grads():
    """The convolutional seed models of the golden fixtures, in training mode (batch statistics, dropout off)."""
    torch.manual_seed(31)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d((2, 2)))
    cnn = nn.Sequential()
    cnn.add_module("features", features)
    cnn.add_module("classifier", nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10)))
    ce = lambda logits, t: F.cross_entropy(logits, t.long())
    gradients("cnn_grad", cnn, torch.randn(4, 3, 13, 11), torch.randint(0, 10, (4,)), ce, {"loss": "cross_entropy"}, train_mode=True)
    torch.manual_seed(32)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    vgg = nn.Sequential()
    vgg.add_module("features", features)
    vgg.add_module("avgpool", nn.AdaptiveAvgPool2d((2, 2)))
    vgg.add_module("classifier", nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10)))
    gradients("vgg_grad", vgg, torch.randn(3, 3, 17, 15), torch.randint(0, 10, (3,)), ce, {"classes": 10, "loss": "cross_entropy"}, train_mode=True)
    # Seeds 33 (resnet_basic), 36 (unet) and 37 (unet_bilinear) put a ReLU input within 1e-5 of zero (kink_margin): these
    # are the first of 33 + 100k, 36 + 100k and 37 + 100k whose kinks are all 1e-4 away.
    for name, block, stages, seed in (("resnet_basic", BasicBlock, [2, 2], 1333), ("resnet_bottleneck", Bottleneck, [1, 2], 34)):
        torch.manual_seed(seed)
        model = ResNet(block, stages, 8, 10)
        randomize_batchnorm(model)
        gradients(name + "_grad", model, torch.randn(3, 3, 15, 13), torch.randint(0, 10, (3,)), ce,
                  {"block": "basic" if block is BasicBlock else "bottleneck", "stages": ",".join(map(str, stages)), "width": 8, "classes": 10,
                   "loss": "cross_entropy"}, train_mode=True)
    torch.manual_seed(35)
    pixel = nn.Sequential(MaskedConv2d("A", 1, 16, 7, padding=3), nn.ReLU(), MaskedConv2d("B", 16, 16, 3, padding=1), nn.ReLU(),
                          MaskedConv2d("B", 16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 4, 1))
    gradients("pixelcnn_grad", pixel, torch.randn(2, 1, 9, 11), torch.randn(2, 4, 9, 11), F.mse_loss,
              {"channels": 1, "hidden": 16, "levels": 4, "layers": 2, "loss": "mse"})
    for bilinear in (False, True):
        torch.manual_seed(137 if bilinear else 236)
        model = UNet(3, 2, 8, bilinear)
        randomize_batchnorm(model)
        gradients("unet_bilinear_grad" if bilinear else "unet_grad", model, torch.randn(2, 3, 18, 14), torch.randn(2, 2, 18, 14), F.mse_loss,
                  {"in": 3, "classes": 2, "base": 8, "depth": 2, "bilinear": int(bilinear), "loss": "mse"}, train_mode=True)
    torch.manual_seed(38)
    vae = Vae(6)
    gradients("vae_grad", vae, torch.rand(2, 1, 16, 16), torch.rand(2, 16 * 16 + 2 * 6), F.mse_loss, {"latent": 6, "loss": "mse"},
              run=lambda m, x, e: m(x, e["eps"]), extra={"eps": torch.randn(2, 6)}, train_mode=True)
    torch.manual_seed(39)
    cfg = dict(channels=3, size=8, patch=2, d=32, h=4, layers=2, classes=5, temb=16)
    dit = DiT(**cfg)
    gradients("dit_grad", dit, torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8), F.mse_loss, dict(cfg, loss="mse"),
              run=lambda m, x, e: m(x, e["timesteps"], e["labels"]), extra={"timesteps": torch.tensor([3.0, 517.0]), "labels": torch.tensor([4, 1])})
    torch.manual_seed(40)
    cfg = dict(d=16, h=4, ff=32, kernel=7)
    conformer = ConformerBlock(**cfg)
    randomize_batchnorm(conformer)
    gradients("conformer_block_grad", conformer, torch.randn(2, 13, 16), torch.randn(2, 13, 16), F.mse_loss, dict(cfg, loss="mse"), train_mode=True)


def negative_elbo(output, target, latent=5):
    """`train vae`'s loss from the fixture's output [logits, mu, logvar]: binary cross-entropy of the logits summed over the
    pixels plus KL(q || N(0, I)), both averaged over the batch."""
    pixels = target.shape[1]
    logits, mu, logvar = output[:, :pixels], output[:, pixels:pixels + latent], output[:, pixels + latent:]
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / target.shape[0]
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
    return bce + kl


def vae_elbo_grad():
    torch.manual_seed(44)
    model = VaeFashion(5)
    x = torch.rand(2, 1, 28, 28)
    gradients("vae_fashion_grad", model, x, x.reshape(2, -1), negative_elbo, {"latent": 5, "size": 28, "width": 4, "loss": "elbo"},
              run=lambda m, x, e: m(x, e["eps"]), extra={"eps": torch.randn(2, 5)}, train_mode=True)


def vqvae_loss(output, target, codes=12, dim=5, beta=0.25):
    """`train vqvae`'s loss from the fixture's output [logits, z_e, z_q]: binary cross-entropy per pixel, the codebook loss
    ||sg(z_e) - z_q||^2 and beta times the commitment loss ||z_e - sg(z_q)||^2 (means per element)."""
    pixels = target.shape[1]
    latent = (output.shape[1] - pixels) // 2
    logits, z_e, z_q = output[:, :pixels], output[:, pixels:pixels + latent], output[:, pixels + latent:]
    return (F.binary_cross_entropy_with_logits(logits, target) + F.mse_loss(z_q, z_e.detach()) + beta * F.mse_loss(z_e, z_q.detach()))


def vqvae_grad():
    model = vqvae_fashion_model(68)
    x = torch.rand(2, 1, 28, 28)
    # The nearest codes must not be near a tie at the start nor during the five Adam steps.
    probe = copy.deepcopy(model).double()
    opt = torch.optim.Adam(probe.parameters(), lr=1e-3)
    for _ in range(6):
        assert probe.code_gap(x.double()) > 1e-3, "near-tie: pick another seed"
        opt.zero_grad()
        vqvae_loss(probe(x.double()), x.double().reshape(2, -1)).backward()
        opt.step()
    gradients("vqvae_fashion_grad", model, x, x.reshape(2, -1), vqvae_loss, {"codes": 12, "dim": 5, "width": 4, "loss": "vqvae", "beta": 0.25})


def dit_adaln_grad():
    model, cfg = dit_adaln_model(46)
    gradients("dit_adaln_grad", model, torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8), F.mse_loss, dict(cfg, loss="mse"),
              run=lambda m, x, e: m(x, e["timesteps"], e["labels"]), extra={"timesteps": torch.tensor([3.0, 517.0]), "labels": torch.tensor([4, 5])})


def generative_grads():
    """One training step of the other generative trainers' models: the GAN's generator step through the discriminator
    (batch norm on batch statistics, both networks' gradients), the DDPM UNet's and the class-conditional UNet's ε-MSE,
    and the PixelCNN prior's cross-entropy on code maps."""
    model = gan_pair_model(47)
    gradients("gan_pair_grad", model, torch.randn(3, 8), torch.ones(3, 1), F.binary_cross_entropy_with_logits,
              {"latent": 8, "width": 4, "loss": "bce_logits"}, train_mode=True)
    for classes in (0, 10):
        model = diffusion_unet_model(48 + classes, classes)
        labels = torch.tensor([3, 10]) if classes else torch.tensor([0, 0])
        gradients("diffusion_unet_c%d_grad" % classes, model, torch.randn(2, 1, 28, 28), torch.randn(2, 1, 28, 28), F.mse_loss,
                  {"width": 4, "classes": classes, "loss": "mse"}, run=lambda m, x, e: m(x, e["timesteps"], e["labels"]),
                  extra={"timesteps": torch.tensor([17.0, 803.0]), "labels": labels})
    model = code_prior_model(50)
    codes = torch.randint(0, 6, (2, 7, 7))
    gradients("code_prior_grad", model, codes, codes.reshape(-1), lambda out, target: F.cross_entropy(out.permute(0, 2, 3, 1).reshape(-1, 6), target),
              {"codes": 6, "embed": 4, "hidden": 8, "layers": 2, "loss": "code_cross_entropy"})


if __name__ == "__main__":
    dnn()
    mlp_grad()
    gpt_grad()
    sequence_grads()
    conv_grads()
    moe_grad()
    vae_elbo_grad()
    vqvae_grad()
    dit_adaln_grad()
    generative_grads()

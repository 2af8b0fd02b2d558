#!/usr/bin/env python3
"""PyTorch's side of `gpunet run`'s training-step comparisons: builds the same model as GpuNet's case (the same layers, the
same batch of random images and labels), then serves steps over stdin so the bench can time PyTorch interleaved with GpuNet
on the same machine: it prints "ready" once built, and for every line "step" runs one training step (forward, the loss —
cross-entropy for image_cnn and pixelcnn, the negative ELBO for vae, BCE + commitment and the EMA codebook update for
vqvae, ε-MSE at random timesteps and the weights' moving average for ddpm and dit —, backward, Adam step, zero_grad; for
gan the discriminator's and the generator's steps) and prints "ok". FP32, CPU threads as given (default: every core, as GpuNet's host code uses).

    python3 bench/peers/torch_train_step.py --model image_cnn --batch 64
    python3 bench/peers/torch_train_step.py --device cuda --time-steps 200     # images/s on a GPU (bench/gpu-verify.sh)
"""
import argparse
import sys

import torch
import torch.nn as nn


def image_cnn(classes=10):
    """ModelZoo.ImageCnn: the seed CNN for 28x28 grey images."""
    features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                             nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, classes))
    return nn.Sequential(features, classifier)


class Vae(nn.Module):
    """GpuNet.Layers.Vae as `train vae` builds it: 28x28, widths 32/64, latent 16; the decoder gives logits."""

    def __init__(self, latent=16, width=32, size=28):
        super().__init__()
        features = 2 * width * (size // 4) ** 2
        self.size, self.width = size, width
        self.encoder = nn.Sequential(nn.Conv2d(1, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, 2, 1), nn.ReLU(), nn.Flatten())
        self.fc_mu, self.fc_logvar = nn.Linear(features, latent), nn.Linear(features, latent)
        self.decoder_input = nn.Linear(latent, features)
        self.decoder = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(width, 1, 4, 2, 1))

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decoder(self.decoder_input(z).view(-1, 2 * self.width, self.size // 4, self.size // 4))
        return logits, mu, logvar


class Dcgan(nn.Module):
    """GpuNet.Layers.DcganGenerator and DcganDiscriminator as `train gan` builds them (latent 64, width 32)."""

    def __init__(self, latent=64, width=32):
        super().__init__()
        self.latent, self.width = latent, width
        self.project = nn.Linear(latent, 2 * width * 7 * 7)
        self.generator = nn.Sequential(nn.BatchNorm2d(2 * width), nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width),
                                       nn.ReLU(), nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, 2 * width, 4, 2, 1),
                                           nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1))

    def generate(self, z):
        return self.generator(self.project(z).view(-1, 2 * self.width, 7, 7))


class VqVae(nn.Module):
    """GpuNet.Layers.VqVae as `train vqvae` builds it: 128 codes of dimension 16, width 32, EMA codebook (decay 0.99)."""

    def __init__(self, codes=128, dim=16, width=32):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.ReLU(), nn.Conv2d(2 * width, dim, 1))
        self.decoder = nn.Sequential(nn.Conv2d(dim, 2 * width, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(width, 1, 4, 2, 1))
        self.register_buffer("codebook", torch.rand(codes, dim) * 2 / codes - 1 / codes)
        self.register_buffer("counts", torch.ones(codes))
        self.register_buffer("sums", self.codebook.clone())


def vqvae_step(model, x, optimizer, decay=0.99, beta=0.25):
    """`train vqvae`'s step: nearest codes, straight-through latent, BCE + beta * commitment, Adam, then the EMA codebook update."""
    f = nn.functional
    z = model.encoder(x)
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    codes = torch.cdist(flat.detach(), model.codebook).argmin(1)
    q = model.codebook[codes].reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
    logits = model.decoder(q + (z - z.detach()))
    loss = f.binary_cross_entropy_with_logits(logits, x) + beta * f.mse_loss(z, q)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        one_hot = f.one_hot(codes, model.codebook.shape[0]).to(flat.dtype)
        model.counts.mul_(decay).add_(one_hot.sum(0), alpha=1 - decay)
        model.sums.mul_(decay).add_(one_hot.t() @ flat, alpha=1 - decay)
        model.codebook.copy_(model.sums / model.counts[:, None])


class CodePrior(nn.Module):
    """GpuNet.Layers.CodePrior as `train pixelcnn` builds it: 128 codes, embedding 32, 7x7 mask A, four 3x3 mask B of 64."""

    def __init__(self, codes=128, embed=32, hidden=64, layers=4):
        super().__init__()
        self.embed = nn.Embedding(codes, embed)
        self.convs = nn.ModuleList([nn.Conv2d(embed, hidden, 7, padding=3)] + [nn.Conv2d(hidden, hidden, 3, padding=1) for _ in range(layers)])
        self.out = nn.Conv2d(hidden, codes, 1)
        self.masks = [self.mask(7, "A"), *[self.mask(3, "B")] * layers]

    @staticmethod
    def mask(k, kind):
        m = torch.ones(k * k)
        m[k * k // 2 + (kind == "B"):] = 0
        return m.reshape(1, 1, k, k)

    def forward(self, codes):
        h = self.embed(codes).permute(0, 3, 1, 2)
        for conv, mask in zip(self.convs, self.masks):
            h = torch.relu(nn.functional.conv2d(h, conv.weight * mask.to(h.device), conv.bias, padding=conv.padding))
        return self.out(h)


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(half, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(2, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_proj = nn.Linear(temb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(2, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t):
        f = nn.functional
        h = self.conv1(f.silu(self.norm1(x))) + self.time_proj(f.silu(t))[:, :, None, None]
        return self.skip(x) + self.conv2(f.silu(self.norm2(h)))


class DiffusionUNet(nn.Module):
    """GpuNet.Layers.DiffusionUNet as `train ddpm` builds it (width 16, unconditional)."""

    def __init__(self, width=16):
        super().__init__()
        w, temb = width, 4 * width
        self.width = width
        self.time_embed = nn.Sequential(nn.Linear(w, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in, self.res1, self.down1 = nn.Conv2d(1, w, 3, padding=1), ResBlock(w, w, temb), nn.Conv2d(w, w, 3, 2, 1)
        self.res2, self.down2, self.mid = ResBlock(w, 2 * w, temb), nn.Conv2d(2 * w, 2 * w, 3, 2, 1), ResBlock(2 * w, 2 * w, temb)
        self.up2, self.res3 = nn.Conv2d(2 * w, 2 * w, 3, padding=1), ResBlock(4 * w, 2 * w, temb)
        self.up1, self.res4 = nn.Conv2d(2 * w, w, 3, padding=1), ResBlock(2 * w, w, temb)
        self.norm_out, self.conv_out = nn.GroupNorm(2, w), nn.Conv2d(w, 1, 3, padding=1)

    def forward(self, x, t, y=None):
        f = nn.functional
        t = self.time_embed(timestep_embedding(t, self.width))
        skip1 = self.res1(self.conv_in(x), t)
        skip2 = self.res2(self.down1(skip1), t)
        h = self.mid(self.down2(skip2), t)
        h = self.res3(torch.cat([self.up2(f.interpolate(h, size=(14, 14))), skip2], 1), t)
        h = self.res4(torch.cat([self.up1(f.interpolate(h, size=(28, 28))), skip1], 1), t)
        return self.conv_out(f.silu(self.norm_out(h)))


class DiTBlock(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.modulation = nn.Linear(d, 6 * d)

    def forward(self, x, c):
        f = nn.functional
        s1, g1, a1, s2, g2, a2 = self.modulation(c).chunk(6, 1)
        h = f.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + g1[:, None]) + s1[:, None]
        x = x + a1[:, None] * self.attn(h, h, h, need_weights=False)[0]
        h = f.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + g2[:, None]) + s2[:, None]
        return x + a2[:, None] * self.mlp(h)


class DiT(nn.Module):
    """GpuNet.Layers.DiT as `train dit` builds it: adaLN-Zero, width 96, 4 blocks of 4 heads, 4x4 patches, 10 classes + none."""

    def __init__(self, d=96, heads=4, layers=4, patch=4, classes=10):
        super().__init__()
        self.patch, self.classes = patch, classes
        self.x_embedder = nn.Conv2d(1, d, patch, patch)
        self.pos_embed = nn.Parameter(torch.randn(1, (28 // patch) ** 2, d) * 0.02)
        self.t_embedder = nn.Sequential(nn.Linear(128, d), nn.SiLU(), nn.Linear(d, d))
        self.y_embedder = nn.Embedding(classes + 1, d)
        self.blocks = nn.ModuleList(DiTBlock(d, heads) for _ in range(layers))
        self.final_modulation, self.final_linear = nn.Linear(d, 2 * d), nn.Linear(d, patch * patch)

    def forward(self, x, t, y):
        f = nn.functional
        tokens = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = f.silu(self.t_embedder(timestep_embedding(t, 128)) + self.y_embedder(y))
        for blk in self.blocks:
            tokens = blk(tokens, c)
        shift, scale = self.final_modulation(c).chunk(2, 1)
        out = self.final_linear(f.layer_norm(tokens, tokens.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None])
        n, g, p = x.shape[0], 28 // self.patch, self.patch
        return torch.einsum("nhwpq->nhpwq", out.reshape(n, g, g, p, p)).reshape(n, 1, 28, 28)


def diffusion_step(model, x, optimizer, average, alpha_bars, labels=None, drop=0.1):
    """`train ddpm` / `train dit`'s step: random t, x_t = sqrt(a) x0 + sqrt(1 - a) eps, eps-MSE, Adam, then the weights'
    moving average (decay 0.999); the DiT's classes dropped to "none" with probability 0.1."""
    n = x.shape[0]
    t = torch.randint(0, alpha_bars.shape[0], (n,), device=x.device)
    a = alpha_bars[t][:, None, None, None]
    noise = torch.randn_like(x)
    xt = a.sqrt() * x + (1 - a).sqrt() * noise
    if labels is None:
        prediction = model(xt, t)
    else:
        y = torch.where(torch.rand(n, device=x.device) < drop, torch.full_like(labels, model.classes), labels)
        prediction = model(xt, t, y)
    loss = nn.functional.mse_loss(prediction, noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for p, q in zip(model.parameters(), average):
            q.mul_(0.999).add_(p, alpha=0.001)


def gan_step(model, x, opt_g, opt_d):
    """`train gan`'s step: the discriminator on real and detached generated images, then the generator through the frozen
    discriminator with the non-saturating loss."""
    bce = nn.functional.binary_cross_entropy_with_logits
    n = x.shape[0]
    ones, zeros = torch.ones(n, 1, device=x.device), torch.zeros(n, 1, device=x.device)
    fake = model.generate(torch.randn(n, model.latent, device=x.device))
    loss_d = bce(model.discriminator(x), ones) + bce(model.discriminator(fake.detach()), zeros)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    model.discriminator.requires_grad_(False)
    loss_g = bce(model.discriminator(fake), ones)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    model.discriminator.requires_grad_(True)


def negative_elbo(outputs, x):
    """`train vae`'s loss: binary cross-entropy of the logits summed over the pixels, plus KL, per image."""
    logits, mu, logvar = outputs
    bce = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    return bce + (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="image_cnn")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--time-steps", type=int, default=0,
                        help="instead of serving steps: time this many (after 10 warm-up steps) and print images/s")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = {"image_cnn": image_cnn, "vae": Vae, "gan": Dcgan, "vqvae": VqVae, "pixelcnn": CodePrior, "ddpm": DiffusionUNet, "dit": DiT}[args.model]()
    model = model.to(args.device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4 if args.model == "dit" else 1e-3)
    labels = None
    if args.model in ("ddpm", "dit"):
        x = (torch.rand(args.batch, 1, 28, 28) * 2 - 1).to(args.device)
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
        alpha_bars = torch.cumprod(1 - betas, 0).float().to(args.device)
        average = [p.detach().clone() for p in model.parameters()]
        if args.model == "dit":
            labels = torch.randint(0, 10, (args.batch,)).to(args.device)
    elif args.model == "pixelcnn":
        x = torch.randint(0, 128, (args.batch, 7, 7)).to(args.device)
        y = x.reshape(-1)
        loss_fn = lambda logits, codes: nn.functional.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, 128), codes)
    elif args.model == "vqvae":
        x = torch.rand(args.batch, 1, 28, 28).to(args.device)
    elif args.model == "gan":
        x = (torch.rand(args.batch, 1, 28, 28) * 2 - 1).to(args.device)
        opt_g = torch.optim.Adam(list(model.project.parameters()) + list(model.generator.parameters()), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    elif args.model == "vae":
        # Images in [0, 1], the VAE's own reconstruction target.
        x = torch.rand(args.batch, 1, 28, 28).to(args.device)
        y = x
        loss_fn = negative_elbo
    else:
        x = (torch.rand(args.batch, 1, 28, 28) * 2 - 1).to(args.device)
        y = torch.randint(0, 10, (args.batch,)).to(args.device)
        loss_fn = nn.CrossEntropyLoss()

    def step():
        if args.model == "gan":
            gan_step(model, x, opt_g, opt_d)
            return
        if args.model == "vqvae":
            vqvae_step(model, x, optimizer)
            return
        if args.model in ("ddpm", "dit"):
            diffusion_step(model, x, optimizer, average, alpha_bars, labels)
            return
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    if args.time_steps > 0:
        import time
        for _ in range(10):
            step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.time_steps):
            step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"pytorch {torch.__version__} {args.model} on {args.device}, batch {args.batch}: {args.time_steps} steps in {seconds:.3f} s, "
              f"{args.time_steps * args.batch / seconds:.0f} images/s, {seconds / args.time_steps * 1000:.3f} ms/step")
        return
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        step()
        print("ok", flush=True)


if __name__ == "__main__":
    main()

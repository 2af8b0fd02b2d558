#!/usr/bin/env python3
"""PyTorch's side of `gpunet run`'s training-step comparisons: builds the same model as GpuNet's case (the same layers, the
same batch of random images and labels), then serves steps over stdin so the bench can time PyTorch interleaved with GpuNet
on the same machine: it prints "ready" once built, and for every line "step" runs one training step (forward, the loss —
cross-entropy for image_cnn, the negative ELBO for vae —, backward, Adam step, zero_grad; for gan the discriminator's and
the generator's steps) and prints "ok". FP32, CPU threads as given (default: every core, as GpuNet's host code uses).

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
    model = {"image_cnn": image_cnn, "vae": Vae, "gan": Dcgan}[args.model]().to(args.device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if args.model == "gan":
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

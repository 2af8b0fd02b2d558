#!/usr/bin/env python3
"""Golden fixtures for training: PyTorch's initial weights, losses and gradients, written to Fixtures/<name>.safetensors
(weights as F32 under their state_dict names, expectations as F64 under "__name__"). Run by hand with Debian's
python3-torch (CI never needs PyTorch):

    /usr/bin/python3 tests/GpuNet.Layers.Tests/make_training_fixtures.py
"""
import os

import torch
import torch.nn as nn

from make_fixtures import write_safetensors

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


if __name__ == "__main__":
    dnn()

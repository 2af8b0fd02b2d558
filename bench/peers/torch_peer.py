#!/usr/bin/env python3
"""Times the same kernels and shapes as `gpunet run` with PyTorch and writes the same JSON schema
(bench/schema/results.schema.json), so `gpunet compare gpunet.json torch.json` gives the ratio per
kernel and shape. FP32 throughout: TF32 is switched off for matmul and cuDNN. Timing: CUDA events around
each call, warm-up first, median of the runs; inputs are random, never zeros.

    python3 bench/peers/torch_peer.py --preset large --json bench/results/torch-h100-2026-11-23.json
"""
import argparse
import datetime
import json
import math
import statistics

import torch
import torch.nn.functional as F


def timed(fn, runs, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times), max(times), len(times)


def r(*shape):
    return torch.rand(*shape, device="cuda") * 2 - 1


def cases(preset):
    """(kernel, shape label as gpunet prints it, flops, bytes, callable)."""
    tiers = {"small": (1 << 16, 64, 1024), "medium": (1 << 24, 4096, 4096), "large": (1 << 26, 16384, 4096)}
    n, rows, cols = tiers[preset]
    rc = rows * cols
    x = r(rows, cols)
    g, b = r(cols), r(cols)
    yield "softmax", f"{rows}x{cols}", 5 * rc, 12 * rc, lambda: torch.softmax(x, -1)
    yield "log_softmax", f"{rows}x{cols}", 5 * rc, 12 * rc, lambda: torch.log_softmax(x, -1)
    yield "layernorm", f"{rows}x{cols}", 8 * rc, 12 * rc + 8 * cols + 8 * rows, lambda: F.layer_norm(x, (cols,), g, b)
    a, c = r(n), r(n)
    yield "add", str(n), n, 12 * n, lambda: a + c
    yield "gelu_erf", str(n), 25 * n, 8 * n, lambda: F.gelu(a)
    mm = {"small": [(128, 128, 128), (97, 83, 71)], "medium": [(2048, 2048, 2048)], "large": [(4096, 4096, 4096), (8192, 8192, 8192)]}[preset]
    for m, nn, k in mm:
        A, B = r(m, k), r(k, nn)
        yield "matmul", f"{m}x{nn}x{k}", 2 * m * nn * k, 4 * (m * k + k * nn + m * nn), lambda A=A, B=B: A @ B
    convs = {"small": [("3x3", 1, 16, 16, 16, 3, 1, 1)], "medium": [("resnet50 conv3_x b8", 8, 128, 28, 128, 3, 1, 1)],
             "large": [(f"resnet50 {nm} b32", 32, ch, hw, ch, 3, 1, 1) for ch, hw, nm in [(64, 56, "conv2_x"), (128, 28, "conv3_x"), (256, 14, "conv4_x"), (512, 7, "conv5_x")]]}[preset]
    for label, nb, ch, hw, kout, kh, stride, pad in convs:
        X, W, Bs = r(nb, ch, hw, hw), r(kout, ch, kh, kh), r(kout)
        oh = (hw + 2 * pad - kh) // stride + 1
        flops = 2 * nb * kout * oh * oh * ch * kh * kh
        by = 4 * (nb * ch * hw * hw + kout * ch * kh * kh + nb * kout * oh * oh)
        yield "conv2d", f"{label} {nb}x{ch}x{hw}x{hw} k{kh} s{stride} → {kout}", flops, by, lambda X=X, W=W, Bs=Bs: F.conv2d(X, W, Bs, stride, pad)
    att = {"small": (1, 1, 64, 64), "medium": (4, 8, 1024, 64), "large": (8, 16, 2048, 64)}[preset]
    bb, h, sq, dh = att
    q, k_, v = r(bb, h, sq, dh), r(bb, h, sq, dh), r(bb, h, sq, dh)
    for causal in (False, True):
        flops = 4 * bb * h * sq * sq * dh * (0.5 if causal else 1)
        yield "attention", f"B{bb} H{h} N{sq} d{dh}{' causal' if causal else ''}", flops, 16 * bb * h * sq * dh + 4 * bb * h * sq, \
            lambda causal=causal: F.scaled_dot_product_attention(q, k_, v, is_causal=causal)
    t, e, kk = {"small": (64, 8, 2)}.get(preset, (16384, 64, 2))
    logits = r(t, e)
    yield "topk_gating", f"T{t} E{e} k{kk}", (kk + 3) * t * e, 4 * t * e + 8 * t * kk, lambda: torch.topk(torch.softmax(logits, -1), kk, -1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="large", choices=["small", "medium", "large"])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--json", required=True)
    args = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    props = torch.cuda.get_device_properties(0)
    results = []
    for kernel, shape, flops, nbytes, fn in cases(args.preset):
        median, lo, hi, runs = timed(fn, args.runs)
        results.append({
            "kernel": kernel, "implementation": "torch", "peer_of": None, "shape": shape, "flops": float(flops), "bytes": float(nbytes),
            "median_ms": median, "min_ms": lo, "max_ms": hi, "runs": runs, "input_sets": 1,
            "gflops": flops / (median * 1e6), "gbs": nbytes / (median * 1e6), "intensity": flops / nbytes if nbytes else None,
            "bound": "compute", "fraction_of_ceiling": None, "skipped": None,
        })
        print(f"{kernel:20s} {shape:40s} {median:10.4f} ms {flops / (median * 1e6):10.1f} GFLOP/s", flush=True)
    doc = {
        "schema": "gpunet-bench-results/1", "tool": "torch",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "preset": args.preset,
        "device": {"name": props.name, "id": "cuda:0", "kind": "cuda", "memory_bytes": props.total_memory,
                   "multiprocessors": props.multi_processor_count, "compute_capability": f"{props.major}.{props.minor}",
                   "driver_version": torch.version.cuda},
        "ceilings": None, "results": results,
    }
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

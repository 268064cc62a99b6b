#!/usr/bin/env python3
"""PyTorch CPU eager baseline for bench/kernels.bench.ts.

Times the same forward / backward work the valr kernels do, the way PyTorch
code would write it, and prints ONE JSON line of median seconds per kernel.
kernels.bench.ts spawns this with its own sizes and thread count; it also runs
standalone:  python3 bench/torch_alignment_reference.py [--quick]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_timing import median_seconds  # noqa: E402
import torch.nn.functional as F


def parse_hw(s):
    h, w = s.lower().split("x")
    return int(h), int(w)


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--S", type=int, default=64, help="segments (latent steps)")
    ap.add_argument("--grid", type=parse_hw, default=(4, 4), help="K slot grid gh x gw")
    ap.add_argument("--patch", type=parse_hw, default=(16, 16), help="teacher grid Gh x Gw")
    ap.add_argument("--D", type=int, default=1024, help="hidden size for tap/upsample")
    ap.add_argument("--loss-D", default="768,1152", help="teacher dims for the REPA loss")
    ap.add_argument("--B", type=int, default=8)
    ap.add_argument("--T", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0, help="0 = PyTorch's default")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=None, help="seconds per measurement")
    return ap.parse_args()




def main():
    a = parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    warmup, min_runs, max_runs = (1, 3, 20) if a.quick else (2, 5, 50)
    budget = a.budget if a.budget is not None else (0.3 if a.quick else 1.5)
    gen = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float32)

    def timeit(fn):
        return median_seconds(fn, warmup, min_runs, max_runs, budget)

    res = {}
    S, (gh, gw), (Gh, Gw), D = a.S, a.grid, a.patch, a.D

    # Upsample: channels-last storage, NCHW view, as a [S, K, D] tap would be fed.
    x = randn(S, gh, gw, D).requires_grad_(True)
    dy = randn(S, Gh, Gw, D).permute(0, 3, 1, 2)  # same strides as the forward output

    def up_fwd():
        return F.interpolate(x.permute(0, 3, 1, 2), size=(Gh, Gw), mode="bilinear", align_corners=False)

    y = up_fwd()
    res["upsample_fwd"] = timeit(up_fwd)
    # Backward alone: reuse one graph (upsample's backward saves no tensors).
    res["upsample_bwd"] = timeit(lambda: torch.autograd.grad(y, x, dy, retain_graph=True))
    res["upsample_fwdbwd"] = timeit(lambda: torch.autograd.grad(up_fwd(), x, dy))
    del y, dy

    # Tap: gather S*K distinct rows of the decoder hidden states; backward is the
    # index_add into a zero [B*T, D] gradient that autograd produces.
    B, T = a.B, a.T
    count = S * gh * gw
    hidden = randn(B, T, D).requires_grad_(True)
    rows = torch.randperm(B * T, generator=gen)[:count]
    g = randn(count, D)

    def tap_fwd():
        return hidden.view(-1, D).index_select(0, rows)

    out = tap_fwd()
    res["tap_fwd"] = timeit(tap_fwd)
    res["tap_bwd"] = timeit(lambda: torch.autograd.grad(out, hidden, g, retain_graph=True))
    res["tap_fwdbwd"] = timeit(lambda: torch.autograd.grad(tap_fwd(), hidden, g))
    del out, hidden, g

    # REPA cosine loss: the valr kernel returns loss and gradient in one call,
    # so fwd+bwd is the comparable number; fwd is reported for reference.
    P = Gh * Gw
    for Dm in [int(v) for v in a.loss_D.split(",") if v]:
        pred = randn(S, P, Dm).requires_grad_(True)
        target = randn(S, P, Dm)

        def loss_fwd():
            return -(F.cosine_similarity(pred, target, dim=-1).mean())

        res[f"repa_d{Dm}_fwd"] = timeit(loss_fwd)
        res[f"repa_d{Dm}_fwdbwd"] = timeit(lambda: torch.autograd.grad(loss_fwd(), pred))
        del pred, target

    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "sizes": {"S": S, "grid": [gh, gw], "patch": [Gh, Gw], "D": D, "loss_D": a.loss_D,
                  "B": B, "T": T},
        "median_s": res,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

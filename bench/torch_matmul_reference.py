#!/usr/bin/env python3
"""PyTorch CPU baseline for the valr float32 GEMM (valr::cpu::gemm).

Times torch.matmul(a, b, out=c) on float32 for a list of shapes and prints ONE JSON
line of median seconds per shape. A shape is [M, N, K, op]: op(A) is [M, K], op(B)
is [K, N], op is "NN", "TN" (A stored [K, M]), "NT" (B stored [N, K]) or "TT"; the
transposed operands are transposed views, so MKL sees the same layouts valr does.
Keys are "MxNxK_op", e.g. "512x512x512_NN".

  python3 bench/torch_matmul_reference.py --threads 2
  python3 bench/torch_matmul_reference.py --threads 2 --shapes '[[256, 4096, 1024, "NT"]]'
  python3 bench/torch_matmul_reference.py --device cuda   (times include a synchronize)
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_timing import median_seconds  # noqa: E402

# Square sizes, then the model's skinny shapes (M = batch * tokens) with the
# transposed cases of the backward pass: dA = dC @ B^T (NT), dB = A^T @ dC (TN).
DEFAULT_SHAPES = [
    [512, 512, 512, "NN"],
    [1024, 1024, 1024, "NN"],
    [2048, 2048, 2048, "NN"],
    [256, 4096, 1024, "NN"],
    [256, 4096, 1024, "TN"],
    [256, 4096, 1024, "NT"],
    [4096, 1024, 1024, "NN"],
    [4096, 1024, 1024, "TN"],
    [4096, 1024, 1024, "NT"],
]


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0, help="0 = PyTorch's default")
    ap.add_argument("--shapes", type=str, default=None,
                    help='JSON list of [M, N, K, op] (op: NN, TN, NT, TT); default: the built-in list')
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--budget", type=float, default=None, help="seconds per measurement")
    return ap.parse_args()




def shape_key(s):
    m, n, k, op = s
    return f"{m}x{n}x{k}_{op}"


def operands(s, gen, device="cpu"):
    m, n, k, op = s
    op = op.upper()
    a = torch.randn(k, m, generator=gen).t() if op[0] == "T" else torch.randn(m, k, generator=gen)
    b = torch.randn(n, k, generator=gen).t() if op[1] == "T" else torch.randn(k, n, generator=gen)
    # .to() keeps the transposed views' strides, so the library sees the same layouts
    return a.to(device), b.to(device), torch.empty(m, n, device=device)


def main():
    a = parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    shapes = json.loads(a.shapes) if a.shapes else DEFAULT_SHAPES
    shapes = [[int(s[0]), int(s[1]), int(s[2]), str(s[3]).upper() if len(s) > 3 else "NN"] for s in shapes]
    warmup, min_runs, max_runs = (1, 3, 20) if a.quick else (3, 7, 50)
    budget = a.budget if a.budget is not None else (0.3 if a.quick else 1.5)
    gen = torch.Generator().manual_seed(0)

    cuda = a.device == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    res = {}
    with torch.no_grad():
        for s in shapes:
            x, y, out = operands(s, gen, a.device)

            def step():
                torch.matmul(x, y, out=out)
                sync()

            res[shape_key(s)] = median_seconds(step, warmup, min_runs, max_runs, budget)
            del x, y, out

    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": a.device,
        "shapes": shapes,
        "median_s": res,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

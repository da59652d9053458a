"""Accuracy of pocaflow's CUDA float32 matmul precisions against float64, over the inner
dimension k: ``python bench/tf32x3_accuracy.py [--out FILE.json]`` on a machine with a GPU.

For m = n = 2048 and k = 256 .. 16384, with standard-normal and with uniform [0, 1) float32
inputs, prints the relative error of "highest" (strict float32), "high" (TF32) and "tf32x3"
against the float64 product of the same inputs (torch's float64 matmul on the GPU, an
independent reference): the largest error over the largest |C| (``max``) and the Frobenius
ratio (``fro``)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import pocaflow as pf

M = N = 2048
KS = [256, 1024, 4096, 8192, 16384]
MODES = ["highest", "high", "tf32x3"]


def errors(got: np.ndarray, want: torch.Tensor) -> dict[str, float]:
    diff = torch.from_numpy(got).to("cuda", torch.float64) - want
    return {
        "max": float(diff.abs().max() / want.abs().max()),
        "fro": float(torch.linalg.norm(diff) / torch.linalg.norm(want)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    rows = []
    heads = " ".join(f"{m + ' max':>13s} {m + ' fro':>13s}" for m in MODES)
    print(f"{'inputs':8s} {'k':>6s} {heads}")
    for inputs in ["normal", "uniform"]:
        for k in KS:
            draw = rng.standard_normal if inputs == "normal" else rng.random
            a = draw((M, k), dtype=np.float32)
            b = draw((k, N), dtype=np.float32)
            want = torch.from_numpy(a).cuda().double() @ torch.from_numpy(b).cuda().double()
            pa, pb = pf.asarray(a, device="cuda"), pf.asarray(b, device="cuda")
            row = {"inputs": inputs, "m": M, "n": N, "k": k}
            for mode in MODES:
                pf.set_matmul_precision(mode)
                row[mode] = errors((pa @ pb).numpy(), want)
            pf.set_matmul_precision("highest")
            rows.append(row)
            cells = " ".join(f"{row[m]['max']:13.2e} {row[m]['fro']:13.2e}" for m in MODES)
            print(f"{inputs:8s} {k:6d} {cells}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

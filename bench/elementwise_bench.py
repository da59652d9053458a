#!/usr/bin/env python3
"""Elementwise and reduction benchmark: pocaflow side by side with PyTorch on one CUDA device.

    python bench/elementwise_bench.py --json out.json

Rows (ratio oriented so that higher is better for pocaflow; GB/s counts every byte read and
written once):
- add, multiply, exp of 256 MiB contiguous float32 and bfloat16 arrays: bar >= 0.97x torch;
- broadcast add (8192, 8192) + (8192,) float32: bar >= 1.25x; (8192, 16384) + (16384,)
  bfloat16: bar >= 2.0x;
- sum over all elements, the last axis and axis 0 of (8192, 8192) float32 and bfloat16: bar
  >= 0.97x (bfloat16 over the last axis: >= 1.3x);
- max over the last axis of (8192, 8192) bfloat16: bar >= 1.6x;
- host cost per call of ``a + b`` on 64x64 float32 from Python: 10,000 calls, one sync, median
  of 5 blocks; bar: pocaflow <= 0.6x torch's time.

Method (METHOD.md): random non-zero inputs, correctness checked first, warm-up, each library's
CUDA events around the call, medians of repeats. The summary table is printed last.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _meta import Report, gpu_ms, host_us

import pocaflow as pf

REPORT = Report(width=48)
row = REPORT.row
MIB_256 = 256 << 20


def both(x: np.ndarray, bf16: bool):
    """`x` (float32, non-zero) on the GPU in both libraries, as bfloat16 when asked."""
    p, t = pf.asarray(x, device="cuda"), torch.as_tensor(x, device="cuda")
    if bf16:
        p, t = pf.astype(p, pf.bfloat16), t.to(torch.bfloat16)
    return p, t


def nonzero(rng: np.random.Generator, shape) -> np.ndarray:
    """Uniform on [0.5, 1.5) with random signs: no zeros, exp stays finite."""
    x = rng.random(shape, dtype=np.float32) + np.float32(0.5)
    return np.where(rng.random(shape) < 0.5, -x, x).astype(np.float32)


def gbs(nbytes: int, ms: float) -> float:
    return nbytes / (ms * 1e-3) / 1e9


def compare(name: str, nbytes: int, fp, ft, bar: float) -> None:
    ours, peer = gpu_ms(fp, pf.cuda.Event), gpu_ms(ft, torch.cuda.Event)
    row(name, "GB/s", gbs(nbytes, ours), gbs(nbytes, peer), peer / ours, bar)


def check(ours, theirs, rtol: float) -> None:
    """The pocaflow result against torch's, in float64 on the host."""
    a = np.asarray(pf.astype(ours, pf.float64).numpy())
    b = theirs.double().cpu().numpy()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def elementwise_case(rng: np.random.Generator, bf16: bool) -> None:
    name, size = ("bf16", 2) if bf16 else ("f32", 4)
    n = MIB_256 // size
    (pa, ta), (pb, tb) = both(nonzero(rng, n), bf16), both(nonzero(rng, n), bf16)
    rtol = 1e-2 if bf16 else 1e-6
    check(pf.add(pa, pb), ta + tb, rtol)
    check(pf.exp(pa), torch.exp(ta), rtol)
    cases = {
        f"add 256 MiB {name}": (lambda: pf.add(pa, pb), lambda: torch.add(ta, tb), 3),
        f"multiply 256 MiB {name}": (lambda: pf.multiply(pa, pb), lambda: torch.mul(ta, tb), 3),
        f"exp 256 MiB {name}": (lambda: pf.exp(pa), lambda: torch.exp(ta), 2),
    }
    for case, (fp, ft, arrays) in cases.items():
        compare(case, arrays * n * size, fp, ft, 0.97)


def bench_elementwise(rng: np.random.Generator) -> None:
    for bf16 in (False, True):
        elementwise_case(rng, bf16)


def broadcast_case(rng: np.random.Generator, r: int, c: int, bf16: bool, bar: float) -> None:
    size = 2 if bf16 else 4
    (pm, tm), (pv, tv) = both(nonzero(rng, (r, c)), bf16), both(nonzero(rng, c), bf16)
    check(pm + pv, tm + tv, 1e-2 if bf16 else 1e-6)
    name = f"broadcast add ({r},{c})+({c},) {'bf16' if bf16 else 'f32'}"
    compare(name, (2 * r * c + c) * size, lambda: pm + pv, lambda: tm + tv, bar)


def bench_broadcast(rng: np.random.Generator) -> None:
    broadcast_case(rng, 8192, 8192, False, 1.25)
    broadcast_case(rng, 8192, 16384, True, 2.0)


def reduction_case(rng: np.random.Generator, bf16: bool) -> None:
    shape = (8192, 8192)
    name, size = ("bf16", 2) if bf16 else ("f32", 4)
    px, tx = both(nonzero(rng, shape), bf16)
    rtol = 2e-2 if bf16 else 1e-4
    check(pf.sum(px, axis=-1), tx.sum(dim=-1), rtol)
    check(pf.sum(px, axis=0), tx.sum(dim=0), rtol)
    cases = {
        f"sum all (8192,8192) {name}": (lambda: pf.sum(px), lambda: tx.sum(), 0.97),
        f"sum axis -1 (8192,8192) {name}": (
            lambda: pf.sum(px, axis=-1),
            lambda: tx.sum(dim=-1),
            1.3 if bf16 else 0.97,
        ),
        f"sum axis 0 (8192,8192) {name}": (
            lambda: pf.sum(px, axis=0),
            lambda: tx.sum(dim=0),
            0.97,
        ),
    }
    if bf16:
        check(pf.max(px, axis=-1), tx.amax(dim=-1), 0.0)
        cases[f"max axis -1 (8192,8192) {name}"] = (
            lambda: pf.max(px, axis=-1),
            lambda: tx.amax(dim=-1),
            1.6,
        )
    for case, (fp, ft, bar) in cases.items():
        compare(case, shape[0] * shape[1] * size, fp, ft, bar)


def bench_reductions(rng: np.random.Generator) -> None:
    for bf16 in (False, True):
        reduction_case(rng, bf16)


def bench_host(rng: np.random.Generator) -> None:
    a, b = nonzero(rng, (64, 64)), nonzero(rng, (64, 64))
    pa, pb = pf.asarray(a, device="cuda"), pf.asarray(b, device="cuda")
    ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
    ours = host_us(lambda: pa + pb, pf.cuda.synchronize)
    peer = host_us(lambda: ta + tb, torch.cuda.synchronize)
    row("host: a + b 64x64 f32", "us", ours, peer, peer / ours, 1 / 0.6)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="elementwise-bench.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    REPORT.header()
    REPORT.run((bench_elementwise, bench_broadcast, bench_reductions, bench_host), rng)
    REPORT.finish(args.json, gpu=torch.cuda.get_device_name(0), torch=torch.__version__)


if __name__ == "__main__":
    main()

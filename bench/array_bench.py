#!/usr/bin/env python3
"""Array-core benchmark (issue 8's bars): pocaflow side by side with PyTorch on one CUDA device.

    python bench/array_bench.py --json out.json

Rows (ratio oriented so that higher is better for pocaflow):
- host cost per call of tiny CUDA ops from Python (slicing a view, ``astype`` of 64x64,
  ``asarray`` of a 64x64 NumPy array to the GPU): 10,000 calls, one sync, median of 5 blocks;
  bar: pocaflow <= 0.75x torch's time.
- gather/scatter with boolean masks and integer arrays of 2^26 float32 elements: GPU time by
  each library's CUDA events around the call (the mask cases include the device-to-host wait
  both libraries make for the count), median of repeats; bar: >= 1.0x torch.
- ``asarray`` of a 256 MiB float32 NumPy array on the CPU: zero-copy (time in microseconds,
  and shares memory).
- 2^28 float32 normals on CUDA: GB/s of output; bar: >= 0.9x ``torch.randn``.

Method (METHOD.md): random inputs (never zeros), warm-up, events for GPU time, medians.
The summary table is printed last.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _meta import Report, gpu_ms, host_us

import pocaflow as pf

REPORT = Report(width=44)
row = REPORT.row
ROWS = REPORT.rows


def bench_host(rng: np.random.Generator) -> None:
    a = rng.standard_normal((64, 64)).astype(np.float32)
    tp, tt = pf.asarray(a, device="cuda"), torch.as_tensor(a, device="cuda")
    psync, tsync = pf.cuda.synchronize, torch.cuda.synchronize
    cases = {
        "host: slice a view t[1:33, ::2]": (lambda: tp[1:33, ::2], lambda: tt[1:33, ::2]),
        "host: astype 64x64 f32->f16": (
            lambda: tp.astype(pf.float16),
            lambda: tt.to(torch.float16),
        ),
        "host: asarray 64x64 NumPy -> cuda": (
            lambda: pf.asarray(a, device="cuda"),
            lambda: torch.as_tensor(a, device="cuda"),
        ),
    }
    for name, (fp, ft) in cases.items():
        ours, peer = host_us(fp, psync), host_us(ft, tsync)
        row(name, "us", ours, peer, peer / ours, 1 / 0.75)


def bench_index(rng: np.random.Generator) -> None:
    n = 1 << 26
    x = rng.standard_normal(n).astype(np.float32)
    mask = rng.random(n) < 0.5
    idx = rng.integers(0, n, n, dtype=np.int64)
    vals = rng.standard_normal(n).astype(np.float32)
    xp, xt = pf.asarray(x, device="cuda"), torch.as_tensor(x, device="cuda")
    mp, mt = pf.asarray(mask, device="cuda"), torch.as_tensor(mask, device="cuda")
    ip, it = pf.asarray(idx, device="cuda"), torch.as_tensor(idx, device="cuda")
    vp, vt = pf.asarray(vals, device="cuda"), torch.as_tensor(vals, device="cuda")
    sel = int(mask.sum())
    vsp, vst = vp[:sel], vt[:sel]
    # Correctness first: the same answers as NumPy.
    np.testing.assert_array_equal(xp[mp].numpy(), x[mask])
    np.testing.assert_array_equal(xp[ip].numpy(), x[idx])

    def set_mask_scalar_pf():
        xp[mp] = 1.5

    def set_mask_scalar_t():
        xt[mt] = 1.5

    def set_mask_values_pf():
        xp[mp] = vsp

    def set_mask_values_t():
        xt[mt] = vst

    def set_int_pf():
        xp[ip] = vp

    def set_int_t():
        xt[it] = vt

    cases = {
        "gather x[mask] 2^26 f32": (lambda: xp[mp], lambda: xt[mt]),
        "gather x[int64 idx] 2^26 f32": (lambda: xp[ip], lambda: xt[it]),
        "scatter x[mask] = scalar": (set_mask_scalar_pf, set_mask_scalar_t),
        "scatter x[mask] = values": (set_mask_values_pf, set_mask_values_t),
        "scatter x[int64 idx] = values": (set_int_pf, set_int_t),
    }
    for name, (fp, ft) in cases.items():
        ours, peer = gpu_ms(fp, pf.cuda.Event, 15), gpu_ms(ft, torch.cuda.Event, 15)
        row(name, "ms", ours, peer, peer / ours, 1.0)


def bench_zero_copy(rng: np.random.Generator) -> None:
    big = rng.standard_normal(1 << 26).astype(np.float32)  # 256 MiB
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        t = pf.asarray(big)
        times.append((time.perf_counter() - t0) * 1e6)
    t[123] = 42.0
    shared = big[123] == 42.0
    t0 = time.perf_counter()
    big.copy()
    copy_us = (time.perf_counter() - t0) * 1e6
    ours = statistics.median(times)
    row("asarray 256 MiB f32 on CPU (zero-copy)", "us", ours, copy_us, copy_us / ours, None)
    ROWS[-1]["shares_memory"] = bool(shared)
    ROWS[-1]["ok"] = bool(shared) and ours < 100.0
    print(f"    shares memory: {shared}; NumPy copy for scale: {copy_us:.0f} us")


def bench_rng(rng: np.random.Generator) -> None:
    n = 1 << 28
    gen = pf.random.Generator(1234)
    ours = gpu_ms(lambda: gen.normal((n,), dtype=pf.float32, device="cuda"), pf.cuda.Event, 9)
    torch.manual_seed(1234)
    peer = gpu_ms(lambda: torch.randn(n, device="cuda"), torch.cuda.Event, 9)
    gbs = lambda ms: n * 4 / (ms * 1e-3) / 1e9  # noqa: E731
    row("normal 2^28 f32 on cuda", "GB/s", gbs(ours), gbs(peer), peer / ours, 0.9)
    z = gen.normal((1 << 20,), dtype=pf.float32, device="cuda").numpy().astype(np.float64)
    print(f"    sample mean {z.mean():+.4f}, std {z.std():.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="array-bench.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    REPORT.header()
    REPORT.run((bench_host, bench_index, bench_zero_copy, bench_rng), rng)
    REPORT.finish(args.json, gpu=torch.cuda.get_device_name(0), torch=torch.__version__)


if __name__ == "__main__":
    main()

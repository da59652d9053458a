#!/usr/bin/env python3
"""GPU benchmark: pocaflow side by side with PyTorch (and CuPy) on one CUDA device, in one run.

Run from the repository root on a machine with an NVIDIA GPU:

    python bench/gpu_bench.py                    # everything (a few minutes)
    python bench/gpu_bench.py --quick            # fewer repeats, no n=8192
    python bench/gpu_bench.py --only gemm,h2d    # a subset of the sections below
    python bench/gpu_bench.py --json out.json    # where the numbers go

Sections: gemm, batched, overhead, numpy_roundtrip, h2d, memory, accuracy.

Every comparison is a row (pocaflow value, peer value, ratio) whose ratio is oriented so that
higher is better for pocaflow (throughput: pocaflow / peer; time: peer / pocaflow), checked
against a bar. Method: random inputs, warm-up, CUDA events (each library's own) for GPU time,
host ``time.perf_counter`` for host-side and NumPy-in/NumPy-out costs, medians of interleaved
repeats, and several distinct input pairs in rotation whenever a pair would fit in L2.
The summary table is the last thing printed; all numbers also go to a JSON file.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import math
import operator
import os
import socket
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import pocaflow as pf

try:
    import cupy as cp
except Exception as _cupy_error:  # CuPy is only an informational peer
    cp = None
    CUPY_IMPORT_ERROR: str | None = repr(_cupy_error)
else:
    CUPY_IMPORT_ERROR = None

SECTIONS = ("gemm", "batched", "overhead", "numpy_roundtrip", "h2d", "memory", "accuracy")
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "gpu-latest.json"
L2_BYTES = 50 * 2**20  # H100 L2 cache
GEMM_TARGET_S = 0.03  # GPU time per timed repeat of a GEMM case
MIN_ITERS, MAX_ITERS = 3, 200  # calls per timed repeat (MAX keeps launches behind the filler)
OVERHEAD_CALLS = 10_000
MEMORY_ITERS = 10_000

PF_DTYPES = {"f32": None, "bf16": pf.bfloat16}  # None: keep the NumPy float32
TORCH_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}
ITEMSIZE = {"f32": 4, "bf16": 2}


# --------------------------------------------------------------------------------------------
# Result rows and the final table
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    section: str
    case: str
    unit: str
    pocaflow: float | str | None
    peer: float | str | None
    ratio: float | None  # higher is better for pocaflow
    bar: str  # e.g. ">= 0.98", or "info"
    status: str  # PASS, FAIL, info, SKIP, ERROR


ROWS: list[Row] = []


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    v = float(v)
    if v != v:
        return "nan"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.3e}"
    return f"{v:.4g}"


def add_row(row: Row) -> Row:
    ROWS.append(row)
    ratio = "-" if row.ratio is None else f"{row.ratio:.3f}"
    print(
        f"  [{row.section}] {row.case}: pocaflow {fmt(row.pocaflow)}  peer {fmt(row.peer)}"
        f"  {row.unit}  ratio {ratio}  (bar {row.bar})  {row.status}",
        flush=True,
    )
    return row


def ratio_row(section, case, unit, pf_value, peer_value, ratio, min_ratio=None) -> Row:
    """A comparison row; ``min_ratio=None`` makes it informational."""
    if min_ratio is None:
        bar, status = "info", "info"
    else:
        bar = f">= {min_ratio:.4g}"
        status = "PASS" if ratio is not None and ratio >= min_ratio else "FAIL"
    return add_row(Row(section, case, unit, pf_value, peer_value, ratio, bar, status))


def print_table(rows: list[Row]) -> None:
    header = ("section", "case", "unit", "pocaflow", "peer", "ratio", "bar", "result")
    body = [
        (
            r.section,
            r.case,
            r.unit,
            fmt(r.pocaflow),
            fmt(r.peer),
            "-" if r.ratio is None else f"{r.ratio:.3f}",
            r.bar,
            r.status,
        )
        for r in rows
    ]
    widths = [max(len(cell) for cell in col) for col in zip(header, *body)]
    line = "  ".join("-" * w for w in widths)
    print("\n" + line)
    for cells in [header, *body]:
        print("  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip())
    print(line)
    counts = {s: sum(r.status == s for r in rows) for s in ("PASS", "FAIL", "ERROR", "SKIP")}
    verdict = "ALL BARS MET" if counts["FAIL"] + counts["ERROR"] == 0 else "BARS MISSED"
    print(
        f"SUMMARY: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['ERROR']} ERROR, "
        f"{counts['SKIP']} SKIP, {len(rows) - sum(counts.values())} info -- {verdict}",
        flush=True,
    )


# --------------------------------------------------------------------------------------------
# Small helpers: synchronisation, memory, data
# --------------------------------------------------------------------------------------------


def cupy_sync() -> None:
    cp.cuda.Device().synchronize()


def sync_all() -> None:
    pf.cuda.synchronize()
    torch.cuda.synchronize()
    if cp is not None:
        cupy_sync()


def free_all() -> None:
    """Drop cached device memory of every library between sections."""
    gc.collect()
    sync_all()
    pf.cuda.empty_cache()
    torch.cuda.empty_cache()
    if cp is not None:
        cp.get_default_memory_pool().free_all_blocks()
        cp.get_default_pinned_memory_pool().free_all_blocks()


def rotated(names: list[str], r: int) -> list[str]:
    """Interleave contenders, changing who goes first on every repeat."""
    k = r % len(names)
    return names[k:] + names[:k]


def n_pairs(pair_bytes: int) -> int:
    """Distinct input pairs to rotate through so that the inputs don't just sit in L2."""
    return min(4, max(1, math.ceil(2 * L2_BYTES / pair_bytes)))


def rel_fro(x: np.ndarray, ref: np.ndarray) -> float:
    """Relative Frobenius difference ||x - ref|| / ||ref||, in float64."""
    ref64 = np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(np.asarray(x, dtype=np.float64) - ref64) / np.linalg.norm(ref64))


def to_pf(a: np.ndarray, dt: str):
    return pf.Tensor.from_array(a, device="cuda", dtype=PF_DTYPES[dt])


def to_torch(a: np.ndarray, dt: str) -> torch.Tensor:
    return torch.from_numpy(a).cuda().to(TORCH_DTYPES[dt])


def cycling(op: Callable, pairs: list) -> Callable[[], Any]:
    """A no-argument call of ``op(a, b)`` that walks through ``pairs`` round-robin."""
    it = itertools.cycle(pairs)

    def call():
        a, b = next(it)
        return op(a, b)

    return call


# --------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------


@dataclass
class GpuLib:
    """What timing one library on the GPU needs: its event class and a queue filler."""

    event: Any  # class with (enable_timing=True), .record(), .synchronize(), .elapsed_time()
    filler: Callable[[], None]


def gpu_seconds_per_call(fn: Callable[[], Any], iters: int, lib: GpuLib) -> float:
    """GPU time of one ``fn()`` from the library's CUDA events around ``iters`` calls.

    ``lib.filler()`` first queues a few ms of big GEMMs on the same stream, so the timed calls
    are all enqueued before the GPU reaches them: the host's launch cost stays hidden even for
    tiny kernels, and the events see back-to-back GPU work only.
    """
    lib.filler()
    start, end = lib.event(enable_timing=True), lib.event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e-3 / iters


def interleaved_gpu_times(fns: dict, libs: dict, repeats: int) -> tuple[dict, dict, int]:
    """Median seconds per call of each ``fns[name]``, repeats interleaved across libraries."""
    names = list(fns)
    for name in names:  # warm-up: kernel selection, allocator, lazy init
        fns[name]()
        fns[name]()
    sync_all()
    probe = min(gpu_seconds_per_call(fns[n], MIN_ITERS, libs[n]) for n in names)
    iters = int(min(MAX_ITERS, max(MIN_ITERS, math.ceil(GEMM_TARGET_S / probe))))
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in rotated(names, r):
            samples[n].append(gpu_seconds_per_call(fns[n], iters, libs[n]))
    return {n: statistics.median(s) for n, s in samples.items()}, samples, iters


def host_loop(op: Callable, a: Any, b: Any, calls: int, sync: Callable[[], None]):
    """(enqueue-only, loop + final sync) seconds per ``op(a, b)`` call, by host clock."""
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        op(a, b)
    t1 = time.perf_counter()
    sync()
    t2 = time.perf_counter()
    return (t1 - t0) / calls, (t2 - t0) / calls


def wall_seconds(fn: Callable, *args: Any) -> float:
    """Host time of one ``fn(*args)`` that returns host data (or synchronizes itself)."""
    sync_all()
    t0 = time.perf_counter()
    out = fn(*args)
    elapsed = time.perf_counter() - t0
    del out  # freeing a big result is not part of the measurement
    return elapsed


def interleaved_wall_times(fns: dict, args: tuple, repeats: int, warmup: int = 1):
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            wall_seconds(fns[n], *args)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for n in rotated(names, r):
            samples[n].append(wall_seconds(fns[n], *args))
    return {n: statistics.median(s) for n, s in samples.items()}, samples


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


class Ctx:
    def __init__(self, quick: bool):
        self.quick = quick

    def reps(self, default: int, quick: int) -> int:
        return quick if self.quick else default


def make_gpu_libs(rng: np.random.Generator) -> dict[str, GpuLib]:
    """Event classes plus fillers: three strict-f32 4096^3 GEMMs (~8 ms) per library."""
    a = rng.standard_normal((4096, 4096), dtype=np.float32)
    b = rng.standard_normal((4096, 4096), dtype=np.float32)
    pa, pb = to_pf(a, "f32"), to_pf(b, "f32")
    ta, tb = to_torch(a, "f32"), to_torch(b, "f32")

    def pf_filler():
        for _ in range(3):
            pf.matmul(pa, pb)

    def torch_filler():
        for _ in range(3):
            torch.matmul(ta, tb)

    return {
        "pocaflow": GpuLib(pf.cuda.Event, pf_filler),
        "torch": GpuLib(torch.cuda.Event, torch_filler),
    }


def gemm_cases(ctx: Ctx, section: str, cases: list, torch_op: Callable, seed: int) -> dict:
    """Shared by ``gemm`` and ``batched``: cases are (label, a_shape, b_shape, flops)."""
    rng = np.random.default_rng(seed)
    libs = make_gpu_libs(rng)
    repeats = ctx.reps(10, 4)
    raw = {}
    for label, a_shape, b_shape, flops in cases:
        f32_pair_bytes = 4 * (math.prod(a_shape) + math.prod(b_shape))
        host = [
            (
                rng.standard_normal(a_shape, dtype=np.float32),
                rng.standard_normal(b_shape, dtype=np.float32),
            )
            for _ in range(n_pairs(f32_pair_bytes // 2))  # as many as the smallest dtype needs
        ]
        for dt in ("f32", "bf16"):
            k = n_pairs(f32_pair_bytes // 4 * ITEMSIZE[dt])
            pf_pairs = [(to_pf(a, dt), to_pf(b, dt)) for a, b in host[:k]]
            t_pairs = [(to_torch(a, dt), to_torch(b, dt)) for a, b in host[:k]]
            sync_all()
            fns = {"pocaflow": cycling(pf.matmul, pf_pairs), "torch": cycling(torch_op, t_pairs)}
            med, samples, iters = interleaved_gpu_times(fns, libs, repeats)
            tf = {n: flops / s / 1e12 for n, s in med.items()}
            case = f"{dt} {label} vs torch"
            # a cheap sanity check that both compute the same thing (informational)
            c_pf = pf.matmul(*pf_pairs[0]).numpy()
            c_t = torch_op(*t_pairs[0]).float().cpu().numpy()
            diff = rel_fro(c_pf, c_t)
            print(
                f"  [{section}] {case}: {iters} calls/repeat, {k} input pair(s), "
                f"rel. diff pocaflow vs torch {diff:.2e}"
            )
            ratio_row(
                section,
                case,
                "TFLOP/s",
                tf["pocaflow"],
                tf["torch"],
                tf["pocaflow"] / tf["torch"],
                0.98,
            )
            raw[f"{dt} {label}"] = {
                "tflops": tf,
                "seconds_per_call_median": med,
                "seconds_per_call_samples": samples,
                "calls_per_repeat": iters,
                "input_pairs": k,
                "rel_diff_pocaflow_vs_torch": diff,
            }
            del fns, pf_pairs, t_pairs, c_pf, c_t
        del host
        free_all()
    return raw


def bench_gemm(ctx: Ctx) -> dict:
    sizes = [2048, 4096] + ([] if ctx.quick else [8192])
    cases = [(f"n={n}", (n, n), (n, n), 2.0 * n**3) for n in sizes]
    return gemm_cases(ctx, "gemm", cases, torch.matmul, seed=0)


def bench_batched(ctx: Ctx) -> dict:
    cases = [
        (f"{bsz}x{s}^3", (bsz, s, s), (bsz, s, s), 2.0 * bsz * s**3)
        for bsz, s in ((64, 512), (1024, 64))
    ]
    return gemm_cases(ctx, "batched", cases, torch.bmm, seed=1)


def bench_overhead(ctx: Ctx) -> dict:
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 64), dtype=np.float32)
    b = rng.standard_normal((64, 64), dtype=np.float32)
    contenders = {
        "pocaflow": (pf.matmul, to_pf(a, "f32"), to_pf(b, "f32"), pf.cuda.synchronize),
        "torch": (torch.matmul, to_torch(a, "f32"), to_torch(b, "f32"), torch.cuda.synchronize),
    }
    if cp is not None:
        contenders["cupy"] = (operator.matmul, cp.asarray(a), cp.asarray(b), cupy_sync)
    names = list(contenders)
    for op, x, y, sync in contenders.values():
        host_loop(op, x, y, 1000, sync)  # warm-up
    enqueue: dict[str, list[float]] = {n: [] for n in names}
    total: dict[str, list[float]] = {n: [] for n in names}
    for r in range(ctx.reps(5, 3)):
        for n in rotated(names, r):
            op, x, y, sync = contenders[n]
            e, t = host_loop(op, x, y, OVERHEAD_CALLS, sync)
            enqueue[n].append(e)
            total[n].append(t)
    us = {n: statistics.median(v) * 1e6 for n, v in total.items()}
    us_enqueue = {n: statistics.median(v) * 1e6 for n, v in enqueue.items()}
    print(
        "  [overhead] enqueue-only us/call (before the final sync): "
        + ", ".join(f"{n} {v:.2f}" for n, v in us_enqueue.items())
    )
    case = f"64x64 f32, {OVERHEAD_CALLS} calls + sync"
    ratio_row(
        "overhead",
        f"{case} vs torch",
        "us/call",
        us["pocaflow"],
        us["torch"],
        us["torch"] / us["pocaflow"],
        1 / 0.75,
    )
    if cp is not None:
        ratio_row(
            "overhead",
            f"{case} vs cupy",
            "us/call",
            us["pocaflow"],
            us["cupy"],
            us["cupy"] / us["pocaflow"],
        )
    else:
        add_row(
            Row(
                "overhead", f"{case} vs cupy", "us/call", us["pocaflow"], None, None, "info", "SKIP"
            )
        )
    return {
        "us_per_call": us,
        "us_per_call_enqueue_only": us_enqueue,
        "samples_s_total": total,
        "samples_s_enqueue": enqueue,
        "calls": OVERHEAD_CALLS,
    }


def pf_roundtrip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return pf.matmul(pf.Tensor.from_array(a, "cuda"), pf.Tensor.from_array(b, "cuda")).numpy()


def torch_roundtrip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (torch.from_numpy(a).cuda() @ torch.from_numpy(b).cuda()).cpu().numpy()


def cupy_roundtrip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cp.asnumpy(cp.asarray(a) @ cp.asarray(b))


def bench_numpy_roundtrip(ctx: Ctx) -> dict:
    rng = np.random.default_rng(3)
    fns = {"pocaflow": pf_roundtrip, "torch": torch_roundtrip}
    if cp is not None:
        fns["cupy"] = cupy_roundtrip
    raw = {}
    for i, n in enumerate([4096] + ([] if ctx.quick else [8192])):
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        if i == 0:  # verify once: pocaflow's result against torch's
            diff = rel_fro(pf_roundtrip(a, b), torch_roundtrip(a, b))
            ok = diff < 1e-5
            add_row(
                Row(
                    "numpy_roundtrip",
                    f"f32 n={n} rel. Frobenius diff vs torch",
                    "-",
                    diff,
                    None,
                    None,
                    "< 1e-05",
                    "PASS" if ok else "FAIL",
                )
            )
            raw["rel_diff_pocaflow_vs_torch"] = diff
        med, samples = interleaved_wall_times(fns, (a, b), ctx.reps(5, 3))
        ms = {k: v * 1e3 for k, v in med.items()}
        case = f"f32 n={n} NumPy->matmul->NumPy"
        ratio_row(
            "numpy_roundtrip",
            f"{case} vs torch",
            "ms",
            ms["pocaflow"],
            ms["torch"],
            ms["torch"] / ms["pocaflow"],
            2.5,
        )
        if cp is not None:
            ratio_row(
                "numpy_roundtrip",
                f"{case} vs cupy",
                "ms",
                ms["pocaflow"],
                ms["cupy"],
                ms["cupy"] / ms["pocaflow"],
                1.0,
            )
        else:
            add_row(
                Row(
                    "numpy_roundtrip",
                    f"{case} vs cupy",
                    "ms",
                    ms["pocaflow"],
                    None,
                    None,
                    ">= 1",
                    "SKIP",
                )
            )
        raw[f"n={n}"] = {"ms_median": ms, "seconds_samples": samples}
        del a, b
        free_all()
    return raw


def h2d_pf(a: np.ndarray):
    t = pf.Tensor.from_array(a, device="cuda")
    pf.cuda.synchronize()
    return t


def h2d_torch(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(a).cuda()
    torch.cuda.synchronize()
    return t


def bench_h2d(ctx: Ctx) -> dict:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((8192, 8192), dtype=np.float32)  # 256 MiB, pageable
    nbytes = a.nbytes
    repeats = ctx.reps(10, 5)
    med, h2d_samples = interleaved_wall_times(
        {"pocaflow": h2d_pf, "torch": h2d_torch}, (a,), repeats, warmup=2
    )
    h2d = {n: nbytes / s / 1e9 for n, s in med.items()}
    case = "256 MiB pageable f32"
    ratio_row(
        "h2d",
        f"H2D {case} vs torch",
        "GB/s",
        h2d["pocaflow"],
        h2d["torch"],
        h2d["pocaflow"] / h2d["torch"],
        2.5,
    )

    pt, tt = h2d_pf(a), h2d_torch(a)
    d2h_fns = {"pocaflow": lambda: pt.numpy(), "torch": lambda: tt.cpu().numpy()}
    med, d2h_samples = interleaved_wall_times(d2h_fns, (), repeats, warmup=2)
    d2h = {n: nbytes / s / 1e9 for n, s in med.items()}
    ratio_row(
        "h2d",
        f"D2H {case} vs torch",
        "GB/s",
        d2h["pocaflow"],
        d2h["torch"],
        d2h["pocaflow"] / d2h["torch"],
    )
    return {
        "bytes": nbytes,
        "h2d_gbps": h2d,
        "d2h_gbps": d2h,
        "h2d_seconds_samples": h2d_samples,
        "d2h_seconds_samples": d2h_samples,
    }


def bench_memory(ctx: Ctx) -> dict:
    rng = np.random.default_rng(5)
    a_np = rng.standard_normal((256, 256), dtype=np.float32)
    b_np = rng.standard_normal((256, 256), dtype=np.float32)

    a, b = to_pf(a_np, "f32"), to_pf(b_np, "f32")
    c = pf.matmul(a, b)  # warm-up iteration
    c = pf.matmul(a, b)  # first iteration
    pf.cuda.synchronize()
    first = dict(pf.cuda.memory_stats())
    for _ in range(MEMORY_ITERS - 1):
        c = pf.matmul(a, b)
    pf.cuda.synchronize()
    last = dict(pf.cuda.memory_stats())

    # the same loop in torch, for information
    ta, tb = to_torch(a_np, "f32"), to_torch(b_np, "f32")
    tc = torch.matmul(ta, tb)
    tc = torch.matmul(ta, tb)
    torch.cuda.synchronize()
    t_first = dict(torch.cuda.memory_stats())
    for _ in range(MEMORY_ITERS - 1):
        tc = torch.matmul(ta, tb)
    torch.cuda.synchronize()
    t_last = dict(torch.cuda.memory_stats())
    del c, tc

    def change(d0: dict, d1: dict, key: str) -> str:
        return f"{d0.get(key, '?')} -> {d1.get(key, '?')}"

    print(f"  [memory] pocaflow memory_stats after the 1st iteration: {first}")
    print(f"  [memory] pocaflow memory_stats after {MEMORY_ITERS} iterations: {last}")
    case = f"(256^2 f32, 1st iter -> {MEMORY_ITERS})"
    for pf_key, torch_key in (
        ("reserved_bytes", "reserved_bytes.all.current"),
        ("driver_allocations", "num_device_alloc"),
    ):
        ok = first[pf_key] == last[pf_key]
        add_row(
            Row(
                "memory",
                f"{pf_key} {case}",
                "-",
                change(first, last, pf_key),
                change(t_first, t_last, torch_key),
                None,
                "unchanged",
                "PASS" if ok else "FAIL",
            )
        )
    hits = last["cache_hits"] - first["cache_hits"]
    misses = last["cache_misses"] - first["cache_misses"]
    print(
        f"  [memory] pocaflow after the first iteration: {hits} cache hits, {misses} misses, "
        f"{last['driver_frees'] - first['driver_frees']} driver frees"
    )
    return {
        "pocaflow_first": first,
        "pocaflow_last": last,
        "iterations": MEMORY_ITERS,
        "torch_first": t_first,
        "torch_last": t_last,
    }


def bench_accuracy(ctx: Ctx) -> dict:
    n = 4096
    rng = np.random.default_rng(6)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c_pf = pf.matmul(to_pf(a, "f32"), to_pf(b, "f32")).numpy()
    ta, tb = to_torch(a, "f32"), to_torch(b, "f32")
    ref = torch.matmul(ta.double(), tb.double())
    ref_norm = torch.linalg.norm(ref)
    err_pf = float(torch.linalg.norm(torch.from_numpy(c_pf).cuda().double() - ref) / ref_norm)
    err_torch = float(torch.linalg.norm(torch.matmul(ta, tb).double() - ref) / ref_norm)
    print(
        f"  [accuracy] strict f32 n={n}, rel. Frobenius error vs float64: "
        f"pocaflow {err_pf:.3e}, torch {err_torch:.3e}"
    )
    ratio_row(
        "accuracy",
        f"strict f32 n={n} rel. error vs f64 (torch)",
        "-",
        err_pf,
        err_torch,
        err_torch / err_pf if err_pf > 0 else None,
    )
    return {"n": n, "rel_err_pocaflow": err_pf, "rel_err_torch": err_torch}


BENCHES: dict[str, Callable[[Ctx], dict]] = {
    "gemm": bench_gemm,
    "batched": bench_batched,
    "overhead": bench_overhead,
    "numpy_roundtrip": bench_numpy_roundtrip,
    "h2d": bench_h2d,
    "memory": bench_memory,
    "accuracy": bench_accuracy,
}


# --------------------------------------------------------------------------------------------
# Setup, metadata, main
# --------------------------------------------------------------------------------------------


def configure_precision() -> dict:
    """Strict float32 everywhere: no TF32 in torch, "highest" in pocaflow."""
    torch.manual_seed(0)
    state: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch >= 2.9 nags about the legacy TF32 flags
        try:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.set_float32_matmul_precision("highest")
            state["torch_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
            state["torch_float32_matmul_precision"] = torch.get_float32_matmul_precision()
        except Exception as e:  # should the legacy flags ever be removed: the new API
            state["legacy_tf32_api_error"] = repr(e)
            torch.backends.cuda.matmul.fp32_precision = "ieee"
            state["torch_matmul_fp32_precision"] = torch.backends.cuda.matmul.fp32_precision
    pf.set_matmul_precision("highest")
    state["pocaflow_matmul_precision"] = "highest"
    return state


def collect_meta() -> dict:
    meta: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cupy": getattr(cp, "__version__", None),
        "cupy_import_error": CUPY_IMPORT_ERROR,
        "pocaflow": getattr(pf, "__version__", None),
        "env": {k: os.environ.get(k) for k in ("CUPY_TF32", "NVIDIA_TF32_OVERRIDE")},
    }
    probes = {
        "device_name": torch.cuda.get_device_name,
        "pocaflow_cuda_available": pf.cuda.is_available,
        "pocaflow_device_count": pf.cuda.device_count,
    }
    for key, probe in probes.items():
        try:
            meta[key] = probe()
        except Exception as e:
            meta[key] = f"error: {e!r}"
    show = getattr(pf, "show_config", None)
    if callable(show):
        try:
            meta["pocaflow_config"] = show()  # prints; keep the returned dict
        except Exception as e:
            meta["pocaflow_config"] = f"error: {e!r}"
    return meta


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def only(value: str) -> list[str]:
        names = [s.strip() for s in value.split(",") if s.strip()]
        unknown = [s for s in names if s not in SECTIONS]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}"
            )
        return names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, skip n=8192")
    p.add_argument(
        "--only",
        type=only,
        default=list(SECTIONS),
        help=f"comma-separated subset of: {','.join(SECTIONS)}",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write the numbers (default: bench/results/gpu-latest.json)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ctx = Ctx(args.quick)
    t_start = time.perf_counter()
    report: dict[str, Any] = {"args": {"quick": args.quick, "only": args.only}, "sections": {}}

    try:
        report["meta"] = collect_meta()
        report["meta"]["precision"] = configure_precision()
        print(json.dumps(report["meta"], indent=2, default=str), flush=True)
    except Exception:
        traceback.print_exc()
        add_row(Row("setup", "metadata / precision", "-", None, None, None, "-", "ERROR"))

    for name in [s for s in SECTIONS if s in args.only]:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            report["sections"][name] = BENCHES[name](ctx)
        except Exception as e:
            traceback.print_exc()
            sys.stderr.flush()
            report["sections"][name] = {"error": traceback.format_exc()}
            add_row(
                Row(name, f"section raised {type(e).__name__}", "-", None, None, None, "-", "ERROR")
            )
        try:
            free_all()
        except Exception:
            traceback.print_exc()
        print(f"  ({name}: {time.perf_counter() - t0:.1f} s)", flush=True)

    report["rows"] = [asdict(r) for r in ROWS]
    report["summary"] = {
        s: sum(r.status == s for r in ROWS) for s in ("PASS", "FAIL", "ERROR", "SKIP", "info")
    }
    report["total_seconds"] = time.perf_counter() - t_start
    try:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}  (total {report['total_seconds']:.1f} s)")
    except Exception:
        traceback.print_exc()
    sys.stderr.flush()
    print_table(ROWS)
    return 0 if report["summary"]["FAIL"] + report["summary"]["ERROR"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

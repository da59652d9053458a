"""latency: the host's cost of one small call from Python, in microseconds per call by the wall
clock around a block of calls and one final synchronization (so on CUDA: launch cost, not GPU
time). Cases on ``n x n`` float32 (default n = 64): ``matmul``, ``matmul(out=)``, ``a + b``, a
sliced view, ``astype`` to float16 and ``asarray`` of a NumPy array onto the device. Peers:
NumPy and torch on the CPU; torch and CuPy on CUDA. Bars (CUDA, n = 64, against torch's
time): matmul, slice, astype and asarray <= 0.75x, ``a + b`` <= 0.6x. On CUDA also the
caching allocator's steady state: over a loop of 256 x 256 products, no new driver
allocation and no growth of the reserved bytes after the first iteration."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._case import Case, Context, measure
from .._peers import Peer, Unsupported
from .._report import check_row
from .._timing import Plan

NAME = "latency"


def plan(ctx: Context) -> Plan:
    """Blocks of up to 10,000 calls after 200 warm-up calls: 3 blocks of 20 ms with
    ``--quick``, else 5 of 50 ms."""
    if ctx.quick:
        return Plan(repeats=3, target_s=0.02, max_calls=10_000, warmup=200)
    return Plan(repeats=5, target_s=0.05, max_calls=10_000, warmup=200)


def _ops(peer: Peer, host: np.ndarray, device: str) -> dict[str, Any]:
    """The calls of this library, by case name (missing: the library has no such call)."""
    a, b = peer.put(host, "f32"), peer.put(host[::-1].copy(), "f32")
    name, m = peer.name, peer.module
    if name == "pocaflow":
        out = m.matmul(a, b)
        return {
            "matmul": lambda: m.matmul(a, b),
            "matmul out=": lambda: m.matmul(a, b, out=out),
            "a + b": lambda: a + b,
            "slice [1:33, ::2]": lambda: a[1:33, ::2],
            "astype f32->f16": lambda: a.astype(m.float16),
            "asarray NumPy->device": lambda: m.asarray(host, device=device),
        }
    if name == "torch":
        out = m.matmul(a, b)
        return {
            "matmul": lambda: m.matmul(a, b),
            "matmul out=": lambda: m.matmul(a, b, out=out),
            "a + b": lambda: a + b,
            "slice [1:33, ::2]": lambda: a[1:33, ::2],
            "astype f32->f16": lambda: a.to(m.float16),
            "asarray NumPy->device": lambda: m.as_tensor(host, device=device),
        }
    out = m.matmul(a, b)  # NumPy or CuPy
    return {
        "matmul": lambda: m.matmul(a, b),
        "matmul out=": lambda: m.matmul(a, b, out=out),
        "a + b": lambda: a + b,
        "slice [1:33, ::2]": lambda: a[1:33, ::2],
        "astype f32->f16": lambda: a.astype(np.float16),
        "asarray NumPy->device": lambda: m.asarray(host),
    }


_BARS = {
    "matmul": 1 / 0.75,
    "a + b": 1 / 0.6,
    "slice [1:33, ::2]": 1 / 0.75,
    "astype f32->f16": 1 / 0.75,
    "asarray NumPy->device": 1 / 0.75,
}


def case(ctx: Context, n: int, op: str) -> dict:
    """One call's host cost in every library that has it."""
    host = ctx.nonzero((n, n))

    def build(peer: Peer):
        ops = _ops(peer, host, ctx.device)
        if op not in ops:
            raise Unsupported(f"{peer.name} has no {op}")
        return ops[op]

    barred = ctx.device == "cuda" and n == 64 and op in _BARS
    return measure(
        ctx,
        NAME,
        f"{op} {n}x{n} f32",
        {name: build for name in ctx.peers if name != "scipy"},
        "us",
        plan(ctx),
        clock="host",
        bars={"torch": _BARS[op]} if barred else None,
        x=n,
        series=op,
    )


def allocator(ctx: Context) -> list[dict]:
    """pocaflow's allocator counters after the first and the last of many 256 x 256 products
    (torch's, for information, in the detail)."""
    pf = ctx.peers["pocaflow"].module
    iters = 2_000 if ctx.quick else 10_000
    a, b = (pf.asarray(ctx.normal((256, 256)), device="cuda") for _ in range(2))
    c = pf.matmul(a, b)
    c = pf.matmul(a, b)
    pf.cuda.synchronize()
    first = dict(pf.cuda.memory_stats())
    for _ in range(iters - 1):
        c = pf.matmul(a, b)
    pf.cuda.synchronize()
    last = dict(pf.cuda.memory_stats())
    del c
    return [
        check_row(
            NAME,
            f"allocator {key} unchanged (256^2 f32, iteration 1 -> {iters})",
            f"{first[key]} -> {last[key]}",
            first[key] == last[key],
            first=first,
            last=last,
        )
        for key in ("reserved_bytes", "driver_allocations")
    ]


def cases(ctx: Context) -> list[Case]:
    """Every call at every size (default n = 64), then on CUDA the allocator check."""
    out = [
        Case(NAME, f"{op} {n}x{n}", lambda n=n, op=op: [case(ctx, n, op)])
        for n in ctx.pick_sizes([64], [64])
        for op in (
            "matmul",
            "matmul out=",
            "a + b",
            "slice [1:33, ::2]",
            "astype f32->f16",
            "asarray NumPy->device",
        )
    ]
    if ctx.device == "cuda":
        out.append(Case(NAME, "allocator steady state", lambda: allocator(ctx)))
    return out

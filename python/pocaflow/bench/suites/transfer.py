"""transfer: moving NumPy data in and out. On CUDA: host-to-device (from pageable NumPy
memory) and device-to-host GB/s of float32 arrays against their size in MiB (default 16 and
256, with ``--quick``; 1 to 1024 otherwise), by the wall clock around each copy and its
synchronization; peers torch (``from_numpy(a).cuda()``, ``.cpu().numpy()``) and CuPy
(``asarray``, ``asnumpy``); bar: host-to-device of 256 MiB >= 2.5x torch. On the CPU: the
NumPy-in/NumPy-out round trip ``pf.asarray(a).numpy()`` (in: zero-copy; out: a new array) in
microseconds against NumPy's copy ``np.array(a)`` and torch's ``from_numpy(a).numpy()`` (no
copy either way), and a check that ``pf.asarray`` of 256 MiB shares the NumPy memory and
takes under 100 us."""

from __future__ import annotations

import time

import numpy as np

from .._case import Case, Context, measure
from .._peers import Peer
from .._report import check_row
from .._timing import Plan

NAME = "transfer"
_MIB = 1 << 20
#: Elements of each copy checked (a slice, taken on the device).
_CHECK = 1 << 16


def plan(ctx: Context) -> Plan:
    """One copy per sample after two warm-up copies: 5 samples with ``--quick``, else 10."""
    return Plan(repeats=5 if ctx.quick else 10, target_s=0.0)


def _h2d(peer: Peer, host: np.ndarray):
    m = peer.module
    if peer.name == "pocaflow":
        return lambda: (m.Tensor.from_array(host, device="cuda"), peer.sync())[0]
    if peer.name == "torch":
        return lambda: (m.from_numpy(host).cuda(), peer.sync())[0]
    return lambda: (m.asarray(host), peer.sync())[0]


def _d2h(peer: Peer, host: np.ndarray):
    x = peer.put(host, "f32")
    if peer.name == "pocaflow":
        return lambda: x.numpy()
    if peer.name == "torch":
        return lambda: x.cpu().numpy()
    return lambda: peer.module.asnumpy(x)


def cuda_case(ctx: Context, mib: int, way: str) -> dict:
    """One size one way: GB/s of every library."""
    host = ctx.shared(("transfer", mib), lambda: ctx.normal(mib * _MIB // 4))
    make = _h2d if way == "H2D" else _d2h
    return measure(
        ctx,
        NAME,
        f"{way} {mib} MiB f32 pageable",
        {name: (lambda p, make=make: make(p, host)) for name in ctx.peers},
        "GB/s",
        plan(ctx),
        work=host.nbytes,
        clock="host",
        bars={"torch": 2.5} if way == "H2D" and mib == 256 else None,
        reference=host[:_CHECK],
        view=lambda y: y[:_CHECK],
        x=mib,
        series=way,
        tol=0.0,
    )


def _round_trip(peer: Peer, host: np.ndarray):
    m = peer.module
    if peer.name == "pocaflow":
        return lambda: m.asarray(host).numpy()
    if peer.name == "torch":
        return lambda: m.from_numpy(host).numpy()
    return lambda: np.array(host)


def cpu_case(ctx: Context, mib: int) -> dict:
    """One size: microseconds per round trip in every library."""
    host = ctx.normal(mib * _MIB // 4)
    return measure(
        ctx,
        NAME,
        f"round trip NumPy->NumPy {mib} MiB f32",
        {name: (lambda p: _round_trip(p, host)) for name in ctx.peers if name != "scipy"},
        "us",
        Plan(repeats=3 if ctx.quick else 7, target_s=0.005, max_calls=1000),
        reference=host[:_CHECK],
        view=lambda y: y[:_CHECK],
        x=mib,
        series="round trip",
        tol=0.0,
    )


def zero_copy(ctx: Context) -> list[dict]:
    """``pf.asarray`` of 256 MiB shares the NumPy memory, in under 100 us (a copy's time in
    the detail, for scale)."""
    pf = ctx.peers["pocaflow"].module
    host = ctx.normal(256 * _MIB // 4)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        t = pf.asarray(host)
        times.append((time.perf_counter() - start) * 1e6)
    t[123] = 42.0
    shared = bool(host[123] == 42.0)
    start = time.perf_counter()
    host.copy()
    copy_us = (time.perf_counter() - start) * 1e6
    us = float(np.median(times))
    detail = f"asarray {us:.1f} us, shares memory {shared}; a NumPy copy takes {copy_us:.0f} us"
    return [check_row(NAME, "asarray 256 MiB f32 zero-copy", detail, shared and us < 100.0)]


def cases(ctx: Context) -> list[Case]:
    """Every size (MiB) each way on CUDA; the round trips and the zero-copy check on the
    CPU."""
    sizes = ctx.pick_sizes([1, 256], [16, 256] if ctx.quick else [1, 16, 256, 1024])
    if ctx.device == "cpu":
        out = [Case(NAME, f"round trip {s} MiB", lambda s=s: [cpu_case(ctx, s)]) for s in sizes]
        return [*out, Case(NAME, "zero-copy 256 MiB", lambda: zero_copy(ctx))]
    return [
        Case(NAME, f"{way} {s} MiB", lambda s=s, way=way: [cuda_case(ctx, s, way)])
        for s in sizes
        for way in ("H2D", "D2H")
    ]

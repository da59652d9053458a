"""transfer: moving NumPy data in and out. On CUDA: host-to-device (from pageable NumPy
memory) and device-to-host GB/s of float32 arrays against their size in MiB (default 16 and
256, with ``--quick``; 1 to 1024 otherwise), by the wall clock around each copy and its
synchronization; peers torch (``from_numpy(a).cuda()``, ``.cpu().numpy()``) and CuPy
(``asarray``, ``asnumpy``); bar: host-to-device of 256 MiB >= 2.5x torch. On the CPU: the
NumPy-in/NumPy-out round trip ``pf.asarray(a).numpy()`` (in: zero-copy; out: a new array) in
microseconds against NumPy's copy ``np.array(a)`` and torch's ``from_numpy(a).numpy()`` (no
copy either way), and a check that ``pf.asarray`` of 256 MiB shares the NumPy memory and
takes under 100 us. Both devices: DLPack exchanges without copies, checked for the same
pointer, timed by the host clock (median of 200 calls after 20): with NumPy on the CPU, with
PyTorch and CuPy on CUDA, at 1 GiB; bar: the round trip ``pf.from_dlpack(torch.from_dlpack(x))``
under 50 us (the issue's constant-time bar)."""

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


#: Host microseconds a DLPack round trip with PyTorch may take (the bar).
_DLPACK_BAR_US = 50.0


def _host_us(fn) -> float:
    """Median host microseconds of ``fn`` over 200 calls after 20 warm-up calls."""
    for _ in range(20):
        fn()
    times = []
    for _ in range(200):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times)) / 1e3


def _address(x) -> int:
    """The data pointer of a pocaflow, PyTorch, CuPy or NumPy array."""
    if hasattr(x, "data_ptr"):
        return x.data_ptr()
    if hasattr(x, "__cuda_array_interface__"):
        return x.__cuda_array_interface__["data"][0]
    return np.asarray(x).__array_interface__["data"][0]


def dlpack(ctx: Context) -> list[dict]:
    """Zero-copy DLPack exchanges of 1 GiB of float32 (256 MiB with ``--quick`` on the CPU)
    with every peer that speaks it: host time per call and the same pointer each way."""
    pf = ctx.peers["pocaflow"].module
    mib = 256 if ctx.quick and ctx.device == "cpu" else 1024
    mine = pf.asarray(ctx.normal(mib * _MIB // 4), device=ctx.device)
    ctx.peers["pocaflow"].sync()
    exchanges = {}
    if ctx.device == "cpu":
        theirs = ctx.normal(mib * _MIB // 4)
        exchanges["numpy"] = (np.from_dlpack, theirs)
    else:
        if "torch" in ctx.peers:
            torch = ctx.peers["torch"].module
            exchanges["torch"] = (torch.from_dlpack, torch.from_numpy(ctx.normal(256)).cuda())
        if "cupy" in ctx.peers:
            cupy = ctx.peers["cupy"].module
            exchanges["cupy"] = (cupy.from_dlpack, cupy.asarray(ctx.normal(256)))
    rows = []
    for name, (import_, theirs) in exchanges.items():
        out_us, in_us = (
            _host_us(lambda i=import_: i(mine)),
            _host_us(lambda t=theirs: pf.from_dlpack(t)),
        )
        trip_us = _host_us(lambda i=import_: pf.from_dlpack(i(mine)))
        same = _address(import_(mine)) == _address(mine)
        same = same and _address(pf.from_dlpack(theirs)) == _address(theirs)
        same = same and _address(pf.from_dlpack(import_(mine))) == _address(mine)
        detail = (
            f"{name}.from_dlpack(pf) {out_us:.1f} us, pf.from_dlpack({name}) {in_us:.1f} us, "
            f"round trip {trip_us:.1f} us; same pointer {same}"
        )
        ok = same and (trip_us < _DLPACK_BAR_US or name != "torch")
        rows.append(check_row(NAME, f"DLPack {name} <-> pocaflow {mib} MiB f32", detail, ok))
    return rows


def cases(ctx: Context) -> list[Case]:
    """Every size (MiB) each way on CUDA; the round trips and the zero-copy check on the
    CPU."""
    sizes = ctx.pick_sizes([1, 256], [16, 256] if ctx.quick else [1, 16, 256, 1024])
    if ctx.device == "cpu":
        out = [Case(NAME, f"round trip {s} MiB", lambda s=s: [cpu_case(ctx, s)]) for s in sizes]
        return [
            *out,
            Case(NAME, "zero-copy 256 MiB", lambda: zero_copy(ctx)),
            Case(NAME, "DLPack", lambda: dlpack(ctx)),
        ]
    return [
        *(
            Case(NAME, f"{way} {s} MiB", lambda s=s, way=way: [cuda_case(ctx, s, way)])
            for s in sizes
            for way in ("H2D", "D2H")
        ),
        Case(NAME, "DLPack", lambda: dlpack(ctx)),
    ]

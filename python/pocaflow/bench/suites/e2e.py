"""e2e: NumPy in, one operation, NumPy out, timed by the wall clock: ``matmul`` and ``add`` of
two ``n x n`` float32 arrays (default n = 4096 on CUDA, 1024 on the CPU with ``--quick``), each
library converting the inputs, computing and handing back a NumPy array. Peers on CUDA: torch
and CuPy; on the CPU: NumPy (``a @ b`` directly), SciPy's ``gemm`` and torch. Bars (CUDA, matmul
n = 4096): >= 2.5x torch and >= 1.0x CuPy, and pocaflow's product within 1e-5 of torch's."""

from __future__ import annotations

import numpy as np

from .._case import Case, Context, measure, rel_error
from .._peers import Peer, Unsupported
from .._report import check_row
from .._timing import BLAS_SETTLE_S, quick_or_full
from ._matmul import reference

NAME = "e2e"


def _matmul(peer: Peer, a: np.ndarray, b: np.ndarray):
    m, cuda = peer.module, peer.device == "cuda"
    if peer.name == "pocaflow":
        if cuda:
            return lambda: m.matmul(
                m.Tensor.from_array(a, "cuda"), m.Tensor.from_array(b, "cuda")
            ).numpy()
        return lambda: m.matmul(m.asarray(a), m.asarray(b)).numpy()
    if peer.name == "torch":
        if cuda:
            return lambda: (m.from_numpy(a).cuda() @ m.from_numpy(b).cuda()).cpu().numpy()
        return lambda: (m.from_numpy(a) @ m.from_numpy(b)).numpy()
    if peer.name == "cupy":
        return lambda: m.asnumpy(m.asarray(a) @ m.asarray(b))
    if peer.name == "scipy":
        gemm = m.linalg.blas.get_blas_funcs("gemm", (a, b))
        return lambda: gemm(1.0, b.T, a.T).T
    return lambda: a @ b


def _add(peer: Peer, a: np.ndarray, b: np.ndarray):
    m, cuda = peer.module, peer.device == "cuda"
    if peer.name == "pocaflow":
        device = "cuda" if cuda else "cpu"
        return lambda: m.add(m.asarray(a, device=device), m.asarray(b, device=device)).numpy()
    if peer.name == "torch":
        if cuda:
            return lambda: (m.from_numpy(a).cuda() + m.from_numpy(b).cuda()).cpu().numpy()
        return lambda: (m.from_numpy(a) + m.from_numpy(b)).numpy()
    if peer.name == "cupy":
        return lambda: m.asnumpy(m.asarray(a) + m.asarray(b))
    if peer.name == "scipy":
        raise Unsupported("SciPy adds with NumPy")
    return lambda: a + b


def case(ctx: Context, n: int, op: str) -> list[dict]:
    """One op at one size: the row, and on CUDA for the bar's matmul the agreement check."""
    a, b = ctx.normal((n, n)), ctx.normal((n, n))
    make = _matmul if op == "matmul" else _add
    if op == "matmul":
        ref, view = reference(a, b)
    else:
        ref, view = a[:256].astype(np.float64) + b[:256], (lambda y: y[:256])
    barred = ctx.device == "cuda" and op == "matmul" and n == 4096
    settle = BLAS_SETTLE_S if op == "matmul" and ctx.device == "cpu" else 0.0
    rows = [
        measure(
            ctx,
            NAME,
            f"{op} {n}x{n} f32 NumPy->NumPy",
            {name: (lambda p: make(p, a, b)) for name in ctx.peers},
            "ms",
            quick_or_full(ctx.quick, max_calls=50, warmup=1, settle_s=settle),
            clock="host",
            bars={"torch": 2.5, "cupy": 1.0} if barred else None,
            reference=ref,
            tol=1e-4,
            view=view,
            x=n,
            series=op,
        )
    ]
    if barred and "torch" in ctx.peers:
        diff = rel_error(make(ctx.peers["pocaflow"], a, b)(), make(ctx.peers["torch"], a, b)())
        rows.append(
            check_row(NAME, f"matmul {n}x{n} f32 vs torch", f"rel. diff {diff:.2e}", diff < 1e-5)
        )
    return rows


def cases(ctx: Context) -> list[Case]:
    """matmul and add at every size."""
    quick = ctx.quick
    sizes = ctx.pick_sizes(
        [1024] if quick else [256, 1024, 2048], [4096] if quick else [4096, 8192]
    )
    return [
        Case(NAME, f"{op} n={n}", lambda n=n, op=op: case(ctx, n, op))
        for op in ("matmul", "add")
        for n in sizes
    ]

"""The matrix products the gemm and batched suites time, one builder per library: on the CPU
into a preallocated output poisoned with NaN (``out=``), on CUDA into a fresh one (each
library's caching allocator), rotating through input sets that overflow the cache."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._case import Builder, Context
from .._peers import Peer, Unsupported
from .._timing import cycling

#: Largest relative error of pocaflow's product against the float64 product of the float32
#: inputs (for the half types this covers rounding the inputs).
TOL = {"f16": 5e-3, "bf16": 2e-2, "f32": 1e-4, "f64": 1e-10}
#: The largest ``max(m, n) * k`` NumPy's float16 matmul is timed at: about 0.3 GFLOP/s, a
#: second at 512^3.
NUMPY_F16_MAX = 512 * 512
#: The bound for ``pf.set_matmul_precision("tf32x3")`` (issue 13's bar).
TF32X3_TOL = 2e-5
_REF_ROWS = 256


@contextlib.contextmanager
def precision(name: str) -> Iterator[str]:
    """pocaflow's float32 matmul precision set to ``name`` (the peers keep strict float32),
    strict again afterwards; yields the series label suffix (empty for strict)."""
    import pocaflow as pf

    pf.set_matmul_precision(name)
    try:
        yield "" if name == "highest" else f" {name}"
    finally:
        pf.set_matmul_precision("highest")


def reference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """The float64 product of the first rows (2-D) or first two matrices (3-D), and the view
    of an output that it covers: the whole product costs as much as the timing."""
    if a.ndim == 2:
        r = min(a.shape[0], _REF_ROWS)
        return a[:r].astype(np.float64) @ b.astype(np.float64), lambda y: y[:r]
    return a[:2].astype(np.float64) @ b[:2].astype(np.float64), lambda y: y[:2]


def _out_shape(a: np.ndarray, b: np.ndarray) -> tuple[int, ...]:
    return (*a.shape[:-1], b.shape[-1])


def builders(ctx: Context, sets: list[tuple[np.ndarray, np.ndarray]], dtype: str) -> dict:
    """``name: builder`` for every library that multiplies, over the input ``sets``."""
    shape = _out_shape(*sets[0])
    cpu = ctx.device == "cpu"

    def pocaflow(peer: Peer):
        pf = peer.module
        pairs = [(peer.put(a, dtype), peer.put(b, dtype)) for a, b in sets]
        if not cpu:
            return cycling([lambda a=a, b=b: pf.matmul(a, b) for a, b in pairs])
        out = pf.full(shape, float("nan"), dtype=pairs[0][0].dtype)
        return cycling([lambda a=a, b=b: pf.matmul(a, b, out=out) for a, b in pairs])

    def numpy(peer: Peer):
        if dtype == "f16" and max(shape) * sets[0][0].shape[-1] > NUMPY_F16_MAX:
            raise Unsupported("NumPy's float16 matmul (a scalar loop) is timed up to 512^3")
        pairs = [(peer.put(a, dtype), peer.put(b, dtype)) for a, b in sets]
        out = np.full(shape, np.nan, dtype=pairs[0][0].dtype)
        return cycling([lambda a=a, b=b: np.matmul(a, b, out=out) for a, b in pairs])

    def scipy(peer: Peer):
        if len(shape) != 2:
            raise Unsupported("SciPy's BLAS multiplies single matrices")
        pairs = [(peer.put(a, dtype), peer.put(b, dtype)) for a, b in sets]
        gemm = peer.module.linalg.blas.get_blas_funcs("gemm", pairs[0])
        out = np.full(shape, np.nan, dtype=pairs[0][0].dtype)

        def call(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            # C-order products as Fortran ones: out.T = b.T @ a.T, written in place.
            gemm(1.0, b.T, a.T, c=out.T, overwrite_c=True)
            return out

        return cycling([lambda a=a, b=b: call(a, b) for a, b in pairs])

    def torch(peer: Peer):
        t = peer.module
        pairs = [(peer.put(a, dtype), peer.put(b, dtype)) for a, b in sets]
        if not cpu:
            op = t.bmm if len(shape) == 3 else t.matmul
            return cycling([lambda a=a, b=b: op(a, b) for a, b in pairs])
        out = t.full(shape, float("nan"), dtype=pairs[0][0].dtype)
        return cycling([lambda a=a, b=b: t.matmul(a, b, out=out) for a, b in pairs])

    def cupy(peer: Peer):
        pairs = [(peer.put(a, dtype), peer.put(b, dtype)) for a, b in sets]
        return cycling([lambda a=a, b=b: peer.module.matmul(a, b) for a, b in pairs])

    table: dict[str, Builder] = {"pocaflow": pocaflow, "numpy": numpy, "scipy": scipy}
    table |= {"torch": torch, "cupy": cupy}
    return table


def host_sets(ctx: Context, a_shape: tuple, b_shape: tuple, dtype: str, count: int) -> list:
    """``count`` random input pairs on the host (float64 for f64, else float32)."""
    host = np.float64 if dtype == "f64" else np.float32
    return [(ctx.normal(a_shape, host), ctx.normal(b_shape, host)) for _ in range(count)]

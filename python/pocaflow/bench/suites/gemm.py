"""gemm: square matrix products ``n x n @ n x n`` per dtype, GFLOP/s (CPU, wall clock) or
TFLOP/s (CUDA, each library's events) against n. CPU peers: NumPy ``matmul(out=)``, SciPy's
``gemm``, torch; CUDA: torch (TF32 off) and CuPy. Bars: on CUDA f32 and bf16 at n = 2048, 4096
and 8192 >= 0.98x torch; on the CPU n >= 1024 >= 0.95x NumPy."""

from __future__ import annotations

from .._case import CACHE_BYTES, Case, Context, measure
from .._peers import ITEMSIZE
from .._timing import BLAS_SETTLE_S, Plan, input_sets, quick_or_full
from . import _matmul

NAME = "gemm"


def _bar(ctx: Context, n: int, dtype: str) -> dict[str, float] | None:
    if ctx.device == "cuda":
        return {"torch": 0.98} if n in (2048, 4096, 8192) and dtype in ("f32", "bf16") else None
    return {"numpy": 0.95} if n in (1024, 2048, 4096) and dtype in ("f32", "f64") else None


def plan(ctx: Context) -> Plan:
    """Per product: 10 repeats of 30 ms (4 with ``--quick``) on CUDA, as the H200 runs were
    measured; on the CPU 5 repeats of 20 ms with ``--quick`` (else the default plan), with a
    pause after each NumPy/SciPy/torch block (their BLAS threads spin)."""
    if ctx.device == "cuda":
        return Plan(repeats=4 if ctx.quick else 10, target_s=0.03)
    if ctx.quick:
        return Plan(repeats=5, target_s=0.02, settle_s=BLAS_SETTLE_S)
    return quick_or_full(False, settle_s=BLAS_SETTLE_S)


def case(ctx: Context, n: int, dtype: str) -> dict:
    """One size and dtype: the row with each library's throughput."""
    k = input_sets(2 * n * n * ITEMSIZE[dtype], CACHE_BYTES[ctx.device])
    sets = _matmul.host_sets(ctx, (n, n), (n, n), dtype, k)
    ref, view = _matmul.reference(*sets[0])
    unit = "GFLOP/s" if ctx.device == "cpu" else "TFLOP/s"
    return measure(
        ctx,
        NAME,
        f"{dtype} n={n}",
        _matmul.builders(ctx, sets, dtype),
        unit,
        plan(ctx),
        work=2.0 * n**3,
        bars=_bar(ctx, n, dtype),
        reference=ref,
        tol=_matmul.TOL[dtype],
        view=view,
        x=n,
        series=dtype,
        input_sets=k,
    )


def cases(ctx: Context) -> list[Case]:
    """Every size for every dtype (defaults: f32 and f64 on the CPU, f32 and bf16 on CUDA)."""
    quick = ctx.quick
    sizes = ctx.pick_sizes(
        [128, 512, 1024] if quick else [64, 128, 256, 512, 1024, 2048, 4096],
        [1024, 2048, 4096] if quick else [1024, 2048, 4096, 8192],
    )
    dtypes = ctx.pick_dtypes(["f32", "f64"], ["f32", "bf16"])
    return [
        Case(NAME, f"{dt} n={n}", lambda n=n, dt=dt: [case(ctx, n, dt)])
        for dt in dtypes
        for n in sizes
    ]

"""gemm: square matrix products ``n x n @ n x n`` per dtype, GFLOP/s (CPU, wall clock) or
TFLOP/s (CUDA, each library's events) against n. CPU peers: NumPy ``matmul(out=)``, SciPy's
``gemm``, torch; CUDA: torch (TF32 off) and CuPy, and the series ``f32 tf32x3``: pocaflow with
``set_matmul_precision("tf32x3")`` against the same strict peers (n >= 2048). Bars: on CUDA f32
and bf16 at n = 2048, 4096 and 8192 >= 0.98x torch, tf32x3 at n = 4096 and 8192 >= 2.0x torch
with a relative error <= 2e-5; on the CPU n >= 1024 >= 0.95x NumPy (f32, f64), f16 at n = 512
>= 20x NumPy's float16 matmul (``--dtype f16,bf16``: NumPy has no bfloat16), and the half
dtypes against pocaflow's own float32 (the column ``pocaflow f32``) at n = 2048 and 4096:
bf16 >= 1.6x, f16 >= 0.9x."""

from __future__ import annotations

from .._case import CACHE_BYTES, Case, Context, measure
from .._peers import ITEMSIZE
from .._timing import BLAS_SETTLE_S, Plan, input_sets, quick_or_full
from . import _matmul

NAME = "gemm"


def _bar(ctx: Context, n: int, dtype: str, mode: str = "highest") -> dict[str, float] | None:
    if mode == "tf32x3":
        return {"torch": 2.0} if n in (4096, 8192) else None
    if ctx.device == "cuda":
        return {"torch": 0.98} if n in (2048, 4096, 8192) and dtype in ("f32", "bf16") else None
    if dtype in ("f16", "bf16") and n in (2048, 4096):
        return {"pocaflow f32": 1.6 if dtype == "bf16" else 0.9}
    if dtype == "f16":
        return {"numpy": 20.0} if n == 512 else None
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


def case(ctx: Context, n: int, dtype: str, mode: str = "highest") -> dict:
    """One size and dtype (and pocaflow's matmul precision): the row with each library's
    throughput."""
    k = input_sets(2 * n * n * ITEMSIZE[dtype], CACHE_BYTES[ctx.device])
    sets = _matmul.host_sets(ctx, (n, n), (n, n), dtype, k)
    ref, view = _matmul.reference(*sets[0])
    unit = "GFLOP/s" if ctx.device == "cpu" else "TFLOP/s"
    tol = _matmul.TF32X3_TOL if mode == "tf32x3" else _matmul.TOL[dtype]
    builders = _matmul.builders(ctx, sets, dtype)
    if ctx.device == "cpu" and dtype in ("f16", "bf16"):
        builders["pocaflow f32"] = _matmul.builders(ctx, sets, "f32")["pocaflow"]
    with _matmul.precision(mode) as suffix:
        return measure(
            ctx,
            NAME,
            f"{dtype}{suffix} n={n}",
            builders,
            unit,
            plan(ctx),
            work=2.0 * n**3,
            bars=_bar(ctx, n, dtype, mode),
            reference=ref,
            tol=tol,
            view=view,
            x=n,
            series=dtype + suffix,
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
    out = [
        Case(NAME, f"{dt} n={n}", lambda n=n, dt=dt: [case(ctx, n, dt)])
        for dt in dtypes
        for n in sizes
    ]
    if ctx.device == "cuda" and "f32" in dtypes:
        out += [
            Case(NAME, f"f32 tf32x3 n={n}", lambda n=n: [case(ctx, n, "f32", "tf32x3")])
            for n in sizes
            if n >= 2048
        ]
    return out

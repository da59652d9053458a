"""batched: stacks of products ``(b, n, n) @ (b, n, n)`` per dtype, GFLOP/s (CPU) or TFLOP/s
(CUDA) against n. Peers as in gemm (``torch.bmm`` on CUDA; SciPy has no batched product).
On CUDA also the series ``f32 tf32x3`` (pocaflow with ``set_matmul_precision("tf32x3")`` against
strict peers). Bars: on CUDA f32 and bf16 64 x 512^3 and 1024 x 64^3 >= 0.98x torch; tf32x3
64 x 512^3 >= 1.8x torch with a relative error <= 2e-5."""

from __future__ import annotations

from .._case import CACHE_BYTES, Case, Context, measure
from .._peers import ITEMSIZE
from .._timing import input_sets
from . import _matmul
from .gemm import plan

NAME = "batched"
#: With ``--sizes``, the batch holds about this many elements per operand.
BATCH_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 24}
_BARRED = {(64, 512), (1024, 64)}


def case(ctx: Context, batch: int, n: int, dtype: str, mode: str = "highest") -> dict:
    """One batch, size and dtype (and pocaflow's matmul precision): the row with each
    library's throughput."""
    k = input_sets(2 * batch * n * n * ITEMSIZE[dtype], CACHE_BYTES[ctx.device])
    sets = _matmul.host_sets(ctx, (batch, n, n), (batch, n, n), dtype, k)
    ref, view = _matmul.reference(*sets[0])
    barred = ctx.device == "cuda" and (batch, n) in _BARRED and dtype in ("f32", "bf16")
    if mode == "tf32x3":
        bars = {"torch": 1.8} if (batch, n) == (64, 512) else None
    else:
        bars = {"torch": 0.98} if barred else None
    with _matmul.precision(mode) as suffix:
        return measure(
            ctx,
            NAME,
            f"{dtype}{suffix} {batch}x{n}^3",
            _matmul.builders(ctx, sets, dtype),
            "GFLOP/s" if ctx.device == "cpu" else "TFLOP/s",
            plan(ctx),
            work=2.0 * batch * n**3,
            bars=bars,
            reference=ref,
            tol=_matmul.TF32X3_TOL if mode == "tf32x3" else _matmul.TOL[dtype],
            view=view,
            x=n,
            series=dtype + suffix,
            input_sets=k,
        )


def cases(ctx: Context) -> list[Case]:
    """(batch, n) pairs: defaults per device, or each ``--sizes`` n with the batch that
    makes an operand about :data:`BATCH_ELEMENTS` long."""
    if ctx.sizes:
        shapes = [(max(1, BATCH_ELEMENTS[ctx.device] // (n * n)), n) for n in ctx.sizes]
    elif ctx.device == "cuda":
        shapes = [(1024, 64), (64, 512)]
    else:
        shapes = [(256, 32), (16, 256)] if ctx.quick else [(256, 32), (64, 128), (16, 256)]
    dtypes = ctx.pick_dtypes(["f32", "f64"], ["f32", "bf16"])
    out = [
        Case(NAME, f"{dt} {b}x{n}^3", lambda b=b, n=n, dt=dt: [case(ctx, b, n, dt)])
        for dt in dtypes
        for b, n in shapes
    ]
    if ctx.device == "cuda" and "f32" in dtypes:
        out += [
            Case(NAME, f"f32 tf32x3 {b}x{n}^3", lambda b=b, n=n: [case(ctx, b, n, "f32", "tf32x3")])
            for b, n in shapes
        ]
    return out

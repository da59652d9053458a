"""nn: ``pf.nn`` against torch.nn.functional (and on the CPU NumPy's and SciPy's forms).

- softmax, log_softmax, layer_norm (weight and bias), rms_norm (weight), gelu (exact) over
  ``(rows, 4096)`` (default 8192 rows on CUDA, 4096 on the CPU), GB/s of input read and output
  written, each checked against float64 first;
- on CUDA the linear layer (:mod:`._linear`): bf16 ``(8192, 4096) x (4096, 4096)^T`` forward
  with activations, bf16 and f32 backward, TFLOP/s; on the CPU the f32 forward with bias;
- the MLP demo's training steps per second against the same model in torch (:mod:`._mlp`;
  it needs scikit-learn for the digits).

Bars on CUDA against torch (the H200 runs): softmax and log_softmax >= 1.3x in f32 and 2.5x in
bf16, layer_norm >= 1.2x / 1.25x, rms_norm >= 1.1x, gelu >= 0.97x / 1.3x; the linear bars in
:mod:`._linear`; MLP >= 1.5x. On the CPU: softmax of (4096, 4096) f32 >= 5x NumPy, MLP >= 1.0x
torch."""

from __future__ import annotations

import importlib.util

from .._case import Case, Context, measure
from .._peers import ITEMSIZE, Peer
from .._timing import quick_or_full
from . import _linear, _mlp, _rowwise

NAME = "nn"
COLS = 4096
#: The rows checked against float64 (all of them would cost more than the timing).
REF_ROWS = 256
TOL = {"f16": 5e-3, "bf16": 2e-2, "f32": 1e-5, "f64": 1e-12}
#: CUDA bars against torch by (op, dtype), at 8192 rows.
CUDA_BARS = {
    ("softmax", "f32"): 1.3,
    ("softmax", "bf16"): 2.5,
    ("log_softmax", "f32"): 1.3,
    ("log_softmax", "bf16"): 2.5,
    ("layer_norm w+b", "f32"): 1.2,
    ("layer_norm w+b", "bf16"): 1.25,
    ("rms_norm w", "f32"): 1.1,
    ("rms_norm w", "bf16"): 1.1,
    ("gelu", "f32"): 0.97,
    ("gelu", "bf16"): 1.3,
}


def rowwise_case(ctx: Context, op: str, rows: int, dtype: str) -> dict:
    """One row-wise op over (rows, 4096)."""
    x, w, b = ctx.shared(
        ("nn", rows), lambda: (ctx.normal((rows, COLS)), ctx.normal(COLS), ctx.normal(COLS))
    )

    def build(peer: Peer):
        return _rowwise.call(peer, op, *(peer.put(a, dtype) for a in (x, w, b)))

    if ctx.device == "cuda":
        bars = (
            {"torch": CUDA_BARS[(op, dtype)]} if rows == 8192 and (op, dtype) in CUDA_BARS else None
        )
    else:
        bars = {"numpy": 5.0} if (op, rows, dtype) == ("softmax", 4096, "f32") else None
    # log-probabilities are large where probabilities are small: a looser relative bound
    tol = TOL[dtype] * (10 if op == "log_softmax" else 1)
    return measure(
        ctx,
        NAME,
        f"{op} ({rows},{COLS}) {dtype}",
        {name: build for name in ctx.peers},
        "GB/s",
        quick_or_full(ctx.quick, settle_s=0.02 if ctx.device == "cpu" else 0.0),
        work=2 * rows * COLS * ITEMSIZE[dtype],
        bars=bars,
        reference=_rowwise.reference(op, x[:REF_ROWS], w, b),
        tol=tol,
        view=lambda y: y[:REF_ROWS],
        x=rows,
        series=f"{op} {dtype}",
    )


def cases(ctx: Context) -> list[Case]:
    """The row-wise ops at every row count and dtype (defaults: f32 on the CPU, f32 and bf16
    on CUDA), the linear layer, then the MLP where scikit-learn is installed."""
    cpu = ctx.device == "cpu"
    sizes = ctx.pick_sizes([4096], [8192])
    out = [
        Case(NAME, f"{op} {r} {dt}", lambda op=op, r=r, dt=dt: [rowwise_case(ctx, op, r, dt)])
        for r in sizes
        for dt in ctx.pick_dtypes(["f32"], ["f32", "bf16"])
        for op in _rowwise.OPS
    ]
    if cpu:
        out.append(Case(NAME, "linear", lambda: _linear.cpu_rows(ctx, 1024, 1024, 1024)))
    else:
        out.append(Case(NAME, "linear", lambda: _linear.cuda_rows(ctx, 8192, 4096, 4096)))
    if importlib.util.find_spec("sklearn") is not None:
        out.append(Case(NAME, "MLP demo", lambda: [_mlp.row(ctx, NAME)]))
    return out

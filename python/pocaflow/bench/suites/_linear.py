"""The linear-layer cases of the nn suite: ``pf.nn.linear`` and ``linear_backward`` against
torch on CUDA (its fused ``_addmm_activation``, ``F.linear`` then ``F.gelu``, and autograd's
backward on a retained graph, so that only the backward kernels are timed), and the forward
product with bias against NumPy and torch on the CPU. Each result is first checked against
torch's (NumPy's on the CPU), relative to its largest element."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._case import Context, to_host
from .._peers import Unsupported
from .._report import value_row
from .._timing import BLAS_SETTLE_S, Plan, interleaved

NAME = "nn"


def _close(ours: np.ndarray, theirs: np.ndarray, rtol: float) -> None:
    """``|ours - theirs| <= rtol (max |theirs| + |theirs|)`` everywhere: the products'
    rounding is relative to the largest element, not to each."""
    scale = max(float(np.abs(theirs).max()), 1.0)
    err = float((np.abs(ours - theirs) / (scale + np.abs(theirs))).max())
    if not err <= rtol:
        raise AssertionError(f"pocaflow differs from the peer by {err:.2e} (relative)")


def _inputs(ctx: Context, m: int, k: int, n: int) -> list[np.ndarray]:
    """x, W (scaled so that the pre-activations are O(1)), bias and an output gradient."""
    x = ctx.normal((m, k))
    w = ctx.normal((n, k)) / np.float32(np.sqrt(k))
    return [x, w, ctx.normal(n), ctx.normal((m, n))]


def _row(ctx: Context, case: str, fns: dict[str, Any], flops: float, bars, plan: Plan) -> dict:
    contenders = {name: (ctx.peers[name], fn) for name, fn in fns.items()}
    seconds = interleaved(contenders, plan)
    values = {name: flops / s / 1e12 for name, s in seconds.items()}
    timer = contenders["pocaflow"][0].timer
    return value_row(NAME, case, "TFLOP/s", values, timer, bars, seconds=seconds)


def cuda_rows(ctx: Context, m: int, k: int, n: int) -> list[dict]:
    """bf16 forward with gelu_tanh and gelu, bf16 and f32 backward, against torch (bars as
    the H200 runs: forward >= 1.0x the fused and 1.1x the unfused tanh form, >= 1.0x for the
    exact gelu, backward >= 1.0x; none for the backward through gelu_tanh, which pocaflow
    recomputes and torch keeps from the forward pass)."""
    if "torch" not in ctx.peers:
        raise Unsupported("the linear cases compare with torch")
    pf, torch = ctx.peers["pocaflow"].module, ctx.peers["torch"].module
    F, lin = torch.nn.functional, pf.nn.linear
    plan = Plan(repeats=3 if ctx.quick else 7, target_s=0.03, warmup=5)  # cuBLASLt's autotuning
    host = _inputs(ctx, m, k, n)
    shape = f"({m},{k})x({n},{k})^T"
    rows = []
    px, pw, pb = (ctx.peers["pocaflow"].put(a, "bf16") for a in host[:3])
    tx, tw, tb = (ctx.peers["torch"].put(a, "bf16") for a in host[:3])
    get = ctx.peers["torch"].get
    forward = {
        "gelu_tanh vs _addmm_activation": (
            lambda: lin(px, pw, pb, activation="gelu_tanh"),
            lambda: torch._addmm_activation(tb, tx, tw.t(), use_gelu=True),
            1.0,
        ),
        "gelu_tanh vs F.linear,F.gelu(tanh)": (
            lambda: lin(px, pw, pb, activation="gelu_tanh"),
            lambda: F.gelu(F.linear(tx, tw, tb), approximate="tanh"),
            1.1,
        ),
        "gelu vs F.linear,F.gelu": (
            lambda: lin(px, pw, pb, activation="gelu"),
            lambda: F.gelu(F.linear(tx, tw, tb)),
            1.0,
        ),
    }
    for label, (ours, theirs, least) in forward.items():
        _close(to_host(ctx.peers["pocaflow"], ours()), get(theirs()), 2e-2)
        fns = {"pocaflow": ours, "torch": theirs}
        case = f"linear+bias+{label} {shape} bf16"
        rows.append(_row(ctx, case, fns, 2.0 * m * n * k, {"torch": least}, plan))
    for dtype in ("bf16", "f32"):
        rows += _backward(ctx, host, dtype, plan, (m, k, n))
    return rows


def _backward(ctx: Context, host: list, dtype: str, plan: Plan, mkn: tuple) -> list[dict]:
    pf, torch = ctx.peers["pocaflow"].module, ctx.peers["torch"].module
    F, back = torch.nn.functional, pf.nn.linear_backward
    px, pw, pb, pdy = (ctx.peers["pocaflow"].put(a, dtype) for a in host)
    tx, tw, tb, tdy = (ctx.peers["torch"].put(a, dtype) for a in host)
    tx, tw, tb = (t.detach().requires_grad_(True) for t in (tx, tw, tb))
    m, k, n = mkn
    rows = []
    for activation in (None, "gelu_tanh"):
        ty = F.linear(tx, tw, tb)
        if activation is not None:
            ty = F.gelu(ty, approximate="tanh")
        grads = torch.autograd.grad(ty, (tx, tw, tb), tdy, retain_graph=True)
        for o, t in zip(back(pdy, px, pw, pb, activation=activation), grads):
            _close(
                ctx.peers["pocaflow"].get(o),
                ctx.peers["torch"].get(t),
                3e-2 if dtype == "bf16" else 1e-4,
            )
        fns = {
            "pocaflow": lambda a=activation: back(pdy, px, pw, pb, activation=a),
            "torch": lambda y=ty: torch.autograd.grad(y, (tx, tw, tb), tdy, retain_graph=True),
        }
        label = "" if activation is None else f"+{activation}"
        case = f"linear_backward{label} (dx,dW,db) ({m},{k})x({n},{k}) {dtype} vs autograd"
        bars = {"torch": 1.0} if activation is None else None
        rows.append(_row(ctx, case, fns, 4.0 * m * n * k, bars, plan))
        del ty, grads
    return rows


def cpu_rows(ctx: Context, m: int, k: int, n: int) -> list[dict]:
    """f32 ``linear(x, W, b)`` against NumPy's ``x @ W.T + b`` and torch's ``F.linear``."""
    x, w, b, _ = _inputs(ctx, m, k, n)
    fns: dict[str, Any] = {}
    peers = ctx.peers
    px, pw, pb = (peers["pocaflow"].put(a, "f32") for a in (x, w, b))
    fns["pocaflow"] = lambda: peers["pocaflow"].module.nn.linear(px, pw, pb)
    fns["numpy"] = lambda: x @ w.T + b
    if "torch" in peers:
        tx, tw, tb = (peers["torch"].put(a, "f32") for a in (x, w, b))
        fns["torch"] = lambda: peers["torch"].module.nn.functional.linear(tx, tw, tb)
    _close(peers["pocaflow"].get(fns["pocaflow"]()), fns["numpy"]().astype(np.float64), 1e-4)
    plan = Plan(
        repeats=3 if ctx.quick else 7,
        target_s=0.01 if ctx.quick else 0.03,
        settle_s=BLAS_SETTLE_S,
    )
    contenders = {name: (peers[name], fn) for name, fn in fns.items()}
    seconds = interleaved(contenders, plan)
    values = {name: 2.0 * m * n * k / s / 1e9 for name, s in seconds.items()}
    case = f"linear+bias ({m},{k})x({n},{k})^T f32"
    return [value_row(NAME, case, "GFLOP/s", values, "wall clock", None, seconds=seconds)]

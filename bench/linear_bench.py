#!/usr/bin/env python3
"""Linear-layer benchmark: ``pf.nn.linear`` / ``linear_backward`` side by side with PyTorch on
one CUDA device.

    python bench/linear_bench.py --json out.json

Rows (ratio = torch time / pocaflow time, so higher is better for pocaflow; TFLOP/s counts
2 M N K per product):
- bfloat16 ``linear(x (8192, 4096), W (4096, 4096), bias, activation="gelu_tanh")`` against
  torch's fused ``torch._addmm_activation(bias, x, W.t(), use_gelu=True)``: bar >= 1.0x; and
  against ``F.linear`` then ``F.gelu(approximate="tanh")``: bar >= 1.1x;
- bfloat16 ``activation="gelu"`` (exact) against ``F.linear`` then ``F.gelu``: bar >= 1.0x;
- ``linear_backward`` (dx, dweight, dbias) of the same shapes, bfloat16 and float32, against
  torch autograd's backward of ``F.linear`` (``torch.autograd.grad`` on a retained graph, so
  only the backward kernels are timed): bar >= 1.0x; with ``activation="gelu_tanh"`` against
  the backward of ``F.gelu(F.linear(...), approximate="tanh")`` (no bar: pocaflow recomputes
  the pre-activation, torch keeps it from the forward pass).

float32 products run at strict float32 precision in both libraries (pocaflow's default
"highest", torch with TF32 off). Method (METHOD.md): random inputs, correctness checked against
torch first, warm-up, each library's CUDA events around the call, medians of repeats. The
summary table is printed last.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from _meta import Report, gpu_ms

import pocaflow as pf
from pocaflow.nn import linear, linear_backward

REPORT = Report(width=64)
row = REPORT.row
M, K, N = 8192, 4096, 4096


def both(x: np.ndarray, dtype: str):
    """`x` (float32) on the GPU in both libraries, in `dtype`."""
    p, t = pf.asarray(x, device="cuda"), torch.as_tensor(x, device="cuda")
    if dtype == "bfloat16":
        p, t = pf.astype(p, pf.bfloat16), t.to(torch.bfloat16)
    return p, t


def inputs(rng: np.random.Generator, dtype: str):
    """x, W (scaled so that pre-activations are O(1)), bias and an output gradient."""
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32) / np.float32(np.sqrt(K))
    b = rng.standard_normal(N, dtype=np.float32)
    dy = rng.standard_normal((M, N), dtype=np.float32)
    return [both(a, dtype) for a in (x, w, b, dy)]


def check(ours, theirs, rtol: float) -> None:
    """The pocaflow result against torch's, in float64 on the host (relative to the largest
    element: the products' rounding is not elementwise-relative)."""
    a = np.asarray(pf.astype(ours, pf.float64).numpy())
    b = theirs.double().cpu().numpy()
    scale = max(float(np.abs(b).max()), 1.0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def tflops(flops: float, ms: float) -> float:
    return flops / (ms * 1e-3) / 1e12


def compare(name: str, flops: float, fp, ft, bar: float | None) -> None:
    # Five warm-up calls: they also let cuBLASLt's plan cache finish timing its candidates.
    ours = gpu_ms(fp, pf.cuda.Event, warmup=5)
    peer = gpu_ms(ft, torch.cuda.Event, warmup=5)
    row(name, "TFLOP/s", tflops(flops, ours), tflops(flops, peer), peer / ours, bar)


def bench_forward(rng: np.random.Generator) -> None:
    (px, tx), (pw, tw), (pb, tb), _ = inputs(rng, "bfloat16")
    flops = 2.0 * M * N * K
    shape = f"({M},{K})x({N},{K})^T bf16"
    check(
        linear(px, pw, pb, activation="gelu_tanh"),
        torch._addmm_activation(tb, tx, tw.t(), use_gelu=True),
        2e-2,
    )
    check(linear(px, pw, pb, activation="gelu"), F.gelu(F.linear(tx, tw, tb)), 2e-2)
    ours_tanh = lambda: linear(px, pw, pb, activation="gelu_tanh")  # noqa: E731
    compare(
        f"linear+bias+gelu_tanh {shape} vs _addmm_activation",
        flops,
        ours_tanh,
        lambda: torch._addmm_activation(tb, tx, tw.t(), use_gelu=True),
        1.0,
    )
    compare(
        f"linear+bias+gelu_tanh {shape} vs F.linear,F.gelu(tanh)",
        flops,
        ours_tanh,
        lambda: F.gelu(F.linear(tx, tw, tb), approximate="tanh"),
        1.1,
    )
    compare(
        f"linear+bias+gelu {shape} vs F.linear,F.gelu",
        flops,
        lambda: linear(px, pw, pb, activation="gelu"),
        lambda: F.gelu(F.linear(tx, tw, tb)),
        1.0,
    )


def backward_case(rng: np.random.Generator, dtype: str) -> None:
    (px, tx), (pw, tw), (pb, tb), (pdy, tdy) = inputs(rng, dtype)
    tx, tw, tb = (t.detach().requires_grad_(True) for t in (tx, tw, tb))
    name = "bf16" if dtype == "bfloat16" else "f32"
    rtol = 3e-2 if dtype == "bfloat16" else 1e-4
    flops = 2 * 2.0 * M * N * K  # dx and dweight
    for activation in (None, "gelu_tanh"):
        if activation is None:
            ty = F.linear(tx, tw, tb)
        else:
            ty = F.gelu(F.linear(tx, tw, tb), approximate="tanh")
        grads = torch.autograd.grad(ty, (tx, tw, tb), tdy, retain_graph=True)
        ours = linear_backward(pdy, px, pw, pb, activation=activation)
        for o, t in zip(ours, grads):
            check(o, t, rtol)
        label = "" if activation is None else f"+{activation}"
        compare(
            f"linear_backward{label} (dx,dW,db) ({M},{K})x({N},{K}) {name} vs autograd",
            flops,
            lambda a=activation: linear_backward(pdy, px, pw, pb, activation=a),
            lambda y=ty: torch.autograd.grad(y, (tx, tw, tb), tdy, retain_graph=True),
            1.0 if activation is None else None,
        )
        del ty, grads


def bench_backward(rng: np.random.Generator) -> None:
    for dtype in ("bfloat16", "float32"):
        backward_case(rng, dtype)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="linear-bench.json")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    assert pf.get_matmul_precision() == "highest"
    rng = np.random.default_rng(0)
    REPORT.header()
    REPORT.run((bench_forward, bench_backward), rng)
    REPORT.finish(args.json, gpu=torch.cuda.get_device_name(0), torch=torch.__version__)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""``pf.nn`` benchmark: pocaflow side by side with PyTorch on one CUDA device, or with NumPy on
the CPU.

    python bench/nn_bench.py --json out.json             # CUDA, against torch
    python bench/nn_bench.py --device cpu --json out.json  # CPU, against NumPy (and torch)

CUDA rows over (8192, 4096) (GB/s counts every byte read and written once; higher is better):
- softmax and log_softmax: bar >= 1.3x torch in float32, >= 2.5x in bfloat16;
- layer_norm with weight and bias: >= 1.2x (float32), >= 1.25x (bfloat16);
- rms_norm with weight: >= 1.1x; gelu (exact): >= 0.97x (float32), >= 1.3x (bfloat16);
- the MLP demo's training loop against the same model in torch (nn.Linear, ReLU, F.cross_entropy,
  torch.optim.SGD with momentum, the same batches): steps per second >= 1.5x.

CPU rows: softmax over (4096, 4096) float32 against NumPy's ``exp(x - max) / sum`` (bar >= 5x,
pocaflow on every thread, NumPy single-threaded as it is); the MLP demo against torch when torch
is installed (bar >= 1.0x).

Method (METHOD.md): random non-zero inputs, results checked against the peer first, warm-up,
each library's CUDA events around the call (wall clock on the CPU), medians; the table last.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time

import numpy as np
from _meta import Report, gpu_ms, wall_ms

import pocaflow as pf
from pocaflow.demos import mlp

REPORT = Report(width=44, peer="peer")
row = REPORT.row
SHAPE = (8192, 4096)


def nonzero(rng: np.random.Generator, shape) -> np.ndarray:
    """Normal values, none exactly zero."""
    x = rng.standard_normal(shape, dtype=np.float32)
    return np.where(x == 0, np.float32(0.5), x)


def check(ours, theirs, rtol: float) -> None:
    a = np.asarray(pf.astype(ours, pf.float64).numpy())
    b = theirs.double().cpu().numpy()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def bench_cuda_ops(rng: np.random.Generator) -> None:
    import torch

    for dtype, tdt, size, name in (
        (pf.float32, torch.float32, 4, "f32"),
        (pf.bfloat16, torch.bfloat16, 2, "bf16"),
    ):
        cuda_ops_case(rng, dtype, tdt, size, name)


def cuda_ops_case(rng: np.random.Generator, dtype, tdt, size: int, name: str) -> None:
    import torch
    import torch.nn.functional as F

    n = SHAPE[1]
    x = nonzero(rng, SHAPE)
    w, b = nonzero(rng, n), nonzero(rng, n)
    px = pf.astype(pf.asarray(x, device="cuda"), dtype)
    pw = pf.astype(pf.asarray(w, device="cuda"), dtype)
    pb = pf.astype(pf.asarray(b, device="cuda"), dtype)
    tx = torch.as_tensor(x, device="cuda").to(tdt)
    tw = torch.as_tensor(w, device="cuda").to(tdt)
    tb = torch.as_tensor(b, device="cuda").to(tdt)
    bf = name == "bf16"
    rtol = 2e-2 if bf else 2e-5
    cases = {
        "softmax": (
            lambda: pf.nn.softmax(px),
            lambda: torch.softmax(tx, -1),
            2.5 if bf else 1.3,
        ),
        "log_softmax": (
            lambda: pf.nn.log_softmax(px),
            lambda: torch.log_softmax(tx, -1),
            2.5 if bf else 1.3,
        ),
        "layer_norm w+b": (
            lambda: pf.nn.layer_norm(px, n, weight=pw, bias=pb),
            lambda: F.layer_norm(tx, (n,), tw, tb),
            1.25 if bf else 1.2,
        ),
        "rms_norm w": (
            lambda: pf.nn.rms_norm(px, n, weight=pw),
            lambda: F.rms_norm(tx, (n,), tw, eps=1e-6),
            1.1,
        ),
        "gelu": (lambda: pf.nn.gelu(px), lambda: F.gelu(tx), 1.3 if bf else 0.97),
    }
    for case, (fp, ft, bar) in cases.items():
        # log-probabilities are large where probabilities are small: compare them absolutely.
        check(fp(), ft(), rtol * (10 if case == "log_softmax" else 1))
        ours, peer = gpu_ms(fp, pf.cuda.Event), gpu_ms(ft, torch.cuda.Event)
        nbytes = 2 * x.size * size
        row(
            f"{case} (8192,4096) {name}",
            "GB/s",
            nbytes / ours / 1e6,
            nbytes / peer / 1e6,
            peer / ours,
            bar,
        )


def torch_train(device: str, epochs: int, batch_size: int, lr: float, hidden: int, seed: int):
    """The MLP demo's loop in torch: the same data, split, batches, model and optimizer
    (torch.optim.SGD with momentum, the demo's SGD update)."""
    import torch
    import torch.nn.functional as F

    x_tr, y_tr, x_te, y_te = mlp.load_digits(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(x_tr.shape[1], hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 10),
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    xt = torch.as_tensor(x_tr, device=device)
    yt = torch.as_tensor(y_tr, device=device)
    rng = np.random.default_rng(seed + 1)
    batches = [slice(i, i + batch_size) for i in range(0, len(y_tr), batch_size)]
    steps, seconds = 0, 0.0
    for epoch in range(epochs):
        order = torch.as_tensor(rng.permutation(len(y_tr)), device=device)
        xs, ys = xt[order], yt[order]
        total = torch.zeros((), device=device)
        start = time.perf_counter()
        for sl in batches:
            loss = F.cross_entropy(model(xs[sl]), ys[sl])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * (sl.stop - sl.start)
        float(total)
        if epoch > 0:
            steps += len(batches)
            seconds += time.perf_counter() - start
    with torch.no_grad():
        pred = model(torch.as_tensor(x_te, device=device)).argmax(1).cpu().numpy()
    return {"test_accuracy": float((pred == y_te).mean()), "steps_per_second": steps / seconds}


def bench_mlp(device: str, bar: float) -> None:
    try:
        import torch
    except ImportError:
        print("torch is not installed: the MLP comparison is skipped")
        return
    if device == "cpu":
        torch.set_num_threads(2)
    kw = dict(epochs=6, batch_size=64, lr=0.05, hidden=128, seed=0)
    quiet = io.StringIO()  # the demo prints per epoch
    ours, peer = [], []
    for _ in range(3):  # interleaved repeats
        ours.append(mlp.train(device, out=quiet, **kw))
        peer.append(torch_train(device, **kw))
    o = statistics.median(r["steps_per_second"] for r in ours)
    p = statistics.median(r["steps_per_second"] for r in peer)
    acc = ours[-1]["test_accuracy"], peer[-1]["test_accuracy"]
    print(
        f"MLP test accuracy after {kw['epochs']} epochs: pocaflow {acc[0]:.4f}, torch {acc[1]:.4f}"
    )
    row(f"MLP train steps ({device}, batch 64)", "steps/s", o, p, o / p, bar)


def bench_cpu_softmax(rng: np.random.Generator) -> None:
    x = nonzero(rng, (4096, 4096))
    px = pf.asarray(x)

    def numpy_softmax():
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    np.testing.assert_allclose(pf.nn.softmax(px).numpy(), numpy_softmax(), rtol=1e-5, atol=1e-9)
    ours, peer = [], []
    for _ in range(3):
        ours.append(wall_ms(lambda: pf.nn.softmax(px)))
        peer.append(wall_ms(numpy_softmax))
    o, p = statistics.median(ours), statistics.median(peer)
    nbytes = 2 * x.nbytes
    row("CPU softmax (4096,4096) f32", "GB/s", nbytes / o / 1e6, nbytes / p / 1e6, p / o, 5.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--json", default="nn-bench.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    REPORT.header()
    if args.device == "cuda":
        sections = [bench_cuda_ops, lambda rng: bench_mlp("cuda", 1.5)]
    else:
        sections = [bench_cpu_softmax, lambda rng: bench_mlp("cpu", 1.0)]
    REPORT.run(sections, rng)
    REPORT.finish(
        args.json, device=args.device, python=sys.version.split()[0], numpy=np.__version__
    )


if __name__ == "__main__":
    main()

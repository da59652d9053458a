"""The MLP demo's training loop (``python -m pocaflow.demos.mlp``) against the same model in
torch: the same data, split, batches and optimizer (``torch.optim.SGD`` with momentum, the
demo's update); training steps per second, by each loop's own wall clock, medians of
interleaved runs."""

from __future__ import annotations

import io
import statistics
import time

import numpy as np

from .._case import Context
from .._report import value_row

SETTINGS = dict(epochs=6, batch_size=64, lr=0.05, hidden=128, seed=0)


def torch_train(
    torch, device: str, epochs: int, batch_size: int, lr: float, hidden: int, seed: int
) -> dict:
    """The demo's loop in torch; steps per second over the epochs after the first."""
    from ...demos import mlp

    F = torch.nn.functional
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
    xt, yt = torch.as_tensor(x_tr, device=device), torch.as_tensor(y_tr, device=device)
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


def row(ctx: Context, suite: str) -> dict:
    """Steps per second of both loops (torch's column only where torch is there; torch on
    two threads on the CPU), 6 epochs (3 with ``--quick``), 3 runs each (2); bar: >= 1.5x
    torch on CUDA, >= 1.0x on the CPU."""
    from ...demos import mlp

    torch = ctx.peers["torch"].module if "torch" in ctx.peers else None
    if torch is not None and ctx.device == "cpu":
        torch.set_num_threads(2)
    settings = (SETTINGS | {"epochs": 3}) if ctx.quick else SETTINGS
    ours, peer = [], []
    for _ in range(2 if ctx.quick else 3):
        ours.append(mlp.train(ctx.device, out=io.StringIO(), **settings))
        if torch is not None:
            peer.append(torch_train(torch, ctx.device, **settings))
    values = {"pocaflow": statistics.median(r["steps_per_second"] for r in ours)}
    accuracy = {"pocaflow": ours[-1]["test_accuracy"]}
    if peer:
        values["torch"] = statistics.median(r["steps_per_second"] for r in peer)
        accuracy["torch"] = peer[-1]["test_accuracy"]
    bars = {"torch": 1.5 if ctx.device == "cuda" else 1.0}
    case = f"MLP demo training steps ({ctx.device}, batch {SETTINGS['batch_size']})"
    extra = dict(test_accuracy=accuracy, epochs=settings["epochs"])
    return value_row(suite, case, "steps/s", values, "wall clock", bars, **extra)

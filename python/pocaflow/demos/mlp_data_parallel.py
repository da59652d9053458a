"""Trains the digits MLP of ``pocaflow.demos.mlp`` data-parallel: one process per GPU, each
with a copy of the model, takes its share of every global batch; the gradients are summed
over the processes with NCCL (one group of all-reduces per step), so every copy takes the same
step and the model trains as on one device with the global batch.

    torchrun --nproc-per-node=N -m pocaflow.demos.mlp_data_parallel [--epochs E]
    python -m pocaflow.distributed.run --nproc N -m pocaflow.demos.mlp_data_parallel

Each process's loss is the sum over its rows divided by the global batch's size, so the summed
gradients are exactly those of the global batch's mean loss, however the rows are shared.
"""

import argparse
import os
import sys
import time

import numpy as np

import pocaflow as pf
from pocaflow import distributed as dist
from pocaflow import nn
from pocaflow.demos.mlp import LR, MLP, SGD, accuracy, load_digits


def share(count: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s rows of a batch of ``count`` (NumPy's ``array_split``: the first
    ``count % world`` ranks take one more)."""
    base, extra = divmod(count, world)
    lo = rank * base + min(rank, extra)
    return slice(lo, lo + base + (rank < extra))


def train(
    device: str,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float | None = None,
    hidden: int = 128,
    seed: int = 0,
    out=sys.stdout,
) -> dict:
    """Trains in the default process group on this rank's ``device`` (every rank calls this);
    ``batch_size`` is the global batch. Returns the per-epoch mean losses over all ranks, the
    test accuracy and the training steps per second (after the first epoch)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    x_tr, y_tr, x_te, y_te = load_digits(seed)
    model = MLP([x_tr.shape[1], hidden, hidden, 10], device, seed)  # same seed: same start
    opt = SGD(model.params, lr=lr or LR["sgd"])
    xt, yt = pf.asarray(x_tr, device=device), pf.asarray(y_tr, device=device)
    rng = np.random.default_rng(seed + 1)  # every rank draws the same order
    batches = [slice(i, min(i + batch_size, len(y_tr))) for i in range(0, len(y_tr), batch_size)]
    losses, steps, seconds = [], 0, 0.0
    for epoch in range(epochs):
        order = pf.asarray(rng.permutation(len(y_tr)), device=device)
        xs, ys = pf.take(xt, order, axis=0), pf.take(yt, order, axis=0)
        total = pf.zeros((), dtype=pf.float32, device=device)
        start = time.perf_counter()
        for b in batches:
            count = b.stop - b.start
            mine = share(count, rank, world)
            xb = xs[b.start + mine.start : b.start + mine.stop]
            yb = ys[b.start + mine.start : b.start + mine.stop]
            logits, inputs = model.forward(xb)
            total += nn.cross_entropy(logits, yb, reduction="sum")
            dlogits = nn.cross_entropy_backward(logits, yb, reduction="sum") * (1.0 / count)
            grads = model.backward(dlogits, inputs)
            with dist.group():
                for g in grads:
                    dist.all_reduce(g)
            opt.step(grads)
        dist.all_reduce(total)
        loss = float(total) / len(y_tr)  # reading the loss waits for the epoch's work
        if epoch > 0:
            steps += len(batches)
            seconds += time.perf_counter() - start
        losses.append(loss)
        if rank == 0:
            print(f"epoch {epoch + 1:3d}  loss {loss:.4f}  ({world} ranks)", file=out)
    # Every copy took the same steps: their weights agree to the last bit.
    checksum = pf.stack([pf.sum(p.astype(pf.float64)) for p in model.params])
    lowest, highest = checksum * 1.0, checksum * 1.0
    dist.all_reduce(lowest, op="min")
    dist.all_reduce(highest, op="max")
    if not np.array_equal(lowest.numpy(), highest.numpy()):
        raise RuntimeError(f"rank {rank}: the model copies diverged")
    return {
        "losses": losses,
        "test_accuracy": accuracy(model, pf.asarray(x_te, device=device), y_te),
        "steps_per_second": steps / seconds if seconds else float("nan"),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch")
    p.add_argument("--lr", type=float, default=None, help="default 0.05")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    dist.init_process_group("nccl", device=device)
    rank = dist.get_rank()
    try:
        r = train(device, a.epochs, a.batch_size, a.lr, a.hidden, a.seed)
    finally:
        dist.destroy_process_group()
    if rank == 0:
        print(f"test accuracy {r['test_accuracy']:.4f}")
        rate = r["steps_per_second"]
        print(f"{rate:.0f} training steps per second (global batch {a.batch_size})")
    if r["test_accuracy"] < 0.95:
        raise SystemExit(f"test accuracy {r['test_accuracy']:.4f} is below 0.95")


if __name__ == "__main__":
    main()

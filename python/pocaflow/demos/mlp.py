"""Trains a two-hidden-layer MLP on scikit-learn's bundled digits (8x8 images, 10 classes; no
download) with ``pf.nn`` forward and backward ops and SGD with momentum (or Adam) written with
pocaflow ops, then reports the test accuracy.

    python -m pocaflow.demos.mlp [--device cpu|cuda] [--epochs N] [--optimizer sgd|adam]

Nothing records a graph: the forward pass keeps what the backward pass needs (each layer's
input), and the backward pass calls each op's ``*_backward`` in reverse order.
"""

import argparse
import math
import sys
import time

import numpy as np

import pocaflow as pf
from pocaflow import nn


def load_digits(seed: int, test_fraction: float = 0.25):
    """The digits as float32 features in [0, 1] and int64 labels, split into a training and a
    test set by a seeded shuffle."""
    from sklearn.datasets import load_digits as sk_digits

    data = sk_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return x[train], y[train], x[test], y[test]


class MLP:
    """``in -> hidden -> hidden -> classes`` with ReLU after each hidden layer; the weights are
    ``(out, in)`` as in torch, He-initialized from a seeded generator."""

    def __init__(self, sizes, device: str, seed: int):
        rng = np.random.default_rng(seed)
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            w = rng.standard_normal((fan_out, fan_in)) * math.sqrt(2.0 / fan_in)
            self.params.append(pf.asarray(w.astype(np.float32), device=device))
            self.params.append(pf.zeros((fan_out,), dtype=pf.float32, device=device))

    def layers(self):
        """``(weight, bias, activation)`` of each layer."""
        n = len(self.params) // 2
        for i in range(n):
            yield self.params[2 * i], self.params[2 * i + 1], "relu" if i < n - 1 else None

    def forward(self, x):
        """The logits, and the input of every layer (what the backward pass needs)."""
        inputs = []
        for w, b, act in self.layers():
            inputs.append(x)
            x = nn.linear(x, w, b, activation=act)
        return x, inputs

    def backward(self, dlogits, inputs):
        """The gradients of the parameters (in ``params`` order) given the logits' gradient."""
        grads = []
        dy = dlogits
        for (w, b, act), x in reversed(list(zip(self.layers(), inputs))):
            dy, dw, db = nn.linear_backward(dy, x, w, b, activation=act)
            grads = [dw, db] + grads
        return grads


class SGD:
    """SGD with momentum (torch's form: ``v = mu v + g``, ``p -= lr v``), in place."""

    def __init__(self, params, lr=0.05, momentum=0.9):
        self.params, self.lr, self.mu = params, lr, momentum
        self.v = [pf.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, v in zip(self.params, grads, self.v):
            v *= self.mu
            v += g
            p -= self.lr * v


class Adam:
    """Adam (Kingma and Ba) with in-place pocaflow ops on each parameter."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = params
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [pf.zeros_like(p) for p in params]
        self.v = [pf.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        # The bias corrections folded into the step size and epsilon.
        c1 = 1 - self.b1**self.t
        c2 = 1 - self.b2**self.t
        lr = self.lr * math.sqrt(c2) / c1
        eps = self.eps * math.sqrt(c2)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * (g * g)
            p -= lr * (m / (pf.sqrt(v) + eps))


def progress(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def accuracy(model: MLP, x, y: np.ndarray) -> float:
    logits, _ = model.forward(x)
    return float((np.argmax(logits.numpy(), axis=1) == y).mean())


#: The default step size of each optimizer.
LR = {"sgd": 0.05, "adam": 2e-3}


def train(
    device: str = "cpu",
    epochs: int = 30,
    batch_size: int = 64,
    optimizer: str = "sgd",
    lr: float | None = None,
    hidden: int = 128,
    seed: int = 0,
    out=sys.stdout,
) -> dict:
    """Trains the MLP and returns the per-epoch mean losses, the test accuracy and the
    training steps per second (batches of the last epochs, after the first)."""
    x_tr, y_tr, x_te, y_te = load_digits(seed)
    model = MLP([x_tr.shape[1], hidden, hidden, 10], device, seed)
    opt = {"sgd": SGD, "adam": Adam}[optimizer](model.params, lr=lr or LR[optimizer])
    xt = pf.asarray(x_tr, device=device)
    yt = pf.asarray(y_tr, device=device)
    rng = np.random.default_rng(seed + 1)
    batches = [slice(i, i + batch_size) for i in range(0, len(y_tr), batch_size)]
    losses = []
    steps, seconds = 0, 0.0
    tty = getattr(out, "isatty", lambda: False)()
    for epoch in range(epochs):
        order = pf.asarray(rng.permutation(len(y_tr)), device=device)
        xs, ys = pf.take(xt, order, axis=0), pf.take(yt, order, axis=0)
        total = pf.zeros((), dtype=pf.float32, device=device)
        start = time.perf_counter()
        for k, sl in enumerate(batches):
            xb, yb = xs[sl], ys[sl]
            logits, inputs = model.forward(xb)
            total += nn.cross_entropy(logits, yb, reduction="sum")
            opt.step(model.backward(nn.cross_entropy_backward(logits, yb), inputs))
            if tty:
                print(f"\repoch {epoch + 1:3d} {progress(k + 1, len(batches))}", end="", file=out)
        loss = float(total) / len(y_tr)  # reading the loss waits for the epoch's work
        if epoch > 0:
            steps += len(batches)
            seconds += time.perf_counter() - start
        losses.append(loss)
        bar = progress(len(batches), len(batches))
        print(f"\repoch {epoch + 1:3d} {bar}  loss {loss:.4f}", file=out)
    acc = accuracy(model, pf.asarray(x_te, device=device), y_te)
    return {
        "losses": losses,
        "test_accuracy": acc,
        "steps_per_second": steps / seconds if seconds else float("nan"),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--lr", type=float, default=None, help="default: 0.05 (sgd), 0.002 (adam)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    r = train(a.device, a.epochs, a.batch_size, a.optimizer, a.lr, a.hidden, a.seed)
    print(f"test accuracy {r['test_accuracy']:.4f} on {a.device}")
    print(f"{r['steps_per_second']:.0f} training steps per second (batch {a.batch_size})")
    if r["test_accuracy"] < 0.95:
        raise SystemExit(f"test accuracy {r['test_accuracy']:.4f} is below 0.95")


if __name__ == "__main__":
    main()

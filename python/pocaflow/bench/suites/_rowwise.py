"""The row-wise ``pf.nn`` operations the nn suite times (softmax, log_softmax, layer_norm,
rms_norm, gelu), with their float64 references and each library's form of them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._peers import Peer, Unsupported

OPS = ("softmax", "log_softmax", "layer_norm w+b", "rms_norm w", "gelu")
LAYER_EPS, RMS_EPS = 1e-5, 1e-6


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def reference(op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``op`` in float64 on the host (gelu exact, through ``math.erf``)."""
    x, w, b = (a.astype(np.float64) for a in (x, w, b))
    if op in ("softmax", "log_softmax"):
        z = x - x.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return np.exp(z - lse) if op == "softmax" else z - lse
    if op == "layer_norm w+b":
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + LAYER_EPS) * w + b
    if op == "rms_norm w":
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + RMS_EPS) * w
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def call(peer: Peer, op: str, x: Any, w: Any, b: Any) -> Any:
    """The library's call of ``op`` on its arrays (:class:`Unsupported` where it has none)."""
    m, n = peer.module, x.shape[-1]
    if peer.name == "pocaflow":
        nn = m.nn
        return {
            "softmax": lambda: nn.softmax(x),
            "log_softmax": lambda: nn.log_softmax(x),
            "layer_norm w+b": lambda: nn.layer_norm(x, n, weight=w, bias=b),
            "rms_norm w": lambda: nn.rms_norm(x, n, weight=w),
            "gelu": lambda: nn.gelu(x),
        }[op]
    if peer.name == "torch":
        F = m.nn.functional
        return {
            "softmax": lambda: m.softmax(x, -1),
            "log_softmax": lambda: m.log_softmax(x, -1),
            "layer_norm w+b": lambda: F.layer_norm(x, (n,), w, b, eps=LAYER_EPS),
            "rms_norm w": lambda: F.rms_norm(x, (n,), w, eps=RMS_EPS),
            "gelu": lambda: F.gelu(x),
        }[op]
    if peer.name == "scipy":
        sp = m.special
        if op == "softmax":
            return lambda: sp.softmax(x, axis=-1)
        if op == "log_softmax":
            return lambda: sp.log_softmax(x, axis=-1)
        if op == "gelu":
            return lambda: 0.5 * x * (1.0 + sp.erf(x * np.float32(1 / math.sqrt(2.0))))
        raise Unsupported(f"SciPy has no {op}")
    if peer.name == "numpy":
        return _numpy(op, x, w, b)
    raise Unsupported(f"{peer.name} has no {op}")


def _numpy(op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> Any:
    """NumPy's forms: what a NumPy user writes (gelu needs erf: left to SciPy)."""

    def softmax():
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def log_softmax():
        z = x - x.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    def layer_norm():
        mean = x.mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + LAYER_EPS) * w + b

    def rms_norm():
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + RMS_EPS) * w

    if op == "gelu":
        raise Unsupported("NumPy has no erf")
    ops = {"softmax": softmax, "log_softmax": log_softmax}
    return (ops | {"layer_norm w+b": layer_norm, "rms_norm w": rms_norm})[op]

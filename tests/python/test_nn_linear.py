"""pf.nn.linear and pf.nn.linear_backward against NumPy float64: ranks 1 to 3, strided views,
odd and empty sizes, every activation, with and without bias, on every device; and every
rejected input."""

import math

import numpy as np
import pytest

import pocaflow as pf
from pocaflow.nn import linear, linear_backward

ACTIVATIONS = [None, "relu", "gelu", "gelu_tanh"]
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def act(name, z):
    if name is None:
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "gelu":
        return 0.5 * z * _erfc(-z / math.sqrt(2.0))
    u = math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)
    return 0.5 * z * (1.0 + np.tanh(u))


def act_grad(name, z):
    if name is None:
        return np.ones_like(z)
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "gelu":
        return 0.5 * _erfc(-z / math.sqrt(2.0)) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    c = math.sqrt(2.0 / math.pi)
    t = np.tanh(c * (z + 0.044715 * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * c * (1 + 3 * 0.044715 * z * z)


def host(t):
    """A tensor's values as float64 NumPy (through float32 for the half types)."""
    if t.dtype in (pf.float16, pf.bfloat16):
        t = pf.astype(t, pf.float32)
    return t.numpy().astype(np.float64)


DTYPES = ["float32", "float64", "float16", "bfloat16"]


def tol(dtype, k, want):
    """The bound of a sum of ``k`` products of magnitude at most 1 in ``dtype`` (the half
    types compute in float32 and round the result)."""
    unit = {"float32": 2.0**-23, "float64": 2.0**-52}.get(dtype, 2.0**-23)
    rnd = {"bfloat16": 2.0**-7, "float16": 2.0**-9}.get(dtype, 0.0)
    return 4 * (k + 1) * unit * (1 + np.abs(want)) + rnd * (np.abs(want) + math.sqrt(k + 1))


def close(got, want, dtype, k, what):
    assert got.shape == want.shape, (what, got.shape, want.shape)
    bound = tol(dtype, k, want)
    err = np.abs(got - want)
    assert np.all(err <= bound), f"{what}: max error {err.max():.3e}"


def reference(x, w, b, activation):
    z = x @ w.T + (0.0 if b is None else b)
    return act(activation, z)


def reference_backward(dy, x, w, b, activation):
    z = x @ w.T + (0.0 if b is None else b)
    dz = dy * act_grad(activation, z)
    rows = int(np.prod(x.shape[:-1]))
    x2 = x.reshape(rows, w.shape[1])
    dz2 = dz.reshape(rows, w.shape[0])
    return dz @ w, dz2.T @ x2, dz2.sum(axis=0)


CASES = [
    ((17,), 3),
    ((5, 3), 17),
    ((1, 65), 1),
    ((3, 17, 65), 65),
    ((2, 1, 3, 1), 17),
    ((0, 17), 3),
    ((4, 0, 3), 5),
    ((3, 0), 4),
    ((130, 96), 70),
]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_and_backward_match_numpy(device, activation, rng):
    for dtype in DTYPES:
        for xs, out in CASES:
            inf = xs[-1]
            x = pf.asarray(rng.uniform(-1, 1, xs), dtype=dtype, device=device)
            w = pf.asarray(rng.uniform(-1, 1, (out, inf)), dtype=dtype, device=device)
            b = pf.asarray(rng.uniform(-1, 1, (out,)), dtype=dtype, device=device)
            dy = pf.asarray(rng.uniform(-1, 1, (*xs[:-1], out)), dtype=dtype, device=device)
            xv, wv, bv, dyv = host(x), host(w), host(b), host(dy)
            m = int(np.prod(xs[:-1]))
            kz = inf if activation else 0
            for bias in (None, b):
                bref = None if bias is None else bv
                what = f"{device} {dtype} x {xs} out {out} bias {bias is not None} {activation}"
                y = linear(x, w, bias, activation=activation)
                assert y.dtype == x.dtype and y.device == x.device
                close(host(y), reference(xv, wv, bref, activation), dtype, inf, what)
                dx, dw, db = linear_backward(dy, x, w, bias, activation=activation)
                rdx, rdw, rdb = reference_backward(dyv, xv, wv, bref, activation)
                close(host(dx), rdx, dtype, out * (kz + 1), what + " dx")
                close(host(dw), rdw, dtype, m * (kz + 1), what + " dw")
                if bias is None:
                    assert db is None
                else:
                    close(host(db), rdb, dtype, m * (kz + 1), what + " db")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_strided_operands(device, activation, rng):
    for dtype in ["float32", "float64"]:
        xbig = rng.uniform(-1, 1, (3, 9, 40))
        wt = rng.uniform(-1, 1, (17, 5))
        bbig = rng.uniform(-1, 1, (10,))
        x = pf.asarray(xbig, dtype=dtype, device=device)[:, ::2, 3:20]
        w = pf.asarray(wt, dtype=dtype, device=device).T
        b = pf.asarray(bbig, dtype=dtype, device=device)[1::2]
        xv, wv, bv = xbig[:, ::2, 3:20], wt.T, bbig[1::2]
        y = linear(x, w, b, activation=activation)
        close(host(y), reference(xv, wv, bv, activation), dtype, 17, f"{device} {dtype}")
        dyv = rng.uniform(-1, 1, y.shape)
        dy = pf.asarray(dyv, dtype=dtype, device=device)
        dx, dw, db = linear_backward(dy, x, w, b, activation=activation)
        rdx, rdw, rdb = reference_backward(dyv, xv, wv, bv, activation)
        close(host(dx), rdx, dtype, 5 * 18, "dx")
        close(host(dw), rdw, dtype, 15 * 18, "dw")
        close(host(db), rdb, dtype, 15 * 18, "db")


def test_large_product_uses_every_tile_once(device, rng):
    # k beyond one CPU cache block, several threads, edge tiles on both sides.
    x = rng.uniform(-1, 1, (301, 600))
    w = rng.uniform(-1, 1, (257, 600))
    b = rng.uniform(-1, 1, (257,))
    for activation in ACTIVATIONS:
        y = linear(
            pf.asarray(x, device=device),
            pf.asarray(w, device=device),
            pf.asarray(b, device=device),
            activation=activation,
        )
        close(host(y), reference(x, w, b, activation), "float64", 600, str(activation))


def test_rejected_inputs(xdev):
    z = lambda *s, dtype="float32": pf.zeros(s, dtype=dtype, device=xdev)  # noqa: E731
    x = z(4, 5)
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(3, 6\).*\(out, 5\)"):
        linear(x, z(3, 6))
    with pytest.raises(ValueError, match=r"bias has shape \(4,\)"):
        linear(x, z(3, 5), z(4))
    with pytest.raises(ValueError, match="2-D"):
        linear(x, z(15))
    with pytest.raises(ValueError, match="dy"):
        linear_backward(z(4, 4), x, z(3, 5))
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        linear(x, z(3, 5), activation="tanh")
    with pytest.raises(ValueError, match="unknown activation"):
        linear_backward(z(4, 3), x, z(3, 5), activation="GELU")
    with pytest.raises(TypeError):
        linear(z(4, 5, dtype="int32"), z(3, 5, dtype="int32"))
    with pytest.raises(TypeError):
        linear(x, z(3, 5, dtype="float64"))
    with pytest.raises(TypeError):
        linear(x, z(3, 5), z(3, dtype="int64"))
    with pytest.raises(TypeError, match="pocaflow.Tensor"):
        linear(np.zeros((4, 5)), z(3, 5))


@pytest.mark.cuda
def test_mixed_devices_are_rejected():
    x = pf.zeros((4, 5), device="cpu")
    with pytest.raises(RuntimeError, match="device"):
        linear(x, pf.zeros((3, 5), device="cuda"))
    with pytest.raises(RuntimeError, match="device"):
        linear(x, pf.zeros((3, 5), device="cpu"), pf.zeros((3,), device="cuda"))

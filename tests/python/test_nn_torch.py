"""``pf.nn`` on CUDA against torch.autograd on the same inputs (the GPU machine has torch):
each forward op's output and each ``*_backward``'s gradients against torch's, in float32,
bfloat16 and float64. Marked ``cuda``: they fail, not skip, under ``POCAFLOW_REQUIRE_CUDA=1``
without a GPU."""

import numpy as np
import pytest

import pocaflow as pf

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.cuda

DTYPES = {
    "float32": (torch.float32, 2e-5),
    "float64": (torch.float64, 1e-12),
    "bfloat16": (torch.bfloat16, 2e-2),
}


def pair(x: np.ndarray, name: str, grad: bool = True):
    """``x`` on the GPU in both libraries, as dtype ``name`` (torch's requiring a gradient)."""
    tdt = DTYPES[name][0]
    t = torch.as_tensor(x, device="cuda").to(tdt)
    p = pf.astype(pf.asarray(x, device="cuda"), getattr(pf, name))
    if grad:
        t.requires_grad_(True)
    return p, t


def close(p, t, name, scale=1.0):
    got = pf.astype(p, pf.float64).numpy()
    want = t.detach().double().cpu().numpy()
    tol = DTYPES[name][1] * max(scale, float(np.abs(want).max()) if want.size else 0.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("name", list(DTYPES))
@pytest.mark.parametrize("n", [3, 4097])
def test_softmax_family_against_autograd(rng, name, n):
    x = rng.standard_normal((6, n)) * 3
    dy = rng.standard_normal((6, n))
    for fwd, bwd, tf in (
        (pf.nn.softmax, pf.nn.softmax_backward, torch.softmax),
        (pf.nn.log_softmax, pf.nn.log_softmax_backward, torch.log_softmax),
    ):
        px, tx = pair(x, name)
        pdy, tdy = pair(dy, name, grad=False)
        py, ty = fwd(px), tf(tx, -1)
        close(py, ty, name)
        ty.backward(tdy)
        close(bwd(pdy, py), tx.grad, name)


@pytest.mark.parametrize("name", list(DTYPES))
@pytest.mark.parametrize("n", [5, 4097])
def test_norms_against_autograd(rng, name, n):
    x = rng.standard_normal((4, n)) + 1
    w, b = rng.standard_normal(n), rng.standard_normal(n)
    dy = rng.standard_normal((4, n))
    px, tx = pair(x, name)
    pw, tw = pair(w, name)
    pb, tb = pair(b, name)
    pdy, tdy = pair(dy, name, grad=False)
    ty = F.layer_norm(tx, (n,), tw, tb)
    close(pf.nn.layer_norm(px, n, weight=pw, bias=pb), ty, name)
    ty.backward(tdy)
    dx, dw, db = pf.nn.layer_norm_backward(pdy, px, n, weight=pw, bias=pb)
    close(dx, tx.grad, name)
    close(dw, tw.grad, name, scale=4.0)
    close(db, tb.grad, name, scale=4.0)
    px, tx = pair(x, name)
    pw, tw = pair(w, name)
    ty = F.rms_norm(tx, (n,), tw, eps=1e-6)
    close(pf.nn.rms_norm(px, n, weight=pw), ty, name)
    ty.backward(tdy)
    dx, dw = pf.nn.rms_norm_backward(pdy, px, n, weight=pw)
    close(dx, tx.grad, name)
    close(dw, tw.grad, name, scale=4.0)


@pytest.mark.parametrize("name", list(DTYPES))
def test_activations_and_cross_entropy_against_autograd(rng, name):
    x = rng.standard_normal((8, 33)) * 3
    dy = rng.standard_normal((8, 33))
    pdy, tdy = pair(dy, name, grad=False)
    for fwd, bwd, tf in (
        (pf.nn.relu, pf.nn.relu_backward, F.relu),
        (pf.nn.gelu, pf.nn.gelu_backward, F.gelu),
        (
            lambda v: pf.nn.gelu(v, approximate="tanh"),
            lambda d, v: pf.nn.gelu_backward(d, v, approximate="tanh"),
            lambda v: F.gelu(v, approximate="tanh"),
        ),
        (pf.nn.silu, pf.nn.silu_backward, F.silu),
    ):
        px, tx = pair(x, name)
        ty = tf(tx)
        close(fwd(px), ty, name)
        ty.backward(tdy)
        close(bwd(pdy, px), tx.grad, name)
    px, tx = pair(x, name)
    ty = torch.sigmoid(tx)
    close(pf.nn.sigmoid(px), ty, name)
    ty.backward(tdy)
    close(pf.nn.sigmoid_backward(pdy, pf.nn.sigmoid(px)), tx.grad, name, scale=4.0)
    target = rng.integers(0, 33, size=8)
    pt, tt = pf.asarray(target, device="cuda"), torch.as_tensor(target, device="cuda")
    for reduction in ("mean", "sum", "none"):
        px, tx = pair(x, name)
        loss = F.cross_entropy(tx, tt, reduction=reduction)
        close(pf.nn.cross_entropy(px, pt, reduction=reduction), loss, name, scale=8.0)
        loss.sum().backward()
        close(pf.nn.cross_entropy_backward(px, pt, reduction=reduction), tx.grad, name)

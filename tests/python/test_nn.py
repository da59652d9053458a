"""``pf.nn`` against NumPy float64 references: activations, softmax, log-softmax, layer and RMS
norm and cross-entropy, forward and backward, on every device and float dtype; odd row lengths
(1, 3, 4097), zero-size batches, non-contiguous inputs and bad input.

Backward ops are checked twice: against the analytic float64 gradient, and (in float64) against
central finite differences of the forward op through a random projection ``sum(y * r)``.
Tolerances are in units of the dtype's epsilon times the scale of the row (``float16`` and
``bfloat16`` compute in float32 and round once, so they are held to about one of their ulps).
"""

import math

import numpy as np
import pytest

import pocaflow as pf
from helpers import FLOAT_EPS, FLOAT_NAMES, np_dtype, round_to

erfc = np.vectorize(math.erfc, otypes=[np.float64])

#: Tolerance in epsilons of each dtype (float32 sums over thousands of elements).
EPS_TOL = {"float16": 2.0, "bfloat16": 2.0, "float32": 64.0, "float64": 64.0}


def sample(rng, shape, name, scale=3.0):
    """Normal values rounded to dtype ``name``, returned as float64 (exact in the dtype)."""
    return round_to(rng.standard_normal(shape) * scale, name).astype(np.float64)


def to_pf(a, name, device):
    return pf.asarray(np.asarray(a, dtype=np_dtype(name)), dtype=name, device=device)


def assert_close(t, want, name, scale=None, tol=None):
    """``t`` (dtype ``name``) is within ``tol`` epsilons of ``want`` times ``max(|want|, scale)``
    (``scale`` defaults to the largest magnitude along the last axis)."""
    assert isinstance(t, pf.Tensor), type(t)
    want = np.asarray(want, dtype=np.float64)
    assert t.shape == want.shape, (t.shape, want.shape)
    assert t.dtype == name, (t.dtype, name)
    got = t.numpy().astype(np.float64)
    if want.size == 0:
        return
    if scale is None:
        scale = np.abs(want).max(axis=-1, keepdims=True) if want.ndim else abs(want)
    bound = (tol or EPS_TOL[name]) * FLOAT_EPS[name] * np.maximum(np.abs(want), scale)
    err = np.abs(got - want)
    assert np.all(err <= bound), (
        f"max error {err.max():.3g} beyond the bound (worst excess {(err - bound).max():.3g}) "
        f"at {np.unravel_index(np.argmax(err - bound), err.shape)}"
    )


# --- float64 references ---------------------------------------------------------------------------


def ref_gelu(x):
    return x * 0.5 * erfc(-x / math.sqrt(2))


def ref_gelu_grad(x):
    return 0.5 * erfc(-x / math.sqrt(2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


K = math.sqrt(2 / math.pi)


def ref_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(K * (x + 0.044715 * x**3)))


def ref_gelu_tanh_grad(x):
    t = np.tanh(K * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * 0.044715 * x * x)


def ref_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def ref_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ref_layer_norm(x, k, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def ref_rms_norm(x, k, w=None, eps=1e-6):
    axes = tuple(range(x.ndim - k, x.ndim))
    y = x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
    return y * (1 if w is None else w)


def finite_difference(f, x, r, points, h=1e-6):
    """d/dx of ``sum(f(x) * r)`` at ``points`` (flat indices) by central differences."""
    out = []
    for p in points:
        xp, xm = x.copy(), x.copy()
        xp.flat[p] += h
        xm.flat[p] -= h
        out.append(((f(xp) * r).sum() - (f(xm) * r).sum()) / (2 * h))
    return np.array(out)


# --- activations ----------------------------------------------------------------------------------

ACTIVATIONS = {
    "relu": (lambda x: pf.nn.relu(x), lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
    "gelu": (lambda x: pf.nn.gelu(x), ref_gelu, ref_gelu_grad),
    "gelu_tanh": (lambda x: pf.nn.gelu(x, approximate="tanh"), ref_gelu_tanh, ref_gelu_tanh_grad),
    "silu": (
        lambda x: pf.nn.silu(x),
        lambda x: x * ref_sigmoid(x),
        lambda x: ref_sigmoid(x) * (1 + x * (1 - ref_sigmoid(x))),
    ),
    "sigmoid": (
        lambda x: pf.nn.sigmoid(x),
        ref_sigmoid,
        lambda x: ref_sigmoid(x) * (1 - ref_sigmoid(x)),
    ),
}


def act_backward(name, dy, x):
    if name == "relu":
        return pf.nn.relu_backward(dy, x)
    if name == "gelu":
        return pf.nn.gelu_backward(dy, x)
    if name == "gelu_tanh":
        return pf.nn.gelu_backward(dy, x, approximate="tanh")
    if name == "silu":
        return pf.nn.silu_backward(dy, x)
    return pf.nn.sigmoid_backward(dy, pf.nn.sigmoid(x))


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_activation_forward_and_backward(device, rng, act, name):
    fwd, ref, grad = ACTIVATIONS[act]
    x = sample(rng, (37, 129), name)
    x[0, :6] = [0.0, -0.0, 40.0, -40.0, 1e-3, -1e-3]
    t = to_pf(x, name, device)
    want = ref(x)
    assert_close(fwd(t), want, name, scale=1.0, tol=4.0 if name[-2:] in ("32", "64") else 2.0)
    # Non-contiguous input: the transposed and a strided view.
    assert_close(fwd(t.mT), want.T, name, scale=1.0, tol=4.0 if name[-2:] in "3264" else 2.0)
    assert_close(fwd(t[:, ::3]), want[:, ::3], name, scale=1.0, tol=8.0)
    dy = sample(rng, x.shape, name, 1.0)
    got = act_backward(act, to_pf(dy, name, device), to_pf(x, name, device))
    # sigmoid_backward takes the (rounded) forward output, so bfloat16/float16 differ by more;
    # gelu_tanh's derivative loses about |x|^3 / 10 ulps to the cancellation in 1 - tanh^2.
    tol = 64.0 if name in ("float32", "float64") else (16.0 if act == "sigmoid" else 4.0)
    assert_close(got, dy * grad(x), name, scale=1.0, tol=tol)


def test_activation_special_values(device):
    x = pf.asarray(np.array([0.0, -0.0, np.nan, np.inf, -np.inf], np.float32), device=device)
    assert pf.nn.relu(x).numpy().tolist()[:2] == [0.0, 0.0]
    assert np.isnan(pf.nn.relu(x).numpy()[2])
    assert pf.nn.relu(x).numpy()[3:].tolist() == [np.inf, 0.0]
    assert np.isnan(pf.nn.gelu(x).numpy()[2])
    assert pf.nn.gelu(x).numpy()[3:].tolist() == [np.inf, -0.0]
    assert pf.nn.sigmoid(x).numpy()[3:].tolist() == [1.0, 0.0]
    ones = pf.ones((5,), dtype=pf.float32, device=device)
    # The gradient of relu at exactly 0 is 0 (torch's convention).
    assert pf.nn.relu_backward(ones, x).numpy()[:2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "silu"])
def test_activation_backward_finite_differences(device, rng, act):
    x = rng.standard_normal(50) * 2
    r = rng.standard_normal(50)
    fwd = ACTIVATIONS[act][0]

    def f(v):
        return fwd(pf.asarray(v, device=device)).numpy()

    got = act_backward(act, pf.asarray(r, device=device), pf.asarray(x, device=device)).numpy()
    pts = list(range(0, 50, 7))
    # The forward op is elementwise, so d sum(f * r)/dx_p = r_p f'(x_p).
    fd = finite_difference(f, x, r, pts)
    np.testing.assert_allclose(got[pts], fd, rtol=1e-6, atol=1e-8)


def test_activation_errors(device):
    x = pf.asarray(np.arange(6).reshape(2, 3), device=device)
    with pytest.raises(TypeError, match="floating-point"):
        pf.nn.relu(x)
    f = pf.asarray(np.ones((2, 3), np.float32), device=device)
    g = pf.asarray(np.ones((3, 2), np.float32), device=device)
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)|\(2, 3\).*\(3, 2\)"):
        pf.nn.relu_backward(g, f)
    with pytest.raises(ValueError, match="approximate"):
        pf.nn.gelu(f, approximate="erf")


# --- softmax and log-softmax ----------------------------------------------------------------------


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("n", [1, 3, 4, 33, 4097])
def test_softmax_rows(device, rng, name, n):
    x = sample(rng, (5, n), name)
    t = to_pf(x, name, device)
    assert_close(pf.nn.softmax(t), ref_softmax(x), name)
    assert_close(pf.nn.log_softmax(t), ref_log_softmax(x), name, scale=np.log(n) + 1.0)


@pytest.mark.parametrize("name", ["float32", "float64", "bfloat16"])
def test_softmax_axes_and_layouts(device, rng, name):
    x = sample(rng, (4, 6, 5), name)
    t = to_pf(x, name, device)
    for axis in (0, 1, 2, -1, -2):
        assert_close(pf.nn.softmax(t, axis=axis), ref_softmax(x, axis), name, scale=1.0)
        assert_close(pf.nn.log_softmax(t, axis=axis), ref_log_softmax(x, axis), name, scale=4.0)
    xt = x.transpose(2, 0, 1)
    assert_close(pf.nn.softmax(t.permute_dims((2, 0, 1))), ref_softmax(xt), name, scale=1.0)
    assert_close(pf.nn.softmax(t[:, ::2, ::-1]), ref_softmax(x[:, ::2, ::-1]), name, scale=1.0)


def test_softmax_is_stable_and_propagates_nan(device):
    x = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1e30], [0.0, np.nan, 1.0]])
    t = pf.asarray(x.astype(np.float32), device=device)
    y = pf.nn.softmax(t).numpy()
    np.testing.assert_allclose(y[:2], ref_softmax(x[:2]), rtol=1e-6, atol=1e-30)
    assert np.isnan(y[2]).all()
    ls = pf.nn.log_softmax(t).numpy()
    np.testing.assert_allclose(ls[0], ref_log_softmax(x[:1])[0], rtol=1e-6)
    assert np.isfinite(ls[:2, :2]).all()


def test_softmax_zero_size_and_0d(device):
    for shape in [(0, 5), (3, 0), (0,)]:
        t = pf.zeros(shape, dtype=pf.float32, device=device)
        assert pf.nn.softmax(t).shape == shape
        assert pf.nn.log_softmax(t).shape == shape
    s = pf.nn.softmax(pf.asarray(np.float32(3.0), device=device))
    assert s.shape == () and float(s) == 1.0


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("n", [1, 7, 4097])
def test_softmax_backward(device, rng, name, n):
    x = sample(rng, (3, n), name)
    dy = sample(rng, (3, n), name, 1.0)
    y = ref_softmax(x)
    yr = round_to(y, name).astype(np.float64)
    got = pf.nn.softmax_backward(to_pf(dy, name, device), to_pf(yr, name, device))
    want = yr * (dy - (dy * yr).sum(-1, keepdims=True))
    assert_close(got, want, name, scale=np.abs(dy).max() * yr.max(), tol=8.0)
    ly = round_to(ref_log_softmax(x), name).astype(np.float64)
    got = pf.nn.log_softmax_backward(to_pf(dy, name, device), to_pf(ly, name, device))
    want = dy - np.exp(ly) * dy.sum(-1, keepdims=True)
    assert_close(got, want, name, scale=np.abs(dy).sum(-1, keepdims=True), tol=8.0)


def test_softmax_backward_finite_differences(device, rng):
    x = rng.standard_normal((3, 9))
    r = rng.standard_normal((3, 9))
    for axis in (-1, 0):
        for fwd, bwd in (
            (pf.nn.softmax, pf.nn.softmax_backward),
            (pf.nn.log_softmax, pf.nn.log_softmax_backward),
        ):

            def f(v, fwd=fwd, axis=axis):
                return fwd(pf.asarray(v, device=device), axis=axis).numpy()

            y = fwd(pf.asarray(x, device=device), axis=axis)
            got = bwd(pf.asarray(r, device=device), y, axis=axis).numpy()
            pts = [0, 4, 13, 26]
            np.testing.assert_allclose(got.flat[pts], finite_difference(f, x, r, pts), atol=1e-7)


def test_softmax_errors(device):
    t = pf.ones((2, 3), dtype=pf.float32, device=device)
    with pytest.raises(IndexError):
        pf.nn.softmax(t, axis=2)
    with pytest.raises(TypeError, match="floating-point"):
        pf.nn.softmax(pf.ones((2, 3), dtype=pf.int32, device=device))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        pf.nn.softmax_backward(pf.ones((3, 2), dtype=pf.float32, device=device), t)


# --- normalizations -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("shape,k", [((4, 1), 1), ((5, 3), 1), ((2, 3, 4097), 1), ((3, 4, 5), 2)])
@pytest.mark.parametrize("affine", [False, True])
def test_norms_forward(device, rng, name, shape, k, affine):
    x = sample(rng, shape, name) + 2.0
    ns = shape[len(shape) - k :]
    w = sample(rng, ns, name, 1.0) if affine else None
    b = sample(rng, ns, name, 1.0) if affine else None
    t = to_pf(x, name, device)
    wt = None if w is None else to_pf(w, name, device)
    bt = None if b is None else to_pf(b, name, device)
    # The scale of a normalized row: a few units, times the weights.
    scale = 4.0 * (1.0 if w is None else np.abs(w).max()) + (0 if b is None else np.abs(b).max())
    got = pf.nn.layer_norm(t, ns, weight=wt, bias=bt)
    assert_close(got, ref_layer_norm(x, k, w, b), name, scale=scale, tol=16.0)
    got = pf.nn.rms_norm(t, ns, weight=wt)
    assert_close(got, ref_rms_norm(x, k, w), name, scale=scale, tol=16.0)


def test_norms_layouts_and_eps(device, rng):
    x = rng.standard_normal((6, 8))
    t = pf.asarray(x, device=device)
    np.testing.assert_allclose(
        pf.nn.layer_norm(t.mT, 6).numpy(), ref_layer_norm(x.T, 1), atol=1e-12
    )
    np.testing.assert_allclose(
        pf.nn.rms_norm(t[:, ::2], 4, eps=0.5).numpy(),
        ref_rms_norm(x[:, ::2], 1, eps=0.5),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        pf.nn.layer_norm(t, (8,), eps=0.1).numpy(), ref_layer_norm(x, 1, eps=0.1), atol=1e-12
    )
    z = pf.zeros((0, 8), dtype=pf.float32, device=device)
    assert pf.nn.layer_norm(z, 8).shape == (0, 8)
    assert (
        pf.nn.rms_norm_backward(z, z, 8, weight=pf.ones(8, device=device))[1].numpy().tolist()
        == [0.0] * 8
    )


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("shape,k", [((4, 1), 1), ((5, 3), 1), ((3, 4097), 1), ((3, 4, 5), 2)])
def test_norms_backward(device, rng, name, shape, k):
    x = sample(rng, shape, name) + 1.0
    dy = sample(rng, shape, name, 1.0)
    ns = shape[len(shape) - k :]
    w = sample(rng, ns, name, 1.0)
    b = sample(rng, ns, name, 1.0)
    axes = tuple(range(len(shape) - k, len(shape)))
    lead = tuple(range(len(shape) - k))
    n = int(np.prod(ns))
    t, dyt, wt, bt = (to_pf(a, name, device) for a in (x, dy, w, b))
    # Layer norm: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w.
    mu = x.mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + 1e-5)
    xhat = (x - mu) * rstd
    g = dy * w
    dx = rstd * (
        g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)
    )
    got_dx, got_dw, got_db = pf.nn.layer_norm_backward(dyt, t, ns, weight=wt, bias=bt)
    gscale = np.abs(rstd * g).max(axis=axes, keepdims=True) * 3
    assert_close(got_dx, dx, name, scale=gscale, tol=32.0)
    rows = x.size // n
    sscale = np.sqrt(rows) * 4 + 1
    assert_close(got_dw, (dy * xhat).sum(axis=lead), name, scale=sscale, tol=32.0)
    assert_close(got_db, dy.sum(axis=lead), name, scale=sscale, tol=32.0)
    dx2, dw2, db2 = pf.nn.layer_norm_backward(dyt, t, ns)
    assert dw2 is None and db2 is None
    dxn = rstd * (
        dy - dy.mean(axis=axes, keepdims=True) - xhat * (dy * xhat).mean(axis=axes, keepdims=True)
    )
    assert_close(
        dx2, dxn, name, scale=np.abs(rstd * dy).max(axis=axes, keepdims=True) * 3, tol=32.0
    )
    # RMS norm: dx = rstd (g - xhat mean(g xhat)).
    rstd = 1 / np.sqrt((x * x).mean(axis=axes, keepdims=True) + 1e-6)
    xhat = x * rstd
    dx = rstd * (g - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    got_dx, got_dw = pf.nn.rms_norm_backward(dyt, t, ns, weight=wt)
    assert_close(
        got_dx, dx, name, scale=np.abs(rstd * g).max(axis=axes, keepdims=True) * 3, tol=32.0
    )
    assert_close(got_dw, (dy * xhat).sum(axis=lead), name, scale=sscale, tol=32.0)


def test_norms_backward_finite_differences(device, rng):
    x = rng.standard_normal((3, 7)) + 0.5
    r = rng.standard_normal((3, 7))
    w = rng.standard_normal(7)
    b = rng.standard_normal(7)
    wt, bt, rt = (pf.asarray(a, device=device) for a in (w, b, r))
    pts = [0, 5, 11, 20]

    def ln(v):
        return pf.nn.layer_norm(pf.asarray(v, device=device), 7, weight=wt, bias=bt).numpy()

    def rms(v):
        return pf.nn.rms_norm(pf.asarray(v, device=device), 7, weight=wt).numpy()

    dx, dw, db = pf.nn.layer_norm_backward(rt, pf.asarray(x, device=device), 7, weight=wt, bias=bt)
    np.testing.assert_allclose(dx.numpy().flat[pts], finite_difference(ln, x, r, pts), atol=1e-7)

    def ln_w(v):
        return pf.nn.layer_norm(
            pf.asarray(x, device=device), 7, weight=pf.asarray(v, device=device), bias=bt
        ).numpy()

    np.testing.assert_allclose(
        dw.numpy()[[0, 3, 6]], finite_difference(ln_w, w, r, [0, 3, 6]), atol=1e-7
    )
    np.testing.assert_allclose(db.numpy(), r.sum(0), atol=1e-12)
    dx, dw = pf.nn.rms_norm_backward(rt, pf.asarray(x, device=device), 7, weight=wt)
    np.testing.assert_allclose(dx.numpy().flat[pts], finite_difference(rms, x, r, pts), atol=1e-7)


def test_norm_errors(device):
    x = pf.ones((4, 5), dtype=pf.float32, device=device)
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\).*\(4, 5\)"):
        pf.nn.layer_norm(x, 4)
    with pytest.raises(ValueError, match=r"weight has shape \(4,\)"):
        pf.nn.layer_norm(x, 5, weight=pf.ones(4, device=device))
    with pytest.raises(ValueError, match=r"bias has shape \(6,\)"):
        pf.nn.layer_norm(x, 5, bias=pf.ones(6, device=device))
    with pytest.raises(ValueError, match="eps"):
        pf.nn.rms_norm(x, 5, eps=-1.0)
    with pytest.raises(TypeError, match="floating-point"):
        pf.nn.rms_norm(pf.ones((4, 5), dtype=pf.int8, device=device), 5)


# --- cross-entropy --------------------------------------------------------------------------------


def ref_cross_entropy(logits, target, reduction):
    ls = ref_log_softmax(np.moveaxis(logits, 1, -1) if logits.ndim > 2 else logits)
    picked = -np.take_along_axis(ls, target[..., None], -1)[..., 0]
    return {"mean": picked.mean(), "sum": picked.sum(), "none": picked}[reduction]


def ref_cross_entropy_grad(logits, target, reduction):
    moved = np.moveaxis(logits, 1, -1) if logits.ndim > 2 else logits
    p = ref_softmax(moved)
    np.put_along_axis(p, target[..., None], np.take_along_axis(p, target[..., None], -1) - 1, -1)
    if reduction == "mean":
        p /= target.size
    return np.moveaxis(p, -1, 1) if logits.ndim > 2 else p


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(8, 10), (10,), (3, 5, 4), (1, 1)])
def test_cross_entropy(device, rng, name, reduction, shape):
    logits = sample(rng, shape, name)
    c = shape[1] if len(shape) > 1 else shape[0]
    tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, c, size=tshape)
    lt, tt = to_pf(logits, name, device), pf.asarray(target, device=device)
    got = pf.nn.cross_entropy(lt, tt, reduction=reduction)
    want = ref_cross_entropy(logits, target, reduction)
    assert got.shape == np.shape(want)
    scale = np.abs(logits).max() * 4 * (1 if reduction != "sum" else max(target.size, 1))
    assert_close(got, want, name, scale=scale, tol=16.0)
    grad = pf.nn.cross_entropy_backward(lt, tt, reduction=reduction)
    assert_close(grad, ref_cross_entropy_grad(logits, target, reduction), name, scale=1.0, tol=16.0)


def test_cross_entropy_finite_differences(device, rng):
    logits = rng.standard_normal((4, 6))
    target = rng.integers(0, 6, size=4)
    tt = pf.asarray(target, device=device)
    for reduction in ("mean", "sum"):

        def f(v, reduction=reduction):
            return pf.nn.cross_entropy(
                pf.asarray(v, device=device), tt, reduction=reduction
            ).numpy()

        got = pf.nn.cross_entropy_backward(
            pf.asarray(logits, device=device), tt, reduction=reduction
        )
        pts = [0, 7, 15, 23]
        fd = finite_difference(f, logits, np.float64(1.0), pts)
        np.testing.assert_allclose(got.numpy().flat[pts], fd, atol=1e-8)


def test_cross_entropy_errors(device):
    logits = pf.ones((3, 4), dtype=pf.float32, device=device)
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        pf.nn.cross_entropy(logits, pf.asarray(np.array([0, 4, 1]), device=device))
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        pf.nn.cross_entropy(logits, pf.asarray(np.array([0, -1, 1]), device=device))
    with pytest.raises(IndexError):
        pf.nn.cross_entropy_backward(logits, pf.asarray(np.array([9, 0, 1]), device=device))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3,\).*\(2,\)"):
        pf.nn.cross_entropy(logits, pf.asarray(np.array([0, 1]), device=device))
    with pytest.raises(TypeError, match="integer"):
        pf.nn.cross_entropy(logits, pf.ones((3,), dtype=pf.float32, device=device))
    with pytest.raises(ValueError, match="reduction"):
        pf.nn.cross_entropy(logits, pf.asarray(np.array([0, 1, 2]), device=device), reduction="avg")
    z = pf.nn.cross_entropy(
        pf.zeros((0, 4), device=device),
        pf.asarray(np.zeros(0, np.int64), device=device),
        reduction="sum",
    )
    assert float(z) == 0.0

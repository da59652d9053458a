"""pf.matmul against NumPy float64: random shapes, dtypes, memory orders, batch broadcasting,
1-D operands, out=, NaN and inf; and every rejected input."""

import threading
import time

import numpy as np
import pytest

import pocaflow as pf
from helpers import check_matmul, rel_error

DIMS = [0, 1, 2, 3, 5, 7, 13, 31, 33, 64, 97, 130, 257]
ORDERS = ["C", "F", "T", "sliced", "reversed", "view"]


def operand(rng, shape, dtype, order, device):
    """A tensor holding random values of ``shape``, built through memory order ``order``;
    returns the tensor and the NumPy array of its values."""
    shape = tuple(shape)
    if order == "C":
        arr = rng.standard_normal(shape).astype(dtype)
    elif order == "F":
        arr = np.asfortranarray(rng.standard_normal(shape).astype(dtype))
    elif order == "T":  # the last two axes swapped: an F-order matrix stack
        swapped = shape[:-2] + shape[::-1][:2] if len(shape) >= 2 else shape
        arr = rng.standard_normal(swapped).astype(dtype)
        arr = np.swapaxes(arr, -1, -2) if len(shape) >= 2 else arr
    elif order == "sliced":
        big = rng.standard_normal(tuple(2 * n + 1 for n in shape)).astype(dtype)
        arr = big[tuple(slice(1, None, 2) for _ in shape)]
    elif order == "reversed":
        arr = rng.standard_normal(shape).astype(dtype)[tuple(slice(None, None, -1) for _ in shape)]
    else:  # a pocaflow view: the transpose of a C-order tensor of the reversed shape
        base = rng.standard_normal(shape[::-1]).astype(dtype)
        return pf.Tensor.from_array(base, device=device).T, base.T
    return pf.Tensor.from_array(arr, device=device), arr


def random_case(rng):
    """Shapes of a random matmul: 1-D to 4-D operands with broadcastable batch dimensions."""
    m, k, n = (int(rng.choice(DIMS)) for _ in range(3))
    batch = [int(rng.choice([1, 2, 3])) for _ in range(int(rng.integers(0, 3)))]
    a_batch = [b if rng.random() < 0.7 else 1 for b in batch][
        int(rng.integers(0, len(batch) + 1)) :
    ]
    b_batch = [b if rng.random() < 0.7 else 1 for b in batch]
    a_shape = [k] if rng.random() < 0.15 else [*a_batch, m, k]
    b_shape = [k] if rng.random() < 0.15 else [*b_batch, k, n]
    if max(len(a_shape), len(b_shape)) > 2 and (m * k * n) > 40000:
        a_shape, b_shape = a_shape[-2:], b_shape[-2:]  # keep batched cases small
    return a_shape, b_shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_shapes_orders_and_batches(device, dtype, rng):
    for _ in range(120):
        a_shape, b_shape = random_case(rng)
        ta, a = operand(rng, a_shape, dtype, rng.choice(ORDERS), device)
        tb, b = operand(rng, b_shape, dtype, rng.choice(ORDERS), device)
        tc = pf.matmul(ta, tb)
        assert tc.shape == np.matmul(a, b).shape
        assert tc.device == device or str(tc.device).startswith(device)
        check_matmul(tc.numpy(), a, b)


#: Unit roundoff of the half types: a product rounded once from float32 is within this much of
#: the exact value, relatively, past float32's own accumulation error.
HALF_U = {"float16": 2.0**-11, "bfloat16": 2.0**-8}


def half_operand(rng, shape, dtype, order, device):
    """A float16 or bfloat16 tensor of random values in layout ``order`` and the float64 values
    it holds (the inputs as rounded)."""
    t, _ = operand(rng, shape, np.float32, order, device)
    h = t.astype(dtype)
    if order == "T" and h.ndim >= 2:
        h = h.mT.contiguous().mT  # astype copies: back to a transposed layout
    return h, h.astype(pf.float64).numpy()


def check_half(got, a, b, dtype):
    """``got`` (a tensor of ``dtype``) is the product of the float64 values ``a`` and ``b``
    computed in float32 and rounded once: within float32's bound for k products plus one
    rounding to ``dtype``."""
    assert got.dtype == dtype
    got = got.astype(pf.float64).numpy()
    want = np.matmul(a, b)
    assert got.shape == want.shape
    k = a.shape[-1]
    bound = 4 * (k + 1) * 2.0**-24 * np.matmul(np.abs(a), np.abs(b))
    bound += HALF_U[dtype] * np.abs(want) + 2.0**-24
    err = np.abs(got - want)
    assert np.all(err <= bound), f"max error {err.max():.3e}"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_products(device, dtype, rng):
    for _ in range(60):
        a_shape, b_shape = random_case(rng)
        ta, a = half_operand(rng, a_shape, dtype, rng.choice(ORDERS[:-1]), device)
        tb, b = half_operand(rng, b_shape, dtype, rng.choice(ORDERS[:-1]), device)
        check_half(pf.matmul(ta, tb), a, b, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_large_blocked_and_sliced(device, dtype, rng):
    # Larger than one cache block in every dimension, operands in every layout pair, and views
    # pocaflow made itself (a stepped slice, a transpose).
    for oa, ob in [("C", "C"), ("F", "T"), ("T", "F"), ("sliced", "reversed")]:
        ta, a = half_operand(rng, (300, 1100), dtype, oa, device)
        tb, b = half_operand(rng, (1100, 270), dtype, ob, device)
        check_half(ta @ tb, a, b, dtype)
    ta, a = half_operand(rng, (2, 200, 600), dtype, "C", device)
    check_half(ta[:, ::2, :] @ ta[0].mT, a[:, ::2, :], a[0].T, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(70, 301, 45), (3, 130, 520, 140)])
def test_half_precision_into_a_float32_out(device, dtype, shape, rng):
    *batch, m, k, n = shape
    ta, a = half_operand(rng, (*batch, m, k), dtype, "C", device)
    tb, b = half_operand(rng, (*batch, k, n), dtype, "F", device)
    out = pf.full((*batch, m, n), float("nan"), dtype=pf.float32, device=device)
    assert pf.matmul(ta, tb, out=out) is out
    got, want = out.numpy().astype(np.float64), a @ b
    # The float32 sums themselves: no rounding to the operands' dtype (which would be off by
    # up to HALF_U relative).
    bound = 4 * (k + 1) * 2.0**-24 * (np.abs(a) @ np.abs(b)) + 2.0**-24
    assert np.all(np.abs(got - want) <= bound)
    rounded = (ta @ tb).astype(pf.float64).numpy()
    assert np.abs(rounded - want).max() > np.abs(got - want).max()
    with pytest.raises(TypeError, match="float32, on request"):
        pf.matmul(ta, tb, out=pf.empty((*batch, m, n), dtype=pf.float64, device=device))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_linear(device, dtype, rng):
    x, x64 = half_operand(rng, (70, 300), dtype, "C", device)
    w, w64 = half_operand(rng, (50, 300), dtype, "C", device)
    bias, b64 = half_operand(rng, (50,), dtype, "C", device)
    got = pf.nn.linear(x, w, bias, activation="relu").astype(pf.float64).numpy()
    want = np.maximum(x64 @ w64.T + b64, 0)
    bound = 4 * 301 * 2.0**-24 * (np.abs(x64) @ np.abs(w64).T + np.abs(b64))
    assert np.all(np.abs(got - want) <= bound + HALF_U[dtype] * np.abs(want) + 2.0**-24)


@pytest.mark.parametrize("oa", ORDERS)
@pytest.mark.parametrize("ob", ORDERS)
def test_every_pair_of_orders(device, oa, ob, rng):
    ta, a = operand(rng, (67, 45), np.float64, oa, device)
    tb, b = operand(rng, (45, 71), np.float64, ob, device)
    check_matmul((ta @ tb).numpy(), a, b)


def test_output_order(device, rng):
    f = np.asfortranarray(rng.standard_normal((40, 40)))
    c = np.ascontiguousarray(f)
    tf, tc = (pf.Tensor.from_array(x, device=device) for x in (f, c))
    assert pf.matmul(tf, tf).numpy().flags.f_contiguous
    assert pf.matmul(tf, tc).numpy().flags.c_contiguous
    assert pf.matmul(tc, tc).numpy().flags.c_contiguous
    batched = np.asfortranarray(rng.standard_normal((2, 40, 40)))
    tb = pf.Tensor.from_array(batched, device=device)
    assert pf.matmul(tb, tb).numpy().flags.c_contiguous


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [
        ((5,), (5,)),
        ((5,), (5, 3)),
        ((4, 5), (5,)),
        ((5,), (2, 5, 3)),
        ((2, 4, 5), (5,)),
        ((3, 1, 4, 5), (2, 5, 6)),
        ((1, 4, 5), (7, 5, 6)),
        ((0, 4, 5), (5, 6)),
        ((4, 0), (0, 6)),
    ],
)
def test_vectors_broadcasting_and_empty(device, a_shape, b_shape, rng):
    a = rng.standard_normal(a_shape)
    b = rng.standard_normal(b_shape)
    got = pf.matmul(pf.Tensor.from_array(a, device=device), pf.Tensor.from_array(b, device=device))
    assert got.shape == np.matmul(a, b).shape
    check_matmul(got.numpy(), a, b)


def test_float32_with_float64_promotes(device, rng):
    a = rng.standard_normal((20, 30)).astype(np.float32)
    b = rng.standard_normal((30, 10))
    got = pf.matmul(pf.Tensor.from_array(a, device=device), pf.Tensor.from_array(b, device=device))
    assert got.dtype == pf.float64
    check_matmul(got.numpy(), a, b)


def test_numpy_operands_are_accepted(device, rng):
    a = rng.standard_normal((8, 9))
    tb = pf.Tensor.from_array(rng.standard_normal((9, 4)), device=device)
    check_matmul(pf.matmul(a, tb).numpy(), a, tb.numpy())
    check_matmul((a @ tb).numpy(), a, tb.numpy())
    check_matmul((tb.T @ a.T).numpy(), tb.numpy().T, a.T)


def test_nan_and_inf_propagate(device):
    for n in (3, 50, 150):
        a = np.ones((n, n))
        a[1, 2], a[2, 0] = np.nan, np.inf
        c = pf.matmul(
            pf.Tensor.from_array(a, device=device),
            pf.Tensor.from_array(np.ones((n, n)), device=device),
        ).numpy()
        assert np.isnan(c[1]).all() and np.isposinf(c[2]).all()
        np.testing.assert_array_equal(c[0], n)


@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_out_is_written_and_returned(device, order, rng):
    a, b = rng.standard_normal((30, 20)), rng.standard_normal((20, 25))
    ta, tb = pf.Tensor.from_array(a, device=device), pf.Tensor.from_array(b, device=device)
    poison = np.full((30, 25), np.nan)
    if order == "F":
        out = pf.Tensor.from_array(np.asfortranarray(poison), device=device)
    elif order == "strided":
        out = pf.Tensor.from_array(np.full((25, 30), np.nan), device=device).T
    else:
        out = pf.Tensor.from_array(poison, device=device)
    res = pf.matmul(ta, tb, out=out)
    assert res is out
    check_matmul(out.numpy(), a, b)


def test_out_may_alias_an_operand(device, rng):
    a, b = rng.standard_normal((16, 16)), rng.standard_normal((16, 16))
    ta, tb = pf.Tensor.from_array(a, device=device), pf.Tensor.from_array(b, device=device)
    pf.matmul(ta, tb, out=ta)
    check_matmul(ta.numpy(), a, b)
    pf.matmul(tb.T, tb, out=tb)
    check_matmul(tb.numpy(), b.T, b)


def test_inputs_are_never_modified(device, rng):
    a = np.asfortranarray(rng.standard_normal((33, 17)).astype(np.float32))
    b = rng.standard_normal((17, 5))[::-1]
    a0, b0 = a.copy(), b.copy()
    pf.matmul(a, pf.Tensor.from_array(b, device=device)).numpy()
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


def test_readme_example(device, capsys):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = np.asfortranarray(rng.standard_normal((1024, 1024)).astype(np.float32))
    c = pf.matmul(pf.Tensor.from_array(a, device=device), pf.Tensor.from_array(b, device=device))
    c = c.numpy()
    rel = rel_error(c, a, b)
    with capsys.disabled():
        err = np.abs(c - a @ b).max()
        print(f"\n[{device}] 1024^2 f32: max |c - numpy| = {err:.3e}, relative error = {rel:.2e}")
    assert rel <= 2e-6


def test_gil_is_released_while_the_kernel_runs():
    a = pf.Tensor.from_array(np.random.default_rng(1).standard_normal((1400, 1400)))
    start = time.perf_counter()
    pf.matmul(a, a)
    duration = time.perf_counter() - start
    gaps, done = [], threading.Event()

    def work():
        for _ in range(3):
            pf.matmul(a, a)
        done.set()

    t = threading.Thread(target=work)
    last = time.perf_counter()
    t.start()
    while not done.is_set():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    t.join()
    # With the GIL held, this loop would stall for whole products at a time.
    assert max(gaps) < 0.5 * duration, (max(gaps), duration)


class TestRejected:
    def test_scalar_operand(self):
        s = pf.Tensor.from_array(np.array(2.0))
        v = pf.Tensor.from_array(np.ones(3))
        with pytest.raises(ValueError, match="scalar"):
            pf.matmul(s, v)
        with pytest.raises(ValueError, match="scalar"):
            v @ s

    def test_inner_dimensions_differ(self):
        a, b = pf.tensor(np.ones((2, 3))), pf.tensor(np.ones((4, 5)))
        with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
            pf.matmul(a, b)
        with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
            pf.tensor(np.ones(3)) @ pf.tensor(np.ones(4))

    def test_batch_dimensions_do_not_broadcast(self):
        a, b = pf.tensor(np.ones((2, 3, 4))), pf.tensor(np.ones((3, 4, 5)))
        with pytest.raises(ValueError, match=r"broadcast.*\(2, 3, 4\)|\(2, 3, 4\).*broadcast"):
            pf.matmul(a, b)

    @pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.uint8])
    def test_non_float_dtypes(self, dtype):
        # Every dtype is an array dtype now; matmul stays float-only, with a clear TypeError.
        a = pf.Tensor.from_array(np.ones((2, 2), dtype=dtype))
        assert a.dtype == np.dtype(dtype).name
        with pytest.raises(TypeError, match=np.dtype(dtype).name):
            pf.matmul(a, a)
        with pytest.raises(TypeError, match=np.dtype(dtype).name):
            pf.matmul(np.ones((2, 2), dtype=dtype), pf.tensor(np.ones((2, 2))))

    def test_complex_dtypes(self):
        with pytest.raises(TypeError, match="complex"):
            pf.Tensor.from_array(np.ones((2, 2), dtype=np.complex64))

    def test_not_an_array(self):
        with pytest.raises(TypeError):
            pf.matmul("abc", pf.tensor(np.ones((2, 2))))
        with pytest.raises(TypeError):
            pf.tensor(np.ones((2, 2))) @ object()

    def test_out_of_the_wrong_shape_dtype_or_type(self):
        a = pf.tensor(np.ones((2, 3)))
        b = pf.tensor(np.ones((3, 4)))
        with pytest.raises(ValueError, match=r"\(2, 5\).*\(2, 4\)"):
            pf.matmul(a, b, out=pf.tensor(np.ones((2, 5))))
        with pytest.raises(TypeError, match="float32.*float64"):
            pf.matmul(a, b, out=pf.tensor(np.ones((2, 4), dtype=np.float32)))
        with pytest.raises(TypeError, match="out"):
            pf.matmul(a, b, out=np.ones((2, 4)))

    def test_integer_operands(self):
        t = pf.tensor([[1, 2], [3, 4]])
        with pytest.raises(TypeError, match="int64"):
            pf.matmul(t, t)

    def test_unknown_device(self):
        with pytest.raises(ValueError, match="tpu"):
            pf.Tensor.from_array(np.ones(2), device="tpu")

    def test_unavailable_cuda_device(self):
        cuda = getattr(pf, "cuda", None)
        if cuda is not None and cuda.is_available():
            with pytest.raises(RuntimeError, match="cuda:99"):
                pf.Tensor.from_array(np.ones(2), device="cuda:99")
        else:
            with pytest.raises(RuntimeError, match="CUDA"):
                pf.Tensor.from_array(np.ones(2), device="cuda")

"""Reference checks shared by the test modules."""

import numpy as np

EPS = {np.dtype(np.float32): float(np.finfo(np.float32).eps), np.dtype(np.float64): 2.0**-52}


def check_matmul(got: np.ndarray, a: np.ndarray, b: np.ndarray, dtype=None) -> None:
    """Asserts that ``got`` is ``a @ b`` to within the rounding of ``dtype`` arithmetic.

    The reference is NumPy in float64 on the same (already rounded) inputs; each element may
    differ by at most ``4 (k + 1) eps (|a| @ |b|)``, the classic bound for a sum of k products.
    NaN and inf must appear exactly where the reference has them.
    """
    dtype = np.dtype(dtype or got.dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = np.matmul(a64, b64)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == dtype, (got.dtype, dtype)
    k = a.shape[-1]
    with np.errstate(invalid="ignore"):
        bound = 4 * (k + 1) * EPS[dtype] * np.matmul(np.abs(a64), np.abs(b64)) + 1e-300
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)])
    err = np.abs(got.astype(np.float64) - want)[finite]
    assert np.all(err <= bound[finite]), (
        f"max error {err.max():.3e}, bound {bound[finite].min():.3e}"
    )


def rel_error(got: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Relative Frobenius error of ``got`` against the float64 product."""
    want = a.astype(np.float64) @ b.astype(np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want))


# --- arrays of every dtype ------------------------------------------------------------------------

DTYPE_NAMES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
]
FLOAT_NAMES = ["float16", "bfloat16", "float32", "float64"]
INT_NAMES = [n for n in DTYPE_NAMES if n[0] in "iu"]

#: Shapes with 0-size and size-1 axes, odd and prime lengths.
SHAPES = [(), (0,), (1,), (7,), (3, 0), (1, 5), (4, 3), (2, 1, 3), (3, 4, 5), (2, 0, 3)]


def np_dtype(name) -> np.dtype:
    """The NumPy dtype that ``Tensor.numpy()`` gives for a pocaflow dtype (bfloat16 comes back
    as float32, which holds it exactly)."""
    name = getattr(name, "name", name)
    return np.dtype(np.float32) if name == "bfloat16" else np.dtype(name)


def sample(rng: np.random.Generator, shape, name) -> np.ndarray:
    """Random values that every dtype holds exactly (so casts are exact), as ``np_dtype``."""
    name = getattr(name, "name", name)
    if name == "bool":
        return rng.random(shape) < 0.5
    if name[0] in "iu":
        return rng.integers(0, 100, size=shape).astype(name)
    return (rng.integers(-64, 64, size=shape) / 4).astype(np_dtype(name))


def layouts(base: np.ndarray, device, dtype=None) -> list:
    """``(label, numpy view, pocaflow view)`` triples of one array in several layouts: C order,
    F order, axes reversed, sliced with a step, reversed along the last axis. The pocaflow views
    are made with pocaflow's own view operations on the device."""
    import pocaflow as pf

    t = pf.asarray(base, device=device, dtype=dtype)
    out = [("C", base, t)]
    if base.ndim == 0:
        return out
    f = np.asfortranarray(base)
    out.append(("F", f, pf.asarray(f, device=device, dtype=dtype)))
    axes = tuple(reversed(range(base.ndim)))
    out.append(("T", base.transpose(axes), t.permute_dims(axes)))
    step = (slice(None),) * (base.ndim - 1) + (slice(None, None, 2),)
    out.append(("step", base[step], t[step]))
    rev = (slice(None),) * (base.ndim - 1) + (slice(None, None, -1),)
    out.append(("neg", base[rev], t[rev]))
    return out


def check(t, want: np.ndarray, dtype=None) -> None:
    """``t`` is a pocaflow array equal to ``want``, of ``dtype`` (default: ``want``'s)."""
    import pocaflow as pf

    assert isinstance(t, pf.Tensor), type(t)
    assert t.shape == want.shape, (t.shape, want.shape)
    if dtype is not None:
        assert t.dtype == getattr(dtype, "name", dtype), (t.dtype, dtype)
    got = t.numpy()
    assert got.dtype == (np_dtype(dtype) if dtype is not None else want.dtype), got.dtype
    np.testing.assert_array_equal(got, want)


def random_shapes(rng: np.random.Generator, count: int, max_ndim: int = 4, max_side: int = 5):
    """``count`` seeded random shapes of 0 to ``max_ndim`` axes, sides 0 to ``max_side`` (a side
    of 0 or 1 about one time in three)."""
    shapes = []
    for _ in range(count):
        ndim = int(rng.integers(0, max_ndim + 1))
        shapes.append(tuple(int(rng.integers(0, max_side + 1)) for _ in range(ndim)))
    return shapes

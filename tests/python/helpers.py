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


# --- floating-point references of every dtype -----------------------------------------------------

#: Machine epsilon of each float dtype (bfloat16 keeps 8 significant bits).
FLOAT_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
#: The smallest positive subnormal of each float dtype.
FLOAT_TINY = {
    "float16": 2.0**-24,
    "bfloat16": 2.0**-133,
    "float32": 2.0**-149,
    "float64": 2.0**-1074,
}


def bf16_round(a) -> np.ndarray:
    """``a`` rounded to the nearest bfloat16 (ties to even), as float32: the top 16 bits of the
    float32 pattern after adding ``0x7FFF`` plus the lowest kept bit. NaN stays NaN (quiet)."""
    f = np.asarray(a, dtype=np.float32)
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32).reshape(f.shape)
    return np.where(np.isnan(f), np.float32(np.nan), out)


def round_to(a, name) -> np.ndarray:
    """``a`` rounded to dtype ``name`` and returned as ``np_dtype(name)`` (bfloat16 through
    float32, the way a float32 computation rounded once would give it)."""
    name = getattr(name, "name", name)
    a = np.asarray(a)
    with np.errstate(all="ignore"):
        if name == "bfloat16":
            return bf16_round(a.astype(np.float32))
        return a.astype(np_dtype(name))


def ulp(a, name) -> np.ndarray:
    """The spacing of dtype ``name`` at the magnitude of ``a`` (float64; never below the
    smallest subnormal)."""
    name = getattr(name, "name", name)
    a = np.abs(np.asarray(a, dtype=np.float64))
    with np.errstate(all="ignore"):
        _, e = np.frexp(np.where(np.isfinite(a), a, 1.0))
        sp = np.ldexp(FLOAT_EPS[name], e - 1)
    return np.maximum(sp, FLOAT_TINY[name])


def sample_float(rng: np.random.Generator, shape, name, lo=-10.0, hi=10.0) -> np.ndarray:
    """Uniform values in ``[lo, hi]`` rounded to dtype ``name``, as ``np_dtype(name)``."""
    return round_to(rng.uniform(lo, hi, size=shape), name)


def sample_full(rng: np.random.Generator, shape, name) -> np.ndarray:
    """Random values over the whole range of an integer or bool dtype; floats as
    ``sample_float`` in ``[-100, 100]``."""
    name = getattr(name, "name", name)
    if name == "bool":
        return rng.random(shape) < 0.5
    if name[0] in "iu":
        info = np.iinfo(name)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=name)
    return sample_float(rng, shape, name, -100.0, 100.0)


def check_close(t, want, name, ulps: float = 4.0, atol: float = 0.0) -> None:
    """``t`` (a pocaflow array of dtype ``name``) is ``want`` (an exact or float64 reference)
    to within ``ulps`` spacings of the dtype at ``want`` plus ``atol``: NaN exactly where the
    reference rounds to NaN, infinities exactly where it rounds to an infinity, and the sign of
    every zero of the reference kept."""
    import pocaflow as pf

    name = getattr(name, "name", name)
    assert isinstance(t, pf.Tensor), type(t)
    want = np.asarray(want, dtype=np.float64)
    assert t.shape == want.shape, (t.shape, want.shape)
    assert t.dtype == name, (t.dtype, name)
    got = t.numpy().astype(np.float64)
    with np.errstate(all="ignore"):
        want_r = round_to(want, name).astype(np.float64)
    bad_nan = np.isnan(got) != np.isnan(want_r)
    assert not bad_nan.any(), (
        f"NaN mismatch at {np.argwhere(bad_nan)[:5].tolist()}: got {got[bad_nan][:5]}, "
        f"want {want_r[bad_nan][:5]}"
    )
    inf = np.isinf(want_r) | np.isinf(got)
    bad_inf = inf & (got != want_r)
    assert not bad_inf.any(), f"inf mismatch: got {got[bad_inf][:5]}, want {want_r[bad_inf][:5]}"
    zero = want_r == 0
    bad_zero = zero & ((got != 0) | (np.signbit(got) != np.signbit(want_r)))
    if ulps == 0 and atol == 0:
        assert not bad_zero.any(), (
            f"signed zero mismatch: got {got[bad_zero][:5]}, want {want_r[bad_zero][:5]}"
        )
    fin = np.isfinite(want_r) & ~np.isnan(got)
    if ulps == 0 and atol == 0:
        bad = fin & (got != want_r)
        assert not bad.any(), (
            f"{bad.sum()} inexact: got {got[bad][:5].tolist()}, want {want_r[bad][:5].tolist()}"
        )
        return
    with np.errstate(all="ignore"):
        err = np.abs(got - want)
    tol = ulps * ulp(want, name) + atol
    bad = fin & ~(err <= tol)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} beyond {ulps} ulps: worst at "
        f"got {got[bad][:5].tolist()}, want {want[bad][:5].tolist()}, "
        f"max err/ulp {(err / ulp(want, name))[bad].max():.3g}"
    )
    exact_zero = zero & (want == 0)
    bad_zero = exact_zero & (got == 0) & (np.signbit(got) != np.signbit(want))
    assert not bad_zero.any(), f"signed zero mismatch: got {got[bad_zero][:5]}"


def promoted(a, b):
    """The dtype the standard (NumPy 2 for mixed kinds) gives for ``a`` op ``b``; bfloat16 as
    float16 but one step wider for 16-bit integers and float16 (float32)."""
    if "bfloat16" not in (a, b):
        return np.result_type(np.dtype(a), np.dtype(b)).name
    other = b if a == "bfloat16" else a
    return {
        "bool": "bfloat16", "int8": "bfloat16", "uint8": "bfloat16", "bfloat16": "bfloat16",
        "int16": "float32", "uint16": "float32", "float16": "float32", "float32": "float32",
        "int32": "float64", "uint32": "float64", "int64": "float64", "uint64": "float64",
        "float64": "float64",
    }[other]  # fmt: skip

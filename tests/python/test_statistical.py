"""Statistical, searching and utility functions against NumPy: sum prod mean var std max min
cumulative_sum cumulative_prod argmax argmin where nonzero count_nonzero all any diff, their
method forms, over every dtype they allow, every axis form (None, int, negative, tuple, empty
tuple), keepdims, zero-size and strided inputs, and every error case; plus the accuracy of a
float32 sum of 10^8 elements against NumPy's own."""

import itertools
import math
import warnings

import numpy as np
import pytest

import pocaflow as pf
from helpers import (
    DTYPE_NAMES,
    FLOAT_EPS,
    FLOAT_NAMES,
    INT_NAMES,
    SHAPES,
    bf16_round,
    check,
    check_close,
    np_dtype,
    promoted,
    round_to,
    sample,
    sample_float,
    sample_full,
)

NUMERIC = [n for n in DTYPE_NAMES if n != "bool"]
#: Shapes for the reductions: SHAPES and a few random ones.
RED_SHAPES = SHAPES + [(1, 1), (5, 1, 1, 2), (0, 0), (6, 7)]


def T(a, name=None, dev="cpu"):
    return pf.asarray(a, dtype=name, device=dev)


def axes_of(ndim):
    """Every axis form for an array of ``ndim`` axes: None, each int (and its negative),
    pairs, the full tuple (reversed too) and the empty tuple."""
    out = [None, ()]
    for i in range(ndim):
        out += [i, i - ndim]
    for r in (2, 3):
        if ndim >= r:
            out += list(itertools.combinations(range(ndim), r))[:4]
    if ndim >= 1:
        out += [tuple(range(ndim)), tuple(range(-1, -ndim - 1, -1))]
    return out


def reduced_size(shape, axis):
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    axis = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axis], dtype=np.int64))


def acc_eps(name):
    """The epsilon of the accumulation: float32 for the 16-bit floats, the dtype otherwise."""
    return FLOAT_EPS["float32" if name in ("float16", "bfloat16") else name]


def sum_dtype(name):
    if name == "bool" or name[0] == "i":
        return "int64"
    if name[0] == "u":
        return "uint64"
    return name


def quiet(func, *args, **kwargs):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


# --- sum and prod ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_sum(name, rng, xdev):
    for shape in RED_SHAPES:
        x = sample_full(rng, shape, name)
        if name in FLOAT_NAMES:
            x = sample_float(rng, shape, name, -10.0, 10.0)
        t = T(x, name, xdev)
        for axis in axes_of(x.ndim):
            for keepdims in (False, True):
                got = pf.sum(t, axis=axis, keepdims=keepdims)
                want_dtype = sum_dtype(name)
                if name in FLOAT_NAMES:
                    want = np.sum(x.astype(np.float64), axis=axis, keepdims=keepdims)
                    n = max(reduced_size(x.shape, axis), 1)
                    atol = (
                        n
                        * acc_eps(name)
                        * np.sum(np.abs(x.astype(np.float64)), axis=axis, keepdims=keepdims)
                    )
                    check_close(got, want, name, 1, atol)
                else:
                    want = quiet(np.sum, x, axis=axis, keepdims=keepdims, dtype=want_dtype)
                    check(got, np.asarray(want), dtype=want_dtype)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_prod(name, rng, xdev):
    for shape in RED_SHAPES:
        if name in FLOAT_NAMES:
            x = sample_float(rng, shape, name, 0.5, 2.0)
            x = np.where(rng.random(shape) < 0.5, -x, x).astype(x.dtype)
        else:
            x = sample_full(rng, shape, name)
        t = T(x, name, xdev)
        for axis in axes_of(x.ndim):
            for keepdims in (False, True):
                got = pf.prod(t, axis=axis, keepdims=keepdims)
                if name in FLOAT_NAMES:
                    want = np.prod(x.astype(np.float64), axis=axis, keepdims=keepdims)
                    n = max(reduced_size(x.shape, axis), 1)
                    check_close(got, want, name, 1, (n + 1) * acc_eps(name) * np.abs(want))
                else:
                    want = quiet(np.prod, x, axis=axis, keepdims=keepdims, dtype=sum_dtype(name))
                    check(got, np.asarray(want), dtype=sum_dtype(name))


@pytest.mark.parametrize("name", ["bool", "int8", "uint8", "int32", "uint64", "float16"])
def test_sum_prod_dtype_argument(name, rng, xdev):
    """``dtype=`` converts the input first, then sums in that dtype (wrapping for narrow
    integers)."""
    x = sample_full(rng, (6, 50), name)
    if name == "float16":
        x = sample_float(rng, (6, 50), name, -4, 4)
    t = T(x, name, xdev)
    for dt in ("int8", "uint8", "int16", "int32", "uint32", "int64", "float32", "float64"):
        if name == "float16" and dt[0] in "iu":
            continue
        got = pf.sum(t, axis=1, dtype=getattr(pf, dt))
        want = quiet(np.sum, x.astype(dt), axis=1, dtype=dt)
        if dt[0] == "f":
            check_close(
                got,
                np.sum(x.astype(dt).astype(np.float64), axis=1),
                dt,
                1,
                50 * FLOAT_EPS[dt] * np.sum(np.abs(x.astype(np.float64)), axis=1),
            )
        else:
            check(got, want, dtype=dt)
        got = pf.prod(t[:, :5], axis=1, dtype=dt)
        want = quiet(np.prod, x[:, :5].astype(dt), axis=1, dtype=dt)
        if dt[0] == "f":
            check_close(got, want, dt, 8)
        else:
            check(got, want, dtype=dt)
    # float16 summed as float32 and float64; bfloat16 result from float32 data
    f = sample_float(rng, (1000,), "float16", 0, 60000)
    got = pf.sum(T(f, "float16", xdev), dtype=pf.float32)
    assert got.dtype == "float32"
    check_close(
        got, np.sum(f.astype(np.float64)), "float32", 1, 1000 * 2.0**-23 * f.astype(float).sum()
    )
    got = pf.sum(T(f, "float16", xdev))  # overflows float16: the result rounds to inf
    check_close(got, np.sum(f.astype(np.float64)), "float16", 1)
    got = pf.sum(T(np.ones(300, np.float32), dev=xdev), dtype=pf.bfloat16)
    assert got.dtype == "bfloat16"


@pytest.mark.parametrize("name", ["float32", "float64", "int32", "float16"])
def test_reductions_of_views(name, rng, xdev):
    base = sample(rng, (6, 8, 5), name)
    for view, tview in (
        (base.transpose(2, 0, 1), T(base, name, xdev).permute_dims((2, 0, 1))),
        (base[::-1, ::3], T(base, name, xdev)[::-1, ::3]),
        (base[:, ::-2, 1:4].T, T(base[:, ::-2, 1:4].T, name, xdev)),  # a NumPy view
        (np.broadcast_to(base[:1], (6, 8, 5)), pf.broadcast_to(T(base, name, xdev)[:1], (6, 8, 5))),
    ):
        for axis in (None, 0, 1, -1, (0, 2), (2, 0)):
            # these values (multiples of 1/4 below 16) sum exactly in every dtype
            want = view.astype(np.float64).sum(axis=axis)
            got = pf.sum(tview, axis=axis)
            np.testing.assert_array_equal(got.numpy().astype(np.float64), want)
            check(pf.max(tview, axis=axis), np.max(view, axis=axis))
            check(pf.min(tview, axis=axis), np.min(view, axis=axis))
            check(
                pf.argmax(tview, axis=axis if not isinstance(axis, tuple) else None),
                np.asarray(np.argmax(view, axis=axis if not isinstance(axis, tuple) else None)),
            )
            check(pf.count_nonzero(tview, axis=axis), np.asarray(np.count_nonzero(view, axis=axis)))


def test_empty_sum_prod_all_any(xdev):
    for name in DTYPE_NAMES:
        t = pf.zeros((3, 0), dtype=name, device=xdev)
        sd = sum_dtype(name)
        check(pf.sum(t, axis=1), np.zeros(3, np_dtype(sd)), dtype=sd)
        check(pf.prod(t, axis=1), np.ones(3, np_dtype(sd)), dtype=sd)
        check(pf.sum(t), np.zeros((), np_dtype(sd)), dtype=sd)
        check(pf.prod(t), np.ones((), np_dtype(sd)), dtype=sd)
        check(pf.all(t, axis=1), np.ones(3, bool), dtype="bool")
        check(pf.any(t, axis=1), np.zeros(3, bool), dtype="bool")
        check(pf.all(t), np.array(True), dtype="bool")
        check(pf.any(t), np.array(False), dtype="bool")
        check(pf.count_nonzero(t), np.array(0, np.int64), dtype="int64")
        check(pf.sum(t, axis=0), np.zeros(0, np_dtype(sd)), dtype=sd)
        check(pf.cumulative_sum(t, axis=1), np.zeros((3, 0), np_dtype(sd)), dtype=sd)
        check(
            pf.cumulative_sum(t, axis=1, include_initial=True),
            np.zeros((3, 1), np_dtype(sd)),
            dtype=sd,
        )
        check(
            pf.cumulative_prod(t, axis=1, include_initial=True),
            np.ones((3, 1), np_dtype(sd)),
            dtype=sd,
        )


# --- the 10^8-element float32 sum -----------------------------------------------------------------


def test_float32_sum_of_1e8_elements_is_as_accurate_as_numpy(xdev):
    rng = np.random.default_rng(12345)
    n = 10**8
    x = rng.random(n, dtype=np.float32)
    x += np.float32(0.25)  # all positive: the hard case for naive accumulation
    exact = float(np.sum(x, dtype=np.float64))
    ours = float(pf.sum(T(x, dev=xdev)).item())
    theirs = float(np.sum(x))
    err_ours, err_np = abs(ours - exact), abs(theirs - exact)
    slack = float(np.spacing(np.float32(exact)))  # one float32 ulp of the result
    print(
        f"\nfloat32 sum of 1e8: pocaflow error {err_ours:.4g}, NumPy error {err_np:.4g} "
        f"(ulp {slack:.3g}, sum {exact:.10g})"
    )
    assert err_ours <= err_np * 1.0 + slack, (err_ours, err_np)
    # the same data, as a 2-D array summed along each axis and as a strided view
    m = x.reshape(10**4, 10**4)
    del x
    want = m[:2000].sum(axis=0, dtype=np.float64)
    got = pf.sum(T(m[:2000], dev=xdev), axis=0).numpy().astype(np.float64)
    err = np.abs(got - want).max()
    np_err = np.abs(m[:2000].sum(axis=0).astype(np.float64) - want).max()
    print(f"column sums of 2000 rows: pocaflow max error {err:.4g}, NumPy {np_err:.4g}")
    assert err <= np_err + np.spacing(np.float32(want.max())), (err, np_err)
    want = m[:, :3000].sum(axis=1, dtype=np.float64)
    got = pf.sum(T(m[:, :3000], dev=xdev), axis=1).numpy().astype(np.float64)
    err = np.abs(got - want).max()
    np_err = np.abs(m[:, :3000].sum(axis=1).astype(np.float64) - want).max()
    print(f"row sums of 3000 columns: pocaflow max error {err:.4g}, NumPy {np_err:.4g}")
    # short rows: NumPy's pairwise blocking differs; within twice its error plus an ulp
    assert err <= 2 * np_err + np.spacing(np.float32(want.max())), (err, np_err)
    want = m[::7, ::3].sum(dtype=np.float64)
    got = float(pf.sum(T(m[::7, ::3], dev=xdev)).item())
    np_err = abs(float(m[::7, ::3].sum()) - want)
    print(f"strided sum: pocaflow error {abs(got - want):.4g}, NumPy {np_err:.4g}")
    assert abs(got - want) <= max(np_err, float(np.spacing(np.float32(want)))) * 4


@pytest.mark.parametrize(
    "layout", ["contiguous", "step2", "reversed", "transposed", "cols::3", "rows::2"]
)
def test_float32_sum_of_views_is_as_accurate_as_numpy(layout, xdev):
    """A full float32 sum of a strided, reversed or transposed array is as accurate as NumPy's
    (pairwise, or at worst twice its error plus two ulps), not a running sum."""
    rng = np.random.default_rng(99)
    x = rng.random(4 * 10**6, dtype=np.float32) + np.float32(0.25)
    m = x.reshape(2000, 2000)
    v = {
        "contiguous": x,
        "step2": x[::2],
        "reversed": x[::-1],
        "transposed": m.T,
        "cols::3": m[:, ::3],
        "rows::2": m[::2],
    }[layout]
    exact = float(v.sum(dtype=np.float64))
    ulp = float(np.spacing(np.float32(exact)))
    np_err = abs(float(v.sum()) - exact)
    for t in (T(v, dev=xdev),) + ((T(x, dev=xdev)[::2],) if layout == "step2" else ()):
        err = abs(float(pf.sum(t).item()) - exact)
        assert err <= 2 * np_err + 2 * ulp, (
            f"{layout}: error {err:.4g}, NumPy {np_err:.4g}, ulp {ulp}"
        )
        err = abs(float(pf.mean(t).item()) - exact / v.size)
        assert err <= (2 * np_err + 2 * ulp) / v.size, f"mean {layout}: error {err:.4g}"


# --- mean, var, std -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FLOAT_NAMES)
def test_mean_var_std(name, rng, xdev):
    for shape in RED_SHAPES:
        x = sample_float(rng, shape, name, -10.0, 10.0) + round_to(np.float32(3.0), name)
        x = round_to(x, name)
        x64 = x.astype(np.float64)
        t = T(x, name, xdev)
        for axis in axes_of(x.ndim):
            n = reduced_size(x.shape, axis)
            for keepdims in (False, True):
                got = pf.mean(t, axis=axis, keepdims=keepdims)
                want = quiet(np.mean, x64, axis=axis, keepdims=keepdims)
                scale = quiet(np.mean, np.abs(x64), axis=axis, keepdims=keepdims)
                check_close(got, want, name, 1, (n + 1) * acc_eps(name) * np.nan_to_num(scale))
                for correction in (0, 1, 1.5, 0.0):
                    got = pf.var(t, axis=axis, keepdims=keepdims, correction=correction)
                    want = quiet(np.var, x64, axis=axis, keepdims=keepdims, ddof=correction)
                    if n - correction <= 0:
                        want = np.full_like(np.asarray(want), np.nan)
                    sq = quiet(
                        np.mean,
                        (x64 - quiet(np.mean, x64, axis=axis, keepdims=True)) ** 2
                        + np.abs(x64) ** 2 * 0,
                        axis=axis,
                        keepdims=keepdims,
                    )
                    big = quiet(np.mean, x64**2, axis=axis, keepdims=keepdims)
                    atol = (
                        8
                        * (n + 2)
                        * acc_eps(name)
                        * np.nan_to_num(big)
                        * max(n, 1)
                        / max(n - correction, 1e-300)
                        if n - correction > 0
                        else 0.0
                    )
                    check_close(got, want, name, 2, atol)
                    got = pf.std(t, axis=axis, keepdims=keepdims, correction=correction)
                    check_close(got, np.sqrt(want), name, 2, np.sqrt(atol) + 0 * np.nan_to_num(sq))


@pytest.mark.parametrize("name", ["bool"] + INT_NAMES)
@pytest.mark.parametrize("fname", ["mean", "var", "std"])
def test_mean_var_std_reject_integers(fname, name, xdev):
    t = pf.ones((3,), dtype=name, device=xdev)
    with pytest.raises(TypeError):
        getattr(pf, fname)(t)
    with pytest.raises(TypeError):
        getattr(t, fname)()


def test_mean_var_std_special(xdev):
    t = T(np.array([1.0, math.nan, 3.0]), dev=xdev)
    for f in (pf.mean, pf.var, pf.std, pf.sum, pf.prod, pf.max, pf.min):
        assert math.isnan(f(t).item()), f
    t = T(np.array([1.0, math.inf, 3.0]), dev=xdev)
    assert pf.mean(t).item() == math.inf and math.isnan(pf.var(t).item())
    e = pf.zeros((0,), device=xdev)
    for f in (pf.mean, pf.var, pf.std):
        assert math.isnan(f(e).item()), f  # N == 0 (and N - correction <= 0)
    check(pf.mean(pf.zeros((3, 0), device=xdev), axis=1), np.full(3, np.nan))
    one = T(np.array([[2.0], [3.0]]), dev=xdev)
    check(pf.var(one, axis=1, correction=1), np.full(2, np.nan))
    check(pf.std(one, axis=1, correction=2), np.full(2, np.nan))
    check(pf.var(one, axis=1, correction=0), np.zeros(2))
    # var is exact for constant data and not fooled by a large offset
    c = T(np.full(1001, 1e8 + 0.5), dev=xdev)
    assert pf.var(c).item() == 0.0 and pf.std(c).item() == 0.0
    y = np.float32(1e4) + np.arange(100, dtype=np.float32) % 2
    got = pf.var(T(y, dev=xdev)).item()
    assert abs(got - 0.25) <= 1e-3, got  # the textbook E[x^2] - E[x]^2 gives garbage here


# --- max, min, argmax, argmin ---------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("fname", ["max", "min"])
def test_max_min(fname, name, rng, xdev):
    func = getattr(np, fname)
    for shape in RED_SHAPES:
        x = sample_full(rng, shape, name)
        t = T(x, name, xdev)
        for axis in axes_of(x.ndim):
            for keepdims in (False, True):
                try:
                    want = np.asarray(func(x, axis=axis, keepdims=keepdims))
                except ValueError:
                    with pytest.raises(ValueError):
                        getattr(pf, fname)(t, axis=axis, keepdims=keepdims)
                    continue
                check(getattr(pf, fname)(t, axis=axis, keepdims=keepdims), want, dtype=name)


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("fname", ["max", "min"])
def test_max_min_nan_propagates(fname, name, rng, xdev):
    x = sample_float(rng, (7, 9), name)
    x[2, 3] = np.nan
    x[5, 0] = np.nan
    x[:, 8] = np.nan
    x[1, 1], x[1, 2] = np.inf, -np.inf
    t = T(x, name, xdev)
    func = getattr(np, fname)
    for axis in (None, 0, 1, (0, 1)):
        check(getattr(pf, fname)(t, axis=axis), np.asarray(func(x, axis=axis)), dtype=name)
    # a NaN at every position of a long run (vectorized loops have lanes and tails)
    for n in (1, 7, 8, 9, 31, 64, 100, 1000):
        for pos in sorted({0, n // 2, n - 1}):
            y = np.arange(n, dtype=np.float32)
            y[pos] = np.nan
            assert math.isnan(getattr(pf, fname)(T(y, name, xdev)).item()), (n, pos)
    y = np.full(50, -np.inf, np.float32)
    assert getattr(pf, fname)(T(y, name, xdev)).item() == -np.inf


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("fname", ["argmax", "argmin"])
def test_argmax_argmin(fname, name, rng, xdev):
    func = getattr(np, fname)
    for shape in RED_SHAPES:
        x = sample(rng, shape, name)  # few distinct values: many ties, the first one wins
        if name[0] in "iu":
            x = (x % 5).astype(x.dtype)
        t = T(x, name, xdev)
        for axis in [None] + list(range(-x.ndim, x.ndim)):
            for keepdims in (False, True):
                try:
                    want = np.asarray(func(x, axis=axis, keepdims=keepdims))
                except ValueError:
                    with pytest.raises(ValueError):
                        getattr(pf, fname)(t, axis=axis, keepdims=keepdims)
                    continue
                got = getattr(pf, fname)(t, axis=axis, keepdims=keepdims)
                check(got, want.astype(np.int64), dtype="int64")


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("fname", ["argmax", "argmin"])
def test_argmax_argmin_first_nan(fname, name, rng, xdev):
    x = sample_float(rng, (6, 40), name)
    x[1, [5, 9]] = np.nan
    x[3, 39] = np.nan
    x[4, 0] = np.inf
    x[4, 1] = -np.inf
    x[:, 20] = np.nan
    x[5, :] = np.nan
    t = T(x, name, xdev)
    func = getattr(np, fname)
    for axis in (None, 0, 1, -1):
        check(getattr(pf, fname)(t, axis=axis), np.asarray(func(x, axis=axis)).astype(np.int64))
    for n in (3, 8, 17, 64, 257):
        y = np.linspace(-1, 1, n).astype(np.float32)
        y[n // 3] = np.nan
        y[n - 1] = np.nan
        assert getattr(pf, fname)(T(y, name, xdev)).item() == n // 3


@pytest.mark.parametrize("fname", ["max", "min", "argmax", "argmin"])
def test_zero_size_reductions_raise(fname, xdev):
    f = getattr(pf, fname)
    for shape, axis in (((0,), None), ((3, 0), 1), ((3, 0), None), ((0, 4), 0), ((0, 0), 1)):
        with pytest.raises(ValueError):
            f(pf.zeros(shape, device=xdev), axis=axis)
    check(
        f(pf.zeros((0, 4), device=xdev), axis=1),
        np.zeros(0, "int64" if "arg" in fname else "float64"),
    )


# --- axis errors and methods ----------------------------------------------------------------------

REDUCTIONS = ["sum", "prod", "mean", "var", "std", "max", "min", "all", "any", "count_nonzero"]


@pytest.mark.parametrize(
    "fname", REDUCTIONS + ["argmax", "argmin", "cumulative_sum", "cumulative_prod"]
)
def test_bad_axes(fname, xdev):
    f = getattr(pf, fname)
    x = pf.ones((2, 3), device=xdev)
    for axis in (2, -3, 100):
        with pytest.raises(pf.AxisError):
            f(x, axis=axis)
    with pytest.raises(pf.AxisError):
        f(pf.ones((), device=xdev), axis=0) if fname not in (
            "cumulative_sum",
            "cumulative_prod",
        ) else f(x, axis=5)
    if fname in REDUCTIONS:
        with pytest.raises(pf.AxisError):
            f(x, axis=(0, 2))
        with pytest.raises(pf.AxisError):
            f(x, axis=(-3,))
        for rep in ((0, 0), (1, -1), (0, 1, 0)):
            with pytest.raises(ValueError):
                f(x, axis=rep)


def test_axis_error_types():
    assert issubclass(pf.AxisError, ValueError) and issubclass(pf.AxisError, IndexError)


def test_cumulative_needs_axis_for_nd(xdev):
    x = pf.ones((2, 3), device=xdev)
    for f in (pf.cumulative_sum, pf.cumulative_prod):
        with pytest.raises(ValueError):
            f(x)


def test_methods(rng, xdev):
    x = sample_float(rng, (4, 5, 3), "float64") + 20.0
    t = T(x, dev=xdev)
    np.testing.assert_allclose(t.sum(axis=1).numpy(), x.sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(
        t.sum(axis=(0, 2), keepdims=True).numpy(), x.sum(axis=(0, 2), keepdims=True), rtol=1e-14
    )
    np.testing.assert_allclose(t.prod(axis=-1).numpy(), x.prod(axis=-1), rtol=1e-14)
    np.testing.assert_allclose(t.mean().item(), x.mean(), rtol=1e-14)
    np.testing.assert_allclose(t.mean(axis=0).numpy(), x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(
        t.var(axis=1, correction=1).numpy(), x.var(axis=1, ddof=1), rtol=1e-12
    )
    np.testing.assert_allclose(t.std(axis=2).numpy(), x.std(axis=2), rtol=1e-12)
    assert t.max().item() == x.max() and t.min().item() == x.min()
    check(t.max(axis=1, keepdims=True), x.max(axis=1, keepdims=True))
    check(t.min(axis=(0, 1)), x.min(axis=(0, 1)))
    check(t.argmax(axis=1), x.argmax(axis=1).astype(np.int64))
    check(t.argmin(), np.asarray(x.argmin(), np.int64))
    check(t.argmax(axis=0, keepdims=True), np.argmax(x, axis=0, keepdims=True).astype(np.int64))
    b = t > 21.0
    check(b.all(axis=0), (x > 21.0).all(axis=0))
    check(b.any(axis=(1, 2)), (x > 21.0).any(axis=(1, 2)))
    assert b.any().item() is True or b.any().item() == True  # noqa: E712
    i = T(np.arange(12, dtype=np.int32).reshape(3, 4), dev=xdev)
    check(i.sum(), np.array(66, np.int64), dtype="int64")
    check(
        i.sum(axis=0, dtype=pf.int32),
        np.arange(12, dtype=np.int32).reshape(3, 4).sum(axis=0, dtype=np.int32),
    )
    check(i.prod(axis=1), np.arange(12).reshape(3, 4).prod(axis=1), dtype="int64")


# --- cumulative_sum and cumulative_prod -----------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("fname", ["cumulative_sum", "cumulative_prod"])
def test_cumulative(fname, name, rng, xdev):
    func = getattr(np, fname)
    for shape in [(0,), (1,), (9,), (3, 0), (4, 6), (2, 3, 5), (1, 70)]:
        if name in FLOAT_NAMES:
            x = (
                sample_float(rng, shape, name, -8.0, 8.0)
                if fname == "cumulative_sum"
                else (sample_float(rng, shape, name, 0.7, 1.4))
            )
        else:
            x = sample_full(rng, shape, name)
        t = T(x, name, xdev)
        axes = [None] if x.ndim == 1 else []
        axes += list(range(-x.ndim, x.ndim))
        for axis in axes:
            for incl in (False, True):
                got = getattr(pf, fname)(t, axis=axis, include_initial=incl)
                if name in FLOAT_NAMES:
                    want = func(x.astype(np.float64), axis=axis, include_initial=incl)
                    ax = 0 if axis is None else axis
                    if fname == "cumulative_sum":
                        mag = np.cumulative_sum(
                            np.abs(x.astype(np.float64)), axis=ax, include_initial=incl
                        )
                        atol = x.shape[ax] * acc_eps(name) * mag
                    else:
                        atol = (x.shape[ax] + 1) * acc_eps(name) * np.abs(want)
                    check_close(got, want, name, 1, atol)
                else:
                    sd = sum_dtype(name)
                    want = quiet(func, x, axis=axis, include_initial=incl, dtype=sd)
                    check(got, want, dtype=sd)


def test_cumulative_include_initial_and_dtype(xdev):
    x = T(np.array([[1, 2, 3], [4, 5, 6]], np.int8), dev=xdev)
    check(
        pf.cumulative_sum(x, axis=1, include_initial=True),
        np.array([[0, 1, 3, 6], [0, 4, 9, 15]], np.int64),
        dtype="int64",
    )
    check(
        pf.cumulative_prod(x, axis=0, include_initial=True),
        np.array([[1, 1, 1], [1, 2, 3], [4, 10, 18]], np.int64),
        dtype="int64",
    )
    check(
        pf.cumulative_sum(x, axis=-1, dtype=pf.int8),
        np.array([[1, 3, 6], [4, 9, 15]], np.int8),
        dtype="int8",
    )
    big = T(np.full(5, 100, np.int8), dev=xdev)
    check(pf.cumulative_sum(big, dtype=pf.int8), np.cumsum(np.full(5, 100, np.int8), dtype=np.int8))
    check(pf.cumulative_sum(big, dtype=pf.float32), np.array([100, 200, 300, 400, 500], np.float32))
    u = T(np.array([1, 2], np.uint8), dev=xdev)
    check(pf.cumulative_sum(u), np.array([1, 3], np.uint64), dtype="uint64")
    b = T(np.array([True, False, True]), dev=xdev)
    check(pf.cumulative_sum(b, include_initial=True), np.array([0, 1, 1, 2]), dtype="int64")
    f = T(np.array([1.0, math.nan, 2.0, math.inf]), dev=xdev)
    check(pf.cumulative_sum(f), np.array([1.0, math.nan, math.nan, math.nan]))
    check(
        pf.cumulative_prod(T(np.array([2.0, 0.0, math.inf]), dev=xdev)),
        np.array([2.0, 0.0, math.nan]),
    )
    # strided and reversed inputs
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    t = T(base, dev=xdev)
    check(pf.cumulative_sum(t[::-1, ::2], axis=0), np.cumsum(base[::-1, ::2], axis=0))
    check(
        pf.cumulative_sum(t.mT, axis=1, include_initial=True),
        np.cumulative_sum(base.T, axis=1, include_initial=True),
    )
    check(pf.cumulative_prod(T(base[:, ::-3], dev=xdev), axis=1), np.cumprod(base[:, ::-3], axis=1))


def test_cumulative_sum_long_float32_accuracy(xdev):
    rng = np.random.default_rng(7)
    x = rng.random(10**6, dtype=np.float32)
    want = np.cumsum(x, dtype=np.float64)
    got = pf.cumulative_sum(T(x, dev=xdev)).numpy().astype(np.float64)
    err = np.abs(got - want).max()
    np_err = np.abs(np.cumsum(x).astype(np.float64) - want).max()
    print(f"\ncumulative_sum of 1e6 float32: pocaflow max error {err:.4g}, NumPy {np_err:.4g}")
    assert err <= np_err + np.spacing(np.float32(want[-1])), (err, np_err)


# --- where ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n1", DTYPE_NAMES)
@pytest.mark.parametrize(
    "n2", ["bool", "int8", "uint8", "int64", "uint64", "float16", "bfloat16", "float32", "float64"]
)
def test_where(n1, n2, rng, xdev):
    c = rng.random((3, 4)) < 0.5
    a = sample(rng, (4,), n1)
    b = sample(rng, (3, 1), n2)
    got = pf.where(T(c, dev=xdev), T(a, n1, xdev), T(b, n2, xdev))
    want_dtype = promoted(n1, n2)
    assert got.dtype == want_dtype, (got.dtype, want_dtype)
    want = np.where(c, a.astype(np_dtype(want_dtype)), b.astype(np_dtype(want_dtype)))
    if want_dtype == "bfloat16":
        want = bf16_round(want)
    check(got, want, dtype=want_dtype)


def test_where_scalars_and_broadcasting(rng, xdev):
    c = rng.random((2, 3, 4)) < 0.5
    tc = T(c, dev=xdev)
    f32 = rng.standard_normal((3, 1)).astype(np.float32)
    i8 = rng.integers(-5, 5, (4,)).astype(np.int8)
    check(pf.where(tc, T(f32, dev=xdev), 1.5), np.where(c, f32, np.float32(1.5)), dtype="float32")
    check(pf.where(tc, 2, T(f32, dev=xdev)), np.where(c, np.float32(2), f32), dtype="float32")
    check(pf.where(tc, T(i8, dev=xdev), 7), np.where(c, i8, np.int8(7)), dtype="int8")
    check(pf.where(tc, -1, T(i8, dev=xdev)), np.where(c, np.int8(-1), i8), dtype="int8")
    check(
        pf.where(tc, T(i8, dev=xdev), 0.5), np.where(c, i8.astype(np.float64), 0.5), dtype="float64"
    )
    b = rng.random((4,)) < 0.5
    check(pf.where(tc, T(b, dev=xdev), False), np.where(c, b, False), dtype="bool")
    with pytest.raises(OverflowError):
        pf.where(tc, T(i8, dev=xdev), 1000)
    # broadcasting of all three, zero-size, 0-d
    check(
        pf.where(T(c[:, :1], dev=xdev), T(i8, dev=xdev), T(i8[::-1], dev=xdev)),
        np.where(c[:, :1], i8, i8[::-1]),
    )
    check(pf.where(T(np.array(True), dev=xdev), T(f32, dev=xdev), 0.0), f32)
    check(
        pf.where(T(np.zeros((0, 1), bool), dev=xdev), T(f32.T, dev=xdev), 0.0),
        np.zeros((0, 3), np.float32),
    )
    # strided views
    base = rng.standard_normal((6, 8))
    tb = T(base, dev=xdev)
    check(
        pf.where(tb[::2, ::-1] > 0, tb[::2, ::-1], tb[1::2].mT.mT),
        np.where(base[::2, ::-1] > 0, base[::2, ::-1], base[1::2]),
    )
    # NaN and signed zeros pass through unchanged
    s = np.array([math.nan, -0.0, math.inf])
    got = pf.where(T(np.array([True, True, False]), dev=xdev), T(s, dev=xdev), -math.inf).numpy()
    assert math.isnan(got[0]) and math.copysign(1, got[1]) == -1 and got[2] == -math.inf
    with pytest.raises(ValueError):
        pf.where(tc, T(np.zeros(5), dev=xdev), 0.0)


def test_where_non_bool_condition_is_truthiness(xdev):
    """The standard asks for a bool condition; another dtype is taken as NumPy does (non-zero,
    NaN included, is true) or rejected with a TypeError."""
    c = np.array([0.0, -0.0, 2.0, math.nan])
    try:
        got = pf.where(T(c, dev=xdev), T(np.ones(4), dev=xdev), 0.0)
    except TypeError:
        return
    check(got, np.where(c, 1.0, 0.0))


# --- nonzero, count_nonzero, all, any -------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_nonzero(name, rng, xdev):
    for shape in [s for s in RED_SHAPES if len(s) >= 1]:
        x = sample(rng, shape, name)
        if name[0] in "iu":
            x = (x % 3).astype(x.dtype)
        t = T(x, name, xdev)
        got = pf.nonzero(t)
        want = np.nonzero(x)
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            check(g, w.astype(np.int64), dtype="int64")
        got = t.nonzero()
        for g, w in zip(got, want):
            check(g, w.astype(np.int64), dtype="int64")
    with pytest.raises(ValueError):
        pf.nonzero(pf.ones((), dtype=name, device=xdev))
    if name in FLOAT_NAMES:
        s = round_to(np.array([0.0, -0.0, math.nan, math.inf, 1e-30, -1.0]), name)
        (got,) = pf.nonzero(T(s, name, xdev))
        check(got, np.nonzero(s)[0].astype(np.int64))
        check(pf.count_nonzero(T(s, name, xdev)), np.array(np.count_nonzero(s), np.int64))


def test_nonzero_views(rng, xdev):
    base = rng.random((5, 7)) < 0.3
    t = T(base, dev=xdev)
    for tv, nv in (
        (t.mT, base.T),
        (t[::-1, ::2], base[::-1, ::2]),
        (T(base[:, ::-1], dev=xdev), base[:, ::-1]),
    ):
        for g, w in zip(pf.nonzero(tv), np.nonzero(nv)):
            check(g, w.astype(np.int64))


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_count_nonzero_all_any(name, rng, xdev):
    for shape in RED_SHAPES:
        x = sample(rng, shape, name)
        if name[0] in "iu":
            x = (x % 3).astype(x.dtype)
        if name in FLOAT_NAMES and x.size:
            x.reshape(-1)[:: max(1, x.size // 2)] = np.nan
        t = T(x, name, xdev)
        for axis in axes_of(x.ndim):
            for keepdims in (False, True):
                check(
                    pf.count_nonzero(t, axis=axis, keepdims=keepdims),
                    np.asarray(np.count_nonzero(x, axis=axis, keepdims=keepdims)).astype(np.int64),
                    dtype="int64",
                )
                check(
                    pf.all(t, axis=axis, keepdims=keepdims),
                    np.asarray(np.all(x, axis=axis, keepdims=keepdims)),
                    dtype="bool",
                )
                check(
                    pf.any(t, axis=axis, keepdims=keepdims),
                    np.asarray(np.any(x, axis=axis, keepdims=keepdims)),
                    dtype="bool",
                )


def test_count_nonzero_axis_tuple(rng, xdev):
    x = (rng.random((3, 4, 5, 2)) < 0.4).astype(np.float32) * rng.standard_normal(
        (3, 4, 5, 2)
    ).astype(np.float32)
    t = T(x, dev=xdev)
    for axis in ((0, 2), (1, 3), (-1, 0), (0, 1, 2, 3), (2,), (3, 1, 0)):
        check(pf.count_nonzero(t, axis=axis), np.count_nonzero(x, axis=axis).astype(np.int64))
        check(
            pf.count_nonzero(t, axis=axis, keepdims=True),
            np.count_nonzero(x, axis=axis, keepdims=True).astype(np.int64),
        )
    check(
        pf.count_nonzero(t[:, ::-1, ::2].mT, axis=(0, -1)),
        np.count_nonzero(np.swapaxes(x[:, ::-1, ::2], -1, -2), axis=(0, -1)).astype(np.int64),
    )


def test_all_any_long_runs(xdev):
    for n in (1, 7, 8, 9, 63, 64, 65, 1000, 100_003):
        for pos in sorted({0, n // 2, n - 1}):
            z = np.zeros(n, bool)
            z[pos] = True
            assert pf.any(T(z, dev=xdev)).item() is True or bool(pf.any(T(z, dev=xdev)).item())
            assert not bool(pf.all(T(z, dev=xdev)).item()) or n == 1
            o = ~z
            assert not bool(pf.any(T(o, dev=xdev)).item()) or n > 1
            assert bool(pf.all(T(~o, dev=xdev)).item()) == (n == 1)
            f = np.ones(n, np.float32)
            f[pos] = 0.0
            assert not bool(pf.all(T(f, dev=xdev)).item())
            f[pos] = -0.0
            assert not bool(pf.all(T(f, dev=xdev)).item())
            f[pos] = np.nan
            assert bool(pf.all(T(f, dev=xdev)).item())


# --- diff -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_diff(name, rng, xdev):
    for shape in [(1,), (2,), (7,), (3, 0), (4, 6), (2, 3, 5)]:
        x = sample_full(rng, shape, name)
        t = T(x, name, xdev)
        for axis in list(range(-x.ndim, x.ndim)):
            for n in (0, 1, 2, 3, 8):
                got = pf.diff(t, axis=axis, n=n)
                if name == "bfloat16":  # each difference in float32, rounded to bfloat16
                    want = x
                    for _ in range(n):
                        want = bf16_round(np.diff(want, axis=axis))
                else:
                    want = quiet(np.diff, x, axis=axis, n=n)
                check(got, want, dtype=name)
    with pytest.raises(ValueError):
        pf.diff(pf.ones((), dtype=name, device=xdev))


@pytest.mark.parametrize("name", ["bool", "int16", "uint8", "float32", "float64", "bfloat16"])
def test_diff_prepend_append(name, rng, xdev):
    x = sample(rng, (3, 5), name)
    p = sample(rng, (3, 2), name)
    a = sample(rng, (3, 1), name)
    t, tp, ta = T(x, name, xdev), T(p, name, xdev), T(a, name, xdev)
    for n in (1, 2):
        check(pf.diff(t, n=n, prepend=tp), quiet(np.diff, x, n=n, prepend=p), dtype=name)
        check(pf.diff(t, n=n, append=ta), quiet(np.diff, x, n=n, append=a), dtype=name)
        check(
            pf.diff(t, axis=1, n=n, prepend=tp, append=ta),
            quiet(np.diff, x, axis=1, n=n, prepend=p, append=a),
            dtype=name,
        )
        p0 = sample(rng, (1, 5), name)
        check(
            pf.diff(t, axis=0, n=n, prepend=T(p0, name, xdev)),
            quiet(np.diff, x, axis=0, n=n, prepend=p0),
            dtype=name,
        )
        check(
            pf.diff(t, axis=-2, n=n, append=T(p0, name, xdev)),
            quiet(np.diff, x, axis=-2, n=n, append=p0),
            dtype=name,
        )
    # views as input and prepend
    check(
        pf.diff(t.mT, axis=0, prepend=tp.mT), quiet(np.diff, x.T, axis=0, prepend=p.T), dtype=name
    )
    check(pf.diff(t[:, ::-1]), quiet(np.diff, x[:, ::-1]), dtype=name)


def test_diff_integers_wrap_and_errors(xdev):
    u = np.array([0, 255, 1, 128], np.uint8)
    check(pf.diff(T(u, dev=xdev)), np.diff(u), dtype="uint8")
    i = np.array([-128, 127, -128], np.int8)
    check(pf.diff(T(i, dev=xdev), n=2), np.diff(i, n=2), dtype="int8")
    x = pf.ones((3, 4), device=xdev)
    with pytest.raises(pf.AxisError):
        pf.diff(x, axis=2)
    with pytest.raises(ValueError):
        pf.diff(x, n=-1)
    with pytest.raises(ValueError):
        pf.diff(x, axis=1, prepend=pf.ones((2, 1), device=xdev))  # wrong shape off the axis
    # mixed dtypes promote (int8 data, int16 prepend -> int16), as concat does
    got = pf.diff(T(i, dev=xdev), prepend=T(np.array([1000], np.int16), dev=xdev))
    check(got, np.diff(i, prepend=np.array([1000], np.int16)), dtype="int16")

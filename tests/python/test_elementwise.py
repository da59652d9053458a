"""Elementwise functions and Tensor operators against NumPy: every function of the standard over
every dtype it allows, random broadcast shapes, strided/transposed/reversed inputs, Python
scalars on both sides, NaN/inf/signed-zero special cases, ``out=``, the in-place operators
(aliasing included) and every error case.

References: NumPy on the same values. Exact results are compared bit for bit (integers wrap as
NumPy's do); transcendental float results against NumPy's float64 result within a few ulps of
the dtype; float16 and bfloat16 compute in float32 and round once, so they are held to one ulp
of their own (a float32 result rounded once is within half an ulp plus a float32 rounding).
"""

import math
import operator
import warnings

import numpy as np
import pytest

import pocaflow as pf
from helpers import (
    DTYPE_NAMES,
    FLOAT_NAMES,
    INT_NAMES,
    bf16_round,
    check,
    check_close,
    np_dtype,
    promoted,
    random_shapes,
    round_to,
    sample,
    sample_float,
    sample_full,
)

NUMERIC = [n for n in DTYPE_NAMES if n != "bool"]
SIGNED = [n for n in INT_NAMES if n[0] == "i"]

#: Special floating-point values of the standard's special cases.
SPECIAL = [
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    2.0,
    -2.5,
    3.0,
    7.0,
    -7.0,
    1e-30,
    -1e-30,
    1e30,
    -1e30,
]


def T(a, name=None, dev="cpu"):
    """A pocaflow array of dtype ``name`` (default: ``a``'s) on ``dev``."""
    return pf.asarray(a, dtype=name, device=dev)


def in_dtype(func, name, *args):
    """NumPy's ``func`` computed the way pocaflow computes dtype ``name``: natively for NumPy's
    own dtypes; bfloat16 in float32, rounded once to bfloat16."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "bfloat16":
            return bf16_round(func(*[np.asarray(a, dtype=np.float32) for a in args]))
        return np.asarray(func(*[np.asarray(a, dtype=np_dtype(name)) for a in args]))


def ref64(func, *args):
    with np.errstate(all="ignore"):
        return np.asarray(func(*[np.asarray(a, dtype=np.float64) for a in args]))


def ulps_for(name, ulps):
    """Transcendental tolerance: ``ulps`` for float32/float64, one ulp for the 16-bit floats."""
    return 1.0 if name in ("float16", "bfloat16") else ulps


# --- unary float functions ------------------------------------------------------------------------

#: name: (NumPy function, domain low, high, ulps for float32/float64)
UNARY_FLOAT = {
    "acos": (np.arccos, -1.0, 1.0, 4),
    "acosh": (np.arccosh, 1.0, 60.0, 4),
    "asin": (np.arcsin, -1.0, 1.0, 4),
    "asinh": (np.arcsinh, -60.0, 60.0, 4),
    "atan": (np.arctan, -60.0, 60.0, 4),
    "atanh": (np.arctanh, -0.999, 0.999, 4),
    "cos": (np.cos, -100.0, 100.0, 4),
    "cosh": (np.cosh, -10.0, 10.0, 4),
    "exp": (np.exp, -10.0, 10.0, 4),
    "expm1": (np.expm1, -10.0, 10.0, 4),
    "log": (np.log, 1e-3, 1e4, 4),
    "log1p": (np.log1p, -0.999, 1e4, 4),
    "log2": (np.log2, 1e-3, 1e4, 4),
    "log10": (np.log10, 1e-3, 1e4, 4),
    "sin": (np.sin, -100.0, 100.0, 4),
    "sinh": (np.sinh, -10.0, 10.0, 4),
    "tan": (np.tan, -1.5, 1.5, 4),
    "tanh": (np.tanh, -10.0, 10.0, 4),
    "sqrt": (np.sqrt, 0.0, 1e4, 0.5),
    "reciprocal": (np.reciprocal, -100.0, 100.0, 0.5),
}


def unary_inputs(rng, name, lo, hi, n=600):
    """Values across ``[lo, hi]``, plus small magnitudes (where expm1, log1p, sinh, tan ...
    must stay accurate) and values just above the low end of a positive domain."""
    parts = [rng.uniform(lo, hi, n)]
    if lo <= 0 <= hi:
        parts.append(rng.uniform(max(lo, -1e-3), min(hi, 1e-3), n // 4))
        parts.append(rng.uniform(max(lo, -1e-6), min(hi, 1e-6), n // 8))
    if lo > 0:
        parts.append(lo * (1 + rng.uniform(0, 1, n // 4)))
    x = round_to(np.concatenate(parts), name)
    return x[(x >= lo) & (x <= hi)]


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("fname", sorted(UNARY_FLOAT))
def test_unary_float(fname, name, rng, xdev):
    func, lo, hi, ulps = UNARY_FLOAT[fname]
    x = unary_inputs(rng, name, lo, hi)
    if fname == "reciprocal":
        x = x[x != 0]
    got = getattr(pf, fname)(T(x, name, xdev))
    check_close(got, ref64(func, x), name, ulps_for(name, ulps))
    # a 2-D, transposed and reversed view of the same data gives the same values
    m = x[: (x.size // 6) * 6].reshape(6, -1)
    for view in (m.T, m[::-1, ::-2], m[:, 1::3]):
        got = getattr(pf, fname)(T(view, name, xdev))
        check_close(got, ref64(func, view), name, ulps_for(name, ulps))


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("fname", sorted(UNARY_FLOAT))
def test_unary_float_special_values(fname, name, xdev):
    func, _, _, ulps = UNARY_FLOAT[fname]
    x = round_to(np.array(SPECIAL + [1.5, -1.5, 10.0, 100.0, 0.999, -0.999, 1e-5, -1e-5]), name)
    got = getattr(pf, fname)(T(x, name, xdev))
    check_close(got, ref64(func, x), name, ulps_for(name, ulps))


@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n not in FLOAT_NAMES])
@pytest.mark.parametrize(
    "fname",
    sorted(UNARY_FLOAT) + ["signbit", "atan2", "hypot", "copysign", "logaddexp", "nextafter"],
)
def test_float_only_functions_reject_integers_and_bool(fname, name, rng, xdev):
    x = T(sample(rng, (3,), name), name, xdev)
    func = getattr(pf, fname)
    with pytest.raises(TypeError):
        func(x, x) if fname in ("atan2", "hypot", "copysign", "logaddexp", "nextafter") else func(x)


@pytest.mark.parametrize("name", ["int8", "uint8", "int64"])
@pytest.mark.parametrize("fname", ["atan2", "hypot", "copysign", "logaddexp", "nextafter"])
def test_float_only_binary_with_one_float_operand(fname, name, xdev):
    """An integer array mixed with a float array promotes (int8 + float32 -> float32)."""
    f = np.array([0.5, -2.0, 3.0], dtype=np.float32)
    i = np.array([1, 2, 3], dtype=name)
    got = getattr(pf, fname)(T(f, dev=xdev), T(i, dev=xdev))
    want_dtype = np.result_type(f.dtype, i.dtype).name
    func = {
        "atan2": np.arctan2,
        "hypot": np.hypot,
        "copysign": np.copysign,
        "logaddexp": np.logaddexp,
        "nextafter": np.nextafter,
    }[fname]
    if fname == "nextafter":
        want = func(f.astype(want_dtype), i.astype(want_dtype))
        check_close(got, want, want_dtype, 0)
    else:
        check_close(got, ref64(func, f, i), want_dtype, 4)


# --- unary functions with exact results -----------------------------------------------------------

UNARY_EXACT = {
    "abs": np.abs,
    "negative": np.negative,
    "positive": np.positive,
    "sign": np.sign,
    "ceil": np.ceil,
    "floor": np.floor,
    "trunc": np.trunc,
    "round": np.round,
    "square": np.square,
}


def exact_inputs(rng, name, n=300):
    if name[0] in "iu":
        x = sample_full(rng, n, name)
        info = np.iinfo(name)
        x[:4] = [info.min, info.max, 0, 1] if info.min == 0 else [info.min, info.max, 0, -1]
        return x
    x = np.concatenate(
        [
            rng.uniform(-50, 50, n),
            rng.integers(-20, 20, n // 2) + 0.5,  # ties of round
            rng.integers(-20, 20, n // 4) * 1.0,
            rng.uniform(-1, 1, n // 4),
        ]
    )
    return round_to(x, name)


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("fname", sorted(UNARY_EXACT))
def test_unary_exact(fname, name, rng, xdev):
    x = exact_inputs(rng, name)
    want = in_dtype(UNARY_EXACT[fname], name, x)
    got = getattr(pf, fname)(T(x, name, xdev))
    if name[0] in "iu":
        check(got, want, dtype=name)
    else:
        check_close(got, want, name, 0)
    for view in (x[::-3], x[1::2]):
        got = getattr(pf, fname)(T(view, name, xdev))
        want = in_dtype(UNARY_EXACT[fname], name, view)
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("fname", sorted(UNARY_EXACT))
def test_unary_exact_special_values(fname, name, xdev):
    x = round_to(np.array(SPECIAL + [2.5, -2.5, 0.49999997, -0.49999997, 1.5, 4.5]), name)
    want = in_dtype(UNARY_EXACT[fname], name, x)
    got = getattr(pf, fname)(T(x, name, xdev))
    if fname == "sign":
        # the standard leaves the sign of sign(+-0) open
        want = np.where(want == 0, np.abs(want), want)
        g = got.numpy()
        np.testing.assert_array_equal(np.where(g == 0, 0, g), want)
        assert got.dtype == name
    else:
        check_close(got, want, name, 0)


@pytest.mark.parametrize("fname", sorted(UNARY_EXACT))
def test_unary_numeric_functions_reject_bool(fname, xdev):
    with pytest.raises(TypeError):
        getattr(pf, fname)(T(np.array([True, False]), dev=xdev))


@pytest.mark.parametrize("name", NUMERIC)
def test_conj_real_imag(name, rng, xdev):
    x = sample_full(rng, (3, 4), name)
    t = T(x, name, xdev)
    check(pf.conj(t), np.conj(x) if name[0] in "iu" else x, dtype=name)
    check(pf.real(t), x, dtype=name)
    check(pf.imag(t), np.zeros_like(x), dtype=name)


# --- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("fname", ["isnan", "isinf", "isfinite", "signbit"])
def test_classification(fname, name, rng, xdev):
    if name[0] in "iu":
        if fname == "signbit":
            return  # float only: test_float_only_functions_reject_integers_and_bool
        x = sample_full(rng, (5, 7), name)
    else:
        x = round_to(np.array(SPECIAL + [65504.0, 1e5, -1e5, 3.4e38, 1e300, -1e300]), name)
    got = getattr(pf, fname)(T(x, name, xdev))
    with np.errstate(all="ignore"):
        want = getattr(np, fname)(x)
    check(got, want, dtype="bool")


# --- binary functions -----------------------------------------------------------------------------

#: name: (NumPy function, tolerance in ulps for floats (0: exact against NumPy in the dtype))
BINARY_NUMERIC = {
    "add": (np.add, 0),
    "subtract": (np.subtract, 0),
    "multiply": (np.multiply, 0),
    "divide": (np.divide, 0),
    "floor_divide": (np.floor_divide, 0),
    "remainder": (np.remainder, 0),
    "maximum": (np.maximum, 0),
    "minimum": (np.minimum, 0),
    "pow": (np.power, 4),
}
BINARY_FLOAT = {
    "atan2": (np.arctan2, 4),
    "hypot": (np.hypot, 2),
    "copysign": (np.copysign, 0),
    "logaddexp": (np.logaddexp, 4),
    "nextafter": (None, 0),
}


def bf16_nextafter(x, y):
    """nextafter in bfloat16 on float32 arrays holding bfloat16 values."""
    x = np.asarray(x, np.float32).copy()
    y = np.asarray(y, np.float32)
    x, y = np.broadcast_arrays(x, y)
    bits = x.view(np.int32).copy()
    out = np.empty(x.shape, np.float32)
    for i in np.ndindex(x.shape):
        a, b = x[i], y[i]
        if np.isnan(a) or np.isnan(b):
            out[i] = np.nan
        elif a == b:
            out[i] = b
        elif a == 0:
            out[i] = np.copysign(np.float32(2.0**-133), b)
        else:
            step = 0x10000 if (b > a) == (a > 0) else -0x10000
            out[i] = np.int32(bits[i] + step).view(np.float32)
    return out


def np_binary(fname, name, a, b):
    """NumPy's ``fname`` in dtype ``name``."""
    if fname == "nextafter":
        if name == "bfloat16":
            return bf16_nextafter(a, b)
        want = in_dtype(np.nextafter, name, a, b)
        # the standard: nextafter(x, y) is y where x == y (NumPy's float16 returns x)
        a, b = np.broadcast_arrays(np.asarray(a, want.dtype), np.asarray(b, want.dtype))
        return np.where(a == b, b, want)
    func = {**BINARY_NUMERIC, **BINARY_FLOAT}[fname][0]
    return in_dtype(func, name, a, b)


def binary_inputs(rng, fname, name, shape_a, shape_b):
    if name[0] in "iu" or name == "bool":
        a = sample_full(rng, shape_a, name)
        b = sample_full(rng, shape_b, name)
        if fname == "pow":
            b = rng.integers(0, 9, size=shape_b).astype(name)
        if fname in ("floor_divide", "remainder") and b.size:
            b.reshape(-1)[:: max(1, b.size // 3)] = 0  # division by zero gives 0
        if fname == "divide" and name != "bool" and b.size:
            b.reshape(-1)[:: max(1, b.size // 3)] = 0
        return a, b
    if fname == "pow":
        a = sample_float(rng, shape_a, name, 0.1, 10.0)
        b = sample_float(rng, shape_b, name, -4.0, 4.0)
        return a, b
    if fname == "logaddexp":
        return sample_float(rng, shape_a, name, -50, 50), sample_float(rng, shape_b, name, -50, 50)
    a = sample_float(rng, shape_a, name, -100.0, 100.0)
    b = sample_float(rng, shape_b, name, -100.0, 100.0)
    if fname in ("divide", "floor_divide", "remainder"):
        b = np.where(np.abs(b) < 0.25, np.asarray(0.5, b.dtype), b).astype(b.dtype)
    if fname == "nextafter" and a.size and b.size:
        a.reshape(-1)[:2] = 0.0
    return a, b


def check_binary(got, fname, name, a, b, ulps):
    if name[0] in "iu" or name == "bool" or (ulps == 0 and fname != "divide"):
        want = np_binary(fname, name, a, b)
        if name[0] in "iu" or name == "bool":
            check(got, want.astype(np_dtype(name)), dtype=name)
        else:
            check_close(got, want, name, 0)
        return
    if ulps == 0:  # divide: correctly rounded
        check_close(got, np_binary(fname, name, a, b), name, 0)
        return
    func = {**BINARY_NUMERIC, **BINARY_FLOAT}[fname][0]
    check_close(got, ref64(func, a, b), name, ulps_for(name, ulps))


BROADCAST_PAIRS = [
    ((), ()),
    ((5,), ()),
    ((), (4,)),
    ((7,), (7,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (4,)),
    ((1, 3, 1), (2, 1, 5)),
    ((0,), (1,)),
    ((3, 0), (3, 1)),
    ((4, 1, 3), (0, 3)),
    ((6, 5), (6, 5)),
]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("fname", sorted(BINARY_NUMERIC))
def test_binary_numeric(fname, name, rng, xdev):
    _, ulps = BINARY_NUMERIC[fname]
    for sa, sb in BROADCAST_PAIRS:
        a, b = binary_inputs(rng, fname, name, sa, sb)
        got = getattr(pf, fname)(T(a, name, xdev), T(b, name, xdev))
        if fname == "divide" and name[0] in "iu":
            want = ref64(np.divide, a, b)
            check_close(got, want, "float64", 0)
            continue
        check_binary(got, fname, name, a, b, ulps)


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("fname", sorted(BINARY_FLOAT))
def test_binary_float(fname, name, rng, xdev):
    _, ulps = BINARY_FLOAT[fname]
    for sa, sb in BROADCAST_PAIRS:
        a, b = binary_inputs(rng, fname, name, sa, sb)
        got = getattr(pf, fname)(T(a, name, xdev), T(b, name, xdev))
        check_binary(got, fname, name, a, b, ulps)


@pytest.mark.parametrize("fname", ["add", "multiply", "maximum", "minimum", "divide"])
def test_binary_bool(fname, rng, xdev):
    """Where pocaflow takes bool operands it gives NumPy's answer (add is logical or, ...)."""
    a = rng.random((4, 5)) < 0.5
    b = rng.random((5,)) < 0.5
    try:
        got = getattr(pf, fname)(T(a, dev=xdev), T(b, dev=xdev))
    except TypeError:
        return  # the standard asks for numeric operands
    with np.errstate(all="ignore"):
        want = BINARY_NUMERIC[fname][0](a, b)
    if want.dtype.kind == "f":
        check_close(got, want, "float64", 0)
    else:
        check(got, want, dtype=want.dtype.name)


@pytest.mark.parametrize("fname", ["subtract", "floor_divide", "remainder", "pow"])
def test_binary_numeric_reject_bool(fname, xdev):
    b = T(np.array([True, False]), dev=xdev)
    with pytest.raises(TypeError):
        getattr(pf, fname)(b, b)


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize("fname", sorted(BINARY_NUMERIC) + sorted(BINARY_FLOAT))
def test_binary_special_values(fname, name, xdev):
    vals = round_to(np.array(SPECIAL), name)
    a = np.repeat(vals, vals.size)
    b = np.tile(vals, vals.size)
    if fname == "floor_divide":
        # the standard notes that libraries diverge where exactly one operand is infinite and
        # the other finite and non-zero (floor(a/b) or the pairing with %): NumPy's way is
        # checked below, the rest here
        one_inf = np.isinf(a) != np.isinf(b)
        other = np.where(np.isinf(a), b, a)
        keep = ~(one_inf & np.isfinite(other) & (other != 0))
        a, b = a[keep], b[keep]
    got = getattr(pf, fname)(T(a, name, xdev), T(b, name, xdev))
    ulps = {**BINARY_NUMERIC, **BINARY_FLOAT}[fname][1]
    if ulps == 0:
        want = np_binary(fname, name, a, b)
        if fname in ("maximum", "minimum"):
            # the sign of max(+0, -0) is left open
            g = got.numpy()
            zero = (want == 0) & (g == 0)
            np.testing.assert_array_equal(np.isnan(g), np.isnan(want))
            ok = zero | (g == want) | (np.isnan(g) & np.isnan(want))
            assert ok.all(), (a[~ok], b[~ok], g[~ok], want[~ok])
            return
        check_close(got, want, name, 0)
    else:
        func = {**BINARY_NUMERIC, **BINARY_FLOAT}[fname][0]
        check_close(got, ref64(func, a, b), name, ulps_for(name, ulps))


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_floor_divide_remainder_signs_follow_python(name, xdev):
    """``//`` and ``%`` pair up as Python's: ``a == (a // b) * b + a % b`` with ``a % b``
    taking the sign of ``b``; zero remainders are signed like ``b``."""
    a = np.array([7.0, -7.0, 7.0, -7.0, 0.0, -0.0, 6.0, -6.0, 5.5, -5.5, 1.0, -1.0], dtype=name)
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, -3.0, 3.0, 2.5, 2.5, math.inf, math.inf], name)
    fd = pf.floor_divide(T(a, dev=xdev), T(b, dev=xdev)).numpy()
    rm = pf.remainder(T(a, dev=xdev), T(b, dev=xdev)).numpy()
    for i in range(a.size):
        want_fd, want_rm = divmod(float(a[i]), float(b[i]))
        assert fd[i] == want_fd and math.copysign(1, fd[i]) == math.copysign(1, want_fd), (
            a[i],
            b[i],
            fd[i],
            want_fd,
        )
        assert rm[i] == want_rm and math.copysign(1, rm[i]) == math.copysign(1, want_rm), (
            a[i],
            b[i],
            rm[i],
            want_rm,
        )


@pytest.mark.parametrize("name", SIGNED)
def test_integer_division_edge_cases(name, xdev):
    info = np.iinfo(name)
    a = np.array([info.min, info.min, 7, -7, 7, -7, 0, 5, info.max], dtype=name)
    b = np.array([-1, 0, 2, 2, -2, -2, 0, 0, -1], dtype=name)
    with np.errstate(all="ignore"):
        want_fd, want_rm = np.floor_divide(a, b), np.remainder(a, b)
    check(pf.floor_divide(T(a, dev=xdev), T(b, dev=xdev)), want_fd, dtype=name)
    check(pf.remainder(T(a, dev=xdev), T(b, dev=xdev)), want_rm, dtype=name)
    assert want_fd[1] == 0 and want_rm[1] == 0  # by zero: 0


@pytest.mark.parametrize("name", ["int8", "int32", "uint16", "int64", "uint64"])
def test_integer_pow_wraps(name, rng, xdev):
    a = sample_full(rng, 200, name)
    b = rng.integers(0, 70, size=200).astype(name)
    b[:3] = 0
    with np.errstate(all="ignore"):
        want = np.power(a, b)
    check(pf.pow(T(a, dev=xdev), T(b, dev=xdev)), want, dtype=name)


# --- mixed dtypes (type promotion) ----------------------------------------------------------------


@pytest.mark.parametrize("n1", DTYPE_NAMES)
@pytest.mark.parametrize("n2", DTYPE_NAMES)
def test_promotion_add_multiply(n1, n2, rng, xdev):
    want_dtype = promoted(n1, n2)
    a = sample_full(rng, (3, 4), n1)
    b = sample_full(rng, (4,), n2)
    ta, tb = T(a, n1, xdev), T(b, n2, xdev)
    for fname, func in (("add", np.add), ("multiply", np.multiply), ("subtract", np.subtract)):
        if fname == "subtract" and "bool" in (n1, n2) and n1 == n2:
            continue
        if fname == "subtract" and want_dtype == "bool":
            continue
        got = getattr(pf, fname)(ta, tb)
        assert got.dtype == want_dtype, (fname, n1, n2, got.dtype, want_dtype)
        want = in_dtype(
            func, want_dtype, a.astype(np_dtype(want_dtype)), b.astype(np_dtype(want_dtype))
        )
        if want_dtype[0] in "iub":
            check(got, want, dtype=want_dtype)
        else:
            check_close(got, want, want_dtype, 0)


@pytest.mark.parametrize("n1", NUMERIC)
@pytest.mark.parametrize("n2", NUMERIC)
def test_promotion_comparisons_exact(n1, n2, rng, xdev):
    """Comparisons of mixed dtypes are exact (NumPy's int64 < uint64 is, too)."""
    a = sample_full(rng, (40,), n1)
    b = sample_full(rng, (40,), n2)
    if n1[0] in "iu" and n2[0] in "iu":
        i1, i2 = np.iinfo(n1), np.iinfo(n2)
        a[:4] = [i1.max, i1.min, i1.max, 0]
        b[:4] = [i2.max, i2.min, i2.max if i2.max < 2**64 else 0, i2.max]
    ta, tb = T(a, n1, xdev), T(b, n2, xdev)
    for op in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne):
        check(op(ta, tb), op(a, b), dtype="bool")


def test_promotion_uint64_int64_is_float64(xdev):
    a = T(np.array([2**64 - 1], np.uint64), dev=xdev)
    b = T(np.array([-1], np.int64), dev=xdev)
    got = pf.add(a, b)
    assert got.dtype == "float64"
    np.testing.assert_array_equal(got.numpy(), [2.0**64 - 1])
    assert (
        pf.asarray(np.int32(1), device=xdev) + pf.asarray(np.float32(1), device=xdev)
    ).dtype == ("float64")


# --- comparisons, logical and bitwise -------------------------------------------------------------

COMPARISONS = {
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
}


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("fname", sorted(COMPARISONS))
def test_comparisons(fname, name, rng, xdev):
    if name == "bool" and fname not in ("equal", "not_equal"):
        a = rng.random((4, 5)) < 0.5
        try:
            got = getattr(pf, fname)(T(a, dev=xdev), T(a.T.copy().T, dev=xdev))
        except TypeError:
            return
        check(got, COMPARISONS[fname](a, a), dtype="bool")
        return
    for sa, sb in BROADCAST_PAIRS:
        a = sample(rng, sa, name)
        b = sample(rng, sb, name)
        got = getattr(pf, fname)(T(a, name, xdev), T(b, name, xdev))
        check(got, COMPARISONS[fname](a, b), dtype="bool")
    if name in FLOAT_NAMES:
        vals = round_to(np.array(SPECIAL), name)
        a, b = np.repeat(vals, vals.size), np.tile(vals, vals.size)
        got = getattr(pf, fname)(T(a, name, xdev), T(b, name, xdev))
        check(got, COMPARISONS[fname](a, b), dtype="bool")


LOGICAL = {
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}


@pytest.mark.parametrize("fname", sorted(LOGICAL))
def test_logical(fname, rng, xdev):
    for sa, sb in BROADCAST_PAIRS:
        a = rng.random(sa) < 0.5
        b = rng.random(sb) < 0.5
        check(getattr(pf, fname)(T(a, dev=xdev), T(b, dev=xdev)), LOGICAL[fname](a, b), "bool")
    a = rng.random((3, 6)) < 0.5
    check(pf.logical_not(T(a, dev=xdev)), np.logical_not(a), dtype="bool")
    check(pf.logical_not(T(a[:, ::-2], dev=xdev)), np.logical_not(a[:, ::-2]), dtype="bool")


BITWISE = {
    "bitwise_and": np.bitwise_and,
    "bitwise_or": np.bitwise_or,
    "bitwise_xor": np.bitwise_xor,
}


@pytest.mark.parametrize("name", ["bool"] + INT_NAMES)
@pytest.mark.parametrize("fname", sorted(BITWISE) + ["bitwise_invert"])
def test_bitwise(fname, name, rng, xdev):
    for sa, sb in BROADCAST_PAIRS:
        a = sample_full(rng, sa, name)
        b = sample_full(rng, sb, name)
        if fname == "bitwise_invert":
            check(pf.bitwise_invert(T(a, name, xdev)), np.invert(a), dtype=name)
        else:
            got = getattr(pf, fname)(T(a, name, xdev), T(b, name, xdev))
            check(got, BITWISE[fname](a, b), dtype=name)


@pytest.mark.parametrize("name", INT_NAMES)
@pytest.mark.parametrize("fname", ["bitwise_left_shift", "bitwise_right_shift"])
def test_shifts(fname, name, rng, xdev):
    """Shifts by the width or more give 0 (or -1 for a negative value shifted right), as
    NumPy."""
    width = np.dtype(name).itemsize * 8
    a = sample_full(rng, (300,), name)
    b = rng.integers(0, min(2 * width + 3, np.iinfo(name).max), size=300).astype(name)
    b[:4] = [0, width - 1, width, min(width + 1, np.iinfo(name).max)]
    func = np.left_shift if fname == "bitwise_left_shift" else np.right_shift
    got = getattr(pf, fname)(T(a, dev=xdev), T(b, dev=xdev))
    check(got, func(a, b), dtype=name)
    # broadcast shift counts
    got = getattr(pf, fname)(T(a.reshape(30, 10), dev=xdev), T(b[:10], dev=xdev))
    check(got, func(a.reshape(30, 10), b[:10]), dtype=name)


def test_shift_mixed_and_edge(xdev):
    a = np.array([-128, -1, 1, 64, 127], np.int8)
    for s in (0, 7, 8, 9, 100):
        sh = np.full(5, s, np.int8)
        check(
            pf.bitwise_right_shift(T(a, dev=xdev), T(sh, dev=xdev)), np.right_shift(a, sh), "int8"
        )
        check(pf.bitwise_left_shift(T(a, dev=xdev), T(sh, dev=xdev)), np.left_shift(a, sh), "int8")
    u = np.array([2**64 - 1, 1, 2**63], np.uint64)
    for s in (0, 63, 64, 65, 200):
        sh = np.full(3, s, np.uint64)
        check(
            pf.bitwise_left_shift(T(u, dev=xdev), T(sh, dev=xdev)), np.left_shift(u, sh), "uint64"
        )
        check(
            pf.bitwise_right_shift(T(u, dev=xdev), T(sh, dev=xdev)), np.right_shift(u, sh), "uint64"
        )
    # int8 << uint8 promotes to int16
    got = pf.bitwise_left_shift(T(a, dev=xdev), T(np.array([1, 2, 3, 4, 9], np.uint8), dev=xdev))
    check(got, np.left_shift(a, np.array([1, 2, 3, 4, 9], np.uint8)), dtype="int16")


@pytest.mark.parametrize("name", FLOAT_NAMES)
@pytest.mark.parametrize(
    "fname", sorted(BITWISE) + ["bitwise_invert", "bitwise_left_shift", "bitwise_right_shift"]
)
def test_bitwise_rejects_floats(fname, name, xdev):
    x = T(np.array([1.0, 2.0], np.float32), name, xdev)
    i = T(np.array([1, 2], np.int32), dev=xdev)
    func = getattr(pf, fname)
    with pytest.raises(TypeError):
        func(x) if fname == "bitwise_invert" else func(x, x)
    if fname != "bitwise_invert":
        with pytest.raises(TypeError):
            func(i, x)
        with pytest.raises(TypeError):
            func(x, 1)


def test_shifts_reject_bool_and_int64_uint64(xdev):
    b = T(np.array([True]), dev=xdev)
    for f in (pf.bitwise_left_shift, pf.bitwise_right_shift):
        with pytest.raises(TypeError):
            f(b, b)
    with pytest.raises(TypeError):  # promotes to float64
        pf.bitwise_and(T(np.array([1], np.int64), dev=xdev), T(np.array([1], np.uint64), dev=xdev))


# --- layouts: strided, transposed, reversed and NumPy views ---------------------------------------


@pytest.mark.parametrize("name", ["int16", "uint32", "float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("fname", ["add", "multiply", "maximum", "subtract", "atan2", "exp"])
def test_layouts(fname, name, rng, xdev):
    if fname in ("atan2", "exp") and name[0] in "iu":
        return
    base_a = sample(rng, (4, 6), name) + (1 if name[0] in "iu" else 0.25)
    base_b = sample(rng, (4, 6), name)
    np_views = [
        base_a,
        base_a.T,
        base_a[::-2],
        base_a[:, ::-1],
        base_a[1:, 1::2],
        np.asfortranarray(base_a),
        base_a[::-1, ::-1].T,
    ]
    func = getattr(pf, fname)
    ref = {
        "add": np.add,
        "multiply": np.multiply,
        "maximum": np.maximum,
        "subtract": np.subtract,
        "atan2": np.arctan2,
        "exp": np.exp,
    }[fname]
    ulps = 4 if fname in ("atan2", "exp") else 0
    for va in np_views:
        vb = (
            base_b[: va.shape[0], : va.shape[1]] if va.shape[0] <= 4 else base_b.T[:, : va.shape[1]]
        )
        vb = vb[..., ::-1]
        ta = T(va, name, xdev)
        tb = T(vb, name, xdev)
        got = func(ta) if fname == "exp" else func(ta, tb)
        if ulps:
            want = ref64(ref, va) if fname == "exp" else ref64(ref, va, vb)
            check_close(got, want, name, ulps_for(name, ulps))
        else:
            want = in_dtype(ref, name, va, vb)
            np.testing.assert_array_equal(got.numpy(), want)
            assert got.dtype == name
    # pocaflow's own views (transpose, step, negative step) and broadcast_to
    t = T(base_a, name, xdev)
    u = T(base_b, name, xdev)
    for tv, nv, tw, nw in [
        (t.mT, base_a.T, u.mT, base_b.T),
        (t[::-1, ::2], base_a[::-1, ::2], u[:, ::-2], base_b[:, ::-2]),
        (pf.broadcast_to(t[:1], (4, 6)), np.broadcast_to(base_a[:1], (4, 6)), u, base_b),
        (t[:, 2:3], base_a[:, 2:3], u[1:2, ::-1], base_b[1:2, ::-1]),
    ]:
        got = func(tv) if fname == "exp" else func(tv, tw)
        if ulps:
            want = ref64(ref, nv) if fname == "exp" else ref64(ref, nv, nw)
            check_close(got, want, name, ulps_for(name, ulps))
        else:
            np.testing.assert_array_equal(got.numpy(), in_dtype(ref, name, nv, nw))


def test_random_broadcast_shapes(rng, xdev):
    shapes = random_shapes(rng, 40, max_ndim=4, max_side=4)
    for sa in shapes:
        # a broadcast-compatible partner: each axis kept, set to 1, or dropped from the left
        sb = tuple(d if rng.random() < 0.5 else 1 for d in sa)[int(rng.integers(0, len(sa) + 1)) :]
        if rng.random() < 0.5:
            sa, sb = sb, sa
        a = rng.standard_normal(sa).astype(np.float32)
        b = rng.standard_normal(sb).astype(np.float32)
        check(pf.add(T(a, dev=xdev), T(b, dev=xdev)), a + b)
        check(pf.multiply(T(b, dev=xdev), T(a, dev=xdev)), b * a)
        check(pf.less(T(a, dev=xdev), T(b, dev=xdev)), a < b)


def test_non_broadcastable_shapes_raise_value_error(xdev):
    a = pf.zeros((2, 3), device=xdev)
    b = pf.zeros((4,), device=xdev)
    for call in (
        lambda: pf.add(a, b),
        lambda: pf.atan2(a, b),
        lambda: pf.equal(a, b),
        lambda: pf.logical_and(pf.astype(a, pf.bool), pf.astype(b, pf.bool)),
        lambda: pf.bitwise_and(pf.astype(a, pf.int32), pf.astype(b, pf.int32)),
        lambda: a * b,
        lambda: a < b,
        lambda: pf.clip(a, b),
    ):
        with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)|\(4,\).*\(2, 3\)"):
            call()
    with pytest.raises(ValueError, match=r"\(3, 0\)"):
        pf.add(pf.zeros((3, 0), device=xdev), pf.zeros((3, 2), device=xdev))


@pytest.mark.cuda
def test_different_devices_raise_runtime_error():
    a = pf.ones((3,), device="cpu")
    b = pf.ones((3,), device="cuda")
    for call in (
        lambda: pf.add(a, b),
        lambda: a * b,
        lambda: pf.where(a > 0, a, b),
        lambda: pf.atan2(b, a),
        lambda: pf.clip(a, b, None),
    ):
        with pytest.raises(RuntimeError, match=r"(?s)(cpu.*cuda|cuda.*cpu)"):
            call()
    with pytest.raises(RuntimeError, match=r"(?s)(cpu.*cuda|cuda.*cpu)"):
        pf.add(b, b, out=pf.empty((3,), device="cpu"))


# --- Python scalars -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NUMERIC)
def test_weak_scalars(name, rng, xdev):
    x = sample(rng, (3, 4), name) + (1 if name[0] in "iu" else 0.5)
    t = T(x, name, xdev)
    is_int = name[0] in "iu"
    # an int scalar keeps the array's dtype
    for op in (operator.add, operator.sub, operator.mul):
        for s in (3, 0):
            for got, want in ((op(t, s), op(x, s)), (op(s, t), op(s, x))):
                if name == "bfloat16":
                    want = bf16_round(want)
                with np.errstate(all="ignore"):
                    assert got.dtype == name, (op, s, got.dtype)
                np.testing.assert_array_equal(got.numpy(), want)
    # a float scalar: floats keep their dtype, integers go to float64
    want_dtype = "float64" if is_int else name
    for op in (operator.add, operator.sub, operator.mul, operator.truediv):
        for got, want in (
            (op(t, 1.5), op(x.astype(np.float64), 1.5)),
            (op(2.5, t), op(2.5, x.astype(np.float64))),
        ):
            assert got.dtype == want_dtype, (op, got.dtype, want_dtype)
            check_close(got, want, want_dtype, 0.5)
    got = pf.add(t, 1.5)
    assert got.dtype == want_dtype
    got = pf.maximum(t, 2)
    assert got.dtype == name
    np.testing.assert_array_equal(got.numpy(), in_dtype(np.maximum, name, x, 2))
    got = pf.multiply(7, t)
    assert got.dtype == name
    got = pf.less(t, 2.5)
    check(got, x < 2.5, dtype="bool")
    got = pf.greater_equal(3, t)
    check(got, 3 >= x, dtype="bool")


@pytest.mark.parametrize("name", INT_NAMES)
def test_int_scalar_out_of_range_raises_overflow_error(name, xdev):
    t = T(np.array([1, 2], dtype=name), dev=xdev)
    info = np.iinfo(name)
    for s in (int(info.max) + 1, int(info.min) - 1):
        with pytest.raises(OverflowError):
            t + s
        with pytest.raises(OverflowError):
            s * t
        with pytest.raises(OverflowError):
            pf.add(t, s)
    # the bounds themselves are fine and wrap
    got = t + int(info.max)
    assert got.dtype == name
    np.testing.assert_array_equal(got.numpy(), np.array([1, 2], dtype=name) + info.max)


def test_bool_and_int_scalars(xdev):
    b = T(np.array([True, False]), dev=xdev)
    got = b + 1
    assert got.dtype == "int64"
    np.testing.assert_array_equal(got.numpy(), [2, 1])
    got = 1.5 * b
    assert got.dtype == "float64"
    np.testing.assert_array_equal(got.numpy(), [1.5, 0.0])
    got = b & True
    check(got, np.array([True, False]), dtype="bool")
    got = True | b
    check(got, np.array([True, True]), dtype="bool")
    i8 = T(np.array([1, -2], np.int8), dev=xdev)
    check(i8 + True, np.array([2, -1], np.int8), dtype="int8")
    check(i8 & 3, np.array([1, 2], np.int8), dtype="int8")
    check(i8 << 2, np.array([4, -8], np.int8), dtype="int8")
    check(1 << T(np.array([1, 6], np.int8), dev=xdev), np.array([2, 64], np.int8), dtype="int8")
    got = i8 + 1.5
    assert got.dtype == "float64"
    np.testing.assert_array_equal(got.numpy(), [2.5, -0.5])
    f16 = T(np.array([1.0, 2.0], np.float16), dev=xdev)
    assert (f16 + 1.5).dtype == "float16" and (f16 * 3).dtype == "float16"
    bf = T(np.array([1.0, 2.0], np.float32), "bfloat16", xdev)
    assert (bf + 1.5).dtype == "bfloat16" and (2 - bf).dtype == "bfloat16"
    f32 = T(np.array([1.0, 2.0], np.float32), dev=xdev)
    got = f32 + 1e-8  # the scalar is rounded to float32 (weak): 1 + 1e-8 == 1 in float32
    assert got.dtype == "float32"
    np.testing.assert_array_equal(got.numpy(), np.array([1.0, 2.0], np.float32) + 1e-8)


@pytest.mark.parametrize(
    "fname",
    [
        "floor_divide",
        "remainder",
        "pow",
        "divide",
        "copysign",
        "atan2",
        "hypot",
        "logaddexp",
        "nextafter",
        "maximum",
        "minimum",
        "subtract",
    ],
)
def test_scalars_both_sides_of_functions(fname, rng, xdev):
    x = sample_float(rng, (5,), "float32", 0.5, 4.0)
    t = T(x, dev=xdev)
    f = getattr(pf, fname)
    for s in (2.0, 3, -1.5):
        if fname == "nextafter":
            ref = np.nextafter
        else:
            ref = {**BINARY_NUMERIC, **BINARY_FLOAT}[fname][0]
        for got, args in ((f(t, s), (x, np.float32(s))), (f(s, t), (np.float32(s), x))):
            assert got.dtype == "float32"
            if fname in ("atan2", "hypot", "logaddexp", "pow"):
                check_close(got, ref64(ref, *args), "float32", 4)
            else:
                check_close(got, in_dtype(ref, "float32", *args), "float32", 0)


def test_scalar_only_arguments_are_not_enough():
    """At least one of x1 and x2 must be an array."""
    with pytest.raises(TypeError):
        pf.add(1, 2)


# --- Tensor operators -----------------------------------------------------------------------------

OPERATORS = {
    "+": (operator.add, np.add),
    "-": (operator.sub, np.subtract),
    "*": (operator.mul, np.multiply),
    "/": (operator.truediv, np.divide),
    "//": (operator.floordiv, np.floor_divide),
    "%": (operator.mod, np.remainder),
    "**": (operator.pow, np.power),
    "&": (operator.and_, np.bitwise_and),
    "|": (operator.or_, np.bitwise_or),
    "^": (operator.xor, np.bitwise_xor),
    "<<": (operator.lshift, np.left_shift),
    ">>": (operator.rshift, np.right_shift),
    "<": (operator.lt, np.less),
    "<=": (operator.le, np.less_equal),
    ">": (operator.gt, np.greater),
    ">=": (operator.ge, np.greater_equal),
    "==": (operator.eq, np.equal),
    "!=": (operator.ne, np.not_equal),
}
BITWISE_OPS = {"&", "|", "^", "<<", ">>"}


def op_inputs(rng, sym, name, shape_a=(3, 4), shape_b=(4,)):
    a = sample(rng, shape_a, name)
    b = sample(rng, shape_b, name)
    if (
        sym in ("/", "//", "%")
        and name[0] in "f"
        or (sym in ("/", "//", "%") and name == "bfloat16")
    ):
        b = np.where(b == 0, np.asarray(1, b.dtype), b).astype(b.dtype)
    if sym == "**":
        b = (b % 4).astype(b.dtype) if name[0] in "iu" else round_to(np.abs(b) % 3, name)
        if name[0] not in "iu":
            a = round_to(np.abs(a) + 0.5, name)
    if sym in ("<<", ">>"):
        b = (b % 10).astype(b.dtype)
    return a, b


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("sym", sorted(OPERATORS))
def test_operators(sym, name, rng, xdev):
    op, func = OPERATORS[sym]
    if sym in BITWISE_OPS and name[0] not in "iu":
        with pytest.raises(TypeError):
            op(T(np.ones(2, np.float32), name, xdev), T(np.ones(2, np.float32), name, xdev))
        return
    a, b = op_inputs(rng, sym, name)
    ta, tb = T(a, name, xdev), T(b, name, xdev)
    got = op(ta, tb)
    if sym == "/" and name[0] in "iu":
        check_close(got, ref64(np.divide, a, b), "float64", 0)
    elif sym == "**" and name[0] not in "iu":
        check_close(got, ref64(np.power, a, b), name, ulps_for(name, 4))
    elif sym in ("<", "<=", ">", ">=", "==", "!="):
        check(got, func(a, b), dtype="bool")
    else:
        want = in_dtype(func, name, a, b)
        np.testing.assert_array_equal(got.numpy(), want)
        assert got.dtype == name
    # the function form agrees; reflected forms with a scalar on the left
    s = 2
    if sym in ("/",) and name[0] in "iu":
        rgot, rwant = op(s, ta), ref64(func, s, a)
        check_close(rgot, np.where(a == 0, rwant, rwant), "float64", 0)
    elif sym not in ("**",) or name[0] in "iu":
        with np.errstate(all="ignore"):
            rgot = op(s, ta)
            if sym in ("<", "<=", ">", ">=", "==", "!="):
                check(rgot, func(s, a), dtype="bool")
            else:
                rwant = in_dtype(lambda u: func(np.asarray(s, u.dtype), u), name, a)
                np.testing.assert_array_equal(rgot.numpy(), rwant)
                assert rgot.dtype == name
    else:
        check_close(op(s, ta), ref64(func, s, a), name, ulps_for(name, 4))


@pytest.mark.parametrize("name", NUMERIC)
def test_unary_operators(name, rng, xdev):
    x = sample_full(rng, (4, 5), name)
    t = T(x, name, xdev)
    check(-t, in_dtype(np.negative, name, x), dtype=name)
    check(+t, x, dtype=name)
    check(abs(t), in_dtype(np.abs, name, x), dtype=name)
    assert not (+t)._shares_memory(t)
    if name[0] in "iu":
        check(~t, np.invert(x), dtype=name)
    else:
        with pytest.raises(TypeError):
            _ = ~t


def test_bool_unary_operators(xdev):
    b = T(np.array([True, False]), dev=xdev)
    check(~b, np.array([False, True]), dtype="bool")
    with pytest.raises(TypeError):
        _ = -b
    with pytest.raises(TypeError):
        pf.negative(b)
    with pytest.raises(TypeError):
        b - b
    with pytest.raises(TypeError):
        pf.positive(b)


def test_operators_with_numpy_and_unsupported_operands(xdev):
    t = T(np.array([1.0, 2.0], np.float32), dev=xdev)
    with pytest.raises(TypeError):
        t + "a"
    with pytest.raises(TypeError):
        "a" * t


# --- out= -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["int32", "float32", "float64", "bfloat16"])
def test_out(name, rng, xdev):
    a = sample(rng, (3, 4), name)
    b = sample(rng, (4,), name)
    ta, tb = T(a, name, xdev), T(b, name, xdev)
    o = pf.empty((3, 4), dtype=name, device=xdev)
    r = pf.add(ta, tb, out=o)
    check(o, in_dtype(np.add, name, a, b), dtype=name)
    check(r, in_dtype(np.add, name, a, b), dtype=name)
    assert r._shares_memory(o)
    r = pf.negative(ta, out=o)
    check(o, in_dtype(np.negative, name, a), dtype=name)
    assert r._shares_memory(o)
    r = pf.less(ta, tb, out=pf.empty((3, 4), dtype="bool", device=xdev))
    check(r, a < b, dtype="bool")
    # a strided view as out: only its elements change
    big = pf.zeros((3, 8), dtype=name, device=xdev)
    r = pf.multiply(ta, tb, out=big[:, ::2])
    want = np.zeros((3, 8), np_dtype(name))
    want[:, ::2] = in_dtype(np.multiply, name, a, b)
    np.testing.assert_array_equal(big.numpy(), want)
    check(r, want[:, ::2])
    # out aliasing an input, forwards and reversed
    x = sample(rng, (9,), name)
    tx = T(x, name, xdev).astype(name, copy=True)
    pf.add(tx, tx[::-1], out=tx)
    np.testing.assert_array_equal(tx.numpy(), in_dtype(np.add, name, x, x[::-1]))
    tx = T(x, name, xdev).astype(name, copy=True)
    pf.subtract(tx[:-1], tx[1:], out=tx[1:])
    want = x.copy()
    want[1:] = in_dtype(np.subtract, name, x[:-1], x[1:])
    np.testing.assert_array_equal(tx.numpy(), want)


def test_out_is_returned(xdev):
    """With ``out=``, the function returns ``out`` itself (as NumPy)."""
    a = pf.ones((3, 4), device=xdev)
    for call in (
        lambda o: pf.add(a, a, out=o),
        lambda o: pf.exp(a, out=o),
        lambda o: pf.clip(a, 0.0, 0.5, out=o),
        lambda o: pf.atan2(a, a, out=o),
    ):
        o = pf.empty((3, 4), device=xdev)
        assert call(o) is o
    o = pf.empty((3, 4), dtype="bool", device=xdev)
    assert pf.less(a, a, out=o) is o


def test_out_errors(xdev):
    a = pf.ones((3, 4), device=xdev)
    for bad in ((4, 3), (3, 1), (12,), ()):
        with pytest.raises(ValueError):
            pf.add(a, a, out=pf.empty(bad, device=xdev))
        with pytest.raises(ValueError):
            pf.exp(a, out=pf.empty(bad, device=xdev))
    # out may not broadcast the result either (an out of the broadcast shape is required)
    with pytest.raises(ValueError):
        pf.add(
            pf.ones((3, 1), device=xdev),
            pf.ones((1,), device=xdev),
            out=pf.empty((3,), device=xdev),
        )
    with pytest.raises(TypeError):
        pf.add(a, a, out=np.empty((3, 4)))


def test_operands_broadcast_to_out(xdev):
    """As NumPy: an ``out`` with more (or longer) axes receives the broadcast result."""
    a = np.arange(12.0).reshape(3, 4)
    o = pf.empty((2, 3, 4), dtype="float64", device=xdev)
    assert pf.add(T(a, dev=xdev), 1.0, out=o) is o
    np.testing.assert_array_equal(o.numpy(), np.broadcast_to(a + 1.0, (2, 3, 4)))
    assert pf.exp(T(a, dev=xdev), out=o) is o
    np.testing.assert_allclose(o.numpy(), np.broadcast_to(np.exp(a), (2, 3, 4)), rtol=1e-15)


# --- in-place operators ---------------------------------------------------------------------------

INPLACE = {
    "+=": (operator.iadd, np.add),
    "-=": (operator.isub, np.subtract),
    "*=": (operator.imul, np.multiply),
    "/=": (operator.itruediv, np.divide),
    "//=": (operator.ifloordiv, np.floor_divide),
    "%=": (operator.imod, np.remainder),
    "**=": (operator.ipow, np.power),
    "&=": (operator.iand, np.bitwise_and),
    "|=": (operator.ior, np.bitwise_or),
    "^=": (operator.ixor, np.bitwise_xor),
    "<<=": (operator.ilshift, np.left_shift),
    ">>=": (operator.irshift, np.right_shift),
}


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("sym", sorted(INPLACE))
def test_inplace_operators(sym, name, rng, xdev):
    iop, func = INPLACE[sym]
    is_int = name[0] in "iu"
    if sym[:-1] in BITWISE_OPS and not is_int:
        t = T(np.ones(3, np.float32), name, xdev)
        with pytest.raises(TypeError):
            iop(t, t)
        return
    if sym == "/=" and is_int:
        t = T(np.ones(3, name), dev=xdev)
        with pytest.raises(TypeError):  # the float64 quotient cannot go back (same_kind)
            iop(t, t)
        return
    a, b = op_inputs(rng, sym[:-1], name)
    t = T(a, name, xdev).astype(name, copy=True)
    before = t
    r = iop(t, T(b, name, xdev))
    assert r is before
    assert r.dtype == name
    with np.errstate(all="ignore"):
        if sym == "**=" and not is_int:
            check_close(r, ref64(np.power, a, b), name, ulps_for(name, 4))
        else:
            want = in_dtype(func, name, a, b)
            np.testing.assert_array_equal(r.numpy(), want)
    # with a scalar
    t = T(a, name, xdev).astype(name, copy=True)
    r = iop(t, 2)
    assert r is t and r.dtype == name
    if sym == "**=" and not is_int:
        check_close(r, ref64(np.power, a, 2), name, 0.5)
    else:
        np.testing.assert_array_equal(
            r.numpy(), in_dtype(lambda u: func(u, np.asarray(2, u.dtype)), name, a)
        )


@pytest.mark.parametrize(
    "name", ["int8", "int32", "uint16", "float16", "bfloat16", "float32", "float64"]
)
@pytest.mark.parametrize("sym", ["+=", "-=", "*=", "//="])
def test_inplace_aliasing(sym, name, rng, xdev):
    """``a op= a[::-1]`` and ``a[1:] op= a[:-1]`` give NumPy's (buffered) answer."""
    iop, func = INPLACE[sym]
    x = sample(rng, (11,), name) + (1 if name[0] in "iu" else 0.5)
    x = round_to(x, name) if name[0] == "f" or name == "bfloat16" else x.astype(name)
    ref = x.astype(np_dtype(name)).copy() if name != "bfloat16" else x.astype(np.float32).copy()

    def np_iop(view_out, view_in):
        with np.errstate(all="ignore"):
            if name == "bfloat16":
                view_out[...] = bf16_round(func(view_out.copy(), view_in.copy()))
            else:
                iop(view_out, view_in)

    t = T(x, name, xdev).astype(name, copy=True)
    b = ref.copy()
    t2 = iop(t, t[::-1])
    np_iop(b, b[::-1])
    assert t2 is t
    np.testing.assert_array_equal(t.numpy(), b)

    t = T(x, name, xdev).astype(name, copy=True)
    b = ref.copy()
    view = t[1:]
    iop(view, t[:-1])  # what `t[1:] op= t[:-1]` does before its __setitem__
    t[1:] = view
    np_iop(b[1:], b[:-1])
    np.testing.assert_array_equal(t.numpy(), b)

    # the statement form, and the other direction
    t = T(x, name, xdev).astype(name, copy=True)
    b = ref.copy()
    code = f"t[:-1] {sym} t[1:]"
    exec(code, {"t": t})
    np_iop(b[:-1], b[1:])
    np.testing.assert_array_equal(t.numpy(), b)

    # 2-D: a += a.T
    m = sample(rng, (5, 5), name) + (1 if name[0] in "iu" else 0.5)
    m = round_to(m, name) if name[0] == "f" or name == "bfloat16" else m.astype(name)
    t = T(m, name, xdev).astype(name, copy=True)
    b = m.astype(np_dtype(name)).copy()
    iop(t, t.mT)
    np_iop(b, b.T)
    np.testing.assert_array_equal(t.numpy(), b)


@pytest.mark.parametrize("name", ["int16", "uint8", "float32", "float64", "bool"])
@pytest.mark.parametrize("shape", [(7, 9), (515, 300)])  # the second spans several threads
def test_destination_as_an_operand(name, shape, rng, xdev):
    """An operand that is exactly the destination's view is read where it is written:
    first, second or both operands, whole arrays, strided views and broadcast partners."""
    big = rng.integers(0, 50, size=shape)
    a = (big % 2).astype(bool) if name == "bool" else big.astype(name)
    b = (
        (rng.integers(0, 50, size=shape) % 3 == 0)
        if name == "bool"
        else (big[::-1] + 1).astype(name)
    )
    add, sub = (np.logical_or, np.logical_xor) if name == "bool" else (np.add, np.subtract)
    padd, psub = (pf.logical_or, pf.logical_xor) if name == "bool" else (pf.add, pf.subtract)
    with np.errstate(all="ignore"):
        cases = [
            (lambda x, y: padd(x, y, out=x), lambda x, y: add(x, y, out=x)),
            (lambda x, y: psub(y, x, out=x), lambda x, y: sub(y, x, out=x)),
            (lambda x, y: padd(x, x, out=x), lambda x, y: add(x, x, out=x)),
            (lambda x, y: padd(x, y[0], out=x), lambda x, y: add(x, y[0], out=x)),
            (lambda x, y: psub(y[:, :1], x, out=x), lambda x, y: sub(y[:, :1], x, out=x)),
        ]
        for view in [(slice(None), slice(None)), (slice(None, None, 2), slice(None, None, -3))]:
            for pf_op, np_op in cases:
                t, u = T(a, dev=xdev), T(b, dev=xdev)
                x, y = a.copy(), b.copy()
                r = pf_op(t[view], u[view])
                np_op(x[view], y[view])
                np.testing.assert_array_equal(t.numpy(), x)
                np.testing.assert_array_equal(r.numpy(), x[view])


def test_inplace_errors(xdev):
    x = pf.zeros((3,), device=xdev)
    with pytest.raises(ValueError):
        x += pf.ones((2, 3), device=xdev)  # the result would not fit x's shape
    with pytest.raises(ValueError):
        x *= pf.ones((4,), device=xdev)
    i = T(np.array([1, 2, 3], np.int32), dev=xdev)
    with pytest.raises(TypeError):
        i += 1.5
    with pytest.raises(TypeError):
        i += pf.ones((3,), device=xdev)  # float64 into int32 (not same_kind)
    with pytest.raises(TypeError):
        i /= 2
    with pytest.raises(OverflowError):
        i8 = T(np.array([1], np.int8), dev=xdev)
        i8 += 1000
    b = T(np.array([True, False]), dev=xdev)
    with pytest.raises(TypeError):
        b += 1  # int64 result into bool
    with pytest.raises(TypeError):
        b -= b
    np.testing.assert_array_equal(i.numpy(), [1, 2, 3])  # nothing written


def test_inplace_same_kind_casts(xdev):
    """NumPy's same_kind: a wider dtype of the same kind is cast back."""
    f = T(np.array([1.0, 2.0], np.float32), dev=xdev)
    f += T(np.array([0.1, 0.2]), dev=xdev)  # float64 into float32
    assert f.dtype == "float32"
    np.testing.assert_array_equal(
        f.numpy(), (np.array([1.0, 2.0], np.float32) + np.array([0.1, 0.2])).astype(np.float32)
    )
    i8 = T(np.array([100, -100], np.int8), dev=xdev)
    i8 += T(np.array([100, -100], np.int16), dev=xdev)
    assert i8.dtype == "int8"
    np.testing.assert_array_equal(i8.numpy(), np.array([200, -200]).astype(np.int8))
    f += 1  # int scalar into float
    i8 += True
    b = T(np.array([True, False]), dev=xdev)
    b &= T(np.array([True, True]), dev=xdev)
    check(b, np.array([True, False]), dtype="bool")
    f = T(np.array([1.0, 2.0], np.float32), dev=xdev)
    f += T(np.array([3, 4], np.int64), dev=xdev)  # int64 into float32: same_kind allows (NumPy)
    np.testing.assert_array_equal(f.numpy(), [4.0, 6.0])


# --- clip -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NUMERIC)
def test_clip(name, rng, xdev):
    x = sample_full(rng, (5, 6), name)
    t = T(x, name, xdev)
    if name[0] in "iu":
        info = np.iinfo(name)
        lo_s, hi_s = int(info.min) // 2 + (info.max // 4), int(info.max) // 2
    else:
        lo_s, hi_s = -20.5, 30.25
    check(pf.clip(t), x, dtype=name)
    check(pf.clip(t, None, None), x, dtype=name)
    check(pf.clip(t, lo_s), np.clip(x, lo_s, None).astype(x.dtype), dtype=name)
    check(pf.clip(t, max=hi_s), np.clip(x, None, hi_s).astype(x.dtype), dtype=name)
    check(pf.clip(t, lo_s, hi_s), np.clip(x, lo_s, hi_s).astype(x.dtype), dtype=name)
    check(pf.clip(t, min=lo_s, max=hi_s), np.clip(x, lo_s, hi_s).astype(x.dtype), dtype=name)
    # array bounds, broadcast
    lo = np.sort(sample_full(rng, (2, 6), name), axis=0)
    lo_a, hi_a = lo[0], lo[1]
    check(pf.clip(t, T(lo_a, name, xdev), T(hi_a, name, xdev)), np.clip(x, lo_a, hi_a), dtype=name)
    check(pf.clip(t, T(lo_a, name, xdev), None), np.maximum(x, lo_a), dtype=name)
    check(pf.clip(t, None, T(hi_a[None, :], name, xdev)), np.minimum(x, hi_a[None, :]), dtype=name)
    check(
        pf.clip(t[::-1, ::2], T(lo_a[::2], name, xdev), hi_s),
        np.clip(x[::-1, ::2], lo_a[::2], hi_s).astype(x.dtype),
        dtype=name,
    )
    o = pf.empty((5, 6), dtype=name, device=xdev)
    pf.clip(t, lo_s, hi_s, out=o)
    check(o, np.clip(x, lo_s, hi_s).astype(x.dtype), dtype=name)


def test_clip_float_special_values(xdev):
    x = np.array([math.nan, -math.inf, math.inf, -0.0, 0.0, 1.0, 5.0, -5.0])
    t = T(x, dev=xdev)
    check(pf.clip(t, -1.0, 2.0), np.clip(x, -1.0, 2.0))
    check(pf.clip(t, math.nan, 2.0), np.clip(x, math.nan, 2.0))  # a NaN bound gives NaN
    check(pf.clip(t, None, math.nan), np.full(8, math.nan))
    lo = np.array([math.nan, 0, 0, 0, 0, 0, 0, 0])
    check(pf.clip(t, T(lo, dev=xdev), None), np.maximum(x, lo))
    # the bounds are converted to x's dtype (float32 stays float32; int bounds for a float)
    f = T(np.array([0.5, 3.0, -3.0], np.float32), dev=xdev)
    got = pf.clip(f, -1, 2)
    check(got, np.array([0.5, 2.0, -1.0], np.float32), dtype="float32")
    got = pf.clip(f, T(np.array([-1.0]), dev=xdev), 2.0)
    assert got.dtype == "float32"


def test_clip_result_shape_broadcasts_with_bounds(xdev):
    x = T(np.array([1.0, 5.0, 9.0]), dev=xdev)
    lo = T(np.array([[2.0], [6.0]]), dev=xdev)
    got = pf.clip(x, lo, None)
    check(got, np.clip(np.array([1.0, 5.0, 9.0]), np.array([[2.0], [6.0]]), None))


def test_clip_rejects_bool(xdev):
    with pytest.raises(TypeError):
        pf.clip(T(np.array([True]), dev=xdev), 0, 1)


# --- more mixed dtypes, large arrays, views written in place --------------------------------------

MIXED_PAIRS = [
    ("int8", "uint8"),
    ("uint8", "int16"),
    ("int32", "uint32"),
    ("int64", "uint64"),
    ("uint16", "float16"),
    ("int8", "float32"),
    ("int32", "float32"),
    ("float16", "bfloat16"),
    ("bfloat16", "float32"),
    ("bool", "int16"),
    ("bool", "float16"),
    ("uint64", "float64"),
    ("int16", "bfloat16"),
    ("float32", "float64"),
]


@pytest.mark.parametrize("n1, n2", MIXED_PAIRS)
@pytest.mark.parametrize(
    "fname",
    [
        "maximum",
        "minimum",
        "floor_divide",
        "remainder",
        "divide",
        "pow",
        "atan2",
        "copysign",
        "hypot",
        "bitwise_or",
        "bitwise_left_shift",
    ],
)
def test_mixed_dtypes_other_functions(fname, n1, n2, rng, xdev):
    rt = promoted(n1, n2)
    a = sample(rng, (4, 5), n1)
    b = sample(rng, (5,), n2)
    if n2 != "bool":
        b = np.asarray(b + (1 if n2[0] in "iu" else 0.5), dtype=b.dtype)
    if fname == "pow":
        b = (b % 4).astype(b.dtype)
    if fname == "bitwise_left_shift":
        b = (b % 5).astype(b.dtype)
    func = getattr(pf, fname)
    ta, tb = T(a, n1, xdev), T(b, n2, xdev)
    float_only = fname in ("atan2", "copysign", "hypot")
    int_only = fname.startswith("bitwise")
    needs_numeric = fname in ("floor_divide", "remainder", "pow", "bitwise_left_shift")
    if (
        (float_only and rt[0] != "f" and rt != "bfloat16")
        or (int_only and rt[0] not in "iub")
        or (needs_numeric and rt == "bool")
        or (fname == "bitwise_left_shift" and rt == "bool")
    ):
        with pytest.raises(TypeError):
            func(ta, tb)
        return
    got = func(ta, tb)
    want_dtype = "float64" if fname == "divide" and rt[0] in "iub" else rt
    assert got.dtype == want_dtype, (got.dtype, want_dtype)
    a2, b2 = a.astype(np_dtype(want_dtype)), b.astype(np_dtype(want_dtype))
    ref = {
        "maximum": np.maximum,
        "minimum": np.minimum,
        "floor_divide": np.floor_divide,
        "remainder": np.remainder,
        "divide": np.divide,
        "pow": np.power,
        "atan2": np.arctan2,
        "copysign": np.copysign,
        "hypot": np.hypot,
        "bitwise_or": np.bitwise_or,
        "bitwise_left_shift": np.left_shift,
    }[fname]
    if fname in ("atan2", "hypot", "pow") and want_dtype[0] not in "iu":
        check_close(got, ref64(ref, a2, b2), want_dtype, ulps_for(want_dtype, 4))
    elif want_dtype[0] in "iu":
        with np.errstate(all="ignore"):
            check(got, ref(a2, b2), dtype=want_dtype)
    else:
        check_close(got, in_dtype(ref, want_dtype, a2, b2), want_dtype, 0)


@pytest.mark.parametrize("name", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("fname", ["exp", "log", "sin", "tanh", "sqrt", "expm1"])
def test_large_arrays(fname, name, rng, xdev):
    """Long runs (vectorized kernels and threads) and their strided versions."""
    func, lo, hi, ulps = UNARY_FLOAT[fname]
    if fname == "exp" and name in ("float32", "bfloat16"):
        lo, hi = -104.0, 88.7  # down through float32's subnormal results to the top
    if fname == "exp" and name == "float64":
        lo, hi = -745.0, 709.7
    x = sample_float(rng, 2**20 + 3, name, lo, hi)
    f = getattr(pf, fname)
    check_close(f(T(x, name, xdev)), ref64(func, x), name, ulps_for(name, ulps))
    check_close(f(T(x[::-3], name, xdev)), ref64(func, x[::-3]), name, ulps_for(name, ulps))
    m = x[: 2**20].reshape(1024, 1024)
    check_close(f(T(m, name, xdev).mT), ref64(func, m.T), name, ulps_for(name, ulps))


def test_exp_float32_edges(xdev):
    x = np.array(
        [
            88.72,
            88.7228,
            88.73,
            89.0,
            -87.33,
            -87.34,
            -100.0,
            -103.9,
            -103.98,
            -104.0,
            -110.0,
            -math.inf,
            math.inf,
            math.nan,
            0.0,
            -0.0,
            1e-8,
            -1e-8,
        ],
        np.float32,
    )
    check_close(pf.exp(T(x, dev=xdev)), ref64(np.exp, x), "float32", 4)
    # the same edges in a long vector, at every lane position
    y = np.tile(x, 37)
    check_close(pf.exp(T(y, dev=xdev)), ref64(np.exp, y), "float32", 4)


@pytest.mark.parametrize("fname", ["add", "multiply", "maximum", "less", "atan2"])
def test_large_binary_broadcast(fname, rng, xdev):
    a = rng.standard_normal((1500, 700)).astype(np.float32)
    b = rng.standard_normal((700,)).astype(np.float32)
    c = rng.standard_normal((1500, 1)).astype(np.float32)
    ref = {
        "add": np.add,
        "multiply": np.multiply,
        "maximum": np.maximum,
        "less": np.less,
        "atan2": np.arctan2,
    }[fname]
    f = getattr(pf, fname)
    for x, y in ((a, b), (b, a), (a, c), (c, b), (a.T[::-1], c.T), (a[::2, ::-3], a[1::2, ::3])):
        got = f(T(x, dev=xdev), T(y, dev=xdev))
        if fname == "atan2":
            check_close(got, ref64(ref, x, y), "float32", 4)
        else:
            check(got, ref(x, y))


def test_inplace_on_views_writes_through(rng, xdev):
    base = rng.standard_normal((6, 8))
    t = T(base, dev=xdev).astype("float64", copy=True)
    want = base.copy()
    v = t[::2, ::-3]
    v += 1.0
    want[::2, ::-3] += 1.0
    np.testing.assert_array_equal(t.numpy(), want)
    v = t.mT
    v *= T(np.arange(6.0), dev=xdev)
    want.T[...] *= np.arange(6.0)
    np.testing.assert_array_equal(t.numpy(), want)
    t[1:3] -= t[4:6]
    want[1:3] -= want[4:6]
    np.testing.assert_array_equal(t.numpy(), want)
    t[:, 0] **= 2
    want[:, 0] **= 2
    np.testing.assert_array_equal(t.numpy(), want)
    i = T(np.arange(10, dtype=np.int16), dev=xdev).astype("int16", copy=True)
    wi = np.arange(10, dtype=np.int16)
    i[::3] <<= 2
    wi[::3] <<= 2
    i[1::2] //= T(np.array([0, 2, 3, 4, 5], np.int16), dev=xdev)
    with np.errstate(all="ignore"):
        wi[1::2] //= np.array([0, 2, 3, 4, 5], np.int16)
    check(i, wi, dtype="int16")
    # a broadcast operand, and a 0-d target
    z = pf.zeros((), device=xdev)
    z += 2.5
    assert z.item() == 2.5
    with pytest.raises(ValueError):
        z += pf.ones((2,), device=xdev)

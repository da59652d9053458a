"""Data type functions: dtype objects, finfo, iinfo, result_type, can_cast, isdtype, astype."""

import itertools

import numpy as np
import pytest

import pocaflow as pf
from helpers import DTYPE_NAMES, FLOAT_NAMES, INT_NAMES, check, layouts, np_dtype, sample

DTYPES = [getattr(pf, n) for n in DTYPE_NAMES]
NUMPY_NAMES = [n for n in DTYPE_NAMES if n != "bfloat16"]


def test_every_dtype_is_exported():
    for name in DTYPE_NAMES:
        dt = getattr(pf, name)
        assert isinstance(dt, pf.DType)
        assert dt.name == name and dt == name
        assert dt.kind == ("b" if name == "bool" else name[0] if name[0] in "iu" else "f")
        assert dt.itemsize == (2 if name == "bfloat16" else np.dtype(name).itemsize)
        if name != "bfloat16":
            assert dt == np.dtype(name)
    assert len(set(DTYPES)) == len(DTYPES)


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_numpy(name):
    info, want = pf.finfo(getattr(pf, name)), np.finfo(name)
    assert info.bits == want.bits and info.dtype == getattr(pf, name)
    for attr in ("eps", "max", "min", "smallest_normal"):
        assert getattr(info, attr) == float(getattr(want, attr)), attr
        assert type(getattr(info, attr)) is float
    assert pf.finfo(pf.zeros((2,), dtype=name)).bits == want.bits  # from an array


def test_finfo_bfloat16():
    info = pf.finfo(pf.bfloat16)
    assert info.bits == 16 and info.eps == 2.0**-7 and info.smallest_normal == 2.0**-126
    assert info.max == 3.3895313892515355e38 == -info.min
    x = np.array([info.max, 1 + info.eps], dtype=np.float32)
    np.testing.assert_array_equal(pf.asarray(x, dtype=pf.bfloat16).numpy(), x)  # exact


@pytest.mark.parametrize("name", INT_NAMES)
def test_iinfo_matches_numpy(name):
    info, want = pf.iinfo(getattr(pf, name)), np.iinfo(name)
    assert (info.bits, info.min, info.max) == (want.bits, want.min, want.max)
    assert info.dtype == name and type(info.max) is int


def test_info_of_the_wrong_kind_is_a_type_error():
    with pytest.raises(TypeError):
        pf.finfo(pf.int32)
    with pytest.raises(TypeError):
        pf.iinfo(pf.float32)
    with pytest.raises(TypeError):
        pf.iinfo(pf.bool)


@pytest.mark.parametrize("a, b", list(itertools.product(NUMPY_NAMES, NUMPY_NAMES)))
def test_result_type_matches_numpy(a, b):
    want = np.promote_types(a, b).name
    assert pf.result_type(getattr(pf, a), getattr(pf, b)) == want
    x = pf.zeros((1,), dtype=a)
    assert pf.result_type(x, getattr(pf, b)) == want
    assert pf.result_type(x, pf.zeros((2, 1), dtype=b)) == want


@pytest.mark.parametrize(
    "other, want",
    [
        ("bool", "bfloat16"),
        ("bfloat16", "bfloat16"),
        ("float16", "float32"),
        ("float32", "float32"),
        ("float64", "float64"),
    ],
)
def test_result_type_bfloat16(other, want):
    assert pf.result_type(pf.bfloat16, getattr(pf, other)) == want
    assert pf.result_type(getattr(pf, other), pf.bfloat16) == want


def test_result_type_of_many_and_of_dtype_likes():
    assert pf.result_type(pf.int8, pf.uint8, pf.int16, pf.float32) == pf.float32
    assert pf.result_type(pf.int8) == pf.int8
    assert pf.result_type("float32", np.float64) == pf.float64
    # NumPy arrays and scalars count as arrays (NumPy scalars are not weak).
    assert pf.result_type(np.float64(1.0), pf.float32) == pf.float64
    assert pf.result_type(np.ones(2, np.int8), np.int16(1)) == pf.int16


@pytest.mark.parametrize(
    "dtype, scalar, want",
    [
        ("int8", 1, "int8"),
        ("uint8", 300, "uint8"),  # the scalar is weak: its value does not matter
        ("int16", True, "int16"),
        ("float16", 1, "float16"),
        ("float32", 1.5, "float32"),
        ("bfloat16", 2.0, "bfloat16"),
        ("bool", True, "bool"),
        ("bool", 1, "int64"),  # outside the standard: NumPy's choice
        ("bool", 1.0, "float64"),
        ("int32", 1.0, "float64"),
    ],
)
def test_result_type_python_scalars_are_weak(dtype, scalar, want):
    assert pf.result_type(getattr(pf, dtype), scalar) == want
    assert pf.result_type(scalar, pf.zeros((2,), dtype=dtype)) == want


def test_result_type_errors():
    with pytest.raises(TypeError, match="complex"):
        pf.result_type(pf.float32, 1j)
    with pytest.raises(TypeError, match="complex"):
        pf.result_type(np.complex64)
    with pytest.raises(ValueError):
        pf.result_type()
    assert pf.result_type(1, 2.0) == pf.float64  # only scalars: NumPy's answer


@pytest.mark.parametrize(
    "src, dst, want",
    [
        ("int8", "int16", True),
        ("int16", "int8", False),
        ("uint8", "int16", True),
        ("int8", "uint8", False),
        ("uint32", "int64", True),
        ("uint64", "int64", False),
        ("float16", "float32", True),
        ("float32", "float16", False),
        ("bfloat16", "float32", True),
        ("float32", "bfloat16", False),
        ("float64", "float64", True),
        ("bool", "bool", True),
        ("float32", "int32", False),
    ],
)
def test_can_cast(src, dst, want):
    assert pf.can_cast(getattr(pf, src), getattr(pf, dst)) is want
    assert pf.can_cast(pf.zeros((1,), dtype=src), getattr(pf, dst)) is want


KINDS = {
    "bool": {"bool"},
    "signed integer": {"int8", "int16", "int32", "int64"},
    "unsigned integer": {"uint8", "uint16", "uint32", "uint64"},
    "integral": set(INT_NAMES),
    "real floating": set(FLOAT_NAMES),
    "complex floating": set(),
    "numeric": set(INT_NAMES) | set(FLOAT_NAMES),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_isdtype_kinds(kind):
    assert {d.name for d in DTYPES if pf.isdtype(d, kind)} == KINDS[kind]


def test_isdtype_dtypes_tuples_and_errors():
    assert pf.isdtype(pf.float32, pf.float32) and not pf.isdtype(pf.float32, pf.float64)
    assert pf.isdtype(pf.int8, ("real floating", pf.int8))
    assert pf.isdtype(pf.uint8, ("bool", "unsigned integer"))
    assert not pf.isdtype(pf.float16, ("bool", pf.int8, "integral"))
    with pytest.raises(ValueError, match="kind"):
        pf.isdtype(pf.float32, "floating")
    with pytest.raises(TypeError):
        pf.isdtype("float32", "numeric")


def test_complex_dtypes_are_a_clear_type_error():
    for call in (
        lambda: pf.zeros((2,), dtype="complex64"),
        lambda: pf.zeros((2,), dtype=np.complex128),
        lambda: pf.asarray(np.ones(3, dtype=np.complex64)),
        lambda: pf.asarray(1j),
        lambda: pf.full((2,), 1j),
        lambda: pf.astype(pf.zeros((2,)), complex),
    ):
        with pytest.raises(TypeError, match="complex"):
            call()


def _cast_values(rng, shape, src, dst):
    # Values both dtypes hold exactly; negative ones only between signed types.
    a = sample(rng, shape, src)
    if src[0] == "f" and dst[0] in "ub":
        a = np.abs(a).astype(a.dtype)
    return a


@pytest.mark.parametrize("src, dst", list(itertools.product(DTYPE_NAMES, DTYPE_NAMES)))
def test_astype_every_pair(src, dst, rng, xdev):
    a = _cast_values(rng, (3, 5), src, dst)
    want = a.astype(np_dtype(dst))
    for label, view, t in layouts(a, xdev, dtype=src):
        got = pf.astype(t, getattr(pf, dst))
        check(got, want if label == "C" else view.astype(np_dtype(dst)), dtype=dst)
        assert got.device == t.device


def test_astype_copy_semantics(rng, xdev):
    t = pf.asarray(rng.standard_normal((4, 3)), device=xdev)
    same = pf.astype(t, pf.float64, copy=False)
    assert same._shares_memory(t)
    fresh = pf.astype(t, pf.float64)  # copy=True: always new memory
    assert not fresh._shares_memory(t)
    fresh[0, 0] = 99.0
    assert float(t[0, 0]) != 99.0
    cast = pf.astype(t, pf.float32, copy=False)  # a cast must copy, copy=False or not
    assert cast.dtype == pf.float32 and not cast._shares_memory(t)
    with pytest.raises(TypeError):
        pf.astype(np.ones(2), pf.float32)


@pytest.mark.cuda
def test_astype_to_another_device(rng):
    a = rng.standard_normal((5, 2))
    t = pf.asarray(a)
    g = pf.astype(t, pf.float32, device="cuda")
    assert g.device == "cuda:0" and g.dtype == pf.float32
    np.testing.assert_array_equal(g.numpy(), a.astype(np.float32))
    back = pf.astype(g, "float64", device="cpu")
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), a.astype(np.float32).astype(np.float64))

"""Creation functions against NumPy: asarray (zero-copy and copy rules), zeros ones empty full
and their *_like forms, arange, linspace, eye, tril, triu, meshgrid; the default device."""

import time

import numpy as np
import pytest

import pocaflow as pf
from helpers import DTYPE_NAMES, SHAPES, check, layouts, np_dtype, sample

# --- asarray ---------------------------------------------------------------------------------


# Not bool: NumPy bools may hold bytes other than 0 and 1, so pocaflow copies them (and
# copy=False raises).
@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n not in ("bool", "bfloat16")])
def test_asarray_shares_numpy_memory_on_the_cpu(name, rng):
    base = sample(rng, (6, 8), name)
    for arr in (base, np.asfortranarray(base), base.T, base[1:5:2, ::3], base[::-1, ::-2]):
        t = pf.asarray(arr)
        assert t.dtype == name and t.device == "cpu" and t.shape == arr.shape
        np.testing.assert_array_equal(t.numpy(), arr)
        # Writes through the pocaflow array show up in the NumPy array: one buffer.
        t[...] = pf.zeros(arr.shape, dtype=name)
        assert not arr.any()
        arr[...] = sample(rng, arr.shape, name)
        np.testing.assert_array_equal(t.numpy(), arr)
        assert pf.asarray(arr, copy=False).shape == arr.shape


def test_asarray_copy_rules(rng):
    a = rng.standard_normal((4, 5))
    t = pf.asarray(a, copy=True)
    a[0, 0] = 123.0
    assert float(t[0, 0]) != 123.0
    with pytest.raises(ValueError, match="cop"):
        pf.asarray(a, dtype=pf.float32, copy=False)  # a cast needs a copy
    with pytest.raises(ValueError, match="cop"):
        pf.asarray(np.ones(3, bool), copy=False)
    same = pf.asarray(t)
    assert same._shares_memory(t)
    assert pf.asarray(t, copy=False)._shares_memory(t)
    assert not pf.asarray(t, copy=True)._shares_memory(t)
    cast = pf.asarray(t, dtype="float32")
    assert cast.dtype == pf.float32 and not cast._shares_memory(t)


@pytest.mark.cuda
def test_asarray_to_cuda_cannot_be_copy_free(rng):
    a = rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="cop"):
        pf.asarray(a, device="cuda", copy=False)
    g = pf.asarray(a, device="cuda")
    assert g.device == "cuda:0"
    assert pf.asarray(g)._shares_memory(g)  # stays where it is
    c = pf.asarray(g, device="cpu")
    assert c.device == "cpu"
    np.testing.assert_array_equal(c.numpy(), a)


@pytest.mark.parametrize(
    "obj, dtype",
    [
        (True, "bool"),
        (3, "int64"),
        (2.5, "float64"),
        ([1, 2, 3], "int64"),
        ([[1.0, 2.0], [3.0, 4.0]], "float64"),
        ([[True], [False]], "bool"),
        ([], "float64"),
    ],
)
def test_asarray_python_objects_default_dtypes(obj, dtype, xdev):
    t = pf.asarray(obj, device=xdev)
    check(t, np.asarray(obj), dtype=dtype)
    assert t.device == pf.Device(xdev) or str(t.device).startswith(xdev)


def test_asarray_dtype_argument_and_buffers(xdev):
    check(pf.asarray([1, 2], dtype=pf.float32, device=xdev), np.array([1, 2], np.float32))
    check(pf.asarray(7, dtype="int8", device=xdev), np.array(7, np.int8))
    buf = memoryview(np.arange(6, dtype=np.int32))
    check(pf.asarray(buf, device=xdev), np.arange(6, dtype=np.int32))
    check(pf.asarray(bytearray(b"\x01\x02"), device=xdev), np.array([1, 2], np.uint8))
    bf = pf.asarray([1.0, 1.0 + 2**-10, 3.14159], dtype="bfloat16", device=xdev)
    check(bf, np.array([1.0, 1.0, 3.140625], np.float32), dtype="bfloat16")


def test_tensor_and_from_array_stay(xdev):
    check(pf.tensor([[1, 2], [3, 4]], device=xdev), np.array([[1, 2], [3, 4]]), dtype="int64")
    check(pf.Tensor.from_array(np.ones((2, 2), np.float32), device=xdev), np.ones((2, 2), "f4"))


# --- filled arrays -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_zeros_ones_full_empty(shape, name, xdev):
    dt = getattr(pf, name)
    nd = np_dtype(name)
    check(pf.zeros(shape, dtype=dt, device=xdev), np.zeros(shape, nd), dtype=name)
    check(pf.ones(shape, dtype=dt, device=xdev), np.ones(shape, nd), dtype=name)
    value = True if name == "bool" else 7
    check(pf.full(shape, value, dtype=dt, device=xdev), np.full(shape, value, nd), dtype=name)
    e = pf.empty(shape, dtype=dt, device=xdev)
    assert e.shape == shape and e.dtype == name and e.device == pf.asarray(0, device=xdev).device


def test_default_dtypes_and_int_shapes(xdev):
    check(pf.zeros(3, device=xdev), np.zeros(3))
    check(pf.ones((2, 0), device=xdev), np.ones((2, 0)))
    assert pf.empty([2, 3], device=xdev).dtype == pf.float64
    check(pf.full((2,), 3, device=xdev), np.full((2,), 3, np.int64), dtype="int64")
    check(pf.full((2,), 3.5, device=xdev), np.full((2,), 3.5), dtype="float64")
    check(pf.full((2,), False, device=xdev), np.full((2,), False), dtype="bool")
    check(pf.full((), -1, dtype=pf.int8, device=xdev), np.array(-1, np.int8))
    check(pf.full((3,), 0.1, dtype="float32", device=xdev), np.full((3,), 0.1, np.float32))
    # NumPy scalars fill with their own dtype, as in NumPy.
    check(pf.full((2,), np.float32(1.5), device=xdev), np.full((2,), np.float32(1.5)))
    check(pf.full((2,), np.int8(-3), device=xdev), np.full((2,), np.int8(-3)))
    check(pf.full_like(pf.zeros((2,), device=xdev), np.float64(2.0)), np.full((2,), 2.0))


def test_bad_shapes():
    with pytest.raises(ValueError):
        pf.zeros((2, -1))
    with pytest.raises(TypeError):
        pf.ones((2.5,))
    with pytest.raises(TypeError):
        pf.empty("abc")


def test_huge_allocation_is_a_memory_error():
    with pytest.raises(MemoryError):
        pf.zeros((1 << 40,))
    with pytest.raises(MemoryError):
        pf.empty((1 << 30, 1 << 20), dtype=pf.uint8)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_like_functions_keep_dtype_and_device(name, rng, xdev):
    base = sample(rng, (3, 4), name)
    for _, view, x in layouts(base, xdev, dtype=name):
        nd = np_dtype(name)
        check(pf.zeros_like(x), np.zeros(view.shape, nd), dtype=name)
        check(pf.ones_like(x), np.ones(view.shape, nd), dtype=name)
        check(pf.full_like(x, 1), np.full(view.shape, 1, nd), dtype=name)
        e = pf.empty_like(x)
        assert e.shape == x.shape and e.dtype == x.dtype and e.device == x.device
        assert pf.zeros_like(x).device == x.device
    x = pf.asarray(base, dtype=name, device=xdev)
    check(pf.zeros_like(x, dtype=pf.float32), np.zeros((3, 4), np.float32))
    check(pf.full_like(x, 2.5, dtype="float64"), np.full((3, 4), 2.5))
    assert pf.empty_like(x, dtype="int16").dtype == pf.int16
    assert pf.ones_like(x, device="cpu").device == "cpu"


# --- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        (5,),
        (0,),
        (-3,),
        (2, 9),
        (9, 2),
        (9, 2, -2),
        (1, 10, 3),
        (0.5, 3.0, 0.25),
        (3.0,),
        (-1.5, 1.5, 0.5),
        (10, 0, -3),
        (0, 1, 0.1),
    ],
)
def test_arange_matches_numpy(args, xdev):
    want = np.arange(*args)
    t = pf.arange(*args, device=xdev)
    assert t.dtype == want.dtype.name
    assert t.shape == want.shape
    np.testing.assert_allclose(t.numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["int8", "uint16", "int32", "float16", "float32", "bfloat16"])
def test_arange_dtypes(name, xdev):
    check(pf.arange(0, 20, 3, dtype=name, device=xdev), np.arange(0, 20, 3).astype(np_dtype(name)))


def test_arange_step_zero():
    with pytest.raises(ValueError):
        pf.arange(0, 5, 0)


@pytest.mark.parametrize("num", [0, 1, 2, 7, 50])
@pytest.mark.parametrize("endpoint", [True, False])
@pytest.mark.parametrize("bounds", [(0, 1), (-2.5, 7.25), (3, -3), (1, 1)])
def test_linspace_matches_numpy(num, endpoint, bounds, xdev):
    want = np.linspace(*bounds, num=num, endpoint=endpoint)
    t = pf.linspace(*bounds, num, endpoint=endpoint, device=xdev)
    assert t.dtype == pf.float64 and t.shape == want.shape
    np.testing.assert_allclose(t.numpy(), want, rtol=1e-15, atol=1e-15)
    t32 = pf.linspace(*bounds, num=num, endpoint=endpoint, dtype=pf.float32, device=xdev)
    assert t32.dtype == pf.float32
    np.testing.assert_allclose(t32.numpy(), want.astype(np.float32), rtol=1e-6, atol=1e-6)
    if num >= 1:
        assert t.numpy()[0] == bounds[0]
    if endpoint and num >= 2:
        assert t.numpy()[-1] == bounds[1]


@pytest.mark.parametrize("n_rows, n_cols", [(0, None), (1, None), (4, None), (3, 5), (5, 2)])
@pytest.mark.parametrize("k", [-6, -1, 0, 2, 5])
def test_eye_matches_numpy(n_rows, n_cols, k, xdev):
    check(pf.eye(n_rows, n_cols, k=k, device=xdev), np.eye(n_rows, n_cols, k=k))
    check(
        pf.eye(n_rows, n_cols, k=k, dtype=pf.int32, device=xdev),
        np.eye(n_rows, n_cols, k=k, dtype=np.int32),
    )
    check(
        pf.eye(n_rows, n_cols, k=k, dtype=pf.bool, device=xdev),
        np.eye(n_rows, n_cols, k=k, dtype=bool),
    )


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (4, 6), (6, 4), (2, 3, 5), (3, 0, 2)])
@pytest.mark.parametrize("k", [-7, -2, 0, 1, 7])
@pytest.mark.parametrize("name", ["bool", "int64", "uint8", "float32", "bfloat16", "float64"])
def test_tril_triu_match_numpy(shape, k, name, rng, xdev):
    base = sample(rng, shape, name)
    for _, view, x in layouts(base, xdev, dtype=name):
        check(pf.tril(x, k=k), np.tril(view, k=k), dtype=name)
        check(pf.triu(x, k=k), np.triu(view, k=k), dtype=name)


def test_tril_needs_a_matrix():
    with pytest.raises(ValueError):
        pf.tril(pf.zeros((3,)))
    with pytest.raises(ValueError):
        pf.triu(pf.zeros(()))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("lengths", [(), (4,), (3, 5), (2, 0), (2, 3, 4), (1, 2, 1, 3)])
def test_meshgrid_matches_numpy(indexing, lengths, rng, xdev):
    vecs = [rng.integers(0, 50, size=n) for n in lengths]
    got = pf.meshgrid(*[pf.asarray(v, device=xdev) for v in vecs], indexing=indexing)
    want = np.meshgrid(*vecs, indexing=indexing)
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want):
        check(g, w)
    if got:
        got[0][...] = pf.zeros_like(got[0])  # new arrays, not views of one another
        if len(got) > 1 and got[1].size:
            assert got[1].numpy().any() or not want[1].any()


def test_meshgrid_errors(xdev):
    with pytest.raises(ValueError):
        pf.meshgrid(pf.zeros((2,), device=xdev), indexing="xx")
    with pytest.raises(ValueError):
        pf.meshgrid(pf.zeros((2, 2), device=xdev))
    mixed = pf.meshgrid(pf.zeros((2,), device=xdev), pf.zeros((3,), dtype="int8", device=xdev))
    assert [m.dtype for m in mixed] == [pf.float64, pf.int8]  # as NumPy


# --- the default device ----------------------------------------------------------------------


@pytest.fixture
def default_cuda():
    previous = pf.get_default_device()
    pf.set_default_device("cuda")
    try:
        yield
    finally:
        pf.set_default_device(previous)


def test_default_device_is_the_cpu():
    assert pf.get_default_device() == "cpu"
    assert pf.__array_namespace_info__().default_device() == "cpu"


@pytest.mark.cuda
def test_set_default_device_reaches_every_creation_function(default_cuda, rng):
    assert pf.get_default_device() == "cuda:0"
    made = [
        pf.asarray([1, 2]),
        pf.asarray(rng.standard_normal(3)),
        pf.zeros(2),
        pf.ones(2),
        pf.empty(2),
        pf.full(2, 1.0),
        pf.arange(3),
        pf.linspace(0, 1, 3),
        pf.eye(2),
        pf.random.normal((2,)),
        pf.random.uniform((2,)),
        pf.random.integers(0, 5, (2,)),
        pf.random.Generator(1).normal(3),
    ]
    for t in made:
        assert t.device == "cuda:0", t
    cpu = pf.zeros(2, device="cpu")
    assert pf.zeros_like(cpu).device == "cpu"  # *_like keep the argument's device
    assert pf.asarray(cpu).device == "cpu"
    assert pf.tril(pf.zeros((2, 2), device="cpu")).device == "cpu"


def test_asarray_of_256_mib_is_zero_copy():
    a = np.empty((1 << 26,), dtype=np.float32)  # 256 MiB, pages untouched
    start = time.perf_counter()
    t = pf.asarray(a)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.01, elapsed  # a copy would take tens of milliseconds
    t[(1 << 26) - 1] = 5.0
    assert a[-1] == 5.0
    assert t.shape == a.shape


def test_python_integers_out_of_range_overflow_like_numpy():
    with pytest.raises(OverflowError, match="300"):
        pf.full((2,), 300, dtype=pf.int8)
    with pytest.raises(OverflowError):
        pf.asarray(-1, dtype=pf.uint16)
    x = pf.zeros((3,), dtype=pf.uint8)
    with pytest.raises(OverflowError):
        x[0] = 256
    x[1] = 255
    assert x.numpy().tolist() == [0, 255, 0]
    with pytest.raises(ValueError, match="negative"):
        pf.empty((2, -1))


def test_byte_swapped_arrays_convert_to_native_order():
    be = np.arange(6, dtype=">f4").reshape(2, 3)
    t = pf.asarray(be)
    assert t.dtype == pf.float32
    np.testing.assert_array_equal(t.numpy(), be.astype("<f4"))
    with pytest.raises(ValueError, match="copy"):
        pf.asarray(be, copy=False)

"""Indexing against NumPy: ints, slices with any step, ``...``, ``None``, boolean masks, integer
arrays and their mixtures, on every layout; ``__setitem__`` with scalars and broadcast arrays;
out-of-range indices."""

import numpy as np
import pytest

import pocaflow as pf
from helpers import check, layouts, sample

BASIC_KEYS = [
    0,
    -1,
    (1, 2),
    (-2, -1, 0),
    slice(None),
    slice(1, 3),
    slice(None, None, -1),
    slice(3, 0, -2),
    slice(-1, None, -3),
    slice(10, -10, -1),
    slice(5, 1),
    (slice(None), 1),
    (Ellipsis, 0),
    (0, Ellipsis),
    (Ellipsis,),
    (None, 1),
    (slice(None), None, slice(None, None, 2)),
    (1, None, Ellipsis, None),
    (slice(1, None), slice(None, None, -2), 2),
    (),
]


def assert_item(x, view, key):
    got = x[key]
    want = view[key]
    check(got, np.asarray(want))


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_basic_getitem(key, rng, xdev):
    base = rng.standard_normal((4, 5, 6))
    for _, view, x in layouts(base, xdev):
        assert_item(x, view, key)
        got = x[key]
        assert got._shares_memory(x) or got.size == 0  # basic indexing gives views


def test_basic_view_writes_through(xdev):
    x = pf.zeros((4, 6), device=xdev)
    ref = np.zeros((4, 6))
    v = x[::-1, 1::2]
    v[0, 1] = 7.0
    ref[::-1, 1::2][0, 1] = 7.0
    np.testing.assert_array_equal(x.numpy(), ref)


def test_zero_d_and_python_scalars(xdev):
    x = pf.asarray(np.arange(6.0).reshape(2, 3), device=xdev)
    s = x[1, 2]
    assert s.shape == () and float(s) == 5.0
    assert int(pf.asarray(np.int64(3), device=xdev)) == 3
    assert pf.asarray(np.int64(3), device=xdev).__index__() == 3
    assert bool(pf.asarray(True, device=xdev)) is True
    assert [0, 1, 2, 3][pf.asarray(2, device=xdev)] == 2
    zero_d = pf.asarray(4.0, device=xdev)
    check(zero_d[...], np.array(4.0))
    check(zero_d[None], np.array([4.0]))
    with pytest.raises(IndexError):
        zero_d[0]
    assert len(x) == 2
    with pytest.raises(TypeError):
        len(zero_d)


@pytest.mark.parametrize(
    "key",
    [5, -6, (0, 7), (0, 0, 0), (Ellipsis, Ellipsis), (0, -4, 1)],
    ids=repr,
)
def test_out_of_range_basic_indices(key, xdev):
    x = pf.zeros((5, 3), device=xdev)
    with pytest.raises(IndexError):
        x[key]
    with pytest.raises(IndexError):
        x[key] = 1.0


def test_bad_key_types(xdev):
    x = pf.zeros((5, 3), device=xdev)
    for key in (1.5, "a", (0, 1.0)):
        with pytest.raises((IndexError, TypeError)):
            x[key]


@pytest.mark.parametrize("name", ["bool", "int8", "uint64", "float16", "bfloat16", "float64"])
def test_boolean_masks(name, rng, xdev):
    base = sample(rng, (4, 5), name)
    for _, view, x in layouts(base, xdev, dtype=name):
        full = rng.random(view.shape) < 0.5
        row = rng.random(view.shape[0]) < 0.5
        col = rng.random(view.shape[1]) < 0.5
        for key in (
            pf.asarray(full, device=xdev),
            pf.asarray(row, device=xdev),
            (slice(None), pf.asarray(col, device=xdev)),
            (Ellipsis, pf.asarray(col, device=xdev)),
            pf.asarray(np.zeros(view.shape, bool), device=xdev),
            pf.asarray(True, device=xdev),
            pf.asarray(False, device=xdev),
        ):
            npkey = (
                tuple(k.numpy() if isinstance(k, pf.Tensor) else k for k in key)
                if isinstance(key, tuple)
                else key.numpy()
            )
            check(x[key], view[npkey], dtype=name)


def test_boolean_mask_shape_mismatch(xdev):
    x = pf.zeros((4, 5), device=xdev)
    with pytest.raises(IndexError):
        x[pf.asarray(np.ones((4, 4), bool), device=xdev)]
    with pytest.raises(IndexError):
        x[pf.asarray(np.ones(5, bool), device=xdev)]


INT_KEYS = [
    lambda rng: rng.integers(-4, 4, size=6),
    lambda rng: rng.integers(0, 4, size=(2, 3)),
    lambda rng: (rng.integers(0, 4, size=3), rng.integers(-5, 5, size=3)),
    lambda rng: (rng.integers(0, 4, size=(2, 1)), rng.integers(0, 5, size=(1, 3))),
    lambda rng: (slice(None), rng.integers(0, 5, size=4)),
    lambda rng: (rng.integers(0, 4, size=4), slice(1, None, 2)),
    lambda rng: (Ellipsis, rng.integers(0, 6, size=2)),
    lambda rng: (rng.integers(0, 4, size=2), rng.integers(0, 5, size=2), 1),
    lambda rng: (1, rng.integers(0, 5, size=(3, 2))),
    lambda rng: (rng.integers(0, 4, size=0),),
]


@pytest.mark.parametrize("make", INT_KEYS)
def test_integer_array_indexing(make, rng, xdev):
    base = rng.standard_normal((4, 5, 6))
    key = make(rng)
    parts = key if isinstance(key, tuple) else (key,)
    pkey = tuple(pf.asarray(k, device=xdev) if isinstance(k, np.ndarray) else k for k in parts)
    for _, view, x in layouts(base, xdev):
        if view.shape != base.shape:
            continue  # the keys are drawn for the (4, 5, 6) shape
        check(x[pkey], view[parts])
        assert_item(x, view, parts)


def test_integer_arrays_out_of_range(xdev):
    x = pf.zeros((4, 5), device=xdev)
    with pytest.raises(IndexError):
        x[pf.asarray([0, 4], device=xdev)]
    with pytest.raises(IndexError):
        x[pf.asarray([-5], device=xdev)]
    with pytest.raises(IndexError):
        x[:, pf.asarray([5], device=xdev)]
    with pytest.raises(IndexError):
        x[pf.asarray([0, 1], device=xdev), pf.asarray([0, 1, 2], device=xdev)]  # no broadcast
    with pytest.raises(IndexError):
        x[pf.asarray([0.0], device=xdev)]


@pytest.mark.parametrize("dtype", ["int8", "float16", "int32", "float64"])
def test_gathers_from_one_axis(rng, xdev, dtype):
    """The one-pass gather (a 1-D view, one dense index array) against NumPy: strided and
    reversed views, negative indices, a 2-D index array, bounds, and an array indexing itself."""
    base = (rng.standard_normal(101) * 50).astype(dtype)
    x = pf.asarray(base, device=xdev)
    idx = rng.integers(-101, 101, (7, 9))
    for view, ref in ((x, base), (x[3::2], base[3::2]), (pf.flip(x, axis=0), base[::-1])):
        k = idx % ref.shape[0] - (ref.shape[0] // 2)
        check(view[pf.asarray(k, device=xdev)], ref[k])
    with pytest.raises(IndexError, match="index 101 is out of bounds for axis 0 with size 101"):
        x[pf.asarray([0, 101], device=xdev)]
    with pytest.raises(IndexError, match="index -102 is out of bounds"):
        x[pf.asarray([-102], device=xdev)]
    a = np.array([2, 0, 1, 1, 3], dtype=np.int64)
    t = pf.asarray(a, device=xdev)
    check(t[t], a[a])


# --- setitem ---------------------------------------------------------------------------------


SET_KEYS = [
    (1,),
    (slice(None, None, -1), 2),
    (slice(1, None, 2),),
    (Ellipsis, slice(None, None, -2)),
    (None, 0),
    (slice(None), slice(3, 0, -1)),
    (),
]


@pytest.mark.parametrize("key", SET_KEYS, ids=repr)
@pytest.mark.parametrize("name", ["bool", "int32", "uint8", "float16", "bfloat16", "float32"])
def test_setitem_scalars_and_broadcast_arrays(key, name, rng, xdev):
    base = sample(rng, (4, 6), name)
    for _, view, x in layouts(base, xdev, dtype=name):
        ref = view.copy()
        x = pf.asarray(view, dtype=name, device=xdev, copy=True)
        scalar = True if name == "bool" else 3
        x[key] = scalar
        ref[key] = scalar
        check(x, ref, dtype=name)
        target = ref[key].shape
        row = sample(rng, target[-1:] if target else (), name)
        x[key] = pf.asarray(row, dtype=name, device=xdev)
        ref[key] = row
        check(x, ref, dtype=name)
        if len(target) >= 2:
            col = sample(rng, target[:-1] + (1,), name)
            x[key] = pf.asarray(col, dtype=name, device=xdev)
            ref[key] = col
            check(x, ref, dtype=name)


def test_setitem_masks_and_integer_arrays(rng, xdev):
    base = rng.standard_normal((5, 4))
    ref = base.copy()
    x = pf.asarray(base, device=xdev, copy=True)
    mask = rng.random((5, 4)) < 0.5
    x[pf.asarray(mask, device=xdev)] = -1.0
    ref[mask] = -1.0
    check(x, ref)
    vals = rng.standard_normal(int(mask.sum()))
    x[pf.asarray(mask, device=xdev)] = pf.asarray(vals, device=xdev)
    ref[mask] = vals
    check(x, ref)
    rows = rng.random(5) < 0.5
    x[pf.asarray(rows, device=xdev)] = pf.asarray(np.arange(4.0), device=xdev)
    ref[rows] = np.arange(4.0)
    check(x, ref)
    idx = np.array([4, 0, 2])
    x[pf.asarray(idx, device=xdev)] = 9.0
    ref[idx] = 9.0
    check(x, ref)
    x[pf.asarray(idx, device=xdev), pf.asarray([1, 1, 3], device=xdev)] = pf.asarray(
        [1.0, 2.0, 3.0], device=xdev
    )
    ref[idx, [1, 1, 3]] = [1.0, 2.0, 3.0]
    check(x, ref)
    x[:, pf.asarray([-1, 0], device=xdev)] = pf.asarray(np.ones((5, 1)), device=xdev)
    ref[:, [-1, 0]] = 1.0
    check(x, ref)


def test_setitem_from_numpy_and_casts(xdev):
    x = pf.zeros((2, 3), dtype="float32", device=xdev)
    x[0] = np.array([1.0, 2.0, 3.0])
    x[1, 1:] = 7
    check(x, np.array([[1, 2, 3], [0, 7, 7]], np.float32))


def test_setitem_shape_errors_name_both(xdev):
    x = pf.zeros((4, 5), device=xdev)
    with pytest.raises(ValueError, match=r"[\[(]3,?[\])].*[\[(]4, 5[\])]"):
        x[...] = pf.zeros((3,), device=xdev)
    with pytest.raises(ValueError):
        x[0] = pf.zeros((2, 5), device=xdev)


def test_assignment_between_arrays_that_share_one_numpy_buffer():
    b = np.arange(10.0)
    x, y = pf.asarray(b), pf.asarray(b[::-1])  # two arrays over the same memory
    assert x._shares_memory(y)
    x[...] = y
    np.testing.assert_array_equal(b, np.arange(10.0)[::-1])
    c = np.arange(10.0)
    x, y = pf.asarray(c), pf.asarray(c[::-1])
    x[pf.asarray(np.arange(10))] = y
    np.testing.assert_array_equal(c, np.arange(10.0)[::-1])


def test_huge_slice_steps_select_one_element():
    base = np.arange(24.0).reshape(2, 3, 4)
    a = pf.asarray(base.copy())
    for step in (2**63 - 1, -(2**63 - 1), -(2**63)):
        check(a[::step], base[::step])
    a[:: 2**63 - 1] = 1.0
    want = base.copy()
    want[:: 2**63 - 1] = 1.0
    check(a, want)


def test_empty_list_index():
    base = np.arange(24.0).reshape(2, 3, 4)
    check(pf.asarray(base)[[]], base[[]])


def test_scalar_booleans_among_index_arrays():
    base = np.arange(24.0).reshape(2, 3, 4)
    x = pf.asarray(base)
    for key in [
        (True, slice(None), [1, 2]),
        (slice(None), True, [1, 2]),
        (False, [0]),
        (True, [1, 0], [2, 1]),
        (True,),
        (False, Ellipsis),
    ]:
        check(x[key], base[key])

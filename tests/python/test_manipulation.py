"""Manipulation functions against NumPy on every layout: views (and that they share memory),
the functions that build new arrays, and every error case."""

import numpy as np
import pytest

import pocaflow as pf
from helpers import DTYPE_NAMES, SHAPES, check, layouts, random_shapes, sample

SOME_DTYPES = ["bool", "int8", "uint32", "int64", "float16", "bfloat16", "float64"]
ND_SHAPES = [s for s in SHAPES if len(s) >= 1]


def write_shows_in_base(view, base, key, value=1):
    """Writes ``value`` through ``view[key]`` and returns the base read back."""
    view[key] = value
    return base.numpy()


def test_axis_error_is_both_value_and_index_error():
    assert issubclass(pf.AxisError, ValueError) and issubclass(pf.AxisError, IndexError)
    x = pf.zeros((2, 3))
    for call in (
        lambda: pf.expand_dims(x, axis=3),
        lambda: pf.squeeze(x, axis=2),
        lambda: pf.flip(x, axis=-3),
        lambda: pf.moveaxis(x, 0, 2),
        lambda: pf.concat([x, x], axis=2),
        lambda: pf.stack([x, x], axis=4),
        lambda: pf.unstack(x, axis=2),
        lambda: pf.roll(x, 1, axis=5),
        lambda: pf.repeat(x, 2, axis=2),
        lambda: pf.take(x, pf.asarray([0]), axis=2),
        lambda: pf.take_along_axis(x, pf.zeros((2, 3), dtype="int64"), axis=2),
        lambda: pf.permute_dims(x, (0, 2)),
    ):
        with pytest.raises(pf.AxisError):
            call()


# --- views -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_reshape(name, rng, xdev):
    base = sample(rng, (4, 6), name)
    for _, view, x in layouts(base, xdev, dtype=name):
        for shape in [(24,), (-1,), (2, 12), (3, -1, 2), (1, 24, 1)]:
            want_shape = (view.size,) if shape == (-1,) else shape
            if view.size != 24:
                want_shape = (view.size,)
                shape = (-1,)
            check(pf.reshape(x, shape), view.reshape(want_shape), dtype=name)
    x = pf.asarray(base, dtype=name, device=xdev, copy=True)
    r = pf.reshape(x, (2, 12))
    assert r._shares_memory(x)
    r[1, 11] = 1
    assert x.numpy()[3, 5] == 1
    assert pf.reshape(x, (24,), copy=False)._shares_memory(x)
    assert not pf.reshape(x, (24,), copy=True)._shares_memory(x)
    t = pf.asarray(base, dtype=name, device=xdev).mT
    with pytest.raises(ValueError):
        pf.reshape(t, (24,), copy=False)  # not expressible as a view
    with pytest.raises(ValueError, match="24"):
        pf.reshape(t, (5, 5))
    check(pf.reshape(pf.zeros((0, 3), device=xdev), (3, 0, 5)), np.zeros((3, 0, 5)))


@pytest.mark.parametrize("shape", SHAPES)
def test_permute_dims_and_matrix_transpose(shape, rng, xdev):
    base = rng.standard_normal(shape)
    for _, view, x in layouts(base, xdev):
        axes = tuple(np.random.default_rng(len(shape)).permutation(len(shape)))
        p = pf.permute_dims(x, axes)
        check(p, view.transpose(axes))
        if view.ndim >= 2:
            check(pf.matrix_transpose(x), np.swapaxes(view, -1, -2))
            check(x.mT, np.swapaxes(view, -1, -2))
            assert pf.matrix_transpose(x)._shares_memory(x) or x.size == 0
    if len(shape) < 2:
        with pytest.raises(ValueError):
            pf.matrix_transpose(pf.asarray(base, device=xdev))
    with pytest.raises((ValueError, pf.AxisError)):
        pf.permute_dims(pf.asarray(base, device=xdev), (0,) * (len(shape) + 1))


def test_views_share_memory_and_write_through(xdev):
    base = pf.zeros((3, 4, 5), device=xdev)
    ref = np.zeros((3, 4, 5))
    for view, nview, key in [
        (pf.permute_dims(base, (2, 0, 1)), ref.transpose(2, 0, 1), (1, 2, 3)),
        (pf.expand_dims(base, axis=1), ref[:, None], (2, 0, 1, 4)),
        (pf.squeeze(pf.expand_dims(base, axis=0), axis=0), ref, (0, 1, 2)),
        (pf.flip(base, axis=1), ref[:, ::-1], (1, 0, 0)),
        (pf.flip(base), ref[::-1, ::-1, ::-1], (0, 0, 0)),
        (pf.moveaxis(base, 0, -1), np.moveaxis(ref, 0, -1), (3, 4, 2)),
        (pf.matrix_transpose(base), np.swapaxes(ref, -1, -2), (2, 4, 3)),
        (pf.unstack(base, axis=1)[2], ref[:, 2], (1, 1)),
        (pf.reshape(base, (12, 5)), ref.reshape(12, 5), (7, 2)),
        (base[1:, ::-2], ref[1:, ::-2], (0, 1, 4)),
    ]:
        assert view._shares_memory(base)
        view[key] = 5.0
        nview[key] = 5.0
        np.testing.assert_array_equal(base.numpy(), ref)


@pytest.mark.parametrize("shape", SHAPES)
def test_expand_dims_squeeze(shape, rng, xdev):
    base = rng.standard_normal(shape)
    for _, view, x in layouts(base, xdev):
        for axis in range(-view.ndim - 1, view.ndim + 1):
            e = pf.expand_dims(x, axis=axis)
            check(e, np.expand_dims(view, axis))
            check(pf.squeeze(e, axis=axis), view)
        check(pf.expand_dims(x), view[None])
        ones = tuple(i for i, d in enumerate(view.shape) if d == 1)
        if ones:
            check(pf.squeeze(x, axis=ones), np.squeeze(view, axis=ones))
            check(pf.squeeze(x, axis=ones[0]), np.squeeze(view, axis=ones[0]))
        big = [i for i, d in enumerate(view.shape) if d != 1]
        if big:
            with pytest.raises(ValueError):
                pf.squeeze(x, axis=big[0])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", SOME_DTYPES)
def test_flip(shape, name, rng, xdev):
    base = sample(rng, shape, name)
    for _, view, x in layouts(base, xdev, dtype=name):
        check(pf.flip(x), np.flip(view), dtype=name)
        for axis in range(-view.ndim, view.ndim):
            check(pf.flip(x, axis=axis), np.flip(view, axis=axis), dtype=name)
        if view.ndim >= 2:
            check(pf.flip(x, axis=(0, -1)), np.flip(view, axis=(0, -1)), dtype=name)


@pytest.mark.parametrize(
    "shape, target",
    [((), (3, 2)), ((1,), (4,)), ((3,), (2, 3)), ((2, 1), (2, 5)), ((1, 0), (4, 0)), ((3,), (3,))],
)
def test_broadcast_to(shape, target, rng, xdev):
    base = rng.standard_normal(shape)
    for _, view, x in layouts(base, xdev):
        if view.shape != base.shape:
            continue  # a step changes the shape
        b = pf.broadcast_to(x, target)
        check(b, np.broadcast_to(view, target))
        assert b._shares_memory(x) or b.size == 0 or x.size == 0


def test_broadcast_errors_name_both_shapes(xdev):
    x = pf.zeros((2, 3), device=xdev)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 3\)|\(4, 3\).*\(2, 3\)"):
        pf.broadcast_to(x, (4, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        pf.broadcast_arrays(x, pf.zeros((4,), device=xdev))
    with pytest.raises(ValueError):
        pf.broadcast_to(x, (-1, 3))
    with pytest.raises(ValueError):
        pf.broadcast_to(x, (3,))  # fewer dimensions


def test_broadcast_arrays(rng, xdev):
    arrays = [rng.standard_normal(s) for s in [(3, 1), (1, 4), (4,), ()]]
    got = pf.broadcast_arrays(*[pf.asarray(a, device=xdev) for a in arrays])
    want = np.broadcast_arrays(*arrays)
    assert isinstance(got, list) and len(got) == 4
    for g, w in zip(got, want):
        check(g, w)
    assert pf.broadcast_arrays() == []
    assert pf.broadcast_shapes((2, 1), (3,)) == (2, 3)


@pytest.mark.parametrize(
    "src, dst",
    [(0, -1), (-1, 0), (1, 1), ((0, 1), (-1, -2)), ((2, 0), (0, 1)), ([0], [2])],
)
def test_moveaxis(src, dst, rng, xdev):
    base = rng.standard_normal((2, 3, 4))
    for _, view, x in layouts(base, xdev):
        check(pf.moveaxis(x, src, dst), np.moveaxis(view, src, dst))


@pytest.mark.parametrize("shape", ND_SHAPES)
def test_unstack(shape, rng, xdev):
    base = rng.standard_normal(shape)
    for _, view, x in layouts(base, xdev):
        for axis in range(-view.ndim, view.ndim):
            parts = pf.unstack(x, axis=axis)
            assert isinstance(parts, tuple) and len(parts) == view.shape[axis]
            for i, p in enumerate(parts):
                check(p, np.take(view, i, axis=axis))
    with pytest.raises(ValueError):
        pf.unstack(pf.zeros((), device=xdev))


# --- take, take_along_axis, nonzero ----------------------------------------------------------


@pytest.mark.parametrize("name", SOME_DTYPES)
def test_take(name, rng, xdev):
    base = sample(rng, (5, 6), name)
    for _, view, x in layouts(base, xdev, dtype=name):
        for axis in (0, 1, -1):
            n = view.shape[axis]
            idx = rng.integers(-n, n, size=7)
            got = pf.take(x, pf.asarray(idx, device=xdev), axis=axis)
            check(got, np.take(view, idx, axis=axis), dtype=name)
            check(
                pf.take(x, pf.asarray(idx[:0], device=xdev), axis=axis),
                np.take(view, idx[:0], axis),
            )
    v = pf.asarray(sample(rng, (9,), name), dtype=name, device=xdev)
    idx = pf.asarray([8, 0, -1, 3], device=xdev)
    check(pf.take(v, idx), np.take(v.numpy(), [8, 0, -1, 3]), dtype=name)
    with pytest.raises(ValueError):
        pf.take(pf.zeros((2, 2), device=xdev), idx)  # axis needed for 2-D
    with pytest.raises(IndexError):
        pf.take(v, pf.asarray([9], device=xdev))
    with pytest.raises(IndexError):
        pf.take(v, pf.asarray([-10], device=xdev))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_take_along_axis(axis, rng, xdev):
    base = rng.standard_normal((4, 5))
    for _, view, x in layouts(base, xdev):
        n = view.shape[axis]
        shape = list(view.shape)
        shape[axis] = 3
        idx = rng.integers(0, n, size=shape)
        got = pf.take_along_axis(x, pf.asarray(idx, device=xdev), axis=axis)
        check(got, np.take_along_axis(view, idx, axis=axis))
        one = [1, 1]
        one[axis] = 2
        idx1 = rng.integers(0, n, size=one)  # broadcast against x on the other axis
        want1 = np.take_along_axis(
            view, np.broadcast_to(idx1, _bshape(view.shape, one, axis)), axis
        )
        check(pf.take_along_axis(x, pf.asarray(idx1, device=xdev), axis=axis), want1)
    x = pf.asarray(base, device=xdev)
    check(pf.take_along_axis(x, pf.asarray(np.zeros((4, 1), np.int64), device=xdev)), base[:, :1])
    with pytest.raises(IndexError):
        pf.take_along_axis(x, pf.asarray(np.full((4, 1), 5), device=xdev), axis=1)


def _bshape(shape, ishape, axis):
    out = list(shape)
    out[axis] = ishape[axis]
    return tuple(out)


@pytest.mark.parametrize("shape", ND_SHAPES)
@pytest.mark.parametrize("name", ["bool", "int32", "float32", "bfloat16"])
def test_nonzero(shape, name, rng, xdev):
    base = sample(rng, shape, name)
    if name != "bool":
        base = (base * (rng.random(shape) < 0.4)).astype(base.dtype)
    for _, view, x in layouts(base, xdev, dtype=name):
        got = pf.nonzero(x)
        want = np.nonzero(view)
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            check(g, w.astype(np.int64), dtype="int64")
    with pytest.raises(ValueError):
        pf.nonzero(pf.zeros((), device=xdev))


# --- new arrays ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOME_DTYPES)
def test_concat(name, rng, xdev):
    a, b, c = (sample(rng, s, name) for s in [(2, 3), (4, 3), (0, 3)])
    pa, pb, pc = (pf.asarray(v, dtype=name, device=xdev) for v in (a, b, c))
    check(pf.concat([pa, pb, pc]), np.concatenate([a, b, c]), dtype=name)
    check(pf.concat((pa.mT, pb.mT), axis=-1), np.concatenate([a.T, b.T], axis=-1), dtype=name)
    check(pf.concat([pa, pb[::-2]], axis=None), np.concatenate([a, b[::-2]], axis=None), dtype=name)
    check(pf.concat([pa]), a, dtype=name)
    out = pf.concat([pa, pb])
    assert not out._shares_memory(pa)


def test_concat_promotes_and_checks(xdev):
    a = pf.asarray(np.arange(3, dtype=np.int8), device=xdev)
    b = pf.asarray(np.arange(2, dtype=np.uint8), device=xdev)
    f = pf.asarray(np.ones(2, np.float32), device=xdev)
    check(pf.concat([a, b]), np.concatenate([np.arange(3), np.arange(2)]).astype(np.int16))
    check(pf.concat([a, f]), np.concatenate([np.arange(3), np.ones(2)]).astype(np.float32))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        pf.concat([pf.zeros((2, 3), device=xdev), pf.zeros((2, 4), device=xdev)])
    with pytest.raises(ValueError):
        pf.concat([pf.zeros((2, 3), device=xdev), pf.zeros((3,), device=xdev)])
    with pytest.raises(ValueError):
        pf.concat([pf.zeros((), device=xdev)])
    with pytest.raises(ValueError):
        pf.concat([])


@pytest.mark.parametrize("shape", SHAPES)
def test_stack(shape, rng, xdev):
    arrays = [rng.standard_normal(shape) for _ in range(3)]
    ps = [pf.asarray(a, device=xdev) for a in arrays]
    for axis in range(-len(shape) - 1, len(shape) + 1):
        check(pf.stack(ps, axis=axis), np.stack(arrays, axis=axis))
    mixed = pf.stack([ps[0].astype("float32"), ps[1]])
    check(mixed, np.stack([arrays[0].astype(np.float32), arrays[1]]))
    if len(shape):
        with pytest.raises(ValueError):
            pf.stack([ps[0], pf.zeros(shape + (1,), device=xdev)])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reps", [(2,), (1, 3), (2, 0, 2), (3, 1, 1, 2), ()])
def test_tile(shape, reps, rng, xdev):
    base = rng.standard_normal(shape)
    for _, view, x in layouts(base, xdev):
        got = pf.tile(x, reps)
        check(got, np.tile(view, reps))
        assert not got._shares_memory(x) or got.size == 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["bool", "int16", "float32"])
def test_repeat(shape, name, rng, xdev):
    base = sample(rng, shape, name)
    for _, view, x in layouts(base, xdev, dtype=name):
        for r in (0, 1, 3):
            check(pf.repeat(x, r), np.repeat(view, r), dtype=name)
        for axis in range(-view.ndim, view.ndim):
            check(pf.repeat(x, 2, axis=axis), np.repeat(view, 2, axis=axis), dtype=name)
            counts = rng.integers(0, 4, size=view.shape[axis])
            rep = pf.asarray(counts, device=xdev)
            check(pf.repeat(x, rep, axis=axis), np.repeat(view, counts, axis=axis), dtype=name)
            one = pf.asarray(np.array([2]), device=xdev)
            check(pf.repeat(x, one, axis=axis), np.repeat(view, 2, axis=axis), dtype=name)


def test_repeat_errors(xdev):
    x = pf.zeros((2, 3), device=xdev)
    with pytest.raises(ValueError):
        pf.repeat(x, -1)
    with pytest.raises(ValueError):
        pf.repeat(x, pf.asarray([1, 2], device=xdev), axis=1)
    with pytest.raises(TypeError):
        pf.repeat(x, pf.asarray([1.0, 2.0], device=xdev), axis=0)
    with pytest.raises(ValueError):
        pf.repeat(x, pf.asarray([1, -1], device=xdev), axis=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_roll(shape, rng, xdev):
    base = rng.standard_normal(shape)
    for _, view, x in layouts(base, xdev):
        for shift in (0, 1, -2, 7, -100):
            got = pf.roll(x, shift)
            check(got, np.roll(view, shift))
            assert not got._shares_memory(x) or got.size == 0
            for axis in range(-view.ndim, view.ndim):
                check(pf.roll(x, shift, axis=axis), np.roll(view, shift, axis=axis))
        if view.ndim >= 2:
            check(pf.roll(x, (1, -3), axis=(0, 1)), np.roll(view, (1, -3), axis=(0, 1)))
            check(pf.roll(x, 2, axis=(0, -1)), np.roll(view, 2, axis=(0, -1)))
            check(pf.roll(x, (1, 1), axis=(1, 1)), np.roll(view, (1, 1), axis=(1, 1)))
    with pytest.raises(ValueError):
        pf.roll(pf.zeros((2, 2), device=xdev), (1, 2), axis=(0,))


@pytest.mark.cuda
def test_mixed_devices_name_both():
    c, g = pf.zeros((2,)), pf.zeros((2,), device="cuda")
    for call in (
        lambda: pf.concat([c, g]),
        lambda: pf.stack([g, c]),
        lambda: pf.broadcast_arrays(c, g),
        lambda: pf.meshgrid(c, g),
    ):
        with pytest.raises(RuntimeError, match=r"cpu.*cuda:0|cuda:0.*cpu"):
            call()


def test_random_shapes_and_axes(rng, xdev):
    for shape in random_shapes(rng, 40):
        base = rng.standard_normal(shape)
        for _, view, x in layouts(base, xdev):
            nd = view.ndim
            check(pf.flip(x), np.flip(view))
            shift = int(rng.integers(-7, 8))
            check(pf.roll(x, shift), np.roll(view, shift))
            reps = tuple(int(r) for r in rng.integers(0, 3, size=int(rng.integers(0, 4))))
            check(pf.tile(x, reps), np.tile(view, reps))
            check(pf.repeat(x, 2), np.repeat(view, 2))
            axis = int(rng.integers(-nd - 1, nd + 1))
            check(pf.expand_dims(x, axis=axis), np.expand_dims(view, axis))
            check(pf.stack([x, x], axis=axis), np.stack([view, view], axis=axis))
            if nd == 0:
                continue
            axis = int(rng.integers(-nd, nd))
            check(pf.flip(x, axis=axis), np.flip(view, axis=axis))
            check(pf.roll(x, shift, axis=axis), np.roll(view, shift, axis=axis))
            check(pf.concat([x, x], axis=axis), np.concatenate([view, view], axis=axis))
            check(pf.repeat(x, 3, axis=axis), np.repeat(view, 3, axis=axis))
            axes = tuple(int(a) for a in rng.permutation(nd))
            check(pf.permute_dims(x, axes), view.transpose(axes))
            dst = int(rng.integers(-nd, nd))
            check(pf.moveaxis(x, axis, dst), np.moveaxis(view, axis, dst))
            check(pf.reshape(x, (-1,)), view.reshape(-1))


def test_numpy_integers_as_axes_and_shifts(rng, xdev):
    a = rng.standard_normal((2, 3, 4))
    x = pf.asarray(a, device=xdev)
    one, two = np.int64(1), np.intp(2)
    check(pf.flip(x, axis=one), np.flip(a, axis=1))
    check(pf.roll(x, two, axis=one), np.roll(a, 2, axis=1))
    check(pf.roll(x, [one, two], axis=[0, two]), np.roll(a, (1, 2), axis=(0, 2)))
    check(pf.moveaxis(x, one, two), np.moveaxis(a, 1, 2))
    check(pf.squeeze(pf.expand_dims(x, axis=one), axis=one), a)
    check(pf.concat([x, x], axis=two), np.concatenate([a, a], axis=2))
    check(pf.stack([x, x], axis=one), np.stack([a, a], axis=1))

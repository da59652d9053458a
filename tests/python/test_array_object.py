"""The array object for every dtype: attributes, scalar conversions, ``__repr__``,
``__array__``, ``to_device``, ``mT``."""

import numpy as np
import pytest

import pocaflow as pf
from helpers import DTYPE_NAMES, check, np_dtype, sample


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_attributes_every_dtype(name, rng, xdev):
    a = sample(rng, (2, 3, 4), name)
    x = pf.asarray(a, dtype=name, device=xdev)
    assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and len(x) == 2
    assert x.dtype == getattr(pf, name)
    itemsize = getattr(pf, name).itemsize
    assert x.itemsize == itemsize and x.nbytes == 24 * itemsize
    assert str(x.device).startswith(xdev)
    check(x.mT, np.swapaxes(a, -1, -2), dtype=name)
    back = np.asarray(x)
    assert back.dtype == np_dtype(name)
    np.testing.assert_array_equal(back, a)
    np.testing.assert_array_equal(np.asarray(x, dtype=np.float64), a.astype(np.float64))
    r = repr(x)
    assert name in r and xdev in r
    assert repr(pf.zeros((0, 2), dtype=name, device=xdev))


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_scalar_conversions_every_dtype(name, xdev):
    one = pf.ones((), dtype=name, device=xdev)
    assert bool(one) is True and bool(pf.zeros((1,), dtype=name, device=xdev)) is False
    assert float(one) == 1.0 and int(one) == 1
    if name[0] in "iu":
        assert one.__index__() == 1
    else:
        with pytest.raises(TypeError):
            one.__index__()
    with pytest.raises(ValueError):
        bool(pf.ones((2,), dtype=name, device=xdev))
    assert isinstance(one.item(), (bool, int, float))


def test_large_integers_convert_exactly(xdev):
    big = pf.asarray(np.array([2**63 - 1], np.int64), device=xdev)
    assert int(big[0]) == 2**63 - 1
    ubig = pf.asarray(np.array([2**64 - 1], np.uint64), device=xdev)
    assert int(ubig[0]) == 2**64 - 1


def test_to_device_and_to(rng, xdev):
    a = rng.standard_normal((3, 2))
    x = pf.asarray(a, device=xdev)
    assert x.to_device(xdev).device == x.device
    c = x.to_device("cpu")
    assert c.device == "cpu"
    np.testing.assert_array_equal(c.numpy(), a)
    assert x.to(dtype=pf.float32).dtype == pf.float32


@pytest.mark.cuda
def test_to_device_round_trip_every_dtype(rng):
    for name in DTYPE_NAMES:
        a = sample(rng, (5, 7), name)
        g = pf.asarray(a, dtype=name).to_device("cuda")
        assert g.device == "cuda:0" and g.dtype == name
        check(g.to_device("cpu"), a, dtype=name)
        check(g.T.to_device("cpu"), a.T, dtype=name)

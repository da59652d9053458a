"""Zero-copy interop on the CPU: DLPack both ways with NumPy (versioned and legacy capsules,
strides, lifetimes, copies, read-only memory, errors), the buffer protocol, ``__array__`` and
``asarray`` of DLPack producers. The CUDA half (PyTorch and CuPy) is in test_dlpack_cuda.py."""

from __future__ import annotations

import ctypes
import gc

import numpy as np
import pytest

import pocaflow as pf
from helpers import DTYPE_NAMES, sample
from pocaflow import _pocaflow

#: Every dtype NumPy shares through DLPack (all of pocaflow's but bfloat16).
DTYPES = [d for d in DTYPE_NAMES if d != "bfloat16"]


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


class Legacy:
    """A producer from before DLPack 1.0: ``__dlpack__`` takes only ``stream``."""

    def __init__(self, a):
        self.a = a

    def __dlpack__(self, stream=None):
        return self.a.__dlpack__(stream=stream)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def capsule_name(capsule) -> str:
    return repr(capsule).split('"')[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_views_pocaflow_arrays_in_place(rng, dtype):
    a = sample(rng, (3, 5), dtype)
    t = pf.asarray(a, copy=True)
    b = np.from_dlpack(t)
    assert b.dtype == a.dtype and b.shape == (3, 5)
    np.testing.assert_array_equal(b, a)
    assert address(b) == t.__array__().__array_interface__["data"][0]
    t[1, 2] = a[0, 0] if dtype == "bool" else 7
    assert b[1, 2] == t[1, 2].item()


@pytest.mark.parametrize(
    "view",
    [
        lambda t: t.T,
        lambda t: t[1:, ::2],
        lambda t: t[::-1][::-1],
        lambda t: t[:, 3],
        lambda t: t[2, 1],
        lambda t: t[:0],
    ],
    ids=["transposed", "stepped", "flipped-twice", "column", "scalar", "empty"],
)
def test_strided_views_export_with_their_strides(rng, view):
    a = rng.standard_normal((4, 6))
    t = view(pf.asarray(a, copy=True))
    b = np.from_dlpack(t)
    np.testing.assert_array_equal(b, t.numpy())
    if b.size:
        assert tuple(s // b.itemsize for s in b.strides) == t.strides


def test_negative_strides_are_exported_as_a_copy(rng):
    t = pf.flip(pf.asarray(rng.standard_normal((3, 4)), copy=True), axis=1)
    b = np.from_dlpack(t)
    np.testing.assert_array_equal(b, t.numpy())
    assert all(s > 0 for s in b.strides)
    b[0, 0] = 1e9
    assert t[0, 0].item() != 1e9
    with pytest.raises(BufferError, match="negative strides"):
        t.__dlpack__(max_version=(1, 0), copy=False)


def test_the_export_outlives_the_array(rng):
    a = rng.standard_normal((64, 64))
    t = pf.asarray(a, copy=True)
    b = np.from_dlpack(t)
    del t
    gc.collect()
    _ = [np.ones(4096) for _ in range(8)]
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != "bool"])
def test_numpy_arrays_are_imported_in_place(rng, dtype):
    a = sample(rng, (4, 3), dtype)
    t = pf.from_dlpack(a)
    assert t.dtype == getattr(pf, dtype)
    np.testing.assert_array_equal(t.numpy(), a)
    a[2, 1] = 9
    assert t[2, 1].item() == 9


@pytest.mark.parametrize(
    "view",
    [lambda a: a.T, lambda a: a[::-1, 1::2], lambda a: a[:, ::-3], lambda a: a[None, 2]],
    ids=["transposed", "reversed-stepped", "negative-step", "new-axis"],
)
def test_strided_numpy_arrays_are_imported_in_place(rng, view):
    base = rng.standard_normal((5, 7))
    a = view(base)
    t = pf.from_dlpack(a)
    np.testing.assert_array_equal(t.numpy(), a)
    assert t.strides == tuple(s // 8 for s in a.strides)
    base[...] = 0.0
    assert not np.any(t.numpy())


def test_legacy_producers_give_an_unversioned_capsule(rng):
    a = rng.standard_normal((3, 3))
    assert capsule_name(Legacy(a).__dlpack__()) == "dltensor"
    t = pf.from_dlpack(Legacy(a))
    a[0, 0] = 5.0
    assert t[0, 0].item() == 5.0


def test_the_import_keeps_the_producer_alive(rng):
    t = pf.from_dlpack(rng.standard_normal(1000) + 3.0)
    gc.collect()
    _ = [np.zeros(1000) for _ in range(8)]
    assert float(pf.min(t)) > -2.0 and float(pf.sum(t)) == pytest.approx(3000.0, rel=0.1)


def test_round_trip_shares_one_memory(rng):
    t = pf.asarray(rng.standard_normal((2, 3)), copy=True)
    back = pf.from_dlpack(np.from_dlpack(t))
    back[0, 0] = 11.0
    assert t[0, 0].item() == 11.0
    assert pf.from_dlpack(t)._shares_memory(t)


def test_copies_where_asked_or_needed(rng):
    a = rng.standard_normal((3, 4))
    t = pf.from_dlpack(a, copy=True)
    a[0, 0] = 1e9
    assert t[0, 0].item() != 1e9
    ro = rng.standard_normal(6)
    ro.flags.writeable = False
    t = pf.from_dlpack(ro)
    np.testing.assert_array_equal(t.numpy(), ro)
    t[0] = 123.0  # a copy: the read-only memory is untouched
    assert ro[0] != 123.0
    with pytest.raises(BufferError, match="read-only"):
        pf.from_dlpack(ro, copy=False)
    flags = rng.random(10) < 0.5
    t = pf.from_dlpack(flags)
    assert t.dtype == pf.bool
    np.testing.assert_array_equal(t.numpy(), flags)
    with pytest.raises(BufferError, match="boolean"):
        pf.from_dlpack(flags, copy=False)


def test_the_export_obeys_copy_device_and_version(rng):
    a = rng.standard_normal(5)
    t = pf.asarray(a, copy=True)
    assert capsule_name(t.__dlpack__()) == "dltensor"
    assert capsule_name(t.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    assert capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"
    c = np.from_dlpack(t, copy=True)
    c[0] = 99.0
    assert t[0].item() == a[0]
    same = np.from_dlpack(t, device="cpu")
    same[1] = -1.0
    assert t[1].item() == -1.0
    with pytest.raises(ValueError, match="stream must be None"):
        t.__dlpack__(stream=1)
    with pytest.raises(ValueError, match="stream must be None"):
        t.__dlpack__(stream=1, copy=True)
    with pytest.raises(BufferError, match="without a copy"):
        t.__dlpack__(dl_device=(2, 0), copy=False)
    with pytest.raises(BufferError, match="DLPack device"):
        t.__dlpack__(dl_device=(4, 0))
    assert t.__dlpack_device__() == (1, 0)


def test_bfloat16_goes_through_dlpack_but_not_to_numpy(rng):
    t = pf.astype(pf.asarray(rng.standard_normal(8)), pf.bfloat16)
    back = pf.from_dlpack(t)
    assert back.dtype == pf.bfloat16 and back._shares_memory(t)
    with pytest.raises((BufferError, TypeError, RuntimeError)):
        np.from_dlpack(t)


def test_capsules_are_checked():
    a = np.arange(4.0)
    capsule = a.__dlpack__(max_version=(1, 0))
    _pocaflow.from_dlpack_capsule(capsule)
    with pytest.raises(ValueError, match="already consumed"):
        _pocaflow.from_dlpack_capsule(capsule)
    with pytest.raises(TypeError, match="expected a DLPack capsule"):
        _pocaflow.from_dlpack_capsule(a)
    with pytest.raises(BufferError, match="complex"):
        pf.from_dlpack(np.ones(3, dtype=np.complex64))
    with pytest.raises(TypeError, match="__dlpack__"):
        pf.from_dlpack([1, 2, 3])


# A capsule made by hand (ctypes), for what no producer here makes: other versions, devices
# and dtypes.
class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device_type", ctypes.c_int32),
        ("device_id", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("code", ctypes.c_uint8),
        ("bits", ctypes.c_uint8),
        ("lanes", ctypes.c_uint16),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class Versioned(ctypes.Structure):
    _fields_ = [
        ("major", ctypes.c_uint32),
        ("minor", ctypes.c_uint32),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", DLTensor),
    ]


def handmade(keep: list, *, major=1, device_type=1, code=2, bits=64, lanes=1, shape=(4,)):
    data = np.arange(4.0)
    dims = (ctypes.c_int64 * len(shape))(*shape)
    m = Versioned(major, 0, None, None, 0)
    m.dl_tensor = DLTensor(data.ctypes.data, device_type, 0, len(shape), code, bits, lanes, dims)
    keep += [data, dims, m]
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = (
        ctypes.py_object,
        [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p],
    )
    return new(ctypes.addressof(m), b"dltensor_versioned", None)


def test_handmade_capsules_are_read_or_refused():
    keep: list = []
    t = _pocaflow.from_dlpack_capsule(handmade(keep))
    np.testing.assert_array_equal(t.numpy(), np.arange(4.0))
    assert t.__array__().__array_interface__["data"][0] == keep[0].ctypes.data
    with pytest.raises(BufferError, match="DLPack 2.0 is not supported"):
        _pocaflow.from_dlpack_capsule(handmade(keep, major=2))
    with pytest.raises(BufferError, match="device type 4"):
        _pocaflow.from_dlpack_capsule(handmade(keep, device_type=4))
    with pytest.raises(BufferError, match="2 lane"):
        _pocaflow.from_dlpack_capsule(handmade(keep, lanes=2))
    with pytest.raises(BufferError, match="negative extent"):
        _pocaflow.from_dlpack_capsule(handmade(keep, shape=(-1,)))
    del t
    gc.collect()


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_buffer_protocol_shares_cpu_memory(rng, dtype):
    a = sample(rng, (3, 4), dtype)
    t = pf.asarray(a, copy=True)
    m = memoryview(t)
    assert (m.shape, m.ndim, m.readonly) == ((3, 4), 2, False)
    assert m.itemsize == a.itemsize and m.strides == a.strides
    n = np.asarray(t)
    assert np.shares_memory(n, np.asarray(m))
    np.testing.assert_array_equal(n, a)
    n[0, 0] = n[1, 1]
    assert t[0, 0].item() == a[1, 1].item()


def test_the_buffer_protocol_honours_the_consumers_request(rng):
    t = pf.asarray(rng.standard_normal((3, 4)), copy=True)
    m = memoryview(t.T)
    assert m.strides == (8, 32) and m.f_contiguous
    np.testing.assert_array_equal(np.asarray(m), t.numpy().T)
    with pytest.raises(BufferError, match="C-contiguous"):
        np.frombuffer(t.T, dtype=np.float64)
    assert np.frombuffer(t, dtype=np.float64).size == 12
    with pytest.raises(BufferError, match="bfloat16"):
        memoryview(pf.astype(t, pf.bfloat16))


def test_array_conversion_views_cpu_memory_unless_asked_to_copy(rng):
    a = rng.standard_normal(6)
    t = pf.asarray(a, copy=True)
    v = np.asarray(t)
    v[0] = 5.0
    assert t[0].item() == 5.0
    c = np.array(t, copy=True)
    c[1] = 6.0
    assert t[1].item() != 6.0
    assert np.asarray(t, copy=False)[0] == 5.0
    bf = pf.astype(t, pf.bfloat16)
    assert np.asarray(bf).dtype == np.float32
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(bf, copy=False)
    assert not hasattr(t, "__cuda_array_interface__")


def test_asarray_takes_any_dlpack_producer(rng):
    a = rng.standard_normal((2, 2))
    t = pf.asarray(Legacy(a))
    a[1, 1] = 8.0
    assert t[1, 1].item() == 8.0
    assert pf.asarray(Legacy(a), copy=False)[1, 1].item() == 8.0
    c = pf.asarray(Legacy(a), copy=True, dtype=pf.float32)
    assert c.dtype == pf.float32 and c[1, 1].item() == 8.0

"""The array API namespace: its version, the names it has, ``__array_namespace__`` and
``__array_namespace_info__()``."""

import numpy as np
import pytest

import pocaflow as pf
from helpers import DTYPE_NAMES, FLOAT_NAMES, INT_NAMES

NAMES = """
__array_api_version__ __array_namespace_info__ bool int8 int16 int32 int64 uint8 uint16 uint32
uint64 float16 bfloat16 float32 float64 finfo iinfo result_type can_cast isdtype astype asarray
zeros ones empty full zeros_like ones_like empty_like full_like arange linspace eye tril triu
meshgrid from_dlpack reshape permute_dims expand_dims squeeze flip roll concat stack unstack
broadcast_to broadcast_arrays moveaxis tile repeat take take_along_axis matrix_transpose nonzero
matmul set_default_device random tensor Tensor
""".split()


def test_namespace_has_every_name():
    assert pf.__array_api_version__ == "2024.12"
    missing = [n for n in NAMES if not hasattr(pf, n)]
    assert not missing, missing
    assert set(pf.__all__) <= set(dir(pf))


def test_array_namespace(xdev):
    x = pf.zeros((2,), device=xdev)
    assert x.__array_namespace__() is pf
    assert x.__array_namespace__(api_version="2024.12") is pf
    assert x.__array_namespace__(api_version=None) is pf


def test_info_capabilities_and_devices():
    info = pf.__array_namespace_info__()
    assert info.capabilities() == {
        "boolean indexing": True,
        "data-dependent shapes": True,
        "max dimensions": 32,
    }
    devices = info.devices()
    assert devices[0] == "cpu"
    assert [str(d) for d in devices[1:]] == [f"cuda:{i}" for i in range(pf.cuda.device_count())]
    assert info.default_device() == pf.get_default_device() == "cpu"


def test_info_dtypes():
    info = pf.__array_namespace_info__()
    everything = info.dtypes()
    standard = [n for n in DTYPE_NAMES if n != "bfloat16"]  # bfloat16 is not an array API dtype
    assert list(everything) == standard
    assert all(everything[n] == getattr(pf, n) for n in standard)
    assert set(info.dtypes(kind="real floating")) == set(FLOAT_NAMES) - {"bfloat16"}
    assert set(info.dtypes(kind="integral")) == set(INT_NAMES)
    assert set(info.dtypes(kind="bool")) == {"bool"}
    assert set(info.dtypes(kind=("bool", "unsigned integer"))) == {
        "bool",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
    }
    assert info.dtypes(kind="complex floating") == {}
    assert info.dtypes(device="cpu") == everything
    defaults = info.default_dtypes()
    assert defaults["real floating"] == pf.float64
    assert defaults["integral"] == defaults["indexing"] == pf.int64
    assert info.default_dtypes(device="cpu") == defaults


def test_from_dlpack_on_the_cpu(rng):
    a = rng.standard_normal((3, 4))
    t = pf.from_dlpack(a)
    assert t.device == "cpu"
    np.testing.assert_array_equal(t.numpy(), a)
    a[0, 0] = 42.0
    assert float(t[0, 0]) == 42.0  # shares memory
    assert pf.from_dlpack(t)._shares_memory(t)


@pytest.mark.cuda
def test_info_lists_cuda_devices():
    devices = pf.__array_namespace_info__().devices()
    assert "cuda:0" in [str(d) for d in devices]
    assert pf.zeros((1,), device=devices[1]).device == devices[1]


def test_every_public_name_is_documented():
    undocumented = [
        n for n in pf.__all__ if callable(getattr(pf, n)) and not (getattr(pf, n).__doc__ or "")
    ]
    assert not undocumented, undocumented


def test_default_device_arguments():
    previous = pf.get_default_device()
    try:
        pf.set_default_device("cpu")
        assert pf.get_default_device() == "cpu"
        assert pf.zeros(2).device == "cpu"
        for bad in ("tpu", "cuda:x", "cpu:1"):
            with pytest.raises(ValueError, match=bad):
                pf.set_default_device(bad)
        with pytest.raises(TypeError):
            pf.set_default_device(3)
        assert pf.get_default_device() == "cpu"  # unchanged by the failures
    finally:
        pf.set_default_device(previous)

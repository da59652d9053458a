"""Zero-copy interop on CUDA with PyTorch and CuPy (both on the GPU machine): DLPack both ways
and the CUDA array interface, checked for values, the same device pointer, lifetimes (the
producer deleted first) and stream ordering (a long kernel on the producer's stream, then a
read on the consumer's). Marked ``cuda``: they fail, not skip, under ``POCAFLOW_REQUIRE_CUDA=1``
without a GPU; a missing PyTorch or CuPy skips only the tests that need it."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import pocaflow as pf

pytestmark = pytest.mark.cuda

DTYPES = ["bool", "int8", "int32", "int64", "uint8", "float16", "bfloat16", "float32", "float64"]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


def pf_array(rng, shape, dtype: str):
    """A CUDA array of random values of ``dtype`` (never zeros)."""
    x = pf.asarray(rng.standard_normal(shape) * 10 + 0.5, device="cuda")
    if dtype == "bool":
        return x > 0
    return pf.astype(x, getattr(pf, dtype))


def host(t) -> np.ndarray:
    """A pocaflow array's values as float64 NumPy (bfloat16 included)."""
    return pf.astype(t, pf.float64).numpy() if t.dtype != pf.bool else t.numpy()


def pf_ptr(t) -> int:
    """The device address of a pocaflow array's first element (through a torch view)."""
    import torch

    return torch.from_dlpack(t).data_ptr()


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_views_pocaflow_memory(rng, torch, dtype):
    p = pf_array(rng, (33, 17), dtype)
    t = torch.from_dlpack(p)
    assert t.device.type == "cuda" and tuple(t.shape) == (33, 17)
    assert str(t.dtype) == f"torch.{dtype}"
    want = host(p)
    np.testing.assert_array_equal(
        t.double().cpu().numpy() if dtype != "bool" else t.cpu().numpy(), want
    )
    if dtype != "bfloat16":
        assert t.data_ptr() == p.__cuda_array_interface__["data"][0]
    # Writes by torch are pocaflow's.
    t[0, 0] = t[1, 1]
    assert host(p)[0, 0] == want[1, 1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_pocaflow_views_torch_memory(rng, torch, dtype):
    src = torch.from_numpy(rng.standard_normal((40, 24)) * 10 + 0.5).cuda()
    t = (src > 0) if dtype == "bool" else src.to(getattr(torch, dtype))
    p = pf.from_dlpack(t)
    assert p.device == "cuda:0" and p.dtype == getattr(pf, dtype)
    want = t.cpu().numpy() if dtype == "bool" else t.double().cpu().numpy()
    np.testing.assert_array_equal(host(p), want)
    if dtype == "bool":
        return  # booleans are copied (each byte checked)
    assert pf_ptr(p) == t.data_ptr()
    p[2, 3] = 1
    assert t[2, 3].item() == 1


@pytest.mark.parametrize(
    "view",
    [lambda t: t.t(), lambda t: t[1:, ::3], lambda t: t[:, 5], lambda t: t[7, 2]],
    ids=["transposed", "stepped", "column", "scalar"],
)
def test_strided_torch_views_keep_their_strides(rng, torch, view):
    base = torch.from_numpy(rng.standard_normal((12, 30))).cuda()
    t = view(base)
    p = pf.from_dlpack(t)
    assert p.strides == tuple(t.stride())
    np.testing.assert_array_equal(p.numpy(), t.cpu().numpy())
    back = torch.from_dlpack(pf.flip(p, axis=0) if p.ndim else p)
    if p.ndim:
        np.testing.assert_array_equal(back.cpu().numpy(), np.flip(t.cpu().numpy(), 0))


def test_pocaflow_keeps_torch_memory_alive_and_ordered(rng, torch):
    n = 4096
    a = rng.standard_normal((n, n)).astype(np.float32)
    t = torch.from_numpy(a).cuda()
    p = pf.from_dlpack(t)
    addr = t.data_ptr()
    del t  # the capsule keeps torch's memory
    gc.collect()
    # Queue long work that reads the memory, then drop pocaflow's last reference: torch must
    # not get the memory back before that work is done.
    y = p
    for _ in range(6):
        y = pf.matmul(p, y) * (1.0 / n)
    s = pf.sum(y[:, :1])
    del p, y
    gc.collect()
    junk = [torch.full((n, n), float("nan"), device="cuda") for _ in range(4)]
    ref = a.astype(np.float64)
    r = ref
    for _ in range(6):
        r = ref @ r / n
    assert float(s) == pytest.approx(float(r[:, 0].sum()), rel=1e-3, abs=1e-3)
    assert addr > 0 and len(junk) == 4


def test_torch_keeps_pocaflow_memory_alive(rng, torch):
    p = pf_array(rng, (1024, 1024), "float32")
    want = p.numpy()
    t = torch.from_dlpack(p)
    del p
    gc.collect()
    junk = [pf.full((1024, 1024), float("nan"), device="cuda") for _ in range(4)]
    np.testing.assert_array_equal(t.cpu().numpy(), want)
    assert len(junk) == 4


def test_torch_reads_after_pocaflows_long_kernel(rng, torch):
    n = 4096
    a = pf.asarray(rng.standard_normal((n, n)).astype(np.float32), device="cuda")
    pf.cuda.synchronize()
    y = a
    for _ in range(8):
        y = pf.matmul(a, y) * 0.0 + 1.0  # long work on pocaflow's stream, ending in ones
    t = torch.from_dlpack(y)  # torch's current stream waits for it
    assert t.sum().item() == n * n


def test_pocaflow_reads_after_torchs_long_kernel(rng, torch):
    n = 4096
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        a = torch.randn(n, n, device="cuda")
        torch.cuda.synchronize()
        y = a
        for _ in range(8):
            y = (a @ y) * 0.0 + 1.0  # long work on torch's side stream, ending in ones
        p = pf.from_dlpack(y)  # pocaflow's stream waits for the side stream
    assert float(pf.sum(p)) == n * n


def test_the_export_stream_argument_is_checked(rng, torch):
    p = pf_array(rng, (4,), "float32")
    with pytest.raises(ValueError, match="0 is ambiguous"):
        p.__dlpack__(stream=0)
    assert p.__dlpack_device__() == (2, 0)
    s = torch.cuda.Stream()
    t = torch.from_dlpack(p.__dlpack__(stream=s.cuda_stream, max_version=(1, 0)))
    np.testing.assert_array_equal(t.cpu().numpy(), p.numpy())
    host_copy = np.from_dlpack(p, device="cpu", copy=True)
    np.testing.assert_array_equal(host_copy, p.numpy())
    with pytest.raises(BufferError, match="without a copy"):
        p.__dlpack__(dl_device=(1, 0), copy=False)


def test_from_dlpack_to_another_device(rng, torch):
    t = torch.from_numpy(rng.standard_normal(10)).cuda()
    c = pf.from_dlpack(t, device="cpu")
    assert c.device == "cpu"
    np.testing.assert_array_equal(c.numpy(), t.cpu().numpy())
    with pytest.raises(ValueError):
        pf.from_dlpack(t, device="cpu", copy=False)
    g = pf.from_dlpack(torch.from_numpy(rng.standard_normal(3)), device="cuda")
    assert g.device == "cuda:0"
    assert pf.asarray(t).device == "cuda:0"


@pytest.mark.parametrize("dtype", ["int16", "uint8", "float16", "float32", "float64"])
def test_cupy_round_trips(rng, cupy, dtype):
    p = pf_array(rng, (16, 9), dtype)
    c = cupy.from_dlpack(p)
    assert c.data.ptr == p.__cuda_array_interface__["data"][0]
    np.testing.assert_array_equal(cupy.asnumpy(c), p.numpy())
    via_cai = cupy.asarray(p)
    assert via_cai.data.ptr == c.data.ptr
    back = pf.from_dlpack(c.T)
    np.testing.assert_array_equal(back.numpy(), p.numpy().T)
    c[0, 0] = 3
    assert p[0, 0].item() == 3


def test_the_cuda_array_interface(rng, torch):
    p = pf_array(rng, (6, 10), "float32")
    cai = p.__cuda_array_interface__
    assert cai["version"] == 3 and cai["typestr"] == "<f4" and cai["shape"] == (6, 10)
    assert cai["strides"] is None
    assert cai["stream"] == pf.cuda.current_stream().cuda_stream
    tv = p.T.__cuda_array_interface__
    assert tv["strides"] == (4, 40) and tv["data"] == cai["data"]
    assert not hasattr(pf.astype(p, pf.bfloat16), "__cuda_array_interface__")
    with pytest.raises(BufferError, match="no host buffer"):
        memoryview(p)
    assert np.asarray(p).shape == (6, 10)  # a copy, through __array__

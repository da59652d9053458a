"""``pf.distributed.sharded_matmul``: on the CPU and one GPU (where it is plain matmul, the
host operands uploaded in chunks while the GPU multiplies), against NumPy in float64; the
argument errors; and, on a machine with several GPUs, both splits across them."""

import numpy as np
import pytest

import pocaflow as pf
from helpers import check_matmul, rel_error
from pocaflow.distributed import sharded_matmul
from pocaflow.distributed._sharded import _blocks, _chunks

SPLITS = ["rows", "k"]


def operands(rng, m, k, n, dtype=np.float32):
    return (
        rng.standard_normal((m, k)).astype(dtype),
        rng.standard_normal((k, n)).astype(dtype),
    )


def host(x):
    return x.numpy() if isinstance(x, pf.Tensor) else x


def test_blocks_follow_torch_chunk():
    assert _blocks(10, 4) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert _blocks(5, 4) == [(0, 2), (2, 4), (4, 5), (5, 5)]
    assert _blocks(0, 3) == [(0, 0)] * 3
    for m in range(0, 40):
        for parts in range(1, 6):
            b = _blocks(m, parts)
            assert len(b) == parts and b[0][0] == 0 and b[-1][1] == m
            assert all(lo <= hi and hi == nxt for (lo, hi), (nxt, _) in zip(b, b[1:]))


def test_automatic_chunks():
    # 16 MiB of rows per chunk, at most 8, each of at least 256 rows.
    assert _chunks(4096, 4096 * 4, None) == [(i * 1024, (i + 1) * 1024) for i in range(4)]
    assert len(_chunks(16384, 16384 * 4, None)) == 8
    assert _chunks(300, 1 << 20, None) == [(0, 300)]
    assert _chunks(10, 4, 3) == [(0, 4), (4, 8), (8, 10)]
    assert _chunks(2, 4, 5) == [(0, 1), (1, 2)]
    assert _chunks(0, 4, None) == []


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("gather", [True, False])
def test_one_cpu_device_is_plain_matmul(rng, split, gather):
    a, b = operands(rng, 37, 23, 19)
    got = sharded_matmul(a, b, devices=["cpu"], split=split, gather=gather)
    if not gather:
        assert isinstance(got, list) and len(got) == 1
        got = got[0]
    assert got.device == "cpu"
    check_matmul(got.numpy(), a, b)
    np.testing.assert_array_equal(got.numpy(), pf.matmul(a, b).numpy())


def test_cpu_operands_of_every_kind(rng):
    a, b = operands(rng, 12, 7, 5, np.float64)
    want = a @ b
    for x, y in [(a, b), (a.tolist(), b.tolist()), (pf.asarray(a), pf.asarray(b))]:
        got = sharded_matmul(x, y, devices=["cpu"]).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    mixed = sharded_matmul(a.astype(np.float32), b, devices=["cpu"])
    assert mixed.dtype == pf.float64


def test_errors(rng):
    a, b = operands(rng, 4, 3, 2)
    with pytest.raises(ValueError, match="split must be 'rows' or 'k'"):
        sharded_matmul(a, b, devices=["cpu"], split="cols")
    with pytest.raises(ValueError, match=r"shapes \(4, 3\) and \(4, 3\) do not match"):
        sharded_matmul(a, a, devices=["cpu"])
    with pytest.raises(ValueError, match="a must be 2-D, got shape \\(3,\\)"):
        sharded_matmul(a[0], b, devices=["cpu"])
    with pytest.raises(ValueError, match="b must be 2-D"):
        sharded_matmul(a, b[None], devices=["cpu"])
    with pytest.raises(ValueError, match="devices is empty"):
        sharded_matmul(a, b, devices=[])
    with pytest.raises(ValueError, match="repeat a device"):
        sharded_matmul(a, b, devices=["cpu", "cpu"])
    with pytest.raises(ValueError, match="must all be CUDA devices"):
        sharded_matmul(a, b, devices=["cpu", "cuda:0"])
    with pytest.raises(ValueError, match="chunks must be at least 1"):
        sharded_matmul(a, b, devices=["cpu"], chunks=0)


@pytest.mark.skipif(pf.cuda.is_available(), reason="a GPU is usable")
def test_no_gpu_needs_devices():
    a = np.ones((2, 2), np.float32)
    with pytest.raises(RuntimeError, match="devices=None needs CUDA devices"):
        sharded_matmul(a, a)


# --- one GPU ------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("chunks", [None, 1, 3, 7])
@pytest.mark.parametrize("shape", [(1500, 300, 200), (513, 64, 1), (5, 1000, 3)])
def test_one_gpu_float32(rng, split, chunks, shape):
    a, b = operands(rng, *shape)
    # The result reuses freed memory: poison it first.
    pf.full((shape[0], shape[2]), float("nan"), dtype=pf.float32, device="cuda")
    got = sharded_matmul(a, b, devices=[0], split=split, chunks=chunks)
    assert got.device == "cuda:0" and got.dtype == pf.float32 and got.shape == shape[::2]
    check_matmul(got.numpy(), a, b)
    assert rel_error(got.numpy(), a, b) <= 2e-6


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_one_gpu_dtypes(rng, dtype):
    a64, b64 = operands(rng, 700, 96, 40, np.float64)
    a = pf.asarray(a64).astype(getattr(pf, dtype))
    b = pf.asarray(b64).astype(getattr(pf, dtype))
    got = sharded_matmul(a, b, devices=["cuda:0"], chunks=3)
    assert got.dtype == getattr(pf, dtype) and got.device == "cuda:0"
    plain = pf.matmul(a.to_device("cuda"), b.to_device("cuda"))
    ra, rb = a.astype(pf.float64).numpy(), b.astype(pf.float64).numpy()
    tol = {"float16": 2e-3, "bfloat16": 1e-2, "float64": 1e-15}[dtype]
    assert rel_error(got.astype(pf.float64).numpy(), ra, rb) <= tol
    np.testing.assert_allclose(
        got.astype(pf.float64).numpy(), plain.astype(pf.float64).numpy(), rtol=tol, atol=tol
    )


@pytest.mark.cuda
def test_one_gpu_operands_anywhere(rng):
    a, b = operands(rng, 600, 50, 30)
    want = sharded_matmul(a, b, devices=[0]).numpy()
    cases = [
        (pf.asarray(a), pf.asarray(b)),
        (pf.asarray(a, device="cuda"), pf.asarray(b, device="cuda")),
        (np.asfortranarray(a), b.T.copy().T),
        (pf.asarray(a, device="cuda")[::1], b),
    ]
    for x, y in cases:
        got = sharded_matmul(x, y, devices=[0], chunks=4)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-5)
    parts = sharded_matmul(a, b, devices=[0], gather=False)
    assert len(parts) == 1 and parts[0].device == "cuda:0"
    np.testing.assert_allclose(parts[0].numpy(), want, rtol=1e-6, atol=1e-5)
    every = sharded_matmul(a, b)  # devices=None: every GPU
    assert every.device == "cuda:0"
    np.testing.assert_allclose(every.numpy(), want, rtol=1e-6, atol=1e-5)


@pytest.mark.cuda
def test_one_gpu_empty_shapes():
    for m, k, n in [(0, 4, 3), (5, 0, 3), (5, 4, 0)]:
        got = sharded_matmul(np.ones((m, k), np.float32), np.ones((k, n), np.float32), [0])
        assert got.shape == (m, n)
        np.testing.assert_array_equal(got.numpy(), np.zeros((m, n), np.float32))


@pytest.mark.cuda
def test_one_gpu_follows_the_current_stream(rng):
    """On a side stream: the operand made there is read after it is written, and the result
    read after the stream's work, with no synchronization in between."""
    a, b = operands(rng, 2048, 512, 256)
    s = pf.cuda.Stream(0)
    with pf.cuda.stream(s):
        ga = pf.asarray(a, device="cuda")
        for _ in range(20):  # keeps s busy, so a racing read would see a stale ga
            ga = ga * 1.0
        got = sharded_matmul(ga, b, devices=[0], chunks=4)
        out = got + 0.0
    check_matmul(out.numpy(), a, b)


# --- several GPUs ---------------------------------------------------------------------------------


def needs_gpus(count: int):
    have = pf.cuda.device_count()
    return pytest.mark.skipif(have < count, reason=f"needs {count} CUDA devices, found {have}")


@pytest.mark.cuda
@needs_gpus(2)
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_several_gpus(rng, split, dtype):
    devices = list(range(pf.cuda.device_count()))
    a, b = operands(rng, 1031, 517, 77, np.float64)
    a = a.astype(dtype)
    b = b.astype(dtype)
    got = sharded_matmul(a, b, devices=devices, split=split, chunks=3)
    assert got.device == "cuda:0" and got.dtype == getattr(pf, dtype)
    tol = 2e-6 if dtype == "float32" else 2e-3
    assert rel_error(got.astype(pf.float64).numpy(), a, b) <= tol
    parts = sharded_matmul(a, b, devices=devices, split=split, gather=False)
    assert [p.device for p in parts] == [f"cuda:{d}" for d in devices]
    joined = np.concatenate([p.astype(pf.float64).numpy() for p in parts])
    assert [p.shape[0] for p in parts] == [hi - lo for lo, hi in _blocks(1031, len(devices))]
    assert rel_error(joined, a, b) <= tol

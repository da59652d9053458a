"""The Tensor API: construction from NumPy in every order, round trips, attributes, views."""

import numpy as np
import pytest

import pocaflow as pf


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_round_trip_keeps_values_and_order(device, dtype, rng):
    c = rng.standard_normal((5, 7)).astype(dtype)
    f = np.asfortranarray(c)
    for arr, flag in ((c, "C_CONTIGUOUS"), (f, "F_CONTIGUOUS")):
        t = pf.Tensor.from_array(arr, device=device)
        back = t.numpy()
        assert back.dtype == dtype and back.flags[flag]
        np.testing.assert_array_equal(back, arr)


def test_strided_and_reversed_arrays(device, rng):
    big = rng.standard_normal((9, 12))
    for arr in (
        big[1::2, ::3],
        big[::-1],
        big[:, ::-2],
        big.T[2:5],
        np.broadcast_to(big[0], (3, 12)),
    ):
        t = pf.Tensor.from_array(arr, device=device)
        assert t.shape == arr.shape
        np.testing.assert_array_equal(t.numpy(), arr)
        assert t.numpy().flags.c_contiguous or t.numpy().flags.f_contiguous


def test_attributes(device):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = pf.Tensor.from_array(a, device=device)
    assert t.shape == (2, 3, 4)
    assert t.ndim == 3
    assert t.dtype == pf.float32 and t.dtype == "float32" and t.dtype == np.float32
    assert t.strides == (12, 4, 1)  # in elements, as in PyTorch
    assert t.T.shape == (4, 3, 2) and t.T.strides == (1, 4, 12)
    np.testing.assert_array_equal(t.T.numpy(), a.T)
    np.testing.assert_array_equal(t.transpose(1, 0, 2).numpy(), a.transpose(1, 0, 2))
    assert str(t.device).startswith(device)
    assert len(t) == 2
    r = repr(pf.Tensor.from_array(np.array([[1.5, 2.0]])))
    assert "1.5" in r and "float64" in r and "cpu" in r


def test_tensor_from_data_and_dtype_argument(device):
    t = pf.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert t.dtype == pf.float64 and t.shape == (2, 2)
    t32 = pf.tensor([[1.0, 2.0]], dtype=pf.float32, device=device)
    assert t32.dtype == pf.float32
    x = np.array([1.0, 1.0 + 2**-10, 3.14159], dtype=np.float32)
    bf = pf.Tensor.from_array(x, device=device, dtype="bfloat16")
    assert bf.dtype == pf.bfloat16
    # bfloat16 keeps 8 significant bits: 1 + 2^-10 rounds to 1, pi to 3.140625.
    np.testing.assert_array_equal(bf.numpy(), np.array([1.0, 1.0, 3.140625], dtype=np.float32))


def bf16_round_to_nearest_even(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (as float32), on their bits: the reference."""
    u = x.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, r)


def test_half_conversions_round_to_nearest_even(device, rng):
    # Random float32 values, and values just below, at and just above bfloat16 ties.
    high = rng.integers(0x0080, 0x7F00, size=4000, dtype=np.uint32) << 16
    low = np.resize(np.array([0x7FFF, 0x8000, 0x8001, 0x0001, 0xFFFF], dtype=np.uint32), 4000)
    x = np.concatenate(
        [rng.standard_normal(4000, dtype=np.float32), (high | low).view(np.float32)]
    ).reshape(80, 100)
    x[::2] *= -1
    with np.errstate(over="ignore"):  # large values become inf in float16, as they should
        f16 = x.astype(np.float16).astype(np.float32)
    refs = {"float16": f16, "bfloat16": bf16_round_to_nearest_even(x)}
    for dtype, ref in refs.items():
        for t in (
            pf.Tensor.from_array(x, device=device, dtype=dtype),
            pf.Tensor.from_array(x, device=device).to(dtype=dtype),
        ):
            assert t.dtype == dtype
            np.testing.assert_array_equal(t.to(dtype="float32").numpy(), ref)


def test_numpy_order_argument(device, rng):
    a = rng.standard_normal((4, 6))
    t = pf.Tensor.from_array(a, device=device)
    assert t.numpy(order="F").flags.f_contiguous
    np.testing.assert_array_equal(t.numpy(order="F"), a)
    assert t.T.numpy(order="C").flags.c_contiguous
    with pytest.raises(ValueError, match="order"):
        t.numpy(order="X")


def test_contiguous_and_copy(device, rng):
    a = rng.standard_normal((5, 3))
    t = pf.Tensor.from_array(a, device=device).T
    c = t.contiguous()
    assert c.strides == (5, 1)
    np.testing.assert_array_equal(c.numpy(), a.T)
    dst = pf.Tensor.from_array(np.zeros((3, 5)), device=device)
    dst.copy_(t)
    np.testing.assert_array_equal(dst.numpy(), a.T)
    dst.copy_(pf.Tensor.from_array(np.arange(5.0), device=device))  # broadcast source
    np.testing.assert_array_equal(dst.numpy(), np.broadcast_to(np.arange(5.0), (3, 5)))
    with pytest.raises(ValueError, match="broadcast"):
        dst.copy_(pf.Tensor.from_array(np.ones((2, 5)), device=device))


def test_dtype_objects():
    assert pf.float32 != pf.float64
    assert repr(pf.bfloat16) == "pocaflow.bfloat16"
    assert pf.float16.itemsize == 2 and pf.float64.itemsize == 8
    # Equal to their names, and hashed like them.
    assert {pf.float32: 1}.get("float32") == 1 and {"bfloat16": 2}.get(pf.bfloat16) == 2
    cpu = pf.Tensor.from_array(np.ones(1)).device
    assert cpu == "cpu" and {"cpu": 3}.get(cpu) == 3


def test_show_config_names_the_backend(capsys):
    info = pf.show_config()
    assert info["cpu_kernel"] in ("avx512", "avx2", "neon", "portable")
    assert info["cpu_backend"] in ("pocaflow", "openblas", "accelerate")
    assert info["threads"] >= 1
    assert "cpu_kernel" in capsys.readouterr().out


@pytest.mark.skipif(pf.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_cuda_calls_without_cuda_say_what_is_missing():
    reason = pf.cuda.unavailable_reason()
    assert reason and "CUDA" in reason
    assert pf.cuda.device_count() == 0
    for call in (
        lambda: pf.cuda.Stream(),
        lambda: pf.cuda.synchronize(),
        lambda: pf.cuda.memory_stats(),
        lambda: pf.zeros((2,), device="cuda"),
        lambda: pf.Tensor.from_array(np.ones(2)).cuda(),
    ):
        with pytest.raises(RuntimeError, match="CUDA"):
            call()

"""pocaflow.random: reproducible streams (same seed, same numbers; the counter advances),
the same numbers on the CPU and on CUDA, and the distributions on 10^6 samples (mean, variance
and a Kolmogorov-Smirnov statistic computed with NumPy)."""

import math

import numpy as np
import pytest

import pocaflow as pf

N = 1_000_000
#: The Kolmogorov-Smirnov statistic times sqrt(n) exceeds 1.95 with probability 0.001.
KS_LIMIT = 1.95 / math.sqrt(N)


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7, far below KS_LIMIT)."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return s * (1.0 - poly * np.exp(-a * a))


def ks_statistic(samples: np.ndarray, cdf) -> float:
    x = np.sort(samples.astype(np.float64))
    f = cdf(x)
    n = x.size
    upper = np.arange(1, n + 1) / n - f
    lower = f - np.arange(0, n) / n
    return float(max(upper.max(), lower.max()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_distribution(dtype, xdev):
    g = pf.random.Generator(2026)
    x = g.normal((N,), mean=1.5, std=2.0, dtype=dtype, device=xdev).numpy()
    assert x.dtype == dtype and x.shape == (N,)
    assert abs(x.mean() - 1.5) < 5 * 2.0 / math.sqrt(N)
    assert abs(x.var() / 4.0 - 1.0) < 5 * math.sqrt(2.0 / N)
    z = (x.astype(np.float64) - 1.5) / 2.0
    assert ks_statistic(z, lambda v: 0.5 * (1.0 + erf(v / math.sqrt(2.0)))) < KS_LIMIT
    assert np.isfinite(x).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_distribution(dtype, xdev):
    g = pf.random.Generator(11)
    x = g.uniform((1000, 1000), low=-2.0, high=3.0, dtype=dtype, device=xdev).numpy()
    assert x.dtype == dtype and x.shape == (1000, 1000)
    assert x.min() >= -2.0 and x.max() < 3.0
    assert abs(x.mean() - 0.5) < 5 * 5.0 / math.sqrt(12 * N)
    assert abs(x.var() / (25.0 / 12.0) - 1.0) < 5 * math.sqrt(0.8 / N)
    assert ks_statistic(x.ravel(), lambda v: (v + 2.0) / 5.0) < KS_LIMIT


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_floats(dtype, xdev):
    g = pf.random.Generator(5)
    u = g.uniform((N,), dtype=dtype, device=xdev)
    n = g.normal((N,), dtype=dtype, device=xdev)
    assert u.dtype == dtype and n.dtype == dtype
    u, n = u.numpy().astype(np.float64), n.numpy().astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1.0) < 0.01


@pytest.mark.parametrize(
    "dtype, low, high",
    [("int64", 0, 10), ("int8", -128, 128), ("uint8", 0, 256), ("int32", -5, 5), ("uint64", 3, 4)],
)
def test_integers(dtype, low, high, xdev):
    g = pf.random.Generator(99)
    x = g.integers(low, high, (N,), dtype=dtype, device=xdev)
    assert x.dtype == dtype and x.shape == (N,)
    v = x.numpy().astype(np.int64)
    assert v.min() >= low and v.max() < high
    counts = np.bincount(v - low, minlength=high - low)
    assert (counts > 0).all()  # every value shows up
    expected = N / (high - low)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = high - low - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10


def test_integers_large_ranges(xdev):
    g = pf.random.Generator(3)
    x = g.integers(-(2**63), 2**63 - 1, (1000,), device=xdev).numpy()
    assert x.dtype == np.int64 and (x < 0).any() and (x > 0).any()
    y = g.integers(0, 2**64 - 1, (1000,), dtype="uint64", device=xdev).numpy()
    assert y.max() > 2**63
    full = g.integers(0, 2**64, (1000,), dtype="uint64", device=xdev).numpy()  # every value
    assert full.max() > 2**63 and full.dtype == np.uint64
    full = g.integers(-(2**63), 2**63, (1000,), device=xdev).numpy()
    assert (full < -(2**62)).any() and (full > 2**62).any()
    z = g.integers(5, shape=(100,), device=xdev).numpy()  # high=None: [0, low)
    assert z.min() >= 0 and z.max() < 5


def test_same_seed_same_stream(xdev):
    a, b = pf.random.Generator(42), pf.random.Generator(42)
    for _ in range(3):
        np.testing.assert_array_equal(
            a.normal((5, 7), device=xdev).numpy(), b.normal((5, 7), device=xdev).numpy()
        )
        np.testing.assert_array_equal(
            a.uniform(13, dtype="float32", device=xdev).numpy(),
            b.uniform(13, dtype="float32", device=xdev).numpy(),
        )
        np.testing.assert_array_equal(
            a.integers(0, 100, (3,), device=xdev).numpy(),
            b.integers(0, 100, (3,), device=xdev).numpy(),
        )
    assert a.counter == b.counter > 0


def test_counter_advances_and_streams_differ(xdev):
    g = pf.random.Generator(1)
    first = g.uniform((64,), device=xdev).numpy()
    c1 = g.counter
    second = g.uniform((64,), device=xdev).numpy()
    assert c1 > 0 and g.counter > c1
    assert not np.array_equal(first, second)
    other = pf.random.Generator(2).uniform((64,), device=xdev).numpy()
    assert not np.array_equal(first, other)
    assert g.seed == 1
    empty = g.normal((0, 3), device=xdev)
    assert empty.shape == (0, 3)
    assert g.normal((), device=xdev).shape == ()


def test_global_generator(xdev):
    pf.random.seed(123)
    a = pf.random.normal((10,), device=xdev).numpy()
    b = pf.random.uniform((10,), device=xdev).numpy()
    c = pf.random.integers(0, 9, (10,), device=xdev).numpy()
    pf.random.seed(123)
    np.testing.assert_array_equal(pf.random.normal((10,), device=xdev).numpy(), a)
    np.testing.assert_array_equal(pf.random.uniform((10,), device=xdev).numpy(), b)
    np.testing.assert_array_equal(pf.random.integers(0, 9, (10,), device=xdev).numpy(), c)
    g = pf.random.Generator(123)
    np.testing.assert_array_equal(g.normal((10,), device=xdev).numpy(), a)


def test_random_errors():
    g = pf.random.Generator(0)
    with pytest.raises(ValueError):
        g.integers(5, 5, (2,))
    with pytest.raises(ValueError):
        g.integers(0, 300, (2,), dtype="uint8")
    with pytest.raises(ValueError):
        g.integers(-1, 3, (2,), dtype="uint16")
    with pytest.raises(TypeError):
        g.integers(0, 3, (2,), dtype="float32")
    with pytest.raises(TypeError):
        g.normal((2,), dtype="int32")
    with pytest.raises(TypeError):
        g.uniform((2,), dtype=pf.bool)
    with pytest.raises(ValueError):
        g.normal((2,), std=-1.0)
    with pytest.raises(ValueError):
        g.normal((-2,))
    with pytest.raises(ValueError):
        pf.random.Generator(-1)
    with pytest.raises(ValueError):
        pf.random.Generator(2**64)


def assert_within_one_ulp(a: np.ndarray, b: np.ndarray, dtype: str) -> None:
    """Standard normals may differ in the last place between devices (their logarithms, sines
    and cosines round differently): one ulp of the result's dtype for the 32-bit kinds, which
    round a float64 value once, and four for float64, whose own last bits are the math
    libraries'. bfloat16 comes back as float32, so its ulp is 2**16 float32 ulps."""
    if dtype == "bfloat16":
        gap = np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))
        assert gap.max(initial=0) <= 1 << 16, gap.max()
    else:
        np.testing.assert_array_max_ulp(a, b, maxulp=4 if dtype == "float64" else 1)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_cpu_and_cuda_give_the_same_numbers(dtype):
    shape = (1000, 1001)  # odd: the last Philox block is partly used
    for seed in (0, 7, 2**64 - 1):
        cpu, gpu = pf.random.Generator(seed), pf.random.Generator(seed)
        for _ in range(2):  # the second call starts at the advanced counter
            u_c = cpu.uniform(shape, dtype=dtype).numpy()
            u_g = gpu.uniform(shape, dtype=dtype, device="cuda").numpy()
            np.testing.assert_array_equal(u_c, u_g)  # bit for bit
            z_c = cpu.normal(shape, dtype=dtype).numpy()
            z_g = gpu.normal(shape, dtype=dtype, device="cuda").numpy()
            assert_within_one_ulp(z_c, z_g, dtype)
            # mean + std * z: within the ulps of std * z (a result near 0 cancels digits).
            n_c = cpu.normal(shape, mean=0.5, std=3.0, dtype=dtype).numpy()
            n_g = gpu.normal(shape, mean=0.5, std=3.0, dtype=dtype, device="cuda").numpy()
            scale = np.abs(n_c.astype(np.float64) - 0.5) + 0.5
            eps = 2.0**-7 if dtype == "bfloat16" else float(np.finfo(n_c.dtype).eps)
            gap = np.abs(n_c.astype(np.float64) - n_g.astype(np.float64))
            assert (gap <= 4 * eps * scale).all(), (gap / scale).max()
            i_c = cpu.integers(-1000, 1000, shape).numpy()
            i_g = gpu.integers(-1000, 1000, shape, device="cuda").numpy()
            np.testing.assert_array_equal(i_c, i_g)
            assert cpu.counter == gpu.counter

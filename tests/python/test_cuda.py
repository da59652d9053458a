"""CUDA-only behaviour: dtype bounds, TF32, poisoned outputs, streams and events without hidden
synchronization, the caching allocator, transfers, device errors. Every CPU matmul test in
test_matmul.py also runs here through the ``device`` fixture."""

import time

import numpy as np
import pytest

import pocaflow as pf
from helpers import check_matmul, rel_error

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def strict_precision():
    pf.set_matmul_precision("highest")
    yield
    pf.set_matmul_precision("highest")


#: Relative error bounds of half-precision products against float64 on the rounded inputs.
HALF_BOUND = {"float16": 1e-3, "bfloat16": 5e-3}


def cuda(a, dtype=None):
    return pf.Tensor.from_array(a, device="cuda", dtype=dtype)


@pytest.mark.parametrize("n", [64, 257, 1024, 2048])
def test_strict_float32_relative_error(n, rng):
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    c = (cuda(a) @ cuda(b)).numpy()
    assert rel_error(c, a, b) <= 2e-6


def test_tf32_only_when_asked(rng):
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    strict = rel_error((cuda(a) @ cuda(b)).numpy(), a, b)
    pf.set_matmul_precision("high")
    assert pf.get_matmul_precision() == "high"
    tf32 = rel_error((cuda(a) @ cuda(b)).numpy(), a, b)
    assert strict <= 2e-6
    # TF32 keeps 10 mantissa bits: clearly worse than strict, still within its bound.
    assert 1e-5 < tf32 <= 1e-3, tf32
    with pytest.raises(ValueError, match="tf32x3"):
        pf.set_matmul_precision("medium")


@pytest.mark.parametrize("n", [256, 1024, 2048])
def test_tf32x3_accuracy(n, rng):
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    pf.set_matmul_precision("high")
    tf32 = rel_error((cuda(a) @ cuda(b)).numpy(), a, b)
    pf.set_matmul_precision("tf32x3")
    assert pf.get_matmul_precision() == "tf32x3"
    x3 = rel_error((cuda(a) @ cuda(b)).numpy(), a, b)
    # The split keeps about 21 bits: within 2e-5 of float64, far closer than one TF32 product.
    assert x3 <= 2e-5 and x3 <= tf32 / 20, (x3, tf32)


def _tf32x3_cases(rng):
    """(a, b) pairs of float32 views in every layout the product takes: C, F, transposed,
    sliced, reversed, batched, broadcast batch, vector operands."""
    g = lambda *s: rng.standard_normal(s, dtype=np.float32)  # noqa: E731
    return [
        (g(300, 200), g(200, 100)),
        (np.asfortranarray(g(300, 200)), np.asfortranarray(g(200, 100))),
        (g(200, 300).T, g(100, 200).T),
        (g(300, 400)[:, ::2], g(400, 100)[::2][::-1]),
        (g(4, 160, 200), g(4, 200, 96)),
        (g(3, 1, 160, 200), g(5, 200, 96)),
        (g(160, 200), g(6, 200, 96).transpose(0, 2, 1).copy().transpose(0, 2, 1)),
        (g(4000), g(4000, 300)),
        (g(300, 4000), g(4000)),
    ]


def test_tf32x3_layouts(rng):
    pf.set_matmul_precision("tf32x3")
    for a, b in _tf32x3_cases(rng):
        got = pf.matmul(cuda(a), cuda(b)).numpy()
        want = np.matmul(a.astype(np.float64), b.astype(np.float64))
        assert got.shape == want.shape
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err <= 2e-5, (a.shape, a.strides, b.shape, b.strides, err)


def test_tf32x3_linear_forward_and_backward(rng):
    x = rng.standard_normal((512, 300), dtype=np.float32)
    w = rng.standard_normal((200, 300), dtype=np.float32)
    bias = rng.standard_normal(200, dtype=np.float32)
    dy = rng.standard_normal((512, 200), dtype=np.float32)
    x64, w64, b64, dy64 = (v.astype(np.float64) for v in (x, w, bias, dy))
    pf.set_matmul_precision("tf32x3")
    y = pf.nn.linear(cuda(x), cuda(w), cuda(bias), activation="relu").numpy()
    want = np.maximum(x64 @ w64.T + b64, 0)
    assert np.abs(y - want).max() <= 2e-5 * np.abs(want).max()
    dx, dw, db = pf.nn.linear_backward(cuda(dy), cuda(x), cuda(w), cuda(bias))
    for got, ref in [(dx, dy64 @ w64), (dw, dy64.T @ x64), (db, dy64.sum(0))]:
        got = got.numpy()
        assert np.abs(got - ref).max() <= 2e-5 * np.abs(ref).max(), np.abs(got - ref).max()


def test_tf32x3_small_products_stay_strict_and_nan_propagates(rng):
    a = rng.standard_normal((64, 64), dtype=np.float32)
    b = rng.standard_normal((64, 64), dtype=np.float32)
    strict = (cuda(a) @ cuda(b)).numpy()
    pf.set_matmul_precision("tf32x3")
    # pocaflow's small-matmul kernel is deterministic: the same bits as under "highest".
    np.testing.assert_array_equal((cuda(a) @ cuda(b)).numpy(), strict)
    check_matmul(strict, a, b)
    a = rng.standard_normal((300, 256), dtype=np.float32)
    b = rng.standard_normal((256, 300), dtype=np.float32)
    a[7, 5] = np.nan
    got = (cuda(a) @ cuda(b)).numpy()
    assert np.isnan(got[7]).all() and not np.isnan(np.delete(got, 7, axis=0)).any()


def test_tf32x3_split_buffers_return_to_the_pool(rng):
    pf.set_matmul_precision("tf32x3")
    a, b = (
        cuda(rng.standard_normal((1024, 512), dtype=np.float32)),
        cuda(rng.standard_normal((512, 768), dtype=np.float32)),
    )
    for _ in range(8):  # the plan's candidates are timed over the first calls
        (a @ b).numpy()
    before = pf.cuda.memory_stats()
    for _ in range(5):
        (a @ b).numpy()
    after = pf.cuda.memory_stats()
    assert after["allocated_bytes"] == before["allocated_bytes"]
    assert after["driver_allocations"] == before["driver_allocations"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", [((300, 200), (200, 100)), ((4, 64, 96), (96, 80))])
def test_half_types(dtype, shape, rng):
    a = rng.standard_normal(shape[0], dtype=np.float32)
    b = rng.standard_normal(shape[1], dtype=np.float32)
    ta, tb = cuda(a, dtype=dtype), cuda(b, dtype=dtype)
    assert ta.dtype == dtype
    c = ta @ tb
    assert c.dtype == dtype
    # Reference on the rounded inputs, so the bound measures the product alone.
    ra, rb = ta.to(dtype="float32").numpy(), tb.to(dtype="float32").numpy()
    # The bound is 1e-2; float32 accumulation keeps both types well inside it (the
    # output's own rounding dominates: 2^-11 for float16, 2^-8 for bfloat16).
    assert rel_error(c.to(dtype="float32").numpy(), ra, rb) <= HALF_BOUND[dtype]
    if dtype == "float16":
        c16 = (cuda(a.astype(np.float16)) @ cuda(b.astype(np.float16))).numpy()
        assert c16.dtype == np.float16


@pytest.mark.parametrize("threshold", [None, 0])  # default routing; all cuBLASLt
def test_every_output_element_is_written(threshold, rng):
    default = pf.cuda.small_matmul_threshold()
    pf.cuda.set_small_matmul_threshold(default if threshold is None else threshold)
    try:
        for shape, k in [((64, 64), 40), ((3, 50, 70), 40), ((1000, 33), 40), ((600, 700), 300)]:
            a = rng.standard_normal(shape[:-1] + (k,), dtype=np.float32)
            b = rng.standard_normal((k, shape[-1]), dtype=np.float32)
            ta, tb = cuda(a), cuda(b)
            # Fill pooled memory with NaN and free it, so that the product's output (the next
            # block of that size) reuses it.
            poison = cuda(np.full(shape, np.nan, dtype=np.float32))
            del poison
            c = (ta @ tb).numpy()
            assert not np.isnan(c).any()
            check_matmul(c, a, b)
    finally:
        pf.cuda.set_small_matmul_threshold(default)


def test_matmul_returns_before_the_gpu_finishes(rng):
    n = 4096
    a = cuda(rng.standard_normal((n, n), dtype=np.float32))
    pf.cuda.synchronize()
    (a @ a).numpy()  # warm up: plans, workspace, pool
    start = time.perf_counter()
    outs = [a @ a for _ in range(20)]  # ~60 ms of GPU work at 50 TFLOP/s
    enqueue = time.perf_counter() - start
    done = pf.cuda.Event()
    done.record()
    assert not done.query(), "the GPU finished 20 4096^3 products before the host looked"
    assert enqueue < 0.03, f"enqueueing took {enqueue * 1e3:.1f} ms: something waited"
    done.synchronize()
    assert done.query()
    assert outs[-1].shape == (n, n)


def test_two_streams_ordered_by_an_event(rng):
    n = 2048
    a_np = rng.standard_normal((n, n), dtype=np.float32)
    b_np = rng.standard_normal((n, n), dtype=np.float32) / np.sqrt(n)
    s1, s2 = pf.cuda.Stream(), pf.cuda.Stream()
    with pf.cuda.stream(s1):
        assert pf.cuda.current_stream() == s1
        a, b = cuda(a_np), cuda(b_np)
        c = a @ b
        for _ in range(5):
            c = c @ b  # keep s1 busy
        ready = s1.record_event()
    assert pf.cuda.current_stream() != s1
    with pf.cuda.stream(s2):
        s2.wait_event(ready)
        d = c @ b
    got = d.numpy()
    want = a_np.astype(np.float64)
    for _ in range(7):
        want = want @ b_np.astype(np.float64)
    assert np.linalg.norm(got - want) / np.linalg.norm(want) <= 2e-5


def test_event_timing(rng):
    a = cuda(rng.standard_normal((2048, 2048), dtype=np.float32))
    start, end = pf.cuda.Event(enable_timing=True), pf.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        a @ a
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end)
    flops = 5 * 2 * 2048**3
    assert 0.05 < ms < 1000
    assert flops / (ms * 1e-3) > 1e12  # more than 1 TFLOP/s: the events bracket real work
    untimed = pf.cuda.Event()
    untimed.record()
    untimed.synchronize()
    with pytest.raises(RuntimeError, match="timing"):
        start.elapsed_time(untimed)


@pytest.mark.parametrize("n", [64, 256])  # pocaflow's small-matmul kernel, cuBLASLt
def test_fixed_shape_loop_makes_no_driver_allocation(n, rng):
    a = cuda(rng.standard_normal((n, n), dtype=np.float32))
    for _ in range(3):
        c = a @ a
    pf.cuda.synchronize()
    before = pf.cuda.memory_stats()
    for _ in range(2000):
        c = a @ a
    pf.cuda.synchronize()
    after = pf.cuda.memory_stats()
    assert after["driver_allocations"] == before["driver_allocations"]
    assert after["reserved_bytes"] == before["reserved_bytes"]
    assert after["cache_hits"] >= before["cache_hits"] + 2000
    assert c.shape == (n, n)


def test_small_products_skip_cublaslt_unless_told(rng):
    default = pf.cuda.small_matmul_threshold()
    assert default == 2**21
    a = rng.standard_normal((64, 128), dtype=np.float32)
    b = rng.standard_normal((128, 64), dtype=np.float32)
    ta, tb = cuda(a), cuda(b)
    pf.cuda.synchronize()
    requests = {}
    try:
        for threshold in (default, 0):
            pf.cuda.set_small_matmul_threshold(threshold)
            assert pf.cuda.small_matmul_threshold() == threshold
            # On a new stream, cuBLASLt's first call allocates that stream's workspace besides
            # the output; pocaflow's own kernel needs no workspace.
            with pf.cuda.stream(pf.cuda.Stream()):
                before = pf.cuda.memory_stats()
                c = ta @ tb
                after = pf.cuda.memory_stats()
                counts = ("cache_hits", "cache_misses")
                requests[threshold] = sum(after[k] - before[k] for k in counts)
                assert rel_error(c.numpy(), a, b) <= 2e-6
    finally:
        pf.cuda.set_small_matmul_threshold(default)
    assert requests == {default: 1, 0: 2}
    with pytest.raises(OverflowError):
        pf.cuda.set_small_matmul_threshold(-1)


def test_streams_share_a_bounded_set_of_workspaces(rng):
    a = cuda(rng.standard_normal((300, 300), dtype=np.float32))
    pf.cuda.synchronize()
    before = pf.cuda.memory_stats()["allocated_bytes"]
    for _ in range(16):
        with pf.cuda.stream(pf.cuda.Stream()):
            c = a @ a
    del c
    pf.cuda.synchronize()
    grown = pf.cuda.memory_stats()["allocated_bytes"] - before
    # At most eight cuBLASLt workspaces of 32 MiB stay, however many streams came and went.
    assert grown <= 8 * (32 << 20), grown


def test_empty_cache_returns_memory_and_stats_track_it(rng):
    big = cuda(rng.standard_normal((4096, 4096), dtype=np.float32))
    stats = pf.cuda.memory_stats()
    assert stats["allocated_bytes"] >= 64 << 20
    assert stats["peak_allocated_bytes"] >= stats["allocated_bytes"]
    del big
    pf.cuda.empty_cache()
    after = pf.cuda.memory_stats()
    assert after["reserved_bytes"] <= stats["reserved_bytes"] - (64 << 20)
    assert after["driver_frees"] > stats["driver_frees"]


def test_out_of_memory_is_a_memory_error():
    with pytest.raises(MemoryError, match="out of memory"):
        pf.zeros((1 << 40,), device="cuda")
    # The device still works afterwards.
    assert (pf.zeros((4,), device="cuda").numpy() == 0).all()


def test_transfers_and_views(rng):
    x = rng.standard_normal((300, 200))
    t = cuda(x)
    assert t.device == "cuda:0" and t.device.index == 0
    np.testing.assert_array_equal(t.numpy(), x)
    np.testing.assert_array_equal(t.cpu().numpy(), x)
    np.testing.assert_array_equal(t.T.numpy(), x.T)  # a strided view, downloaded
    np.testing.assert_array_equal(t.T.contiguous().numpy(), x.T)  # gathered by a kernel
    np.testing.assert_array_equal(t.transpose(1, 0).to("cpu").numpy(), x.T)
    back = pf.Tensor.from_array(x).cuda(0)
    np.testing.assert_array_equal(back.numpy(), x)
    dst = pf.zeros((200, 300), dtype="float64", device="cuda")
    dst.copy_(t.T)
    np.testing.assert_array_equal(dst.numpy(), x.T)
    dst.copy_(x.T)  # from a NumPy array
    np.testing.assert_array_equal(dst.numpy(), x.T)
    f = np.asfortranarray(x[::2, ::-3])
    np.testing.assert_array_equal(cuda(f).numpy(), f)
    assert cuda(f).numpy().flags.f_contiguous
    big = rng.standard_normal((3000, 5000), dtype=np.float32)  # several staging chunks
    np.testing.assert_array_equal(cuda(big).numpy(), big)


def test_device_errors(rng):
    a = cuda(np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="cpu.*cuda|cuda.*cpu"):
        pf.matmul(a, pf.Tensor.from_array(np.ones((2, 2))))
    with pytest.raises(RuntimeError, match="cuda:99"):
        pf.Tensor.from_array(np.ones(2), device="cuda:99")
    with pytest.raises(TypeError, match="float32"):
        f32 = cuda(np.ones((2, 2), dtype=np.float32))
        pf.matmul(a, f32, out=cuda(np.ones((2, 2), dtype=np.float32)))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_tuned_shapes_stay_correct(dtype, rng):
    # Large enough to be tuned: the first call uses the heuristic's choice and times the
    # other candidates; calls after those timings complete use the fastest.
    a = rng.standard_normal((2048, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 2048), dtype=np.float32)
    ta, tb = cuda(a, dtype=dtype), cuda(b, dtype=dtype)
    ra, rb = ta.to(dtype="float32").numpy(), tb.to(dtype="float32").numpy()
    bound = 2e-6 if dtype == "float32" else HALF_BOUND[dtype]
    for _ in range(3):
        c = (ta @ tb).to(dtype="float32").numpy()
        pf.cuda.synchronize()
        assert rel_error(c, ra, rb) <= bound


@pytest.mark.skipif(pf.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_peer_copies_between_devices(rng):
    x = rng.standard_normal((300, 200), dtype=np.float32)
    t0 = cuda(x)
    t1 = t0.to("cuda:1")
    assert t1.device == "cuda:1"
    np.testing.assert_array_equal(t1.numpy(), x)
    np.testing.assert_array_equal(t1.T.to("cuda:0").numpy(), x.T)  # strided, via a kernel
    c = (t1 @ t1.T).numpy()
    check_matmul(c, x, x.T)

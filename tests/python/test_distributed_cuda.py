"""NCCL collectives at world size 1 on the GPU machine: every collective and dtype against
NumPy, poisoned outputs, ordering on the current stream, one process driving a device list,
and the errors. (Two or more ranks need a machine with several GPUs: NCCL refuses two ranks
on one GPU.)"""

import subprocess
import sys

import numpy as np
import pytest

import pocaflow as pf
from helpers import rel_error
from pocaflow import distributed as dist
from pocaflow.distributed.run import free_port

pytestmark = pytest.mark.cuda

INTS = ["int8", "uint8", "int32", "uint32", "int64", "uint64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]
OPS = ["sum", "prod", "max", "min", "avg"]


@pytest.fixture
def world1():
    dist.init_process_group(
        "nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1, device=0
    )
    yield
    dist.destroy_process_group()


def run_python(tmp_path, source, timeout):
    """Runs ``source`` in a fresh interpreter (a hang fails at ``timeout`` instead of stopping
    the suite); returns the completed process and its stdout and stderr together."""
    script = tmp_path / "script.py"
    script.write_text(source)
    r = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout
    )
    return r, r.stdout + r.stderr


def sample(rng, dtype, shape=(37, 29)):
    """Random values exact in every dtype (small integers), as NumPy and on the GPU."""
    a = rng.integers(-60, 60, size=shape)
    if dtype.startswith("uint"):
        a = np.abs(a)
    ref = a.astype(np.float64)
    t = pf.asarray(a.astype(np.float64), device="cuda").astype(getattr(pf, dtype))
    return t, ref


def values(t):
    return t.astype(pf.float64).numpy()


def poisoned(shape, dtype):
    fill = float("nan") if dtype in FLOATS else 77
    return pf.full(shape, fill, dtype=getattr(pf, dtype), device="cuda")


def test_version_and_group(world1):
    assert dist.is_nccl_available() and dist.nccl_version() >= (2, 18, 0)
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    dist.barrier()


@pytest.mark.parametrize("dtype", INTS + FLOATS)
@pytest.mark.parametrize("op", OPS)
def test_all_reduce_and_reduce(world1, rng, dtype, op):
    if op == "avg" and dtype in INTS:
        with pytest.raises(TypeError, match="avg.*float"):
            dist.all_reduce(sample(rng, dtype)[0], op=op)
        return
    t, ref = sample(rng, dtype)
    dist.all_reduce(t, op=op)
    np.testing.assert_array_equal(values(t), ref)
    dist.reduce(t, dst=0, op=op)
    np.testing.assert_array_equal(values(t), ref)


@pytest.mark.parametrize("dtype", ["bool", "int16", "uint16"] + INTS + FLOATS)
def test_moves_of_every_dtype(world1, rng, dtype):
    t, ref = sample(rng, "int64" if dtype == "bool" else dtype, (5, 12))
    if dtype == "bool":
        t, ref = t > 0, (ref > 0).astype(np.float64)
    dist.broadcast(t, src=0)
    np.testing.assert_array_equal(values(t), ref)
    out = poisoned((5, 12), dtype)
    dist.all_gather_into_tensor(out, t)
    np.testing.assert_array_equal(values(out), ref)
    out = poisoned((60,), dtype)
    dist.all_to_all_single(out.reshape((5, 12)), t)
    np.testing.assert_array_equal(values(out).reshape(5, 12), ref)
    out = poisoned((5, 12), dtype)
    with dist.group():
        dist.send(t, dst=0)
        dist.recv(out, src=0)
    np.testing.assert_array_equal(values(out), ref)


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "int64"])
def test_reduce_scatter(world1, rng, dtype):
    t, ref = sample(rng, dtype, (8, 16))
    out = poisoned((128,), dtype)
    dist.reduce_scatter_tensor(out, t, op="sum")
    np.testing.assert_array_equal(values(out), ref.reshape(-1))


def test_ordered_on_the_current_stream(world1, rng):
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    s = pf.cuda.Stream()
    with pf.cuda.stream(s):
        x = pf.asarray(a, device="cuda")
        y = x @ x
        dist.all_reduce(y, op=dist.ReduceOp.MAX)
        dist.all_reduce(y, op="sum")
        got = y.numpy()
    assert rel_error(got, a, a) <= 2e-6


def test_large_all_reduce(world1, rng):
    a = rng.standard_normal(64 << 20, dtype=np.float32)
    t = pf.asarray(a, device="cuda")
    dist.all_reduce(t)
    np.testing.assert_array_equal(t.numpy(), a)


def test_errors(world1, rng):
    t, _ = sample(rng, "float32", (6, 4))
    with pytest.raises(RuntimeError, match="cpu.*cuda:0"):
        dist.all_reduce(pf.ones((3,)))
    with pytest.raises(ValueError, match="C-contiguous"):
        dist.all_reduce(t.T)
    with pytest.raises(TypeError, match="NCCL cannot reduce bool"):
        dist.all_reduce(t > 0)
    with pytest.raises(ValueError, match="unknown reduction op"):
        dist.all_reduce(t, op="mean")
    with pytest.raises(ValueError, match="output has 5 elements"):
        dist.all_gather_into_tensor(pf.empty((5,), dtype=pf.float32, device="cuda"), t)
    with pytest.raises(TypeError, match="output is float64 but the input is float32"):
        dist.all_gather_into_tensor(pf.empty((24,), dtype=pf.float64, device="cuda"), t)
    with pytest.raises(ValueError, match="src 1 is not a rank of this world of size 1"):
        dist.broadcast(t, src=1)
    with pytest.raises(RuntimeError, match="already initialized"):
        dist.init_process_group("nccl", init_method="tcp://127.0.0.1:1", rank=0, world_size=1)
    with pytest.raises(ValueError, match="backend must be 'nccl'"):
        dist.init_process_group("gloo")


def test_not_initialized():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="not initialized"):
        dist.all_reduce(pf.ones((3,), device="cuda"))


def test_communicator_of_devices(rng):
    comm = dist.Communicator(devices=[0])
    try:
        t, ref = sample(rng, "float32")
        comm.all_reduce([t])
        comm.broadcast([t])
        out = poisoned(t.shape, "float32")
        comm.all_gather([out], [t])
        np.testing.assert_array_equal(values(out), ref)
        out = poisoned(t.shape, "float32")
        comm.reduce_scatter([out], [t])
        np.testing.assert_array_equal(values(out), ref)
        with pytest.raises(ValueError, match="2 arrays for 1 devices"):
            comm.all_reduce([t, t])
    finally:
        comm.close()
    with pytest.raises(ValueError, match="name a device twice"):
        dist.Communicator(devices=[0, 0])
    with pytest.raises(ValueError, match="at least one device"):
        dist.Communicator(devices=[])


def test_destroy_with_abort(rng):
    dist.init_process_group(
        "nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1, device="cuda:0"
    )
    t, ref = sample(rng, "float32")
    dist.all_reduce(t)
    dist.destroy_process_group(abort=True)
    assert not dist.is_initialized()
    np.testing.assert_array_equal(values(t), ref)
    with pytest.raises(RuntimeError, match="not initialized"):
        dist.destroy_process_group()


#: A collective that does not complete within the group's timeout (here queued behind about
#: two seconds of matmuls; across GPUs, one waiting for a rank that died): the watchdog aborts
#: the communicator, the host's read returns, and the next call raises.
LATE = """
import time, pocaflow as pf
from pocaflow import distributed as dist
from pocaflow.distributed.run import free_port
init = f"tcp://127.0.0.1:{free_port()}"
dist.init_process_group("nccl", init, rank=0, world_size=1, device=0, timeout=0.5)
x = pf.ones((1024,), dtype=pf.float32, device="cuda")
a = pf.ones((8192, 8192), dtype=pf.float32, device="cuda")
for _ in range(100):
    a = pf.matmul(a, a) * 1e-4
t0 = time.monotonic()
dist.all_reduce(x)
float(x[0])
print(f"the read returned after {time.monotonic() - t0:.1f} s", flush=True)
try:
    dist.all_reduce(x)
except RuntimeError as e:
    print("raised:", e, flush=True)
dist.destroy_process_group()
print("cuda still works:", (pf.ones((4,), device="cuda") + 1).numpy().tolist(), flush=True)
"""


def test_watchdog_aborts_a_collective_past_the_timeout(tmp_path):
    r, out = run_python(tmp_path, LATE, timeout=120)
    assert r.returncode == 0 and "the read returned after" in r.stdout, out
    assert "raised: rank 0: all_reduce did not complete within the group's timeout of 0.5 s" in (
        r.stdout
    ), out
    assert "cuda still works: [2.0, 2.0, 2.0, 2.0]" in r.stdout, out


#: The watchdog's thread checks the communicator while the main thread calls collectives:
#: each side must take the communicator's lock without holding the GIL, or the two deadlock
#: (this ran into the subprocess's timeout before that was so).
BUSY = """
import threading, pocaflow as pf
from pocaflow import distributed as dist
from pocaflow.distributed.run import free_port
dist.init_process_group("nccl", f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1, device=0)
comm, stop = dist._group().comm, threading.Event()
def check():
    while not stop.is_set():
        comm.check()
threads = [threading.Thread(target=check) for _ in range(2)]
for t in threads:
    t.start()
x = pf.ones((64,), dtype=pf.float32, device="cuda")
for _ in range(3000):
    dist.all_reduce(x)
stop.set()
for t in threads:
    t.join()
print("sum:", float(x[0]), flush=True)
dist.destroy_process_group()
"""


def test_collectives_while_other_threads_check_the_communicator(tmp_path):
    r, out = run_python(tmp_path, BUSY, timeout=90)
    assert r.returncode == 0 and "sum: 1.0" in r.stdout, out


#: Rank 0 of a world of two whose rank 1 never starts NCCL: the non-blocking init is polled
#: and aborted at the timeout (a blocking init would wait forever); the process can make a
#: working communicator after.
MISSING = """
import time, pocaflow as pf
from pocaflow import _cuda_libs, _pocaflow
_cuda_libs.preload_nccl()
t0 = time.monotonic()
try:
    _pocaflow.nccl_communicator(0, 2, _pocaflow.nccl_unique_id(), 0, 1.0)
except RuntimeError as e:
    print(f"raised after {time.monotonic() - t0:.1f} s:", e, flush=True)
comm = _pocaflow.nccl_communicator(0, 1, _pocaflow.nccl_unique_id(), 0, 5.0)
x = pf.ones((8,), dtype=pf.float32, device="cuda")
comm.all_reduce(x, "sum")
comm.destroy()
print("then:", x.numpy().tolist()[:2], flush=True)
"""


def test_nccl_init_gives_up_on_a_rank_that_never_joins(tmp_path):
    r, out = run_python(tmp_path, MISSING, timeout=90)
    assert r.returncode == 0 and "then: [1.0, 1.0]" in r.stdout, out
    line = next(x for x in r.stdout.splitlines() if x.startswith("raised after"))
    assert float(line.split()[2]) < 10, out
    assert "did not complete within 1 s" in line and "aborted" in line, out

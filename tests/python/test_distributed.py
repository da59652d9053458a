"""pf.distributed's rendezvous without a GPU: the stores, the runner with several processes,
timeouts, a rank that never arrives, a port in use, bad arguments."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pocaflow as pf
from pocaflow.distributed import FileStore, TCPStore, rendezvous, store_barrier
from pocaflow.distributed._watchdog import Watchdog
from pocaflow.distributed.run import free_port

#: A worker: joins the group, checks a counter every rank adds to, and writes what it saw.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import pocaflow as pf
    init, out = sys.argv[1], sys.argv[2]
    kwargs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    store, rank, world = pf.distributed.rendezvous(init, timeout=20, **kwargs)
    total = store.add("total", rank + 1)
    pf.distributed.store_barrier(store, rank, world)
    seen = int(store.get("total"))
    store.set(f"done/{rank}", b"1")
    if rank == 0:
        store.wait([f"done/{r}" for r in range(world)])
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        env = os.environ.get("LOCAL_RANK")
        json.dump({"rank": rank, "world": world, "seen": seen, "env": env}, f)
    """
)


@pytest.fixture
def worker(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return path


def run(args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_script(tmp_path, source, nproc):
    """Runs ``source`` as a script under pocaflow's runner with ``nproc`` copies."""
    script = tmp_path / "script.py"
    script.write_text(source)
    return run(["-m", "pocaflow.distributed.run", "--nproc", str(nproc), str(script)])


def results(tmp_path, world):
    out = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    assert [o["rank"] for o in out] == list(range(world))
    return out


def test_tcp_store_operations():
    port = free_port()
    master = TCPStore("127.0.0.1", port, is_master=True, timeout=5)
    client = TCPStore("127.0.0.1", port, timeout=5)
    try:
        client.set("a", b"\x00\xffbytes")
        assert master.get("a") == b"\x00\xffbytes"
        assert master.add("n", 5) == 5 and client.add("n", -2) == 3
        assert client.check(["a", "n"]) and not client.check(["a", "missing"])
        threading.Timer(0.2, lambda: master.set("late", "x")).start()
        assert client.get("late") == b"x"
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="'never'"):
            client.get("never", timeout=0.3)
        assert time.monotonic() - t0 < 3
        with pytest.raises(TimeoutError, match=r"\['never'\]"):
            client.wait(["a", "never"], timeout=0.2)
    finally:
        client.close()
        master.close()


def test_tcp_store_port_in_use():
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        with pytest.raises(RuntimeError, match="port is in use"):
            TCPStore("127.0.0.1", s.getsockname()[1], is_master=True, timeout=1)


def test_tcp_store_without_a_server():
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="no pocaflow store answered .* is rank 0 running"):
        TCPStore("127.0.0.1", free_port(), timeout=0.3)
    assert time.monotonic() - t0 < 5


def test_file_store_operations(tmp_path):
    a = FileStore(str(tmp_path / "store"), timeout=5)
    b = FileStore(str(tmp_path / "store"), timeout=5)
    a.set("k", b"v1")
    a.set("k", b"v2")
    assert b.get("k") == b"v2"
    assert a.add("n", 3) == 3 and b.add("n", 4) == 7
    assert b.check(["k", "n"]) and not b.check(["x"])
    with pytest.raises(TimeoutError):
        b.get("x", timeout=0.1)


@pytest.mark.parametrize("nproc", [1, 4])
def test_runner_env_rendezvous(worker, tmp_path, nproc):
    runner = ["-m", "pocaflow.distributed.run", "--nproc", str(nproc)]
    r = run([*runner, str(worker), "env://", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    total = nproc * (nproc + 1) // 2
    for o in results(tmp_path, nproc):
        assert (o["world"], o["seen"], o["env"]) == (nproc, total, str(o["rank"]))


@pytest.mark.parametrize("scheme", ["tcp", "file"])
def test_explicit_rank_and_world_size(worker, tmp_path, scheme):
    init = f"tcp://127.0.0.1:{free_port()}" if scheme == "tcp" else f"file://{tmp_path}/store"

    def arg(r):
        return json.dumps({"rank": r, "world_size": 3})

    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), init, str(tmp_path), arg(r)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (2, 0, 1)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert [o["seen"] for o in results(tmp_path, 3)] == [6, 6, 6]


def test_a_rank_that_never_arrives():
    port = free_port()
    t0 = time.monotonic()
    missing = r"rank 0: ranks \[1, 2\] of 3 did not arrive within 0.5 s"
    with pytest.raises(RuntimeError, match=missing):
        rendezvous(f"tcp://127.0.0.1:{port}", rank=0, world_size=3, timeout=0.5)
    assert time.monotonic() - t0 < 5


def test_store_barrier_generations():
    port = free_port()
    store = TCPStore("127.0.0.1", port, is_master=True, timeout=5)
    try:
        store_barrier(store, 0, 1)
        store_barrier(store, 0, 1)
        assert store.check(["pocaflow/barrier/0/0", "pocaflow/barrier/1/0"])
    finally:
        store.close()


def test_runner_stops_the_others_when_one_fails(tmp_path):
    t0 = time.monotonic()
    r = run_script(
        tmp_path,
        "import os, sys, time\nif os.environ['RANK'] == '1':\n    sys.exit(3)\ntime.sleep(60)\n",
        3,
    )
    assert r.returncode == 3
    assert time.monotonic() - t0 < 30


def test_runner_runs_a_module(tmp_path):
    (tmp_path / "rankmod.py").write_text(
        "import os, sys\nprint('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'], "
        "sys.argv[1:])\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "pocaflow.distributed.run", "--nproc", "2", "-m", "rankmod", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["rank 0 of 2 ['x']", "rank 1 of 2 ['x']"]


def test_bad_arguments(monkeypatch):
    with pytest.raises(ValueError, match="env://, tcp://host:port or file:///path"):
        rendezvous("udp://x:1", rank=0, world_size=1)
    with pytest.raises(ValueError, match="rank 2 is not in a world of size 2"):
        rendezvous("tcp://127.0.0.1:1", rank=2, world_size=2)
    with pytest.raises(ValueError, match="needs a host and a port"):
        rendezvous("tcp://127.0.0.1", rank=0, world_size=1)
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ValueError, match="environment variable RANK"):
        rendezvous("env://", world_size=1)
    monkeypatch.setenv("RANK", "zero")
    with pytest.raises(ValueError, match="RANK='zero' is not an integer"):
        rendezvous("env://", world_size=1)
    r = run(["-m", "pocaflow.distributed.run", "--nproc", "0", "x.py"])
    assert r.returncode == 2 and "--nproc must be at least 1" in r.stderr


def test_namespace():
    assert pf.distributed.rendezvous is rendezvous
    assert "distributed" in pf.__all__


def test_rank_zero_exiting_first_keeps_the_store_for_the_others(tmp_path):
    source = (
        "import time, pocaflow as pf\n"
        "store, rank, world = pf.distributed.rendezvous('env://', timeout=20)\n"
        "if rank:\n"
        "    time.sleep(0.3)\n"
        "    assert store.add('late', 1) >= 1\n"
    )
    r = run_script(tmp_path, source, 3)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(
    pf.cuda.is_available(), reason="the failure without a usable GPU or NCCL (CPU machines)"
)
def test_init_process_group_fails_cleanly_without_a_gpu(tmp_path):
    source = (
        "import pocaflow as pf\n"
        "try:\n"
        "    pf.distributed.init_process_group('nccl', timeout=20)\n"
        "except RuntimeError as e:\n"
        "    print('RuntimeError:', e)\n"
    )
    r = run_script(tmp_path, source, 2)
    assert r.returncode == 0, r.stderr
    # Both ranks print (their lines may interleave).
    assert r.stdout.count("RuntimeError:") == 2, r.stdout
    assert "NCCL" in r.stdout or "CUDA" in r.stdout, r.stdout


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan"), float("inf")])
def test_nccl_communicator_needs_a_positive_timeout(timeout):
    # Checked before NCCL or a GPU is looked for.
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        pf._pocaflow.nccl_communicator(0, 1, bytes(128), 0, timeout)


class FakeEvent:
    def __init__(self, done):
        self.done = done

    def query(self):
        return self.done()


class FakeComm:
    def __init__(self, error=None):
        self.error, self.aborted = error, threading.Event()

    def check(self):
        if self.error:
            raise RuntimeError(self.error)

    def destroy(self, abort=False):
        assert abort
        self.aborted.set()


def test_watchdog_aborts_a_collective_that_never_completes():
    comm = FakeComm()
    dog = Watchdog(comm, rank=3, timeout=0.2, record=lambda device, event: FakeEvent(lambda: False))
    t0 = time.monotonic()
    dog.watch("all_reduce", "cuda:0")
    assert comm.aborted.wait(5)
    assert 0.2 <= time.monotonic() - t0 < 2
    with pytest.raises(RuntimeError, match="rank 3: all_reduce did not complete within .* 0.2 s"):
        dog.raise_if_failed()
    dog.close()


def test_watchdog_lets_completed_collectives_go():
    comm = FakeComm()
    done = threading.Event()
    dog = Watchdog(comm, rank=0, timeout=0.2, record=lambda device, event: FakeEvent(done.is_set))
    dog.watch("broadcast", "cuda:0")
    done.set()
    time.sleep(0.5)
    assert not comm.aborted.is_set()
    dog.raise_if_failed()
    dog.close()


def test_watchdog_aborts_on_an_nccl_error():
    comm = FakeComm(error="ncclRemoteError: a peer closed its connection")
    dog = Watchdog(comm, rank=1, timeout=100, record=lambda device, event: FakeEvent(lambda: True))
    assert comm.aborted.wait(5)
    with pytest.raises(RuntimeError, match="rank 1: NCCL reported an error: ncclRemoteError"):
        dog.raise_if_failed()
    dog.close()


def test_watchdog_reuses_completed_events():
    comm, made, given = FakeComm(), [], []

    def record(device, event):
        given.append(event)
        if event is None:
            event = FakeEvent(lambda: True)
            made.append(event)
        return event

    dog = Watchdog(comm, rank=0, timeout=100, record=record)
    for _ in range(3):
        dog.watch("all_reduce", "cuda:0")
    deadline = time.monotonic() + 5
    while dog._pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not dog._pending
    for _ in range(3):
        dog.watch("all_reduce", "cuda:0")
    dog.close()
    assert given[:3] == [None] * 3 and len(made) == 3
    assert sorted(map(id, given[3:])) == sorted(map(id, made)), "the completed events come back"
    assert not comm.aborted.is_set()

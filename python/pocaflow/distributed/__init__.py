"""Several GPUs and processes working together: NCCL collectives on pocaflow arrays, over a
rendezvous that works as torch.distributed's.

Processes started by ``torchrun --nproc-per-node=N script.py`` or by
``python -m pocaflow.distributed.run --nproc N script.py`` find each other through a small
key-value store (``tcp://`` served by rank 0, or ``file://`` on a shared file system)::

    pf.distributed.init_process_group("nccl")        # env://: torchrun's variables
    x = pf.ones((1024,), device="cuda")              # cuda:LOCAL_RANK unless device= says
    pf.distributed.all_reduce(x, op="sum")           # in place, on x's current stream

Every collective is enqueued on the current stream of the array's device, ordered with the
other work there, and returns without waiting for the GPU. Every wait has the group's
timeout: a rank that never arrives at the rendezvous makes the others raise ``RuntimeError``
naming it; the NCCL communicator is a non-blocking one, so an NCCL call that cannot finish
(the init, a first collective connecting to a peer, the end of a group) is polled and, past
the timeout, aborts the communicator and raises; and a collective enqueued but not completed
within the timeout is caught by the group's watchdog (``_watchdog.py``).
``Communicator(devices=[0, 1])`` drives several GPUs from one process, and
``sharded_matmul(a, b, devices=[0, 1])`` splits one product across them. The rendezvous alone
(``rendezvous``, the stores) needs no GPU.
"""

from __future__ import annotations

import os
import urllib.parse

from .. import _cuda_libs, _pocaflow
from .. import cuda as _cuda
from ._communicator import Communicator, after_group, group, in_group
from ._sharded import sharded_matmul
from ._store import DEFAULT_TIMEOUT, FileStore, Store, TCPStore
from ._watchdog import Watchdog

__all__ = [
    "DEFAULT_TIMEOUT",
    "Communicator",
    "FileStore",
    "ReduceOp",
    "Store",
    "TCPStore",
    "all_gather_into_tensor",
    "all_reduce",
    "all_to_all_single",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_rank",
    "get_world_size",
    "group",
    "init_process_group",
    "is_initialized",
    "is_nccl_available",
    "nccl_version",
    "recv",
    "reduce",
    "reduce_scatter_tensor",
    "rendezvous",
    "send",
    "sharded_matmul",
    "store_barrier",
]


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(
            f"init_method='env://' needs the environment variable {name} (set by torchrun "
            "or python -m pocaflow.distributed.run), or pass it as an argument"
        )
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"the environment variable {name}={value!r} is not an integer") from None


def _store_port(port: int) -> int:
    # torchrun's agent serves its own (torch) store on MASTER_PORT when it tells its workers
    # so; pocaflow's store then takes the next port.
    return port + 1 if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" else port


def rendezvous(
    init_method: str = "env://",
    rank: int | None = None,
    world_size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[Store, int, int]:
    """Joins the group named by ``init_method`` and waits until all ``world_size`` ranks have.

    ``init_method``: ``"env://"`` (``MASTER_ADDR``, ``MASTER_PORT``, and ``RANK`` and
    ``WORLD_SIZE`` unless given), ``"tcp://host:port"`` or ``"file:///path"`` (``rank`` and
    ``world_size`` given, or from the environment). Returns ``(store, rank, world_size)``.

    Raises ``ValueError`` for a bad ``init_method``, rank or world size, and ``RuntimeError``
    when the store cannot be served or reached, or some rank has not arrived within
    ``timeout`` seconds (the message names the missing ranks).
    """
    url = urllib.parse.urlparse(init_method)
    rank = _env_int("RANK") if rank is None else int(rank)
    world_size = _env_int("WORLD_SIZE") if world_size is None else int(world_size)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    if url.scheme == "env":
        host = os.environ.get("MASTER_ADDR", "127.0.0.1")
        port = _store_port(_env_int("MASTER_PORT"))
        store: Store = TCPStore(host, port, is_master=rank == 0, timeout=timeout)
    elif url.scheme == "tcp":
        if url.hostname is None or url.port is None:
            raise ValueError(f"init_method {init_method!r} needs a host and a port")
        store = TCPStore(url.hostname, url.port, is_master=rank == 0, timeout=timeout)
    elif url.scheme == "file":
        store = FileStore(url.path, timeout=timeout)
    else:
        raise ValueError(
            f"init_method {init_method!r}: expected env://, tcp://host:port or file:///path"
        )
    try:
        store_barrier(store, rank, world_size, timeout=timeout)
    except RuntimeError:
        if isinstance(store, TCPStore):
            store.close()
        raise
    return store, rank, world_size


def store_barrier(store: Store, rank: int, world_size: int, timeout: float | None = None) -> None:
    """Blocks until every rank of ``world_size`` has called this on ``store`` (as many times);
    ``RuntimeError`` naming the ranks that did not arrive within ``timeout`` seconds."""
    # The generation lives on the store object, so that barriers on one store never mix.
    generation = getattr(store, "_pocaflow_barriers", 0)
    store._pocaflow_barriers = generation + 1  # type: ignore[attr-defined]
    keys = [f"pocaflow/barrier/{generation}/{r}" for r in range(world_size)]
    store.set(keys[rank], b"1")
    try:
        store.wait(keys, timeout=timeout)
    except TimeoutError:
        missing = [r for r, k in enumerate(keys) if not store.check([k])]
        limit = store.timeout if timeout is None else timeout
        raise RuntimeError(
            f"rank {rank}: ranks {missing} of {world_size} did not arrive within {limit:g} s"
        ) from None


class ReduceOp:
    """The reductions by torch.distributed's names (plain strings work too)."""

    SUM = "sum"
    PRODUCT = "prod"
    MAX = "max"
    MIN = "min"
    AVG = "avg"


def is_nccl_available() -> bool:
    """Whether NCCL (libnccl.so.2) can be loaded."""
    try:
        nccl_version()
    except RuntimeError:
        return False
    return True


def nccl_version() -> tuple[int, int, int]:
    """The loaded NCCL's version, ``(major, minor, patch)``; ``RuntimeError`` without NCCL."""
    _cuda_libs.preload_nccl()
    code = _pocaflow.nccl_version()
    return code // 10000, code // 100 % 100, code % 100


def _record(device, event):
    return _cuda.current_stream(device).record_event(event)


class _Group:
    """The default process group: its store, rank, world, communicator and watchdog."""

    def __init__(self, store: Store, rank: int, world_size: int, comm, timeout: float) -> None:
        self.store, self.rank, self.world_size, self.comm = store, rank, world_size, comm
        self.watchdog = Watchdog(comm, rank, timeout, _record)

    def watched(self, op: str, device) -> None:
        """Has the watchdog follow ``op``, just enqueued on ``device``'s current stream (or
        inside a group, once the group has launched)."""
        if in_group():
            after_group(lambda: self.watchdog.watch(op, device))
        else:
            self.watchdog.watch(op, device)


_GROUP: _Group | None = None


def _ordinal(device, rank: int) -> int:
    if device is None:
        return int(os.environ.get("LOCAL_RANK", rank))
    if isinstance(device, int):
        return device
    text = str(device)
    if text == "cuda":
        return 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    raise ValueError(f"init_process_group: device must be a CUDA device, got {device!r}")


def init_process_group(
    backend: str = "nccl",
    init_method: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    device=None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Joins the default process group: the rendezvous of :func:`rendezvous` (``init_method``
    default ``"env://"``), then an NCCL communicator on ``device`` (default
    ``cuda:LOCAL_RANK``, or ``cuda:rank`` without it) whose id rank 0 makes and shares through
    the store. Raises ``RuntimeError`` on every rank when NCCL cannot start (on rank 0 or
    here), ``ValueError`` for bad arguments."""
    global _GROUP
    if backend != "nccl":
        raise ValueError(f"init_process_group: backend must be 'nccl', got {backend!r}")
    if _GROUP is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized")
    store, rank, world_size = rendezvous(init_method or "env://", rank, world_size, timeout)
    key = "pocaflow/nccl/uid"
    ordinal = _ordinal(device, rank)
    if rank == 0:
        try:
            _cuda_libs.preload_nccl()
            store.set(key, b"ok:" + _pocaflow.nccl_unique_id())
        except RuntimeError as e:
            store.set(key, b"error:" + str(e).encode())
            raise
    try:
        value = store.get(key, timeout=timeout)
    except TimeoutError:
        raise RuntimeError(f"rank {rank}: rank 0 shared no NCCL id within {timeout:g} s") from None
    if value.startswith(b"error:"):
        raise RuntimeError(f"rank {rank}: rank 0 could not start NCCL: {value[6:].decode()}")
    _cuda_libs.preload_nccl()
    comm = _pocaflow.nccl_communicator(ordinal, world_size, value[3:], rank, timeout)
    _GROUP = _Group(store, rank, world_size, comm, timeout)


def is_initialized() -> bool:
    """Whether :func:`init_process_group` has run (and no :func:`destroy_process_group`)."""
    return _GROUP is not None


def _group() -> _Group:
    if _GROUP is None:
        raise RuntimeError("the default process group is not initialized: call init_process_group")
    return _GROUP


def _live() -> _Group:
    """The default group, or the failure its watchdog found."""
    g = _group()
    g.watchdog.raise_if_failed()
    return g


def get_rank() -> int:
    """This process's rank in the default group."""
    return _group().rank


def get_world_size() -> int:
    """The number of ranks of the default group."""
    return _group().world_size


def barrier() -> None:
    """Blocks the host until every rank has called ``barrier`` (through the store; GPU work
    already enqueued keeps running)."""
    g = _live()
    store_barrier(g.store, g.rank, g.world_size)


def destroy_process_group(abort: bool = False) -> None:
    """Releases the default group's communicator (``abort=True``: without waiting for
    pending work, for a group whose peers are gone)."""
    global _GROUP
    g, _GROUP = _group(), None
    g.watchdog.close()  # an abort it made has released the communicator already
    g.comm.destroy(abort)
    if isinstance(g.store, TCPStore):
        g.store.close()


def all_reduce(tensor, op: str = "sum") -> None:
    """``tensor`` becomes the reduction over ranks (``"sum" "prod" "max" "min" "avg"``)."""
    g = _live()
    g.comm.all_reduce(tensor, op)
    g.watched("all_reduce", tensor.device)


def broadcast(tensor, src: int) -> None:
    """``tensor`` becomes rank ``src``'s."""
    g = _live()
    g.comm.broadcast(tensor, src)
    g.watched("broadcast", tensor.device)


def reduce(tensor, dst: int, op: str = "sum") -> None:
    """Rank ``dst``'s ``tensor`` becomes the reduction over ranks; the others' stay."""
    g = _live()
    g.comm.reduce(tensor, dst, op)
    g.watched("reduce", tensor.device)


def all_gather_into_tensor(output_tensor, input_tensor) -> None:
    """``output_tensor`` (``world_size`` times the input's elements) becomes every rank's
    input, in rank order."""
    g = _live()
    g.comm.all_gather(output_tensor, input_tensor)
    g.watched("all_gather_into_tensor", output_tensor.device)


def reduce_scatter_tensor(output, input, op: str = "sum") -> None:  # noqa: A002 (torch's name)
    """``output`` becomes the reduction over ranks of this rank's share of ``input``
    (``world_size`` shares of ``output``'s size, in rank order)."""
    g = _live()
    g.comm.reduce_scatter(output, input, op)
    g.watched("reduce_scatter_tensor", output.device)


def send(tensor, dst: int) -> None:
    """Sends ``tensor`` to rank ``dst`` (matched by its :func:`recv`)."""
    g = _live()
    g.comm.send(tensor, dst)
    g.watched("send", tensor.device)


def recv(tensor, src: int) -> None:
    """Receives into ``tensor`` what rank ``src`` sends."""
    g = _live()
    g.comm.recv(tensor, src)
    g.watched("recv", tensor.device)


def all_to_all_single(output, input) -> None:  # noqa: A002 (torch's name)
    """Rank ``r``'s ``output`` becomes the ``r``-th of the ``world_size`` equal shares of
    every rank's ``input``, in rank order (one NCCL group of sends and receives)."""
    g = _live()
    n = g.world_size
    if input.shape != output.shape or input.dtype != output.dtype:
        raise ValueError(
            f"all_to_all_single: output {output.shape} {output.dtype} must match input "
            f"{input.shape} {input.dtype}"
        )
    if input.size % n:
        raise ValueError(
            f"all_to_all_single: {input.size} elements (shape {input.shape}) do not split "
            f"into {n} equal shares"
        )
    share = input.size // n
    flat_in, flat_out = input.reshape((-1,)), output.reshape((-1,))
    if not flat_out._shares_memory(output):
        raise ValueError("all_to_all_single: output must be C-contiguous")
    with group():
        for peer in range(n):
            g.comm.send(flat_in[peer * share : (peer + 1) * share], peer)
            g.comm.recv(flat_out[peer * share : (peer + 1) * share], peer)
        g.watched("all_to_all_single", output.device)

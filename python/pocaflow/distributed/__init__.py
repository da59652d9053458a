"""Several processes working together: the rendezvous that starts them as one group.

This part of ``pocaflow.distributed`` runs without a GPU: processes started by ``torchrun`` or
by ``python -m pocaflow.distributed.run --nproc N script.py`` find each other through a small
key-value store (``tcp://`` served by rank 0, or ``file://`` on a shared file system), as
``torch.distributed.rendezvous`` does::

    store, rank, world_size = pf.distributed.rendezvous("env://")
    pf.distributed.store_barrier(store, rank, world_size)

Every wait has a timeout; a rank that never arrives makes the others raise ``RuntimeError``
naming it. (The NCCL collectives that will run over this rendezvous are not built yet.)
"""

from __future__ import annotations

import os
import urllib.parse

from ._store import DEFAULT_TIMEOUT, FileStore, Store, TCPStore

__all__ = ["DEFAULT_TIMEOUT", "FileStore", "Store", "TCPStore", "rendezvous", "store_barrier"]

#: The barrier generation of each store (so that barriers on one store never mix).
_GENERATIONS: dict[int, int] = {}


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
    generation = _GENERATIONS.get(id(store), 0)
    _GENERATIONS[id(store)] = generation + 1
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

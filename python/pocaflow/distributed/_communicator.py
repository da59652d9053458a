"""NCCL groups, and ``Communicator``: one process driving several GPUs."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence

from .. import _cuda_libs, _pocaflow

#: This thread's depth of ``group()`` blocks, and what runs when the outermost one ends.
_LOCAL = threading.local()


def in_group() -> bool:
    """Whether this thread is inside a ``group()`` block."""
    return getattr(_LOCAL, "depth", 0) > 0


def after_group(fn: Callable[[], None]) -> None:
    """Runs ``fn`` once the outermost ``group()`` block of this thread has launched its work."""
    _LOCAL.after.append(fn)


@contextlib.contextmanager
def group() -> Iterator[None]:
    """Runs the collectives and sends/receives inside as one NCCL group (``ncclGroupStart``
    / ``ncclGroupEnd``): needed to pair sends with receives, or to drive several devices."""
    _cuda_libs.preload_nccl()
    _pocaflow.nccl_group_start()
    depth = getattr(_LOCAL, "depth", 0)
    if depth == 0:
        _LOCAL.after = []
    _LOCAL.depth = depth + 1
    try:
        yield
    finally:
        _LOCAL.depth = depth
        _pocaflow.nccl_group_end()
    if depth == 0:
        for fn in _LOCAL.after:
            fn()
        _LOCAL.after = []


class Communicator:
    """One process driving several GPUs: one NCCL rank per device of ``devices`` (CUDA
    ordinals), with collectives that take one array per device, in the order of ``devices``,
    run as one NCCL group."""

    def __init__(self, devices: Sequence[int]) -> None:
        _cuda_libs.preload_nccl()
        self.devices = [int(d) for d in devices]
        self._comms = _pocaflow.nccl_communicators(self.devices)

    def _each(self, tensors, name: str):
        tensors = list(tensors)
        if len(tensors) != len(self._comms):
            raise ValueError(
                f"Communicator.{name}: {len(tensors)} arrays for {len(self._comms)} devices"
            )
        return zip(self._comms, tensors)

    def all_reduce(self, tensors, op: str = "sum") -> None:
        """Each array becomes the reduction over all of them."""
        with group():
            for comm, t in self._each(tensors, "all_reduce"):
                comm.all_reduce(t, op)

    def broadcast(self, tensors, src: int = 0) -> None:
        """Each array becomes the one of rank ``src``."""
        with group():
            for comm, t in self._each(tensors, "broadcast"):
                comm.broadcast(t, src)

    def reduce(self, tensors, dst: int = 0, op: str = "sum") -> None:
        """Array ``dst`` becomes the reduction over all of them; the others stay."""
        with group():
            for comm, t in self._each(tensors, "reduce"):
                comm.reduce(t, dst, op)

    def all_gather(self, outputs, inputs) -> None:
        """Each output becomes every input, in device order."""
        pairs = list(zip(self._each(outputs, "all_gather"), inputs))
        with group():
            for (comm, out), t in pairs:
                comm.all_gather(out, t)

    def reduce_scatter(self, outputs, inputs, op: str = "sum") -> None:
        """Output ``i`` becomes the reduction of the ``i``-th shares of every input."""
        pairs = list(zip(self._each(outputs, "reduce_scatter"), inputs))
        with group():
            for (comm, out), t in pairs:
                comm.reduce_scatter(out, t, op)

    def close(self) -> None:
        """Releases the communicators."""
        for comm in self._comms:
            comm.destroy()

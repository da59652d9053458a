"""CUDA devices, streams, events and the caching allocator.

Every CUDA operation is enqueued on the *current stream* of its device and returns without
waiting; only reading results on the host (``Tensor.numpy()``, ``.cpu()``), ``synchronize``
calls and ``empty_cache`` wait for the GPU.

>>> import pocaflow as pf
>>> if pf.cuda.is_available():
...     s = pf.cuda.Stream()
...     with pf.cuda.stream(s):
...         pass  # work here goes to s
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import _pocaflow as _native
from ._pocaflow import Event, Stream

__all__ = [
    "Event",
    "Stream",
    "current_stream",
    "device_count",
    "empty_cache",
    "is_available",
    "memory_stats",
    "set_small_matmul_threshold",
    "small_matmul_threshold",
    "stream",
    "synchronize",
    "unavailable_reason",
]

DeviceLike = Any  # None, an int, "cuda:N" or a pocaflow.Device


def is_available() -> bool:
    """Whether at least one CUDA device is usable."""
    return _native.cuda_device_count() > 0


def device_count() -> int:
    """Number of visible CUDA devices (0 when CUDA is not usable)."""
    return _native.cuda_device_count()


def unavailable_reason() -> str | None:
    """Why CUDA is not usable (a missing library, no device, an old driver), or None."""
    return _native.cuda_unavailable_reason()


def synchronize(device: DeviceLike = None) -> None:
    """Blocks until all work on ``device`` (default cuda:0) is done."""
    _native.cuda_synchronize(device)


def current_stream(device: DeviceLike = None) -> Stream:
    """The stream this thread's work on ``device`` goes to."""
    return _native.cuda_current_stream(device)


@contextmanager
def stream(s: Stream | None) -> Iterator[Stream | None]:
    """Makes ``s`` the current stream of its device inside the ``with`` block (None: no
    change)."""
    if s is None:
        yield None
        return
    previous = s._set_current()
    try:
        yield s
    finally:
        previous._set_current()


def memory_stats(device: DeviceLike = None) -> dict[str, int]:
    """Allocator counters: ``allocated_bytes``, ``reserved_bytes``, ``peak_allocated_bytes``,
    ``driver_allocations``, ``driver_frees``, ``cache_hits``, ``cache_misses``."""
    return _native.cuda_memory_stats(device)


def empty_cache(device: DeviceLike = None) -> None:
    """Returns cached, unused device memory to the driver (waits for the device)."""
    _native.cuda_empty_cache(device)


def set_small_matmul_threshold(multiply_adds: int) -> None:
    """Sets the size up to which float32 and float64 matmuls on CUDA run in pocaflow's own
    kernel instead of cuBLASLt.

    A product qualifies when m*n*k times the batch is at most ``multiply_adds`` and k <= 128.
    For such products one ``cublasLtMatmul`` call costs the host more (9-16 us on an H100
    machine) than a call through pocaflow's kernel (5-9 us, GPU work included). The kernel
    computes in strict float32/float64 with fused multiply-adds (never TF32). ``0`` sends every
    product to cuBLASLt; the default is 2**21 (128 x 128 x 128).
    """
    _native.cuda_set_small_matmul_threshold(multiply_adds)


def small_matmul_threshold() -> int:
    """The threshold set by :func:`set_small_matmul_threshold`."""
    return _native.cuda_small_matmul_threshold()

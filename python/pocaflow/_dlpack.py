"""``from_dlpack``: arrays of other libraries (NumPy, PyTorch, CuPy, JAX, ...) as pocaflow
arrays, on the CPU or CUDA, sharing their memory.

The exchange follows the DLPack protocol of the Array API standard: pocaflow asks the producer
for a versioned capsule (falling back to the legacy form for producers that predate it) and
names its current CUDA stream, which the producer makes wait, on the GPU, for the work pending
on the memory; the host never waits. The producer's memory is kept alive as long as any
pocaflow array uses it, and given back after the GPU work queued on it is done.
"""

from __future__ import annotations

import sys
from typing import Any

from ._pocaflow import Tensor, asarray, cuda_current_stream, from_dlpack_capsule

#: DLPack device types whose memory is on a CUDA device (kDLCUDA, kDLCUDAManaged).
_CUDA_TYPES = (2, 13)


def _capsule(x: Any, stream: int | None) -> Any:
    """The producer's capsule: versioned when it can make one, else legacy."""
    try:
        return x.__dlpack__(stream=stream, max_version=(1, 1))
    except TypeError:  # a producer from before DLPack 1.0 (no ``max_version``)
        return x.__dlpack__(stream=stream)


def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """The array ``x`` of another library (anything with ``__dlpack__``) as a pocaflow array.

    ``copy=None`` shares the producer's memory when it can (it copies read-only memory and
    booleans); ``copy=True`` always copies; ``copy=False`` never does and raises
    ``BufferError`` (or ``ValueError`` for a move to another ``device``) when it would have to.
    """
    if isinstance(x, Tensor):
        return asarray(x, device=device, copy=copy)
    if not hasattr(x, "__dlpack__") or not hasattr(x, "__dlpack_device__"):
        raise TypeError(
            f"from_dlpack: expected an object with __dlpack__ and __dlpack_device__, "
            f"got {type(x).__name__}"
        )
    kind, index = (int(v) for v in x.__dlpack_device__())
    stream = None
    if kind in _CUDA_TYPES:
        ours = cuda_current_stream(index)
        stream = ours.cuda_stream
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(x, torch.Tensor):
            # PyTorch orders a consumer's stream with Python-level stream and event objects
            # (about 35 us a call on the H200); the same event wait, made natively on the
            # stream that PyTorch would use (its current one), costs a few.
            ours.wait_external(torch.cuda.current_stream(index).cuda_stream)
            stream = -1
    capsule = _capsule(x, stream)
    if device is None:
        return from_dlpack_capsule(capsule, copy)
    # The move to another device, or else ``asarray``, makes the one copy ``copy=True`` asks for.
    shared = from_dlpack_capsule(capsule, False if copy is False else None)
    return asarray(shared, device=device, copy=copy)

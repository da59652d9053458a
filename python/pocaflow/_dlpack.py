"""``from_dlpack`` for now: pocaflow arrays pass through ``asarray``; other producers go through
NumPy's DLPack importer, so only CPU producers are accepted (device producers raise
``RuntimeError`` until pocaflow imports DLPack capsules natively)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._creation import asarray
from ._pocaflow import Tensor


def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """An array sharing memory with the DLPack producer ``x`` (CPU producers only for now)."""
    if isinstance(x, Tensor):
        return asarray(x, device=device, copy=copy)
    dev = getattr(x, "__dlpack_device__", None)
    if dev is not None:
        kind = dev()[0]
        if int(kind) not in (1, 3):  # kDLCPU, kDLCUDAHost
            raise RuntimeError(
                f"from_dlpack: producers on DLPack device type {int(kind)} are not supported "
                "yet (only CPU)"
            )
    host = np.from_dlpack(x)
    return asarray(host, device="cpu" if device is None else device, copy=copy)

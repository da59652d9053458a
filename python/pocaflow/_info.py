"""The inspection namespace of the array API standard: ``__array_namespace_info__()``."""

from __future__ import annotations

from typing import Any

from . import _pocaflow as _n
from ._devices import resolve
from ._dtypes import ALL_DTYPES, isdtype
from ._pocaflow import Device, DType

__all__ = ["Info", "__array_namespace_info__"]


class Info:
    """What this pocaflow build supports: devices, dtypes, default dtypes, capabilities."""

    __slots__ = ()

    def capabilities(self) -> dict[str, Any]:
        """Optional features: boolean indexing and data-dependent shapes are supported, arrays
        have at most 32 dimensions."""
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 32}

    def default_device(self) -> Device:
        """The device creation functions use when given none (``pf.set_default_device``)."""
        return _n.get_default_device()

    def devices(self) -> list[Device]:
        """The CPU and every visible CUDA device."""
        return [Device("cpu")] + [Device(f"cuda:{i}") for i in range(_n.cuda_device_count())]

    def default_dtypes(self, *, device: Any = None) -> dict[str, DType]:
        """The default real floating, integral and indexing dtypes (the same on every device;
        pocaflow has no complex dtypes yet, so there is no 'complex floating' entry)."""
        resolve(device)
        return {"real floating": _n.float64, "integral": _n.int64, "indexing": _n.int64}

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, DType]:
        """The standard's dtypes of ``kind`` (a kind name as in ``isdtype``, or a tuple; default
        every dtype), by name. Every dtype exists on every device. ``bfloat16`` is pocaflow's
        own, not an array API dtype, so it is not listed (``pf.bfloat16`` is always there)."""
        resolve(device)
        return {d.name: d for d in API_DTYPES if kind is None or isdtype(d, kind)}

    def __repr__(self) -> str:
        return "pocaflow.__array_namespace_info__()"


API_DTYPES = tuple(d for d in ALL_DTYPES if d.name != "bfloat16")
_INFO = Info()


def __array_namespace_info__() -> Info:
    """The inspection namespace: ``capabilities() default_device() default_dtypes() devices()
    dtypes()``."""
    return _INFO

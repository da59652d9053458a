"""Device helpers shared by the Python modules: the default device and device comparisons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _pocaflow as _n
from ._pocaflow import Device, Tensor


def canonical(device: Any) -> str:
    """``"cpu"`` or ``"cuda:N"`` for a device or device string (``"cuda"`` is ``"cuda:0"``)."""
    name = str(Device(device)) if not isinstance(device, Device) else str(device)
    return "cuda:0" if name == "cuda" else name


def resolve(device: Any) -> Device:
    """``device`` as a Device; None is the default device (see ``set_default_device``)."""
    if device is None:
        return _n.get_default_device()
    return device if isinstance(device, Device) else Device(device)


def same_device(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def common_device(arrays: Sequence[Tensor], what: str) -> Device:
    """The one device of ``arrays``; a RuntimeError naming both when they are on two."""
    first = arrays[0].device
    for x in arrays[1:]:
        if not same_device(x.device, first):
            raise RuntimeError(
                f"{what}: expected all arrays on one device, found {first} and {x.device}"
            )
    return first

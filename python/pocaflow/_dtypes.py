"""Data type functions of the array API standard: ``finfo iinfo result_type can_cast isdtype
astype`` and the conversion of dtype-likes (names, NumPy dtypes, Python types) to pocaflow
dtypes."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from . import _pocaflow as _n
from ._devices import same_device
from ._pocaflow import DType, Tensor

__all__ = ["astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type"]

#: Every dtype, in the order of ``__array_namespace_info__().dtypes()``.
ALL_DTYPES: tuple[DType, ...] = (
    _n.bool,
    _n.int8,
    _n.int16,
    _n.int32,
    _n.int64,
    _n.uint8,
    _n.uint16,
    _n.uint32,
    _n.uint64,
    _n.float16,
    _n.bfloat16,
    _n.float32,
    _n.float64,
)
BY_NAME: dict[str, DType] = {d.name: d for d in ALL_DTYPES}
BY_NAME["bool_"] = _n.bool

DTypeLike = Union[DType, str, np.dtype, type]

_COMPLEX = "complex dtypes are not supported by pocaflow yet"


def as_dtype(dtype: Any) -> DType:
    """The pocaflow dtype for ``dtype``: a DType, a name, a NumPy dtype or scalar type, or one of
    the Python types ``bool``, ``int`` (int64) and ``float`` (float64). Complex and unknown dtypes
    raise ``TypeError``."""
    if isinstance(dtype, DType):
        return dtype
    if dtype is builtins.bool:
        return _n.bool
    if dtype is int:
        return _n.int64
    if dtype is float:
        return _n.float64
    if dtype is complex:
        raise TypeError(_COMPLEX)
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            raise TypeError(f"not a pocaflow dtype: {dtype!r}") from None
    found = BY_NAME.get(name)
    if found is not None:
        return found
    if name.startswith("complex"):
        raise TypeError(_COMPLEX)
    try:
        alias = np.dtype(name).name
    except TypeError:
        alias = None
    if alias in BY_NAME:
        return BY_NAME[alias]
    if alias is not None and alias.startswith("complex"):
        raise TypeError(_COMPLEX)
    raise TypeError(f"not a pocaflow dtype: {dtype!r}")


def _dtype_of(x: Any) -> DType:
    """The dtype of an array or a dtype-like."""
    if isinstance(x, Tensor):
        return x.dtype
    if isinstance(x, (np.ndarray, np.generic)):
        return as_dtype(x.dtype)
    return as_dtype(x)


# --- finfo / iinfo ---------------------------------------------------------------------------


@dataclass(frozen=True)
class finfo_object:
    """Machine limits of a floating-point dtype (the standard's ``finfo`` object)."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: DType


@dataclass(frozen=True)
class iinfo_object:
    """Machine limits of an integer dtype (the standard's ``iinfo`` object)."""

    bits: int
    max: int
    min: int
    dtype: DType


def finfo(type: Any, /) -> finfo_object:
    """Machine limits of a real floating-point dtype (``type`` is a dtype or an array)."""
    dt = _dtype_of(type)
    if dt.kind != "f":
        raise TypeError(f"finfo needs a floating-point dtype, got {dt.name}")
    if dt == _n.bfloat16:
        big = float((2.0 - 2.0**-7) * 2.0**127)
        return finfo_object(16, 2.0**-7, big, -big, 2.0**-126, dt)
    info = np.finfo(np.dtype(dt.name))
    return finfo_object(
        info.bits,
        float(info.eps),
        float(info.max),
        float(info.min),
        float(info.smallest_normal),
        dt,
    )


def iinfo(type: Any, /) -> iinfo_object:
    """Machine limits of an integer dtype (``type`` is a dtype or an array)."""
    dt = _dtype_of(type)
    if dt.kind not in "iu":
        raise TypeError(f"iinfo needs an integer dtype, got {dt.name}")
    info = np.iinfo(np.dtype(dt.name))
    return iinfo_object(info.bits, int(info.max), int(info.min), dt)


# --- promotion -------------------------------------------------------------------------------


def _scalar_dtype(s: builtins.bool | int | float) -> DType:
    if isinstance(s, builtins.bool):
        return _n.bool
    if isinstance(s, int):
        return _n.int64
    return _n.float64


def _with_scalar(dt: DType, s: builtins.bool | int | float) -> DType:
    """The dtype of an operation between an array of ``dt`` and the Python scalar ``s``: the
    scalar is weak, so it takes the array's dtype when its kind fits (bool with anything, int
    with integers and floats, float with floats); otherwise NumPy's choice (int64 for an int
    with bool, float64 for a float with bool or integers)."""
    if isinstance(s, builtins.bool):
        return dt
    if isinstance(s, int):
        return _n.int64 if dt.kind == "b" else dt
    return dt if dt.kind == "f" else _n.float64


def result_type(*arrays_and_dtypes: Any) -> DType:
    """The dtype of an operation on the arguments (arrays, dtypes and Python scalars), by the
    standard's promotion table; mixed integer and float kinds follow NumPy (float64 for int64
    with float16, as NumPy); Python scalars are weak."""
    if not arrays_and_dtypes:
        raise ValueError("result_type needs at least one array or dtype")
    dtypes: list[DType] = []
    scalars: list[builtins.bool | int | float] = []
    for x in arrays_and_dtypes:
        if isinstance(x, complex):
            raise TypeError(_COMPLEX)
        if isinstance(x, (builtins.bool, int, float)) and not isinstance(x, np.generic):
            scalars.append(x)
        else:
            dtypes.append(_dtype_of(x))
    if not dtypes:
        # Only scalars (the standard leaves this open): their default dtypes, promoted.
        dtypes = [_scalar_dtype(s) for s in scalars]
        scalars = []
    out = dtypes[0]
    for dt in dtypes[1:]:
        out = _n.result_type2(out, dt)
    for s in scalars:
        out = _with_scalar(out, s)
    return out


def can_cast(from_: Any, to: Any, /) -> builtins.bool:
    """Whether ``from_`` (a dtype or an array) can be cast to ``to`` by the promotion rules."""
    return _n.can_cast(_dtype_of(from_), as_dtype(to))


_KINDS = {
    "bool": "b",
    "signed integer": "i",
    "unsigned integer": "u",
    "integral": "iu",
    "real floating": "f",
    "complex floating": "",
    "numeric": "iuf",
}


def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    """Whether ``dtype`` is of ``kind``: a kind name ('bool', 'signed integer', 'unsigned
    integer', 'integral', 'real floating', 'complex floating', 'numeric'), a dtype, or a tuple of
    those (true if any matches)."""
    if not isinstance(dtype, DType):
        raise TypeError(f"isdtype needs a pocaflow dtype, got {dtype!r}")
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        try:
            return dtype.kind in _KINDS[kind]
        except KeyError:
            raise ValueError(
                f"unknown dtype kind {kind!r}; expected one of {', '.join(map(repr, _KINDS))}"
            ) from None
    if isinstance(kind, DType):
        return dtype == kind
    raise TypeError(f"kind must be a str, a dtype or a tuple of them, got {kind!r}")


def astype(x: Tensor, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> Tensor:
    """``x`` cast to ``dtype`` (a new array unless ``copy=False`` and nothing changes), on
    ``device`` if given."""
    if not isinstance(x, Tensor):
        raise TypeError(f"astype needs a pocaflow array, got {type(x).__name__}")
    dt = as_dtype(dtype)
    if device is not None and not same_device(device, x.device):
        return x.to(device=device, dtype=dt)
    return x.astype(dt, copy=copy)

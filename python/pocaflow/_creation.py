"""Creation functions of the array API standard, on top of the native ones: the standard's
signatures and default dtypes. Where no device is given, the native functions use the default
device (``pf.set_default_device``)."""

from __future__ import annotations

import builtins
import operator
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from . import _pocaflow as _n
from ._devices import common_device
from ._dtypes import _COMPLEX, as_dtype
from ._pocaflow import DType, Tensor

__all__ = [
    "arange",
    "asarray",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "linspace",
    "meshgrid",
    "ones",
    "ones_like",
    "tril",
    "triu",
    "zeros",
    "zeros_like",
]

ShapeLike = Union[int, Sequence[int]]


def _shape(shape: ShapeLike) -> tuple[int, ...]:
    if type(shape) is tuple and all(type(s) is int and s >= 0 for s in shape):
        return shape  # the common case, without the general checks below
    if isinstance(shape, builtins.bool):
        raise TypeError("shape must be an int or a sequence of ints, got a bool")
    try:
        return (operator.index(shape),)
    except TypeError:
        pass
    try:
        out = tuple(operator.index(s) for s in shape)  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from None
    for s in out:
        if s < 0:
            raise ValueError(f"negative dimension in shape {out}")
    return out


def _dtype_or(dtype: Any, default: DType) -> DType:
    return default if dtype is None else as_dtype(dtype)


def _fill_dtype(value: Any) -> DType:
    """The default dtype of a fill value: bool, int64 or float64 (the standard's defaults)."""
    if isinstance(value, builtins.bool):
        return _n.bool
    if isinstance(value, int):
        return _n.int64
    if isinstance(value, float):
        return _n.float64
    if isinstance(value, complex):
        raise TypeError(_COMPLEX)
    if isinstance(value, Tensor):
        return value.dtype
    dt = getattr(value, "dtype", None)
    if dt is not None:
        return as_dtype(dt)
    raise TypeError(f"fill_value must be a bool, int or float, got {type(value).__name__}")


def _scalar(value: Any) -> Any:
    """A NumPy scalar or a one-element array as the Python scalar the native fill takes."""
    if isinstance(value, (builtins.bool, int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, (Tensor, np.generic, np.ndarray)):
        return value.item()
    return value


def _check_complex(*values: Any) -> None:
    for v in values:
        if isinstance(v, complex):
            raise TypeError(_COMPLEX)


#: The standard's ``asarray`` is the native one: it has the standard's signature, shares NumPy
#: memory on the CPU where it can, applies the default device, and raises ``TypeError`` for
#: complex input itself.
asarray = _n.asarray


def empty(shape: ShapeLike, *, dtype: Any = None, device: Any = None) -> Tensor:
    """An uninitialized array (default dtype float64)."""
    return _n.empty(_shape(shape), dtype=_dtype_or(dtype, _n.float64), device=device)


def zeros(shape: ShapeLike, *, dtype: Any = None, device: Any = None) -> Tensor:
    """An array of zeros (default dtype float64)."""
    return _n.zeros(_shape(shape), dtype=_dtype_or(dtype, _n.float64), device=device)


def ones(shape: ShapeLike, *, dtype: Any = None, device: Any = None) -> Tensor:
    """An array of ones (default dtype float64)."""
    dt = _dtype_or(dtype, _n.float64)
    return _n.full(_shape(shape), True if dt == _n.bool else 1, dtype=dt, device=device)


def full(
    shape: ShapeLike,
    fill_value: builtins.bool | int | float,
    *,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """An array filled with ``fill_value``; the dtype defaults to the fill value's (bool, int64
    or float64)."""
    dt = _fill_dtype(fill_value) if dtype is None else as_dtype(dtype)
    return _n.full(_shape(shape), _scalar(fill_value), dtype=dt, device=device)


def _like_device(x: Tensor, device: Any) -> Any:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a pocaflow array, got {type(x).__name__}")
    return x.device if device is None else device


def empty_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    """An uninitialized array of ``x``'s shape (and dtype and device unless given)."""
    dev = _like_device(x, device)
    return _n.empty(x.shape, dtype=_dtype_or(dtype, x.dtype), device=dev)


def zeros_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    """Zeros of ``x``'s shape (and dtype and device unless given)."""
    dev = _like_device(x, device)
    return _n.zeros(x.shape, dtype=_dtype_or(dtype, x.dtype), device=dev)


def ones_like(x: Tensor, /, *, dtype: Any = None, device: Any = None) -> Tensor:
    """Ones of ``x``'s shape (and dtype and device unless given)."""
    dev = _like_device(x, device)
    dt = _dtype_or(dtype, x.dtype)
    return _n.full(x.shape, True if dt == _n.bool else 1, dtype=dt, device=dev)


def full_like(
    x: Tensor,
    /,
    fill_value: builtins.bool | int | float,
    *,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """``fill_value`` in an array of ``x``'s shape (and dtype and device unless given)."""
    dev = _like_device(x, device)
    _check_complex(fill_value)
    return _n.full(x.shape, _scalar(fill_value), dtype=_dtype_or(dtype, x.dtype), device=dev)


def arange(
    start: int | float,
    /,
    stop: int | float | None = None,
    step: int | float = 1,
    *,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Evenly spaced values in ``[start, stop)``; int64 when every argument is an int, else
    float64, unless ``dtype`` is given."""
    _check_complex(start, stop, step)
    if step == 0:
        raise ValueError("arange: step must not be zero")
    if dtype is None:
        floats = any(isinstance(v, float) for v in (start, stop, step))
        dtype = _n.float64 if floats else _n.int64
    else:
        dtype = as_dtype(dtype)
    return _n.arange(start, stop, step, dtype=dtype, device=device)


def linspace(
    start: int | float,
    stop: int | float,
    /,
    num: int,
    *,
    dtype: Any = None,
    device: Any = None,
    endpoint: builtins.bool = True,
) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (default dtype float64)."""
    _check_complex(start, stop)
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"linspace: num must be non-negative, got {num}")
    return _n.linspace(
        start,
        stop,
        num,
        dtype=_dtype_or(dtype, _n.float64),
        device=device,
        endpoint=endpoint,
    )


def eye(
    n_rows: int,
    n_cols: int | None = None,
    /,
    *,
    k: int = 0,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """A 2-D array with ones on the ``k``-th diagonal (default dtype float64)."""
    n_rows = operator.index(n_rows)
    n_cols = n_rows if n_cols is None else operator.index(n_cols)
    if n_rows < 0 or n_cols < 0:
        raise ValueError(f"eye: negative dimension in ({n_rows}, {n_cols})")
    return _n.eye(
        n_rows,
        n_cols,
        k=operator.index(k),
        dtype=_dtype_or(dtype, _n.float64),
        device=device,
    )


def _matrix(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} needs a pocaflow array, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} needs an array of at least 2 dimensions, got shape {x.shape}")
    return x


def tril(x: Tensor, /, *, k: int = 0) -> Tensor:
    """The lower triangle of the matrices in ``x`` (elements above the ``k``-th diagonal
    zeroed)."""
    return _matrix(x, "tril").tril(operator.index(k))


def triu(x: Tensor, /, *, k: int = 0) -> Tensor:
    """The upper triangle of the matrices in ``x`` (elements below the ``k``-th diagonal
    zeroed)."""
    return _matrix(x, "triu").triu(operator.index(k))


def meshgrid(*arrays: Tensor, indexing: str = "xy") -> list[Tensor]:
    """Coordinate arrays from 1-D coordinate vectors, ``'xy'`` (Cartesian: the first two output
    axes swapped) or ``'ij'`` (matrix) indexing. The outputs are new arrays, not views; each
    keeps its input's dtype (the standard asks for one dtype; NumPy allows a mix, and so does
    pocaflow)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    if not arrays:
        return []
    for a in arrays:
        if not isinstance(a, Tensor):
            raise TypeError(f"meshgrid needs pocaflow arrays, got {type(a).__name__}")
        if a.ndim != 1:
            raise ValueError(f"meshgrid needs 1-D arrays, got shape {a.shape}")
    common_device(arrays, "meshgrid")
    n = len(arrays)
    axes = list(range(n))
    if indexing == "xy" and n >= 2:
        axes[0], axes[1] = 1, 0
    shape = [0] * n
    for i, a in enumerate(arrays):
        shape[axes[i]] = a.shape[0]
    out = []
    for i, a in enumerate(arrays):
        view_shape = [1] * n
        view_shape[axes[i]] = a.shape[0]
        view = a.reshape(tuple(view_shape)).broadcast_to(tuple(shape))
        result = _n.empty(tuple(shape), dtype=a.dtype, device=a.device)
        result[...] = view
        out.append(result)
    return out

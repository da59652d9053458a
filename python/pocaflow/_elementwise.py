"""The few elementwise and utility functions of the array API standard that are compositions
of native ones: ``positive conj real imag`` (real dtypes only: complex is not supported) and
``diff``. Every other elementwise, statistical and searching function is native (``_pocaflow``).
"""

from __future__ import annotations

import builtins
from typing import Any

from . import _pocaflow as _n
from ._manipulation import _full_index, concat, normalize_axis
from ._pocaflow import Tensor

__all__ = ["conj", "diff", "imag", "positive", "real"]


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else _n.asarray(x)


def positive(x: Tensor, /) -> Tensor:
    """``+x``: a copy of ``x`` (numeric dtypes)."""
    x = _tensor(x)
    if x.dtype == _n.bool:
        raise TypeError("positive: expected a numeric dtype, got bool")
    return +x


def conj(x: Tensor, /) -> Tensor:
    """The complex conjugate: for the real dtypes pocaflow has, a copy of ``x``."""
    return _n.asarray(_tensor(x), copy=True)


def real(x: Tensor, /) -> Tensor:
    """The real part: for the real dtypes pocaflow has, a copy of ``x``."""
    return _n.asarray(_tensor(x), copy=True)


def imag(x: Tensor, /) -> Tensor:
    """The imaginary part: for the real dtypes pocaflow has, zeros like ``x``."""
    x = _tensor(x)
    return _n.zeros(x.shape, dtype=x.dtype, device=x.device)


def diff(
    x: Tensor,
    /,
    *,
    axis: int = -1,
    n: int = 1,
    prepend: Tensor | None = None,
    append: Tensor | None = None,
) -> Tensor:
    """The ``n``-th forward difference along ``axis`` (``x[1:] - x[:-1]``, ``n`` times; for
    ``bool`` arrays ``x[1:] != x[:-1]``, as NumPy), after joining ``prepend`` and ``append``
    to ``x`` along ``axis``."""
    x = _tensor(x)
    if x.ndim == 0:
        raise ValueError("diff needs an array of at least one dimension, got a 0-d array")
    if not isinstance(n, int) or isinstance(n, builtins.bool) or n < 0:
        raise ValueError(f"diff: n must be a non-negative integer, got {n!r}")
    axis = normalize_axis(axis, x.ndim)
    if prepend is not None or append is not None:
        parts = [p for p in (prepend, x, append) if p is not None]
        x = concat([_tensor(p) for p in parts], axis=axis)
    for _ in range(n):
        hi = x[_full_index(x.ndim, axis, slice(1, None))]
        lo = x[_full_index(x.ndim, axis, slice(None, -1))]
        x = _n.not_equal(hi, lo) if x.dtype == _n.bool else _n.subtract(hi, lo)
    return x

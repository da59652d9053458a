"""Manipulation functions of the array API standard. The view-producing ones (``reshape
permute_dims expand_dims squeeze flip broadcast_to moveaxis matrix_transpose unstack``) are the
native views; the ones that build new arrays (``concat stack tile repeat roll``) allocate the
result once and fill it by slice assignment from views, so they work the same on every device."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from . import _pocaflow as _n
from ._devices import common_device
from ._dtypes import result_type
from ._pocaflow import Tensor

__all__ = [
    "broadcast_arrays",
    "broadcast_shapes",
    "broadcast_to",
    "concat",
    "expand_dims",
    "flip",
    "matrix_transpose",
    "moveaxis",
    "nonzero",
    "permute_dims",
    "repeat",
    "reshape",
    "roll",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tile",
    "unstack",
]

AxisLike = Union[int, Sequence[int]]


def _array(x: Any, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} needs a pocaflow array, got {type(x).__name__}")
    return x


def axis_arg(axis: Any) -> int | tuple[int, ...]:
    """An axis argument as an int or a tuple of ints (NumPy integers and 0-d integer arrays
    count as ints)."""
    if hasattr(axis, "__index__"):
        return operator.index(axis)
    return tuple(operator.index(a) for a in axis)


def normalize_axis(axis: int, ndim: int) -> int:
    """``axis`` in ``[0, ndim)``; ``AxisError`` (a ValueError and an IndexError) outside
    ``[-ndim, ndim)``."""
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise _n.AxisError(f"axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


def _axes(axis: AxisLike, ndim: int) -> tuple[int, ...]:
    axis = axis_arg(axis)
    axes = (axis,) if isinstance(axis, int) else axis
    out = tuple(normalize_axis(a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return out


def _full_index(ndim: int, axis: int, key: Any) -> tuple[Any, ...]:
    return (slice(None),) * axis + (key,) + (slice(None),) * (ndim - axis - 1)


# --- views ------------------------------------------------------------------------------------


def reshape(x: Tensor, /, shape: Sequence[int], *, copy: bool | None = None) -> Tensor:
    """``x`` with a new shape (one entry may be -1): a view when the layout allows, else a copy;
    ``copy=True`` always copies, ``copy=False`` raises ``ValueError`` rather than copy."""
    return _array(x, "reshape").reshape(tuple(shape), copy=copy)


def permute_dims(x: Tensor, /, axes: Sequence[int]) -> Tensor:
    """A view of ``x`` with its axes permuted."""
    return _array(x, "permute_dims").permute_dims(tuple(axes))


def expand_dims(x: Tensor, /, axis: int = 0) -> Tensor:
    """A view of ``x`` with a new axis of size 1 at ``axis`` (in ``[-ndim-1, ndim]``)."""
    return _array(x, "expand_dims").expand_dims(axis)


def squeeze(x: Tensor, /, axis: AxisLike) -> Tensor:
    """A view of ``x`` without the given axes, which must have size 1."""
    return _array(x, "squeeze").squeeze(axis_arg(axis))


def flip(x: Tensor, /, *, axis: AxisLike | None = None) -> Tensor:
    """A view of ``x`` with the order of elements along ``axis`` (default: every axis)
    reversed."""
    x = _array(x, "flip")
    return x.flip(None if axis is None else axis_arg(axis))


def broadcast_to(x: Tensor, /, shape: Sequence[int]) -> Tensor:
    """A view of ``x`` broadcast to ``shape`` (elements repeat in it: write to it only with
    care)."""
    x = _array(x, "broadcast_to")
    target = tuple(operator.index(d) for d in shape)
    if any(d < 0 for d in target):
        raise ValueError(f"cannot broadcast an array of shape {x.shape} to shape {target}")
    return x.broadcast_to(target)


def moveaxis(x: Tensor, source: AxisLike, destination: AxisLike, /) -> Tensor:
    """A view of ``x`` with the axes ``source`` moved to ``destination``."""
    x = _array(x, "moveaxis")
    return x.moveaxis(axis_arg(source), axis_arg(destination))


def matrix_transpose(x: Tensor, /) -> Tensor:
    """A view of ``x`` with its last two axes swapped."""
    x = _array(x, "matrix_transpose")
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose needs at least 2 dimensions, got shape {x.shape}")
    return x.matrix_transpose()


def unstack(x: Tensor, /, *, axis: int = 0) -> tuple[Tensor, ...]:
    """The views of ``x`` along ``axis``, as a tuple."""
    x = _array(x, "unstack")
    if x.ndim == 0:
        raise ValueError("unstack needs an array of at least one dimension")
    axis = normalize_axis(axis, x.ndim)
    return tuple(x[_full_index(x.ndim, axis, i)] for i in range(x.shape[axis]))


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The shape that ``shapes`` broadcast to; ``ValueError`` naming the shapes if none."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, d in enumerate(s):
            j = ndim - len(s) + i
            if d == out[j] or d == 1:
                continue
            if out[j] == 1:
                out[j] = d
                continue
            shown = " and ".join(str(tuple(t)) for t in shapes)
            raise ValueError(f"shapes {shown} cannot be broadcast together")
    return tuple(out)


def broadcast_arrays(*arrays: Tensor) -> list[Tensor]:
    """Views of ``arrays`` broadcast to their common shape."""
    for a in arrays:
        _array(a, "broadcast_arrays")
    if not arrays:
        return []
    common_device(arrays, "broadcast_arrays")
    shape = broadcast_shapes(*(a.shape for a in arrays))
    return [a.broadcast_to(shape) for a in arrays]


def take(x: Tensor, indices: Any, /, *, axis: int | None = None) -> Tensor:
    """The elements of ``x`` at integer ``indices`` along ``axis`` (optional for 1-D ``x``)."""
    x = _array(x, "take")
    if axis is None:
        if x.ndim != 1:
            raise ValueError(f"take: axis is required for an array of shape {x.shape}")
        axis = 0
    axis = normalize_axis(axis, x.ndim)
    if not isinstance(indices, Tensor):
        indices = _n.asarray(indices, device=x.device)
    return x.take(indices, axis)


def take_along_axis(x: Tensor, indices: Tensor, /, *, axis: int = -1) -> Tensor:
    """The elements of ``x`` at ``indices`` (same rank as ``x``, broadcast against it on the
    other axes) along ``axis``."""
    x = _array(x, "take_along_axis")
    if not isinstance(indices, Tensor):
        indices = _n.asarray(indices, device=x.device)
    return x.take_along_axis(indices, normalize_axis(axis, x.ndim))


def nonzero(x: Tensor, /) -> tuple[Tensor, ...]:
    """The int64 indices of the nonzero elements of ``x``, one array per axis."""
    x = _array(x, "nonzero")
    if x.ndim == 0:
        raise ValueError("nonzero needs an array of at least one dimension")
    return x.nonzero()


# --- new arrays ---------------------------------------------------------------------------------


def _cast(a: Tensor, dtype: Any) -> Tensor:
    return a if a.dtype == dtype else a.astype(dtype)


def concat(arrays: Sequence[Tensor], /, *, axis: int | None = 0) -> Tensor:
    """``arrays`` joined along ``axis`` (``None``: flattened first); the dtype is their
    ``result_type``."""
    arrays = [_array(a, "concat") for a in arrays]
    if not arrays:
        raise ValueError("concat needs at least one array")
    device = common_device(arrays, "concat")
    dtype = result_type(*arrays)
    if axis is None:
        arrays = [a.reshape((-1,)) for a in arrays]
        axis = 0
    first = arrays[0]
    if first.ndim == 0:
        raise ValueError("concat needs arrays of at least one dimension, got a 0-d array")
    axis = normalize_axis(axis, first.ndim)
    for a in arrays[1:]:
        if a.ndim != first.ndim or any(
            d != e for i, (d, e) in enumerate(zip(a.shape, first.shape)) if i != axis
        ):
            raise ValueError(
                f"concat: shapes {first.shape} and {a.shape} differ outside axis {axis}"
            )
    shape = list(first.shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = _n.empty(tuple(shape), dtype=dtype, device=device)
    start = 0
    for a in arrays:
        n = a.shape[axis]
        if n and a.size:
            out[_full_index(out.ndim, axis, slice(start, start + n))] = _cast(a, dtype)
        start += n
    return out


def stack(arrays: Sequence[Tensor], /, *, axis: int = 0) -> Tensor:
    """``arrays`` (all of one shape) joined along a new axis ``axis``; the dtype is their
    ``result_type``."""
    arrays = [_array(a, "stack") for a in arrays]
    if not arrays:
        raise ValueError("stack needs at least one array")
    device = common_device(arrays, "stack")
    dtype = result_type(*arrays)
    first = arrays[0]
    for a in arrays[1:]:
        if a.shape != first.shape:
            raise ValueError(f"stack needs arrays of one shape, got {first.shape} and {a.shape}")
    axis = normalize_axis(axis, first.ndim + 1)
    shape = first.shape[:axis] + (len(arrays),) + first.shape[axis:]
    out = _n.empty(shape, dtype=dtype, device=device)
    if out.size:
        for i, a in enumerate(arrays):
            out[_full_index(out.ndim, axis, i)] = _cast(a, dtype)
    return out


def _materialize(view: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A new C-contiguous array with the elements of ``view``, reshaped to ``shape``."""
    out = _n.empty(view.shape, dtype=view.dtype, device=view.device)
    if out.size:
        out[...] = view
    return out.reshape(shape)


def tile(x: Tensor, repetitions: Sequence[int], /) -> Tensor:
    """``x`` repeated ``repetitions[i]`` times along axis ``i`` (the shorter of ``x.shape`` and
    ``repetitions`` is padded with leading ones)."""
    x = _array(x, "tile")
    reps = tuple(operator.index(r) for r in repetitions)
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: repetitions must be non-negative, got {reps}")
    ndim = max(x.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    # (1, s0, 1, s1, ...) broadcast to (r0, s0, r1, s1, ...), copied, merged to (r0 s0, ...).
    split = tuple(d for s in shape for d in (1, s))
    wide = tuple(d for r, s in zip(reps, shape) for d in (r, s))
    view = x.reshape(split).broadcast_to(wide)
    return _materialize(view, tuple(r * s for r, s in zip(reps, shape)))


def repeat(x: Tensor, repeats: int | Tensor, /, *, axis: int | None = None) -> Tensor:
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (``None``: of the
    flattened ``x``); ``repeats`` is an int or a 1-D integer array of shape ``(1,)`` or
    ``(x.shape[axis],)``."""
    x = _array(x, "repeat")
    if axis is None:
        x = x.reshape((-1,))
        axis = 0
    axis = normalize_axis(axis, x.ndim)
    n = x.shape[axis]
    if isinstance(repeats, Tensor):
        if repeats.dtype.kind not in "iu":
            raise TypeError(f"repeat: repeats must have an integer dtype, got {repeats.dtype}")
        if repeats.ndim != 1 or repeats.shape[0] not in (1, n):
            raise ValueError(
                f"repeat: repeats of shape {repeats.shape} do not fit axis {axis} of shape "
                f"{x.shape}"
            )
        counts = repeats.numpy().astype(np.int64)
    elif isinstance(repeats, (list, tuple, np.ndarray)):
        counts = np.asarray(repeats)
        if counts.dtype.kind not in "iu" or counts.ndim != 1 or counts.shape[0] not in (1, n):
            raise ValueError(f"repeat: repeats {repeats!r} do not fit axis {axis} of {x.shape}")
        counts = counts.astype(np.int64)
    else:
        counts = np.asarray([operator.index(repeats)], dtype=np.int64)
    if (counts < 0).any():
        raise ValueError("repeat: repeats must be non-negative")
    if counts.shape[0] == 1:
        r = int(counts[0])
        # (..., n, 1, ...) broadcast to (..., n, r, ...), copied, merged to (..., n r, ...).
        split = x.shape[: axis + 1] + (1,) + x.shape[axis + 1 :]
        wide = x.shape[: axis + 1] + (r,) + x.shape[axis + 1 :]
        final = x.shape[:axis] + (n * r,) + x.shape[axis + 1 :]
        return _materialize(x.reshape(split).broadcast_to(wide), final)
    index = np.repeat(np.arange(n, dtype=np.int64), counts)
    return x.take(_n.asarray(index, device=x.device), axis)


def roll(x: Tensor, /, shift: int | Sequence[int], *, axis: AxisLike | None = None) -> Tensor:
    """A new array with the elements of ``x`` shifted by ``shift`` along ``axis`` (``None``:
    over the flattened array, the shape kept), those past the end coming back at the start."""
    x = _array(x, "roll")
    shift = axis_arg(shift)
    if axis is None:
        if not isinstance(shift, int):
            if len(shift) != 1:
                raise ValueError("roll: a sequence of shifts needs as many axes")
            shift = shift[0]
        flat = x.reshape((-1,))
        return roll(flat, shift, axis=0).reshape(x.shape)
    axis = axis_arg(axis)
    axes = (axis,) if isinstance(axis, int) else axis
    shifts = (shift,) * len(axes) if isinstance(shift, int) else shift
    if len(shifts) != len(axes):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(axes)} axes")
    total = [0] * x.ndim
    for s, a in zip(shifts, axes):
        total[normalize_axis(a, x.ndim)] += operator.index(s)
    out = _n.empty(x.shape, dtype=x.dtype, device=x.device)
    if not out.size:
        return out
    # Every combination of the two pieces of each shifted axis is one block copy.
    pieces: list[list[tuple[slice, slice]]] = []
    for d, s in zip(x.shape, total):
        s %= d
        if s == 0:
            pieces.append([(slice(None), slice(None))])
        else:
            pieces.append(
                [(slice(s, None), slice(None, d - s)), (slice(None, s), slice(d - s, None))]
            )
    for combo in itertools.product(*pieces):
        dst = tuple(c[0] for c in combo)
        src = tuple(c[1] for c in combo)
        out[dst] = x[src]
    return out

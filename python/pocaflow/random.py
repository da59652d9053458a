"""Counter-based random numbers (Philox4x32-10): the same seed gives the same numbers on the CPU
and on CUDA.

A :class:`Generator` is a seed and a counter. Each call fills its output from the Philox stream
at the current counter and advances the counter past the blocks it used, so two generators made
with one seed produce identical sequences of arrays on any mix of devices.

>>> import pocaflow as pf
>>> g = pf.random.Generator(7)
>>> x = g.normal((2, 3), dtype=pf.float32)
>>> pf.random.Generator(7).normal((2, 3), dtype=pf.float32).numpy().tolist() == x.numpy().tolist()
True
"""

from __future__ import annotations

import operator
import threading
from typing import Any

import numpy as np

from . import _pocaflow as _n
from ._creation import ShapeLike, _shape
from ._dtypes import as_dtype, iinfo
from ._pocaflow import Tensor

__all__ = ["Generator", "default_generator", "integers", "normal", "seed", "uniform"]

_SEED_MASK = (1 << 64) - 1


def _entropy() -> int:
    return int(np.random.SeedSequence().entropy) & _SEED_MASK


class Generator:
    """A Philox4x32-10 stream: ``seed`` (an int; None draws one from the OS) and a counter that
    starts at 0 and advances with every call."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = _entropy() if seed is None else self._check_seed(seed)
        self._counter = 0
        self._lock = threading.Lock()

    @staticmethod
    def _check_seed(seed: Any) -> int:
        if isinstance(seed, bool):
            raise TypeError("seed must be an int, got a bool")
        seed = operator.index(seed)
        if not 0 <= seed <= _SEED_MASK:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        return seed

    @property
    def seed(self) -> int:
        """The seed this generator was made with."""
        return self._seed

    @property
    def counter(self) -> int:
        """The Philox block counter of the next call."""
        return self._counter

    def _fill(self, shape: ShapeLike, dtype: Any, device: Any, kind: str, a: Any, b: Any) -> Tensor:
        shape = _shape(shape)
        with self._lock:  # device None: the default device
            out, used = _n.random_fill(shape, dtype, device, kind, a, b, self._seed, self._counter)
            self._counter += int(used)
        return out

    def normal(
        self,
        shape: ShapeLike,
        mean: float = 0.0,
        std: float = 1.0,
        dtype: Any = None,
        device: Any = None,
    ) -> Tensor:
        """Normally distributed floats (default dtype float64)."""
        dt = _float_dtype(dtype, "normal")
        mean, std = float(mean), float(std)
        if not std >= 0.0:
            raise ValueError(f"normal: std must be non-negative, got {std}")
        return self._fill(shape, dt, device, "normal", mean, std)

    def uniform(
        self,
        shape: ShapeLike,
        low: float = 0.0,
        high: float = 1.0,
        dtype: Any = None,
        device: Any = None,
    ) -> Tensor:
        """Floats uniformly distributed in ``[low, high)`` (default dtype float64)."""
        dt = _float_dtype(dtype, "uniform")
        low, high = float(low), float(high)
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(f"uniform: bounds must be finite, got [{low}, {high})")
        return self._fill(shape, dt, device, "uniform", low, high)

    def integers(
        self,
        low: int,
        high: int | None = None,
        shape: ShapeLike = (),
        dtype: Any = _n.int64,
        device: Any = None,
    ) -> Tensor:
        """Integers uniformly distributed in ``[low, high)`` (``high=None``: in ``[0, low)``)."""
        dt = as_dtype(dtype)
        if dt.kind not in "iu":
            raise TypeError(f"integers needs an integer dtype, got {dt.name}")
        low = operator.index(low)
        if high is None:
            low, high = 0, low
        high = operator.index(high)
        if low >= high:
            raise ValueError(f"integers: low must be below high, got [{low}, {high})")
        info = iinfo(dt)
        if low < info.min or high - 1 > info.max:
            raise ValueError(
                f"integers: [{low}, {high}) is out of range for {dt.name} [{info.min}, {info.max}]"
            )
        return self._fill(shape, dt, device, "integers", low, high)

    def __repr__(self) -> str:
        return f"pocaflow.random.Generator(seed={self._seed}, counter={self._counter})"


def _float_dtype(dtype: Any, name: str) -> Any:
    dt = _n.float64 if dtype is None else as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{name} needs a floating-point dtype, got {dt.name}")
    return dt


_global = Generator()


def default_generator() -> Generator:
    """The generator behind the module-level functions."""
    return _global


def seed(s: int) -> None:
    """Restarts the global generator at seed ``s`` (counter 0)."""
    global _global
    _global = Generator(s)


def normal(
    shape: ShapeLike,
    mean: float = 0.0,
    std: float = 1.0,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Normal floats from the global generator (see :meth:`Generator.normal`)."""
    return _global.normal(shape, mean, std, dtype, device)


def uniform(
    shape: ShapeLike,
    low: float = 0.0,
    high: float = 1.0,
    dtype: Any = None,
    device: Any = None,
) -> Tensor:
    """Uniform floats from the global generator (see :meth:`Generator.uniform`)."""
    return _global.uniform(shape, low, high, dtype, device)


def integers(
    low: int,
    high: int | None = None,
    shape: ShapeLike = (),
    dtype: Any = _n.int64,
    device: Any = None,
) -> Tensor:
    """Uniform integers from the global generator (see :meth:`Generator.integers`)."""
    return _global.integers(low, high, shape, dtype, device)

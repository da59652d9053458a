"""What a suite works with: the run's context (device, peers, sizes, dtypes, quick), its
cases, random inputs, and :func:`measure`, which builds each library's call, checks its
result and times them all interleaved."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._peers import Peer, Unsupported
from ._report import THROUGHPUT, TIME, value_row
from ._timing import Plan, interleaved

#: A library's call for one case, built from its peer (may raise :class:`Unsupported`).
Builder = Callable[[Peer], Callable[[], Any]]
#: Largest caches the rotating inputs must overflow: the H200's L2 (60 MiB) on CUDA, a
#: 2 MiB-per-core L2 on the CPU (the shared L3 is not counted: BLAS benchmarks do not).
CACHE_BYTES = {"cuda": 64 << 20, "cpu": 4 << 20}
#: Random arrays longer than this repeat a block of this many elements (odd, so that the
#: repeats do not line up with rows).
BLOCK = (1 << 22) + 7


@dataclass
class Context:
    """One run: the device, the libraries on it (pocaflow first), the sizes and dtypes asked
    for (None: each suite's defaults), ``--quick``, and a seeded generator."""

    device: str
    peers: dict[str, Peer]
    sizes: list[int] | None = None
    dtypes: list[str] | None = None
    quick: bool = False
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    _shared_key: object = field(default=None, repr=False)
    _shared: Any = field(default=None, repr=False)

    def pick_sizes(self, cpu: Sequence[int], cuda: Sequence[int]) -> list[int]:
        """``--sizes`` if given, else the suite's defaults for the device."""
        return list(self.sizes) if self.sizes else list(cpu if self.device == "cpu" else cuda)

    def pick_dtypes(self, cpu: Sequence[str], cuda: Sequence[str]) -> list[str]:
        """``--dtype`` if given, else the suite's defaults for the device."""
        return list(self.dtypes) if self.dtypes else list(cpu if self.device == "cpu" else cuda)

    def _fill(self, shape: int | tuple[int, ...], draw: Callable[[int], np.ndarray]) -> np.ndarray:
        """``draw(size)`` in ``shape``; past :data:`BLOCK` elements a drawn block repeated
        (drawing hundreds of millions of values would take longer than timing them)."""
        size = math.prod(shape) if isinstance(shape, tuple) else shape
        if size <= BLOCK:
            return draw(size).reshape(shape)
        return np.resize(draw(BLOCK), size).reshape(shape)

    def nonzero(self, shape: int | tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """Uniform in [0.5, 1.5) with random signs: never zero, and ``exp`` stays finite."""

        def draw(size: int) -> np.ndarray:
            x = self.rng.random(size, dtype=dtype) + dtype(0.5)
            return np.where(self.rng.random(size, dtype=np.float32) < 0.5, -x, x)

        return self._fill(shape, draw)

    def normal(self, shape: int | tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """Standard normal values, exact zeros replaced by 0.5."""

        def draw(size: int) -> np.ndarray:
            x = self.rng.standard_normal(size, dtype=dtype)
            return np.where(x == 0, dtype(0.5), x)

        return self._fill(shape, draw)

    def mask(self, n: int) -> np.ndarray:
        """``n`` booleans, about half of them true."""
        return self._fill(n, lambda size: self.rng.random(size, dtype=np.float32) < 0.5)

    def indices(self, n: int) -> np.ndarray:
        """``n`` int64 indices into ``range(n)``."""
        return self._fill(n, lambda size: self.rng.integers(0, n, size, dtype=np.int64))

    def shared(self, key: object, make: Callable[[], Any]) -> Any:
        """``make()``, kept for the next case that asks with the same ``key`` (one entry:
        consecutive cases share their inputs, memory is held for one set only)."""
        if self._shared_key != key:
            self._shared = None
            self._shared, self._shared_key = make(), key
        return self._shared


@dataclass
class Case:
    """One case of a suite: its label (for the progress bar) and the call that measures it
    and returns its rows."""

    suite: str
    label: str
    run: Callable[[], list[dict]]


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """``||got - ref|| / ||ref||`` in float64 (NaN when anything is NaN: unwritten output)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        raise AssertionError(f"shape {got.shape}, expected {ref.shape}")
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-300))


def to_host(peer: Peer, y: Any) -> np.ndarray:
    """A call's result as float64 on the host (NumPy results as they are)."""
    return np.asarray(y, np.float64) if isinstance(y, np.ndarray) else peer.get(y)


def measure(
    ctx: Context,
    suite: str,
    case: str,
    builders: dict[str, Builder],
    unit: str,
    plan: Plan,
    work: float = 1.0,
    clock: str = "device",
    bars: dict[str, float] | None = None,
    reference: np.ndarray | None = None,
    tol: float = 0.0,
    view: Callable[[np.ndarray], np.ndarray] = lambda y: y,
    **extra: object,
) -> dict:
    """One row: each library in ``builders`` that is there and supports the case runs once
    (its output, through ``view`` (a slice, taken on the device), checked against
    ``reference`` when given: pocaflow's error over ``tol`` raises), then all are timed
    interleaved. A builder named ``"library variant"`` runs on that library's peer (a second
    column of the same library, for example pocaflow in another dtype). A peer that raises is
    left out of the row, with its error under ``failed``; pocaflow raising fails the case.
    ``work`` is the FLOPs or bytes of one call for a throughput ``unit``; a time unit reports
    the time per call."""
    contenders, errors, unsupported, failed = {}, {}, {}, {}
    for name, build in builders.items():
        # "library variant" (for example "pocaflow f32") is another build on that library.
        peer = ctx.peers.get(name.partition(" ")[0])
        if peer is None:
            continue
        try:
            fn = build(peer)
            out = fn()
            if reference is not None:
                errors[name] = rel_error(to_host(peer, view(out)), reference)
        except Unsupported as e:
            unsupported[name] = str(e)
            continue
        except Exception as e:  # a peer that fails loses its column, not the row
            if name == "pocaflow":
                raise
            failed[name] = f"{type(e).__name__}: {e}"
            continue
        contenders[name] = (peer, fn)
    if "pocaflow" not in contenders:
        raise Unsupported(unsupported.get("pocaflow", "pocaflow cannot run this case"))
    if reference is not None and not errors["pocaflow"] <= tol:
        raise AssertionError(f"pocaflow's relative error {errors['pocaflow']:.3e} > {tol:.1e}")
    seconds = interleaved(contenders, plan, clock)
    if unit in THROUGHPUT:
        values = {n: work / s / THROUGHPUT[unit] for n, s in seconds.items()}
    else:
        values = {n: s * TIME[unit] for n, s in seconds.items()}
    timer = "wall clock" if clock == "host" else contenders["pocaflow"][0].timer
    if errors:
        extra["errors"] = errors
    if unsupported:
        extra["unsupported"] = unsupported
    if failed:
        extra["failed"] = failed
    return value_row(suite, case, unit, values, timer, bars, seconds=seconds, **extra)

"""How a case is timed: warm-up, block sizes, repeats interleaved across the libraries in a
rotating order, medians; and the input sets that rotate so that repeated calls do not just
measure a cache."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._peers import Peer

#: The pause after a host block of a BLAS product by NumPy/SciPy/torch: their idle threads
#: spin for a while (measured here: pocaflow's next 1024^2 product ran 14% slower after 0.1 s,
#: as fast as alone after 0.3 s).
BLAS_SETTLE_S = 0.3


@dataclass(frozen=True)
class Plan:
    """How long to time one case.

    ``repeats`` samples per library after ``warmup`` untimed calls; each sample is a block of
    calls lasting about ``target_s`` (at most ``max_calls`` calls); ``settle_s`` is a pause
    after each host block of a peer library, so that its idle threads (OpenBLAS's spin for
    a while) do not take a core from the next library's block."""

    repeats: int
    target_s: float
    max_calls: int = 200
    warmup: int = 2
    settle_s: float = 0.0


def quick_or_full(quick: bool, **scale: float) -> Plan:
    """The default plan of a run: 3 repeats of 10 ms blocks with ``--quick``, else 7 of
    30 ms; ``scale`` overrides a field (``max_calls=10_000``)."""
    base = dict(repeats=3, target_s=0.01) if quick else dict(repeats=7, target_s=0.03)
    return Plan(**(base | scale))


def _rotated(names: list[str], r: int) -> list[str]:
    k = r % len(names)
    return names[k:] + names[:k]


def interleaved(
    contenders: dict[str, tuple[Peer, Callable[[], Any]]], plan: Plan, clock: str = "device"
) -> dict[str, float]:
    """Median seconds per call of each contender ``name: (peer, fn)``.

    Each contender is warmed up and its block size set from one timed call; then every repeat
    times one block of each, in an order that rotates by one each repeat. ``clock="device"``
    uses the peer's events on a GPU (wall clock on the host); ``"host"`` always the wall clock
    around the block and one final synchronization. A host library's compute block (device
    clock on the CPU) follows one untimed call, which wakes its threads and refills the caches
    after the other libraries' turns."""
    calls = {}
    for name, (peer, fn) in contenders.items():
        for _ in range(plan.warmup):
            fn()
        peer.sync()
        once = max(peer.seconds_per_call(fn, 1, clock), 1e-9)
        calls[name] = int(min(plan.max_calls, max(1, math.ceil(plan.target_s / once))))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(plan.repeats):
        for name in _rotated(list(contenders), r):
            peer, fn = contenders[name]
            if clock == "device" and peer.timer == "wall clock":
                fn()
            samples[name].append(peer.seconds_per_call(fn, calls[name], clock))
            if plan.settle_s and peer.name != "pocaflow" and peer.timer == "wall clock":
                time.sleep(plan.settle_s)
    return {name: statistics.median(s) for name, s in samples.items()}


def input_sets(set_bytes: int, cache_bytes: int) -> int:
    """How many distinct input sets of ``set_bytes`` to rotate through so that together they
    exceed twice the cache (at most 4)."""
    return min(4, max(1, math.ceil(2 * cache_bytes / max(set_bytes, 1))))


def cycling(fns: list[Callable[[], Any]]) -> Callable[[], Any]:
    """One call that runs the next of ``fns`` each time, round-robin."""
    state = {"i": 0}

    def call() -> Any:
        i = state["i"]
        state["i"] = (i + 1) % len(fns)
        return fns[i]()

    return call

#!/usr/bin/env python3
"""CPU elementwise and reduction benchmark (issue 9's CPU bars): pocaflow against NumPy on 64 MiB
of float32, on this machine.

    python bench/cpu_elementwise_bench.py [--json out.json] [--repeats 15]

Cases (NumPy's elementwise loops are single-threaded; pocaflow runs with 1 and with 2 threads,
each thread count in its own process with ``RAYON_NUM_THREADS`` set, since rayon's pool is
sized once per process):
- ``add`` with ``out=`` of two 2^24-element float32 arrays: bars >= 1.0x NumPy on one thread and
  >= 1.4x with two;
- ``exp`` of a 2^24-element float32 array (with ``out=``): bar >= 1.0x NumPy;
- ``sum`` over all and over the last axis of a (4096, 4096) float32 array: bar >= 1.0x NumPy.

Method: random inputs (never zeros), outputs preallocated and poisoned with NaN; in one child
process per thread count, blocks of 3 calls of NumPy and of pocaflow alternate (a warm-up block
each, then ``--repeats`` blocks each, 20 ms apart, so neither library's threads take a core
from the other), and the medians are compared. Prints the table last.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

N = 1 << 24
SHAPE = (4096, 4096)
BARS = {
    ("add out=", 1): 1.0,
    ("add out=", 2): 1.4,
    ("exp out=", 1): 1.0,
    ("sum all", 1): 1.0,
    ("sum axis=-1", 1): 1.0,
}


def block_ms(fn: Callable[[], object], calls: int) -> float:
    """Milliseconds per call over a block of ``calls`` calls."""
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e3


def inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    a = rng.uniform(0.5, 1.5, N).astype(np.float32)
    b = rng.uniform(0.5, 1.5, N).astype(np.float32)
    m = rng.uniform(0.5, 1.5, SHAPE).astype(np.float32)
    return a, b, m


def cases(repeats: int) -> dict[str, dict[str, float]]:
    """Per case, NumPy's and pocaflow's median time: blocks of 3 calls of one library, then of
    the other, alternating (``repeats`` blocks each, after a warm-up block), in one process."""
    import pocaflow as pf

    a, b, m = inputs()
    out = np.full(N, np.nan, dtype=np.float32)
    pa, pb, pm, po = (pf.asarray(x) for x in (a, b, m, out))
    pairs = {
        "add out=": (lambda: np.add(a, b, out=out), lambda: pf.add(pa, pb, out=po)),
        "exp out=": (lambda: np.exp(a, out=out), lambda: pf.exp(pa, out=po)),
        "sum all": (lambda: np.sum(m), lambda: pf.sum(pm)),
        "sum axis=-1": (lambda: np.sum(m, axis=-1), lambda: pf.sum(pm, axis=-1)),
    }
    res = {}
    for case, (numpy_fn, ours_fn) in pairs.items():
        block_ms(numpy_fn, 3)
        block_ms(ours_fn, 3)
        t_np, t_pf = [], []
        for _ in range(repeats):
            t_np.append(block_ms(numpy_fn, 3))
            time.sleep(0.02)
            t_pf.append(block_ms(ours_fn, 3))
            time.sleep(0.02)
        res[case] = dict(numpy=statistics.median(t_np), pocaflow=statistics.median(t_pf))
    # The results must be NumPy's (to float32 rounding), or the timing means nothing.
    pf.exp(pa, out=po)
    np.testing.assert_allclose(out, np.exp(a), rtol=3e-7)
    np.testing.assert_allclose(float(pf.sum(pm)), float(np.sum(m, dtype=np.float64)), rtol=1e-6)
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(cases(args.repeats)))
        return
    rows = []
    for threads in (1, 2):
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads), POCAFLOW_NUM_THREADS=str(threads))
        child = subprocess.run(
            [sys.executable, __file__, "--child", "1", "--repeats", str(args.repeats)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        ours = json.loads(child.stdout.strip().splitlines()[-1])
        for case, t in ours.items():
            ms, numpy_ms = t["pocaflow"], t["numpy"]
            ratio = numpy_ms / ms
            bar = BARS.get((case, threads))
            rows.append(
                dict(
                    case=case,
                    threads=threads,
                    pocaflow_ms=ms,
                    numpy_ms=numpy_ms,
                    ratio=ratio,
                    bar=bar,
                    ok=None if bar is None else ratio >= bar,
                )
            )
    if args.json:
        with open(args.json, "w") as f:
            meta = dict(date=datetime.date.today().isoformat(), numpy=np.__version__, n=N)
            json.dump(dict(meta=meta, rows=rows), f, indent=1)
    print(f"{'case':<14} {'threads':>7} {'pocaflow ms':>12} {'numpy ms':>9} {'ratio':>6}  bar")
    for r in rows:
        bar = "" if r["bar"] is None else f">= {r['bar']}  {'ok' if r['ok'] else 'MISSED'}"
        print(
            f"{r['case']:<14} {r['threads']:>7} {r['pocaflow_ms']:>12.3f} "
            f"{r['numpy_ms']:>9.3f} {r['ratio']:>6.2f}  {bar}"
        )


if __name__ == "__main__":
    main()

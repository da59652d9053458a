"""What the benchmarks share: the commit they measured, their report (rows, JSON, summary) and
their timers."""

from __future__ import annotations

import pathlib
import subprocess


def measured_commit() -> str:
    """The commit of the code under test: the GPU machine gets a bundle built at one commit
    (``.gpu/COMMIT``), not this checkout's git; elsewhere, ``git rev-parse``."""
    bundled = pathlib.Path(__file__).resolve().parent.parent / ".gpu" / "COMMIT"
    if bundled.exists():
        return bundled.read_text().strip()
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()


class Report:
    """The rows of one benchmark run (ratio oriented so that higher is better for pocaflow):
    printed as they come, then written as JSON ``{meta, rows}`` and summed up in a table."""

    def __init__(self, width: int = 48, peer: str = "torch"):
        self.rows: list[dict] = []
        self.width, self.peer = width, peer

    def header(self) -> None:
        print(f"{'case':<{self.width}} {'pocaflow':>12} {self.peer:>12}")

    def row(self, case: str, unit: str, ours: float, peer: float, ratio: float, bar) -> None:
        ok = None if bar is None else ratio >= bar
        self.rows.append(
            {"case": case, "unit": unit, "pocaflow": ours, self.peer: peer, "ratio": ratio}
            | {"bar": bar, "ok": ok}
        )
        w = self.width
        print(f"{case:<{w}} {ours:>12.4g} {peer:>12.4g} {unit:<8} ratio {ratio:6.3f}", flush=True)

    def run(self, sections, *args) -> None:
        """Each section with ``args``; one that raises is reported and the rest still run."""
        for section in sections:
            try:
                section(*args)
            except Exception as e:  # one broken section must not hide the rest
                name = getattr(section, "__name__", "section")
                print(f"{name} FAILED: {e!r}")
                self.rows.append(dict(case=name, error=repr(e), ok=False))

    def finish(self, path: str, **meta) -> None:
        """Writes the JSON (with the date and the measured commit) and prints the summary."""
        import datetime
        import json

        meta = dict(
            date=datetime.datetime.now().isoformat(timespec="seconds"),
            commit=measured_commit(),
            **meta,
        )
        with open(path, "w") as f:
            json.dump(dict(meta=meta, rows=self.rows), f, indent=1)
        w = self.width
        print()
        heads = f"{'pocaflow':>10} {self.peer:>10} {'unit':<8} {'ratio':>6} {'bar':>5}  ok"
        print(f"{'case':<{w}} {heads}")
        for r in self.rows:
            if "error" in r:
                print(f"{r['case']:<{w}} ERROR {r['error']}")
                continue
            bar = "" if r["bar"] is None else f"{r['bar']:.2f}"
            print(
                f"{r['case']:<{w}} {r['pocaflow']:>10.4g} {r[self.peer]:>10.4g} {r['unit']:<8} "
                f"{r['ratio']:>6.3f} {bar:>5}  {r['ok']}"
            )


def gpu_ms(fn, event_cls, reps: int = 21, warmup: int = 3) -> float:
    """Median GPU time of one call, by the library's events (``event_cls``: pocaflow's or
    torch's), after ``warmup`` calls."""
    import statistics

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start, end = event_cls(enable_timing=True), event_cls(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def host_us(fn, sync, calls: int = 10_000) -> float:
    """Median over 5 blocks of the host time per call, with one ``sync`` per block."""
    import statistics
    import time

    for _ in range(200):
        fn()
    sync()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def wall_ms(fn, reps: int = 11) -> float:
    """Median wall-clock time of one call in milliseconds, after one warm-up call."""
    import statistics
    import time

    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)

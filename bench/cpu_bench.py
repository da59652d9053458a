"""CPU GEMM benchmark: pocaflow's own GEMM against NumPy's ``matmul`` (its bundled OpenBLAS) and
the ``matrixmultiply`` crate, in one run, interleaved.

For every dtype, thread count and shape, each repeat times the three implementations one after
the other (in a rotating order), and the median of the repeats is reported. NumPy runs in this
process (``np.matmul(a, b, out=c)``, thread count set with threadpoolctl); pocaflow and
matrixmultiply run in the Rust helper ``crates/pocaflow/examples/bench_cpu.rs``, one process per
thread count, timed inside Rust. All three write into a preallocated C-order output.

Prints a table of GFLOP/s and ratios, checks the bars of the CPU GEMM issue, and writes
``bench/results/cpu-<date>.json`` and ``.png`` (GFLOP/s against n) plus a Markdown summary.

This is the half of the CPU benchmark the package cannot hold (it needs the Rust helper and a
cargo build); everything measured from Python, against NumPy, SciPy and torch, is
``python -m pocaflow.bench --device cpu`` (its gemm suite times ``pf.matmul`` in-process).

    python bench/cpu_bench.py            # the full run (about 6 minutes on 2 cores)
    python bench/cpu_bench.py --quick    # fewer sizes and repeats, for development
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
HELPER = ROOT / "target" / "release" / "examples" / "bench_cpu"
IMPLS = ("numpy", "pocaflow", "matrixmultiply")

SQUARE = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
#: (label, m, k, n): the skinny shapes of the issue.
SKINNY = [
    ("gemv n=1", 4096, 4096, 1),
    ("vecmat m=1", 1, 4096, 4096),
    ("skinny m=64", 64, 4096, 4096),
    ("skinny k=64", 4096, 64, 4096),
    ("skinny n=64", 4096, 4096, 64),
]
#: A shape is measured again when other processes took more than this share of the CPU.
FOREIGN_MAX = 0.02
#: Process names whose presence means the machine is busy with something else.
HEAVY = {"rustc", "cargo", "maturin", "cc1", "cc1plus", "ld", "nvcc", "cicc", "ptxas", "pytest"}


def busy_processes() -> list[str]:
    """Names of heavy processes (compilers, test runs) not started by this benchmark."""
    mine = {os.getpid()}
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        if name in HEAVY and int(stat.parent.name) not in mine and ppid not in mine:
            found.append(name)
    return found


def wait_until_idle(log: list[str], quiet_checks: int = 3, interval: float = 10.0) -> None:
    """Blocks until no heavy foreign process was seen on `quiet_checks` checks in a row."""
    quiet = 0
    while quiet < quiet_checks:
        busy = busy_processes()
        if busy:
            log.append(f"{time.strftime('%H:%M:%S')} waited: busy with {sorted(set(busy))}")
            print(f"  waiting for an idle machine (busy: {sorted(set(busy))})", file=sys.stderr)
            quiet = 0
        else:
            quiet += 1
        if quiet < quiet_checks:
            time.sleep(interval)


def cpu_jiffies(pids: list[int]) -> tuple[int, int]:
    """(CPU time the whole machine spent busy, including time stolen by the hypervisor; CPU time
    of the processes `pids`), in clock ticks."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    own = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        after = stat[stat.rindex(")") + 2 :].split()
        own += int(after[11]) + int(after[12])  # utime, stime (all threads)
    return user + nice + system + irq + softirq + steal, own


def top_snapshot() -> str:
    try:
        out = subprocess.run(["top", "-bn1"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""
    return "\n".join(out.splitlines()[:15])


class Helper:
    """One `bench_cpu serve` process: pocaflow and matrixmultiply on `threads` threads."""

    def __init__(self, threads: int) -> None:
        env = dict(os.environ, POCAFLOW_NUM_THREADS=str(threads), MATMUL_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen(
            [str(HELPER), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, line: str) -> float:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"bench_cpu exited while answering {line!r}")
        return float(reply)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


@dataclass
class Case:
    """One dtype, thread count and shape, and what each implementation measured."""

    dtype: str
    threads: int
    label: str
    m: int
    k: int
    n: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    check: float = 0.0
    foreign_cpu: float = 0.0

    @property
    def square(self) -> bool:
        return self.m == self.k == self.n

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n

    def gflops(self, impl: str) -> float:
        return self.flops / statistics.median(self.seconds[impl]) / 1e9

    def ratio(self, impl: str) -> float:
        return self.gflops("pocaflow") / self.gflops(impl)


class Runner:
    def __init__(self, threads: list[int], target: float, warmup: float, settle: float) -> None:
        self.helpers = {t: Helper(t) for t in threads}
        self.target = target
        self.warmup = warmup
        self.settle = settle
        self.np_ops: dict[tuple, tuple] = {}

    def close(self) -> None:
        for h in self.helpers.values():
            h.close()

    def numpy_time(self, case: Case, iters: int, warm: int) -> float:
        a, b, c = self.np_ops[(case.dtype, case.m, case.k, case.n)]
        for _ in range(warm):
            np.matmul(a, b, out=c)
        start = time.perf_counter()
        for _ in range(iters):
            np.matmul(a, b, out=c)
        return time.perf_counter() - start

    def time(self, impl: str, case: Case, iters: int, warm: int = 0) -> float:
        """Seconds for `iters` calls, after `warm` untimed ones."""
        if impl == "numpy":
            with threadpool_limits(case.threads, user_api="blas"):
                return self.numpy_time(case, iters, warm)
        helper = self.helpers[case.threads]
        shape = f"{case.m} {case.k} {case.n}"
        return helper.ask(f"time {impl} {case.dtype} {shape} {iters} {warm}")

    def run_watched(self, case: Case, reps: int) -> float:
        """`run`, returning the share of the machine's CPU time that processes other than this
        benchmark (or the hypervisor) took meanwhile."""
        pids = [os.getpid()] + [h.proc.pid for h in self.helpers.values()]
        start, (busy0, own0) = time.time(), cpu_jiffies(pids)
        self.run(case, reps)
        busy1, own1 = cpu_jiffies(pids)
        capacity = (time.time() - start) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        return max(0, (busy1 - busy0) - (own1 - own0)) / capacity

    def run(self, case: Case, reps: int) -> None:
        dt = np.float32 if case.dtype == "f32" else np.float64
        rng = np.random.default_rng(0)
        self.np_ops = {
            (case.dtype, case.m, case.k, case.n): (
                rng.uniform(-1, 1, (case.m, case.k)).astype(dt),
                rng.uniform(-1, 1, (case.k, case.n)).astype(dt),
                np.empty((case.m, case.n), dt),
            )
        }
        helper = self.helpers[case.threads]
        case.check = helper.ask(f"check {case.dtype} {case.m} {case.k} {case.n}")
        # Warm up, then size each sample to about `target` seconds. A sample whose calls are
        # short starts with untimed calls (about `warmup` seconds) that wake the threads and
        # caches after the previous library's turn.
        iters, warm = {}, {}
        for impl in IMPLS:
            once = max(self.time(impl, case, 1), 1e-7)
            iters[impl] = max(1, int(self.target / once))
            warm[impl] = int(self.warmup / once) + 1 if once < self.warmup else 0
        case.seconds = {impl: [] for impl in IMPLS}
        for r in range(reps):
            for i in range(len(IMPLS)):
                impl = IMPLS[(r + i) % len(IMPLS)]
                t = self.time(impl, case, iters[impl], warm[impl])
                case.seconds[impl].append(t / iters[impl])
                if impl == "numpy" and case.threads > 1:
                    # OpenBLAS's idle workers spin (sched_yield) for about 0.1 s before they
                    # sleep, taking the second core from whatever runs next: let them stop.
                    time.sleep(self.settle)


def peak_probe() -> dict[str, float]:
    out = subprocess.run([str(HELPER), "peak"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def peak_for(peak: dict[str, float], dtype: str, threads: int) -> float | None:
    return peak.get(f"zmm_{dtype}_{threads}t") or peak.get(f"ymm_{dtype}_{threads}t")


def evaluate(cases: list[Case]) -> list[dict]:
    """The bars of the issue, each with the measured ratios and whether it is met."""
    bars = []

    def bar(name: str, selected: list[Case], impl: str, need: float) -> None:
        ratios = [(c, c.ratio(impl)) for c in selected]
        if not ratios:
            return
        worst = min(ratios, key=lambda cr: cr[1])
        bars.append(
            {
                "bar": name,
                "need": need,
                "worst": round(worst[1], 3),
                "worst_case": f"{worst[0].label} {worst[0].dtype} {worst[0].threads}T",
                "met": worst[1] >= need,
            }
        )

    big = [c for c in cases if c.square and c.m in (1024, 2048, 4096)]
    bar("square n=1024/2048/4096 >= 0.95x NumPy", big, "numpy", 0.95)
    bar("every shape >= 1.0x matrixmultiply", cases, "matrixmultiply", 1.0)
    skinny = [c for c in cases if not c.square]
    bar("skinny shapes >= 0.8x NumPy", skinny, "numpy", 0.8)
    return bars


def table(cases: list[Case], peak: dict[str, float]) -> str:
    head = (
        "| shape (m x k x n) | dtype | threads | NumPy | pocaflow | matrixmultiply "
        "| pf/NumPy | pf/mm | pf % of peak |"
    )
    lines = [head, "|" + " --- |" * 9]
    for c in cases:
        p = peak_for(peak, c.dtype, c.threads)
        frac = f"{100 * c.gflops('pocaflow') / p:.0f}%" if p else "-"
        lines.append(
            f"| {c.label} ({c.m}x{c.k}x{c.n}) | {c.dtype} | {c.threads} "
            f"| {c.gflops('numpy'):.1f} | {c.gflops('pocaflow'):.1f} "
            f"| {c.gflops('matrixmultiply'):.1f} | {c.ratio('numpy'):.2f} "
            f"| {c.ratio('matrixmultiply'):.2f} | {frac} |"
        )
    return "\n".join(lines)


def plot(cases: list[Case], peak: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = sorted({c.dtype for c in cases})
    threads = sorted({c.threads for c in cases})
    fig, axes = plt.subplots(
        len(dtypes), len(threads), figsize=(6 * len(threads), 4.2 * len(dtypes)), squeeze=False
    )
    for row, dt in enumerate(dtypes):
        for col, t in enumerate(threads):
            ax = axes[row][col]
            square = [c for c in cases if c.dtype == dt and c.threads == t and c.square]
            ns = [c.m for c in square]
            for impl, style in zip(IMPLS, ("s-", "o-", "^-")):
                ax.plot(ns, [c.gflops(impl) for c in square], style, label=impl)
            p = peak_for(peak, dt, t)
            if p:
                ax.axhline(p, color="gray", ls="--", lw=1, label=f"FMA peak ({p:.0f})")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("n (square n x n x n)")
            ax.set_ylabel("GFLOP/s")
            ax.set_title(f"{dt}, {t} thread{'s' if t > 1 else ''}")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine_info() -> dict:
    """The machine and versions, as ``python -m pocaflow.bench`` records them."""
    from pocaflow.bench._machine import cpu_info, measured_commit

    return {
        **cpu_info(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": [
            {k: v for k, v in info.items() if k in ("internal_api", "version", "architecture")}
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ],
        "pocaflow_commit": measured_commit(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f64"], choices=["f32", "f64"])
    ap.add_argument("--sizes", type=int, nargs="+", help="square sizes (default 8..4096)")
    ap.add_argument("--no-skinny", action="store_true", help="square shapes only")
    ap.add_argument("--reps", type=int, help="repeats per shape (default 7, 5 from n=2048)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--no-save", action="store_true", help="print only")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for an idle machine")
    args = ap.parse_args()

    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--example", "bench_cpu"], cwd=ROOT, check=True
    )
    sizes = args.sizes or ([64, 1024, 2048] if args.quick else SQUARE)
    shapes = [(f"n={n}", n, n, n) for n in sizes]
    if not args.no_skinny:
        shapes += SKINNY
    load_log: list[str] = []
    if not args.no_wait:
        wait_until_idle(load_log)
    top_before = top_snapshot()
    peak = peak_probe()

    runner = Runner(args.threads, target=0.02 if args.quick else 0.05, warmup=0.05, settle=0.25)
    cases = []
    started = time.time()
    try:
        for dtype in args.dtypes:
            for threads in args.threads:
                for label, m, k, n in shapes:
                    if not args.no_wait and busy_processes():
                        wait_until_idle(load_log)
                    reps = args.reps or (3 if args.quick else (5 if m * k * n >= 2048**3 else 7))
                    case = Case(dtype, threads, label, m, k, n)
                    for attempt in range(1, 4):
                        foreign = runner.run_watched(case, reps)
                        busy = busy_processes()
                        if args.no_wait or (foreign <= FOREIGN_MAX and not busy):
                            break
                        # Something else ran during the measurement: wait, then measure again.
                        names = f" ({sorted(set(busy))})" if busy else ""
                        load_log.append(
                            f"{label} {dtype} {threads}T attempt {attempt}: other processes used "
                            f"{100 * foreign:.1f}% of the CPU{names}; measured again"
                        )
                        wait_until_idle(load_log)
                    case.foreign_cpu = foreign
                    cases.append(case)
                    print(
                        f"{label:>11} {dtype} {threads}T: "
                        + "  ".join(f"{i} {case.gflops(i):7.1f}" for i in IMPLS)
                        + f"   pf/np {case.ratio('numpy'):.2f}  pf/mm "
                        f"{case.ratio('matrixmultiply'):.2f}",
                        flush=True,
                    )
    finally:
        runner.close()
    elapsed = time.time() - started
    top_after = top_snapshot()
    # The probe's best of five, at the start and at the end: noise only ever lowers it.
    if not args.no_wait:
        wait_until_idle(load_log)
    peak = {key: max(v, peak.get(key, 0.0)) for key, v in peak_probe().items()}
    print("FMA peak probe (GFLOP/s):", json.dumps(peak))

    md = table(cases, peak)
    bars = evaluate(cases)
    print()
    print(md)
    print()
    for b in bars:
        status = "MET" if b["met"] else "NOT MET"
        print(f"{status:>7}: {b['bar']} (worst {b['worst']:.2f} at {b['worst_case']})")
    at_4096 = {
        f"{c.dtype} {c.threads}T": round(c.gflops("pocaflow") / p, 3)
        for c in cases
        if c.square and c.m == 4096 and (p := peak_for(peak, c.dtype, c.threads))
    }
    if at_4096:
        print("pocaflow at n=4096, fraction of the FMA peak:", at_4096)
    if args.no_save:
        return

    date = datetime.date.today().isoformat()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"cpu-{date}"
    how_checked = (
        "Before the run and before and after every shape, /proc was scanned for compilers and "
        f"test runs ({', '.join(sorted(HEAVY))}) not started by the benchmark, and the run "
        "waited until none was seen three times 10 s apart. During every shape the CPU time "
        "of the whole machine (/proc/stat, hypervisor steal included) was compared with that "
        "of the benchmark's own processes; a shape during which other processes took more "
        f"than {100 * FOREIGN_MAX:.0f}% of the CPU, or a compiler appeared, was measured "
        "again (at most three times; the log and each shape's `foreign_cpu` record it). "
        "`top -bn1` before and after the run is recorded too."
    )
    result = {
        "date": date,
        "machine": machine_info(),
        "method": (
            "Per shape: a warm-up call of each implementation, then `reps` repeats; each repeat "
            "times NumPy, pocaflow and matrixmultiply one after the other (rotating order), "
            "each sample long enough to last about "
            f"{runner.target} s; the median per-call time is reported. All outputs "
            "preallocated, all operands C-order random in [-1, 1). NumPy is timed in Python "
            "(its ~0.6 us call overhead matters below n = 64); pocaflow and matrixmultiply "
            "inside Rust. pocaflow's own GEMM is measured (no `blas` feature)."
        ),
        "load_check": {
            "how": how_checked,
            "log": load_log,
            "top_before": top_before,
            "top_after": top_after,
        },
        "elapsed_s": round(elapsed, 1),
        "fma_peak_gflops": peak,
        "peak_fraction_at_4096": at_4096,
        "bars": bars,
        "cases": [
            {
                "label": c.label,
                "m": c.m,
                "k": c.k,
                "n": c.n,
                "dtype": c.dtype,
                "threads": c.threads,
                "gflops": {i: round(c.gflops(i), 2) for i in IMPLS},
                "ratio_vs_numpy": round(c.ratio("numpy"), 3),
                "ratio_vs_matrixmultiply": round(c.ratio("matrixmultiply"), 3),
                "median_s": {i: statistics.median(c.seconds[i]) for i in IMPLS},
                "samples_s": c.seconds,
                "max_abs_diff_vs_matrixmultiply_over_k": c.check,
                "foreign_cpu": round(c.foreign_cpu, 4),
            }
            for c in cases
        ],
    }
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    info = result["machine"]
    plot(cases, peak, stem.with_suffix(".png"), f"{info['cpu']}, {date}")
    summary = [
        f"# CPU GEMM benchmark, {date}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores; NumPy {info['numpy']} "
        f"({info['numpy_blas']}); pocaflow {info['pocaflow_commit'][:10]}.",
        "",
        result["method"],
        "",
        "Load: " + how_checked,
        "",
        "FMA peak probe (GFLOP/s): " + json.dumps(peak),
        "",
        "pocaflow at n = 4096, fraction of that peak: " + json.dumps(at_4096),
        "",
        "GFLOP/s (median):",
        "",
        md,
        "",
        "Bars:",
        "",
    ]
    summary += [
        f"- {'met' if b['met'] else 'NOT met'}: {b['bar']} (worst {b['worst']:.2f}, "
        f"{b['worst_case']})"
        for b in bars
    ]
    stem.with_suffix(".md").write_text("\n".join(summary) + "\n")
    print(f"wrote {stem}.json, .png and .md")


if __name__ == "__main__":
    main()

"""PNG plots of a run (matplotlib, the optional ``bench`` extra): for each suite that swept a
size, one panel per series (a dtype, an operation), each library's value against the size,
and the machine's peak as a dashed line where :mod:`._peaks` knows it."""

from __future__ import annotations

import math
from pathlib import Path

from ._peaks import peak

#: Suites whose throughput is bounded by the compute or memory peak (not transfer: PCIe).
PEAK_SUITES = ("gemm", "batched", "elementwise", "nn")
#: Each suite's size axis.
X_LABEL = {
    "gemm": "n (n x n x n)",
    "batched": "n (batch of n x n x n)",
    "latency": "n (n x n)",
    "transfer": "MiB",
    "e2e": "n (n x n)",
    "elementwise": "MiB per input",
    "nn": "rows",
    "sparse": "n (n x n power-law CSR)",
}


def available() -> bool:
    """Whether matplotlib is installed."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _dtype(series: str) -> str | None:
    last = series.split()[-1] if series else ""
    return last if last in ("f16", "bf16", "f32", "f64") else None


def plot_suites(rows: list[dict], meta: dict, stem: Path) -> list[Path]:
    """Writes ``<stem>-<suite>.png`` for every suite with a series of two sizes or more;
    returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    device = meta.get("device", "cpu")
    for suite in dict.fromkeys(r["suite"] for r in rows):
        swept = [r for r in rows if r["suite"] == suite and "values" in r and "x" in r]
        series = {}
        for r in swept:
            series.setdefault(r.get("series", ""), []).append(r)
        series = {s: rs for s, rs in series.items() if len({r["x"] for r in rs}) > 1}
        if not series:
            continue
        cols = min(3, len(series))
        nrows = math.ceil(len(series) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(5.5 * cols, 4 * nrows), squeeze=False)
        for ax, (name, rs) in zip(axes.flat, series.items()):
            rs = sorted(rs, key=lambda r: r["x"])
            libs = dict.fromkeys(lib for r in rs for lib in r["values"])
            for lib in libs:
                pts = [(r["x"], r["values"][lib]) for r in rs if lib in r["values"]]
                ax.plot(*zip(*pts), "o-", label=lib)
            known = (
                peak(meta, device, rs[0]["unit"], _dtype(name)) if suite in PEAK_SUITES else None
            )
            if known:
                ax.axhline(
                    known[0], color="gray", ls="--", lw=1, label=f"{known[1]} ({known[0]:g})"
                )
            ax.set_xscale("log", base=2)
            if rs[0]["unit"] in ("us", "ms"):
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)
            ax.set_xlabel(X_LABEL.get(suite, "size"))
            ax.set_ylabel(f"{rs[0]['unit']} ({rs[0]['timer']})")
            ax.set_title(name)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
        for ax in list(axes.flat)[len(series) :]:
            ax.set_visible(False)
        where = meta.get("gpu") if device == "cuda" else meta.get("cpu")
        fig.suptitle(
            f"{suite}: {where}, pocaflow {meta.get('commit', '?')}, {meta.get('date_utc', '')}"
        )
        fig.tight_layout()
        path = Path(f"{stem}-{suite}.png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written

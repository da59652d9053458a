"""``python -m pocaflow.bench``: parses the command line, runs the chosen suites' cases with a
progress bar, and writes the JSON, the Markdown table and the plots."""

from __future__ import annotations

import argparse
import datetime
import io
import json
import sys
import time
import traceback
from pathlib import Path

from . import _plot
from ._case import Context
from ._machine import describe
from ._peers import DTYPES, Unsupported, find_peers
from ._progress import PlainBar, progress
from ._report import compare, error_row, row_line, status, summary, table, write_json
from .suites import SUITES


def _suites(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if names == ["all"]:
        return list(SUITES)
    unknown = [s for s in names if s not in SUITES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown suite(s) {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(SUITES)} or all"
        )
    return names


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be integers, got {text!r}") from None
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive integers, got {text!r}")
    return sizes


def _dtypes(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in DTYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown dtype(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(DTYPES)}"
        )
    return names


def _earlier(text: str) -> dict:
    """An earlier run's JSON, read before this run starts (a bad path fails at once)."""
    try:
        data = json.loads(Path(text).read_text())
    except (OSError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {e}") from None
    if not isinstance(data, dict) or "rows" not in data:
        raise argparse.ArgumentTypeError(f"{text} is not a pocaflow.bench JSON (no rows)")
    return data


def _default_device() -> str:
    import pocaflow as pf

    return "cuda" if pf.cuda.is_available() else "cpu"


def parser() -> argparse.ArgumentParser:
    """The command line (see the package's docstring)."""
    from . import __doc__ as doc

    suites = "\n".join(f"  {name}: {' '.join(m.__doc__.split())}" for name, m in SUITES.items())
    p = argparse.ArgumentParser(
        prog="python -m pocaflow.bench",
        description=(doc or "").split("\n\n")[0],
        epilog="suites:\n" + suites,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--suite",
        type=_suites,
        default=list(SUITES),
        metavar="NAMES",
        help=f"comma-separated: {','.join(SUITES)} or all (default all)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when usable")
    p.add_argument(
        "--dtype",
        type=_dtypes,
        metavar="DTYPES",
        help=f"comma-separated from {','.join(DTYPES)} (default: per suite)",
    )
    p.add_argument(
        "--sizes",
        type=_sizes,
        metavar="N,N,...",
        help="each suite's size axis (see the suites below; default: per suite)",
    )
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("pocaflow-bench"),
        metavar="DIR",
        help="where the JSON, Markdown and PNGs go (default ./pocaflow-bench)",
    )
    p.add_argument(
        "--name", metavar="STEM", help="file name stem (default bench-<device>-<date>-<commit>)"
    )
    p.add_argument(
        "--compare",
        type=_earlier,
        metavar="FILE.json",
        help="print the change against an earlier run's JSON",
    )
    p.add_argument(
        "--progress",
        choices=["auto", "plain", "none"],
        default="auto",
        help="auto: tqdm on a terminal if installed, else plain",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    return p


def run_cases(ctx: Context, suites: list[str], bar_kind: str) -> list[dict]:
    """Every case of ``suites``, in order, each row logged as it comes (with the seconds its
    case took, setup and checks included); a case that raises becomes an error row and the
    run goes on."""
    cases = [case for name in suites for case in SUITES[name].cases(ctx)]
    if bar_kind == "none":
        bar = PlainBar(len(cases), io.StringIO())
    else:
        bar = progress(len(cases), plain=bar_kind == "plain")
    rows: list[dict] = []
    for case in cases:
        label = f"{case.suite}: {case.label}"
        bar.set_label(label)
        started = time.perf_counter()
        try:
            new = case.run()
        except Unsupported as e:
            new = [dict(suite=case.suite, case=case.label, skipped=str(e), ok=None)]
        except Exception as e:  # one broken case must not hide the rest
            bar.write(traceback.format_exc())
            new = [error_row(case.suite, case.label, e)]
        for row in new:
            row["case_seconds"] = round(time.perf_counter() - started, 3)
            rows.append(row)
            bar.write(row_line(row))
        for peer in ctx.peers.values():
            peer.free()
        bar.update(label)
    bar.close()
    return rows


def markdown(meta: dict, rows: list[dict], extra: list[str]) -> str:
    """The run as Markdown: where and what it measured, the tables, the summary."""
    where = meta.get("gpu") if meta["device"] == "cuda" else f"{meta['cpu']}, {meta['cores']} cores"
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    lines = [
        f"# pocaflow bench, {meta['device']}, {meta['date_utc']}",
        "",
        f"Commit {meta['commit']} on {where} ({meta['hostname']}); {versions}.",
        f"Command: `{meta['command']}`; {meta['seconds']:.0f} s.",
        "Ratios are pocaflow against each peer, above 1 better for pocaflow; each row names its "
        "timer (CUDA events: GPU time; wall clock: host time).",
        "",
        *table(rows, markdown=True),
        summary(rows),
        "",
    ]
    return "\n".join(lines + extra)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line ``argv``; 0 when every bar and check passed, 1 when one missed
    or a case raised, 2 when the device cannot be used."""
    args = parser().parse_args(argv)
    started = time.perf_counter()
    device = args.device or _default_device()
    try:
        peers, skipped, precision = find_peers(device)
    except RuntimeError as e:  # no CUDA device for --device cuda
        print(f"python -m pocaflow.bench: {e}", file=sys.stderr)
        return 2
    ctx = Context(device, peers, args.sizes, args.dtype, args.quick)
    print(
        f"pocaflow bench on {device}: {', '.join(peers)}"
        + (f" (missing: {', '.join(skipped)})" if skipped else ""),
        flush=True,
    )
    rows = run_cases(ctx, args.suite, args.progress)
    meta = describe(device, peers, skipped)
    meta |= dict(precision=precision, seconds=time.perf_counter() - started)
    meta["command"] = " ".join(
        ["python -m pocaflow.bench", *(sys.argv[1:] if argv is None else argv)]
    )
    meta["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    meta["args"]["compare"] = (args.compare or {}).get("meta", {}).get("commit")
    args.out.mkdir(parents=True, exist_ok=True)
    date = datetime.date.today().isoformat()
    stem = args.out / (args.name or f"bench-{device}-{date}-{meta['commit']}")
    json_path, md_path = Path(f"{stem}.json"), Path(f"{stem}.md")
    write_json(json_path, meta, rows)
    extra = []
    if args.compare:
        extra = compare(args.compare, rows)
        print("\n".join(["", *extra]))
    md_path.write_text(markdown(meta, rows, extra))
    written = [json_path, md_path]
    if not args.no_plots and _plot.available():
        written += _plot.plot_suites(rows, meta, stem)
    print("\n".join(table(rows)))
    print(f"\nwrote {', '.join(map(str, written))} ({meta['seconds']:.1f} s)")
    print(summary(rows))
    return 0 if all(status(r) not in ("FAIL", "ERROR") for r in rows) else 1

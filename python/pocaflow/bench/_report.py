"""The rows of a run: one per case, with a value per library and pocaflow's ratio against
each peer (oriented so that above 1 is better for pocaflow), the bar where a case has one;
printed as a table, written as JSON and Markdown, and compared with an earlier run's JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

#: What each unit counts and the factor from per-second (or seconds) to the unit.
THROUGHPUT = {"GFLOP/s": 1e9, "TFLOP/s": 1e12, "GB/s": 1e9, "steps/s": 1.0}
TIME = {"s": 1.0, "ms": 1e3, "us": 1e6}


def value_row(
    suite: str,
    case: str,
    unit: str,
    values: dict[str, float],
    timer: str,
    bars: dict[str, float] | None = None,
    **extra: object,
) -> dict:
    """A measured row: ``values`` per library (pocaflow first) in ``unit``; the ratios
    against each peer (higher is better for pocaflow: throughput over throughput, time over
    time inverted); ``bars`` (peer: least ratio) make it an acceptance check, met when every
    barred peer that ran is met (``ok`` None when none ran). ``extra`` (``x``, ``series``,
    ``errors``, ``seconds`` ...) goes into the row as it is."""
    higher = unit in THROUGHPUT
    ours = values["pocaflow"]
    ratios = {
        name: (ours / v if higher else v / ours) if v > 0 and ours > 0 else math.nan
        for name, v in values.items()
        if name != "pocaflow"
    }
    bars = bars or {}
    met = [bool(ratios[p] >= least) for p, least in bars.items() if p in ratios]
    row = dict(suite=suite, case=case, unit=unit, higher_is_better=higher, timer=timer)
    row |= dict(values=values, ratios=ratios, bars=bars, ok=all(met) if met else None)
    return row | extra


def check_row(suite: str, case: str, detail: str, ok: bool, **extra: object) -> dict:
    """A pass/fail check with no timing (zero-copy, allocator steady state, agreement)."""
    return dict(suite=suite, case=case, detail=detail, ok=bool(ok)) | extra


def error_row(suite: str, case: str, error: BaseException) -> dict:
    """A case that raised: recorded as a failure, the run goes on."""
    return dict(suite=suite, case=case, error=f"{type(error).__name__}: {error}", ok=False)


def status(row: dict) -> str:
    """PASS or FAIL for a bar or check, ERROR for a case that raised, skip for one pocaflow
    or its peers could not run, "no peer" for a bar whose peer is missing, else info."""
    if "error" in row:
        return "ERROR"
    if "skipped" in row:
        return "skip"
    if row["ok"] is None:
        return "no peer" if row.get("bars") else "info"
    return "PASS" if row["ok"] else "FAIL"


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if 1e-3 <= abs(v) < 1e6 or v == 0 else f"{v:.3e}"


def peer_names(rows: Iterable[dict]) -> list[str]:
    """Every peer with a value in ``rows``, in the order they first appear."""
    names: list[str] = []
    for row in rows:
        for name in row.get("values", {}):
            if name != "pocaflow" and name not in names:
                names.append(name)
    return names


def _note(row: dict) -> str:
    """A check's detail, an error, a skip's reason, or the peers that failed in the row."""
    failed = "; ".join(f"{peer} failed: {e}" for peer, e in row.get("failed", {}).items())
    return str(row.get("error") or row.get("skipped") or row.get("detail") or failed)


def table(rows: list[dict], markdown: bool = False) -> list[str]:
    """The rows as a table, one block per suite: pocaflow's value, each peer's, pocaflow's
    ratio against each peer, the bar, its result, and a note (a check's detail, an error)."""
    peers = peer_names(rows)
    head = ["case", "unit", "timer", "pocaflow", *peers, *[f"vs {p}" for p in peers]]
    head += ["bar", "", "note"]
    lines: list[str] = []
    for suite in dict.fromkeys(r["suite"] for r in rows):
        body = []
        for r in (r for r in rows if r["suite"] == suite):
            if "values" not in r:
                blank = [""] * (2 + 2 * len(peers))
                body.append([r["case"], "", "", *blank, status(r), _note(r)])
                continue
            vals = [_num(r["values"].get(p)) for p in ["pocaflow", *peers]]
            ratios = [_num(r["ratios"].get(p)) for p in peers]
            bar_text = ", ".join(f"{p} >= {v:.3g}" for p, v in r["bars"].items())
            cells = [
                r["case"],
                r["unit"],
                r["timer"],
                *vals,
                *ratios,
                bar_text,
                status(r),
                _note(r),
            ]
            body.append(cells)
        if markdown:
            lines += [f"### {suite}", "", "| " + " | ".join(head) + " |"]
            lines += ["|" + " --- |" * len(head)]
            lines += ["| " + " | ".join(cells) + " |" for cells in body] + [""]
            continue
        widths = [max(len(c[i]) for c in [head, *body]) for i in range(len(head))]
        numeric = range(3, 3 + 2 * len(peers) + 1)
        lines += ["", f"== {suite}"]
        for cells in [head, *body]:
            text = [
                c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
            ]
            lines.append("  ".join(text).rstrip())
    return lines


def summary(rows: list[dict]) -> str:
    """One line: how many bars and checks passed and failed, and how many cases raised."""
    counts = {s: sum(status(r) == s for r in rows) for s in ("PASS", "FAIL", "ERROR")}
    verdict = "ALL BARS MET" if counts["FAIL"] + counts["ERROR"] == 0 else "BARS MISSED"
    return (
        f"SUMMARY: {len(rows)} rows, {counts['PASS']} PASS, {counts['FAIL']} FAIL, "
        f"{counts['ERROR']} ERROR -- {verdict}"
    )


def row_line(row: dict) -> str:
    """One row as a line, for the log while the run goes on."""
    if "values" not in row:
        return f"[{row['suite']}] {row['case']}: {_note(row)} {status(row)}"
    vals = "  ".join(f"{k} {_num(v)}" for k, v in row["values"].items())
    ratios = "  ".join(f"vs {k} {_num(v)}" for k, v in row["ratios"].items())
    return f"[{row['suite']}] {row['case']}: {vals} {row['unit']}  {ratios}  {status(row)}"


def write_json(path: Path, meta: dict, rows: list[dict]) -> None:
    """``{"meta": ..., "rows": ...}``; NaN written as null."""

    def clean(v: object) -> object:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    path.write_text(json.dumps(clean({"meta": meta, "rows": rows}), indent=1, default=str) + "\n")


def compare(old: dict, rows: list[dict]) -> list[str]:
    """The change of each row against the same (suite, case) row of an earlier run's JSON
    ``old``: pocaflow's value before and after and the change in percent (positive: better),
    and each ratio before and after."""
    before = {(r["suite"], r["case"]): r for r in old.get("rows", []) if "values" in r}
    meta = old.get("meta", {})
    lines = [f"change against {meta.get('commit', '?')} of {meta.get('date_utc', '?')}:"]
    matched = 0
    for r in rows:
        o = before.get((r["suite"], r["case"]))
        if "values" not in r or o is None:
            continue
        matched += 1
        new, was = r["values"]["pocaflow"], o["values"].get("pocaflow")
        if not was or not new:
            change = "-"
        else:
            rel = new / was - 1 if r["higher_is_better"] else was / new - 1
            change = f"{100 * rel:+.1f}%"
        ratios = "  ".join(
            f"vs {p} {_num((o.get('ratios') or {}).get(p))} -> {_num(v)}"
            for p, v in r["ratios"].items()
        )
        lines.append(
            f"[{r['suite']}] {r['case']}: pocaflow {_num(was)} -> {_num(new)} {r['unit']} "
            f"({change})  {ratios}"
        )
    new_keys = {(r["suite"], r["case"]) for r in rows}
    lines.append(
        f"{matched} rows compared, {sum(1 for r in rows if 'values' in r) - matched} new, "
        f"{len(set(before) - new_keys)} only in the earlier run"
    )
    return lines

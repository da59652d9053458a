"""``python -m pocaflow.bench`` on the CPU with tiny sizes: the command line and its errors,
the JSON (meta and rows), the table, ``--compare``, the plots and the plain progress bar."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pocaflow as pf
from pocaflow.bench import _cli, _plot, _report
from pocaflow.bench._case import Context, measure
from pocaflow.bench._peers import NumpyPeer, PocaflowPeer
from pocaflow.bench._progress import PlainBar
from pocaflow.bench._timing import Plan

#: The subprocesses find pocaflow where this process did (the source tree or a wheel).
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
TINY = ["--device", "cpu", "--quick", "--suite", "latency", "--sizes", "8,16"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """One tiny latency run in this process (its calls take microseconds): its output folder,
    its JSON and what it printed."""
    out = tmp_path_factory.mktemp("bench")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = _cli.main([*TINY, "--out", str(out), "--name", "run", "--progress", "none"])
    assert rc == 0, buf.getvalue()
    return out, json.loads((out / "run.json").read_text()), buf.getvalue()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "nosuch"], "unknown suite"),
        (["--suite", "sparse"], "unknown suite"),
        (["--sizes", "12,x"], "sizes must be integers"),
        (["--sizes", "0"], "sizes must be positive"),
        (["--dtype", "f8"], "unknown dtype"),
        (["--device", "tpu"], "invalid choice"),
        (["--compare", "/nonexistent/run.json"], "cannot read"),
    ],
)
def test_bad_arguments_are_refused(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        _cli.parser().parse_args(args)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_cuda_without_a_device_is_an_error(capsys):
    if pf.cuda.is_available():
        pytest.skip("a CUDA device is usable here")
    assert _cli.main(["--device", "cuda", "--suite", "gemm"]) == 2
    assert "pocaflow has no CUDA device" in capsys.readouterr().err


def test_arguments_parse():
    args = _cli.parser().parse_args(["--suite", "gemm,nn", "--sizes", "8,16", "--dtype", "f64"])
    assert args.suite == ["gemm", "nn"] and args.sizes == [8, 16] and args.dtype == ["f64"]
    assert _cli.parser().parse_args(["--suite", "all"]).suite == list(_cli.SUITES)
    assert "sparse" not in _cli.SUITES


def test_json_has_meta_and_positive_rows(run):
    _, data, _ = run
    meta = data["meta"]
    assert meta["device"] == "cpu" and meta["commit"] and meta["cpu"] and meta["cores"] >= 1
    assert meta["versions"]["pocaflow"] and meta["versions"]["numpy"]
    assert meta["peers"][:2] == ["pocaflow", "numpy"]
    rows = data["rows"]
    assert len(rows) == 12 and rows[0]["case"] == "matmul 8x8 f32"
    for r in rows:
        assert r["suite"] == "latency" and r["unit"] == "us" and r["timer"] == "wall clock"
        assert all(v > 0 for v in r["values"].values()), r
        assert set(r["ratios"]) == set(r["values"]) - {"pocaflow"} and "numpy" in r["ratios"]
        assert r["bars"] == {} and r["ok"] is None and r["case_seconds"] > 0


def test_table_is_printed(run):
    out, _, printed = run
    assert "== latency" in printed and "vs numpy" in printed and "a + b 16x16 f32" in printed
    assert printed.strip().splitlines()[-1].startswith("SUMMARY: 12 rows")
    assert "| matmul 8x8 f32 | us | wall clock |" in (out / "run.md").read_text()


def test_compare_against_itself_and_a_changed_run(run, tmp_path):
    _, data, _ = run
    same = _report.compare(data, data["rows"])
    assert "(+0.0%)" in same[1] and same[-1].startswith("12 rows compared, 0 new")
    older = copy.deepcopy(data)
    older["rows"][0]["values"]["pocaflow"] *= 2  # a time: the new run is twice as fast
    del older["rows"][1]
    changed = _report.compare(older, data["rows"])
    assert "(+100.0%)" in changed[1]
    assert changed[-1].startswith("11 rows compared, 1 new")
    path = tmp_path / "older.json"
    path.write_text(json.dumps(older))
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        rc = _cli.main(
            [*TINY, "--out", str(tmp_path), "--compare", str(path), "--progress", "none"]
        )
    assert rc == 0
    assert "change against" in buf.getvalue() and "rows compared" in buf.getvalue()
    assert "change against" in next(tmp_path.glob("bench-cpu-*.md")).read_text()


def test_plots_are_written(run):
    out, _, _ = run
    if not _plot.available():
        pytest.skip("matplotlib is not installed")
    png = out / "run-latency.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plain_progress_bar():
    stream = io.StringIO()
    bar = PlainBar(4, stream, width=8)
    bar.set_label("first")
    for label in ("a", "b", "c", "d"):
        bar.update(label)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines == ["[##......] 1/4 a", "[####....] 2/4 b", "[######..] 3/4 c", "[########] 4/4 d"]


def test_module_runs_as_a_script_and_imports_nothing_optional():
    """In a fresh interpreter with this one's environment (where pocaflow imports from)."""
    code = (
        "import sys, pocaflow.bench, pocaflow.bench.suites; "
        "print(sorted(m for m in ('torch', 'cupy', 'scipy', 'matplotlib', 'tqdm') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    )
    assert out.stdout.strip() == "[]"
    help_text = subprocess.run(
        [sys.executable, "-m", "pocaflow.bench", "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    ).stdout
    assert "gemm:" in help_text and "--compare" in help_text


def test_table_shows_checks_and_errors():
    rows = [
        _report.check_row("transfer", "zero-copy", "shares memory True", True),
        _report.error_row("transfer", "broken", RuntimeError("boom")),
    ]
    text = _report.table(rows)
    assert text[-2].split()[-4:] == ["PASS", "shares", "memory", "True"]
    assert text[-1].split()[-3:] == ["ERROR", "RuntimeError:", "boom"]
    assert _report.summary(rows).endswith("1 PASS, 0 FAIL, 1 ERROR -- BARS MISSED")


def test_a_failing_peer_loses_its_column_not_the_row():
    ctx = Context("cpu", {"pocaflow": PocaflowPeer(pf, "cpu"), "numpy": NumpyPeer(np, "cpu")})
    x = ctx.nonzero(64)

    def broken(peer):
        raise ValueError("no such op")

    def ours(peer):
        px = peer.put(x, "f32")
        return lambda: pf.exp(px)

    row = measure(
        ctx,
        "t",
        "exp",
        {"pocaflow": ours, "numpy": broken},
        "us",
        Plan(2, 0.001),
        reference=np.exp(x.astype(np.float64)),
        tol=1e-6,
    )
    assert list(row["values"]) == ["pocaflow"] and row["values"]["pocaflow"] > 0
    assert row["errors"] == {"pocaflow": pytest.approx(0, abs=1e-6)}
    assert row["failed"] == {"numpy": "ValueError: no such op"}
    assert "numpy failed: ValueError: no such op" in _report.table([row])[-1]

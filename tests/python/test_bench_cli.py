"""``python -m pocaflow.bench`` on the CPU with tiny sizes: the command line and its errors,
the JSON (meta and rows), the table, ``--compare``, the plots and the plain progress bar; the
sparse suite's matrix, its float64 references and a tiny run of it."""

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
from pocaflow.bench.suites import sparse as sparse_suite

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
    assert "sparse" in _cli.SUITES


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


def test_sparse_suite_matrix_is_the_issues_case_scaled():
    n = 20_000
    data, indices, indptr = sparse_suite.power_law_csr(n, seed=3)
    again = sparse_suite.power_law_csr(n, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((data, indices, indptr), again))
    assert not np.array_equal(sparse_suite.power_law_csr(n, seed=4)[1], indices)
    assert data.dtype == np.float32 and indices.dtype == indptr.dtype == np.int32
    assert indptr.shape == (n + 1,) and indptr[0] == 0 and indptr[-1] == data.size
    lengths = np.diff(indptr)
    heavy = lengths > sparse_suite.MAX_LIGHT
    assert heavy.sum() == n // 1000 and (lengths[heavy] == 6000).all()
    light = lengths[~heavy]
    assert light.min() == 0 and light.max() == 28 and abs(light.mean() - 14) < 0.2
    assert sparse_suite.heavy_row(indptr) == np.flatnonzero(heavy)[0]
    rows = np.repeat(np.arange(n), lengths)
    keys = rows.astype(np.int64) * n + indices
    assert (np.diff(keys) > 0).all()  # sorted and unique within each row
    assert indices.min() >= 0 and indices.max() < n
    assert data.min() >= -1 and data.max() < 1 and np.unique(data).size > 0.9 * data.size
    # the full case: about 4M nonzeros (checked by size only: building it takes ~1 s)
    assert abs(200 * 6000 + (200_000 - 200) * 14 - 4_000_000) < 10_000


def test_sparse_suite_references_match_scipy():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    n = 3000
    csr = sparse_suite.power_law_csr(n, seed=1)
    a = scipy_sparse.csr_array(csr, shape=(n, n)).astype(np.float64)
    rng = np.random.default_rng(5)
    x, X = rng.standard_normal(n), rng.standard_normal((n, 8))
    lo, hi = sparse_suite.window(n, sparse_suite.heavy_row(csr[2]))
    assert hi - lo == sparse_suite.REF_ROWS and lo <= sparse_suite.heavy_row(csr[2]) < hi
    np.testing.assert_allclose(sparse_suite.rows_reference(csr, lo, hi, x), (a @ x)[lo:hi])
    np.testing.assert_allclose(sparse_suite.rows_reference(csr, lo, hi, X), (a @ X)[lo:hi])
    rows = [0, 1, sparse_suite.heavy_row(csr[2])]
    c = a @ a.T
    want = c[rows].toarray()
    np.testing.assert_allclose(sparse_suite.spgemm_reference(csr, n, rows), want, atol=1e-12)
    np.testing.assert_array_equal(sparse_suite.sparse_rows(c, rows, n), want)
    assert sparse_suite.nnz_of(c) == c.nnz


def test_sparse_suite_runs_against_scipy(tmp_path):
    """The four cases at n = 3000 (needs pf.sparse; SciPy's column where SciPy is there)."""
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        rc = _cli.main(
            ["--device", "cpu", "--quick", "--suite", "sparse", "--sizes", "3000"]
            + ["--out", str(tmp_path), "--name", "sp", "--progress", "none", "--no-plots"]
        )
    rows = json.loads((tmp_path / "sp.json").read_text())["rows"]
    assert rc == 0, buf.getvalue()
    assert [r["case"] for r in rows] == [
        "SpMV A @ x n=3000 f32",
        "SpMM A @ X C-order k=64 n=3000 f32",
        "SpMM A @ X F-order k=64 n=3000 f32",
        "SpGEMM A @ A.T n=3000 f32",
    ]
    for r in rows:
        assert r["suite"] == "sparse" and r["values"]["pocaflow"] > 0, r
        assert r["errors"]["pocaflow"] <= 1e-5, r
    assert [r["unit"] for r in rows] == ["GFLOP/s"] * 3 + ["ms"]
    spgemm = rows[-1]
    assert spgemm["out_nnz"]["pocaflow"] > 0
    assert spgemm["detail"] == f"output nnz {spgemm['out_nnz']['pocaflow']:,}"
    if "scipy" in spgemm["values"]:
        assert all("scipy" in r["values"] and r["errors"]["scipy"] <= 1e-5 for r in rows)
        # SciPy drops no entry of A @ A.T here (no exact cancellation): the same structure
        assert spgemm["out_nnz"]["scipy"] == spgemm["out_nnz"]["pocaflow"]

"""sparse: ``pf.sparse`` products of a power-law CSR matrix, against SciPy and torch on the CPU
and torch and CuPy on CUDA.

The matrix (:func:`power_law_csr`) is square, ``n = 200,000`` by default, float32 with int32
indices: 200 heavy rows at random positions with 6000 nonzeros each, the other rows of
uniform random length 0 to 28 (mean 14), columns uniform, sorted and unique in each row, values
uniform in [-1, 1): about 4M nonzeros (1.2M of them in the heavy rows). ``--quick`` on the CPU
takes n = 50,000 with the heavy rows scaled in proportion (50 rows of 6000: about 1M nonzeros);
CUDA keeps n = 200,000. ``--sizes`` sets n (heavy rows: one per 1000 rows, at least one, each
of ``min(6000, n)`` nonzeros); ``--dtype`` f32 (default) or f64.

- SpMV ``A @ x`` and SpMM ``A @ X`` with ``X`` of 64 columns in C order and in F order (torch:
  ``X.contiguous()`` and ``X.t().contiguous().t()``), GFLOP/s of ``2 nnz`` per column;
- SpGEMM ``A @ A.T`` (torch: ``torch.sparse.mm(A, A.t().to_sparse_csr())``: its CSR product
  takes no CSC operand), in ms, with the output's nnz.

Each is checked first against float64 on a few rows (a window of 256 rows around the first
heavy row for the dense results; four leading rows and the first heavy row of ``A @ A.T``).
SciPy runs on one thread (it has no other); on CUDA every library is timed by its own events.

Bars (f32, n = 200,000; the issue's): on CUDA SpMV >= 1.0x torch, SpMM >= 1.0x torch and >= 4x
CuPy (the F-order row against torch's best time, its C-order one: compare that row's pocaflow
with the C-order row's torch), SpGEMM >= 1.0x torch and CuPy; on the CPU (two threads) SpMV >=
2x SciPy, SpMM >= 4x, SpGEMM >= 1.5x.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._case import CACHE_BYTES, Case, Context, measure
from .._peers import ITEMSIZE, Peer, Unsupported
from .._timing import Plan, cycling, input_sets, quick_or_full

NAME = "sparse"
#: The issue's case: n, heavy rows and their length, the longest light row, columns of X.
FULL_N, QUICK_N = 200_000, 50_000
HEAVY_PER_ROWS, HEAVY_NNZ, MAX_LIGHT = 1000, 6000, 28
COLS = 64
#: Rows of the dense results checked against float64 (a window holding a heavy row).
REF_ROWS = 256
TOL = {"f32": 1e-5, "f64": 1e-12}
DTYPES = ("f32", "f64")


def power_law_csr(
    n: int, seed: int = 0, heavy_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(data, indices, indptr)`` of the benchmark's ``n x n`` CSR matrix, the same for the same
    ``n`` and ``seed``: ``heavy_rows`` (default one per 1000 rows, at least one) rows at random
    positions with ``min(6000, n)`` nonzeros, every other row of uniform length 0 to 28;
    columns uniform, sorted and unique in each row; float32 values uniform in [-1, 1); int32
    indices (int64 past 2^31 - 1 nonzeros)."""
    rng = np.random.default_rng(seed)
    if heavy_rows is None:
        heavy_rows = max(1, n // HEAVY_PER_ROWS)
    heavy_rows = min(heavy_rows, n)
    lengths = rng.integers(0, MAX_LIGHT + 1, size=n)
    heavy = np.sort(rng.choice(n, size=heavy_rows, replace=False))
    light = np.ones(n, dtype=bool)
    light[heavy] = False
    light_rows = np.repeat(np.flatnonzero(light), lengths[light])
    keys = [light_rows * n + rng.integers(0, n, size=light_rows.size)]
    width = min(HEAVY_NNZ, n)
    for r in heavy:
        keys.append(r * n + rng.choice(n, size=width, replace=False))
    # one sort orders rows and columns and drops the (rare) repeated columns of a light row
    flat = np.sort(np.concatenate(keys).astype(np.int64))
    flat = flat[np.concatenate([[True], flat[1:] != flat[:-1]])]
    rows, cols = np.divmod(flat, n)
    counts = np.bincount(rows, minlength=n)
    nnz = flat.size
    index = np.int32 if max(nnz, n) <= np.iinfo(np.int32).max else np.int64
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index)
    data = rng.random(nnz, dtype=np.float32) * np.float32(2) - np.float32(1)
    return data, cols.astype(index), indptr


def heavy_row(indptr: np.ndarray) -> int:
    """The first row of the longest length."""
    return int(np.argmax(np.diff(indptr)))


def window(n: int, row: int) -> tuple[int, int]:
    """``REF_ROWS`` rows (fewer when n is smaller) around ``row``."""
    lo = max(0, min(row - REF_ROWS // 2, n - REF_ROWS))
    return lo, min(n, lo + REF_ROWS)


def rows_reference(csr: tuple, lo: int, hi: int, x: np.ndarray) -> np.ndarray:
    """Rows ``lo:hi`` of ``A @ x`` in float64 (``x`` 1-D or 2-D), with NumPy only."""
    data, indices, indptr = csr
    s, e = int(indptr[lo]), int(indptr[hi])
    ids = np.repeat(np.arange(hi - lo), np.diff(indptr[lo : hi + 1]))
    x64 = x.astype(np.float64)
    prod = data[s:e].astype(np.float64).reshape(-1, *([1] * (x.ndim - 1))) * x64[indices[s:e]]
    out = np.zeros((hi - lo, *x.shape[1:]))
    np.add.at(out, ids, prod)
    return out


def spgemm_reference(csr: tuple, n: int, rows: list[int]) -> np.ndarray:
    """``rows`` of ``A @ A.T`` in float64, dense: row i is ``A @ a_i`` for the dense row a_i."""
    data, indices, indptr = csr
    row_of = np.repeat(np.arange(n), np.diff(indptr))
    data64 = data.astype(np.float64)
    out = np.zeros((len(rows), n))
    for k, i in enumerate(rows):
        a_i = np.zeros(n)
        s, e = int(indptr[i]), int(indptr[i + 1])
        a_i[indices[s:e]] = data64[s:e]
        out[k] = np.bincount(row_of, weights=data64 * a_i[indices], minlength=n)
    return out


def _host(x: Any) -> np.ndarray:
    """An index or value array of any library as NumPy."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):  # CuPy
        return x.get()
    return x.cpu().numpy()  # torch, pocaflow


def csr_parts(out: Any) -> tuple[Any, Any, Any]:
    """``(indptr, indices, data)`` of a sparse result of any library, in that library."""
    if hasattr(out, "crow_indices") or hasattr(out, "ccol_indices"):  # torch
        torch = __import__("torch")
        if out.layout != torch.sparse_csr:
            out = out.to_sparse_csr()
        return out.crow_indices(), out.col_indices(), out.values()
    if getattr(out, "format", "csr") != "csr":
        out = out.tocsr()
    return out.indptr, out.indices, out.data


def sparse_rows(out: Any, rows: list[int], ncols: int) -> np.ndarray:
    """``rows`` of a sparse result of any library as a dense float64 NumPy array."""
    ptr, idx, val = csr_parts(out)
    ptr = _host(ptr).astype(np.int64)
    dense = np.zeros((len(rows), ncols))
    for k, i in enumerate(rows):
        s, e = int(ptr[i]), int(ptr[i + 1])
        np.add.at(dense[k], _host(idx[s:e]).astype(np.int64), _host(val[s:e]).astype(np.float64))
    return dense


def nnz_of(out: Any) -> int:
    """Stored entries of a sparse result of any library."""
    return int(_host(csr_parts(out)[0][-1:])[0])


def put_csr(peer: Peer, csr: tuple, n: int, dtype: str) -> Any:
    """The matrix in the peer's library (int32 indices as given)."""
    if dtype not in DTYPES:
        raise Unsupported(f"sparse products take f32 and f64, not {dtype}")
    data, indices, indptr = csr
    values = data.astype(np.float64) if dtype == "f64" else data
    m = peer.module
    if peer.name == "pocaflow":
        return m.sparse.csr_array((values, indices, indptr), shape=(n, n), device=peer.device)
    if peer.name == "scipy":
        import scipy.sparse

        return scipy.sparse.csr_array((values, indices, indptr), shape=(n, n))
    if peer.name == "torch":
        parts = [m.from_numpy(a).to(peer.device) for a in (indptr, indices, values)]
        return m.sparse_csr_tensor(*parts, size=(n, n))
    if peer.name == "cupy":
        import cupyx.scipy.sparse

        parts = (m.asarray(values), m.asarray(indices), m.asarray(indptr))
        return cupyx.scipy.sparse.csr_matrix(parts, shape=(n, n))
    raise Unsupported(f"{peer.name} has no sparse matrices")


def put_dense(peer: Peer, x: np.ndarray, dtype: str, order: str) -> Any:
    """``x`` in the peer's library: C order, or F order as the transpose of a C-order ``x.T``
    (torch: ``X.t().contiguous().t()``)."""
    if order == "C" or x.ndim == 1:
        return peer.put(x, dtype)
    t = peer.put(np.ascontiguousarray(x.T), dtype)
    return t.t() if peer.name == "torch" else t.T


def _data(ctx: Context, n: int) -> dict:
    def make() -> dict:
        csr = power_law_csr(n, seed=0)
        return dict(csr=csr, x=ctx.normal(n), X=ctx.normal((n, COLS)))

    return ctx.shared((NAME, n), make)


def _label(op: str, n: int, dtype: str) -> str:
    return f"{op} n={n} {dtype}"


def product_case(ctx: Context, n: int, op: str, dtype: str) -> dict:
    """SpMV (``op="SpMV"``) or SpMM with X in C or F order (``"SpMM C"``, ``"SpMM F"``)."""
    d = _data(ctx, n)
    csr = d["csr"]
    nnz = int(csr[2][-1])
    x = d["x"] if op == "SpMV" else d["X"]
    if dtype == "f64":
        x = x.astype(np.float64)
    order = op.split()[-1] if op != "SpMV" else "C"
    cols = 1 if x.ndim == 1 else x.shape[1]
    set_bytes = nnz * (ITEMSIZE[dtype] + csr[1].itemsize) + x.nbytes + n * cols * x.itemsize
    k = input_sets(set_bytes, CACHE_BYTES[ctx.device])
    lo, hi = window(n, heavy_row(csr[2]))

    def build(peer: Peer):
        pairs = [(put_csr(peer, csr, n, dtype), put_dense(peer, x, dtype, order)) for _ in range(k)]
        return cycling([lambda a=a, b=b: a @ b for a, b in pairs])

    kind = {"SpMV": "SpMV A @ x", "SpMM C": "SpMM A @ X C-order", "SpMM F": "SpMM A @ X F-order"}
    bars = None
    if n == FULL_N and dtype == "f32":
        if ctx.device == "cpu":
            bars = {"scipy": 2.0 if op == "SpMV" else 4.0}
        else:
            bars = {"torch": 1.0} if op == "SpMV" else {"cupy": 4.0}
            if op == "SpMM C":
                bars["torch"] = 1.0
    return measure(
        ctx,
        NAME,
        _label(kind[op] + ("" if op == "SpMV" else f" k={cols}"), n, dtype),
        {name: build for name in ("pocaflow", "scipy", "torch", "cupy")},
        "GFLOP/s",
        quick_or_full(ctx.quick),
        work=2.0 * nnz * cols,
        bars=bars,
        reference=rows_reference(csr, lo, hi, x),
        tol=TOL[dtype],
        view=lambda y: y[lo:hi],
        x=n,
        series=f"{op} {dtype}",
        nnz=nnz,
        input_sets=k,
    )


def spgemm_case(ctx: Context, n: int, dtype: str) -> dict:
    """``A @ A.T``: ms per product and each library's output nnz."""
    d = _data(ctx, n)
    csr = d["csr"]
    h = heavy_row(csr[2])
    rows = sorted({*range(min(4, n)), h})
    out_nnz: dict[str, int] = {}

    def build(peer: Peer):
        a = put_csr(peer, csr, n, dtype)
        if peer.name == "torch":
            sparse_mm = peer.module.sparse.mm

            def call() -> Any:
                return sparse_mm(a, a.t().to_sparse_csr())
        else:

            def call() -> Any:
                return a @ a.T

        def first_records_nnz() -> Any:
            out = call()
            if peer.name not in out_nnz:
                out_nnz[peer.name] = nnz_of(out)
            return out

        return first_records_nnz

    bars = None
    if n == FULL_N and dtype == "f32":
        bars = {"scipy": 1.5} if ctx.device == "cpu" else {"torch": 1.0, "cupy": 1.0}
    quick = ctx.quick
    plan = Plan(repeats=3 if quick else 5, target_s=0.01 if quick else 0.03, warmup=1)
    row = measure(
        ctx,
        NAME,
        _label("SpGEMM A @ A.T", n, dtype),
        {name: build for name in ("pocaflow", "scipy", "torch", "cupy")},
        "ms",
        plan,
        bars=bars,
        reference=spgemm_reference(csr, n, rows),
        tol=TOL[dtype],
        view=lambda c: sparse_rows(c, rows, n),
        x=n,
        series=f"SpGEMM {dtype}",
        nnz=int(csr[2][-1]),
        out_nnz=out_nnz,
    )
    row["detail"] = f"output nnz {out_nnz.get('pocaflow', 0):,}"
    return row


def default_sizes(ctx: Context) -> list[int]:
    """``--sizes``, else n = 200,000 (50,000 on the CPU with ``--quick``)."""
    return ctx.pick_sizes([QUICK_N if ctx.quick else FULL_N], [FULL_N])


def cases(ctx: Context) -> list[Case]:
    """SpMV, SpMM (C and F order X) and SpGEMM at every size and dtype (default f32)."""
    out = []
    for n in default_sizes(ctx):
        for dt in ctx.pick_dtypes(["f32"], ["f32"]):
            for op in ("SpMV", "SpMM C", "SpMM F"):
                out.append(
                    Case(
                        NAME,
                        f"{op} {n} {dt}",
                        lambda n=n, op=op, dt=dt: [product_case(ctx, n, op, dt)],
                    )
                )
            out.append(Case(NAME, f"SpGEMM {n} {dt}", lambda n=n, dt=dt: [spgemm_case(ctx, n, dt)]))
    return out

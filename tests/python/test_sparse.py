"""``pf.sparse`` against SciPy on every device: construction (tuples of NumPy arrays, lists and
pf arrays, SciPy matrices), attributes, conversions and round trips through SciPy, ``.T``,
``.astype``, ``.to``, ``todense``, ``random``, the products (``A @ x``, ``A @ X`` with C and F
order operands, ``X @ A``, ``A.T @ X``, sparse @ sparse) and every validation error.

Matrices cover empty rows, a dense row, zero nonzeros (also ``(0, n)`` and ``(m, 0)``), duplicate
COO entries, power-law row lengths, rectangular shapes and int32 and int64 indices. References
are SciPy in float64 on the same (already rounded) inputs. An element may differ from the
reference by ``RTOL[dtype]`` times the largest ``(|A| @ |X|)`` of its row; where that product is
zero (an empty row or column) the result must be exactly zero. Products of dyadic values (small
multiples of 1/4) are exact in any summation order and are compared for equality.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.sparse as sp

import pocaflow as pf
from helpers import np_dtype
from pocaflow.bench.suites.sparse import power_law_csr

FLOATS = ["float32", "float64"]
#: Relative error allowed against the largest |A| @ |X| of the row (float32 sums of up to a few
#: hundred products; float64 the same in its precision).
RTOL = {"float32": 1e-5, "float64": 1e-12}
INDEX_DTYPES = [np.int32, np.int64]
FORMATS = ["csr", "csc", "coo"]


# --- inputs ---------------------------------------------------------------------------------------


def values(rng: np.random.Generator, size: int, dtype: str, dyadic: bool = False) -> np.ndarray:
    """Normal values rounded to ``dtype`` or, with ``dyadic``, nonzero multiples of 1/4 in
    [-2, 2] (their products and sums are exact in float32)."""
    if dyadic:
        mags = rng.integers(1, 9, size=size) / 4
        return (mags * rng.choice([-1.0, 1.0], size=size)).astype(np_dtype(dtype))
    return rng.standard_normal(size).astype(np_dtype(dtype))


def row_lengths(
    rng: np.random.Generator, m: int, n: int, pattern: str, density: float = 0.15
) -> np.ndarray:
    """Nonzeros per row for a pattern of ``m`` rows of ``n`` columns (``density``: the mean
    fraction of a row that the uniform patterns fill)."""
    if n == 0 or m == 0 or pattern == "empty":
        return np.zeros(m, dtype=np.int64)
    if pattern == "power_law":
        return np.minimum(n, (rng.pareto(1.1, size=m) * 2).astype(np.int64))
    lengths = rng.binomial(n, density, size=m)
    if pattern == "empty_rows":
        lengths[rng.random(m) < 0.5] = 0
    if pattern == "dense_row":
        lengths[rng.integers(0, m)] = n
    return lengths


def make_scipy(
    rng: np.random.Generator,
    m: int,
    n: int,
    pattern: str = "uniform",
    dtype: str = "float64",
    index_dtype=np.int32,
    dyadic: bool = False,
    density: float = 0.15,
) -> sp.csr_array:
    """A canonical SciPy CSR matrix (sorted, unique columns per row) with the given row
    pattern, values of ``dtype`` and indices of ``index_dtype``."""
    return csr_of_lengths(
        rng, row_lengths(rng, m, n, pattern, density), n, dtype, index_dtype, dyadic
    )


def csr_of_lengths(
    rng: np.random.Generator,
    lengths: np.ndarray,
    n: int,
    dtype: str = "float64",
    index_dtype=np.int32,
    dyadic: bool = False,
) -> sp.csr_array:
    """A canonical SciPy CSR matrix of ``n`` columns with the given nonzeros per row."""
    m = len(lengths)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(index_dtype)
    cols = [np.sort(rng.choice(n, size=k, replace=False)) for k in lengths]
    indices = (np.concatenate(cols) if cols else np.zeros(0)).astype(index_dtype)
    data = values(rng, int(indptr[-1]), dtype, dyadic)
    a = sp.csr_array((data, indices, indptr), shape=(m, n))
    a.indices, a.indptr = indices, indptr  # SciPy keeps them, but say so
    return a


#: (label, rows, columns, pattern) of the matrices every product test multiplies.
MATRICES = [
    ("uniform 37x53", 37, 53, "uniform"),
    ("empty rows 64x17", 64, 17, "empty_rows"),
    ("dense row 30x200", 30, 200, "dense_row"),
    ("power law 150x150", 150, 150, "power_law"),
    ("nnz=0 12x9", 12, 9, "empty"),
    ("one row 1x40", 1, 40, "uniform"),
    ("one column 40x1", 40, 1, "uniform"),
    ("0x9", 0, 9, "uniform"),
    ("9x0", 9, 0, "uniform"),
    ("0x0", 0, 0, "uniform"),
]
MATRIX_IDS = [m[0] for m in MATRICES]


def pf_csr(a, device, how: str = "tuple"):
    """``a`` (SciPy CSR) as a ``pf.sparse.csr_array`` on ``device``, built ``how``: from a tuple
    of NumPy arrays, of pf arrays, of lists, from the SciPy matrix, or by ``from_scipy``."""
    shape = a.shape
    if how == "tuple":
        return pf.sparse.csr_array((a.data, a.indices, a.indptr), shape=shape, device=device)
    if how == "pf":
        parts = [pf.asarray(x, device=device) for x in (a.data, a.indices, a.indptr)]
        return pf.sparse.csr_array(tuple(parts), shape=shape, device=device)
    if how == "lists":
        parts = (a.data.tolist(), a.indices.tolist(), a.indptr.tolist())
        return pf.sparse.csr_array(parts, shape=shape, dtype=pf_dtype(a.dtype), device=device)
    if how == "scipy":
        return pf.sparse.csr_array(a, device=device)
    assert how == "from_scipy"
    return pf.sparse.from_scipy(a, device=device)


def pf_dtype(dtype):
    return {"float32": pf.float32, "float64": pf.float64}[np.dtype(dtype).name]


def dense_layouts(x: np.ndarray, device) -> list:
    """``(label, operand)``: the dense ``x`` as NumPy C and F order and as pf arrays in C order,
    every other element of a wider pf array (NaN between: a kernel that reads them shows),
    F order (from NumPy) and F order made by transposing a C-order pf array."""
    out = [("np C", np.ascontiguousarray(x)), ("pf C", pf.asarray(x, device=device))]
    wide = np.full((*x.shape[:-1], 2 * x.shape[-1]), np.nan, dtype=x.dtype)
    wide[..., ::2] = x
    out.append(("pf [..., ::2]", pf.asarray(wide, device=device)[..., ::2]))
    if x.ndim == 2:
        f = np.asfortranarray(x)
        out += [("np F", f), ("pf F", pf.asarray(f, device=device))]
        out.append(("pf .T", pf.asarray(np.ascontiguousarray(x.T), device=device).T))
    return out


# --- checks ---------------------------------------------------------------------------------------


def assert_on(t, device) -> None:
    assert t.device == device, (t.device, device)


def dense(x) -> np.ndarray:
    """A SciPy or NumPy result as a NumPy array."""
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def assert_product(got, a, b, dtype: str, device, exact: bool = False, where: str = "") -> None:
    """``got`` (a pf array of ``dtype`` on ``device``) is ``a @ b`` (float64 references; one of
    them SciPy sparse): within ``RTOL`` of the largest ``|a| @ |b|`` of each row, exactly zero
    where ``|a| @ |b|`` is zero, equal with ``exact``. ``where`` prefixes a failure."""
    try:
        _assert_product(got, a, b, dtype, device, exact)
    except AssertionError as e:
        if not where:
            raise
        raise AssertionError(f"{where}: {e}") from None


def _assert_product(got, a, b, dtype: str, device, exact: bool) -> None:
    assert isinstance(got, pf.Tensor), type(got)
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    want = dense(a64 @ b64)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == dtype, (got.dtype, dtype)
    assert_on(got, device)
    out = got.numpy().astype(np.float64)
    assert not np.isnan(out).any(), "NaN in the product"
    if exact:
        np.testing.assert_array_equal(out, want)
        return
    scale = dense(abs(a64) @ abs(b64))
    rows = scale if scale.ndim == 1 else scale.max(axis=-1, keepdims=True, initial=0.0)
    bound = np.where(scale > 0, RTOL[dtype] * rows, 0.0)
    err = np.abs(out - want)
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{bad.sum()} of {bad.size} beyond the bound: at {np.argwhere(bad)[:3].tolist()} "
        f"got {out[bad][:3].tolist()}, want {want[bad][:3].tolist()}, "
        f"bound {bound[bad][:3].tolist()}"
    )


def assert_sparse_equal(got, want) -> None:
    """``got`` (SciPy, from ``to_scipy``) has ``want``'s format, shape, dtype and arrays."""
    assert got.format == want.format, (got.format, want.format)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    if want.format == "coo":
        np.testing.assert_array_equal(got.row, want.row)
        np.testing.assert_array_equal(got.col, want.col)
    else:
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)


def assert_canonical_csr(c) -> None:
    """A SciPy CSR matrix whose column indices are strictly increasing within each row."""
    for i in range(c.shape[0]):
        row = c.indices[c.indptr[i] : c.indptr[i + 1]]
        assert np.all(np.diff(row) > 0), f"row {i} indices not sorted and unique: {row}"


def index_name(t) -> str:
    return getattr(t, "name", str(t))


# --- construction and attributes ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["tuple", "pf", "lists", "scipy", "from_scipy"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_csr_construction_and_attributes(xdev, rng, how, dtype):
    a = make_scipy(rng, 23, 31, "empty_rows", dtype)
    A = pf_csr(a, xdev, how)
    assert pf.sparse.issparse(A) and isinstance(A, pf.sparse.csr_array)
    assert A.shape == (23, 31) and isinstance(A.shape, tuple) and A.ndim == 2
    assert A.nnz == a.nnz and isinstance(A.nnz, int)
    assert A.format == "csr" and A.dtype == pf_dtype(dtype)
    assert_on(A, xdev)
    assert A.index_dtype in (pf.int32, pf.int64)
    for name in ("data", "indices", "indptr"):
        part = getattr(A, name)
        assert isinstance(part, pf.Tensor), (name, type(part))
        assert_on(part, xdev)
        np.testing.assert_array_equal(part.numpy(), getattr(a, name))
    assert A.data.dtype == A.dtype
    assert A.indices.dtype == A.index_dtype and A.indptr.dtype == A.index_dtype
    np.testing.assert_array_equal(A.todense().numpy(), a.toarray())


def test_issparse_says_no_to_dense(xdev):
    assert not pf.sparse.issparse(pf.ones((2, 2), device=xdev))
    assert not pf.sparse.issparse(np.ones((2, 2)))
    assert not pf.sparse.issparse(sp.csr_array(np.eye(2)))


def test_dtype_argument_converts(xdev, rng):
    a = make_scipy(rng, 5, 6, "uniform", "float64")
    A = pf.sparse.csr_array((a.data, a.indices, a.indptr), shape=a.shape, dtype=pf.float32)
    assert A.dtype == pf.float32 and A.data.dtype == pf.float32
    np.testing.assert_array_equal(A.data.numpy(), a.data.astype(np.float32))
    C = pf.sparse.coo_array(
        (a.data, (a.tocoo().row, a.tocoo().col)), shape=a.shape, dtype=pf.float32, device=xdev
    )
    assert C.dtype == pf.float32 and C.format == "coo"
    assert_on(C, xdev)


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_index_dtypes_give_the_same_matrix(xdev, rng, index_dtype):
    a = make_scipy(rng, 40, 30, "power_law", "float64", index_dtype)
    A = pf_csr(a, xdev)
    assert A.index_dtype in (pf.int32, pf.int64)
    if index_dtype == np.int32:
        assert A.index_dtype == pf.int32  # the values fit: no reason to widen
    x = values(rng, 30, "float64")
    assert_product(A @ x, a, x, "float64", xdev)
    s = A.to_scipy()
    assert s.indices.dtype == np_dtype(index_name(A.index_dtype))
    np.testing.assert_array_equal(s.indices, a.indices)
    np.testing.assert_array_equal(s.indptr, a.indptr)


@pytest.mark.parametrize("dtype", FLOATS)
def test_coo_construction_keeps_duplicates_until_tocsr(xdev, rng, dtype):
    m, n, k = 13, 11, 60  # 60 entries in 143 places: many duplicates
    row, col = rng.integers(0, m, k), rng.integers(0, n, k)
    data = values(rng, k, dtype, dyadic=True)
    want = sp.coo_array((data, (row, col)), shape=(m, n))
    C = pf.sparse.coo_array((data, (row, col)), shape=(m, n), device=xdev)
    assert isinstance(C, pf.sparse.coo_array) and C.format == "coo" and C.nnz == k
    assert C.shape == (m, n) and C.dtype == pf_dtype(dtype)
    assert_on(C, xdev)
    for name in ("data", "row", "col"):
        part = getattr(C, name)
        assert_on(part, xdev)
        np.testing.assert_array_equal(part.numpy(), getattr(want, name))
    dense = C.todense()
    assert isinstance(dense, pf.Tensor) and dense.dtype == dtype
    np.testing.assert_array_equal(dense.numpy(), want.toarray())  # dyadic: sums exact
    R = C.tocsr()
    assert isinstance(R, pf.sparse.csr_array)
    assert_on(R, xdev)
    r = R.to_scipy()
    assert_canonical_csr(r)
    ref = want.tocsr()
    ref.sum_duplicates()
    np.testing.assert_array_equal(r.indptr, ref.indptr)
    np.testing.assert_array_equal(r.indices, ref.indices)
    np.testing.assert_array_equal(r.data, ref.data)
    K = C.tocsc()
    assert K.format == "csc"
    np.testing.assert_array_equal(K.todense().numpy(), want.toarray())


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_coo_products_sum_duplicates(xdev, rng, index_dtype):
    m, n, k = 20, 15, 120
    row = rng.integers(0, m, k).astype(index_dtype)
    col = rng.integers(0, n, k).astype(index_dtype)
    data = values(rng, k, "float64")
    want = sp.coo_array((data, (row, col)), shape=(m, n))
    C = pf.sparse.coo_array((data, (row, col)), shape=(m, n), device=xdev)
    x, X = values(rng, n, "float64"), values(rng, n * 3, "float64").reshape(n, 3)
    assert_product(C @ x, want, x, "float64", xdev)
    assert_product(C @ X, want, X, "float64", xdev)
    Y = values(rng, 4 * m, "float64").reshape(4, m)
    assert_product(Y @ C, Y, want, "float64", xdev)


# --- SciPy round trips and conversions ------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_scipy_round_trip(xdev, rng, fmt, index_dtype, dtype):
    want = make_scipy(rng, 17, 29, "empty_rows", dtype).asformat(fmt)
    if fmt == "coo":
        want.coords = tuple(c.astype(index_dtype) for c in want.coords)
    else:
        want.indices = want.indices.astype(index_dtype)
        want.indptr = want.indptr.astype(index_dtype)
    A = pf.sparse.from_scipy(want, device=xdev)
    assert A.format == fmt and type(A).__name__ == f"{fmt}_array"
    assert_on(A, xdev)
    got = A.to_scipy()
    assert isinstance(got, {"csr": sp.csr_array, "csc": sp.csc_array, "coo": sp.coo_array}[fmt])
    assert_sparse_equal(got, want)
    idx = got.row if fmt == "coo" else got.indices
    assert idx.dtype == np_dtype(index_name(A.index_dtype))
    if fmt != "coo":
        assert got.indptr.dtype == idx.dtype


@pytest.mark.parametrize("fmt", ["lil", "dok", "bsr", "dia"])
def test_from_scipy_other_formats_give_csr(xdev, rng, fmt):
    a = make_scipy(rng, 8, 10, "uniform")
    A = pf.sparse.from_scipy(a.asformat(fmt), device=xdev)
    assert isinstance(A, pf.sparse.csr_array) and A.format == "csr"
    np.testing.assert_array_equal(A.todense().numpy(), a.toarray())


def test_from_scipy_takes_matrices_too(xdev, rng):
    a = make_scipy(rng, 8, 10, "uniform")
    for m in (sp.csr_matrix(a), sp.csc_matrix(a), sp.coo_matrix(a)):
        A = pf.sparse.from_scipy(m, device=xdev)
        assert A.format == m.format
        np.testing.assert_array_equal(A.todense().numpy(), a.toarray())
    B = pf.sparse.csr_array(sp.csc_matrix(a), device=xdev)
    assert B.format == "csr"
    assert_sparse_equal(B.to_scipy(), a)


@pytest.mark.parametrize("label, m, n, pattern", MATRICES, ids=MATRIX_IDS)
def test_conversions_between_formats(xdev, rng, label, m, n, pattern):
    a = make_scipy(rng, m, n, pattern)
    A = pf_csr(a, xdev)
    K = A.tocsc()
    assert isinstance(K, pf.sparse.csc_array) and K.shape == (m, n)
    assert_on(K, xdev)
    assert_sparse_equal(K.to_scipy(), a.tocsc())
    C = A.tocoo()
    assert isinstance(C, pf.sparse.coo_array) and C.nnz == a.nnz
    assert_sparse_equal(C.to_scipy(), a.tocoo())
    assert_sparse_equal(C.tocsr().to_scipy(), a)
    assert_sparse_equal(K.tocsr().to_scipy(), a)
    assert_sparse_equal(A.tocsr().to_scipy(), a)
    np.testing.assert_array_equal(K.tocoo().todense().numpy(), a.toarray())
    D = A.todense()
    assert isinstance(D, pf.Tensor) and D.shape == (m, n) and D.dtype == "float64"
    assert_on(D, xdev)
    np.testing.assert_array_equal(D.numpy(), a.toarray())


def test_transpose_swaps_formats_without_copying(xdev, rng):
    a = make_scipy(rng, 19, 7, "dense_row")
    A = pf_csr(a, xdev)
    T = A.T
    assert isinstance(T, pf.sparse.csc_array) and T.shape == (7, 19) and T.nnz == A.nnz
    assert T.dtype == A.dtype and T.index_dtype == A.index_dtype
    assert_on(T, xdev)
    for name in ("data", "indices", "indptr"):
        assert getattr(T, name)._shares_memory(getattr(A, name)), name
    np.testing.assert_array_equal(T.todense().numpy(), a.toarray().T)
    assert_sparse_equal(T.to_scipy(), a.T.tocsc())
    TT = T.T
    assert isinstance(TT, pf.sparse.csr_array) and TT.shape == A.shape
    assert_sparse_equal(TT.to_scipy(), a)
    C = pf.sparse.from_scipy(a.tocoo(), device=xdev)
    CT = C.T
    assert isinstance(CT, pf.sparse.coo_array) and CT.shape == (7, 19)
    np.testing.assert_array_equal(CT.row.numpy(), a.tocoo().col)
    np.testing.assert_array_equal(CT.col.numpy(), a.tocoo().row)
    np.testing.assert_array_equal(CT.todense().numpy(), a.toarray().T)


@pytest.mark.parametrize("fmt", FORMATS)
def test_astype(xdev, rng, fmt):
    a = make_scipy(rng, 9, 12, "uniform", "float64").asformat(fmt)
    A = pf.sparse.from_scipy(a, device=xdev)
    B = A.astype(pf.float32)
    assert B.format == fmt and B.dtype == pf.float32 and B.nnz == A.nnz
    assert_on(B, xdev)
    np.testing.assert_array_equal(B.data.numpy(), a.data.astype(np.float32))
    C = B.astype(pf.float64)
    assert C.dtype == pf.float64
    np.testing.assert_array_equal(C.data.numpy(), a.data.astype(np.float32).astype(np.float64))
    for bad in (pf.int32, pf.int64, pf.float16, pf.bfloat16, pf.bool):
        with pytest.raises(TypeError):
            A.astype(bad)


@pytest.mark.parametrize("fmt", FORMATS)
def test_to_device_and_back(xdev, rng, fmt):
    a = make_scipy(rng, 14, 9, "empty_rows").asformat(fmt)
    A = pf.sparse.from_scipy(a)  # default device
    assert_on(A, "cpu")
    for move in (lambda M, d: M.to(d), lambda M, d: M.to_device(d)):
        B = move(A, xdev)
        assert B.format == fmt and B.shape == A.shape and B.nnz == A.nnz
        assert_on(B, xdev)
        assert_on(B.data, xdev)
        assert_sparse_equal(B.to_scipy(), a)
        back = move(B, "cpu")
        assert_on(back, "cpu")
        assert_sparse_equal(back.to_scipy(), a)


# --- products -------------------------------------------------------------------------------------


@pytest.mark.parametrize("label, m, n, pattern", MATRICES, ids=MATRIX_IDS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_spmv(xdev, rng, label, m, n, pattern, dtype):
    a = make_scipy(rng, m, n, pattern, dtype)
    A = pf_csr(a, xdev)
    x = values(rng, n, dtype)
    for how, xv in dense_layouts(x, xdev):
        y = A @ xv
        assert y.ndim == 1, how
        assert_product(y, a, x, dtype, xdev, where=how)


@pytest.mark.parametrize("label, m, n, pattern", MATRICES, ids=MATRIX_IDS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_spmm(xdev, rng, label, m, n, pattern, dtype):
    a = make_scipy(rng, m, n, pattern, dtype)
    A = pf_csr(a, xdev)
    for k in (1, 5, 64):
        X = values(rng, n * k, dtype).reshape(n, k)
        for how, xv in dense_layouts(X, xdev):
            assert_product(A @ xv, a, X, dtype, xdev, where=f"X {how}, k={k}")


@pytest.mark.parametrize("k", [32, 40, 64, 96, 128, 256])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_spmm_long_rows_and_column_counts(xdev, rng, k, index_dtype, dtype):
    """Thousands of nonzeros: rows of up to the full width among short ones, empty rows among
    them and at the end; column counts from 32 to 256 (partial tiles of 64 and 128); X in every
    layout and as a column slice of a wider array (rows at an odd offset and stride). Dyadic
    values: the sums are exact in any order, so the result equals SciPy's."""
    n = 1200
    lengths = rng.integers(0, 12, size=900)
    lengths[rng.random(900) < 0.3] = 0
    lengths[[3, 4, 400, 401, 402]] = [n, 256, 700, 0, 513]
    lengths[-20:] = 0
    a = csr_of_lengths(rng, lengths, n, dtype, index_dtype, dyadic=True)
    A = pf_csr(a, xdev)
    X = values(rng, n * k, dtype, dyadic=True).reshape(n, k)
    for how, xv in dense_layouts(X, xdev):
        assert_product(A @ xv, a, X, dtype, xdev, exact=True, where=f"X {how}")
    wide = values(rng, n * (k + 1), dtype, dyadic=True).reshape(n, k + 1)
    xs = pf.asarray(wide, device=xdev)[:, 1:]
    assert_product(A @ xs, a, wide[:, 1:], dtype, xdev, exact=True, where="X[:, 1:]")


@functools.lru_cache(maxsize=1)
def large_power_law() -> sp.csr_array:
    """The benchmark's power-law generator at n = 60,000 (60 rows of 6000 nonzeros, the rest 0
    to 28: about 1.2M nonzeros), with dyadic values."""
    _, indices, indptr = power_law_csr(60_000, seed=3)
    data = values(np.random.default_rng(4), int(indptr[-1]), "float64", dyadic=True)
    return sp.csr_array((data, indices, indptr), shape=(60_000, 60_000))


@pytest.mark.parametrize("k", [8, 64, 96, 128])
@pytest.mark.parametrize("dtype", FLOATS)
def test_spmm_large_matrix(xdev, rng, k, dtype):
    """Over a million nonzeros with heavy rows (where CUDA runs its own SpMM kernel rather than
    cuSPARSE's): X in C order, F order and as a column slice; exact with dyadic values."""
    a = large_power_law().astype(dtype)
    A = pf_csr(a, xdev)
    n = a.shape[1]
    X = values(rng, n * k, dtype, dyadic=True).reshape(n, k)
    wide = values(rng, n * (k + 2), dtype, dyadic=True).reshape(n, k + 2)
    layouts = [
        ("pf C", pf.asarray(X, device=xdev), X),
        ("np F", np.asfortranarray(X), X),
        ("pf [:, 2:]", pf.asarray(wide, device=xdev)[:, 2:], wide[:, 2:]),
    ]
    for how, xv, ref in layouts:
        assert_product(A @ xv, a, ref, dtype, xdev, exact=True, where=f"X {how}")


@pytest.mark.parametrize("label, m, n, pattern", MATRICES, ids=MATRIX_IDS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_dense_times_sparse(xdev, rng, label, m, n, pattern, dtype):
    a = make_scipy(rng, m, n, pattern, dtype)
    A = pf_csr(a, xdev)
    for p in (1, 7):
        X = values(rng, p * m, dtype).reshape(p, m)
        for how, xv in dense_layouts(X, xdev):
            assert_product(xv @ A, X, a, dtype, xdev, where=f"X {how}, p={p}")


@pytest.mark.parametrize("label, m, n, pattern", MATRICES, ids=MATRIX_IDS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_transposed_products(xdev, rng, label, m, n, pattern, dtype):
    a = make_scipy(rng, m, n, pattern, dtype)
    A = pf_csr(a, xdev)
    x = values(rng, m, dtype)
    X = values(rng, m * 6, dtype).reshape(m, 6)
    assert_product(A.T @ x, a.T, x, dtype, xdev)
    for how, xv in dense_layouts(X, xdev):
        assert_product(A.T @ xv, a.T, X, dtype, xdev, where=f"X {how}")
    Y = values(rng, 3 * n, dtype).reshape(3, n)
    assert_product(Y @ A.T, Y, a.T, dtype, xdev)
    K = pf.sparse.from_scipy(a.tocsc(), device=xdev)  # a csc matrix of its own
    xk, Xk = values(rng, n, dtype), values(rng, n * 4, dtype).reshape(n, 4)
    assert_product(K @ xk, a, xk, dtype, xdev)
    assert_product(K @ Xk, a, Xk, dtype, xdev)


@pytest.mark.parametrize("dtype", FLOATS)
def test_dyadic_products_are_exact(xdev, rng, dtype):
    """Every summation order gives the same sums of dyadic values: the result is SciPy's."""
    a = make_scipy(rng, 300, 250, "power_law", dtype, dyadic=True)
    A = pf_csr(a, xdev)
    x = values(rng, 250, dtype, dyadic=True)
    X = values(rng, 250 * 33, dtype, dyadic=True).reshape(250, 33)
    Y = values(rng, 9 * 300, dtype, dyadic=True).reshape(9, 300)
    assert_product(A @ x, a, x, dtype, xdev, exact=True)
    for how, xv in dense_layouts(X, xdev):
        assert_product(A @ xv, a, X, dtype, xdev, exact=True, where=how)
    assert_product(Y @ A, Y, a, dtype, xdev, exact=True)
    assert_product(A.T @ Y.T, a.T, Y.T, dtype, xdev, exact=True)
    c = (a @ a.T).tocsr()
    C = A @ A.T
    np.testing.assert_array_equal(C.todense().numpy(), c.toarray())


@pytest.mark.parametrize("m, n", [(12, 9), (0, 9), (9, 0), (0, 0)])
def test_products_with_an_empty_matrix_are_exactly_zero(xdev, rng, m, n):
    A = pf.sparse.csr_array(
        (np.zeros(0), np.zeros(0, np.int32), np.zeros(m + 1, np.int32)), shape=(m, n), device=xdev
    )
    assert A.nnz == 0 and A.shape == (m, n)
    for got, shape in (
        (A @ values(rng, n, "float64"), (m,)),
        (A @ values(rng, n * 5, "float64").reshape(n, 5), (m, 5)),
        (A @ np.asfortranarray(values(rng, n * 5, "float64").reshape(n, 5)), (m, 5)),
        (values(rng, 4 * m, "float64").reshape(4, m) @ A, (4, n)),
        (A.T @ values(rng, m * 3, "float64").reshape(m, 3), (n, 3)),
        (A.todense(), (m, n)),
    ):
        assert got.shape == shape
        out = got.numpy()
        assert np.all(out == 0) and not np.signbit(out).any(), out
    S = A @ A.T
    assert S.shape == (m, m) and S.nnz == 0 and S.format == "csr"


def _spgemm_pairs(rng, dtype):
    """(label, left SciPy, right SciPy) pairs of compatible shapes."""
    out = []
    for m, k, n, pa, pb in [
        (30, 40, 25, "uniform", "uniform"),
        (50, 20, 60, "empty_rows", "power_law"),
        (17, 33, 1, "dense_row", "uniform"),
        (1, 33, 17, "uniform", "dense_row"),
        (12, 9, 10, "empty", "uniform"),
        (0, 5, 7, "uniform", "uniform"),
        (7, 0, 5, "uniform", "uniform"),
        (6, 5, 0, "uniform", "uniform"),
    ]:
        a = make_scipy(rng, m, k, pa, dtype)
        b = make_scipy(rng, k, n, pb, dtype)
        out.append((f"{m}x{k} {pa} @ {k}x{n} {pb}", a, b))
    return out


@pytest.mark.parametrize("dtype", FLOATS)
def test_sparse_times_sparse(xdev, rng, dtype):
    for label, a, b in _spgemm_pairs(rng, dtype):
        A, B = pf_csr(a, xdev), pf_csr(b, xdev)
        for kind, L, R, la, rb in (
            ("csr @ csr", A, B, a, b),
            ("csr @ csc", A, B.tocsc(), a, b),
            ("csc @ csr", A.tocsc(), B, a, b),
            ("csr @ coo", A, B.tocoo(), a, b),
            ("A @ A.T", A, A.T, a, a.T),
            ("A.T @ A", A.T, A, a.T, a),
        ):
            C = L @ R
            where = f"{label}, {kind}"
            assert isinstance(C, pf.sparse.csr_array), (where, type(C))
            assert C.dtype == dtype and C.shape == (la.shape[0], rb.shape[1]), where
            assert_on(C, xdev)
            c = C.to_scipy()
            assert_canonical_csr(c)
            assert_product(C.todense(), la, rb, dtype, xdev, where=f"{where}")
            want = (la.astype(np.float64) @ rb.astype(np.float64)).toarray()
            # every stored entry lies where the product's structure allows one
            structure = (abs(la) @ abs(rb)).toarray() != 0
            rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
            assert structure[rows, c.indices].all(), f"{where}: entries outside the structure"
            assert (want[~structure] == 0).all()


@pytest.mark.parametrize("dtype", FLOATS)
def test_sparse_product_drops_cancelled_zeros(xdev, rng, dtype):
    """Entries that cancel to zero are not stored, as in SciPy's product: the same arrays as
    SciPy's result, exactly (dyadic values), including a product with no entries left."""
    a = make_scipy(rng, 40, 30, "uniform", dtype, dyadic=True, density=0.3)
    b = make_scipy(rng, 30, 25, "uniform", dtype, dyadic=True, density=0.3)
    # Row 0 of A times B cancels wherever both copies of B's row 3 meet: put -b[3] in row 4.
    b = b.tolil()
    b[4, :] = -b[3, :].toarray()
    b = sp.csr_array(b)
    a = a.tolil()
    a[0, :] = 0
    a[0, 3] = a[0, 4] = 1
    a = sp.csr_array(a)
    want = a @ b
    want.sort_indices()  # SciPy leaves a product's rows unsorted
    assert want.nnz < (abs(a) @ abs(b)).nnz  # the case has cancellations
    got = (pf_csr(a, xdev) @ pf_csr(b, xdev)).to_scipy()
    assert_sparse_equal(got, want.astype(dtype))
    one = sp.csr_array(np.array([[1.0, 1.0]], dtype=dtype))
    minus = sp.csr_array(np.array([[1.0], [-1.0]], dtype=dtype))
    empty = pf_csr(one, xdev) @ pf_csr(minus, xdev)
    assert empty.nnz == 0 and empty.shape == (1, 1)
    assert_sparse_equal(empty.to_scipy(), one @ minus)


def test_spgemm_with_int64_indices(xdev, rng):
    a = make_scipy(rng, 40, 30, "power_law", "float64", np.int64, dyadic=True)
    b = make_scipy(rng, 30, 20, "uniform", "float64", np.int64, dyadic=True)
    C = pf_csr(a, xdev) @ pf_csr(b, xdev)
    c = C.to_scipy()
    assert_canonical_csr(c)
    np.testing.assert_array_equal(c.toarray(), (a @ b).toarray())


@pytest.mark.parametrize("dense_dtype", FLOATS)
@pytest.mark.parametrize("sparse_dtype", FLOATS)
def test_mixed_dtypes_promote_like_scipy(xdev, rng, sparse_dtype, dense_dtype):
    a = make_scipy(rng, 21, 16, "uniform", sparse_dtype)
    A = pf_csr(a, xdev)
    want = np.result_type(a.dtype, np_dtype(dense_dtype)).name
    x = values(rng, 16, dense_dtype)
    X = values(rng, 16 * 4, dense_dtype).reshape(16, 4)
    Y = values(rng, 3 * 21, dense_dtype).reshape(3, 21)
    for how, xv in dense_layouts(x, xdev):
        assert_product(A @ xv, a, x, want, xdev, where=how)
    for how, xv in dense_layouts(X, xdev):
        assert_product(A @ xv, a, X, want, xdev, where=how)
    assert_product(Y @ A, Y, a, want, xdev)
    b = make_scipy(rng, 16, 11, "uniform", dense_dtype)
    C = A @ pf_csr(b, xdev)
    assert C.dtype == want
    assert_product(C.todense(), a, b, want, xdev)


def test_non_canonical_scipy_input(xdev, rng):
    """Unsorted column indices and duplicates within rows (valid in SciPy) multiply correctly."""
    a = make_scipy(rng, 25, 18, "uniform")
    perm = np.concatenate(
        [rng.permutation(np.arange(a.indptr[i], a.indptr[i + 1])) for i in range(25)]
    )
    u = sp.csr_array((a.data[perm], a.indices[perm], a.indptr), shape=a.shape)
    rows = [slice(a.indptr[i], a.indptr[i + 1]) for i in range(25)]
    twice = [np.tile(a.indices[r], 2) for r in rows], [np.tile(a.data[r], 2) for r in rows]
    dup = sp.csr_array(
        (np.concatenate(twice[1]), np.concatenate(twice[0]).astype(np.int32), 2 * a.indptr),
        shape=a.shape,
    )
    x, X = values(rng, 18, "float64"), values(rng, 18 * 4, "float64").reshape(18, 4)
    for m in (u, dup):
        M = pf.sparse.from_scipy(m, device=xdev)
        assert_product(M @ x, m, x, "float64", xdev)
        assert_product(M @ X, m, X, "float64", xdev)
        np.testing.assert_allclose(M.todense().numpy(), m.toarray(), rtol=1e-15, atol=0)
        c = (M @ M.T).to_scipy()
        assert_canonical_csr(c)
        np.testing.assert_allclose(c.toarray(), (m @ m.T).toarray(), rtol=1e-12, atol=1e-12)


def test_property_random_products(xdev, rng):
    """Seeded random shapes, densities, dtypes, index dtypes and operand layouts."""
    for trial in range(40):
        m, n, k = (int(v) for v in rng.integers(0, 60, size=3))
        dtype = FLOATS[trial % 2]
        index_dtype = INDEX_DTYPES[(trial // 2) % 2]
        pattern = ["uniform", "empty_rows", "dense_row", "power_law", "empty"][trial % 5]
        density = float(rng.choice([0.0, 0.01, 0.1, 0.5, 1.0]))
        a = make_scipy(rng, m, n, pattern, dtype, index_dtype, density=density)
        A = pf_csr(a, xdev, ["tuple", "pf", "from_scipy"][trial % 3])
        x = values(rng, n, dtype)
        X = values(rng, n * k, dtype).reshape(n, k)
        Y = values(rng, k * m, dtype).reshape(k, m)
        layouts = dense_layouts(X, xdev)
        how, xv = layouts[trial % len(layouts)]
        where = f"trial {trial}: {m}x{n} {pattern} {density} {dtype} {index_dtype.__name__}"
        where += f", X {how}"
        try:
            assert_product(A @ x, a, x, dtype, xdev)
            assert_product(A @ xv, a, X, dtype, xdev)
            assert_product(Y @ A, Y, a, dtype, xdev)
            assert_product(A.T @ Y.T, a.T, Y.T, dtype, xdev)
            b = make_scipy(rng, n, k, "uniform", dtype, index_dtype)
            C = A @ pf_csr(b, xdev)
            assert_canonical_csr(C.to_scipy())
            assert_product(C.todense(), a, b, dtype, xdev)
        except AssertionError as e:
            raise AssertionError(f"{where}: {e}") from None


# --- random ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [pf.float32, pf.float64])
def test_random(xdev, dtype):
    m, n, density = 200, 300, 0.05
    A = pf.sparse.random(m, n, density=density, dtype=dtype, device=xdev, seed=7)
    assert isinstance(A, pf.sparse.csr_array) and A.shape == (m, n) and A.dtype == dtype
    assert_on(A, xdev)
    expected = density * m * n
    assert abs(A.nnz - expected) <= 4 * np.sqrt(expected) + 1, A.nnz
    a = A.to_scipy()
    assert_canonical_csr(a)
    assert a.indices.min() >= 0 and a.indices.max() < n
    assert (a.data >= 0).all() and (a.data < 1).all()
    assert len(np.unique(a.data)) > 0.9 * a.nnz  # values, not a constant
    B = pf.sparse.random(m, n, density=density, dtype=dtype, device=xdev, seed=7)
    assert_sparse_equal(B.to_scipy(), a)
    other = pf.sparse.random(m, n, density=density, dtype=dtype, device=xdev, seed=8).to_scipy()
    assert other.nnz != a.nnz or not np.array_equal(other.indices, a.indices)


def test_random_defaults_and_extremes(xdev):
    A = pf.sparse.random(50, 40, seed=1)
    assert A.dtype == pf.float32 and A.format == "csr"
    assert_on(A, "cpu")
    assert abs(A.nnz - 20) <= 4 * np.sqrt(20) + 1
    assert pf.sparse.random(30, 20, density=0.0, device=xdev, seed=1).nnz == 0
    full = pf.sparse.random(30, 20, density=1.0, device=xdev, seed=1)
    assert full.nnz == 600
    assert_canonical_csr(full.to_scipy())
    for m, n in ((0, 5), (5, 0)):
        E = pf.sparse.random(m, n, density=0.5, device=xdev, seed=1)
        assert E.shape == (m, n) and E.nnz == 0


# --- errors ---------------------------------------------------------------------------------------

DATA3 = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "data, indices, indptr, shape, match",
    [
        (DATA3, [0, 1, 2], [0, 1, 3], (3, 3), "indptr"),  # length != rows + 1
        (DATA3, [0, 1, 2], [0, 1, 2, 3, 3], (3, 3), "indptr"),
        (DATA3, [0, 1, 2], [0, 2, 1, 3], (3, 3), "indptr"),  # decreasing
        (DATA3, [0, 1, 2], [1, 2, 3, 3], (3, 3), "indptr"),  # does not start at 0
        (DATA3, [0, 1, 2], [0, 1, 2, 2], (3, 3), "indptr|nnz"),  # ends before nnz
        (DATA3, [0, 1, 2], [0, 1, 2, 4], (3, 3), "indptr|nnz"),  # ends past nnz
        (DATA3, [0, 1, 3], [0, 1, 2, 3], (3, 3), "indices|out of range"),
        (DATA3, [0, -1, 2], [0, 1, 2, 3], (3, 3), "indices|out of range|negative"),
        (DATA3, [0, 1], [0, 1, 2, 3], (3, 3), "data|indices|length"),
        (DATA3[:2], [0, 1, 2], [0, 1, 2, 3], (3, 3), "data|indices|length"),
        (DATA3, [0, 1, 2], [0, 1, 2, 3], (3, -3), "shape"),
        (DATA3, [0, 1, 2], [0, 1, 2, 3], (-3, 3), "shape"),
        (DATA3, [0, 1, 2], [0, 1, 2, 3], (3,), "shape"),
        (DATA3, [0, 1, 2], [0, 1, 2, 3], (3, 3, 1), "shape"),
    ],
)
def test_csr_validation(xdev, data, indices, indptr, shape, match):
    for cast in (np.int32, np.int64):
        with pytest.raises(ValueError, match=match):
            pf.sparse.csr_array(
                (data, np.asarray(indices, cast), np.asarray(indptr, cast)),
                shape=shape,
                device=xdev,
            )


@pytest.mark.parametrize(
    "row, col, shape, match",
    [
        ([0, 1, 3], [0, 1, 2], (3, 3), "row|out of range"),
        ([0, 1, 2], [0, 3, 2], (3, 3), "col|out of range"),
        ([0, -1, 2], [0, 1, 2], (3, 3), "row|out of range|negative"),
        ([0, 1, 2], [0, 1, -2], (3, 3), "col|out of range|negative"),
        ([0, 1], [0, 1, 2], (3, 3), "row|col|length"),
        ([0, 1, 2], [0, 1, 2], (-1, 3), "shape"),
    ],
)
def test_coo_validation(xdev, row, col, shape, match):
    with pytest.raises(ValueError, match=match):
        pf.sparse.coo_array((DATA3, (np.array(row), np.array(col))), shape=shape, device=xdev)


@pytest.mark.parametrize("bad", [np.complex64, np.complex128])
def test_complex_data_is_a_type_error(xdev, bad):
    with pytest.raises(TypeError):
        pf.sparse.csr_array(
            (DATA3.astype(bad), np.array([0, 1, 2]), np.array([0, 1, 2, 3])),
            shape=(3, 3),
            device=xdev,
        )
    with pytest.raises(TypeError):
        pf.sparse.from_scipy(sp.csr_array(np.eye(3, dtype=bad)), device=xdev)


def test_product_shape_mismatch_names_both_shapes(xdev, rng):
    A = pf_csr(make_scipy(rng, 4, 5, "uniform"), xdev)
    B = pf_csr(make_scipy(rng, 4, 6, "uniform"), xdev)
    for left, right, shapes in (
        (A, np.ones(4), ((4, 5), (4,))),
        (A, np.ones((4, 2)), ((4, 5), (4, 2))),
        (A, pf.ones((6, 2), device=xdev), ((4, 5), (6, 2))),
        (np.ones((2, 5)), A, ((2, 5), (4, 5))),
        (A, B, ((4, 5), (4, 6))),
        (A.T, np.ones(4 + 1), ((5, 4), (5,))),
    ):
        with pytest.raises(ValueError) as e:
            left @ right
        text = str(e.value)
        for s in shapes:  # as a tuple, (4, 5), or as a list, [4, 5]
            as_list = str(list(s))
            assert str(s) in text or as_list in text, (text, shapes)


@pytest.mark.cuda
def test_operands_on_different_devices_are_refused(rng):
    a = make_scipy(rng, 6, 5, "uniform")
    A_cpu, A_gpu = pf_csr(a, "cpu"), pf_csr(a, "cuda")
    x = values(rng, 5, "float64")
    with pytest.raises(RuntimeError):
        A_cpu @ pf.asarray(x, device="cuda")
    with pytest.raises(RuntimeError):
        A_gpu @ pf.asarray(x, device="cpu")
    with pytest.raises(RuntimeError):
        pf.asarray(np.ones((2, 6)), device="cpu") @ A_gpu
    with pytest.raises(RuntimeError):
        A_cpu @ A_gpu.T
    # a NumPy operand goes to the matrix's device
    assert_product(A_gpu @ x, a, x, "float64", "cuda")

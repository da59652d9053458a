"""Sparse matrices on the CPU and CUDA, with SciPy's sparse-array conventions.

``csr_array``, ``csc_array`` and ``coo_array`` hold their arrays as pocaflow arrays on one
device. Products take the dense operand on either side, in any layout (C or Fortran order,
strided views): ``A @ x`` (SpMV), ``A @ X`` and ``X @ A`` (SpMM), ``A.T @ X`` without
materializing the transpose (a CSC matrix is the CSR matrix of its transpose, and the kernels
read it transposed), and ``A @ B`` with both sparse (SpGEMM, a CSR result).

>>> import numpy as np, pocaflow as pf
>>> a = pf.sparse.csr_array((np.array([1.0, 2.0, 3.0]), [0, 2, 2], [0, 2, 3]), shape=(2, 3))
>>> (a @ np.ones(3)).numpy()
array([3., 3.])

On the CPU the products run on pocaflow's own kernels (row-parallel and balanced by nonzeros;
SpGEMM by Gustavson's algorithm), on CUDA through cuSPARSE. Every constructor checks the
arrays (``indptr`` length, monotonicity and last value, indices in range) before a kernel
reads them; a failure is a ``ValueError`` naming what is wrong.

Values are float32 or float64 (integer and bool values become float64, other floats
float32); indices are int32 when the shape and the number of stored values fit, else int64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _pocaflow
from .._pocaflow import Tensor

__all__ = [
    "coo_array",
    "csc_array",
    "csr_array",
    "from_scipy",
    "issparse",
    "random",
]


def _values(data: Any, dtype: Any, device: Any) -> Tensor:
    """The values as a float32 or float64 pocaflow array."""
    from .. import asarray, float32, float64, isdtype

    x = asarray(data, device=device)
    if dtype is not None:
        return x.astype(dtype)
    if isdtype(x.dtype, "complex floating"):
        raise TypeError(f"sparse matrices hold float32 or float64 values, got {x.dtype}")
    if x.dtype in (float32, float64):
        return x
    return x.astype(float32 if isdtype(x.dtype, "real floating") else float64)


def _indices(x: Any, device: Any) -> Tensor:
    """An index array as a pocaflow array (any integer dtype; checked by the native side)."""
    from .. import asarray

    return asarray(x, device=device)


def _shape(shape: Any) -> tuple[int, int]:
    """A checked 2-D shape."""
    try:
        rows, cols = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"a sparse matrix needs a 2-D shape, got {shape!r}") from None
    if rows < 0 or cols < 0:
        raise ValueError(f"a sparse matrix's shape must not be negative, got {shape!r}")
    return rows, cols


def _dense(x: Any, device: Any) -> Tensor:
    """The dense operand of a product as a pocaflow array: itself, or another array-like put
    on ``device``."""
    from .. import asarray

    if isinstance(x, Tensor):
        return x  # on another device, the product raises (never a hidden transfer)
    return asarray(x, device=device)


def issparse(x: Any) -> bool:
    """Whether ``x`` is a pocaflow sparse matrix."""
    return isinstance(x, _SparseArray)


def _is_scipy_sparse(x: Any) -> bool:
    return type(x).__module__.startswith("scipy.sparse") and hasattr(x, "tocsr")


class _SparseArray:
    """What the three formats share."""

    format: str
    ndim = 2
    #: NumPy defers ``ndarray @ sparse`` to ``__rmatmul__``.
    __array_ufunc__ = None

    @property
    def shape(self) -> tuple[int, int]:
        raise NotImplementedError

    def tocsr(self) -> csr_array:
        raise NotImplementedError

    def __matmul__(self, other: Any) -> Any:
        if issparse(other):
            return self.tocsr()._spgemm(other)
        return self.tocsr()._product(other)

    def __rmatmul__(self, other: Any) -> Any:
        return self.tocsr()._rproduct(other)

    def todense(self) -> Tensor:
        """The matrix as a dense (C-order) pocaflow array, duplicates summed."""
        return self.tocsr()._m.todense()

    def toarray(self) -> Tensor:
        """Same as :meth:`todense`."""
        return self.todense()

    def to(self, device: Any) -> Any:
        """The matrix on ``device``."""
        return self.to_device(device)

    def to_device(self, device: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        rows, cols = self.shape
        return (
            f"<{self.format}_array of shape ({rows}, {cols}) with {self.nnz} stored values of "
            f"{self.dtype} on {self.device}>"
        )


class csr_array(_SparseArray):
    """A sparse matrix in compressed sparse row form.

    ``csr_array((data, indices, indptr), shape=(m, n))`` (SciPy's arrays: row ``i`` holds
    ``data[indptr[i]:indptr[i + 1]]`` at columns ``indices[indptr[i]:indptr[i + 1]]``),
    ``csr_array((data, (row, col)), shape=...)`` (COO, duplicates summed), ``csr_array(m)``
    for a SciPy sparse matrix or another pocaflow sparse matrix, or ``csr_array(dense)`` for
    a 2-D dense array (its nonzeros). ``device`` and ``dtype`` convert.
    """

    format = "csr"

    def __init__(self, arg: Any, shape: Any = None, dtype: Any = None, device: Any = None) -> None:
        if isinstance(arg, _pocaflow.CsrMatrix):
            m = arg
        elif issparse(arg):
            m = arg.tocsr()._m
        elif _is_scipy_sparse(arg):
            m = from_scipy(arg, device=device).tocsr()._m
        elif isinstance(arg, tuple) and len(arg) == 3:
            data, indices, indptr = arg
            if shape is None:
                raise ValueError("csr_array((data, indices, indptr)) needs shape=")
            m = _pocaflow.csr_new(
                _shape(shape),
                _values(data, dtype, device),
                _indices(indices, device),
                _indices(indptr, device),
            )
        elif isinstance(arg, tuple) and len(arg) == 2:
            m = coo_array(arg, shape=shape, dtype=dtype, device=device).tocsr()._m
        else:
            m = coo_array(arg, shape=shape, dtype=dtype, device=device).tocsr()._m
        if device is not None:
            m = m.to_device(device)
        if dtype is not None and m.dtype != dtype:
            m = m.astype(dtype)
        self._m = m

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return self._m.shape

    @property
    def nnz(self) -> int:
        """The number of stored values (duplicates and explicit zeros included)."""
        return self._m.nnz

    @property
    def dtype(self) -> Any:
        """The dtype of the values."""
        return self._m.dtype

    @property
    def index_dtype(self) -> Any:
        """The dtype of ``indptr`` and ``indices``."""
        return self._m.index_dtype

    @property
    def device(self) -> Any:
        """The device of the arrays."""
        return self._m.device

    @property
    def data(self) -> Tensor:
        """The stored values."""
        return self._m.data

    @property
    def indices(self) -> Tensor:
        """The column index of each stored value."""
        return self._m.indices

    @property
    def indptr(self) -> Tensor:
        """Row pointers."""
        return self._m.indptr

    @property
    def has_canonical_format(self) -> bool:
        """Whether the column indices are sorted and unique within each row."""
        return self._m.has_canonical_format

    @property
    def T(self) -> csc_array:  # noqa: N802 (the standard's name)
        """The transpose: a CSC matrix over the same arrays (nothing is copied)."""
        return csc_array._of_transpose(self._m)

    def transpose(self) -> csc_array:
        """Same as :attr:`T`."""
        return self.T

    def tocsr(self) -> csr_array:
        """Itself."""
        return self

    def tocsc(self) -> csc_array:
        """The CSC form (a new matrix: the CSR form of the transpose)."""
        return csc_array._of_transpose(self._m.transpose())

    def tocoo(self) -> coo_array:
        """The COO form (the same values, rows expanded from ``indptr``)."""
        from .. import asarray

        counts = np.diff(self.indptr.numpy())
        row = np.repeat(np.arange(self.shape[0], dtype=np.int64), counts)
        return coo_array(
            (self.data, (asarray(row, device=self.device), self.indices)), shape=self.shape
        )

    def sum_duplicates(self) -> csr_array:
        """The canonical form: columns sorted within rows, duplicates summed."""
        return csr_array(self._m.canonicalize())

    def astype(self, dtype: Any) -> csr_array:
        """The matrix with values of ``dtype`` (float32 or float64)."""
        return csr_array(self._m.astype(dtype))

    def to_device(self, device: Any) -> csr_array:
        """The matrix on ``device``."""
        return csr_array(self._m.to_device(device))

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csr_array`` with copies of the arrays (on the host)."""
        import scipy.sparse as sps

        return sps.csr_array(
            (self.data.numpy(), self.indices.numpy(), self.indptr.numpy()), shape=self.shape
        )

    def _product(self, x: Any, transpose: bool = False) -> Tensor:
        return self._m.matmul_dense(_dense(x, self.device), transpose)

    def _rproduct(self, x: Any, transpose: bool = False) -> Tensor:
        return self._m.dense_matmul(_dense(x, self.device), transpose)

    def _spgemm(self, other: _SparseArray) -> csr_array:
        return csr_array(self._m.matmul(other.tocsr()._m))


class csc_array(_SparseArray):
    """A sparse matrix in compressed sparse column form: ``csc_array((data, indices,
    indptr), shape=(m, n))`` with column ``j`` holding ``data[indptr[j]:indptr[j + 1]]`` at
    rows ``indices[indptr[j]:indptr[j + 1]]`` (SciPy's arrays), or any form ``csr_array``
    takes. It is stored as the CSR matrix of its transpose: products read that matrix
    transposed, and ``.T`` is a CSR matrix over the same arrays.
    """

    format = "csc"

    def __init__(self, arg: Any, shape: Any = None, dtype: Any = None, device: Any = None) -> None:
        if isinstance(arg, tuple) and len(arg) == 3:
            if shape is None:
                raise ValueError("csc_array((data, indices, indptr)) needs shape=")
            rows, cols = _shape(shape)
            t = csr_array(arg, shape=(cols, rows), dtype=dtype, device=device)
            self._t = t._m
            return
        if isinstance(arg, csc_array):
            t = arg._t
        elif _is_scipy_sparse(arg) and arg.format == "csc":
            t = from_scipy(arg, device=device)._t
        else:
            t = csr_array(arg, shape=shape, dtype=dtype, device=device)._m.transpose()
        if device is not None:
            t = t.to_device(device)
        if dtype is not None and t.dtype != dtype:
            t = t.astype(dtype)
        self._t = t

    @classmethod
    def _of_transpose(cls, t: Any) -> csc_array:
        """The CSC matrix whose transpose is the native CSR matrix ``t``."""
        out = cls.__new__(cls)
        out._t = t
        return out

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        cols, rows = self._t.shape
        return rows, cols

    @property
    def nnz(self) -> int:
        """The number of stored values."""
        return self._t.nnz

    @property
    def dtype(self) -> Any:
        """The dtype of the values."""
        return self._t.dtype

    @property
    def index_dtype(self) -> Any:
        """The dtype of ``indptr`` and ``indices``."""
        return self._t.index_dtype

    @property
    def device(self) -> Any:
        """The device of the arrays."""
        return self._t.device

    @property
    def data(self) -> Tensor:
        """The stored values, column by column."""
        return self._t.data

    @property
    def indices(self) -> Tensor:
        """The row index of each stored value."""
        return self._t.indices

    @property
    def indptr(self) -> Tensor:
        """Column pointers."""
        return self._t.indptr

    @property
    def has_canonical_format(self) -> bool:
        """Whether the row indices are sorted and unique within each column."""
        return self._t.has_canonical_format

    @property
    def T(self) -> csr_array:  # noqa: N802 (the standard's name)
        """The transpose: a CSR matrix over the same arrays."""
        return csr_array(self._t)

    def transpose(self) -> csr_array:
        """Same as :attr:`T`."""
        return self.T

    def tocsr(self) -> csr_array:
        """The CSR form (a new matrix)."""
        return csr_array(self._t.transpose())

    def tocsc(self) -> csc_array:
        """Itself."""
        return self

    def tocoo(self) -> coo_array:
        """The COO form."""
        return self.T.tocoo().T

    def astype(self, dtype: Any) -> csc_array:
        """The matrix with values of ``dtype`` (float32 or float64)."""
        return csc_array._of_transpose(self._t.astype(dtype))

    def to_device(self, device: Any) -> csc_array:
        """The matrix on ``device``."""
        return csc_array._of_transpose(self._t.to_device(device))

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csc_array`` with copies of the arrays (on the host)."""
        import scipy.sparse as sps

        return sps.csc_array(
            (self.data.numpy(), self.indices.numpy(), self.indptr.numpy()), shape=self.shape
        )

    def __matmul__(self, other: Any) -> Any:
        if issparse(other):
            return self.tocsr()._spgemm(other)
        return self._t.matmul_dense(_dense(other, self.device), True)

    def __rmatmul__(self, other: Any) -> Any:
        return self._t.dense_matmul(_dense(other, self.device), True)


class coo_array(_SparseArray):
    """A sparse matrix in coordinate form: ``coo_array((data, (row, col)), shape=(m, n))``
    (duplicates allowed; ``.tocsr()`` sums them), a SciPy or pocaflow sparse matrix, or a 2-D
    dense array (its nonzeros)."""

    format = "coo"

    def __init__(self, arg: Any, shape: Any = None, dtype: Any = None, device: Any = None) -> None:
        from .. import asarray, max, min

        if issparse(arg) or _is_scipy_sparse(arg):
            c = (arg if issparse(arg) else from_scipy(arg, device=device)).tocoo()
            data, row, col, shape = c.data, c.row, c.col, c.shape
        elif isinstance(arg, tuple) and len(arg) == 2:
            data, (row, col) = arg
        else:
            dense = np.asarray(asarray(arg).numpy() if isinstance(arg, Tensor) else arg)
            if dense.ndim != 2:
                raise ValueError(f"a sparse matrix needs 2-D dense input, got {dense.ndim}-D")
            row, col = np.nonzero(dense)
            data, shape = dense[row, col], dense.shape
            if device is None and isinstance(arg, Tensor):
                device = arg.device
        self.data = _values(data, dtype, device)
        self.row = _indices(row, device)
        self.col = _indices(col, device)
        for name, a in (("data", self.data), ("row", self.row), ("col", self.col)):
            if a.ndim != 1:
                raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
        n = self.data.shape[0]
        if self.row.shape[0] != n or self.col.shape[0] != n:
            raise ValueError(
                f"row ({self.row.shape[0]}), col ({self.col.shape[0]}) and data ({n}) must "
                "have the same length"
            )
        if shape is None:
            shape = (
                (int(max(self.row)) + 1 if n else 0),
                (int(max(self.col)) + 1 if n else 0),
            )
        self._shape = _shape(shape)
        if n:
            for name, a, bound in (
                ("row", self.row, self._shape[0]),
                ("col", self.col, self._shape[1]),
            ):
                lo, hi = int(min(a)), int(max(a))
                if lo < 0 or hi >= bound:
                    bad = lo if lo < 0 else hi
                    raise ValueError(
                        f"{name} index {bad} is out of range for {bound} "
                        f"{'rows' if name == 'row' else 'columns'}"
                    )

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return self._shape

    @property
    def nnz(self) -> int:
        """The number of stored entries (duplicates included)."""
        return self.data.shape[0]

    @property
    def dtype(self) -> Any:
        """The dtype of the values."""
        return self.data.dtype

    @property
    def device(self) -> Any:
        """The device of the arrays."""
        return self.data.device

    @property
    def index_dtype(self) -> Any:
        """The dtype of ``row`` and ``col``."""
        return self.row.dtype

    @property
    def coords(self) -> tuple[Tensor, Tensor]:
        """``(row, col)``."""
        return self.row, self.col

    @property
    def T(self) -> coo_array:  # noqa: N802 (the standard's name)
        """The transpose (rows and columns swapped; the arrays shared)."""
        rows, cols = self._shape
        return coo_array((self.data, (self.col, self.row)), shape=(cols, rows))

    def transpose(self) -> coo_array:
        """Same as :attr:`T`."""
        return self.T

    def tocsr(self) -> csr_array:
        """The canonical CSR form: duplicates summed, columns sorted within rows."""
        return csr_array(_pocaflow.csr_from_coo(self._shape, self.row, self.col, self.data))

    def tocsc(self) -> csc_array:
        """The canonical CSC form."""
        return csc_array._of_transpose(self.T.tocsr()._m)

    def tocoo(self) -> coo_array:
        """Itself."""
        return self

    def astype(self, dtype: Any) -> coo_array:
        """The matrix with values of ``dtype`` (float32 or float64)."""
        from .. import float32, float64

        if dtype not in (float32, float64):
            raise TypeError(f"sparse matrices hold float32 or float64 values, got {dtype}")
        return coo_array((self.data.astype(dtype), (self.row, self.col)), shape=self._shape)

    def to_device(self, device: Any) -> coo_array:
        """The matrix on ``device``."""
        return coo_array((self.data, (self.row, self.col)), shape=self._shape, device=device)

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.coo_array`` with copies of the arrays (on the host)."""
        import scipy.sparse as sps

        return sps.coo_array(
            (self.data.numpy(), (self.row.numpy(), self.col.numpy())), shape=self._shape
        )


def from_scipy(m: Any, device: Any = None) -> _SparseArray:
    """A pocaflow sparse matrix from any SciPy sparse matrix or array: CSR gives a
    ``csr_array``, CSC a ``csc_array``, COO a ``coo_array``, other formats a ``csr_array``
    (through SciPy's ``tocsr``). The arrays are copied (onto ``device``)."""
    if not _is_scipy_sparse(m):
        raise TypeError(f"from_scipy needs a SciPy sparse matrix or array, got {type(m)}")
    fmt = m.format
    if fmt == "csr":
        return csr_array((m.data, m.indices, m.indptr), shape=m.shape, device=device)
    if fmt == "csc":
        return csc_array((m.data, m.indices, m.indptr), shape=m.shape, device=device)
    if fmt == "coo":
        return coo_array((m.data, (m.row, m.col)), shape=m.shape, device=device)
    return from_scipy(m.tocsr(), device=device)


def random(
    m: int,
    n: int,
    density: float = 0.01,
    dtype: Any = None,
    device: Any = None,
    seed: int | None = None,
) -> csr_array:
    """A random ``(m, n)`` CSR matrix with ``round(density * m * n)`` values uniform in
    ``[0, 1)`` at distinct positions chosen uniformly (as ``scipy.sparse.random``),
    canonical, reproducible for one ``seed`` (a fresh one when ``None``)."""
    from .. import float32, get_default_device

    if seed is None:
        seed = int(np.random.SeedSequence().entropy) % 2**64
    return csr_array(
        _pocaflow.csr_random(
            _shape((m, n)),
            float(density),
            float32 if dtype is None else dtype,
            get_default_device() if device is None else device,
            int(seed) % 2**64,
        )
    )

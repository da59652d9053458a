//! The native half of `pf.sparse`: `CsrMatrix`, a CSR matrix of the core crate, and its
//! constructors. `python/pocaflow/sparse/` builds SciPy's `csr_array`, `csc_array` and
//! `coo_array` on it.

use crate::errors::IntoPyResult;
use crate::math::run;
use crate::tensor::PyTensor;
use crate::types::{parse_device, parse_dtype, PyDType, PyDevice};
use pocaflow::sparse::CsrMatrix;
use pyo3::prelude::*;

/// A sparse matrix in compressed sparse row form (the native object behind
/// ``pocaflow.sparse.csr_array``).
#[pyclass(name = "CsrMatrix", module = "pocaflow._pocaflow", frozen)]
pub struct PyCsr {
    /// The matrix.
    pub inner: CsrMatrix,
}

fn wrap(inner: CsrMatrix) -> PyCsr {
    PyCsr { inner }
}

#[pymethods]
impl PyCsr {
    /// ``(rows, cols)``.
    #[getter]
    fn shape(&self) -> (usize, usize) {
        self.inner.shape()
    }

    /// Stored values (duplicates and explicit zeros included).
    #[getter]
    fn nnz(&self) -> usize {
        self.inner.nnz()
    }

    /// The dtype of the values.
    #[getter]
    fn dtype(&self) -> PyDType {
        PyDType(self.inner.dtype())
    }

    /// The dtype of ``indptr`` and ``indices``.
    #[getter]
    fn index_dtype(&self) -> PyDType {
        PyDType(self.inner.index_dtype())
    }

    /// The device of the arrays.
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice(self.inner.device())
    }

    /// Row pointers.
    #[getter]
    fn indptr(&self) -> PyTensor {
        PyTensor::wrap(self.inner.indptr().clone())
    }

    /// Column indices.
    #[getter]
    fn indices(&self) -> PyTensor {
        PyTensor::wrap(self.inner.indices().clone())
    }

    /// Values.
    #[getter]
    fn data(&self) -> PyTensor {
        PyTensor::wrap(self.inner.data().clone())
    }

    /// Whether the column indices are sorted and unique within each row.
    #[getter]
    fn has_canonical_format(&self) -> bool {
        self.inner.is_canonical()
    }

    /// The matrix on ``device``.
    fn to_device(&self, device: &Bound<'_, PyAny>) -> PyResult<PyCsr> {
        let device = parse_device(device)?;
        self.inner.to_device(&device).py().map(wrap)
    }

    /// The matrix with values of ``dtype`` (float32 or float64).
    fn astype(&self, dtype: &Bound<'_, PyAny>) -> PyResult<PyCsr> {
        self.inner.astype(parse_dtype(dtype)?).py().map(wrap)
    }

    /// Columns sorted within rows, duplicates summed.
    fn canonicalize(&self, py: Python<'_>) -> PyResult<PyCsr> {
        let a = &self.inner;
        run(py, a.device(), || a.canonicalize()).map(wrap)
    }

    /// The CSR form of the transpose (a new matrix).
    fn transpose(&self, py: Python<'_>) -> PyResult<PyCsr> {
        let a = &self.inner;
        run(py, a.device(), || a.transpose()).map(wrap)
    }

    /// The matrix as a dense array.
    fn todense(&self, py: Python<'_>) -> PyResult<PyTensor> {
        let a = &self.inner;
        run(py, a.device(), || a.to_dense()).map(PyTensor::wrap)
    }

    /// ``op(A) @ x`` (``op`` transposes when ``transpose``), ``x`` a dense 1-D or 2-D array.
    #[pyo3(signature = (x, transpose = false))]
    fn matmul_dense(
        &self,
        py: Python<'_>,
        x: PyRef<'_, PyTensor>,
        transpose: bool,
    ) -> PyResult<PyTensor> {
        let (a, x) = (&self.inner, x.inner.clone());
        run(py, a.device(), || a.matmul_dense(&x, transpose)).map(PyTensor::wrap)
    }

    /// ``x @ op(A)``.
    #[pyo3(signature = (x, transpose = false))]
    fn dense_matmul(
        &self,
        py: Python<'_>,
        x: PyRef<'_, PyTensor>,
        transpose: bool,
    ) -> PyResult<PyTensor> {
        let (a, x) = (&self.inner, x.inner.clone());
        run(py, a.device(), || CsrMatrix::dense_matmul(&x, a, transpose)).map(PyTensor::wrap)
    }

    /// ``A @ B`` with both sparse: a new CSR matrix.
    fn matmul(&self, py: Python<'_>, other: PyRef<'_, PyCsr>) -> PyResult<PyCsr> {
        let (a, b) = (&self.inner, &other.inner);
        run(py, a.device(), || a.matmul(b)).map(wrap)
    }
}

/// A CSR matrix of ``shape`` from its three arrays (checked).
#[pyfunction]
pub fn csr_new(
    py: Python<'_>,
    shape: (usize, usize),
    data: PyRef<'_, PyTensor>,
    indices: PyRef<'_, PyTensor>,
    indptr: PyRef<'_, PyTensor>,
) -> PyResult<PyCsr> {
    let (d, i, p) = (
        data.inner.clone(),
        indices.inner.clone(),
        indptr.inner.clone(),
    );
    run(py, d.device(), || CsrMatrix::new(shape, d, i, p)).map(wrap)
}

/// The canonical CSR matrix of COO arrays (duplicates summed).
#[pyfunction]
pub fn csr_from_coo(
    py: Python<'_>,
    shape: (usize, usize),
    row: PyRef<'_, PyTensor>,
    col: PyRef<'_, PyTensor>,
    data: PyRef<'_, PyTensor>,
) -> PyResult<PyCsr> {
    let (r, c, d) = (row.inner.clone(), col.inner.clone(), data.inner.clone());
    run(py, d.device(), || CsrMatrix::from_coo(shape, &r, &c, &d)).map(wrap)
}

/// A random CSR matrix (see ``pocaflow.sparse.random``).
#[pyfunction]
pub fn csr_random(
    py: Python<'_>,
    shape: (usize, usize),
    density: f64,
    dtype: &Bound<'_, PyAny>,
    device: &Bound<'_, PyAny>,
    seed: u64,
) -> PyResult<PyCsr> {
    let (dtype, device) = (parse_dtype(dtype)?, parse_device(device)?);
    py.detach(|| CsrMatrix::random(shape, density, dtype, &device, seed))
        .py()
        .map(wrap)
}

/// Adds the class and functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCsr>()?;
    m.add_function(wrap_pyfunction!(csr_new, m)?)?;
    m.add_function(wrap_pyfunction!(csr_from_coo, m)?)?;
    m.add_function(wrap_pyfunction!(csr_random, m)?)?;
    Ok(())
}

//! pocaflow errors as Python exceptions: shapes -> ValueError, dtypes -> TypeError, indices ->
//! IndexError, axes -> AxisError, devices and CUDA -> RuntimeError, out of memory -> MemoryError.

use pyo3::exceptions::{PyIndexError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3::PyErr;

static AXIS_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `pocaflow.AxisError`: an axis argument out of range for the array; like NumPy's, both a
/// `ValueError` and an `IndexError`.
pub fn axis_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    AXIS_ERROR
        .get_or_try_init(py, || {
            let builtins = py.import("builtins")?;
            let bases = (
                builtins.getattr("ValueError")?,
                builtins.getattr("IndexError")?,
            );
            let ns = pyo3::types::PyDict::new(py);
            ns.set_item("__module__", "pocaflow")?;
            ns.set_item(
                "__doc__",
                "An axis argument out of range for the array (a ValueError and an IndexError).",
            )?;
            let ty = builtins
                .getattr("type")?
                .call1(("AxisError", bases, ns))?
                .cast_into::<PyType>()?;
            Ok::<_, PyErr>(ty.unbind())
        })
        .map(|t| t.bind(py))
}

/// Converts a pocaflow error into the matching Python exception.
pub fn to_py(e: pocaflow::Error) -> PyErr {
    use pocaflow::Error::*;
    let msg = e.message().to_owned();
    match e {
        Shape(_) => PyValueError::new_err(msg),
        DType(_) => PyTypeError::new_err(msg),
        Index(_) => PyIndexError::new_err(msg),
        Axis(_) => Python::attach(|py| match axis_error_type(py) {
            Ok(ty) => PyErr::from_type(ty.clone(), msg),
            Err(e) => e,
        }),
        OutOfMemory(_) => PyMemoryError::new_err(msg),
        Device(_) | Cuda(_) => PyRuntimeError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// `.py()` on a pocaflow `Result` gives a `PyResult`.
pub trait IntoPyResult<T> {
    /// Maps the error with [`to_py`].
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPyResult<T> for pocaflow::Result<T> {
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}

//! pocaflow errors as Python exceptions: shapes -> ValueError, dtypes -> TypeError, devices and
//! CUDA -> RuntimeError, out of memory -> MemoryError.

use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::PyErr;

/// Converts a pocaflow error into the matching Python exception.
pub fn to_py(e: pocaflow::Error) -> PyErr {
    use pocaflow::Error::*;
    let msg = e.message().to_owned();
    match e {
        Shape(_) => PyValueError::new_err(msg),
        DType(_) => PyTypeError::new_err(msg),
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

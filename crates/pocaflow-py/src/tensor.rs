//! `pocaflow.Tensor` and the module-level functions that make and multiply tensors.

use crate::convert::{tensor_from_array, tensor_to_numpy, Order};
use crate::errors::IntoPyResult;
use crate::types::{parse_device, parse_dtype, PyDType, PyDevice};
use numpy::PyUntypedArray;
use pocaflow::{Device, Tensor};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// An n-dimensional array on the CPU or a CUDA device.
#[pyclass(name = "Tensor", module = "pocaflow", frozen)]
pub struct PyTensor {
    pub inner: Tensor,
}

impl PyTensor {
    fn wrap(inner: Tensor) -> PyTensor {
        PyTensor { inner }
    }
}

fn opt_dtype(dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Option<pocaflow::DType>> {
    dtype.filter(|d| !d.is_none()).map(parse_dtype).transpose()
}

/// The operand as a tensor: a Tensor as it is, anything else converted onto `device`.
fn operand(obj: &Bound<'_, PyAny>, device: Device) -> PyResult<Tensor> {
    match obj.cast::<PyTensor>() {
        Ok(t) => Ok(t.get().inner.clone()),
        Err(_) => tensor_from_array(obj, device, None),
    }
}

/// `a @ b`, converting a non-tensor operand onto the device of the tensor one.
fn matmul_any(
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    out: Option<&Tensor>,
) -> PyResult<Tensor> {
    let device = [a, b]
        .iter()
        .find_map(|x| x.cast::<PyTensor>().ok().map(|t| t.get().inner.device()))
        .unwrap_or(Device::Cpu);
    let (ta, tb) = (operand(a, device)?, operand(b, device)?);
    if device != Device::Cpu {
        // On a GPU the call only enqueues work: releasing the GIL would cost more than it frees.
        return pocaflow::ops::matmul(&ta, &tb, out).py();
    }
    a.py().detach(|| pocaflow::ops::matmul(&ta, &tb, out)).py()
}

/// Whether `obj` is something `@` should try to convert (not an arbitrary object).
fn matmul_operand_like(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyTensor>().is_ok()
        || obj.cast::<PyUntypedArray>().is_ok()
        || obj.cast::<PyList>().is_ok()
        || obj.cast::<PyTuple>().is_ok()
}

#[pymethods]
impl PyTensor {
    /// Copies a NumPy array (float16, float32 or float64; any order and strides) to `device`.
    /// C- and Fortran-order arrays keep their order; others arrive in C order. With `dtype`,
    /// the values are converted (e.g. ``dtype=pf.bfloat16`` from float32).
    #[staticmethod]
    #[pyo3(signature = (array, device = None, dtype = None))]
    fn from_array(
        array: &Bound<'_, PyAny>,
        device: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let device = device.map(parse_device).transpose()?.unwrap_or(Device::Cpu);
        tensor_from_array(array, device, opt_dtype(dtype)?).map(PyTensor::wrap)
    }

    /// The values as a new NumPy array, in the tensor's order unless `order` ("C" or "F") says
    /// otherwise. For a CUDA tensor this is where the host waits for the GPU.
    #[pyo3(signature = (order = None))]
    fn numpy<'py>(&self, py: Python<'py>, order: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.inner, Order::parse(order)?)
    }

    /// NumPy's conversion hook: ``np.asarray(t)`` (always a copy).
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        &self,
        py: Python<'py>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if copy == Some(false) {
            return Err(PyValueError::new_err(
                "a pocaflow Tensor cannot be viewed by NumPy without a copy",
            ));
        }
        let arr = tensor_to_numpy(py, &self.inner, Order::Keep)?;
        match dtype {
            Some(d) if !d.is_none() => arr.call_method1("astype", (d,)),
            _ => Ok(arr),
        }
    }

    /// Makes NumPy's binary operators defer to the Tensor's (``ndarray @ Tensor`` calls
    /// ``Tensor.__rmatmul__``).
    #[classattr]
    fn __array_ufunc__(py: Python<'_>) -> Py<PyAny> {
        py.None()
    }

    /// Extents of each dimension.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    /// Steps between neighbours along each dimension, in elements (as in PyTorch), not bytes.
    #[getter]
    fn strides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.strides())
    }

    /// Number of dimensions.
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.ndim()
    }

    /// The element type.
    #[getter]
    fn dtype(&self) -> PyDType {
        PyDType(self.inner.dtype())
    }

    /// Where the data lives.
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice(self.inner.device())
    }

    /// The view with the axes reversed; no copy.
    #[getter(T)]
    fn t(&self) -> PyTensor {
        PyTensor::wrap(self.inner.t())
    }

    /// The view with axes permuted (all reversed when none are given); no copy.
    #[pyo3(signature = (*axes))]
    fn transpose(&self, axes: Vec<usize>) -> PyResult<PyTensor> {
        if axes.is_empty() {
            return Ok(self.t());
        }
        self.inner.permute(&axes).py().map(PyTensor::wrap)
    }

    /// This tensor if it is C-contiguous, else a C-order copy.
    fn contiguous(&self, py: Python<'_>) -> PyResult<PyTensor> {
        py.detach(|| self.inner.contiguous())
            .py()
            .map(PyTensor::wrap)
    }

    /// Copies `src` (a Tensor or array, broadcast to this shape) into this tensor in place.
    fn copy_(slf: &Bound<'_, Self>, src: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        let this = &slf.get().inner;
        let src = operand(src, this.device())?;
        slf.py().detach(|| this.copy_(&src)).py()?;
        Ok(slf.clone().unbind())
    }

    /// The tensor on `device` and/or converted to `dtype` (itself when nothing changes).
    #[pyo3(signature = (device = None, dtype = None))]
    fn to(
        &self,
        py: Python<'_>,
        device: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let device = device.map(parse_device).transpose()?;
        let dtype = opt_dtype(dtype)?;
        py.detach(|| {
            let t = match dtype {
                Some(d) => self.inner.to_dtype(d)?,
                None => self.inner.clone(),
            };
            match device {
                Some(d) => t.to_device(&d),
                None => Ok(t),
            }
        })
        .py()
        .map(PyTensor::wrap)
    }

    /// The tensor in host memory.
    fn cpu(&self, py: Python<'_>) -> PyResult<PyTensor> {
        py.detach(|| self.inner.to_device(&Device::Cpu))
            .py()
            .map(PyTensor::wrap)
    }

    /// The tensor on CUDA device `index`.
    #[pyo3(signature = (index = 0))]
    fn cuda(&self, py: Python<'_>, index: usize) -> PyResult<PyTensor> {
        py.detach(|| self.inner.to_device(&Device::Cuda(index)))
            .py()
            .map(PyTensor::wrap)
    }

    fn __matmul__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if !matmul_operand_like(other) {
            return Ok(py.NotImplemented());
        }
        let t = matmul_any(slf.as_any(), other, None)?;
        Ok(Bound::new(py, PyTensor::wrap(t))?.into_any().unbind())
    }

    fn __rmatmul__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        if !matmul_operand_like(other) {
            return Ok(py.NotImplemented());
        }
        let t = matmul_any(other, slf.as_any(), None)?;
        Ok(Bound::new(py, PyTensor::wrap(t))?.into_any().unbind())
    }

    fn __len__(&self) -> PyResult<usize> {
        self.inner
            .shape()
            .first()
            .copied()
            .ok_or_else(|| PyTypeError::new_err("len() of a 0-d tensor"))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let arr = tensor_to_numpy(py, &self.inner, Order::Keep)?;
        let np = py.import("numpy")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("separator", ", ")?;
        kwargs.set_item("prefix", "tensor(")?;
        let body: String = np
            .getattr("array2string")?
            .call((arr,), Some(&kwargs))?
            .extract()?;
        Ok(format!(
            "tensor({body}, dtype={}, device='{}')",
            self.inner.dtype(),
            self.inner.device()
        ))
    }
}

/// A tensor from array-like `data` (nested lists, NumPy arrays; float data only).
#[pyfunction]
#[pyo3(signature = (data, dtype = None, device = None))]
pub fn tensor(
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    PyTensor::from_array(data, device, dtype)
}

/// A tensor of zeros of `shape` (float32 unless `dtype` says otherwise) on `device`.
#[pyfunction]
#[pyo3(signature = (shape, dtype = None, device = None))]
pub fn zeros(
    py: Python<'_>,
    shape: Vec<usize>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let device = device.map(parse_device).transpose()?.unwrap_or(Device::Cpu);
    let dtype = opt_dtype(dtype)?.unwrap_or(pocaflow::DType::F32);
    device.ensure_available().py()?;
    py.detach(|| Tensor::zeros(&shape, dtype, &device))
        .py()
        .map(PyTensor::wrap)
}

/// Matrix product with NumPy ``matmul`` semantics: 1-D operands are promoted and the added
/// axis removed; N-D operands are stacks of matrices whose batch dimensions broadcast. Arrays
/// are accepted and moved to the device of the Tensor operand. With ``out`` (a Tensor of the
/// result's shape and dtype), the product is written there and ``out`` is returned.
#[pyfunction]
#[pyo3(signature = (a, b, out = None))]
pub fn matmul(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    out: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    match out.filter(|o| !o.is_none()) {
        None => {
            let t = matmul_any(a, b, None)?;
            Ok(Bound::new(py, PyTensor::wrap(t))?.into_any().unbind())
        }
        Some(o) => {
            let target = o.cast::<PyTensor>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "out must be a pocaflow.Tensor, got {}",
                    o.get_type()
                        .name()
                        .map_or_else(|_| "?".into(), |n| n.to_string())
                ))
            })?;
            matmul_any(a, b, Some(&target.get().inner))?;
            Ok(o.clone().unbind())
        }
    }
}

//! `pocaflow.Tensor`, the array object, and the module-level functions that make tensors.

use crate::convert::{asarray, check_fits, python_scalar, tensor_to_numpy, Order};
use crate::errors::IntoPyResult;
use crate::math;
use crate::types::{device_or_default, parse_device, parse_dtype, PyDType, PyDevice};
use numpy::PyUntypedArray;
use pocaflow::ops::IndexItem;
use pocaflow::{BinaryOp, DType, Device, Kind, Scalar, Tensor, UnaryOp};
use pyo3::exceptions::{PyIndexError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyEllipsis, PyList, PySlice, PyTuple};

/// An n-dimensional array on the CPU or a CUDA device (the Array API standard's array object).
#[pyclass(name = "Tensor", module = "pocaflow", frozen)]
pub struct PyTensor {
    pub inner: Tensor,
}

impl PyTensor {
    pub fn wrap(inner: Tensor) -> PyTensor {
        PyTensor { inner }
    }
}

pub fn opt_dtype(dtype: Option<&Bound<'_, PyAny>>) -> PyResult<Option<DType>> {
    dtype.filter(|d| !d.is_none()).map(parse_dtype).transpose()
}

/// The operand as a tensor: a Tensor as it is, anything else converted onto `device`.
fn operand(obj: &Bound<'_, PyAny>, device: Device) -> PyResult<Tensor> {
    match obj.cast::<PyTensor>() {
        Ok(t) => Ok(t.get().inner.clone()),
        Err(_) => asarray(obj, None, device, None),
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

/// An optional slice bound.
fn slice_bound(v: Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if v.is_none() {
        return Ok(None);
    }
    v.extract::<i64>().map(Some).map_err(|_| {
        PyTypeError::new_err("slice indices must be integers or None (or have an __index__ method)")
    })
}

/// One entry of an index key.
fn parse_item(obj: &Bound<'_, PyAny>, device: Device) -> PyResult<IndexItem> {
    if obj.is_none() {
        return Ok(IndexItem::NewAxis);
    }
    if obj.cast::<PyEllipsis>().is_ok() {
        return Ok(IndexItem::Ellipsis);
    }
    if let Ok(s) = obj.cast::<PySlice>() {
        return Ok(IndexItem::Slice(
            slice_bound(s.getattr("start")?)?,
            slice_bound(s.getattr("stop")?)?,
            slice_bound(s.getattr("step")?)?,
        ));
    }
    if let Ok(t) = obj.cast::<PyTensor>() {
        return Ok(IndexItem::Array(t.get().inner.clone()));
    }
    if let Some(s) = python_scalar(obj)? {
        return match s {
            Scalar::Int(i) => Ok(IndexItem::Int(i)),
            Scalar::Bool(b) => Ok(IndexItem::Array(
                pocaflow::ops::full(&[], Scalar::Bool(b), DType::Bool, &Device::Cpu).py()?,
            )),
            _ => Err(PyIndexError::new_err(format!(
                "only integers, slices (`:`), ellipsis (`...`), None and integer or boolean \
                 arrays are valid indices, got {obj}"
            ))),
        };
    }
    // NumPy integer scalars and other objects with __index__.
    if obj.hasattr("__index__")? && obj.cast::<PyUntypedArray>().is_err() {
        return Ok(IndexItem::Int(obj.extract::<i64>()?));
    }
    let t =
        asarray(obj, None, device, None).map_err(|_| {
            PyIndexError::new_err(format!(
            "only integers, slices (`:`), ellipsis (`...`), None and integer or boolean arrays \
             are valid indices, got {}",
            obj.get_type().name().map_or_else(|_| "?".into(), |n| n.to_string())
        ))
        })?;
    // An empty sequence (`x[[]]`) comes back from NumPy as float64: NumPy indexes with it as
    // with an empty integer array.
    let t = if t.numel() == 0 && t.dtype().is_float() && obj.cast::<PyUntypedArray>().is_err() {
        t.to_dtype(DType::I64).py()?
    } else {
        t
    };
    if !(t.dtype().is_integer() || t.dtype() == DType::Bool) {
        return Err(PyIndexError::new_err(format!(
            "arrays used as indices must be of integer or boolean type, got {}",
            t.dtype()
        )));
    }
    Ok(IndexItem::Array(t))
}

/// An index key as entries.
fn parse_key(key: &Bound<'_, PyAny>, device: Device) -> PyResult<Vec<IndexItem>> {
    match key.cast::<PyTuple>() {
        Ok(t) => t.iter().map(|k| parse_item(&k, device)).collect(),
        Err(_) => Ok(vec![parse_item(key, device)?]),
    }
}

/// The Python value of a one-element tensor.
fn scalar_to_py(py: Python<'_>, s: Scalar) -> PyResult<Py<PyAny>> {
    Ok(match s {
        Scalar::Bool(b) => pyo3::types::PyBool::new(py, b)
            .to_owned()
            .into_any()
            .unbind(),
        Scalar::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Scalar::UInt(u) => u.into_pyobject(py)?.into_any().unbind(),
        Scalar::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
    })
}

fn to_axes(axis: &Bound<'_, PyAny>) -> PyResult<Vec<isize>> {
    match axis.extract::<isize>() {
        Ok(a) => Ok(vec![a]),
        Err(_) => axis.extract::<Vec<isize>>(),
    }
}

#[pymethods]
impl PyTensor {
    /// Copies a NumPy array (or anything ``numpy.asarray`` accepts) to `device`. C- and
    /// Fortran-order arrays keep their order; others arrive in C order. With `dtype`, the
    /// values are converted (e.g. ``dtype=pf.bfloat16`` from float32).
    #[staticmethod]
    #[pyo3(signature = (array, device = None, dtype = None))]
    fn from_array(
        array: &Bound<'_, PyAny>,
        device: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let device = device.map(parse_device).transpose()?.unwrap_or(Device::Cpu);
        asarray(array, opt_dtype(dtype)?, device, Some(true)).map(PyTensor::wrap)
    }

    /// The values as a new NumPy array, in the tensor's order unless `order` ("C" or "F") says
    /// otherwise. For a CUDA tensor this is where the host waits for the GPU.
    #[pyo3(signature = (order = None))]
    fn numpy<'py>(&self, py: Python<'py>, order: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
        tensor_to_numpy(py, &self.inner, Order::parse(order)?)
    }

    /// NumPy's conversion hook: ``np.asarray(t)``. A CPU array is viewed in place (through the
    /// buffer protocol) unless `copy` is true; CUDA and bfloat16 arrays are copied (bfloat16
    /// to float32), so `copy=False` fails for them.
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        slf: &Bound<'py, Self>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let t = &slf.get().inner;
        let viewable = t.device() == Device::Cpu && t.dtype() != DType::BF16;
        let arr = if viewable && copy != Some(true) {
            let view = py
                .import("builtins")?
                .getattr("memoryview")?
                .call1((slf,))?;
            py.import("numpy")?.getattr("asarray")?.call1((view,))?
        } else if copy == Some(false) {
            return Err(PyValueError::new_err(format!(
                "a pocaflow array of {} on {} cannot be viewed by NumPy without a copy",
                t.dtype(),
                t.device()
            )));
        } else {
            tensor_to_numpy(py, t, Order::Keep)?
        };
        match dtype {
            Some(d) if !d.is_none() => arr.call_method1("astype", (d,)),
            _ => Ok(arr),
        }
    }

    /// Exports the array as a DLPack capsule (the Array API standard's ``__dlpack__``): its
    /// memory in place unless `copy` is true or `dl_device` is another device. `stream` is
    /// the consumer's CUDA stream (None: the legacy default stream; -1: no ordering), made to
    /// wait on the GPU for the work queued on the memory. `max_version` of (1, x) or more gives
    /// a versioned capsule, None a legacy one.
    #[pyo3(signature = (*, stream = None, max_version = None, dl_device = None, copy = None))]
    fn __dlpack__(
        &self,
        py: Python<'_>,
        stream: Option<i64>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Py<PyAny>> {
        let req = crate::dlpack::ExportRequest {
            stream,
            max_version,
            dl_device,
            copy,
        };
        crate::dlpack::export(py, &self.inner, &req)
    }

    /// The DLPack device of the array: ``(1, 0)`` for the CPU, ``(2, i)`` for ``cuda:i``.
    fn __dlpack_device__(&self) -> (i32, i32) {
        crate::dlpack::dl_device(self.inner.device())
    }

    /// The CUDA array interface (version 3) of a CUDA array; AttributeError for others.
    #[getter]
    fn __cuda_array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::buffer::cuda_array_interface(py, &self.inner)
    }

    /// The buffer protocol: a CPU array's memory in place (writable).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::ffi::c_int,
    ) -> PyResult<()> {
        // SAFETY: the interpreter passes a `Py_buffer` for `bf_getbuffer`.
        unsafe { crate::buffer::get_buffer(&slf, view, flags) }
    }

    /// Releases what ``__getbuffer__`` stored.
    unsafe fn __releasebuffer__(&self, view: *mut pyo3::ffi::Py_buffer) {
        // SAFETY: `view` was filled by `__getbuffer__`.
        unsafe { crate::buffer::release_buffer(view) }
    }

    /// Makes NumPy's binary operators defer to the Tensor's (``ndarray @ Tensor`` calls
    /// ``Tensor.__rmatmul__``).
    #[classattr]
    fn __array_ufunc__(py: Python<'_>) -> Py<PyAny> {
        py.None()
    }

    /// The array namespace of the Array API standard: the ``pocaflow`` module.
    #[pyo3(signature = (api_version = None))]
    fn __array_namespace__<'py>(
        &self,
        py: Python<'py>,
        api_version: Option<&str>,
    ) -> PyResult<Bound<'py, PyModule>> {
        if let Some(v) = api_version {
            if !["2024.12", "2023.12", "2022.12", "2021.12"].contains(&v) {
                return Err(PyValueError::new_err(format!(
                    "unsupported Array API version {v:?}: pocaflow implements 2024.12"
                )));
            }
        }
        py.import("pocaflow")
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

    /// Number of elements.
    #[getter]
    fn size(&self) -> usize {
        self.inner.numel()
    }

    /// Bytes per element.
    #[getter]
    fn itemsize(&self) -> usize {
        self.inner.dtype().size_in_bytes()
    }

    /// Bytes of all elements.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.numel() * self.inner.dtype().size_in_bytes()
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

    /// The view with the last two axes swapped; no copy.
    #[getter(mT)]
    fn m_t(&self) -> PyResult<PyTensor> {
        self.inner.matrix_transpose().py().map(PyTensor::wrap)
    }

    /// The view with the last two axes swapped; no copy.
    fn matrix_transpose(&self) -> PyResult<PyTensor> {
        self.m_t()
    }

    /// The view with axes permuted (all reversed when none are given); no copy.
    #[pyo3(signature = (*axes))]
    fn transpose(&self, axes: Vec<isize>) -> PyResult<PyTensor> {
        if axes.is_empty() {
            return Ok(self.t());
        }
        self.inner.permute_dims(&axes).py().map(PyTensor::wrap)
    }

    /// The view with axes permuted; no copy.
    fn permute_dims(&self, axes: Vec<isize>) -> PyResult<PyTensor> {
        self.inner.permute_dims(&axes).py().map(PyTensor::wrap)
    }

    /// The elements in C order with a new shape (one entry may be -1): a view when strides
    /// allow, else a copy; ``copy=True`` always copies, ``copy=False`` raises instead of
    /// copying.
    #[pyo3(signature = (*shape, copy = None))]
    fn reshape(&self, shape: &Bound<'_, PyTuple>, copy: Option<bool>) -> PyResult<PyTensor> {
        let dims: Vec<isize> = if shape.len() == 1 {
            let first = shape.get_item(0)?;
            match first.extract::<isize>() {
                Ok(n) => vec![n],
                Err(_) => first.extract()?,
            }
        } else {
            shape.extract()?
        };
        self.inner.reshape(&dims, copy).py().map(PyTensor::wrap)
    }

    /// The view with a new axis of extent 1 at `axis`.
    #[pyo3(signature = (axis = 0))]
    fn expand_dims(&self, axis: isize) -> PyResult<PyTensor> {
        self.inner.expand_dims(axis).py().map(PyTensor::wrap)
    }

    /// The view without the extent-1 axes `axis` (an int or a tuple; all extent-1 axes when
    /// None).
    #[pyo3(signature = (axis = None))]
    fn squeeze(&self, axis: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        let axes = match axis.filter(|a| !a.is_none()) {
            Some(a) => to_axes(a)?,
            None => (0..self.inner.ndim() as isize)
                .filter(|&a| self.inner.shape()[a as usize] == 1)
                .collect(),
        };
        self.inner.squeeze(&axes).py().map(PyTensor::wrap)
    }

    /// The view with `axis` (an int, a tuple, or all when None) reversed; no copy.
    #[pyo3(signature = (axis = None))]
    fn flip(&self, axis: Option<&Bound<'_, PyAny>>) -> PyResult<PyTensor> {
        let axes = axis.filter(|a| !a.is_none()).map(to_axes).transpose()?;
        self.inner.flip(axes.as_deref()).py().map(PyTensor::wrap)
    }

    /// The view broadcast to `shape`; no copy.
    fn broadcast_to(&self, shape: Vec<usize>) -> PyResult<PyTensor> {
        self.inner.broadcast_to(&shape).py().map(PyTensor::wrap)
    }

    /// The view with axes `source` moved to `destination`; no copy.
    fn moveaxis(
        &self,
        source: &Bound<'_, PyAny>,
        destination: &Bound<'_, PyAny>,
    ) -> PyResult<PyTensor> {
        self.inner
            .moveaxis(&to_axes(source)?, &to_axes(destination)?)
            .py()
            .map(PyTensor::wrap)
    }

    /// The elements at `indices` along `axis` (default 0).
    #[pyo3(signature = (indices, axis = None))]
    fn take(&self, indices: &Bound<'_, PyAny>, axis: Option<isize>) -> PyResult<PyTensor> {
        let idx = operand(indices, self.inner.device())?;
        let axis = match axis {
            Some(a) => a,
            None if self.inner.ndim() == 1 => 0,
            None => {
                return Err(PyValueError::new_err(
                    "take: axis is required for arrays of more than one dimension",
                ))
            }
        };
        self.inner.take(&idx, axis).py().map(PyTensor::wrap)
    }

    /// The elements at `indices` along `axis`, with the other axes broadcast.
    #[pyo3(signature = (indices, axis = -1))]
    fn take_along_axis(&self, indices: &Bound<'_, PyAny>, axis: isize) -> PyResult<PyTensor> {
        let idx = operand(indices, self.inner.device())?;
        self.inner
            .take_along_axis(&idx, axis)
            .py()
            .map(PyTensor::wrap)
    }

    /// The coordinates of the nonzero elements: a tuple of int64 arrays, one per axis. On CUDA
    /// this waits for the device (the count decides the size).
    fn nonzero<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let cols = self.inner.nonzero().py()?;
        PyTuple::new(py, cols.into_iter().map(PyTensor::wrap))
    }

    /// A copy with the elements above diagonal `k` zeroed.
    #[pyo3(signature = (k = 0))]
    fn tril(&self, k: i64) -> PyResult<PyTensor> {
        self.inner.triangle(k, false).py().map(PyTensor::wrap)
    }

    /// A copy with the elements below diagonal `k` zeroed.
    #[pyo3(signature = (k = 0))]
    fn triu(&self, k: i64) -> PyResult<PyTensor> {
        self.inner.triangle(k, true).py().map(PyTensor::wrap)
    }

    /// Sets every element to `value` in place and returns the tensor.
    fn fill_(slf: &Bound<'_, Self>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyTensor>> {
        let s = python_scalar(value)?
            .ok_or_else(|| PyTypeError::new_err("fill_ takes a Python bool, int or float"))?;
        slf.get().inner.fill_(s).py()?;
        Ok(slf.clone().unbind())
    }

    /// Whether the two tensors view the same memory.
    fn _shares_memory(&self, other: &PyTensor) -> bool {
        self.inner.shares_storage_with(&other.inner)
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

    /// The tensor converted to `dtype`: a copy, unless ``copy=False`` and the dtype is already
    /// right.
    #[pyo3(signature = (dtype, copy = true))]
    fn astype(&self, py: Python<'_>, dtype: &Bound<'_, PyAny>, copy: bool) -> PyResult<PyTensor> {
        let d = parse_dtype(dtype)?;
        if d == self.inner.dtype() {
            if !copy {
                return Ok(PyTensor::wrap(self.inner.clone()));
            }
            return py
                .detach(|| self.inner.copy_data())
                .py()
                .map(PyTensor::wrap);
        }
        py.detach(|| self.inner.to_dtype(d))
            .py()
            .map(PyTensor::wrap)
    }

    /// The tensor on `device` (itself when it is already there).
    #[pyo3(signature = (device, /, *, stream = None))]
    fn to_device(
        &self,
        py: Python<'_>,
        device: &Bound<'_, PyAny>,
        stream: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        if stream.is_some_and(|s| !s.is_none()) {
            return Err(PyValueError::new_err(
                "to_device(stream=...) is not supported: use `with pocaflow.cuda.stream(s):`",
            ));
        }
        let d = parse_device(device)?;
        py.detach(|| self.inner.to_device(&d))
            .py()
            .map(PyTensor::wrap)
    }

    /// The tensor on `device` and/or converted to `dtype` (itself when nothing changes).
    #[pyo3(signature = (device = None, dtype = None))]
    fn to(
        &self,
        py: Python<'_>,
        device: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyTensor> {
        let device = device
            .filter(|d| !d.is_none())
            .map(parse_device)
            .transpose()?;
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

    fn __getitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<PyTensor> {
        let items = parse_key(key, self.inner.device())?;
        self.inner.index(&items).py().map(PyTensor::wrap)
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = &self.inner;
        let items = parse_key(key, t.device())?;
        let basic = !items.iter().any(|i| matches!(i, IndexItem::Array(_)));
        if let Some(s) = python_scalar(value)? {
            check_fits(s, t.dtype())?;
            if basic {
                return t.index(&items).py()?.fill_(s).py();
            }
            let v = pocaflow::ops::full(&[], s, t.dtype(), &t.device()).py()?;
            return t.index_put(&items, &v).py();
        }
        let v = operand(value, t.device())?;
        t.index_put(&items, &v).py()
    }

    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let t = &slf.get().inner;
        if t.ndim() == 0 {
            return Err(PyTypeError::new_err("iteration over a 0-d array"));
        }
        let py = slf.py();
        let rows = (0..t.shape()[0] as i64)
            .map(|i| t.index(&[IndexItem::Int(i)]).py().map(PyTensor::wrap))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, rows)?.call_method0("__iter__")?.unbind())
    }

    fn __bool__(&self, py: Python<'_>) -> PyResult<bool> {
        let s = py.detach(|| self.inner.scalar_value()).py()?;
        Ok(match s {
            Scalar::Bool(b) => b,
            Scalar::Int(i) => i != 0,
            Scalar::UInt(u) => u != 0,
            Scalar::Float(f) => f != 0.0,
        })
    }

    fn __int__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = py.detach(|| self.inner.scalar_value()).py()?;
        match s {
            Scalar::Float(f) if f.is_nan() => {
                Err(PyValueError::new_err("cannot convert float NaN to integer"))
            }
            Scalar::Float(f) if f.is_infinite() => Err(PyOverflowError::new_err(
                "cannot convert float infinity to integer",
            )),
            Scalar::Float(f) => {
                let builtins = py.import("builtins")?;
                Ok(builtins.getattr("int")?.call1((f,))?.unbind())
            }
            Scalar::Bool(b) => Ok(i64::from(b).into_pyobject(py)?.into_any().unbind()),
            other => scalar_to_py(py, other),
        }
    }

    fn __float__(&self, py: Python<'_>) -> PyResult<f64> {
        Ok(py.detach(|| self.inner.scalar_value()).py()?.as_f64())
    }

    fn __index__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if !self.inner.dtype().is_integer() {
            return Err(PyTypeError::new_err(format!(
                "only integer arrays can be used as an index, not {}",
                self.inner.dtype()
            )));
        }
        let s = py.detach(|| self.inner.scalar_value()).py()?;
        scalar_to_py(py, s)
    }

    /// The value of a one-element array as a Python scalar.
    fn item(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = py.detach(|| self.inner.scalar_value()).py()?;
        scalar_to_py(py, s)
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

    fn __add__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Add, false)
    }

    fn __radd__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Add, true)
    }

    fn __iadd__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::Add)
    }

    fn __sub__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Subtract, false)
    }

    fn __rsub__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Subtract, true)
    }

    fn __isub__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::Subtract)
    }

    fn __mul__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Multiply, false)
    }

    fn __rmul__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Multiply, true)
    }

    fn __imul__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::Multiply)
    }

    fn __truediv__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Divide, false)
    }

    fn __rtruediv__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Divide, true)
    }

    fn __itruediv__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::Divide)
    }

    fn __floordiv__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::FloorDivide, false)
    }

    fn __rfloordiv__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::FloorDivide, true)
    }

    fn __ifloordiv__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::FloorDivide)
    }

    fn __mod__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Remainder, false)
    }

    fn __rmod__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Remainder, true)
    }

    fn __imod__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::Remainder)
    }

    fn __and__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseAnd, false)
    }

    fn __rand__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseAnd, true)
    }

    fn __iand__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::BitwiseAnd)
    }

    fn __or__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseOr, false)
    }

    fn __ror__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseOr, true)
    }

    fn __ior__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::BitwiseOr)
    }

    fn __xor__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseXor, false)
    }

    fn __rxor__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseXor, true)
    }

    fn __ixor__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::BitwiseXor)
    }

    fn __lshift__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseLeftShift, false)
    }

    fn __rlshift__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseLeftShift, true)
    }

    fn __ilshift__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::BitwiseLeftShift)
    }

    fn __rshift__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseRightShift, false)
    }

    fn __rrshift__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::BitwiseRightShift, true)
    }

    fn __irshift__(&self, other: &Bound<'_, PyAny>) -> PyResult<()> {
        math::in_place(self, other, BinaryOp::BitwiseRightShift)
    }

    fn __pow__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        no_modulo(modulo)?;
        math::operator(slf, other, BinaryOp::Pow, false)
    }

    fn __rpow__(
        slf: &Bound<'_, Self>,
        other: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        no_modulo(modulo)?;
        math::operator(slf, other, BinaryOp::Pow, true)
    }

    fn __ipow__(
        &self,
        other: &Bound<'_, PyAny>,
        modulo: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        no_modulo(modulo)?;
        math::in_place(self, other, BinaryOp::Pow)
    }

    fn __eq__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Equal, false)
    }

    fn __ne__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::NotEqual, false)
    }

    fn __lt__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Less, false)
    }

    fn __le__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::LessEqual, false)
    }

    fn __gt__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::Greater, false)
    }

    fn __ge__(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        math::operator(slf, other, BinaryOp::GreaterEqual, false)
    }

    fn __neg__(&self) -> PyResult<PyTensor> {
        math::unary_op(&self.inner, UnaryOp::Negative)
    }

    fn __abs__(&self) -> PyResult<PyTensor> {
        math::unary_op(&self.inner, UnaryOp::Abs)
    }

    fn __invert__(&self) -> PyResult<PyTensor> {
        math::unary_op(&self.inner, UnaryOp::BitwiseInvert)
    }

    fn __pos__(&self) -> PyResult<PyTensor> {
        self.inner.copy_data().py().map(PyTensor::wrap)
    }

    /// `pocaflow.sum(self, ...)`.
    #[pyo3(signature = (axis = None, dtype = None, keepdims = false))]
    fn sum(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::sum(slf.py(), slf.as_any(), axis, dtype, keepdims)
    }

    /// `pocaflow.prod(self, ...)`.
    #[pyo3(signature = (axis = None, dtype = None, keepdims = false))]
    fn prod(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::prod(slf.py(), slf.as_any(), axis, dtype, keepdims)
    }

    /// `pocaflow.max(self, ...)`.
    #[pyo3(signature = (axis = None, keepdims = false))]
    fn max(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::max(slf.py(), slf.as_any(), axis, keepdims)
    }

    /// `pocaflow.min(self, ...)`.
    #[pyo3(signature = (axis = None, keepdims = false))]
    fn min(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::min(slf.py(), slf.as_any(), axis, keepdims)
    }

    /// `pocaflow.mean(self, ...)`.
    #[pyo3(signature = (axis = None, keepdims = false))]
    fn mean(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::mean(slf.py(), slf.as_any(), axis, keepdims)
    }

    /// `pocaflow.all(self, ...)`.
    #[pyo3(signature = (axis = None, keepdims = false))]
    fn all(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::all(slf.py(), slf.as_any(), axis, keepdims)
    }

    /// `pocaflow.any(self, ...)`.
    #[pyo3(signature = (axis = None, keepdims = false))]
    fn any(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::any(slf.py(), slf.as_any(), axis, keepdims)
    }

    /// `pocaflow.var(self, ...)`.
    #[pyo3(signature = (axis = None, correction = 0.0, keepdims = false))]
    fn var(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        correction: f64,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::var(slf.py(), slf.as_any(), axis, correction, keepdims)
    }

    /// `pocaflow.std(self, ...)`.
    #[pyo3(signature = (axis = None, correction = 0.0, keepdims = false))]
    fn std(
        slf: &Bound<'_, Self>,
        axis: Option<&Bound<'_, PyAny>>,
        correction: f64,
        keepdims: bool,
    ) -> PyResult<PyTensor> {
        math::std_(slf.py(), slf.as_any(), axis, correction, keepdims)
    }

    /// `pocaflow.argmax(self, ...)`.
    #[pyo3(signature = (axis = None, keepdims = false))]
    fn argmax(slf: &Bound<'_, Self>, axis: Option<isize>, keepdims: bool) -> PyResult<PyTensor> {
        math::argmax(slf.py(), slf.as_any(), axis, keepdims)
    }

    /// `pocaflow.argmin(self, ...)`.
    #[pyo3(signature = (axis = None, keepdims = false))]
    fn argmin(slf: &Bound<'_, Self>, axis: Option<isize>, keepdims: bool) -> PyResult<PyTensor> {
        math::argmin(slf.py(), slf.as_any(), axis, keepdims)
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

/// `pow(x, y, modulo)` has no array form: a modulo is a TypeError.
fn no_modulo(modulo: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    match modulo {
        Some(m) if !m.is_none() => Err(PyTypeError::new_err(
            "pow() with a modulo is not supported for arrays",
        )),
        _ => Ok(()),
    }
}

/// A tensor from array-like `data` (nested lists, NumPy arrays, scalars): always a copy.
#[pyfunction]
#[pyo3(signature = (data, dtype = None, device = None))]
pub fn tensor(
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let device = device_or_default(device)?;
    asarray(data, opt_dtype(dtype)?, device, Some(true)).map(PyTensor::wrap)
}

/// The Array API standard's ``asarray``: an array from a Tensor, NumPy array, buffer, nested
/// sequence or Python scalar. ``copy=None`` shares memory when it can (a NumPy array on the
/// CPU of a dtype pocaflow holds, other than bool), ``copy=True`` always copies,
/// ``copy=False`` raises ``ValueError`` when sharing is impossible.
#[pyfunction(name = "asarray")]
#[pyo3(signature = (obj, /, *, dtype = None, device = None, copy = None))]
pub fn py_asarray(
    obj: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    copy: Option<bool>,
) -> PyResult<PyTensor> {
    let device = match device.filter(|d| !d.is_none()) {
        Some(d) => parse_device(d)?,
        None => match obj.cast::<PyTensor>() {
            Ok(t) => t.get().inner.device(),
            // Another library's array stays on its device (through DLPack).
            Err(_) if crate::convert::dlpack_producer(obj)? => {
                let shared = crate::convert::from_dlpack(obj, copy)?;
                let d = shared.get().inner.device();
                return asarray(shared.as_any(), opt_dtype(dtype)?, d, copy).map(PyTensor::wrap);
            }
            Err(_) => crate::types::default_device(),
        },
    };
    asarray(obj, opt_dtype(dtype)?, device, copy).map(PyTensor::wrap)
}

fn shape_arg(shape: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
    let dims: Vec<i64> = match shape.extract::<i64>() {
        Ok(n) => vec![n],
        Err(_) => shape.extract::<Vec<i64>>().map_err(|_| {
            PyTypeError::new_err(format!(
                "shape must be an int or a sequence of ints, got {shape}"
            ))
        })?,
    };
    dims.iter()
        .map(|&n| {
            usize::try_from(n).map_err(|_| {
                PyValueError::new_err(format!("negative dimensions are not allowed: {shape}"))
            })
        })
        .collect()
}

/// An array of `shape` with undefined contents (zeros on the CPU).
#[pyfunction]
#[pyo3(signature = (shape, *, dtype = None, device = None))]
pub fn empty(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let shape = shape_arg(shape)?;
    let device = device_or_default(device)?;
    let dtype = opt_dtype(dtype)?.unwrap_or(DType::F64);
    py.detach(|| Tensor::empty(&shape, dtype, &device))
        .py()
        .map(PyTensor::wrap)
}

/// An array of `shape` filled with `fill_value` (dtype inferred from it when None: bool,
/// int64 or float64).
#[pyfunction]
#[pyo3(signature = (shape, fill_value, *, dtype = None, device = None))]
pub fn full(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    fill_value: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let shape = shape_arg(shape)?;
    let device = device_or_default(device)?;
    let value = match python_scalar(fill_value)? {
        Some(v) => v,
        None => match fill_value.cast::<PyTensor>() {
            Ok(t) if t.get().inner.numel() == 1 => t.get().inner.scalar_value().py()?,
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "fill_value must be a bool, int or float, got {fill_value}"
                )))
            }
        },
    };
    let dtype = opt_dtype(dtype)?.unwrap_or(value.default_dtype());
    check_fits(value, dtype)?;
    py.detach(|| pocaflow::ops::full(&shape, value, dtype, &device))
        .py()
        .map(PyTensor::wrap)
}

/// An array of zeros of `shape` (float64 unless `dtype` says otherwise).
#[pyfunction]
#[pyo3(signature = (shape, *, dtype = None, device = None))]
pub fn zeros(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let shape = shape_arg(shape)?;
    let device = device_or_default(device)?;
    let dtype = opt_dtype(dtype)?.unwrap_or(DType::F64);
    py.detach(|| pocaflow::ops::full(&shape, Scalar::Int(0), dtype, &device))
        .py()
        .map(PyTensor::wrap)
}

/// ``arange(stop)`` or ``arange(start, stop, step)``: int64 for integer arguments, float64 if
/// any is a float, unless `dtype` says otherwise.
#[pyfunction]
#[pyo3(signature = (start, /, stop = None, step = None, *, dtype = None, device = None))]
pub fn arange(
    py: Python<'_>,
    start: &Bound<'_, PyAny>,
    stop: Option<&Bound<'_, PyAny>>,
    step: Option<&Bound<'_, PyAny>>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let num = |o: &Bound<'_, PyAny>| -> PyResult<Scalar> {
        match python_scalar(o)? {
            Some(Scalar::Bool(_)) | None => Err(PyTypeError::new_err(format!(
                "arange takes int or float arguments, got {o}"
            ))),
            Some(s) => Ok(s),
        }
    };
    let (a, b) = match stop.filter(|s| !s.is_none()) {
        Some(s) => (num(start)?, num(s)?),
        None => (Scalar::Int(0), num(start)?),
    };
    let s = match step.filter(|s| !s.is_none()) {
        Some(s) => num(s)?,
        None => Scalar::Int(1),
    };
    let any_float = [a, b, s].iter().any(|x| matches!(x, Scalar::Float(_)));
    let dtype = opt_dtype(dtype)?.unwrap_or(if any_float { DType::F64 } else { DType::I64 });
    let device = device_or_default(device)?;
    py.detach(|| pocaflow::ops::arange(a, b, s, dtype, &device))
        .py()
        .map(PyTensor::wrap)
}

/// `num` evenly spaced values from `start` to `stop` (float64 unless `dtype` says otherwise).
#[pyfunction]
#[pyo3(signature = (start, stop, /, num, *, dtype = None, device = None, endpoint = true))]
#[allow(clippy::too_many_arguments)]
pub fn linspace(
    py: Python<'_>,
    start: f64,
    stop: f64,
    num: usize,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    endpoint: bool,
) -> PyResult<PyTensor> {
    let dtype = opt_dtype(dtype)?.unwrap_or(DType::F64);
    let device = device_or_default(device)?;
    py.detach(|| pocaflow::ops::linspace(start, stop, num, endpoint, dtype, &device))
        .py()
        .map(PyTensor::wrap)
}

/// A 2-D array with ones on diagonal `k` and zeros elsewhere.
#[pyfunction]
#[pyo3(signature = (n_rows, n_cols = None, /, *, k = 0, dtype = None, device = None))]
pub fn eye(
    py: Python<'_>,
    n_rows: usize,
    n_cols: Option<usize>,
    k: i64,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyTensor> {
    let dtype = opt_dtype(dtype)?.unwrap_or(DType::F64);
    let device = device_or_default(device)?;
    py.detach(|| pocaflow::ops::eye(n_rows, n_cols.unwrap_or(n_rows), k, dtype, &device))
        .py()
        .map(PyTensor::wrap)
}

/// The dtype two operands of `a` and `b` promote to (the standard's table; NumPy's rules for
/// mixed integers and floats).
#[pyfunction]
pub fn result_type2(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<PyDType> {
    Ok(PyDType(DType::promote(parse_dtype(a)?, parse_dtype(b)?)))
}

/// Whether every value of dtype `from_` is a value of dtype `to`.
#[pyfunction]
pub fn can_cast(from_: &Bound<'_, PyAny>, to: &Bound<'_, PyAny>) -> PyResult<bool> {
    let from = match from_.cast::<PyTensor>() {
        Ok(t) => t.get().inner.dtype(),
        Err(_) => parse_dtype(from_)?,
    };
    Ok(DType::can_cast(from, parse_dtype(to)?))
}

/// Counter-based random numbers (Philox4x32-10): an array of `shape` and the number of Philox
/// blocks it used. `kind` is "uniform" (`a` = low, `b` = high), "normal" (`a` = mean, `b` =
/// std) or "integers" (`a` = low, `b` = high, exclusive).
#[pyfunction]
#[pyo3(signature = (shape, dtype, device, kind, a, b, seed, counter))]
#[allow(clippy::too_many_arguments)]
pub fn random_fill(
    py: Python<'_>,
    shape: &Bound<'_, PyAny>,
    dtype: &Bound<'_, PyAny>,
    device: Option<&Bound<'_, PyAny>>,
    kind: &str,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    seed: u64,
    counter: u64,
) -> PyResult<(PyTensor, u64)> {
    use pocaflow::plan::{Distribution, RandomSpec};
    let shape = shape_arg(shape)?;
    let dtype = parse_dtype(dtype)?;
    let device = device_or_default(device)?;
    let dist = match kind {
        "uniform" => Distribution::Uniform {
            low: a.extract()?,
            high: b.extract()?,
        },
        "normal" => Distribution::Normal {
            mean: a.extract()?,
            std: b.extract()?,
        },
        "integers" => {
            let (low, high): (i128, i128) = (a.extract()?, b.extract()?);
            if high <= low {
                return Err(PyValueError::new_err(format!(
                    "integers: need low < high, got {low} and {high}"
                )));
            }
            let span = high - low;
            let (lo, hi) = match dtype.kind() {
                Kind::Signed => {
                    let bits = dtype.size_in_bytes() * 8;
                    (-(1i128 << (bits - 1)), 1i128 << (bits - 1))
                }
                Kind::Unsigned => (0, 1i128 << (dtype.size_in_bytes() * 8)),
                _ => (0, 0),
            };
            if dtype.is_integer() && (low < lo || high > hi) {
                return Err(PyValueError::new_err(format!(
                    "integers: [{low}, {high}) does not fit {dtype}"
                )));
            }
            Distribution::Integers {
                low: low as i64,
                span: if span == 1i128 << 64 { 0 } else { span as u64 },
            }
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown distribution {kind:?}"
            )))
        }
    };
    let spec = RandomSpec {
        seed,
        counter,
        dist,
    };
    let (t, blocks) = py
        .detach(|| pocaflow::ops::random::random(&shape, dtype, &device, &spec))
        .py()?;
    Ok((PyTensor::wrap(t), blocks))
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

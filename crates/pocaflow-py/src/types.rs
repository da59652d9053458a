//! The small value classes: `pocaflow.DType` (the 13 dtypes) and `pocaflow.Device`, and the
//! parsing of `dtype=` and `device=` arguments (with the default device).

use pocaflow::{DType, Device, Kind};
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::sync::Mutex;

/// The result of `==` / `!=` given whether the operands are equal (other comparisons are not
/// supported).
pub fn equality(same: bool, op: CompareOp, py: Python<'_>) -> Py<PyAny> {
    match op {
        CompareOp::Eq => pyo3::types::PyBool::new(py, same)
            .to_owned()
            .into_any()
            .unbind(),
        CompareOp::Ne => pyo3::types::PyBool::new(py, !same)
            .to_owned()
            .into_any()
            .unbind(),
        _ => py.NotImplemented(),
    }
}

/// An element type; compares equal to its name and to the matching NumPy dtype.
#[pyclass(name = "DType", module = "pocaflow", frozen)]
#[derive(Clone, Copy)]
pub struct PyDType(pub DType);

#[pymethods]
impl PyDType {
    /// The NumPy-style name, e.g. ``"float32"``.
    #[getter]
    fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Bytes per element.
    #[getter]
    fn itemsize(&self) -> usize {
        self.0.size_in_bytes()
    }

    /// NumPy's kind character: ``"b"`` (bool), ``"i"`` (signed), ``"u"`` (unsigned), ``"f"``.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0.kind() {
            Kind::Bool => "b",
            Kind::Signed => "i",
            Kind::Unsigned => "u",
            Kind::Float => "f",
        }
    }

    fn __repr__(&self) -> String {
        format!("pocaflow.{}", self.0.name())
    }

    fn __str__(&self) -> &'static str {
        self.0.name()
    }

    /// The hash of the name, so that a dict keyed by dtypes finds `"float32"` too.
    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        PyString::new(py, self.0.name()).hash()
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp, py: Python<'_>) -> Py<PyAny> {
        let same = parse_dtype(other).is_ok_and(|d| d == self.0);
        equality(same, op, py)
    }
}

/// Reads a `dtype=` argument: a `pocaflow.DType`, a name (``"float32"``, ``"bfloat16"``), or
/// anything `numpy.dtype()` accepts (``np.float32``, ``"f4"``).
pub fn parse_dtype(obj: &Bound<'_, PyAny>) -> PyResult<DType> {
    if let Ok(d) = obj.cast::<PyDType>() {
        return Ok(d.get().0);
    }
    if let Ok(name) = obj.extract::<String>() {
        if let Some(d) = DType::from_name(&name) {
            return Ok(d);
        }
    }
    // Python's own types, as NumPy reads them.
    let py = obj.py();
    let builtins = py.import("builtins")?;
    for (ty, d) in [
        ("bool", DType::Bool),
        ("int", DType::I64),
        ("float", DType::F64),
    ] {
        if obj.is(&builtins.getattr(ty)?) {
            return Ok(d);
        }
    }
    let np = py.import("numpy")?;
    let name: String = np
        .getattr("dtype")?
        .call1((obj,))
        .map_err(|_| PyTypeError::new_err(format!("{obj} is not a dtype")))?
        .getattr("name")?
        .extract()?;
    DType::from_name(&name).ok_or_else(|| unsupported_dtype(&name))
}

/// The TypeError for an element type pocaflow does not hold.
pub fn unsupported_dtype(name: &str) -> PyErr {
    let hint = if name.starts_with("complex") {
        " (complex dtypes are not supported yet)"
    } else {
        ""
    };
    PyTypeError::new_err(format!(
        "unsupported dtype {name}{hint}: pocaflow supports bool, int8/16/32/64, \
         uint8/16/32/64, float16, bfloat16, float32 and float64"
    ))
}

/// A device: ``cpu`` or ``cuda:N``; compares equal to its string form.
#[pyclass(name = "Device", module = "pocaflow", frozen)]
#[derive(Clone, Copy)]
pub struct PyDevice(pub Device);

#[pymethods]
impl PyDevice {
    /// Parses ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (without checking availability).
    #[new]
    fn new(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        parse_device(spec).map(PyDevice)
    }

    /// ``"cpu"`` or ``"cuda"``.
    #[getter]
    fn r#type(&self) -> &'static str {
        match self.0 {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }

    /// The CUDA ordinal, or None for the CPU.
    #[getter]
    fn index(&self) -> Option<usize> {
        match self.0 {
            Device::Cpu => None,
            Device::Cuda(i) => Some(i),
        }
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }

    fn __repr__(&self) -> String {
        match self.0 {
            Device::Cpu => "device(type='cpu')".into(),
            Device::Cuda(i) => format!("device(type='cuda', index={i})"),
        }
    }

    /// The hash of the name (`"cpu"`, `"cuda:1"`), so that a dict keyed by devices finds it.
    fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
        PyString::new(py, &self.0.to_string()).hash()
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp, py: Python<'_>) -> Py<PyAny> {
        let same = parse_device(other).is_ok_and(|d| d == self.0);
        equality(same, op, py)
    }
}

static DEFAULT_DEVICE: Mutex<Device> = Mutex::new(Device::Cpu);

/// The device that creation functions use when none is given.
pub fn default_device() -> Device {
    *DEFAULT_DEVICE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the device that creation functions use when none is given ("cuda" makes code written
/// for the CPU run on the GPU).
#[pyfunction]
pub fn set_default_device(device: &Bound<'_, PyAny>) -> PyResult<()> {
    let d = parse_device(device)?;
    *DEFAULT_DEVICE.lock().unwrap_or_else(|e| e.into_inner()) = d;
    Ok(())
}

/// The device that creation functions use when none is given.
#[pyfunction]
pub fn get_default_device() -> PyDevice {
    PyDevice(default_device())
}

/// Reads an optional `device=` argument: the default device for None.
pub fn device_or_default(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Device> {
    match obj {
        Some(o) if !o.is_none() => parse_device(o),
        _ => Ok(default_device()),
    }
}

/// Reads a `device=` argument: a `pocaflow.Device` or a string. Unknown names are a ValueError;
/// availability is checked where the device is used.
pub fn parse_device(obj: &Bound<'_, PyAny>) -> PyResult<Device> {
    if let Ok(d) = obj.cast::<PyDevice>() {
        return Ok(d.get().0);
    }
    let s: String = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "device must be a string or pocaflow.Device, got {obj}"
        ))
    })?;
    s.parse::<Device>()
        .map_err(|e| PyValueError::new_err(e.message().to_owned()))
}

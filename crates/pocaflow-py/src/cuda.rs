//! The CUDA surface for Python: `Stream`, `Event` and the functions behind `pocaflow.cuda`.

use crate::errors::IntoPyResult;
use crate::types::{equality, parse_device};
use pocaflow::cuda::{self, Event, MatmulPrecision, Stream};
use pocaflow::Device;
use pyo3::basic::CompareOp;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;

/// The CUDA ordinal of a `device=` argument (None means device 0).
fn ordinal(device: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    let Some(d) = device.filter(|d| !d.is_none()) else {
        return Ok(0);
    };
    if let Ok(i) = d.extract::<usize>() {
        return Ok(i);
    }
    match parse_device(d)? {
        Device::Cuda(i) => Ok(i),
        Device::Cpu => Err(PyValueError::new_err("expected a CUDA device, got cpu")),
    }
}

/// A CUDA stream: GPU work enqueued on it runs in order.
#[pyclass(name = "Stream", module = "pocaflow.cuda", frozen)]
pub struct PyStream(pub Stream);

#[pymethods]
impl PyStream {
    /// A new non-blocking stream on `device` (default cuda:0).
    #[new]
    #[pyo3(signature = (device = None))]
    fn new(device: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Stream::new(ordinal(device)?).py().map(PyStream)
    }

    /// The device ordinal.
    #[getter]
    fn device(&self) -> usize {
        self.0.device()
    }

    /// The raw ``CUstream`` handle as an integer (as ``torch.cuda.Stream.cuda_stream``), for
    /// other libraries: ``torch.cuda.ExternalStream(s.cuda_stream)``, DLPack's ``stream=``.
    #[getter]
    fn cuda_stream(&self) -> u64 {
        self.0.handle()
    }

    /// Blocks until all work enqueued on the stream is done (the GIL is released meanwhile).
    fn synchronize(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.0.synchronize()).py()
    }

    /// Whether all enqueued work is done (never blocks).
    fn query(&self) -> PyResult<bool> {
        self.0.query().py()
    }

    /// Makes this stream wait (on the GPU) for `event`.
    fn wait_event(&self, event: &PyEvent) -> PyResult<()> {
        let e = event.recorded()?;
        match e {
            Some(e) => self.0.wait_event(&e).py(),
            None => Ok(()),
        }
    }

    /// Makes this stream wait (on the GPU) for the work queued so far on another library's
    /// stream, by its raw handle (``torch.cuda.current_stream().cuda_stream``, say).
    fn wait_external(&self, handle: u64) -> PyResult<()> {
        self.0.wait_external(handle).py()
    }

    /// Records a new event on this stream and returns it.
    #[pyo3(signature = (event = None))]
    fn record_event(slf: &Bound<'_, Self>, event: Option<Py<PyEvent>>) -> PyResult<Py<PyEvent>> {
        let py = slf.py();
        let event = match event {
            Some(e) => e,
            None => Py::new(py, PyEvent::create(false))?,
        };
        event.get().record_on(&slf.get().0)?;
        Ok(event)
    }

    /// Makes this the current stream of its device on this thread; returns the previous one.
    fn _set_current(&self) -> PyResult<PyStream> {
        self.0.set_current().py().map(PyStream)
    }

    fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp, py: Python<'_>) -> Py<PyAny> {
        let same = other
            .cast::<PyStream>()
            .is_ok_and(|o| o.get().0.id() == self.0.id());
        equality(same, op, py)
    }

    fn __hash__(&self) -> u64 {
        self.0.id()
    }

    fn __repr__(&self) -> String {
        format!(
            "<pocaflow.cuda.Stream {} on cuda:{}>",
            self.0.id(),
            self.0.device()
        )
    }
}

/// A CUDA event: a marker in a stream. Made on the device of the stream it is first recorded
/// on.
#[pyclass(name = "Event", module = "pocaflow.cuda", frozen)]
pub struct PyEvent {
    timing: bool,
    event: Mutex<Option<Event>>,
}

impl PyEvent {
    fn create(timing: bool) -> PyEvent {
        PyEvent {
            timing,
            event: Mutex::new(None),
        }
    }

    fn recorded(&self) -> PyResult<Option<Event>> {
        Ok(self
            .event
            .lock()
            .map_err(|_| PyRuntimeError::new_err("event lock poisoned"))?
            .clone())
    }

    fn record_on(&self, stream: &Stream) -> PyResult<()> {
        let mut slot = self
            .event
            .lock()
            .map_err(|_| PyRuntimeError::new_err("event lock poisoned"))?;
        let event = match slot.as_ref() {
            Some(e) if e.device() == stream.device() => e.clone(),
            _ => Event::new(stream.device(), self.timing).py()?,
        };
        event.record(stream).py()?;
        *slot = Some(event);
        Ok(())
    }
}

#[pymethods]
impl PyEvent {
    /// A new event; `enable_timing` allows `elapsed_time`.
    #[new]
    #[pyo3(signature = (enable_timing = false))]
    fn new(enable_timing: bool) -> Self {
        PyEvent::create(enable_timing)
    }

    /// Records the event on `stream` (default: the current stream of cuda:0, or of the device
    /// it was recorded on before).
    #[pyo3(signature = (stream = None))]
    fn record(&self, stream: Option<&PyStream>) -> PyResult<()> {
        let stream = match stream {
            Some(s) => s.0.clone(),
            None => {
                let dev = self.recorded()?.map_or(0, |e| e.device());
                Stream::current(dev).py()?
            }
        };
        self.record_on(&stream)
    }

    /// Makes `stream` (default: the current stream) wait on the GPU for this event.
    #[pyo3(signature = (stream = None))]
    fn wait(&self, stream: Option<&PyStream>) -> PyResult<()> {
        let Some(e) = self.recorded()? else {
            return Ok(());
        };
        let stream = match stream {
            Some(s) => s.0.clone(),
            None => Stream::current(e.device()).py()?,
        };
        stream.wait_event(&e).py()
    }

    /// Whether the work before the recorded point is done (never blocks; True if never
    /// recorded).
    fn query(&self) -> PyResult<bool> {
        match self.recorded()? {
            Some(e) => e.query().py(),
            None => Ok(true),
        }
    }

    /// Blocks until the recorded point is reached (the GIL is released meanwhile).
    fn synchronize(&self, py: Python<'_>) -> PyResult<()> {
        match self.recorded()? {
            Some(e) => py.detach(|| e.synchronize()).py(),
            None => Ok(()),
        }
    }

    /// Milliseconds of GPU time from this event to `end` (both recorded and complete).
    fn elapsed_time(&self, end: &PyEvent) -> PyResult<f32> {
        match (self.recorded()?, end.recorded()?) {
            (Some(a), Some(b)) => a.elapsed_ms(&b).py(),
            _ => Err(PyRuntimeError::new_err(
                "elapsed_time: both events must be recorded first",
            )),
        }
    }
}

/// Number of visible CUDA devices (0 when CUDA is not usable).
#[pyfunction]
pub fn cuda_device_count() -> usize {
    cuda::device_count().unwrap_or(0)
}

/// Why CUDA is not usable, or None when it is.
#[pyfunction]
pub fn cuda_unavailable_reason() -> Option<String> {
    match cuda::device_count() {
        Ok(0) => Some("no CUDA device is visible".into()),
        Ok(_) => None,
        Err(e) => Some(e.message().to_owned()),
    }
}

/// Blocks until all work on the device is done.
#[pyfunction]
#[pyo3(signature = (device = None))]
pub fn cuda_synchronize(py: Python<'_>, device: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let i = ordinal(device)?;
    py.detach(|| cuda::synchronize(i)).py()
}

/// The current stream of the device on this thread.
#[pyfunction]
#[pyo3(signature = (device = None))]
pub fn cuda_current_stream(device: Option<&Bound<'_, PyAny>>) -> PyResult<PyStream> {
    Stream::current(ordinal(device)?).py().map(PyStream)
}

/// The allocator counters of the device.
#[pyfunction]
#[pyo3(signature = (device = None))]
pub fn cuda_memory_stats<'py>(
    py: Python<'py>,
    device: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = cuda::memory_stats(ordinal(device)?).py()?;
    let d = PyDict::new(py);
    d.set_item("allocated_bytes", s.allocated_bytes)?;
    d.set_item("reserved_bytes", s.reserved_bytes)?;
    d.set_item("peak_allocated_bytes", s.peak_allocated_bytes)?;
    d.set_item("driver_allocations", s.driver_allocations)?;
    d.set_item("driver_frees", s.driver_frees)?;
    d.set_item("cache_hits", s.cache_hits)?;
    d.set_item("cache_misses", s.cache_misses)?;
    Ok(d)
}

/// Returns cached, unused device memory to the driver (waits for the device).
#[pyfunction]
#[pyo3(signature = (device = None))]
pub fn cuda_empty_cache(py: Python<'_>, device: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let i = ordinal(device)?;
    py.detach(|| cuda::empty_cache(i)).py()
}

/// Sets how float32 matmuls compute on CUDA: "highest" (strict float32, the default), "high"
/// (TF32 tensor cores allowed) or "tf32x3" (three TF32 products of split operands, near
/// float32 accuracy for finite operands).
#[pyfunction]
pub fn set_matmul_precision(precision: &str) -> PyResult<()> {
    let p = match precision {
        "highest" => MatmulPrecision::Highest,
        "high" => MatmulPrecision::High,
        "tf32x3" => MatmulPrecision::Tf32x3,
        other => {
            return Err(PyValueError::new_err(format!(
                "precision must be \"highest\", \"high\" or \"tf32x3\", got {other:?}"
            )))
        }
    };
    cuda::set_matmul_precision(p);
    Ok(())
}

/// Sets the size up to which float32/float64 CUDA matmuls run in pocaflow's own kernel instead
/// of cuBLASLt: at most `multiply_adds` multiply-adds (m*n*k times the batch) and k <= 128.
/// 0 sends every product to cuBLASLt.
#[pyfunction]
pub fn cuda_set_small_matmul_threshold(multiply_adds: u64) {
    cuda::set_small_matmul_threshold(multiply_adds);
}

/// The threshold set by `cuda_set_small_matmul_threshold`.
#[pyfunction]
pub fn cuda_small_matmul_threshold() -> u64 {
    cuda::small_matmul_threshold()
}

/// The float32 matmul precision in force: "highest", "high" or "tf32x3".
#[pyfunction]
pub fn get_matmul_precision() -> &'static str {
    match cuda::matmul_precision() {
        MatmulPrecision::Highest => "highest",
        MatmulPrecision::High => "high",
        MatmulPrecision::Tf32x3 => "tf32x3",
    }
}

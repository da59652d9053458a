//! DLPack both ways: tensors exported as capsules (`Tensor.__dlpack__`, versioned 1.x or the
//! legacy unversioned form) and capsules of other producers imported without a copy
//! (`from_dlpack_capsule`, behind `pocaflow.from_dlpack`), on the CPU and on CUDA. The C
//! structures are those of `dlpack.h` 1.1. Stream exchange: the consumer names its stream and
//! the producer makes that stream wait for the memory's pending work with events, on the GPU.

use crate::errors::IntoPyResult;
use crate::tensor::PyTensor;
use pocaflow::{DType, Device, Tensor};
use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::{c_void, CStr};

const VERSIONED: &CStr = c"dltensor_versioned";
const LEGACY: &CStr = c"dltensor";
const USED_VERSIONED: &CStr = c"used_dltensor_versioned";
const USED_LEGACY: &CStr = c"used_dltensor";

/// The DLPack version pocaflow writes at most (1.1) and reads (any 1.x).
const MAJOR: u32 = 1;
const MINOR: u32 = 1;

/// `DLPACK_FLAG_BITMASK_READ_ONLY` and `DLPACK_FLAG_BITMASK_IS_COPIED`.
const FLAG_READ_ONLY: u64 = 1;
const FLAG_IS_COPIED: u64 = 2;

/// `DLDeviceType` values pocaflow knows.
const KDL_CPU: i32 = 1;
const KDL_CUDA: i32 = 2;
const KDL_CUDA_HOST: i32 = 3;
const KDL_CUDA_MANAGED: i32 = 13;

#[repr(C)]
#[derive(Clone, Copy)]
struct DLPackVersion {
    major: u32,
    minor: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

#[repr(C)]
struct DLManagedTensorVersioned {
    version: DLPackVersion,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    flags: u64,
    dl_tensor: DLTensor,
}

/// The DLPack device of a pocaflow device.
pub fn dl_device(device: Device) -> (i32, i32) {
    match device {
        Device::Cpu => (KDL_CPU, 0),
        Device::Cuda(i) => (KDL_CUDA, i as i32),
    }
}

/// The pocaflow device of a DLPack device (pinned and managed memory count as their home).
fn device_of(d: DLDevice) -> PyResult<Device> {
    match d.device_type {
        KDL_CPU | KDL_CUDA_HOST => Ok(Device::Cpu),
        KDL_CUDA | KDL_CUDA_MANAGED => Ok(Device::Cuda(d.device_id.max(0) as usize)),
        t => Err(PyBufferError::new_err(format!(
            "from_dlpack: DLPack device type {t} is not supported (pocaflow takes CPU, CUDA, \
             CUDA host and CUDA managed memory)"
        ))),
    }
}

fn dl_dtype(dtype: DType) -> DLDataType {
    let code = match dtype {
        DType::Bool => 6,
        DType::I8 | DType::I16 | DType::I32 | DType::I64 => 0,
        DType::U8 | DType::U16 | DType::U32 | DType::U64 => 1,
        DType::F16 | DType::F32 | DType::F64 => 2,
        DType::BF16 => 4,
    };
    DLDataType {
        code,
        bits: (dtype.size_in_bytes() * 8) as u8,
        lanes: 1,
    }
}

fn dtype_of(t: DLDataType) -> PyResult<DType> {
    let d = match (t.code, t.bits, t.lanes) {
        (6, 8, 1) => DType::Bool,
        (0, 8, 1) => DType::I8,
        (0, 16, 1) => DType::I16,
        (0, 32, 1) => DType::I32,
        (0, 64, 1) => DType::I64,
        (1, 8, 1) => DType::U8,
        (1, 16, 1) => DType::U16,
        (1, 32, 1) => DType::U32,
        (1, 64, 1) => DType::U64,
        (2, 16, 1) => DType::F16,
        (2, 32, 1) => DType::F32,
        (2, 64, 1) => DType::F64,
        (4, 16, 1) => DType::BF16,
        (code, bits, lanes) => {
            let kind = match code {
                0 => "int",
                1 => "uint",
                2 => "float",
                4 => "bfloat",
                5 => "complex",
                6 => "bool",
                _ => "type code",
            };
            return Err(PyBufferError::new_err(format!(
                "from_dlpack: DLPack dtype {kind} {code} with {bits} bits and {lanes} lane(s) \
                 has no pocaflow dtype"
            )));
        }
    };
    Ok(d)
}

/// What an exported capsule keeps alive: the tensor (and so its memory), its shape and strides.
struct Export {
    _tensor: Tensor,
    shape: Vec<i64>,
    strides: Vec<i64>,
}

impl Export {
    /// The `DLTensor` of the export (pointing into `self`, which must not move: it is boxed).
    fn dl_tensor(&mut self, t: &Tensor) -> DLTensor {
        let (device_type, device_id) = dl_device(t.device());
        DLTensor {
            data: t.data_address() as usize as *mut c_void,
            device: DLDevice {
                device_type,
                device_id,
            },
            ndim: self.shape.len() as i32,
            dtype: dl_dtype(t.dtype()),
            shape: self.shape.as_mut_ptr(),
            strides: self.strides.as_mut_ptr(),
            byte_offset: 0,
        }
    }
}

/// The two managed-tensor structures (versioned and legacy), alike for deleting.
trait Managed: Sized {
    /// The producer's context.
    fn manager_ctx(&self) -> *mut c_void;
    /// The producer's deleter.
    fn deleter(&self) -> Option<unsafe extern "C" fn(*mut Self)>;
}

impl Managed for DLManagedTensorVersioned {
    fn manager_ctx(&self) -> *mut c_void {
        self.manager_ctx
    }
    fn deleter(&self) -> Option<unsafe extern "C" fn(*mut Self)> {
        self.deleter
    }
}

impl Managed for DLManagedTensor {
    fn manager_ctx(&self) -> *mut c_void {
        self.manager_ctx
    }
    fn deleter(&self) -> Option<unsafe extern "C" fn(*mut Self)> {
        self.deleter
    }
}

/// The deleter of pocaflow's exports: frees the managed tensor and its [`Export`].
unsafe extern "C" fn delete_export<M: Managed>(m: *mut M) {
    // SAFETY: `m` and its context were boxed by `export`; the deleter runs once (DLPack).
    unsafe {
        let m = Box::from_raw(m);
        drop(Box::from_raw(m.manager_ctx() as *mut Export));
    }
}

/// Calls the deleter of the managed tensor at `m`, if it has one.
///
/// # Safety
/// `m` must be a live managed tensor whose deleter has not run.
unsafe fn call_deleter<M: Managed>(m: *mut M) {
    // SAFETY: the caller's contract.
    unsafe {
        if let Some(d) = (*m).deleter() {
            d(m);
        }
    }
}

/// The capsule destructor: frees the managed tensor unless a consumer took it (and renamed the
/// capsule, becoming responsible for calling the deleter).
unsafe extern "C" fn capsule_destructor(capsule: *mut ffi::PyObject) {
    // SAFETY: `capsule` is the capsule being destroyed; `IsValid` never sets an error, and a
    // valid capsule of either name holds the managed tensor `export` made.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, VERSIONED.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(capsule, VERSIONED.as_ptr());
            call_deleter(m as *mut DLManagedTensorVersioned);
        } else if ffi::PyCapsule_IsValid(capsule, LEGACY.as_ptr()) == 1 {
            let m = ffi::PyCapsule_GetPointer(capsule, LEGACY.as_ptr());
            call_deleter(m as *mut DLManagedTensor);
        }
    }
}

/// What `Tensor.__dlpack__` was asked for.
pub struct ExportRequest {
    /// The consumer's stream: `None` (the legacy default stream), -1 (no ordering), 1, 2 or a
    /// raw `CUstream`.
    pub stream: Option<i64>,
    /// The highest DLPack version the consumer reads; `None` asks for a legacy capsule.
    pub max_version: Option<(u32, u32)>,
    /// The device the consumer wants the data on.
    pub dl_device: Option<(i32, i32)>,
    /// `True` always copies, `False` never does, `None` copies only when needed.
    pub copy: Option<bool>,
}

/// The tensor to export for `req` (itself, or a copy on the requested device) and whether it
/// is a copy.
fn export_tensor(py: Python<'_>, t: &Tensor, req: &ExportRequest) -> PyResult<(Tensor, bool)> {
    let own = dl_device(t.device());
    let target = match req.dl_device {
        None => t.device(),
        Some(d) if d == own => t.device(),
        Some((KDL_CPU, _)) => Device::Cpu,
        Some((KDL_CUDA, i)) if i >= 0 => Device::Cuda(i as usize),
        Some((ty, i)) => {
            return Err(PyBufferError::new_err(format!(
                "__dlpack__: cannot export to DLPack device ({ty}, {i})"
            )))
        }
    };
    if target != t.device() {
        if req.copy == Some(false) {
            return Err(PyBufferError::new_err(format!(
                "__dlpack__(copy=False): an array on {} cannot be exported to {target} without \
                 a copy",
                t.device()
            )));
        }
        return Ok((py.detach(|| t.to_device(&target)).py()?, true));
    }
    // Negative strides are valid DLPack, but PyTorch aborts the process on them (its own
    // arrays never have them): such views are exported as a dense copy.
    let reversed = t
        .shape()
        .iter()
        .zip(t.strides())
        .any(|(&n, &s)| n > 1 && s < 0);
    if reversed && req.copy == Some(false) {
        return Err(PyBufferError::new_err(
            "__dlpack__(copy=False): a view with negative strides is exported as a copy \
             (consumers such as PyTorch cannot take negative strides)",
        ));
    }
    if req.copy == Some(true) || reversed {
        return Ok((py.detach(|| t.copy_data()).py()?, true));
    }
    Ok((t.clone(), false))
}

/// The consumer's stream as a raw handle to order after the memory's work, or `None` for no
/// ordering; validates it for the device.
fn consumer_stream(t: &Tensor, stream: Option<i64>) -> PyResult<Option<u64>> {
    match (t.device(), stream) {
        (Device::Cpu, None) => Ok(None),
        (Device::Cpu, Some(s)) => Err(PyValueError::new_err(format!(
            "__dlpack__: stream must be None for an array on the CPU, got {s}"
        ))),
        (Device::Cuda(_), None) => Ok(Some(1)),
        (Device::Cuda(_), Some(-1)) => Ok(None),
        (Device::Cuda(_), Some(s)) if s > 0 => Ok(Some(s as u64)),
        (Device::Cuda(_), Some(s)) => Err(PyValueError::new_err(format!(
            "__dlpack__: stream {s} is not a CUDA stream (None, -1, 1, 2 or a stream handle; \
             0 is ambiguous and not allowed)"
        ))),
    }
}

/// `Tensor.__dlpack__`: a capsule over the tensor's memory (or a copy where `req` asks for
/// one), the consumer's stream ordered after the work queued on it.
pub fn export(py: Python<'_>, t: &Tensor, req: &ExportRequest) -> PyResult<Py<PyAny>> {
    let from_cuda = t.device() != Device::Cpu;
    let (t, copied) = export_tensor(py, t, req)?;
    // A CUDA array copied to the host has waited for its work: the consumer's stream (of the
    // CUDA device it came from) needs no ordering.
    let downloaded = from_cuda && t.device() == Device::Cpu;
    let stream = consumer_stream(&t, if downloaded { None } else { req.stream })?;
    if let Some(handle) = stream {
        t.order_stream(handle).py()?;
    }
    let mut ctx = Box::new(Export {
        _tensor: t.clone(),
        shape: t.shape().iter().map(|&n| n as i64).collect(),
        strides: t.strides().iter().map(|&s| s as i64).collect(),
    });
    let dl_tensor = ctx.dl_tensor(&t);
    let manager_ctx = Box::into_raw(ctx) as *mut c_void;
    let versioned = req.max_version.filter(|v| v.0 >= MAJOR);
    let (ptr, name) = match versioned {
        Some((major, minor)) => {
            let minor = if major == MAJOR {
                minor.min(MINOR)
            } else {
                MINOR
            };
            let m = Box::new(DLManagedTensorVersioned {
                version: DLPackVersion {
                    major: MAJOR,
                    minor,
                },
                manager_ctx,
                deleter: Some(delete_export::<DLManagedTensorVersioned>),
                flags: if copied { FLAG_IS_COPIED } else { 0 },
                dl_tensor,
            });
            (Box::into_raw(m) as *mut c_void, VERSIONED)
        }
        None => {
            let m = Box::new(DLManagedTensor {
                dl_tensor,
                manager_ctx,
                deleter: Some(delete_export::<DLManagedTensor>),
            });
            (Box::into_raw(m) as *mut c_void, LEGACY)
        }
    };
    // SAFETY: `ptr` is the managed tensor just boxed; the destructor frees it unless consumed.
    let capsule = unsafe { ffi::PyCapsule_New(ptr, name.as_ptr(), Some(capsule_destructor)) };
    if capsule.is_null() {
        // SAFETY: the capsule was not made, so the managed tensor is still ours to free.
        unsafe {
            if versioned.is_some() {
                delete_export(ptr as *mut DLManagedTensorVersioned);
            } else {
                delete_export(ptr as *mut DLManagedTensor);
            }
        }
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `capsule` is a new reference.
    Ok(unsafe { Bound::from_owned_ptr(py, capsule) }.unbind())
}

/// A consumed managed tensor of another producer: dropping it calls the producer's deleter.
struct Imported {
    ptr: *mut c_void,
    versioned: bool,
}

// SAFETY: DLPack deleters may run on any thread (NumPy's and CuPy's take the GIL themselves,
// PyTorch's needs none); the pointer is only used to call the deleter once.
unsafe impl Send for Imported {}
// SAFETY: as above; the value is never read through a shared reference.
unsafe impl Sync for Imported {}

impl Drop for Imported {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the managed tensor of a consumed capsule, deleted only here.
        unsafe {
            if self.versioned {
                call_deleter(self.ptr as *mut DLManagedTensorVersioned);
            } else {
                call_deleter(self.ptr as *mut DLManagedTensor);
            }
        }
    }
}

/// The fields of a capsule's `DLTensor` that pocaflow needs, read and checked.
struct Described {
    device: Device,
    dtype: DType,
    data: u64,
    shape: Vec<usize>,
    strides: Vec<isize>,
    read_only: bool,
}

/// Reads and checks the `DLTensor` of a managed tensor.
///
/// # Safety
/// `dl` must point to a live `DLTensor` whose shape (and strides, unless null) hold `ndim`
/// values.
unsafe fn describe(dl: *const DLTensor, read_only: bool) -> PyResult<Described> {
    // SAFETY: the caller's contract.
    let dl = unsafe { &*dl };
    let device = device_of(dl.device)?;
    let dtype = dtype_of(dl.dtype)?;
    let ndim = usize::try_from(dl.ndim)
        .map_err(|_| PyBufferError::new_err(format!("from_dlpack: ndim {} < 0", dl.ndim)))?;
    let read = |p: *const i64| -> Vec<i64> {
        if ndim == 0 {
            Vec::new()
        } else {
            // SAFETY: non-null and `ndim` long (checked by the callers of `read`).
            unsafe { std::slice::from_raw_parts(p, ndim) }.to_vec()
        }
    };
    if ndim > 0 && dl.shape.is_null() {
        return Err(PyBufferError::new_err(
            "from_dlpack: the DLTensor has no shape",
        ));
    }
    let shape: Vec<usize> = read(dl.shape)
        .into_iter()
        .map(usize::try_from)
        .collect::<Result<_, _>>()
        .map_err(|_| PyBufferError::new_err("from_dlpack: a negative extent in the shape"))?;
    let strides: Vec<isize> = if dl.strides.is_null() || ndim == 0 {
        pocaflow::layout::c_strides(&shape)
    } else {
        read(dl.strides).into_iter().map(|s| s as isize).collect()
    };
    Ok(Described {
        device,
        dtype,
        data: (dl.data as usize as u64).wrapping_add(dl.byte_offset),
        shape,
        strides,
        read_only,
    })
}

/// `from_dlpack`'s last step: the tensor over a producer's capsule. `copy` as in the standard
/// (`True` copies, `False` never does, `None` copies when needed: read-only memory, and
/// booleans, which are copied so that every byte is 0 or 1).
#[pyfunction]
#[pyo3(signature = (capsule, copy = None))]
pub fn from_dlpack_capsule(
    py: Python<'_>,
    capsule: &Bound<'_, PyAny>,
    copy: Option<bool>,
) -> PyResult<PyTensor> {
    let cap = capsule.as_ptr();
    // SAFETY: `cap` is a live object; `IsValid` checks that it is a capsule of that name and
    // never sets an error.
    let versioned = unsafe { ffi::PyCapsule_IsValid(cap, VERSIONED.as_ptr()) } == 1;
    // SAFETY: as above.
    if !versioned && unsafe { ffi::PyCapsule_IsValid(cap, LEGACY.as_ptr()) } != 1 {
        // SAFETY: as above.
        let used = unsafe {
            ffi::PyCapsule_IsValid(cap, USED_VERSIONED.as_ptr()) == 1
                || ffi::PyCapsule_IsValid(cap, USED_LEGACY.as_ptr()) == 1
        };
        return Err(if used {
            PyValueError::new_err("from_dlpack: this DLPack capsule was already consumed")
        } else {
            PyTypeError::new_err(format!(
                "from_dlpack: expected a DLPack capsule, got {}",
                capsule.get_type().name()?
            ))
        });
    }
    let name = if versioned { VERSIONED } else { LEGACY };
    // SAFETY: the capsule is valid under `name` (checked above).
    let ptr = unsafe { ffi::PyCapsule_GetPointer(cap, name.as_ptr()) };
    let described = if versioned {
        let m = ptr as *const DLManagedTensorVersioned;
        // SAFETY: a valid versioned capsule holds a live managed tensor; its version is read
        // first and nothing else unless the major version is pocaflow's.
        let version = unsafe { (*m).version };
        if version.major != MAJOR {
            return Err(PyBufferError::new_err(format!(
                "from_dlpack: DLPack {}.{} is not supported (pocaflow reads 1.x)",
                version.major, version.minor
            )));
        }
        // SAFETY: as above; the producer's DLTensor is live while the capsule is unconsumed.
        unsafe { describe(&(*m).dl_tensor, (*m).flags & FLAG_READ_ONLY != 0) }?
    } else {
        let m = ptr as *const DLManagedTensor;
        // SAFETY: as above.
        unsafe { describe(&(*m).dl_tensor, false) }?
    };
    let must_copy = described.read_only || described.dtype == DType::Bool;
    if copy == Some(false) && must_copy {
        return Err(PyBufferError::new_err(if described.read_only {
            "from_dlpack(copy=False): the producer's memory is read-only and pocaflow arrays \
             are writable"
        } else {
            "from_dlpack(copy=False): boolean arrays are copied (each byte checked to be 0 or 1)"
        }));
    }
    described.device.ensure_available().py()?;
    // The capsule is consumed: from here its deleter is pocaflow's to call (by `Imported`).
    // SAFETY: the capsule is valid; renaming it is how DLPack marks it consumed.
    if unsafe {
        ffi::PyCapsule_SetName(
            cap,
            (if versioned {
                USED_VERSIONED
            } else {
                USED_LEGACY
            })
            .as_ptr(),
        )
    } != 0
    {
        return Err(PyErr::fetch(py));
    }
    let owner = Box::new(Imported { ptr, versioned });
    let Described {
        device,
        dtype,
        data,
        shape,
        strides,
        ..
    } = described;
    // Booleans come in as bytes and are cast (nonzero to true), never read as `bool` unchecked.
    let as_dtype = if dtype == DType::Bool {
        DType::U8
    } else {
        dtype
    };
    // SAFETY: the producer's memory holds the elements the strides reach, on `device`, for as
    // long as the managed tensor lives (the owner deletes it); bytes are valid `u8`; the
    // producer ordered our current stream after its work (the caller passed it our stream).
    let t =
        unsafe { Tensor::from_foreign(device, as_dtype, data, &shape, &strides, owner) }.py()?;
    let t = if dtype == DType::Bool {
        py.detach(|| t.to_dtype(DType::Bool)).py()?
    } else if must_copy || copy == Some(true) {
        py.detach(|| t.copy_data()).py()?
    } else {
        t
    };
    Ok(PyTensor::wrap(t))
}

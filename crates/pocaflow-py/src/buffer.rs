//! How other libraries view a tensor's memory in place, besides DLPack: the Python buffer
//! protocol for CPU tensors (so `memoryview(t)` and `np.asarray(t)` share memory) and the CUDA
//! array interface (version 3) for CUDA tensors.

use crate::errors::IntoPyResult;
use crate::tensor::PyTensor;
use pocaflow::cuda::Stream;
use pocaflow::{DType, Device, Tensor};
use pyo3::exceptions::{PyAttributeError, PyBufferError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::ffi::{c_int, CStr};

/// The `struct` format character of a dtype (native sizes; bfloat16 has none).
fn format(dtype: DType) -> Option<&'static CStr> {
    Some(match dtype {
        DType::Bool => c"?",
        DType::I8 => c"b",
        DType::I16 => c"h",
        DType::I32 => c"i",
        DType::I64 => c"q",
        DType::U8 => c"B",
        DType::U16 => c"H",
        DType::U32 => c"I",
        DType::U64 => c"Q",
        DType::F16 => c"e",
        DType::F32 => c"f",
        DType::F64 => c"d",
        DType::BF16 => return None,
    })
}

/// The NumPy `typestr` of a dtype (little-endian; bfloat16 has none).
fn typestr(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::Bool => "|b1",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::BF16 => return None,
    })
}

/// The tensor's strides in bytes.
fn byte_strides(t: &Tensor) -> Vec<isize> {
    let item = t.dtype().size_in_bytes() as isize;
    t.strides().iter().map(|&s| s * item).collect()
}

/// Why the buffer protocol cannot serve `t` as `flags` ask, if it cannot.
fn refusal(t: &Tensor, flags: c_int) -> Option<String> {
    if t.device() != Device::Cpu {
        return Some(format!(
            "an array on {} has no host buffer: use .numpy(), to_device('cpu') or DLPack",
            t.device()
        ));
    }
    if format(t.dtype()).is_none() {
        return Some("bfloat16 has no buffer-protocol format: use astype first".into());
    }
    let l = t.layout();
    let has = |f: c_int| flags & f == f;
    let c = l.is_c_contiguous();
    if (!has(ffi::PyBUF_STRIDES) || has(ffi::PyBUF_C_CONTIGUOUS)) && !c {
        return Some("the consumer asked for a C-contiguous buffer and the array is not".into());
    }
    if has(ffi::PyBUF_F_CONTIGUOUS) && !l.is_f_contiguous() {
        return Some(
            "the consumer asked for a Fortran-contiguous buffer and the array is not".into(),
        );
    }
    if has(ffi::PyBUF_ANY_CONTIGUOUS) && !c && !l.is_f_contiguous() {
        return Some("the consumer asked for a contiguous buffer and the array is not".into());
    }
    None
}

/// `bf_getbuffer` of a CPU tensor: its memory in place, writable, with shape and byte strides.
///
/// # Safety
/// `view` must be a `Py_buffer` the interpreter passes to `bf_getbuffer`.
pub unsafe fn get_buffer(
    slf: &Bound<'_, PyTensor>,
    view: *mut ffi::Py_buffer,
    flags: c_int,
) -> PyResult<()> {
    let t = &slf.get().inner;
    if let Some(why) = refusal(t, flags) {
        return Err(PyBufferError::new_err(why));
    }
    let dtype = t.dtype();
    let item = dtype.size_in_bytes();
    // Shape then strides, in one allocation that `release_buffer` frees.
    let mut dims: Box<[ffi::Py_ssize_t]> = t
        .shape()
        .iter()
        .map(|&n| n as ffi::Py_ssize_t)
        .chain(byte_strides(t))
        .collect();
    let ndim = t.ndim();
    let has = |f: c_int| flags & f == f;
    // SAFETY: `view` is the interpreter's to fill; the pointers stored in it stay valid until
    // `release_buffer`: `dims` is leaked into `internal`, the format is static, and `obj` holds
    // a reference to the tensor (and so its memory).
    unsafe {
        let dims_ptr = dims.as_mut_ptr();
        (*view).buf = t.data_address() as usize as *mut std::ffi::c_void;
        (*view).obj = slf.clone().into_any().into_ptr();
        (*view).len = (t.numel() * item) as ffi::Py_ssize_t;
        (*view).readonly = 0;
        (*view).itemsize = item as ffi::Py_ssize_t;
        (*view).format = if has(ffi::PyBUF_FORMAT) {
            format(dtype).expect("checked by refusal").as_ptr() as *mut _
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = ndim as c_int;
        (*view).shape = if has(ffi::PyBUF_ND) {
            dims_ptr
        } else {
            std::ptr::null_mut()
        };
        (*view).strides = if has(ffi::PyBUF_STRIDES) {
            dims_ptr.add(ndim)
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = Box::into_raw(dims) as *mut std::ffi::c_void;
    }
    Ok(())
}

/// `bf_releasebuffer`: frees what `get_buffer` stored (the interpreter releases `obj`).
///
/// # Safety
/// `view` must have been filled by `get_buffer`.
pub unsafe fn release_buffer(view: *mut ffi::Py_buffer) {
    // SAFETY: `internal` is the boxed slice of `2 * ndim` values `get_buffer` leaked.
    unsafe {
        let ndim = (*view).ndim as usize;
        let internal = (*view).internal as *mut ffi::Py_ssize_t;
        if !internal.is_null() {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                internal,
                2 * ndim,
            )));
            (*view).internal = std::ptr::null_mut();
        }
    }
}

/// `__cuda_array_interface__` (version 3) of a CUDA tensor: its device memory in place, with
/// the current stream, which is first made to wait (on the GPU) for the memory's pending work.
pub fn cuda_array_interface<'py>(py: Python<'py>, t: &Tensor) -> PyResult<Bound<'py, PyDict>> {
    let Device::Cuda(ordinal) = t.device() else {
        return Err(PyAttributeError::new_err(
            "__cuda_array_interface__ is only defined for CUDA arrays",
        ));
    };
    let Some(ts) = typestr(t.dtype()) else {
        return Err(PyAttributeError::new_err(
            "bfloat16 has no typestr in the CUDA array interface: use DLPack",
        ));
    };
    let stream = Stream::current(ordinal).py()?.handle();
    t.order_stream(stream).py()?;
    let d = PyDict::new(py);
    d.set_item("shape", PyTuple::new(py, t.shape())?)?;
    d.set_item("typestr", ts)?;
    d.set_item("data", (t.data_address(), false))?;
    d.set_item("version", 3)?;
    if t.layout().is_c_contiguous() {
        d.set_item("strides", py.None())?;
    } else {
        d.set_item("strides", PyTuple::new(py, byte_strides(t))?)?;
    }
    d.set_item("stream", stream)?;
    Ok(d)
}

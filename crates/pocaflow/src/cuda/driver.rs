//! Finding the CUDA libraries, initializing the driver once, and turning driver, cuBLASLt and
//! NVRTC errors into [`Error`]s that carry the CUDA error name.
//!
//! cudarc loads libraries with `dlopen` on first use and panics when one is missing, so every
//! entry point checks presence here first: without CUDA, pocaflow still works on the CPU and CUDA
//! calls return [`Error::Device`] saying what is missing.

use crate::error::{Error, Result};
use cudarc::driver::{result as dr, sys as ds, DriverError};
use std::sync::OnceLock;

/// The oldest driver API the bindings need (cudarc's `cuda-13000` bindings).
const MIN_DRIVER_VERSION: i32 = 13000;

/// Initializes the driver once; afterwards returns the number of visible devices, or why CUDA is
/// not usable.
pub(crate) fn init() -> Result<usize> {
    static INIT: OnceLock<Result<usize>> = OnceLock::new();
    INIT.get_or_init(|| {
        // cudarc panics when a library or symbol is missing: turn any panic into an error.
        std::panic::catch_unwind(init_once).unwrap_or_else(|_| {
            Err(Error::Device(
                "CUDA is not usable: loading the CUDA libraries failed (a library or symbol is \
                 missing)"
                    .into(),
            ))
        })
    })
    .clone()
}

fn init_once() -> Result<usize> {
    // SAFETY: the presence checks only dlopen/dlclose candidate names.
    let present = |name: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Error::Device(format!(
                "CUDA is not available: the {name} library was not found (install the NVIDIA \
                 driver and the CUDA 13 libraries, or the nvidia-cublas pip wheel)"
            )))
        }
    };
    present("CUDA driver (libcuda.so)", unsafe {
        ds::is_culib_present()
    })?;
    present("cuBLASLt (libcublasLt.so.13)", unsafe {
        cudarc::cublaslt::sys::is_culib_present()
    })?;
    present("NVRTC (libnvrtc.so.13)", unsafe {
        cudarc::nvrtc::sys::is_culib_present()
    })?;
    dr::init().map_err(|e| cuda_err("cuInit", e))?;
    let mut version = 0;
    // SAFETY: writes one int.
    unsafe { ds::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(|e| cuda_err("cuDriverGetVersion", e))?;
    if version < MIN_DRIVER_VERSION {
        return Err(Error::Device(format!(
            "CUDA driver {}.{} is too old: pocaflow needs a driver for CUDA 13.0 or newer",
            version / 1000,
            version % 1000 / 10
        )));
    }
    let count = dr::device::get_count().map_err(|e| cuda_err("cuDeviceGetCount", e))?;
    Ok(count.max(0) as usize)
}

/// The CUDA name of a driver error, e.g. `CUDA_ERROR_INVALID_VALUE`.
pub(crate) fn error_name(e: DriverError) -> String {
    e.error_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", e.0))
}

/// A driver error from `op` as an [`Error`]: out of memory becomes [`Error::OutOfMemory`].
pub(crate) fn cuda_err(op: &str, e: DriverError) -> Error {
    if e.0 == ds::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        Error::OutOfMemory(format!("{op}: CUDA_ERROR_OUT_OF_MEMORY"))
    } else {
        Error::Cuda(format!("{op} failed: {}", error_name(e)))
    }
}

/// `.cuda(op)` on a driver `Result`.
pub(crate) trait DriverResultExt<T> {
    /// Maps the error with [`cuda_err`].
    fn cuda(self, op: &str) -> Result<T>;
}

impl<T> DriverResultExt<T> for std::result::Result<T, DriverError> {
    fn cuda(self, op: &str) -> Result<T> {
        self.map_err(|e| cuda_err(op, e))
    }
}

/// A cuBLASLt status as an [`Error`].
pub(crate) fn blas_err(op: &str, e: cudarc::cublaslt::result::CublasError) -> Error {
    // SAFETY: cublasLtGetStatusName returns a static NUL-terminated string for any status.
    let name =
        unsafe { std::ffi::CStr::from_ptr(cudarc::cublaslt::sys::cublasLtGetStatusName(e.0)) };
    Error::Cuda(format!("{op} failed: {}", name.to_string_lossy()))
}

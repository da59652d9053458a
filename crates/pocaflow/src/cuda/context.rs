//! Per-device state, made once and lazily: the primary context, the default (non-blocking)
//! stream, the caching allocator, the cuBLASLt handle with its workspaces and plan cache, the
//! cuSPARSE handle, and the NVRTC-compiled kernels.

use super::blaslt::BlasLt;
use super::driver::{self, DriverResultExt};
use super::kernels::Kernels;
use super::memory::{DeferredReleases, Pool};
use super::pinned::Staging;
use super::sparse::Sparse;
use super::stream::StreamInner;
use crate::error::{Error, Result};
use cudarc::driver::{result as dr, sys as ds};
use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything pocaflow keeps for one CUDA device.
#[derive(Debug)]
pub(crate) struct DeviceState {
    pub(crate) ordinal: usize,
    ctx: ds::CUcontext,
    default_stream: OnceLock<Result<Arc<StreamInner>>>,
    pub(crate) pool: Mutex<Pool>,
    /// Owners of foreign memory waiting for their last GPU work (see `DeferredReleases`).
    pub(crate) deferred: DeferredReleases,
    staging: Mutex<Staging>,
    pub(crate) blaslt: OnceLock<Result<Mutex<BlasLt>>>,
    cusparse: OnceLock<Result<Mutex<Sparse>>>,
    kernels: Kernels,
}

// SAFETY: the context handle is process-wide and usable from any thread once made current there
// (`bind`); everything mutable is behind a Mutex or a OnceLock.
unsafe impl Send for DeviceState {}
// SAFETY: as above.
unsafe impl Sync for DeviceState {}

thread_local! {
    /// The context this thread last made current (so `bind` is one comparison when it is).
    static BOUND: Cell<usize> = const { Cell::new(0) };
}

impl DeviceState {
    fn new(ordinal: usize) -> Result<DeviceState> {
        let cu_device = dr::device::get(ordinal as i32).cuda("cuDeviceGet")?;
        // SAFETY: retains the primary context; it is released never (it lives as long as the
        // process, like the driver's own).
        let ctx = unsafe { dr::primary_ctx::retain(cu_device) }.cuda("cuDevicePrimaryCtxRetain")?;
        let attr = |a| {
            // SAFETY: reads one attribute of a valid device.
            unsafe { dr::device::get_attribute(cu_device, a) }.cuda("cuDeviceGetAttribute")
        };
        let major = attr(ds::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attr(ds::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        Ok(DeviceState {
            ordinal,
            ctx,
            default_stream: OnceLock::new(),
            pool: Mutex::new(Pool::new(ordinal)),
            deferred: DeferredReleases::default(),
            staging: Mutex::new(Staging::default()),
            blaslt: OnceLock::new(),
            cusparse: OnceLock::new(),
            kernels: Kernels::new(major, minor),
        })
    }

    /// Makes this device's context current on the calling thread.
    pub(crate) fn bind(&self) -> Result<()> {
        let key = self.ctx as usize;
        if BOUND.with(Cell::get) == key {
            return Ok(());
        }
        // SAFETY: the context was retained in `new` and is never released.
        unsafe { dr::ctx::set_current(self.ctx) }.cuda("cuCtxSetCurrent")?;
        BOUND.with(|b| b.set(key));
        Ok(())
    }

    /// The raw context handle.
    pub(crate) fn ctx(&self) -> ds::CUcontext {
        self.ctx
    }

    /// The stream work goes to when a thread has not chosen another (made on first use).
    pub(crate) fn default_stream(self: &Arc<Self>) -> Result<Arc<StreamInner>> {
        self.default_stream
            .get_or_init(|| StreamInner::new(self.clone()))
            .clone()
    }

    /// The pool, locked (a poisoned lock only means a panic elsewhere; the pool stays valid).
    pub(crate) fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pinned staging buffers, locked (one transfer at a time per device).
    pub(crate) fn staging(&self) -> std::sync::MutexGuard<'_, Staging> {
        self.staging.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cuBLASLt state, made on first use.
    pub(crate) fn blaslt(&self) -> Result<std::sync::MutexGuard<'_, BlasLt>> {
        let lt = self
            .blaslt
            .get_or_init(|| {
                self.bind()?;
                BlasLt::new().map(Mutex::new)
            })
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(lt.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The cuSPARSE state, made on first use.
    pub(crate) fn cusparse(&self) -> Result<std::sync::MutexGuard<'_, Sparse>> {
        let sparse = self
            .cusparse
            .get_or_init(|| {
                self.bind()?;
                Sparse::new().map(Mutex::new)
            })
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(sparse.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The NVRTC kernels (each module compiled and loaded on first use: callers bind the
    /// device first).
    pub(crate) fn kernels(&self) -> &Kernels {
        &self.kernels
    }
}

/// The state of CUDA device `ordinal`, made on first use.
///
/// # Errors
/// [`Error::Device`] if CUDA is not usable or `ordinal` is out of range.
pub(crate) fn device(ordinal: usize) -> Result<Arc<DeviceState>> {
    static DEVICES: OnceLock<Vec<OnceLock<Result<Arc<DeviceState>>>>> = OnceLock::new();
    let count = driver::init()?;
    let devices = DEVICES.get_or_init(|| (0..count).map(|_| OnceLock::new()).collect());
    let slot = devices.get(ordinal).ok_or_else(|| {
        Error::Device(format!(
            "CUDA device cuda:{ordinal} requested but only {count} device(s) are visible"
        ))
    })?;
    slot.get_or_init(|| DeviceState::new(ordinal).map(Arc::new))
        .clone()
}

//! The CUDA backend: device buffers in a stream-ordered caching allocator, pinned staging for
//! host transfers, cuBLASLt matmul, and NVRTC kernels for every backend primitive
//! ([`storage`]: copies and casts, fills, ranges, triangles, gathers, scatters, nonzero, masked
//! copies, random numbers; [`elementwise`] and [`reduce`]: elementwise functions, reductions and
//! scans). It sees buffers, dtypes, layouts and plans only, never a tensor.
//!
//! Built on cudarc's `result`/`sys` layers with dynamic loading (building needs no CUDA). No
//! operation here waits for the GPU except reading device data on the host (downloads, and the
//! counts and error flags of `nonzero`, gathers and scatters), `synchronize` calls, and
//! `empty_cache`.

mod blaslt;
mod context;
mod driver;
mod elementwise;
mod kernels;
mod loss;
mod matmul;
mod memory;
pub(crate) mod nccl;
mod pinned;
mod reduce;
mod rowwise;
mod sparse;
mod storage;
mod stream;

pub use memory::{DeviceBuffer, MemoryStats};
pub(crate) use storage::CudaStorage;
pub use stream::{Event, Stream};

use crate::error::Result;
use context::device;
use cudarc::driver::result as dr;
use driver::DriverResultExt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Number of visible CUDA devices.
///
/// # Errors
/// [`crate::Error::Device`] saying what is missing when CUDA is not usable.
pub fn device_count() -> Result<usize> {
    driver::init()
}

/// Whether at least one CUDA device is usable.
pub fn is_available() -> bool {
    device_count().is_ok_and(|n| n > 0)
}

/// Blocks the host until all work on CUDA device `ordinal` is done.
///
/// # Errors
/// CUDA errors, including those of earlier asynchronous work.
pub fn synchronize(ordinal: usize) -> Result<()> {
    let d = device(ordinal)?;
    d.bind()?;
    dr::ctx::synchronize().cuda("cuCtxSynchronize")?;
    d.deferred.poll();
    Ok(())
}

/// The allocator counters of CUDA device `ordinal`.
///
/// # Errors
/// [`crate::Error::Device`] if the device is not available.
pub fn memory_stats(ordinal: usize) -> Result<MemoryStats> {
    Ok(device(ordinal)?.pool().stats())
}

/// Returns the cached, unused memory of device `ordinal` to the driver (waits for the device).
///
/// # Errors
/// CUDA errors.
pub fn empty_cache(ordinal: usize) -> Result<()> {
    let d = device(ordinal)?;
    d.bind()?;
    let mut pool = d.pool();
    pool.empty_cache()
}

/// How float32 matmuls may compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulPrecision {
    /// Strict IEEE float32 arithmetic (`CUBLAS_COMPUTE_32F`), the default.
    Highest,
    /// TF32 tensor cores for float32 inputs (`CUBLAS_COMPUTE_32F_FAST_TF32`): about 10 bits of
    /// mantissa in the products, several times faster.
    High,
    /// Three TF32 products on the tensor cores: each float32 operand is split into a TF32 high
    /// part and a TF32 low part (`x = hi + lo`, each rounded to nearest), and
    /// `A B ~ hi_A lo_B + lo_A hi_B + hi_A hi_B` runs as one TF32 product over `3 k` (the
    /// small terms first along k). About 21 of float32's 24 bits, at about twice the strict
    /// speed on large products (`cuda/matmul.rs` has the measured errors). The operands must be
    /// finite: an infinity meets the zero low part of the other operand, so a product that
    /// strict float32 makes infinite is NaN here (NaN inputs give NaN in both). Small products
    /// that run in pocaflow's own kernel stay strict.
    Tf32x3,
}

static PRECISION: AtomicU8 = AtomicU8::new(0);

/// Sets the float32 matmul precision for all devices.
pub fn set_matmul_precision(p: MatmulPrecision) {
    PRECISION.store(p as u8, Ordering::Relaxed);
}

/// The float32 matmul precision in force.
pub fn matmul_precision() -> MatmulPrecision {
    match PRECISION.load(Ordering::Relaxed) {
        1 => MatmulPrecision::High,
        2 => MatmulPrecision::Tf32x3,
        _ => MatmulPrecision::Highest,
    }
}

/// Default of [`set_small_matmul_threshold`]: 128 x 128 x 128 and below.
pub const DEFAULT_SMALL_MATMUL_THRESHOLD: u64 = 1 << 21;

static SMALL_MATMUL_THRESHOLD: AtomicU64 = AtomicU64::new(DEFAULT_SMALL_MATMUL_THRESHOLD);

/// Sets the size up to which float32 and float64 matmuls on CUDA skip cuBLASLt: products of at
/// most `multiply_adds` multiply-adds (m x n x k, times the batch) and an inner dimension k of
/// at most 128 run in pocaflow's own kernel (one launch per batch group, usually one). For them
/// the host cost of a `cublasLtMatmul` call (9-16 us per call on the H100 machine, against 5-9
/// us per call through pocaflow's kernel) exceeds the GPU work. The kernel computes in strict float32 or
/// float64 with fused multiply-adds, so results keep the same error bounds (TF32 is never
/// used there). `0` sends every product to cuBLASLt; float16 and bfloat16 always go there.
pub fn set_small_matmul_threshold(multiply_adds: u64) {
    SMALL_MATMUL_THRESHOLD.store(multiply_adds, Ordering::Relaxed);
}

/// The threshold set by [`set_small_matmul_threshold`].
pub fn small_matmul_threshold() -> u64 {
    SMALL_MATMUL_THRESHOLD.load(Ordering::Relaxed)
}

//! Host-device transfers through pinned staging buffers.
//!
//! Pageable memory moves at about 7 GB/s because the driver stages it through its own small
//! pinned buffer, one piece at a time. Instead, each device keeps a few pinned buffers of
//! [`CHUNK`] bytes: the host copies a chunk into one with several threads while the DMA engine
//! moves the previous chunk, so the copy and the transfer overlap.
//!
//! The host copies run on a pool of their own with twice as many threads as cores, each chunk
//! cut into four pieces per thread. On the GPU machine's VM this moved a 256 MiB upload at
//! 38 GB/s (median) where the compute pool with one piece per core managed 26 GB/s: more
//! copies in flight keep the memory system busier, and small pieces let idle threads take over
//! from a slow one (bench/results/gpu-2026-11-25-h100-session2.md).
//!
//! Uploads return as soon as the last chunk is staged (the DMA may still be running: the source
//! can be reused at once, and a buffer is only reused after its event completes). Downloads wait
//! for each chunk, which is what reading device data on the host means.

use super::context::DeviceState;
use super::driver::DriverResultExt;
use super::stream::{RawEvent, StreamInner};
use crate::error::Result;
use cudarc::driver::{result as dr, sys as ds};
use rayon::prelude::*;
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

/// Bytes per staging buffer.
const CHUNK: usize = 16 << 20;
/// Staging buffers per device at most; beyond this a transfer waits for the oldest one.
const MAX_BUFFERS: usize = 8;
/// Downloads keep this many chunks in flight ahead of the host copy.
const DOWNLOAD_AHEAD: usize = 4;
/// Host copies are split into pieces of at least this many bytes.
const PIECE: usize = 64 << 10;
/// Pieces per copy thread in each chunk.
const PIECES_PER_THREAD: usize = 4;
/// Copy threads per core, and in all.
const THREADS_PER_CORE: usize = 2;
const MAX_COPY_THREADS: usize = 64;

/// One pinned buffer and the event recorded after the last transfer that used it.
#[derive(Debug)]
struct PinnedBuffer {
    ptr: *mut u8,
    done: RawEvent,
    used: bool,
}

// SAFETY: the buffer is plain host memory owned by this struct; access is serialized by the
// Staging mutex.
unsafe impl Send for PinnedBuffer {}

impl PinnedBuffer {
    fn new(device: &Arc<DeviceState>) -> Result<PinnedBuffer> {
        device.bind()?;
        // SAFETY: allocates CHUNK bytes of page-locked host memory; flags 0 (not
        // write-combined, so the CPU reads it at full speed).
        let ptr = unsafe { dr::malloc_host(CHUNK, 0) }.cuda("cuMemHostAlloc")? as *mut u8;
        Ok(PinnedBuffer {
            ptr,
            done: RawEvent::new(device, false)?,
            used: false,
        })
    }

    /// The first `len` bytes, for the host to fill or read. The caller has waited for `done`.
    fn bytes(&mut self, len: usize) -> &mut [u8] {
        // SAFETY: ptr holds CHUNK bytes, len <= CHUNK, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, len.min(CHUNK)) }
    }
}

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        if self.done.device.bind().is_ok() && self.done.synchronize().is_ok() {
            // SAFETY: allocated by cuMemHostAlloc and no transfer uses it any more.
            let _ = unsafe { dr::free_host(self.ptr as *mut std::ffi::c_void) };
        }
    }
}

/// A device's staging buffers, least recently used first.
#[derive(Debug, Default)]
pub(crate) struct Staging {
    buffers: VecDeque<PinnedBuffer>,
    count: usize,
}

impl Staging {
    /// A buffer no transfer is using: an idle one, a new one while under [`MAX_BUFFERS`], or
    /// else the oldest after waiting for its transfer.
    fn acquire(&mut self, device: &Arc<DeviceState>) -> Result<PinnedBuffer> {
        if let Some(i) = self
            .buffers
            .iter()
            .position(|b| !b.used || b.done.query().unwrap_or(false))
        {
            return Ok(self.buffers.remove(i).expect("index is in range"));
        }
        if self.count < MAX_BUFFERS || self.buffers.is_empty() {
            self.count += 1;
            return PinnedBuffer::new(device);
        }
        let oldest = self
            .buffers
            .pop_front()
            .expect("all buffers are in the queue");
        oldest.done.synchronize()?;
        Ok(oldest)
    }
}

/// The thread pool of the staging copies, made on first use; `None` (use rayon's global pool)
/// if its threads cannot be started.
fn copy_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads((THREADS_PER_CORE * cores).min(MAX_COPY_THREADS))
            .thread_name(|i| format!("pocaflow-copy-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Copies `src` into `dst` with several threads (page faults of fresh memory run in parallel).
/// Called from a rayon worker, it copies on that thread alone: waiting there for the copy pool
/// would let the worker run other jobs meanwhile, and one of them could be a transfer that
/// blocks on the staging lock its own thread already holds.
fn parallel_copy(dst: &mut [u8], src: &[u8]) {
    // Small copies (and copies from a pool thread) stay on this thread: handing them to the
    // pool costs a wake-up, tens of microseconds on these VMs, far more than the copy.
    if src.len() <= PIECE || rayon::current_thread_index().is_some() {
        dst.copy_from_slice(src);
        return;
    }
    let mut copy = move || {
        let pieces = PIECES_PER_THREAD * rayon::current_num_threads().max(1);
        let piece = src.len().div_ceil(pieces).max(PIECE);
        dst.par_chunks_mut(piece)
            .zip(src.par_chunks(piece))
            .for_each(|(d, s)| d.copy_from_slice(s));
    };
    match copy_pool() {
        Some(pool) => pool.install(copy),
        None => copy(),
    }
}

/// Enqueues the copy of `src` to device address `dst` on `stream`.
pub(crate) fn upload(stream: &Arc<StreamInner>, dst: u64, src: &[u8]) -> Result<()> {
    let device = &stream.device;
    device.bind()?;
    let mut staging = device.staging();
    for (i, chunk) in src.chunks(CHUNK).enumerate() {
        let mut buf = staging.acquire(device)?;
        parallel_copy(buf.bytes(chunk.len()), chunk);
        let at = dst + (i * CHUNK) as u64;
        // SAFETY: the pinned buffer holds chunk.len() bytes and stays untouched until `done`
        // completes; `dst` has room for src.len() bytes (the caller's buffer).
        let r =
            unsafe { ds::cuMemcpyHtoDAsync_v2(at, buf.ptr as *const _, chunk.len(), stream.raw) }
                .result();
        r.cuda("cuMemcpyHtoDAsync")?;
        buf.done.record(stream)?;
        buf.used = true;
        staging.buffers.push_back(buf);
    }
    Ok(())
}

/// Copies `dst.len()` bytes from device address `src` into `dst`, after the work queued on
/// `stream`; returns when `dst` holds them.
pub(crate) fn download(stream: &Arc<StreamInner>, dst: &mut [u8], src: u64) -> Result<()> {
    let device = &stream.device;
    device.bind()?;
    let mut staging = device.staging();
    let mut in_flight: VecDeque<(PinnedBuffer, usize)> = VecDeque::new();
    let finish = |buf: &mut PinnedBuffer, dst: &mut [u8], off: usize| -> Result<()> {
        buf.done.synchronize()?;
        let len = CHUNK.min(dst.len() - off);
        parallel_copy(&mut dst[off..off + len], buf.bytes(len));
        Ok(())
    };
    let total = dst.len();
    for off in (0..total).step_by(CHUNK) {
        let len = CHUNK.min(total - off);
        let mut buf = staging.acquire(device)?;
        // SAFETY: the pinned buffer has room for len bytes; `src` holds `total` bytes.
        let r = unsafe {
            ds::cuMemcpyDtoHAsync_v2(buf.ptr as *mut _, src + off as u64, len, stream.raw)
        }
        .result();
        r.cuda("cuMemcpyDtoHAsync")?;
        buf.done.record(stream)?;
        buf.used = true;
        in_flight.push_back((buf, off));
        // Keep chunks in flight: their DMA overlaps the host copy of the oldest.
        if in_flight.len() > DOWNLOAD_AHEAD {
            let (mut b, o) = in_flight.pop_front().expect("non-empty");
            finish(&mut b, dst, o)?;
            staging.buffers.push_back(b);
        }
    }
    while let Some((mut b, o)) = in_flight.pop_front() {
        finish(&mut b, dst, o)?;
        staging.buffers.push_back(b);
    }
    Ok(())
}

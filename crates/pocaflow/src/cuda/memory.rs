//! The caching device allocator, one per device (after PyTorch's `CUDACachingAllocator`).
//!
//! - Sizes are rounded up to 512 bytes. Requests up to 1 MiB ("small") are carved from 2 MiB
//!   segments; larger ones from segments rounded up to 2 MiB. A block larger than the request is
//!   split when the rest is worth keeping (512 bytes for small, 1 MiB for large), and freed
//!   neighbours of one segment and stream merge again.
//! - Reuse is stream-ordered: a freed block remembers the stream it was used on and is handed out
//!   again on that stream at once (the stream's order makes it safe). A request on another stream
//!   may take it after an event: that stream waits on the GPU for the block's stream, the host
//!   never blocks.
//! - A buffer used on streams besides the one it was allocated on records them; when it is freed
//!   its home stream waits (on the GPU) for each of them before the block is reused.
//! - When the driver is out of memory, the cache is emptied and the allocation retried once,
//!   then [`Error::OutOfMemory`] is returned.

use super::context::DeviceState;
use super::driver::{cuda_err, DriverResultExt};
use super::stream::{RawEvent, StreamInner};
use crate::error::{Error, Result};
use cudarc::driver::{result as dr, sys as ds, DriverError};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const ROUND: usize = 512;
const SMALL_MAX: usize = 1 << 20;
const SMALL_SEGMENT: usize = 2 << 20;
const LARGE_ROUND: usize = 2 << 20;
const LARGE_SPLIT_MIN: usize = 1 << 20;

/// Counters of one device's allocator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes in blocks handed out and not yet freed (rounded sizes).
    pub allocated_bytes: usize,
    /// Bytes held from the driver (in use or cached).
    pub reserved_bytes: usize,
    /// The largest `allocated_bytes` seen.
    pub peak_allocated_bytes: usize,
    /// Calls to `cuMemAlloc`.
    pub driver_allocations: u64,
    /// Calls to `cuMemFree`.
    pub driver_frees: u64,
    /// Requests served from the cache.
    pub cache_hits: u64,
    /// Requests that needed a new segment from the driver.
    pub cache_misses: u64,
}

#[derive(Debug)]
struct Block {
    size: usize,
    segment: u64,
    free: bool,
    small: bool,
    stream: Arc<StreamInner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FreeKey {
    small: bool,
    stream: u64,
    size: usize,
    ptr: u64,
}

/// One device's blocks, free index and counters. Callers make the device current first.
#[derive(Debug)]
pub(crate) struct Pool {
    ordinal: usize,
    blocks: BTreeMap<u64, Block>,
    free: BTreeSet<FreeKey>,
    segments: BTreeMap<u64, usize>,
    stats: MemoryStats,
}

impl Pool {
    pub(crate) fn new(ordinal: usize) -> Pool {
        Pool {
            ordinal,
            blocks: BTreeMap::new(),
            free: BTreeSet::new(),
            segments: BTreeMap::new(),
            stats: MemoryStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        self.stats
    }

    fn key(ptr: u64, b: &Block) -> FreeKey {
        FreeKey {
            small: b.small,
            stream: b.stream.id,
            size: b.size,
            ptr,
        }
    }

    /// A block of at least `bytes` for use on `stream`.
    fn alloc(&mut self, bytes: usize, stream: &Arc<StreamInner>) -> Result<u64> {
        let size = bytes.max(1).div_ceil(ROUND) * ROUND;
        let small = size <= SMALL_MAX;
        let lo = FreeKey {
            small,
            stream: stream.id,
            size,
            ptr: 0,
        };
        let same = self
            .free
            .range(lo..)
            .next()
            .copied()
            .filter(|k| k.small == small && k.stream == stream.id);
        if let Some(k) = same {
            self.stats.cache_hits += 1;
            return Ok(self.take(k, size, stream));
        }
        let other = self
            .free
            .iter()
            .filter(|k| k.small == small && k.size >= size)
            .min_by_key(|k| k.size)
            .copied();
        if let Some(k) = other {
            // The block's last uses are on another stream: order them before the new ones.
            stream.wait_for(&self.blocks[&k.ptr].stream)?;
            self.stats.cache_hits += 1;
            return Ok(self.take(k, size, stream));
        }
        self.stats.cache_misses += 1;
        let seg = if small {
            SMALL_SEGMENT
        } else {
            size.div_ceil(LARGE_ROUND) * LARGE_ROUND
        };
        let ptr = self.driver_alloc(seg)?;
        self.segments.insert(ptr, seg);
        let block = Block {
            size: seg,
            segment: ptr,
            free: true,
            small,
            stream: stream.clone(),
        };
        let k = Pool::key(ptr, &block);
        self.blocks.insert(ptr, block);
        self.free.insert(k);
        Ok(self.take(k, size, stream))
    }

    fn take(&mut self, k: FreeKey, size: usize, stream: &Arc<StreamInner>) -> u64 {
        self.free.remove(&k);
        let block = self
            .blocks
            .get_mut(&k.ptr)
            .expect("free index matches blocks");
        let split_min = if block.small { ROUND } else { LARGE_SPLIT_MIN };
        if block.size - size >= split_min {
            let rest = Block {
                size: block.size - size,
                segment: block.segment,
                free: true,
                small: block.small,
                stream: block.stream.clone(),
            };
            block.size = size;
            let rest_ptr = k.ptr + size as u64;
            self.free.insert(Pool::key(rest_ptr, &rest));
            self.blocks.insert(rest_ptr, rest);
        }
        let block = self.blocks.get_mut(&k.ptr).expect("block exists");
        block.free = false;
        block.stream = stream.clone();
        self.stats.allocated_bytes += block.size;
        self.stats.peak_allocated_bytes = self
            .stats
            .peak_allocated_bytes
            .max(self.stats.allocated_bytes);
        k.ptr
    }

    /// Returns a block to the cache, merging it with free neighbours of the same stream.
    fn release(&mut self, ptr: u64) {
        let Some(block) = self.blocks.get_mut(&ptr) else {
            return;
        };
        block.free = true;
        self.stats.allocated_bytes -= block.size;
        let (mut start, seg, stream) = (ptr, block.segment, block.stream.id);
        let mergeable = |b: &Block| b.free && b.segment == seg && b.stream.id == stream;
        // Merge with the next block.
        let next = ptr + self.blocks[&ptr].size as u64;
        if self.blocks.get(&next).is_some_and(mergeable) {
            let nb = self.blocks.remove(&next).expect("checked");
            self.free.remove(&Pool::key(next, &nb));
            self.blocks.get_mut(&ptr).expect("exists").size += nb.size;
        }
        // Merge into the previous block.
        if let Some((&pp, pb)) = self.blocks.range(..ptr).next_back() {
            if mergeable(pb) && pp + pb.size as u64 == ptr {
                self.free.remove(&Pool::key(pp, pb));
                let b = self.blocks.remove(&ptr).expect("exists");
                self.blocks.get_mut(&pp).expect("exists").size += b.size;
                start = pp;
            }
        }
        let k = Pool::key(start, &self.blocks[&start]);
        self.free.insert(k);
    }

    fn driver_alloc(&mut self, size: usize) -> Result<u64> {
        // SAFETY: allocates device memory in the current context (callers bind first).
        let first = unsafe { dr::malloc_sync(size) };
        let ptr = match first {
            Ok(p) => p,
            Err(DriverError(ds::CUresult::CUDA_ERROR_OUT_OF_MEMORY)) => {
                self.empty_cache()?;
                // SAFETY: as above.
                match unsafe { dr::malloc_sync(size) } {
                    Ok(p) => p,
                    Err(DriverError(ds::CUresult::CUDA_ERROR_OUT_OF_MEMORY)) => {
                        return Err(Error::OutOfMemory(format!(
                            "CUDA out of memory on cuda:{} allocating {} MiB ({} MiB in use by \
                             pocaflow; the cache was emptied and the allocation retried)",
                            self.ordinal,
                            size >> 20,
                            self.stats.allocated_bytes >> 20
                        )))
                    }
                    Err(e) => return Err(cuda_err("cuMemAlloc", e)),
                }
            }
            Err(e) => return Err(cuda_err("cuMemAlloc", e)),
        };
        self.stats.driver_allocations += 1;
        self.stats.reserved_bytes += size;
        Ok(ptr)
    }

    /// Gives every wholly free segment back to the driver. Waits for the device first, since a
    /// cached block may still be in use by queued work.
    pub(crate) fn empty_cache(&mut self) -> Result<()> {
        let idle: Vec<u64> = self
            .segments
            .iter()
            .filter(|(p, &s)| self.blocks.get(p).is_some_and(|b| b.free && b.size == s))
            .map(|(&p, _)| p)
            .collect();
        if idle.is_empty() {
            return Ok(());
        }
        dr::ctx::synchronize().cuda("cuCtxSynchronize")?;
        for p in idle {
            let b = self.blocks.remove(&p).expect("checked");
            self.free.remove(&Pool::key(p, &b));
            self.segments.remove(&p);
            // SAFETY: the segment came from cuMemAlloc, is wholly free and the device is idle.
            unsafe { dr::free_sync(p) }.cuda("cuMemFree")?;
            self.stats.driver_frees += 1;
            self.stats.reserved_bytes -= b.size;
        }
        Ok(())
    }
}

/// Whatever keeps device memory of another library alive (a DLPack capsule's managed tensor,
/// say): dropping it gives the memory back to its owner.
pub(crate) struct ForeignOwner(#[allow(dead_code)] pub(crate) Box<dyn Any + Send + Sync>);

impl std::fmt::Debug for ForeignOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignOwner")
    }
}

/// The foreign owners of dropped buffers whose last GPU work may still be queued: each is
/// dropped once its event has completed, checked (never waited for) when memory is allocated
/// or another foreign buffer is dropped, and after a device-wide synchronize.
#[derive(Debug, Default)]
pub(crate) struct DeferredReleases(Mutex<Vec<(RawEvent, ForeignOwner)>>);

impl DeferredReleases {
    fn push(&self, event: RawEvent, owner: ForeignOwner) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((event, owner));
    }

    /// Drops the owners whose GPU work is done (or whose event failed: the device is broken
    /// and nothing is gained by holding the memory). The owners run outside the lock.
    pub(crate) fn poll(&self) {
        let done: Vec<(RawEvent, ForeignOwner)> = {
            let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if pending.is_empty() {
                return;
            }
            let (done, keep) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|(ev, _)| ev.query().unwrap_or(true));
            *pending = keep;
            done
        };
        drop(done);
    }
}

/// Who gives a buffer's memory back.
#[derive(Debug)]
enum Release {
    /// The caching allocator: the block returns to the cache.
    Pool,
    /// Another library: its owner is dropped after the GPU work that used the memory.
    Foreign(ForeignOwner),
}

/// Device memory for `len` elements: from the caching allocator (returned to the cache when
/// dropped, after the GPU work that uses it, by stream order), or another library's memory that
/// pocaflow uses without owning it.
#[derive(Debug)]
pub struct DeviceBuffer {
    ptr: u64,
    len: usize,
    device: Arc<DeviceState>,
    home: Arc<StreamInner>,
    other_streams: Mutex<Vec<Arc<StreamInner>>>,
    release: Release,
}

impl DeviceBuffer {
    /// `bytes` of device memory for `len` elements, for use on `stream` (contents undefined).
    pub(crate) fn alloc(
        device: &Arc<DeviceState>,
        len: usize,
        bytes: usize,
        stream: &Arc<StreamInner>,
    ) -> Result<DeviceBuffer> {
        device.bind()?;
        device.deferred.poll();
        let ptr = device.pool().alloc(bytes, stream)?;
        Ok(DeviceBuffer {
            ptr,
            len,
            device: device.clone(),
            home: stream.clone(),
            other_streams: Mutex::new(Vec::new()),
            release: Release::Pool,
        })
    }

    /// Another library's memory: `len` elements at `ptr`, kept alive by `owner`, ready for use
    /// on `stream` (the caller ordered `stream` after the owner's work on it).
    ///
    /// # Safety
    /// `ptr` must address at least `len` elements of the buffer's dtype in memory of `device`,
    /// valid for reads and writes as long as `owner` lives.
    pub(crate) unsafe fn foreign(
        device: &Arc<DeviceState>,
        ptr: u64,
        len: usize,
        stream: &Arc<StreamInner>,
        owner: ForeignOwner,
    ) -> DeviceBuffer {
        DeviceBuffer {
            ptr,
            len,
            device: device.clone(),
            home: stream.clone(),
            other_streams: Mutex::new(Vec::new()),
            release: Release::Foreign(owner),
        }
    }

    /// The device address of element 0.
    pub(crate) fn ptr(&self) -> u64 {
        self.ptr
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The device this memory is on.
    pub(crate) fn device(&self) -> &Arc<DeviceState> {
        &self.device
    }

    /// Makes `stream` wait (on the GPU) for all work queued so far on every stream that used
    /// this buffer, so that reading it on `stream` sees that work's results.
    pub(crate) fn order_after_uses(&self, stream: &StreamInner) -> Result<()> {
        stream.wait_for(&self.home)?;
        let others = self
            .other_streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for s in others {
            stream.wait_for(&s)?;
        }
        Ok(())
    }

    /// Notes that queued work on `stream` uses this buffer, so that freeing it waits for that
    /// work too (PyTorch's `record_stream`).
    pub(crate) fn record_use(&self, stream: &Arc<StreamInner>) {
        if stream.same(&self.home) {
            return;
        }
        let mut others = self.other_streams.lock().unwrap_or_else(|e| e.into_inner());
        if !others.iter().any(|s| s.same(stream)) {
            others.push(stream.clone());
        }
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if self.device.bind().is_err() {
            return;
        }
        let others = std::mem::take(
            self.other_streams
                .get_mut()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for s in others {
            // If this fails the device is broken and the block is not reused safely: leak it.
            if self.home.wait_for(&s).is_err() {
                return;
            }
        }
        match std::mem::replace(&mut self.release, Release::Pool) {
            Release::Pool => self.device.pool().release(self.ptr),
            Release::Foreign(owner) => {
                // The owner may free or reuse the memory at once: it goes when the GPU work
                // queued on the memory so far is done. If the event cannot be made or recorded,
                // the device is broken: the owner is kept (leaked) rather than risk a reuse.
                let Ok(ev) = RawEvent::new(&self.device, false) else {
                    std::mem::forget(owner);
                    return;
                };
                if ev.record(&self.home).is_err() {
                    std::mem::forget(owner);
                    return;
                }
                self.device.deferred.push(ev, owner);
                self.device.deferred.poll();
            }
        }
    }
}

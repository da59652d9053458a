//! Large host allocations kept for reuse. A freed block of 64 MiB goes back to the kernel at
//! once (glibc serves blocks this large with `mmap`), and the next array of that size takes a
//! page fault on the first write of each 4 KiB page: about 25 ms for 64 MiB on the 2-core
//! development machine, several times the arithmetic of an `a + b` or a softmax that fills it.
//! So freed blocks of at least [`MIN_BYTES`] wait here, by exact size and alignment, up to a
//! total of [`cap_bytes`]; an allocation that will be overwritten anyway (a new array an
//! operation writes in full) takes one back with its old contents. Allocations that must be
//! zeros never come from here.

use std::alloc::Layout;
use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock};

/// Blocks smaller than this are left to the allocator (it keeps them itself).
pub(crate) const MIN_BYTES: usize = 1 << 20;

/// The most bytes the cache holds: `POCAFLOW_HOST_CACHE_MIB` (0 turns it off), else 1 GiB.
pub(crate) fn cap_bytes() -> usize {
    static CAP: OnceLock<usize> = OnceLock::new();
    *CAP.get_or_init(|| {
        std::env::var("POCAFLOW_HOST_CACHE_MIB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(1 << 30, |mib| mib.saturating_mul(1 << 20))
    })
}

/// The free blocks (addresses by size and alignment) and their total size.
#[derive(Default)]
struct Blocks {
    free: BTreeMap<(usize, usize), Vec<usize>>,
    bytes: usize,
}

fn blocks() -> std::sync::MutexGuard<'static, Blocks> {
    static BLOCKS: OnceLock<Mutex<Blocks>> = OnceLock::new();
    BLOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A cached block of exactly `layout`, if one is free. Its contents are whatever its last
/// owner left: initialized bytes, since every block held here was allocated zeroed.
pub(crate) fn take(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() < MIN_BYTES {
        return None;
    }
    let mut b = blocks();
    let list = b.free.get_mut(&(layout.size(), layout.align()))?;
    let ptr = list.pop()?;
    if list.is_empty() {
        b.free.remove(&(layout.size(), layout.align()));
    }
    b.bytes -= layout.size();
    NonNull::new(ptr as *mut u8)
}

/// Gives back a block of the global allocator allocated with `layout`: kept for reuse when it
/// is large and fits under the cap (other sizes are evicted, largest first, to make room),
/// else freed.
///
/// # Safety
/// `ptr` must have been allocated by the global allocator with `layout`, and nothing may use
/// it afterwards.
pub(crate) unsafe fn give(ptr: NonNull<u8>, layout: Layout) {
    let size = layout.size();
    let cap = cap_bytes();
    if size < MIN_BYTES || size > cap {
        // SAFETY: the caller's contract.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        return;
    }
    let mut evicted = Vec::new();
    {
        let mut b = blocks();
        while b.bytes + size > cap {
            let Some((&key, list)) = b.free.iter_mut().next_back() else {
                break;
            };
            let p = list.pop().expect("no empty lists are kept");
            if list.is_empty() {
                b.free.remove(&key);
            }
            b.bytes -= key.0;
            evicted.push((p, key));
        }
        b.free
            .entry((size, layout.align()))
            .or_default()
            .push(ptr.as_ptr() as usize);
        b.bytes += size;
    }
    for (p, (size, align)) in evicted {
        let l = Layout::from_size_align(size, align).expect("a cached block's layout is valid");
        // SAFETY: the block was given with this layout and left the cache, so it is unused.
        unsafe { std::alloc::dealloc(p as *mut u8, l) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_large_block_is_handed_out_again() {
        let layout = Layout::from_size_align(3 * MIN_BYTES + 8, 8).unwrap();
        // SAFETY: a nonzero layout; the block is given back once.
        let p = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap();
        // SAFETY: allocated above with `layout`, unused afterwards.
        unsafe { give(p, layout) };
        assert_eq!(take(layout), Some(p));
        assert_eq!(take(layout), None);
        // SAFETY: taken back, so ours to free.
        unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
        let small = Layout::from_size_align(64, 8).unwrap();
        assert_eq!(take(small), None);
    }
}

//! Packing buffers that live as long as the thread: a GEMM (and every matrix of a batch) reuses
//! them instead of allocating. Each thread has one buffer for packed A and one for packed B per
//! element type, aligned to 64 bytes (a cache line, and a zmm register).

use std::cell::RefCell;
use std::thread::LocalKey;

/// Which packing buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Packed blocks of A (per thread).
    A,
    /// The packed block of B (on the thread that runs the GEMM).
    B,
}

/// Element types with per-thread packing buffers.
pub trait ScratchScalar: Copy + Default + 'static {
    /// The thread-local buffer for `slot`.
    fn slot(slot: Slot) -> &'static LocalKey<RefCell<Vec<Self>>>;
}

macro_rules! scratch_scalar {
    ($t:ty) => {
        impl ScratchScalar for $t {
            fn slot(slot: Slot) -> &'static LocalKey<RefCell<Vec<$t>>> {
                thread_local! {
                    static A: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                    static B: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                }
                match slot {
                    Slot::A => &A,
                    Slot::B => &B,
                }
            }
        }
    };
}

scratch_scalar!(f32);
scratch_scalar!(f64);
scratch_scalar!(u32);

/// Runs `f` on a 64-byte-aligned buffer of `len` elements from this thread's `slot`, growing it
/// if needed. If the slot is in use further up this thread's stack (a nested GEMM that rayon
/// ran on this thread while it waited), a fresh buffer is used instead.
pub fn with_scratch<T: ScratchScalar, R>(
    slot: Slot,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let pad = 64 / std::mem::size_of::<T>();
    let aligned = |v: &mut Vec<T>| {
        if v.len() < len + pad {
            v.resize(len + pad, T::default());
        }
        let off = v.as_ptr().align_offset(64).min(pad);
        off..off + len
    };
    T::slot(slot).with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            let range = aligned(&mut v);
            f(&mut v[range])
        }
        Err(_) => {
            let mut v = Vec::new();
            let range = aligned(&mut v);
            f(&mut v[range])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_reused() {
        let first = with_scratch::<f64, _>(Slot::A, 1000, |v| {
            assert_eq!(v.len(), 1000);
            assert_eq!(v.as_ptr() as usize % 64, 0);
            v.as_ptr() as usize
        });
        // The same or a smaller request gets the same memory: no allocation per product.
        for len in [1000, 10, 999] {
            let again = with_scratch::<f64, _>(Slot::A, len, |v| v.as_ptr() as usize);
            assert_eq!(again, first);
        }
        // A nested request for the same slot gets a fresh buffer.
        with_scratch::<f64, _>(Slot::A, 8, |outer| {
            let inner = with_scratch::<f64, _>(Slot::A, 8, |v| v.as_ptr() as usize);
            assert_ne!(inner, outer.as_ptr() as usize);
        });
    }
}

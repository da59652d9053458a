//! [`CpuBuffer`]: host memory of one dtype, owned or borrowed from another library (a NumPy
//! array kept alive by a handle). A core type: the CPU backend computes on it and the CUDA
//! backend stages transfers through it.

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use std::alloc::Layout as AllocLayout;
use std::any::Any;
use std::fmt;
use std::ptr::NonNull;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// The unsigned integers that stand for elements of their size in bit moves (`u8`, `u16`,
/// `u32`, `u64`).
pub trait Bits: sealed::Sealed + Copy + Send + Sync + Default + PartialEq + 'static {}
impl Bits for u8 {}
impl Bits for u16 {}
impl Bits for u32 {}
impl Bits for u64 {}

/// Runs `$body` with the type alias `$u` bound to the unsigned integer of `$size` bytes.
#[macro_export]
#[doc(hidden)]
macro_rules! with_bits {
    ($size:expr, $u:ident, $body:expr) => {
        match $size {
            1 => {
                type $u = u8;
                $body
            }
            2 => {
                type $u = u16;
                $body
            }
            4 => {
                type $u = u32;
                $body
            }
            _ => {
                type $u = u64;
                $body
            }
        }
    };
}

/// Who frees the memory of a buffer.
enum Owner {
    /// pocaflow: allocated with the global allocator in this layout.
    Own(AllocLayout),
    /// Another object (a NumPy array, say) that keeps the memory alive while it lives.
    Foreign(#[allow(dead_code)] Box<dyn Any + Send + Sync>),
}

/// `len` elements of `dtype` in host memory.
pub struct CpuBuffer {
    dtype: DType,
    len: usize,
    ptr: NonNull<u8>,
    owner: Owner,
}

// SAFETY: the buffer is plain numbers; access goes through `&`/`&mut` (and the storage's lock
// above it), and foreign owners are `Send + Sync`.
unsafe impl Send for CpuBuffer {}
// SAFETY: as above.
unsafe impl Sync for CpuBuffer {}

impl fmt::Debug for CpuBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuBuffer")
            .field("dtype", &self.dtype)
            .field("len", &self.len)
            .field("foreign", &matches!(self.owner, Owner::Foreign(_)))
            .finish()
    }
}

/// The allocation layout of `len` elements of `dtype` (every element type is aligned to its
/// size).
fn alloc_layout(dtype: DType, len: usize) -> Result<AllocLayout> {
    let size = dtype.size_in_bytes();
    len.checked_mul(size)
        .and_then(|bytes| AllocLayout::from_size_align(bytes, size).ok())
        .ok_or_else(|| too_large(dtype, len))
}

fn too_large(dtype: DType, len: usize) -> Error {
    Error::OutOfMemory(format!(
        "cannot allocate {len} elements of {dtype} ({} bytes) in host memory",
        (len as u128) * dtype.size_in_bytes() as u128
    ))
}

/// The host's memory (RAM plus swap) in bytes, read once from `/proc/meminfo`; `None` where
/// that is unknown. An allocation beyond it cannot be backed, even where the kernel would
/// promise it (overcommit) and then kill the process on first use.
fn host_memory_bytes() -> Option<u64> {
    static TOTAL: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = info.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        };
        Some(field("MemTotal:")? + field("SwapTotal:").unwrap_or(0))
    })
}

impl CpuBuffer {
    /// `len` zeros of `dtype`. The pages come zeroed from the allocator, untouched until used.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] naming the size when the host cannot provide the memory: the
    /// allocator refuses, or the size exceeds the host's RAM plus swap.
    pub fn zeros(dtype: DType, len: usize) -> Result<CpuBuffer> {
        let layout = alloc_layout(dtype, len)?;
        if host_memory_bytes().is_some_and(|total| layout.size() as u64 > total) {
            return Err(too_large(dtype, len));
        }
        let ptr = if layout.size() == 0 {
            // A dangling pointer aligned for the element type, as an empty `Vec` uses.
            NonNull::new(dtype.size_in_bytes() as *mut u8).expect("nonzero")
        } else {
            // SAFETY: the layout has a nonzero size.
            NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
                .ok_or_else(|| too_large(dtype, len))?
        };
        Ok(CpuBuffer {
            dtype,
            len,
            ptr,
            owner: Owner::Own(layout),
        })
    }

    /// `len` elements of `dtype` that the caller will overwrite in full: a large block freed
    /// earlier with its old values when one of this size is cached (see `host_cache`), else
    /// zeros. Booleans are always zeros (every byte must be 0 or 1).
    ///
    /// # Errors
    /// As [`CpuBuffer::zeros`].
    pub fn for_overwrite(dtype: DType, len: usize) -> Result<CpuBuffer> {
        let layout = alloc_layout(dtype, len)?;
        if dtype != DType::Bool {
            if let Some(ptr) = crate::host_cache::take(layout) {
                return Ok(CpuBuffer {
                    dtype,
                    len,
                    ptr,
                    owner: Owner::Own(layout),
                });
            }
        }
        CpuBuffer::zeros(dtype, len)
    }

    /// Takes over a vector without copying it.
    pub fn from_vec<T: Element>(v: Vec<T>) -> CpuBuffer {
        let boxed = v.into_boxed_slice();
        let len = boxed.len();
        let layout = AllocLayout::array::<T>(len).expect("a live vector's layout is valid");
        let raw = Box::into_raw(boxed) as *mut T as *mut u8;
        CpuBuffer {
            dtype: T::DTYPE,
            len,
            ptr: NonNull::new(raw).expect("Box pointers are not null"),
            owner: Owner::Own(layout),
        }
    }

    /// A buffer over memory that `owner` keeps alive: `len` elements of `dtype` at `ptr`.
    ///
    /// # Safety
    /// `ptr` must be aligned for `dtype`, valid for reads and writes of `len` elements as long
    /// as `owner` lives, and hold valid values of `dtype` (0 or 1 for `bool`); nothing else may
    /// write it while pocaflow reads it except through this buffer.
    pub unsafe fn from_foreign(
        dtype: DType,
        ptr: *mut u8,
        len: usize,
        owner: Box<dyn Any + Send + Sync>,
    ) -> CpuBuffer {
        CpuBuffer {
            dtype,
            len,
            // A null pointer (an empty array) becomes a dangling one aligned for the dtype.
            ptr: NonNull::new(ptr)
                .unwrap_or(NonNull::new(dtype.size_in_bytes() as *mut u8).expect("nonzero")),
            owner: Owner::Foreign(owner),
        }
    }

    /// The elements as a vector of `T`: handed over without a copy when the buffer owns its
    /// memory, copied when it borrows it. `None` if `T` is not the dtype.
    pub fn into_vec<T: Element>(self) -> Option<Vec<T>> {
        if T::DTYPE != self.dtype {
            return None;
        }
        if let Owner::Own(layout) = self.owner {
            if layout.size() > 0 {
                let me = std::mem::ManuallyDrop::new(self);
                // SAFETY: the memory was allocated by the global allocator with the layout of
                // `[T; len]` (same size and alignment) and holds `len` initialized `T`s; the
                // buffer is forgotten, so the vector becomes its only owner.
                return Some(unsafe {
                    Vec::from_raw_parts(me.ptr.as_ptr() as *mut T, me.len, me.len)
                });
            }
            return Some(Vec::new());
        }
        Some(self.as_slice::<T>()?.to_vec())
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the memory belongs to another object (shared with NumPy, say).
    pub fn is_foreign(&self) -> bool {
        matches!(self.owner, Owner::Foreign(_))
    }

    /// The address of element 0.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// The elements as `T`, or `None` if `T` is not the buffer's dtype.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        (T::DTYPE == self.dtype).then(|| {
            // SAFETY: the memory holds `len` valid `T`s, aligned (constructors' contracts),
            // and `&self` keeps it borrowed.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const T, self.len) }
        })
    }

    /// The elements as mutable `T`, or `None` if `T` is not the buffer's dtype.
    pub fn as_mut_slice<T: Element>(&mut self) -> Option<&mut [T]> {
        (T::DTYPE == self.dtype).then(|| {
            // SAFETY: as above, borrowed mutably through `&mut self`.
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr() as *mut T, self.len) }
        })
    }

    /// The elements as unsigned integers of their size (`u8` for 1-byte dtypes, up to `u64`):
    /// their bits, for moves that do not look at values. `None` if the size differs.
    pub fn as_bits<U: Bits>(&self) -> Option<&[U]> {
        (std::mem::size_of::<U>() == self.dtype.size_in_bytes()).then(|| {
            // SAFETY: `len` elements of this size and alignment live at `ptr`; any bit pattern
            // is a valid unsigned integer.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const U, self.len) }
        })
    }

    /// The elements' bits, mutably. Writers store only bits read from elements of the same
    /// dtype (or zero), so every element stays a valid value of its dtype.
    pub fn as_bits_mut<U: Bits>(&mut self) -> Option<&mut [U]> {
        (std::mem::size_of::<U>() == self.dtype.size_in_bytes()).then(|| {
            // SAFETY: as above, borrowed mutably through `&mut self`.
            unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr() as *mut U, self.len) }
        })
    }

    /// Whether the memory of `self` and `other` overlaps (two buffers over one NumPy array's
    /// memory can).
    pub fn overlaps(&self, other: &CpuBuffer) -> bool {
        let span = |b: &CpuBuffer| {
            let start = b.ptr.as_ptr() as usize;
            (start, start + b.len * b.dtype.size_in_bytes())
        };
        let ((a0, a1), (b0, b1)) = (span(self), span(other));
        a0 < b1 && b0 < a1
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `len * size` initialized bytes live at `ptr` while `self` is borrowed; every
        // element type is plain data.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr(), self.len * self.dtype.size_in_bytes())
        }
    }

    /// The raw bytes, mutably. Writers must leave valid values of the dtype (0 or 1 for
    /// `bool`): the transfers that use this write bytes of the same dtype.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed mutably.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len * self.dtype.size_in_bytes())
        }
    }
}

/// A vector of the values `iter` yields (`len` of them), or [`Error::OutOfMemory`] naming the
/// size when the host cannot provide the memory (instead of aborting, as `collect` would).
pub fn try_collect<T: Element>(len: usize, iter: impl Iterator<Item = T>) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| too_large(T::DTYPE, len))?;
    v.extend(iter.take(len));
    Ok(v)
}

impl Clone for CpuBuffer {
    /// An owned copy (of foreign memory too).
    fn clone(&self) -> CpuBuffer {
        crate::with_dtype!(self.dtype, T, {
            CpuBuffer::from_vec(self.as_slice::<T>().expect("dtype matches").to_vec())
        })
    }
}

impl Drop for CpuBuffer {
    fn drop(&mut self) {
        if let Owner::Own(layout) = self.owner {
            if layout.size() > 0 {
                // SAFETY: allocated by the global allocator with this layout, given back once
                // (freed, or cached for reuse).
                unsafe { crate::host_cache::give(self.ptr, layout) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_vectors_and_handover() {
        let b = CpuBuffer::zeros(DType::I16, 5).unwrap();
        assert_eq!(b.as_slice::<i16>().unwrap(), &[0; 5]);
        assert!(b.as_slice::<u16>().is_none());
        let v = CpuBuffer::from_vec(vec![1u64, 2, 3]);
        assert_eq!(v.dtype(), DType::U64);
        assert_eq!(v.clone().into_vec::<u64>().unwrap(), vec![1, 2, 3]);
        assert_eq!(v.as_bytes().len(), 24);
        let e = CpuBuffer::zeros(DType::F32, 0).unwrap();
        assert!(e.is_empty() && e.into_vec::<f32>().unwrap().is_empty());
    }

    #[test]
    fn impossible_sizes_are_out_of_memory() {
        let e = CpuBuffer::zeros(DType::F64, 1 << 61).unwrap_err();
        assert!(
            matches!(e, Error::OutOfMemory(ref m) if m.contains("bytes")),
            "{e}"
        );
        let e = CpuBuffer::zeros(DType::F64, 1 << 50).unwrap_err();
        assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
    }

    #[test]
    fn foreign_memory_is_borrowed() {
        let mut backing = vec![1.0f32, 2.0, 3.0];
        let ptr = backing.as_mut_ptr() as *mut u8;
        let keep: Box<dyn Any + Send + Sync> = Box::new(());
        // SAFETY: `backing` outlives the buffer and is not touched while it lives.
        let mut b = unsafe { CpuBuffer::from_foreign(DType::F32, ptr, 3, keep) };
        b.as_mut_slice::<f32>().unwrap()[1] = 7.0;
        assert!(b.is_foreign());
        assert_eq!(b.clone().into_vec::<f32>().unwrap(), vec![1.0, 7.0, 3.0]);
        drop(b);
        assert_eq!(backing, vec![1.0, 7.0, 3.0]);
    }
}

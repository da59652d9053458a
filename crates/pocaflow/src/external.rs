//! Memory shared with other libraries: tensors over memory another library owns (NumPy arrays,
//! DLPack capsules from PyTorch or CuPy), and what another library needs to use a tensor's
//! memory in place (its address, and on CUDA an ordering of the library's stream after the
//! work queued on it).

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::storage::Storage;
use crate::tensor::Tensor;
use std::any::Any;

/// The lowest element offset that `strides` reach over `shape` (zero or negative) and the
/// number of element slots from it to the highest one; `None` when that overflows.
fn reach(shape: &[usize], strides: &[isize]) -> Option<(isize, usize)> {
    let (mut lo, mut hi) = (0i128, 0i128);
    for (&n, &s) in shape.iter().zip(strides) {
        if n > 1 {
            let r = (n as i128 - 1) * s as i128;
            lo += r.min(0);
            hi += r.max(0);
        }
    }
    Some((
        isize::try_from(lo).ok()?,
        usize::try_from(hi - lo + 1).ok()?,
    ))
}

impl Tensor {
    /// A tensor over memory that `owner` keeps alive: the element at index `[0, ..., 0]` is at
    /// address `data` (host memory, or memory of the CUDA device), the others `strides`
    /// elements apart (negative strides allowed). No copy is made: writes through the tensor
    /// are seen by the owner's other views of the memory.
    ///
    /// # Safety
    /// Every element the strides reach must lie in memory of `device` that is valid for
    /// reads and writes as long as `owner` lives and holds valid values of `dtype` (0 or 1
    /// for `bool`). On CUDA, the owner's pending writes must be ordered before the work of
    /// this thread's current stream (DLPack's stream exchange does that), and the memory must
    /// not be reused by its owner before `owner` is dropped, which pocaflow does after the GPU
    /// work queued on it is done.
    ///
    /// # Errors
    /// [`Error::Shape`] if `shape` and `strides` differ in length or reach past the address
    /// space; [`Error::DType`] if `data` is not aligned for `dtype`; [`Error::Device`] if the
    /// device is not available.
    pub unsafe fn from_foreign(
        device: Device,
        dtype: DType,
        data: u64,
        shape: &[usize],
        strides: &[isize],
        owner: Box<dyn Any + Send + Sync>,
    ) -> Result<Tensor> {
        if shape.len() != strides.len() {
            return Err(Error::Shape(format!(
                "foreign memory: shape {shape:?} and strides {strides:?} differ in length"
            )));
        }
        let item = dtype.size_in_bytes() as u64;
        if !data.is_multiple_of(item) {
            return Err(Error::DType(format!(
                "foreign memory at {data:#x} is not aligned for {dtype} ({item} bytes)"
            )));
        }
        let (start, len, offset) = if shape.contains(&0) {
            (data, 0, 0)
        } else {
            let (lo, len) = reach(shape, strides).ok_or_else(|| {
                Error::Shape(format!(
                    "foreign memory: shape {shape:?} with strides {strides:?} reaches past \
                     the address space"
                ))
            })?;
            let back = lo.unsigned_abs() as u64 * item;
            let start = data.checked_sub(back).ok_or_else(|| {
                Error::Shape(format!(
                    "foreign memory at {data:#x}: strides {strides:?} reach below address 0"
                ))
            })?;
            (start, len, lo.unsigned_abs())
        };
        let layout = Layout::new(shape, strides, offset)?;
        // SAFETY: [start, start + len elements) covers every element the strides reach from
        // `data`; the caller vouches for the memory, its values and its ordering.
        let storage = unsafe { Storage::foreign(device, dtype, start, len, owner) }?;
        Ok(Tensor::from_parts(storage, layout))
    }

    /// The address of the element at index `[0, ..., 0]`, in host memory for a CPU tensor and
    /// in device memory for a CUDA one (for other libraries that use the memory in place).
    pub fn data_address(&self) -> u64 {
        self.storage.address(self.layout.offset())
    }

    /// Makes another library's CUDA stream wait, on the GPU, for the work queued so far on
    /// this tensor's memory, and notes the stream as a user of the memory (freeing it waits
    /// for the stream's work up to then). `handle` is a raw `CUstream`, 1 for the legacy
    /// default stream or 2 for the per-thread one. The host never waits; a CPU tensor has
    /// nothing to order.
    ///
    /// # Errors
    /// CUDA errors (an invalid handle, say).
    pub fn order_stream(&self, handle: u64) -> Result<()> {
        self.storage.order_external_stream(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_covers_negative_and_broadcast_strides() {
        assert_eq!(reach(&[3, 4], &[4, 1]), Some((0, 12)));
        assert_eq!(reach(&[3, 4], &[-4, 1]), Some((-8, 12)));
        assert_eq!(reach(&[3, 4], &[0, 1]), Some((0, 4)));
        assert_eq!(reach(&[1, 5], &[1000, -2]), Some((-8, 9)));
        assert_eq!(reach(&[usize::MAX, 3], &[isize::MAX, 1]), None);
    }

    #[test]
    fn foreign_cpu_memory_is_shared_and_kept_alive() {
        let v: Vec<f64> = (0..12).map(f64::from).collect();
        let data = v.as_ptr() as usize as u64;
        // The tensor reads the vector in place, reversed along rows, through negative strides.
        let row2 = data + 8 * 8;
        let owner = Box::new(v);
        // SAFETY: the vector holds 12 f64 and is moved into the owner, so it outlives the
        // tensor; [8, 4, 0] row starts are inside it.
        let t = unsafe {
            Tensor::from_foreign(Device::Cpu, DType::F64, row2, &[3, 4], &[-4, 1], owner)
        }
        .unwrap();
        assert_eq!(t.data_address(), row2);
        let a = t.to_ndarray::<f64>().unwrap();
        assert_eq!(a[[0, 0]], 8.0);
        assert_eq!(a[[2, 3]], 3.0);
        assert_eq!(a.sum(), 66.0);
    }

    #[test]
    fn foreign_memory_is_checked() {
        let v = vec![0u8; 16];
        let p = v.as_ptr() as usize as u64;
        let owner = || Box::new(()) as Box<dyn Any + Send + Sync>;
        // SAFETY: each call fails its checks before the memory is used.
        unsafe {
            let e = Tensor::from_foreign(Device::Cpu, DType::F64, p + 1, &[1], &[1], owner());
            assert!(matches!(e, Err(Error::DType(m)) if m.contains("not aligned")));
            let e = Tensor::from_foreign(Device::Cpu, DType::U8, p, &[2, 2], &[1], owner());
            assert!(matches!(e, Err(Error::Shape(m)) if m.contains("differ in length")));
            let e = Tensor::from_foreign(Device::Cpu, DType::U8, 8, &[3], &[-8], owner());
            assert!(matches!(e, Err(Error::Shape(m)) if m.contains("below address 0")));
        }
        drop(v);
    }
}

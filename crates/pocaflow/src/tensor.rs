//! [`Tensor`]: shared storage on a device, viewed through a [`Layout`].

use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::host::{try_collect, CpuBuffer};
use crate::layout::Layout;
use crate::storage::Storage;
use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn, ShapeBuilder};
use std::sync::Arc;

/// An n-dimensional array of one [`DType`] on one [`Device`].
///
/// Cloning a tensor is cheap and shares its storage; views (`t`, `permute`) share it too.
/// Operations allocate new storage for their results.
///
/// ```
/// use pocaflow::{Device, Tensor};
/// let a = ndarray::array![[1.0f32, 2.0], [3.0, 4.0]];
/// let t = Tensor::from_ndarray(&a, &Device::Cpu)?;
/// let c = t.matmul(&t.t())?;
/// assert_eq!(c.to_ndarray::<f32>()?, ndarray::array![[5.0, 11.0], [11.0, 25.0]].into_dyn());
/// # Ok::<(), pocaflow::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Tensor {
    pub(crate) storage: Arc<Storage>,
    pub(crate) layout: Layout,
}

impl Tensor {
    pub(crate) fn from_parts(storage: Arc<Storage>, layout: Layout) -> Tensor {
        debug_assert!(layout.storage_end() <= storage.len());
        Tensor { storage, layout }
    }

    /// A CPU tensor viewing `buf` through `layout`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the layout reaches outside the buffer.
    pub fn from_cpu_buffer(buf: CpuBuffer, layout: Layout) -> Result<Tensor> {
        if layout.storage_end() > buf.len() {
            return Err(Error::Shape(format!(
                "a view of shape {:?}, strides {:?} and offset {} reaches past the {} elements \
                 of its buffer",
                layout.shape(),
                layout.strides(),
                layout.offset(),
                buf.len()
            )));
        }
        Ok(Tensor::from_parts(Storage::cpu(buf), layout))
    }

    /// A new tensor of `layout` (dense, offset 0) on `device`, every element of which the
    /// caller will write (zeros on the CPU, undefined on CUDA).
    pub(crate) fn uninit(layout: Layout, dtype: DType, device: Device) -> Result<Tensor> {
        let storage = Storage::alloc(device, dtype, layout.numel(), false)?;
        Ok(Tensor::from_parts(storage, layout))
    }

    /// A new C-order tensor of `shape` with undefined contents (zeros on the CPU).
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available; [`Error::OutOfMemory`].
    pub fn empty(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::uninit(Layout::c_contiguous(shape), dtype, *device)
    }

    /// Copies an `ndarray` array of any memory order onto `device`. C-order and Fortran-order
    /// arrays keep their order (one `memcpy`, then a transfer for a GPU); other strides are
    /// gathered into C order.
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available; CUDA errors from the upload.
    pub fn from_ndarray<T: Element, S: Data<Elem = T>, D: Dimension>(
        a: &ArrayBase<S, D>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = a.shape();
        let n = a.len();
        let (data, layout) = if let Some(s) = a.as_slice() {
            (
                try_collect(n, s.iter().copied())?,
                Layout::c_contiguous(shape),
            )
        } else if let Some(s) = a.t().as_slice() {
            (
                try_collect(n, s.iter().copied())?,
                Layout::f_contiguous(shape),
            )
        } else {
            (
                try_collect(n, a.iter().copied())?,
                Layout::c_contiguous(shape),
            )
        };
        Tensor::from_parts(Storage::cpu(CpuBuffer::from_vec(data)), layout).to_device(device)
    }

    /// A tensor of `shape` in C order from `data`, on the CPU.
    ///
    /// # Errors
    /// [`Error::Shape`] if `data.len()` is not the product of `shape`.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if data.len() != numel {
            return Err(Error::Shape(format!(
                "{} elements cannot fill shape {shape:?} ({numel} elements)",
                data.len()
            )));
        }
        Ok(Tensor::from_parts(
            Storage::cpu(CpuBuffer::from_vec(data)),
            Layout::c_contiguous(shape),
        ))
    }

    /// A tensor of zeros in C order.
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available; CUDA allocation errors.
    pub fn zeros(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::zeros_with_layout(Layout::c_contiguous(shape), dtype, device)
    }

    /// Zeros in `layout`, which must start at offset 0 and be contiguous in some order.
    pub(crate) fn zeros_with_layout(
        layout: Layout,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let storage = Storage::alloc(*device, dtype, layout.numel(), true)?;
        Ok(Tensor::from_parts(storage, layout))
    }

    /// Copies the tensor into an `ndarray` array in the tensor's own order: C order, or Fortran
    /// order for Fortran-contiguous tensors; other views come back in C order. For a CUDA tensor
    /// this waits for the work queued on it.
    ///
    /// # Errors
    /// [`Error::DType`] if `T` is not the tensor's dtype; CUDA errors from the download.
    pub fn to_ndarray<T: Element>(&self) -> Result<ArrayD<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DType(format!(
                "to_ndarray::<{}>() called on a {} tensor",
                T::DTYPE,
                self.dtype()
            )));
        }
        if self.numel() == 0 {
            let shape = IxDyn(self.shape()).set_f(!self.layout.is_c_contiguous());
            return Ok(ArrayD::from_shape_vec(shape, Vec::new()).expect("empty"));
        }
        let Tensor { storage, layout: l } = self.to_device(&Device::Cpu)?;
        let dense = l.is_c_contiguous() || l.is_f_contiguous();
        let shape = IxDyn(l.shape()).set_f(!l.is_c_contiguous());
        let storage = if dense && l.offset() == 0 {
            // A fresh host copy of a device tensor is owned by no one else: hand its vector
            // over instead of copying it again.
            match Arc::try_unwrap(storage) {
                Ok(owned) => {
                    let buf = owned
                        .into_cpu_buffer()
                        .expect("to_device(Cpu) gives host storage");
                    let v = buf.into_vec::<T>().expect("dtype checked");
                    return Ok(ArrayD::from_shape_vec(shape, v).expect("length matches shape"));
                }
                Err(shared) => shared,
            }
        } else {
            storage
        };
        let buf = storage
            .read_cpu()
            .expect("to_device(Cpu) gives host storage");
        Ok(if dense {
            let start = l.offset();
            let src = &buf.as_slice::<T>().expect("dtype checked")[start..start + l.numel()];
            let data = try_collect(src.len(), src.iter().copied())?;
            ArrayD::from_shape_vec(shape, data).expect("length matches shape")
        } else {
            let data = buf.as_slice::<T>().expect("dtype checked");
            let v = try_collect(l.numel(), l.indices().map(|i| data[i]))?;
            ArrayD::from_shape_vec(IxDyn(l.shape()), v).expect("length matches shape")
        })
    }

    /// Extents of each dimension.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Step between neighbours along each dimension, in elements (not bytes).
    pub fn strides(&self) -> &[isize] {
        self.layout.strides()
    }

    /// The full view description.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.layout.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// Where the storage lives.
    pub fn device(&self) -> Device {
        self.storage.device()
    }

    /// Whether `self` and `other` may view the same memory: the same storage, or two CPU
    /// storages over one foreign memory (two arrays made from one NumPy array).
    pub fn shares_storage_with(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage) || self.storage.overlaps(&other.storage)
    }

    /// The view with all axes reversed (NumPy's `.T`); no copy.
    pub fn t(&self) -> Tensor {
        Tensor::from_parts(self.storage.clone(), self.layout.t())
    }

    /// The view with axes reordered; no copy.
    ///
    /// # Errors
    /// [`Error::Shape`] unless `axes` is a permutation of the axes.
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_parts(
            self.storage.clone(),
            self.layout.permute(axes)?,
        ))
    }

    /// A view with explicit shape, strides (in elements, any sign) and offset over the same
    /// storage; no copy.
    ///
    /// # Errors
    /// [`Error::Shape`] if the view would reach outside the storage.
    pub fn as_strided(&self, shape: &[usize], strides: &[isize], offset: usize) -> Result<Tensor> {
        let layout = Layout::new(shape, strides, offset)?;
        let len = self.storage.len();
        if layout.storage_end() > len {
            return Err(Error::Shape(format!(
                "a view of shape {shape:?}, strides {strides:?} and offset {offset} reaches past \
                 the {len} elements of its storage"
            )));
        }
        Ok(Tensor::from_parts(self.storage.clone(), layout))
    }

    /// `self` if it is C-contiguous, else a C-order copy.
    ///
    /// # Errors
    /// CUDA errors from the copy.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.layout.is_c_contiguous() {
            return Ok(self.clone());
        }
        self.copy_into_new(self.dtype(), Layout::c_contiguous(self.shape()))
    }

    /// The tensor converted to `dtype` (a copy, in C order, unless it already has it).
    ///
    /// # Errors
    /// CUDA errors from the conversion.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        self.copy_into_new(dtype, Layout::c_contiguous(self.shape()))
    }

    /// The tensor on `device`: `self` if it is already there, else a copy (host-to-device,
    /// device-to-host or device-to-device).
    ///
    /// # Errors
    /// [`Error::Device`] if `device` is not available; CUDA errors from the copy.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if *device == self.device() {
            return Ok(self.clone());
        }
        device.ensure_available()?;
        let l = self.layout();
        let layout = if l.is_f_contiguous() && !l.is_c_contiguous() {
            Layout::f_contiguous(l.shape())
        } else {
            Layout::c_contiguous(l.shape())
        };
        let out = Tensor::uninit(layout, self.dtype(), *device)?;
        out.storage
            .copy_from(&out.layout, &self.storage, &self.layout)?;
        Ok(out)
    }

    /// Copies `src` into `self` elementwise (`src` is broadcast to `self`'s shape, converted to
    /// `self`'s dtype and moved to its device).
    ///
    /// # Errors
    /// [`Error::Shape`] if `src` does not broadcast to `self`'s shape or `self` has overlapping
    /// elements (a broadcast view); device errors from the transfer.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        let src_layout = src.layout.broadcast_to(self.shape())?;
        if self.layout.may_overlap() {
            return Err(Error::Shape(format!(
                "copy_: the destination (shape {:?}, strides {:?}) has overlapping elements",
                self.shape(),
                self.strides()
            )));
        }
        self.storage
            .copy_from(&self.layout, &src.storage, &src_layout)
    }

    /// A copy in new storage on the same device, keeping Fortran order for Fortran-contiguous
    /// tensors (C order otherwise).
    ///
    /// # Errors
    /// Device and allocation errors.
    pub fn copy_data(&self) -> Result<Tensor> {
        let l = &self.layout;
        let layout = if l.is_f_contiguous() && !l.is_c_contiguous() {
            Layout::f_contiguous(l.shape())
        } else {
            Layout::c_contiguous(l.shape())
        };
        self.copy_into_new(self.dtype(), layout)
    }

    /// A new tensor holding `self` converted to `dtype`, in `layout` (offset 0, dense).
    pub(crate) fn copy_into_new(&self, dtype: DType, layout: Layout) -> Result<Tensor> {
        let out = Tensor::uninit(layout, dtype, self.device())?;
        out.storage
            .copy_from(&out.layout, &self.storage, &self.layout)?;
        Ok(out)
    }
}

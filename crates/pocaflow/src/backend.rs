//! The dispatch point between backends: every operation reaches the CPU or the CUDA backend
//! through one function here, chosen by the device of its tensors.

use crate::cpu::{self, gemm::GemmConfig};
use crate::device::Device;
use crate::dtype::DType;
#[cfg(not(feature = "cuda"))]
use crate::error::Error;
use crate::error::Result;
use crate::layout::Layout;
use crate::ops::matmul::MatmulPlan;
use crate::tensor::Tensor;

/// Number of CUDA devices, or why there are none to use.
pub(crate) fn cuda_device_count() -> Result<usize> {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::device_count()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(no_cuda())
    }
}

#[cfg(not(feature = "cuda"))]
fn no_cuda() -> Error {
    Error::Device("CUDA is not available: pocaflow was built without the `cuda` feature".into())
}

/// Zeros in `layout` on CUDA device `ordinal`.
pub(crate) fn cuda_zeros(layout: Layout, dtype: DType, ordinal: usize) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::zeros(layout, dtype, ordinal)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (layout, dtype, ordinal);
        Err(no_cuda())
    }
}

/// Whether `device`'s matmul needs operands in BLAS form (order + leading dimension); the CPU
/// GEMM packs any strides itself.
pub(crate) fn needs_blas_operands(device: Device) -> bool {
    device != Device::Cpu
}

/// A tensor on CUDA device `ordinal` holding `data` (`layout` dense at offset 0), copied
/// straight from `data` through pinned staging.
pub(crate) fn upload<T: crate::dtype::Element>(
    data: &[T],
    layout: Layout,
    ordinal: usize,
) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::upload(data, layout, ordinal)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (data, layout, ordinal);
        Err(no_cuda())
    }
}

/// A tensor in `layout` (offset 0, dense) whose every element the caller will write: zeros on
/// the CPU (the allocator hands out zeroed pages lazily), unwritten memory on CUDA.
pub(crate) fn uninit(layout: Layout, dtype: DType, device: Device) -> Result<Tensor> {
    match device {
        Device::Cpu => Tensor::zeros_with_layout(layout, dtype, &device),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => crate::cuda::empty(layout, dtype, i).map(|(t, _)| t),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(no_cuda()),
    }
}

/// `C = A * B` for every batch index of `plan`, written into `c`'s storage. `c` does not share
/// storage with `a` or `b`; all three are on one device and of one dtype.
pub(crate) fn matmul(plan: &MatmulPlan, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<()> {
    match c.device() {
        Device::Cpu => {
            let ga = a.storage.read_cpu().expect("CPU tensor has host storage");
            let gb = (!a.shares_storage_with(b))
                .then(|| b.storage.read_cpu().expect("CPU tensor has host storage"));
            let bb = gb.as_deref().unwrap_or(&ga);
            let mut gc = c.storage.write_cpu().expect("CPU tensor has host storage");
            cpu::matmul(plan, &ga, bb, &mut gc, GemmConfig::default())
        }
        #[cfg(feature = "cuda")]
        Device::Cuda(_) => crate::cuda::matmul(plan, a, b, c),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(no_cuda()),
    }
}

/// Copies `src` into `dst` elementwise (same shape), converting dtype and crossing devices.
pub(crate) fn copy(src: &Tensor, dst: &Tensor) -> Result<()> {
    match (src.device(), dst.device()) {
        (Device::Cpu, Device::Cpu) => {
            let mut gd = dst
                .storage
                .write_cpu()
                .expect("CPU tensor has host storage");
            if src.shares_storage_with(dst) {
                let snapshot = gd.clone();
                gd.copy_strided(dst.layout(), &snapshot, src.layout());
            } else {
                let gs = src.storage.read_cpu().expect("CPU tensor has host storage");
                gd.copy_strided(dst.layout(), &gs, src.layout());
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        _ => crate::cuda::copy(src, dst),
        #[cfg(not(feature = "cuda"))]
        _ => Err(no_cuda()),
    }
}

/// `t` copied to `device`, keeping its layout when it is contiguous in C or F order.
pub(crate) fn transfer(t: &Tensor, device: &Device) -> Result<Tensor> {
    device.ensure_available()?;
    let l = t.layout();
    let layout = if l.is_f_contiguous() && !l.is_c_contiguous() {
        Layout::f_contiguous(l.shape())
    } else {
        Layout::c_contiguous(l.shape())
    };
    let out = uninit(layout, t.dtype(), *device)?;
    copy(t, &out)?;
    Ok(out)
}

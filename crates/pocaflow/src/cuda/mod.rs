//! The CUDA backend: device tensors in a stream-ordered caching allocator, pinned staging for
//! host transfers, cuBLASLt matmul, and NVRTC kernels for strided copies and dtype conversion.
//!
//! Built on cudarc's `result`/`sys` layers with dynamic loading (building needs no CUDA). No
//! operation here waits for the GPU except reading device data on the host, `synchronize`
//! calls, and `empty_cache`.

mod blaslt;
mod context;
mod driver;
mod kernels;
mod memory;
mod pinned;
mod stream;

pub use memory::{DeviceBuffer, MemoryStats};
pub use stream::{Event, Stream};

use crate::cpu::CpuBuffer;
use crate::device::Device;
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::layout::{BlasMatrix, Layout, MatOrder};
use crate::ops::matmul::MatmulPlan;
use crate::tensor::{Storage, StorageData, Tensor};
use blaslt::{alignment, PlanKey};
use context::{device, DeviceState};
use cudarc::driver::result as dr;
use driver::DriverResultExt;
use kernels::{Kernels, SmallGemm};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use stream::StreamInner;

/// Number of visible CUDA devices.
///
/// # Errors
/// [`Error::Device`] saying what is missing when CUDA is not usable.
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
    device(ordinal)?.bind()?;
    dr::ctx::synchronize().cuda("cuCtxSynchronize")
}

/// The allocator counters of CUDA device `ordinal`.
///
/// # Errors
/// [`Error::Device`] if the device is not available.
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
}

static TF32: AtomicBool = AtomicBool::new(false);

/// Sets the float32 matmul precision for all devices.
pub fn set_matmul_precision(p: MatmulPrecision) {
    TF32.store(p == MatmulPrecision::High, Ordering::Relaxed);
}

/// The float32 matmul precision in force.
pub fn matmul_precision() -> MatmulPrecision {
    if TF32.load(Ordering::Relaxed) {
        MatmulPrecision::High
    } else {
        MatmulPrecision::Highest
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

fn current(device: &Arc<DeviceState>) -> Result<Arc<StreamInner>> {
    Ok(Stream::current(device.ordinal)?.0)
}

fn buffer(t: &Tensor) -> &DeviceBuffer {
    match &t.storage.data {
        StorageData::Cuda(b) => b,
        StorageData::Cpu(_) => unreachable!("callers pass CUDA tensors"),
    }
}

fn cuda_tensor(buf: DeviceBuffer, dtype: DType, layout: Layout) -> Tensor {
    let ordinal = buf.device().ordinal;
    let storage = Arc::new(Storage {
        dtype,
        device: Device::Cuda(ordinal),
        data: StorageData::Cuda(buf),
    });
    Tensor::from_parts(storage, layout)
}

/// A tensor of `layout` (offset 0, dense) with undefined contents, on the current stream.
pub(crate) fn empty(
    layout: Layout,
    dtype: DType,
    ordinal: usize,
) -> Result<(Tensor, Arc<StreamInner>)> {
    let d = device(ordinal)?;
    let stream = current(&d)?;
    let n = layout.numel();
    let buf = DeviceBuffer::alloc(&d, n, n * dtype.size_in_bytes(), &stream)?;
    Ok((cuda_tensor(buf, dtype, layout), stream))
}

/// Zeros in `layout` (offset 0, dense) on device `ordinal`.
pub(crate) fn zeros(layout: Layout, dtype: DType, ordinal: usize) -> Result<Tensor> {
    let (t, stream) = empty(layout, dtype, ordinal)?;
    let bytes = t.numel() * dtype.size_in_bytes();
    if bytes > 0 {
        // SAFETY: the buffer holds `bytes` bytes; the memset is ordered on its stream.
        unsafe { dr::memset_d8_async(buffer(&t).ptr(), 0, bytes, stream.raw) }
            .cuda("cuMemsetD8Async")?;
    }
    Ok(t)
}

/// The bytes of a slice of elements.
fn as_bytes<T: Element>(s: &[T]) -> &[u8] {
    // SAFETY: every Element is a plain float type without padding or invalid bit patterns.
    unsafe { std::slice::from_raw_parts(s.as_ptr() as *const u8, std::mem::size_of_val(s)) }
}

/// The bytes of a mutable slice of elements.
fn as_bytes_mut<T: Element>(s: &mut [T]) -> &mut [u8] {
    // SAFETY: as above; any bytes written form valid floats.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr() as *mut u8, std::mem::size_of_val(s)) }
}

/// A tensor on device `ordinal` holding `data` (`layout` is C- or F-contiguous at offset 0).
/// Returns once `data` is staged; the transfer itself may still run.
pub(crate) fn upload<T: Element>(data: &[T], layout: Layout, ordinal: usize) -> Result<Tensor> {
    let (t, stream) = empty(layout, T::DTYPE, ordinal)?;
    if !data.is_empty() {
        pinned::upload(&stream, buffer(&t).ptr(), as_bytes(data))?;
    }
    Ok(t)
}

/// The pointer of element `offset` of a buffer of `dtype`.
fn at(buf: &DeviceBuffer, offset: usize, dtype: DType) -> u64 {
    buf.ptr() + (offset * dtype.size_in_bytes()) as u64
}

/// Whether `a` and `b` address their elements identically relative to their offsets (same
/// shape, both dense in the same order), so a flat byte copy moves one into the other.
fn same_dense_order(a: &Layout, b: &Layout) -> bool {
    a.shape() == b.shape()
        && ((a.is_c_contiguous() && b.is_c_contiguous())
            || (a.is_f_contiguous() && b.is_f_contiguous()))
}

/// Copies `src` into `dst` elementwise (same shape): host to device, device to host, within a
/// device (strided and converting) and between devices (peer copies).
pub(crate) fn copy(src: &Tensor, dst: &Tensor) -> Result<()> {
    match (src.device(), dst.device()) {
        (Device::Cpu, Device::Cuda(_)) => copy_to_device(src, dst),
        (Device::Cuda(_), Device::Cpu) => copy_to_host(src, dst),
        (Device::Cuda(s), Device::Cuda(d)) if s == d => copy_on_device(src, dst),
        (Device::Cuda(_), Device::Cuda(_)) => copy_between_devices(src, dst),
        (Device::Cpu, Device::Cpu) => unreachable!("host copies stay on the CPU backend"),
    }
}

fn copy_to_device(src: &Tensor, dst: &Tensor) -> Result<()> {
    let host = src.storage.read_cpu().expect("CPU tensor has host storage");
    let dl = dst.layout();
    let dbuf = buffer(dst);
    let stream = current(dbuf.device())?;
    if src.dtype() == dst.dtype() && same_dense_order(src.layout(), dl) {
        let elem = src.dtype().size_in_bytes();
        with_host_bytes(&host, |all| {
            let start = src.layout().offset() * elem;
            pinned::upload(
                &stream,
                at(dbuf, dl.offset(), dst.dtype()),
                &all[start..start + src.numel() * elem],
            )
        })?;
        dbuf.record_use(&stream);
        return Ok(());
    }
    // Convert and reorder on the host into dst's dtype, upload densely, then scatter on the
    // device if dst is strided.
    let dense = Layout::c_contiguous(dl.shape());
    let mut staged = CpuBuffer::zeros(dst.dtype(), dense.numel());
    staged.copy_strided(&dense, &host, src.layout());
    drop(host);
    let tmp = with_host_bytes(&staged, |bytes| {
        let (t, s) = empty(dense.clone(), dst.dtype(), dbuf.device().ordinal)?;
        pinned::upload(&s, buffer(&t).ptr(), bytes)?;
        Ok(t)
    })?;
    copy_on_device(&tmp, dst)
}

/// Runs `f` on the raw bytes of a host buffer.
fn with_host_bytes<R>(buf: &CpuBuffer, f: impl FnOnce(&[u8]) -> R) -> R {
    match buf {
        CpuBuffer::F16(v) => f(as_bytes(v)),
        CpuBuffer::BF16(v) => f(as_bytes(v)),
        CpuBuffer::F32(v) => f(as_bytes(v)),
        CpuBuffer::F64(v) => f(as_bytes(v)),
    }
}

fn with_host_bytes_mut<R>(buf: &mut CpuBuffer, f: impl FnOnce(&mut [u8]) -> R) -> R {
    match buf {
        CpuBuffer::F16(v) => f(as_bytes_mut(v)),
        CpuBuffer::BF16(v) => f(as_bytes_mut(v)),
        CpuBuffer::F32(v) => f(as_bytes_mut(v)),
        CpuBuffer::F64(v) => f(as_bytes_mut(v)),
    }
}

fn copy_to_host(src: &Tensor, dst: &Tensor) -> Result<()> {
    let sbuf = buffer(src);
    let stream = current(sbuf.device())?;
    // Reading on the host must see every write, whichever stream made it.
    sbuf.order_after_uses(&stream)?;
    sbuf.record_use(&stream);
    let sl = src.layout();
    // Download a dense view: src itself, or a dense copy made on the device.
    let dense_src;
    let (from, from_layout) = if sl.is_c_contiguous() || sl.is_f_contiguous() {
        (src, sl.clone())
    } else {
        dense_src = src.contiguous()?;
        (&dense_src, dense_src.layout().clone())
    };
    let elem = from.dtype().size_in_bytes();
    let bytes = from.numel() * elem;
    let src_ptr = at(buffer(from), from_layout.offset(), from.dtype());
    let mut host = dst
        .storage
        .write_cpu()
        .expect("CPU tensor has host storage");
    if from.dtype() == dst.dtype() && same_dense_order(&from_layout, dst.layout()) {
        let start = dst.layout().offset() * elem;
        return with_host_bytes_mut(&mut host, |all| {
            pinned::download(&stream, &mut all[start..start + bytes], src_ptr)
        });
    }
    let mut staged = CpuBuffer::zeros(from.dtype(), from.numel());
    with_host_bytes_mut(&mut staged, |all| pinned::download(&stream, all, src_ptr))?;
    let staged_layout = if from_layout.is_c_contiguous() {
        Layout::c_contiguous(from_layout.shape())
    } else {
        Layout::f_contiguous(from_layout.shape())
    };
    host.copy_strided(dst.layout(), &staged, &staged_layout);
    Ok(())
}

fn copy_on_device(src: &Tensor, dst: &Tensor) -> Result<()> {
    let (sbuf, dbuf) = (buffer(src), buffer(dst));
    let d = dbuf.device().clone();
    let stream = current(&d)?;
    d.bind()?;
    let (sl, dl) = (src.layout(), dst.layout());
    if src.dtype() == dst.dtype() && same_dense_order(sl, dl) {
        let bytes = src.numel() * src.dtype().size_in_bytes();
        if bytes > 0 {
            let (from, to) = (
                at(sbuf, sl.offset(), src.dtype()),
                at(dbuf, dl.offset(), dst.dtype()),
            );
            // SAFETY: both ranges lie inside their buffers; the copy is ordered on the stream.
            unsafe { dr::memcpy_dtod_async(to, from, bytes, stream.raw) }
                .cuda("cuMemcpyDtoDAsync")?;
        }
    } else if src.shares_storage_with(dst) {
        // Overlapping views: copy through a dense temporary.
        let tmp = src.copy_into_new(dst.dtype(), Layout::c_contiguous(sl.shape()))?;
        return copy_on_device(&tmp, dst);
    } else {
        d.kernels()?.copy(
            &stream,
            sbuf.ptr(),
            src.dtype(),
            sl,
            dbuf.ptr(),
            dst.dtype(),
            dl,
        )?;
    }
    sbuf.record_use(&stream);
    dbuf.record_use(&stream);
    Ok(())
}

fn copy_between_devices(src: &Tensor, dst: &Tensor) -> Result<()> {
    let (sbuf, dbuf) = (buffer(src), buffer(dst));
    let (sd, dd) = (sbuf.device().clone(), dbuf.device().clone());
    // A dense source of dst's dtype, on the source device.
    let dense = Layout::c_contiguous(src.shape());
    let staged = if src.dtype() == dst.dtype() && same_dense_order(src.layout(), dst.layout()) {
        src.clone()
    } else {
        src.copy_into_new(dst.dtype(), dense.clone())?
    };
    let target_is_dense = same_dense_order(staged.layout(), dst.layout());
    let target = if target_is_dense {
        dst.clone()
    } else {
        empty(staged.layout().clone(), dst.dtype(), dd.ordinal)?.0
    };
    let (s_stream, d_stream) = (current(&sd)?, current(&dd)?);
    // The copy runs on the source stream after the destination's earlier work, and the
    // destination stream waits for it: GPU-side ordering only.
    s_stream.wait_for(&d_stream)?;
    let bytes = staged.numel() * staged.dtype().size_in_bytes();
    let from = at(buffer(&staged), staged.layout().offset(), staged.dtype());
    let to = at(buffer(&target), target.layout().offset(), target.dtype());
    sd.bind()?;
    if bytes > 0 {
        // SAFETY: both ranges lie inside their buffers; contexts are the owning ones.
        unsafe { dr::memcpy_peer_async(dd.ctx(), to, sd.ctx(), from, bytes, s_stream.raw) }
            .cuda("cuMemcpyPeerAsync")?;
    }
    d_stream.wait_for(&s_stream)?;
    buffer(&staged).record_use(&s_stream);
    buffer(&target).record_use(&s_stream);
    if !target_is_dense {
        copy_on_device(&target, dst)?;
    }
    Ok(())
}

/// The address `offset` elements of `esize` bytes past `base`. Batch walks start at offset 0
/// and step by the layout's strides, so an offset is negative for a reversed batch axis:
/// `StridedIndices` yields it as a wrapped `usize`, read back as signed here.
fn offset_ptr(base: u64, offset: usize, esize: usize) -> u64 {
    base.wrapping_add_signed(offset as isize as i64 * esize as i64)
}

/// Splits batch dimensions into groups that each advance every operand by one stride:
/// `(count, stride_a, stride_b, stride_c)`, outermost first; extent-1 dimensions dropped.
fn batch_groups(plan: &MatmulPlan) -> Vec<(usize, isize, isize, isize)> {
    let nb = plan.batch.len();
    let (sa, sb, sc) = (plan.a.strides(), plan.b.strides(), plan.c.strides());
    let mut groups: Vec<(usize, isize, isize, isize)> = Vec::new();
    for d in 0..nb {
        let n = plan.batch[d];
        if n == 1 {
            continue;
        }
        match groups.last_mut() {
            Some(g)
                if g.1 == sa[d] * n as isize
                    && g.2 == sb[d] * n as isize
                    && g.3 == sc[d] * n as isize =>
            {
                *g = (g.0 * n, sa[d], sb[d], sc[d]);
            }
            _ => groups.push((n, sa[d], sb[d], sc[d])),
        }
    }
    groups
}

/// `C = A * B` for every batch index of `plan` on the current stream: small float32/float64
/// products in pocaflow's own kernel, the rest through cuBLASLt. The dispatch point
/// guarantees that every matrix of A, B and C is BLAS-describable.
pub(crate) fn matmul(plan: &MatmulPlan, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<()> {
    let (abuf, bbuf, cbuf) = (buffer(a), buffer(b), buffer(c));
    let d = cbuf.device().clone();
    let stream = current(&d)?;
    d.bind()?;
    let (m, k, n) = (plan.m, plan.k, plan.n);
    if m == 0 || n == 0 {
        return Ok(());
    }
    let dtype = c.dtype();
    if k == 0 {
        let zero = zeros(Layout::c_contiguous(plan.c.shape()), dtype, d.ordinal)?;
        return copy_on_device(
            &zero,
            &Tensor::from_parts(c.storage.clone(), plan.c.clone()),
        );
    }
    if plan.batch.contains(&0) {
        return Ok(());
    }
    let groups = batch_groups(plan);
    let (inner, outer) = match groups.split_last() {
        Some((g, rest)) => (*g, rest.to_vec()),
        None => ((1, 0, 0, 0), Vec::new()),
    };
    let esize = dtype.size_in_bytes();
    let (a_base, b_base, c_base) = (
        at(abuf, plan.a.offset(), dtype),
        at(bbuf, plan.b.offset(), dtype),
        at(cbuf, plan.c.offset(), dtype),
    );
    let outer_shape: Vec<usize> = outer.iter().map(|g| g.0).collect();
    let strides =
        |f: fn(&(usize, isize, isize, isize)) -> isize| outer.iter().map(f).collect::<Vec<_>>();
    let (osa, osb, osc) = (strides(|g| g.1), strides(|g| g.2), strides(|g| g.3));
    let walk = |s| crate::layout::StridedIndices::new(&outer_shape, s, 0);
    let offsets = walk(&osa).zip(walk(&osb)).zip(walk(&osc));
    let ptr = |base: u64, off: usize| offset_ptr(base, off, esize);
    // Recorded before anything is enqueued, so that a launch failing halfway through the batch
    // still leaves the earlier launches covered.
    for buf in [abuf, bbuf, cbuf] {
        buf.record_use(&stream);
    }
    let nd = plan.a.ndim();
    let work = [m, n, k]
        .iter()
        .chain(&plan.batch)
        .fold(1u64, |w, &x| w.saturating_mul(x as u64));
    if work <= small_matmul_threshold() && Kernels::small_matmul_fits(dtype, (m, n, k), inner.0) {
        let kernels = d.kernels()?;
        let rc = |l: &Layout| [l.strides()[nd - 2] as i64, l.strides()[nd - 1] as i64];
        let g = SmallGemm {
            m: m as i64,
            n: n as i64,
            k: k as i64,
            a: rc(&plan.a),
            b: rc(&plan.b),
            c: rc(&plan.c),
            batch_strides: [inner.1 as i64, inner.2 as i64, inner.3 as i64],
        };
        for ((oa, ob), oc) in offsets {
            let ptrs = (ptr(a_base, oa), ptr(b_base, ob), ptr(c_base, oc));
            kernels.small_matmul(&stream, dtype, ptrs, g, inner.0)?;
        }
    } else {
        matmul_blaslt(
            plan,
            dtype,
            &d,
            &stream,
            (a_base, b_base, c_base),
            inner,
            offsets,
        )?;
    }
    Ok(())
}

/// The cuBLASLt path of [`matmul`]: one strided-batched call per outer batch offset.
fn matmul_blaslt(
    plan: &MatmulPlan,
    dtype: DType,
    d: &Arc<DeviceState>,
    stream: &Arc<StreamInner>,
    (a_base, b_base, c_base): (u64, u64, u64),
    inner: (usize, isize, isize, isize),
    offsets: impl Iterator<Item = ((usize, usize), usize)>,
) -> Result<()> {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let nd = plan.a.ndim();
    let mat = |l: &Layout, rows, cols| {
        BlasMatrix::classify(rows, cols, l.strides()[nd - 2], l.strides()[nd - 1]).ok_or_else(
            || {
                Error::Shape(format!(
                    "matmul: strides {:?} are not a BLAS layout",
                    l.strides()
                ))
            },
        )
    };
    let (ma, mb, mc) = (
        mat(&plan.a, m, k)?,
        mat(&plan.b, k, n)?,
        mat(&plan.c, m, n)?,
    );
    // cuBLASLt computes column-major D. A row-major C is the column-major C^T = B^T A^T.
    let swap = mc.order == MatOrder::RowMajor;
    let (dm, dn) = if swap { (n, m) } else { (m, n) };
    // For operand X (rows x cols) stored as `bm`, used as X or as X^T:
    let describe = |bm: BlasMatrix, rows: usize, cols: usize, transposed: bool| {
        let stored = match bm.order {
            MatOrder::ColMajor => (rows as u64, cols as u64),
            MatOrder::RowMajor => (cols as u64, rows as u64),
        };
        (
            (bm.order == MatOrder::RowMajor) != transposed,
            stored,
            bm.ld as i64,
        )
    };
    let (first, second) = if swap {
        (describe(mb, k, n, true), describe(ma, m, k, true))
    } else {
        (describe(ma, m, k, false), describe(mb, k, n, false))
    };
    let esize = dtype.size_in_bytes();
    let ptr = |base: u64, off: usize| offset_ptr(base, off, esize);
    let mut lt = d.blaslt()?;
    for ((oa, ob), oc) in offsets {
        let (pa, pb, pc) = (ptr(a_base, oa), ptr(b_base, ob), ptr(c_base, oc));
        let (pfirst, psecond, sfirst, ssecond) = if swap {
            (pb, pa, inner.2, inner.1)
        } else {
            (pa, pb, inner.1, inner.2)
        };
        let bytes = |s: isize| (s.unsigned_abs() * esize) as u64;
        let key = PlanKey {
            dtype,
            tf32: dtype == DType::F32 && matmul_precision() == MatmulPrecision::High,
            trans_a: first.0,
            trans_b: second.0,
            m: dm as u64,
            n: dn as u64,
            k: k as u64,
            a_dims: first.1,
            b_dims: second.1,
            lda: first.2,
            ldb: second.2,
            ldc: mc.ld as i64,
            batch: inner.0 as i32,
            stride_a: sfirst as i64,
            stride_b: ssecond as i64,
            stride_c: inner.3 as i64,
            align_a: alignment(pfirst, bytes(sfirst)),
            align_b: alignment(psecond, bytes(ssecond)),
            align_c: alignment(pc, bytes(inner.3)),
        };
        lt.matmul(d, stream, &key, (pfirst, psecond, pc))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer-copy path (`copy_between_devices`) with both ends on one device: everything but
    /// the cross-device DMA, which needs two GPUs (tests/python/test_cuda.py runs that).
    #[test]
    fn peer_copy_path_on_one_device() {
        let dev = match Device::cuda(0) {
            Ok(d) => d,
            Err(e) if std::env::var("POCAFLOW_REQUIRE_CUDA").as_deref() == Ok("1") => {
                panic!("POCAFLOW_REQUIRE_CUDA=1 but CUDA is not usable: {e}")
            }
            Err(_) => return,
        };
        let host = ndarray::Array2::<f32>::from_shape_fn((30, 20), |(i, j)| (i * 20 + j) as f32);
        let src = Tensor::from_ndarray(&host, &dev).unwrap();
        // Dense to dense; a transposed source into a C-order float64 target (converted into a
        // dense staging copy on the source first); a dense source into a transposed target
        // (scattered on the destination after the copy).
        let dense = Tensor::zeros(&[30, 20], DType::F32, &dev).unwrap();
        copy_between_devices(&src, &dense).unwrap();
        assert_eq!(dense.to_ndarray::<f32>().unwrap(), host.clone().into_dyn());
        let converted = Tensor::zeros(&[20, 30], DType::F64, &dev).unwrap();
        copy_between_devices(&src.t(), &converted).unwrap();
        let want = host.t().mapv(f64::from).into_dyn();
        assert_eq!(converted.to_ndarray::<f64>().unwrap(), want);
        let target = Tensor::zeros(&[20, 30], DType::F32, &dev).unwrap();
        copy_between_devices(&src, &target.t()).unwrap();
        assert_eq!(
            target.to_ndarray::<f32>().unwrap(),
            host.t().to_owned().into_dyn()
        );
    }
}

//! The CUDA backend's storage: a device buffer of one dtype, and the backend primitives on it.
//!
//! Every primitive enqueues its work on the current stream of the buffer's device and returns
//! without waiting, except where the host needs a number from the device:
//! - [`CudaStorage::download`] (device to host) waits for the copy;
//! - `gather` and `scatter` check indices on the device into an error flag in device memory
//!   and read it back, so they wait for their kernel (to return [`Error::Index`] with the
//!   CPU's message);
//! - `nonzero` counts on the device (count, scan, write) and waits for the count, which
//!   decides the size of its result.

use super::context::{device, DeviceState};
use super::driver::DriverResultExt;
use super::kernels::{IndexArgs, RandomArgs, View, MAXD, MAXK};
use super::memory::{DeviceBuffer, ForeignOwner};
use super::pinned;
use super::stream::{Stream, StreamInner};
use crate::backend::{BackendStorage, CsrArgs, CsrParts, Operand, RowArgs};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::{
    BiasMode, BinaryOp, Distribution, Epilogue, IndexPlan, MatmulPlan, RandomSpec, ReduceOp,
    ReducePlan, RowPlan, ScanOp, SparseDensePlan, UnaryOp,
};
use crate::{with_bits, with_dtype};
use cudarc::driver::result as dr;
use std::sync::Arc;

/// Memory of one dtype on one CUDA device (stream-ordered: see `cuda::memory`).
#[derive(Debug)]
pub(crate) struct CudaStorage {
    buf: DeviceBuffer,
    dtype: DType,
}

/// The device's state, bound to this thread, and its current stream.
pub(super) fn context(ordinal: usize) -> Result<(Arc<DeviceState>, Arc<StreamInner>)> {
    let d = device(ordinal)?;
    d.bind()?;
    let stream = Stream::current(ordinal)?.0;
    Ok((d, stream))
}

/// Whether `a` and `b` address their elements identically relative to their offsets (same
/// shape, both dense in the same order), so a flat byte copy moves one into the other.
fn same_dense_order(a: &Layout, b: &Layout) -> bool {
    a.shape() == b.shape()
        && ((a.is_c_contiguous() && b.is_c_contiguous())
            || (a.is_f_contiguous() && b.is_f_contiguous()))
}

/// Whether the elements of `l` fill `numel` consecutive slots from its offset.
fn dense(l: &Layout) -> bool {
    l.is_c_contiguous() || l.is_f_contiguous()
}

/// The dense layout of `l`'s shape at offset 0 in `l`'s order (Fortran if it is F- and not
/// C-contiguous, else C).
fn dense_like(l: &Layout) -> Layout {
    if l.is_f_contiguous() && !l.is_c_contiguous() {
        Layout::f_contiguous(l.shape())
    } else {
        Layout::c_contiguous(l.shape())
    }
}

/// `value` converted to `dtype` (as `Element::cast`), as the bits of one element in the low
/// bytes of a u64 (integers wrapped to 64 bits: their low bytes are the element's).
pub(super) fn scalar_bits(dtype: DType, value: Scalar) -> u64 {
    match dtype {
        DType::F16 => u64::from(value.to::<half::f16>().to_bits()),
        DType::BF16 => u64::from(value.to::<half::bf16>().to_bits()),
        DType::F32 => u64::from(value.to::<f32>().to_bits()),
        DType::F64 => value.to::<f64>().to_bits(),
        _ => with_dtype!(dtype, T, crate::Element::to_u64(value.to::<T>())),
    }
}

/// The elements of `l` in `host`, in C order, in a new dense buffer (bits moved, no casts).
fn gather_host(host: &CpuBuffer, l: &Layout) -> Result<CpuBuffer> {
    let mut out = CpuBuffer::zeros(host.dtype(), l.numel())?;
    with_bits!(host.dtype().size_in_bytes(), U, {
        let s = host.as_bits::<U>().expect("size matches");
        let d = out.as_bits_mut::<U>().expect("size matches");
        d.iter_mut().zip(l.indices()).for_each(|(o, i)| *o = s[i]);
    });
    Ok(out)
}

/// `host[l] = staged` with `staged` dense in C order (bits moved, one dtype).
fn scatter_host(host: &mut CpuBuffer, l: &Layout, staged: &CpuBuffer) {
    with_bits!(host.dtype().size_in_bytes(), U, {
        let s = staged.as_bits::<U>().expect("size matches");
        let d = host.as_bits_mut::<U>().expect("size matches");
        l.indices().zip(s).for_each(|(o, &v)| d[o] = v);
    });
}

/// The transposing copy `self[dst] = src[src_layout]` is, when it is one (after merging
/// dimensions: two, dense rows on one side and dense columns on the other, both with positive
/// leading dimensions): the source as a row-major `(rows, cols)` matrix, its leading dimension,
/// and the destination's (see `Kernels::transpose`).
fn transpose_of(dst: &Layout, src: &Layout) -> Option<((usize, usize), usize, usize)> {
    let (shape, st) = super::kernels::merge_dims(dst.shape(), &[dst.strides(), src.strides()]);
    let [a, b] = shape[..] else { return None };
    let (d, s) = (&st[0], &st[1]);
    let ld = |x: isize, min: usize| usize::try_from(x).ok().filter(|&l| l >= min);
    if d[1] == 1 && s[0] == 1 {
        // dst row-major (a, b), src column-major: src is a row-major (b, a).
        Some(((b, a), ld(s[1], a)?, ld(d[0], b)?))
    } else if d[0] == 1 && s[1] == 1 {
        // dst column-major (a, b), src row-major (a, b).
        Some(((a, b), ld(s[0], b)?, ld(d[1], a)?))
    } else {
        None
    }
}

/// The counted blocks of a nonzero or compaction pass: the scanned per-block counts of the
/// nonzero elements of a view and their total (read back: the host waits for it).
struct Counted {
    device: Arc<DeviceState>,
    stream: Arc<StreamInner>,
    view: View<1>,
    n: usize,
    counts: CudaStorage,
    offsets: CudaStorage,
    total: usize,
}

impl CudaStorage {
    /// Counts the nonzero elements of `self[layout]` per block (C order; blocks of
    /// [`Kernels::COMPACT_BLOCK`](super::kernels::Kernels::COMPACT_BLOCK) for a compaction
    /// over a bool mask, of [`Kernels::NONZERO_BLOCK`](super::kernels::Kernels::NONZERO_BLOCK)
    /// for nonzero), scans the counts and reads the total back; `None` for an empty view.
    fn count_blocks(&self, layout: &Layout, compaction: bool) -> Result<Option<Counted>> {
        use super::kernels::Kernels;
        let n = layout.numel();
        if n == 0 {
            return Ok(None);
        }
        let (d, stream) = context(self.ordinal())?;
        let view = View::exact(layout.shape(), [layout.strides()])?;
        let block = if compaction {
            Kernels::COMPACT_BLOCK
        } else {
            Kernels::NONZERO_BLOCK
        };
        let nb = n.div_ceil(block);
        let counts = CudaStorage::alloc(self.ordinal(), DType::U32, nb)?;
        let offsets = CudaStorage::alloc(self.ordinal(), DType::U64, nb + 1)?;
        let kernels = d.kernels();
        self.buf.record_use(&stream);
        let src = self.at(layout.offset());
        if compaction {
            kernels.mask_count(&stream, src, n, view, counts.at(0))?;
        } else {
            kernels.nonzero(
                &stream,
                self.dtype,
                src,
                n,
                view,
                (counts.at(0), offsets.at(0), 0),
                0,
            )?;
        }
        kernels.scan_counts(&stream, counts.at(0), offsets.at(0), nb)?;
        let mut total = [0u8; 8];
        pinned::download(&stream, &mut total, offsets.at(nb))?;
        Ok(Some(Counted {
            device: d.clone(),
            stream,
            view,
            n,
            counts,
            offsets,
            total: u64::from_le_bytes(total) as usize,
        }))
    }

    /// `len` elements of `dtype` on device `ordinal`, contents undefined, for use on the
    /// current stream.
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available; [`Error::OutOfMemory`].
    pub(crate) fn alloc(ordinal: usize, dtype: DType, len: usize) -> Result<CudaStorage> {
        let (d, stream) = context(ordinal)?;
        let bytes = len.checked_mul(dtype.size_in_bytes()).ok_or_else(|| {
            Error::OutOfMemory(format!(
                "cannot allocate {len} elements of {dtype} on cuda:{ordinal}"
            ))
        })?;
        Ok(CudaStorage {
            buf: DeviceBuffer::alloc(&d, len, bytes, &stream)?,
            dtype,
        })
    }

    /// Storage over another library's device memory: `len` elements of `dtype` at `ptr` on
    /// device `ordinal`, kept alive by `owner` until the GPU work queued on it is done.
    ///
    /// # Safety
    /// `ptr` must address `len` elements of `dtype` in memory of that device, valid for reads
    /// and writes as long as `owner` lives, with the owner's pending writes ordered before the
    /// work of this thread's current stream.
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available.
    pub(crate) unsafe fn foreign(
        ordinal: usize,
        dtype: DType,
        ptr: u64,
        len: usize,
        owner: Box<dyn std::any::Any + Send + Sync>,
    ) -> Result<CudaStorage> {
        let (d, stream) = context(ordinal)?;
        // SAFETY: the caller's contract is the buffer's.
        let buf = unsafe { DeviceBuffer::foreign(&d, ptr, len, &stream, ForeignOwner(owner)) };
        Ok(CudaStorage { buf, dtype })
    }

    /// Makes another library's stream (`handle`: a raw `CUstream`, 1 for the legacy default
    /// stream, 2 for the per-thread one) wait on the GPU for the work queued so far on this
    /// memory, and notes the stream as a user, so that freeing the memory waits for its work.
    ///
    /// # Errors
    /// CUDA errors (an invalid handle, say).
    pub(crate) fn order_external(&self, handle: u64) -> Result<()> {
        let (d, _) = context(self.ordinal())?;
        let external = StreamInner::borrowed(d, handle);
        self.buf.order_after_uses(&external)?;
        self.buf.record_use(&external);
        Ok(())
    }

    /// The device address of element `offset`, for other libraries.
    pub(crate) fn address(&self, offset: usize) -> u64 {
        self.at(offset)
    }

    /// The device ordinal.
    pub(crate) fn ordinal(&self) -> usize {
        self.buf.device().ordinal
    }

    /// The device address of element `offset`.
    pub(super) fn at(&self, offset: usize) -> u64 {
        self.buf.ptr() + (offset * self.dtype.size_in_bytes()) as u64
    }

    /// Bytes per element.
    pub(super) fn esize(&self) -> usize {
        self.dtype.size_in_bytes()
    }

    /// Notes that work queued on `stream` uses this buffer (see `DeviceBuffer::record_use`).
    pub(super) fn record_use(&self, stream: &Arc<StreamInner>) {
        self.buf.record_use(stream);
    }

    /// Host to device: `self[dst] = host[src_layout]`, any layouts, converting the dtype.
    /// A dense source of this dtype in `dst`'s order goes straight from host memory through
    /// the pinned staging buffers; otherwise the source is made dense on the host (bits
    /// moved), uploaded in its own dtype, and copied and converted on the device. Returns
    /// once the host memory is staged (the transfer itself may still run).
    ///
    /// # Errors
    /// CUDA errors; [`Error::OutOfMemory`].
    pub(crate) fn upload(&self, dst: &Layout, host: &CpuBuffer, src_layout: &Layout) -> Result<()> {
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let (_, stream) = context(self.ordinal())?;
        let hsize = host.dtype().size_in_bytes();
        if host.dtype() == self.dtype && same_dense_order(src_layout, dst) {
            let start = src_layout.offset() * hsize;
            pinned::upload(
                &stream,
                self.at(dst.offset()),
                &host.as_bytes()[start..start + n * hsize],
            )?;
            self.buf.record_use(&stream);
            return Ok(());
        }
        let tmp = CudaStorage::alloc(self.ordinal(), host.dtype(), n)?;
        let staged_layout = if dense(src_layout) {
            let start = src_layout.offset() * hsize;
            pinned::upload(
                &stream,
                tmp.at(0),
                &host.as_bytes()[start..start + n * hsize],
            )?;
            dense_like(src_layout)
        } else {
            let staged = gather_host(host, src_layout)?;
            pinned::upload(&stream, tmp.at(0), staged.as_bytes())?;
            Layout::c_contiguous(src_layout.shape())
        };
        self.copy_within(dst, &tmp, &staged_layout, &stream)
    }

    /// Device to host: `host[dst_layout] = self[src_layout]`, any layouts, converting the
    /// dtype. Orders the copy after the work queued on every stream that used the buffer and
    /// waits for it. A dense view of the host's dtype in the host's order is copied straight
    /// into host memory; otherwise it is made dense (and converted) on the device first.
    ///
    /// # Errors
    /// CUDA errors, including those of earlier asynchronous work; [`Error::OutOfMemory`].
    pub(crate) fn download(
        &self,
        src_layout: &Layout,
        host: &mut CpuBuffer,
        dst_layout: &Layout,
    ) -> Result<()> {
        let n = src_layout.numel();
        if n == 0 {
            return Ok(());
        }
        let (_, stream) = context(self.ordinal())?;
        // Reading on the host must see every write, whichever stream made it.
        self.buf.order_after_uses(&stream)?;
        self.buf.record_use(&stream);
        let hsize = host.dtype().size_in_bytes();
        if host.dtype() == self.dtype && same_dense_order(src_layout, dst_layout) {
            let start = dst_layout.offset() * hsize;
            return pinned::download(
                &stream,
                &mut host.as_bytes_mut()[start..start + n * hsize],
                self.at(src_layout.offset()),
            );
        }
        let tl = dense_like(dst_layout);
        let tmp = CudaStorage::alloc(self.ordinal(), host.dtype(), n)?;
        tmp.copy_within(&tl, self, src_layout, &stream)?;
        if same_dense_order(&tl, dst_layout) {
            let start = dst_layout.offset() * hsize;
            return pinned::download(
                &stream,
                &mut host.as_bytes_mut()[start..start + n * hsize],
                tmp.at(0),
            );
        }
        let mut staged = CpuBuffer::zeros(host.dtype(), n)?;
        pinned::download(&stream, staged.as_bytes_mut(), tmp.at(0))?;
        scatter_host(host, dst_layout, &staged);
        Ok(())
    }

    /// `self[dst] = src[sl]` converted, both on this device (distinct memory, or identical
    /// views), enqueued on `stream`.
    fn copy_within(
        &self,
        dst: &Layout,
        src: &CudaStorage,
        sl: &Layout,
        stream: &Arc<StreamInner>,
    ) -> Result<()> {
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let d = self.buf.device();
        if self.dtype == src.dtype && same_dense_order(sl, dst) {
            // SAFETY: both ranges of n elements lie inside their buffers (validated layouts);
            // the copy is ordered on the stream.
            unsafe {
                dr::memcpy_dtod_async(
                    self.at(dst.offset()),
                    src.at(sl.offset()),
                    n * self.esize(),
                    stream.raw,
                )
            }
            .cuda("cuMemcpyDtoDAsync")?;
        } else if let Some((dims, lds, ldd)) =
            transpose_of(dst, sl).filter(|_| self.dtype == src.dtype)
        {
            let ptrs = (src.at(sl.offset()), self.at(dst.offset()));
            d.kernels()
                .transpose(stream, self.esize(), ptrs, dims, (lds, ldd))?;
        } else {
            let view = View::merged(dst.shape(), [dst.strides(), sl.strides()])?;
            let ptrs = (src.at(sl.offset()), self.at(dst.offset()));
            if self.dtype == src.dtype {
                d.kernels().copy_bits(stream, self.esize(), ptrs, n, view)?;
            } else {
                d.kernels()
                    .cast_copy(stream, (src.dtype, self.dtype), ptrs, n, view)?;
            }
        }
        src.buf.record_use(stream);
        self.buf.record_use(stream);
        Ok(())
    }

    /// `self[dst] = src[sl]` with `src` on another device: made dense in this dtype on the
    /// source device (unless it already is, in `dst`'s order), moved by a peer copy on the
    /// source's stream (ordered after the destination stream's earlier work, and before its
    /// later work, on the GPU), then spread into `dst` on this device if `dst` is strided.
    fn copy_peer(&self, dst: &Layout, src: &CudaStorage, sl: &Layout) -> Result<()> {
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let (sd, s_stream) = context(src.ordinal())?;
        let c = Layout::c_contiguous(dst.shape());
        let flat = self.dtype == src.dtype && same_dense_order(sl, dst);
        let staged = if flat {
            None
        } else {
            let t = CudaStorage::alloc(src.ordinal(), self.dtype, n)?;
            t.copy_within(&c, src, sl, &s_stream)?;
            Some(t)
        };
        let (from, from_layout) = match &staged {
            Some(t) => (t, c.clone()),
            None => (src, sl.clone()),
        };
        let (dd, d_stream) = context(self.ordinal())?;
        let direct = same_dense_order(&from_layout, dst);
        let target = if direct {
            None
        } else {
            Some(CudaStorage::alloc(self.ordinal(), self.dtype, n)?)
        };
        let (to, to_offset) = match &target {
            Some(t) => (t, 0),
            None => (self, dst.offset()),
        };
        // The copy runs on the source stream after the destination's earlier work, and the
        // destination stream waits for it: GPU-side ordering only.
        s_stream.wait_for(&d_stream)?;
        sd.bind()?;
        // SAFETY: both ranges of n elements lie inside their buffers; the contexts are the
        // owning ones; the copy is ordered on the source stream.
        unsafe {
            dr::memcpy_peer_async(
                dd.ctx(),
                to.at(to_offset),
                sd.ctx(),
                from.at(from_layout.offset()),
                n * self.esize(),
                s_stream.raw,
            )
        }
        .cuda("cuMemcpyPeerAsync")?;
        d_stream.wait_for(&s_stream)?;
        from.buf.record_use(&s_stream);
        to.buf.record_use(&s_stream);
        if let Some(t) = &target {
            dd.bind()?;
            self.copy_within(dst, t, &c, &d_stream)?;
        }
        Ok(())
    }

    /// Zeroes the 32-byte error flag of an index or loss kernel, ordered on `stream`.
    pub(super) fn zero_flag(&self, stream: &Arc<StreamInner>) -> Result<()> {
        // SAFETY: the flag holds 32 bytes; the memset is ordered on the stream.
        unsafe { dr::memset_d8_async(self.at(0), 0, 32, stream.raw) }.cuda("cuMemsetD8Async")
    }

    /// Reads the error flag of a gather, scatter or loss (waits for the stream's work so far).
    pub(super) fn check_index_error(err: &CudaStorage, stream: &Arc<StreamInner>) -> Result<()> {
        let mut words = [0u8; 32];
        pinned::download(stream, &mut words, err.at(0))?;
        let w = |i: usize| u64::from_le_bytes(words[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        if w(0) != 0 {
            return Err(Error::Index(format!(
                "index {} is out of bounds for axis {} with size {}",
                w(1) as i64,
                w(2),
                w(3)
            )));
        }
        Ok(())
    }

    /// The arguments of a gather or scatter over `plan` with the plain side viewed by
    /// `plain` (of the plan's output shape).
    fn index_args(plan: &IndexPlan, indices: &[&CudaStorage], plain: &Layout) -> Result<IndexArgs> {
        let base = &plan.base;
        let (axis, k, ni) = (plan.axis, plan.index_layouts.len(), plan.index_shape.len());
        if k > MAXK {
            return Err(Error::Index(format!(
                "CUDA gathers and scatters take at most {MAXK} index arrays, got {k}"
            )));
        }
        let out_shape = plan.out_shape();
        let nd = out_shape.len();
        let is_index_dim = |d: usize| d >= axis && d < axis + ni;
        let base_strides: Vec<isize> = (0..nd)
            .map(|d| {
                if d < axis {
                    base.strides()[d]
                } else if is_index_dim(d) {
                    0
                } else {
                    base.strides()[d - ni + k]
                }
            })
            .collect();
        let idx_strides: Vec<Vec<isize>> = plan
            .index_layouts
            .iter()
            .map(|l| {
                (0..nd)
                    .map(|d| {
                        if is_index_dim(d) {
                            l.strides()[d - axis]
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect();
        let mut all: Vec<&[isize]> = vec![plain.strides(), &base_strides];
        all.extend(idx_strides.iter().map(Vec::as_slice));
        let (ext, st) = super::kernels::merge_dims(&out_shape, &all);
        if ext.len() > MAXD {
            return Err(Error::Shape(format!(
                "CUDA gathers and scatters take at most {MAXD} dimensions that cannot be \
                 merged, got an indexed shape of {nd}"
            )));
        }
        let mut a = IndexArgs {
            shape: [1; MAXD],
            out_strides: [0; MAXD],
            base_strides: [0; MAXD],
            idx_strides: [[0; MAXD]; MAXK],
            idx: [0; MAXK],
            axis_stride: [0; MAXK],
            axis_len: [0; MAXK],
            axis_num: [0; MAXK],
            nd: ext.len() as i32,
            k: k as i32,
        };
        for (d, &e) in ext.iter().enumerate() {
            a.shape[d] = e as i64;
            a.out_strides[d] = st[0][d] as i64;
            a.base_strides[d] = st[1][d] as i64;
            for j in 0..k {
                a.idx_strides[j][d] = st[2 + j][d] as i64;
            }
        }
        for (j, (buf, l)) in indices.iter().zip(&plan.index_layouts).enumerate() {
            a.idx[j] = buf.at(l.offset());
            a.axis_stride[j] = base.strides()[axis + j] as i64;
            a.axis_len[j] = base.shape()[axis + j] as i64;
            a.axis_num[j] = (axis + j) as i64;
        }
        Ok(a)
    }

    /// A gather (`scatter` false: `plain` is the destination) or a scatter over `plan`, then
    /// the wait for the bounds check.
    fn index_op(
        &self,
        scatter: bool,
        base: &CudaStorage,
        plain: (&CudaStorage, &Layout),
        plan: &IndexPlan,
        indices: &[&CudaStorage],
    ) -> Result<()> {
        let n = plain.1.numel();
        if n == 0 {
            return Ok(());
        }
        let (d, stream) = context(self.ordinal())?;
        let args = CudaStorage::index_args(plan, indices, plain.1)?;
        let err = CudaStorage::alloc(self.ordinal(), DType::U64, 4)?;
        err.zero_flag(&stream)?;
        for i in indices {
            i.buf.record_use(&stream);
        }
        base.buf.record_use(&stream);
        plain.0.buf.record_use(&stream);
        d.kernels().index(
            &stream,
            self.esize(),
            scatter,
            (base.at(plan.base.offset()), plain.0.at(plain.1.offset())),
            n,
            &args,
            err.at(0),
        )?;
        CudaStorage::check_index_error(&err, &stream)
    }
}

impl CudaStorage {
    /// Applies the part `rest` of `plan`'s epilogue that the product did not fuse, as
    /// elementwise passes over C (a bias added, then one in-place activation pass) or, for a
    /// bias gradient, a row reduction of A into the bias.
    fn finish_epilogue(
        &self,
        plan: &MatmulPlan,
        rest: Epilogue,
        a: &CudaStorage,
        bias: Option<(&CudaStorage, &Layout)>,
    ) -> Result<()> {
        let c = &plan.c;
        match (rest.bias, bias) {
            (BiasMode::Add, Some((bs, bl))) => {
                let nd = c.ndim();
                let mut strides = vec![0isize; nd];
                strides[nd - 1] = bl.strides()[0];
                let along = Layout::new(c.shape(), &strides, bl.offset())?;
                self.binary(
                    c,
                    BinaryOp::Add,
                    Operand::Array(self, c),
                    Operand::Array(bs, &along),
                )?;
            }
            (BiasMode::RowSumsOfA, Some((bs, bl))) => {
                let sums = ReducePlan {
                    src: plan.a.clone(),
                    kept: plan.a.ndim() - 1,
                };
                bs.reduce(bl, ReduceOp::Sum, a, &sums)?;
            }
            _ => {}
        }
        match rest.activation {
            Some(act) => self.unary(c, act.unary_op(), self, c),
            None => Ok(()),
        }
    }
}

impl BackendStorage for CudaStorage {
    fn dtype(&self) -> DType {
        self.dtype
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn copy_from(&self, dst: &Layout, src: &CudaStorage, src_layout: &Layout) -> Result<()> {
        if dst.numel() == 0 {
            return Ok(());
        }
        if self.ordinal() != src.ordinal() {
            return self.copy_peer(dst, src, src_layout);
        }
        let (_, stream) = context(self.ordinal())?;
        if std::ptr::eq(self, src) {
            if dst == src_layout {
                return Ok(());
            }
            // Views of one buffer may overlap: through a dense temporary.
            let c = Layout::c_contiguous(dst.shape());
            let tmp = CudaStorage::alloc(self.ordinal(), self.dtype, dst.numel())?;
            tmp.copy_within(&c, src, src_layout, &stream)?;
            return self.copy_within(dst, &tmp, &c, &stream);
        }
        self.copy_within(dst, src, src_layout, &stream)
    }

    fn fill(&self, dst: &Layout, value: Scalar) -> Result<()> {
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let (d, stream) = context(self.ordinal())?;
        let bits = scalar_bits(self.dtype, value);
        if dense(dst) {
            d.kernels()
                .fill_dense(&stream, self.esize(), self.at(dst.offset()), n, bits)?;
        } else {
            let view = View::merged(dst.shape(), [dst.strides()])?;
            d.kernels()
                .fill(&stream, self.esize(), self.at(dst.offset()), n, view, bits)?;
        }
        self.buf.record_use(&stream);
        Ok(())
    }

    fn arange(&self, dst: &Layout, start: Scalar, step: Scalar) -> Result<()> {
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let (d, stream) = context(self.ordinal())?;
        let view = View::merged(dst.shape(), [dst.strides()])?;
        d.kernels().arange(
            &stream,
            self.dtype,
            self.at(dst.offset()),
            n,
            view,
            (start.as_f64(), step.as_f64()),
            (start.to::<i64>(), step.to::<i64>()),
        )?;
        self.buf.record_use(&stream);
        Ok(())
    }

    fn tri_zero(&self, dst: &Layout, k: i64, upper: bool) -> Result<()> {
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let (d, stream) = context(self.ordinal())?;
        // Batch dimensions merged, the matrix dimensions kept.
        let nd = dst.ndim();
        let (mut shape, mut st) =
            super::kernels::merge_dims(&dst.shape()[..nd - 2], &[&dst.strides()[..nd - 2]]);
        shape.extend_from_slice(&dst.shape()[nd - 2..]);
        st[0].extend_from_slice(&dst.strides()[nd - 2..]);
        let view = View::exact(&shape, [&st[0]])?;
        d.kernels().tri_zero(
            &stream,
            self.esize(),
            self.at(dst.offset()),
            n,
            view,
            (k, upper),
        )?;
        self.buf.record_use(&stream);
        Ok(())
    }

    fn gather(
        &self,
        dst: &Layout,
        src: &CudaStorage,
        plan: &IndexPlan,
        indices: &[&CudaStorage],
    ) -> Result<()> {
        self.index_op(false, src, (self, dst), plan, indices)
    }

    fn scatter(
        &self,
        plan: &IndexPlan,
        indices: &[&CudaStorage],
        values: &CudaStorage,
        values_layout: &Layout,
    ) -> Result<()> {
        if values.dtype != self.dtype {
            return Err(Error::DType(format!(
                "scatter of {} values into {}: the values must be converted first",
                values.dtype, self.dtype
            )));
        }
        self.index_op(true, self, (values, values_layout), plan, indices)
    }

    fn nonzero(&self, layout: &Layout) -> Result<(CudaStorage, usize)> {
        let nd = layout.ndim();
        let Some(c) = self.count_blocks(layout, false)? else {
            return Ok((CudaStorage::alloc(self.ordinal(), DType::I64, 0)?, 0));
        };
        let out = CudaStorage::alloc(self.ordinal(), DType::I64, c.total * nd)?;
        if c.total > 0 {
            c.device.kernels().nonzero(
                &c.stream,
                self.dtype,
                self.at(layout.offset()),
                c.n,
                c.view,
                (c.counts.at(0), c.offsets.at(0), out.at(0)),
                1,
            )?;
            out.buf.record_use(&c.stream);
        }
        Ok((out, c.total))
    }

    fn compress(
        &self,
        layout: &Layout,
        mask: &CudaStorage,
        mask_layout: &Layout,
    ) -> Result<(CudaStorage, usize)> {
        let Some(c) = mask.count_blocks(mask_layout, true)? else {
            return Ok((CudaStorage::alloc(self.ordinal(), self.dtype, 0)?, 0));
        };
        let out = CudaStorage::alloc(self.ordinal(), self.dtype, c.total)?;
        if c.total > 0 {
            let view = View::merged(
                mask_layout.shape(),
                [mask_layout.strides(), layout.strides()],
            )?;
            self.buf.record_use(&c.stream);
            out.buf.record_use(&c.stream);
            c.device.kernels().compact(
                &c.stream,
                self.esize(),
                false,
                (
                    mask.at(mask_layout.offset()),
                    self.at(layout.offset()),
                    out.at(0),
                ),
                c.n,
                view,
                c.offsets.at(0),
                1,
            )?;
        }
        Ok((out, c.total))
    }

    fn masked_scatter(
        &self,
        dst: &Layout,
        mask: &CudaStorage,
        mask_layout: &Layout,
        values: &CudaStorage,
        values_layout: &Layout,
    ) -> Result<()> {
        let Some(c) = mask.count_blocks(mask_layout, true)? else {
            return Ok(());
        };
        if values_layout.numel() != c.total {
            return Err(Error::Shape(format!(
                "cannot assign {} values to the {} elements a boolean mask selects",
                values_layout.numel(),
                c.total
            )));
        }
        if c.total > 0 {
            let view = View::merged(mask_layout.shape(), [mask_layout.strides(), dst.strides()])?;
            self.buf.record_use(&c.stream);
            values.buf.record_use(&c.stream);
            c.device.kernels().compact(
                &c.stream,
                self.esize(),
                true,
                (
                    mask.at(mask_layout.offset()),
                    self.at(dst.offset()),
                    values.at(values_layout.offset()),
                ),
                c.n,
                view,
                c.offsets.at(0),
                values_layout.strides()[0] as i64,
            )?;
        }
        Ok(())
    }

    fn masked_copy(
        &self,
        dst: &Layout,
        mask: &CudaStorage,
        mask_layout: &Layout,
        src: &CudaStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let (d, stream) = context(self.ordinal())?;
        let ptrs = (
            self.at(dst.offset()),
            mask.at(mask_layout.offset()),
            src.at(src_layout.offset()),
        );
        // Dense operands (a broadcast scalar source too) take 16-byte loads and stores.
        let per = 16 / self.esize().max(1);
        let dense = |l: &Layout| l.is_c_contiguous();
        let scalar_src = src_layout.strides().iter().all(|&s| s == 0);
        if self.esize() >= 4
            && n.is_multiple_of(per)
            && dense(dst)
            && dense(mask_layout)
            && (scalar_src || dense(src_layout))
            && ptrs.0.is_multiple_of(16)
            && ptrs.1.is_multiple_of(per as u64)
            && (scalar_src || ptrs.2.is_multiple_of(16))
        {
            d.kernels().masked_copy_dense(
                &stream,
                self.esize(),
                ptrs,
                n,
                i32::from(!scalar_src),
            )?;
            for b in [&self.buf, &mask.buf, &src.buf] {
                b.record_use(&stream);
            }
            return Ok(());
        }
        let view = View::merged(
            dst.shape(),
            [dst.strides(), mask_layout.strides(), src_layout.strides()],
        )?;
        d.kernels()
            .masked_copy(&stream, self.esize(), ptrs, n, view)?;
        for b in [&self.buf, &mask.buf, &src.buf] {
            b.record_use(&stream);
        }
        Ok(())
    }

    fn random(&self, dst: &Layout, spec: &RandomSpec) -> Result<()> {
        let dtype = self.dtype;
        if matches!(spec.dist, Distribution::Integers { .. }) != dtype.is_integer() {
            return Err(Error::DType(format!(
                "random: cannot draw {:?} as {dtype}",
                spec.dist
            )));
        }
        let n = dst.numel();
        if n == 0 {
            return Ok(());
        }
        let (d, stream) = context(self.ordinal())?;
        let (dist, a, b, low, span) = match spec.dist {
            Distribution::Uniform { low, high } => (0, low, high, 0, 0),
            Distribution::Normal { mean, std } => (1, mean, std, 0, 0),
            Distribution::Integers { low, span } => (2, 0.0, 0.0, low, span),
        };
        let args = RandomArgs {
            seed: spec.seed,
            counter: spec.counter,
            dist,
            wide: crate::random::wide(dtype, &spec.dist),
            a,
            b,
            low,
            span,
        };
        d.kernels()
            .random(&stream, dtype, self.at(dst.offset()), n, args)?;
        self.buf.record_use(&stream);
        Ok(())
    }

    fn matmul(
        &self,
        plan: &MatmulPlan,
        a: &CudaStorage,
        b: &CudaStorage,
        bias: Option<(&CudaStorage, &Layout)>,
    ) -> Result<()> {
        let (dtype, out) = (a.dtype, self.dtype);
        let widened = out == DType::F32 && matches!(dtype, DType::F16 | DType::BF16);
        if !dtype.is_float()
            || b.dtype != dtype
            || !(out == dtype || widened)
            || bias.is_some_and(|(s, _)| s.dtype != dtype)
        {
            return Err(Error::DType(format!(
                "matmul on CUDA supports float16, bfloat16, float32 and float64 operands of \
                 one dtype into that dtype (or float16 and bfloat16 into float32), got {}, {} \
                 into {out}",
                a.dtype, b.dtype
            )));
        }
        if widened && (bias.is_some() || !plan.epilogue.is_none()) {
            return Err(Error::DType(format!(
                "matmul on CUDA: a float32 result of {dtype} operands takes no bias or activation"
            )));
        }
        if plan.m == 0 || plan.n == 0 || plan.batch.contains(&0) {
            // C is empty, but a bias gradient (the row sums of A) may not be.
            let grad = Epilogue {
                bias: plan.epilogue.bias,
                activation: None,
            };
            return match plan.epilogue.bias {
                BiasMode::RowSumsOfA => self.finish_epilogue(plan, grad, a, bias),
                _ => Ok(()),
            };
        }
        if plan.k == 0 {
            self.fill(&plan.c, Scalar::Int(0))?;
            return self.finish_epilogue(plan, plan.epilogue, a, bias);
        }
        let (d, stream) = context(self.ordinal())?;
        let rest = super::matmul::matmul(
            &d,
            &stream,
            plan,
            (dtype, out),
            &a.buf,
            &b.buf,
            &self.buf,
            bias.map(|(s, l)| (&s.buf, l)),
        )?;
        self.finish_epilogue(plan, rest, a, bias)
    }

    fn unary(
        &self,
        dst: &Layout,
        op: UnaryOp,
        src: &CudaStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        super::elementwise::unary(self, dst, op, src, src_layout)
    }

    fn binary(
        &self,
        dst: &Layout,
        op: BinaryOp,
        a: Operand<'_, CudaStorage>,
        b: Operand<'_, CudaStorage>,
    ) -> Result<()> {
        super::elementwise::binary(self, dst, op, a, b)
    }

    fn reduce(
        &self,
        dst: &Layout,
        op: ReduceOp,
        src: &CudaStorage,
        plan: &ReducePlan,
    ) -> Result<()> {
        super::reduce::reduce(self, dst, op, src, plan)
    }

    fn scan(&self, dst: &Layout, op: ScanOp, src: &CudaStorage, src_layout: &Layout) -> Result<()> {
        super::reduce::scan(self, dst, op, src, src_layout)
    }

    fn rowwise(&self, dst: &Layout, plan: &RowPlan, args: &RowArgs<'_, CudaStorage>) -> Result<()> {
        super::rowwise::rowwise(self, dst, plan, args)
    }

    fn cross_entropy(
        &self,
        dst: &Layout,
        logits: (&CudaStorage, &Layout),
        target: (&CudaStorage, &Layout),
        grad: Option<f64>,
    ) -> Result<()> {
        super::loss::cross_entropy(self, dst, logits, target, grad)
    }

    fn csr_check(a: &CsrArgs<'_, Self>) -> Result<bool> {
        super::sparse::csr_check(a)
    }

    fn coo_to_csr(
        rows: usize,
        cols: usize,
        row: &Self,
        col: &Self,
        data: &Self,
        index: DType,
    ) -> Result<CsrParts<Self>> {
        super::sparse::coo_to_csr(rows, cols, row, col, data, index)
    }

    fn csr_canonical(a: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>> {
        super::sparse::csr_canonical(a)
    }

    fn csr_transpose(a: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>> {
        super::sparse::csr_transpose(a)
    }

    fn csr_to_dense(&self, dst: &Layout, a: &CsrArgs<'_, Self>) -> Result<()> {
        super::sparse::csr_to_dense(self, dst, a)
    }

    fn csr_dense(
        &self,
        dst: &Layout,
        plan: &SparseDensePlan,
        a: &CsrArgs<'_, Self>,
        x: &Self,
        x_layout: &Layout,
    ) -> Result<()> {
        super::sparse::csr_dense(self, dst, plan, a, x, x_layout)
    }

    fn spgemm(a: &CsrArgs<'_, Self>, b: &CsrArgs<'_, Self>) -> Result<CsrParts<Self>> {
        super::sparse::spgemm(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer-copy path with both ends on one device: everything but the cross-device DMA,
    /// which needs two GPUs.
    #[test]
    fn peer_copy_path_on_one_device() {
        if let Err(e) = crate::cuda::device_count().and_then(|n| {
            if n == 0 {
                Err(Error::Device("no CUDA device".into()))
            } else {
                Ok(n)
            }
        }) {
            assert!(
                std::env::var("POCAFLOW_REQUIRE_CUDA").as_deref() != Ok("1"),
                "POCAFLOW_REQUIRE_CUDA=1 but CUDA is not usable: {e}"
            );
            return;
        }
        let host: Vec<f32> = (0..600).map(|i| i as f32).collect();
        let c = Layout::c_contiguous(&[30, 20]);
        let src = CudaStorage::alloc(0, DType::F32, 600).unwrap();
        src.upload(&c, &CpuBuffer::from_vec(host.clone()), &c)
            .unwrap();
        let read = |s: &CudaStorage, dtype: DType, l: &Layout| {
            let mut out = CpuBuffer::zeros(dtype, l.numel()).unwrap();
            s.download(l, &mut out, &Layout::c_contiguous(l.shape()))
                .unwrap();
            out
        };
        // Dense to dense; a transposed source into a C-order float64 target (converted into a
        // dense staging copy first); a dense source into a transposed target (spread on the
        // destination after the copy).
        let dense = CudaStorage::alloc(0, DType::F32, 600).unwrap();
        dense.copy_peer(&c, &src, &c).unwrap();
        assert_eq!(
            read(&dense, DType::F32, &c).as_slice::<f32>().unwrap(),
            &host[..]
        );
        let ct = Layout::c_contiguous(&[20, 30]);
        let converted = CudaStorage::alloc(0, DType::F64, 600).unwrap();
        converted.copy_peer(&ct, &src, &c.t()).unwrap();
        let want: Vec<f64> = (0..600).map(|i| ((i % 30) * 20 + i / 30) as f64).collect();
        assert_eq!(
            read(&converted, DType::F64, &ct).as_slice::<f64>().unwrap(),
            &want[..]
        );
        let target = CudaStorage::alloc(0, DType::F32, 600).unwrap();
        target.copy_peer(&ct.t(), &src, &c).unwrap();
        let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert_eq!(
            read(&target, DType::F32, &ct).as_slice::<f32>().unwrap(),
            &want[..]
        );
    }
}

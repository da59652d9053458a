//! [`Storage`]: the memory behind tensors, on one device. This is the one place that matches on
//! the device: every backend primitive is reached through a method here, which hands the
//! backend its own buffer type (see [`crate::backend`]).

use crate::backend::{BackendStorage, CsrArgs, CsrParts, Operand, RowArgs};
use crate::cpu::CpuStorage;
use crate::device::Device;
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::{
    BinaryOp, IndexPlan, MatmulPlan, RandomSpec, ReduceOp, ReducePlan, RowPlan, ScanOp,
    SparseDensePlan, UnaryOp,
};
use std::sync::{Arc, RwLockReadGuard};

/// Memory of one dtype on one device.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
    /// Memory of a CUDA device (stream-ordered; see `cuda::memory`).
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

#[cfg(not(feature = "cuda"))]
fn no_cuda() -> Error {
    Error::Device("CUDA is not available: pocaflow was built without the `cuda` feature".into())
}

impl Device {
    /// The CUDA device `ordinal`, after checking that it exists and can be used.
    ///
    /// # Errors
    /// [`Error::Device`] when pocaflow was built without CUDA, no CUDA driver or library is found,
    /// or `ordinal` is not below the device count.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        let count = cuda_device_count()?;
        if ordinal >= count {
            return Err(Error::Device(format!(
                "CUDA device cuda:{ordinal} requested but only {count} device(s) are visible"
            )));
        }
        Ok(Device::Cuda(ordinal))
    }

    /// Checks that the device can be used now (a CUDA device must exist).
    ///
    /// # Errors
    /// As [`Device::cuda`].
    pub fn ensure_available(self) -> Result<Device> {
        match self {
            Device::Cpu => Ok(self),
            Device::Cuda(i) => Device::cuda(i),
        }
    }
}

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

/// Runs `$body` with `$a`, `$b`, ... bound to the backend storages of one backend, or fails
/// naming the two devices.
macro_rules! same_backend {
    ($op:expr, ($($s:expr => $v:ident),+), $body:expr) => {{
        #[allow(unreachable_patterns)]
        match ($($s,)+) {
            ($(Storage::Cpu($v),)+) => $body,
            #[cfg(feature = "cuda")]
            ($(Storage::Cuda($v),)+) => $body,
            _ => Err(mixed($op, &[$($s),+])),
        }
    }};
}

fn mixed(op: &str, storages: &[&Storage]) -> Error {
    let first = storages[0].device();
    let other = storages
        .iter()
        .map(|s| s.device())
        .find(|&d| d != first)
        .unwrap_or(first);
    Error::Device(format!(
        "{op}: expected all arrays on one device, got {first} and {other}"
    ))
}

impl Storage {
    /// Host storage over `buf`.
    pub(crate) fn cpu(buf: CpuBuffer) -> Arc<Storage> {
        Arc::new(Storage::Cpu(CpuStorage::new(buf)))
    }

    /// `len` elements of `dtype` on `device`: zeros when `zeroed`, else contents undefined
    /// (on the CPU, the old values of a cached block, or zeros).
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available; [`Error::OutOfMemory`].
    pub(crate) fn alloc(
        device: Device,
        dtype: DType,
        len: usize,
        zeroed: bool,
    ) -> Result<Arc<Storage>> {
        match device {
            Device::Cpu if zeroed => Ok(Storage::cpu(CpuBuffer::zeros(dtype, len)?)),
            Device::Cpu => Ok(Storage::cpu(CpuBuffer::for_overwrite(dtype, len)?)),
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => {
                Device::cuda(i)?;
                let s = crate::cuda::CudaStorage::alloc(i, dtype, len)?;
                if zeroed {
                    s.fill(&Layout::c_contiguous(&[len]), Scalar::Int(0))?;
                }
                Ok(Arc::new(Storage::Cuda(s)))
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => {
                let _ = zeroed;
                Err(no_cuda())
            }
        }
    }

    /// Storage over another library's memory on `device`: `len` elements of `dtype` at
    /// address `ptr`, kept alive by `owner`.
    ///
    /// # Safety
    /// As [`CpuBuffer::from_foreign`] for the CPU; on CUDA, `ptr` addresses memory of that
    /// device and the owner's pending writes are ordered before this thread's current stream.
    ///
    /// # Errors
    /// [`Error::Device`] if the device is not available.
    pub(crate) unsafe fn foreign(
        device: Device,
        dtype: DType,
        ptr: u64,
        len: usize,
        owner: Box<dyn std::any::Any + Send + Sync>,
    ) -> Result<Arc<Storage>> {
        match device {
            Device::Cpu => {
                // SAFETY: the caller's contract is the buffer's.
                let buf =
                    unsafe { CpuBuffer::from_foreign(dtype, ptr as usize as *mut u8, len, owner) };
                Ok(Storage::cpu(buf))
            }
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => {
                // SAFETY: the caller's contract is the storage's.
                let s = unsafe { crate::cuda::CudaStorage::foreign(i, dtype, ptr, len, owner) }?;
                Ok(Arc::new(Storage::Cuda(s)))
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => {
                let _ = (dtype, ptr, len, owner);
                Err(no_cuda())
            }
        }
    }

    /// The address of element `offset` in host or device memory, for other libraries.
    pub(crate) fn address(&self, offset: usize) -> u64 {
        match self {
            Storage::Cpu(s) => {
                let buf = s.read();
                buf.as_ptr() as usize as u64 + (offset * buf.dtype().size_in_bytes()) as u64
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.address(offset),
        }
    }

    /// Makes another library's CUDA stream wait for the work queued so far on this memory
    /// (see `CudaStorage::order_external`); host memory has nothing to order.
    ///
    /// # Errors
    /// CUDA errors.
    pub(crate) fn order_external_stream(&self, handle: u64) -> Result<()> {
        match self {
            Storage::Cpu(_) => {
                let _ = handle;
                Ok(())
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.order_external(handle),
        }
    }

    /// The CUDA memory, if this storage is on a GPU.
    #[cfg(feature = "cuda")]
    pub(crate) fn as_cuda(&self) -> Option<&crate::cuda::CudaStorage> {
        match self {
            Storage::Cpu(_) => None,
            Storage::Cuda(s) => Some(s),
        }
    }

    /// The element type.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }

    /// The device the memory is on.
    pub(crate) fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Device::Cuda(s.ordinal()),
        }
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.len(),
        }
    }

    /// Whether the memory of `self` and `other` may overlap: the same storage, or (on the CPU)
    /// two storages over one foreign memory, such as two arrays that share a NumPy buffer.
    pub(crate) fn overlaps(&self, other: &Storage) -> bool {
        match (self, other) {
            (Storage::Cpu(a), Storage::Cpu(b)) => a.overlaps(b),
            #[allow(unreachable_patterns)]
            _ => std::ptr::eq(self, other),
        }
    }

    /// Whether matmul operands on this storage's device must be BLAS-describable (order and
    /// leading dimension); the CPU GEMM packs any strides itself.
    pub(crate) fn needs_blas_operands(&self) -> bool {
        !matches!(self, Storage::Cpu(_))
    }

    /// The host buffer for reading; `None` for device storage.
    pub(crate) fn read_cpu(&self) -> Option<RwLockReadGuard<'_, CpuBuffer>> {
        match self {
            Storage::Cpu(s) => Some(s.read()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => None,
        }
    }

    /// The host buffer itself, if this is host storage.
    pub(crate) fn into_cpu_buffer(self) -> Option<CpuBuffer> {
        match self {
            Storage::Cpu(s) => Some(s.into_inner()),
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => None,
        }
    }

    /// `self[dst] = src[src_layout]` converted, within a device or across devices (host to
    /// device, device to host, between devices).
    pub(crate) fn copy_from(&self, dst: &Layout, src: &Storage, src_layout: &Layout) -> Result<()> {
        match (self, src) {
            (Storage::Cpu(d), Storage::Cpu(s)) => d.copy_from(dst, s, src_layout),
            #[cfg(feature = "cuda")]
            (Storage::Cuda(d), Storage::Cuda(s)) => d.copy_from(dst, s, src_layout),
            #[cfg(feature = "cuda")]
            (Storage::Cuda(d), Storage::Cpu(s)) => d.upload(dst, &s.read(), src_layout),
            #[cfg(feature = "cuda")]
            (Storage::Cpu(d), Storage::Cuda(s)) => s.download(src_layout, &mut d.write(), dst),
        }
    }

    /// See [`BackendStorage::fill`].
    pub(crate) fn fill(&self, dst: &Layout, value: Scalar) -> Result<()> {
        same_backend!("fill", (self => d), d.fill(dst, value))
    }

    /// See [`BackendStorage::arange`].
    pub(crate) fn arange(&self, dst: &Layout, start: Scalar, step: Scalar) -> Result<()> {
        same_backend!("arange", (self => d), d.arange(dst, start, step))
    }

    /// See [`BackendStorage::tri_zero`].
    pub(crate) fn tri_zero(&self, dst: &Layout, k: i64, upper: bool) -> Result<()> {
        same_backend!("tril/triu", (self => d), d.tri_zero(dst, k, upper))
    }

    /// See [`BackendStorage::random`].
    pub(crate) fn random(&self, dst: &Layout, spec: &RandomSpec) -> Result<()> {
        same_backend!("random", (self => d), d.random(dst, spec))
    }

    /// See [`BackendStorage::gather`].
    pub(crate) fn gather(
        &self,
        dst: &Layout,
        src: &Storage,
        plan: &IndexPlan,
        indices: &[&Storage],
    ) -> Result<()> {
        match (self, src) {
            (Storage::Cpu(d), Storage::Cpu(s)) => {
                let idx = indices.iter().map(|i| match i {
                    Storage::Cpu(c) => Ok(c),
                    #[allow(unreachable_patterns)]
                    _ => Err(mixed("indexing", &[self, i])),
                });
                d.gather(dst, s, plan, &idx.collect::<Result<Vec<_>>>()?)
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(d), Storage::Cuda(s)) => {
                let idx = indices.iter().map(|i| match i {
                    Storage::Cuda(c) => Ok(c),
                    _ => Err(mixed("indexing", &[self, i])),
                });
                d.gather(dst, s, plan, &idx.collect::<Result<Vec<_>>>()?)
            }
            #[allow(unreachable_patterns)]
            _ => Err(mixed("indexing", &[self, src])),
        }
    }

    /// See [`BackendStorage::scatter`].
    pub(crate) fn scatter(
        &self,
        plan: &IndexPlan,
        indices: &[&Storage],
        values: &Storage,
        values_layout: &Layout,
    ) -> Result<()> {
        match (self, values) {
            (Storage::Cpu(d), Storage::Cpu(v)) => {
                let idx = indices.iter().map(|i| match i {
                    Storage::Cpu(c) => Ok(c),
                    #[allow(unreachable_patterns)]
                    _ => Err(mixed("index assignment", &[self, i])),
                });
                d.scatter(plan, &idx.collect::<Result<Vec<_>>>()?, v, values_layout)
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(d), Storage::Cuda(v)) => {
                let idx = indices.iter().map(|i| match i {
                    Storage::Cuda(c) => Ok(c),
                    _ => Err(mixed("index assignment", &[self, i])),
                });
                d.scatter(plan, &idx.collect::<Result<Vec<_>>>()?, v, values_layout)
            }
            #[allow(unreachable_patterns)]
            _ => Err(mixed("index assignment", &[self, values])),
        }
    }

    /// See [`BackendStorage::nonzero`].
    pub(crate) fn nonzero(&self, layout: &Layout) -> Result<(Arc<Storage>, usize)> {
        match self {
            Storage::Cpu(s) => s
                .nonzero(layout)
                .map(|(b, n)| (Arc::new(Storage::Cpu(b)), n)),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s
                .nonzero(layout)
                .map(|(b, n)| (Arc::new(Storage::Cuda(b)), n)),
        }
    }

    /// See [`BackendStorage::compress`].
    pub(crate) fn compress(
        &self,
        layout: &Layout,
        mask: &Storage,
        mask_layout: &Layout,
    ) -> Result<(Arc<Storage>, usize)> {
        match (self, mask) {
            (Storage::Cpu(s), Storage::Cpu(m)) => s
                .compress(layout, m, mask_layout)
                .map(|(b, n)| (Arc::new(Storage::Cpu(b)), n)),
            #[cfg(feature = "cuda")]
            (Storage::Cuda(s), Storage::Cuda(m)) => s
                .compress(layout, m, mask_layout)
                .map(|(b, n)| (Arc::new(Storage::Cuda(b)), n)),
            #[allow(unreachable_patterns)]
            _ => Err(mixed("boolean indexing", &[self, mask])),
        }
    }

    /// See [`BackendStorage::masked_scatter`].
    pub(crate) fn masked_scatter(
        &self,
        dst: &Layout,
        mask: &Storage,
        mask_layout: &Layout,
        values: &Storage,
        values_layout: &Layout,
    ) -> Result<()> {
        same_backend!(
            "masked assignment",
            (self => d, mask => m, values => v),
            d.masked_scatter(dst, m, mask_layout, v, values_layout)
        )
    }

    /// See [`BackendStorage::masked_copy`].
    pub(crate) fn masked_copy(
        &self,
        dst: &Layout,
        mask: &Storage,
        mask_layout: &Layout,
        src: &Storage,
        src_layout: &Layout,
    ) -> Result<()> {
        same_backend!(
            "masked assignment",
            (self => d, mask => m, src => s),
            d.masked_copy(dst, m, mask_layout, s, src_layout)
        )
    }

    /// See [`BackendStorage::matmul`].
    pub(crate) fn matmul(
        &self,
        plan: &MatmulPlan,
        a: &Storage,
        b: &Storage,
        bias: Option<(&Storage, &Layout)>,
    ) -> Result<()> {
        match bias {
            None => {
                same_backend!("matmul", (self => c, a => a, b => b), c.matmul(plan, a, b, None))
            }
            Some((bias, bl)) => same_backend!(
                "matmul",
                (self => c, a => a, b => b, bias => bias),
                c.matmul(plan, a, b, Some((bias, bl)))
            ),
        }
    }

    /// See [`BackendStorage::unary`].
    pub(crate) fn unary(
        &self,
        dst: &Layout,
        op: UnaryOp,
        src: &Storage,
        src_layout: &Layout,
    ) -> Result<()> {
        same_backend!(op.name(), (self => d, src => s), d.unary(dst, op, s, src_layout))
    }

    /// See [`BackendStorage::binary`].
    pub(crate) fn binary(
        &self,
        dst: &Layout,
        op: BinaryOp,
        a: Operand<'_, Storage>,
        b: Operand<'_, Storage>,
    ) -> Result<()> {
        use Operand::{Array, Scalar as Value};
        match (a, b) {
            (Array(x, xl), Array(y, yl)) => same_backend!(
                op.name(),
                (self => d, x => x, y => y),
                d.binary(dst, op, Array(x, xl), Array(y, yl))
            ),
            (Array(x, xl), Value(v)) => same_backend!(
                op.name(),
                (self => d, x => x),
                d.binary(dst, op, Array(x, xl), Value(v))
            ),
            (Value(v), Array(y, yl)) => same_backend!(
                op.name(),
                (self => d, y => y),
                d.binary(dst, op, Value(v), Array(y, yl))
            ),
            (Value(v), Value(w)) => {
                same_backend!(op.name(), (self => d), d.binary(dst, op, Value(v), Value(w)))
            }
        }
    }

    /// See [`BackendStorage::reduce`].
    pub(crate) fn reduce(
        &self,
        dst: &Layout,
        op: ReduceOp,
        src: &Storage,
        plan: &ReducePlan,
    ) -> Result<()> {
        same_backend!(op.name(), (self => d, src => s), d.reduce(dst, op, s, plan))
    }

    /// See [`BackendStorage::scan`].
    pub(crate) fn scan(
        &self,
        dst: &Layout,
        op: ScanOp,
        src: &Storage,
        src_layout: &Layout,
    ) -> Result<()> {
        same_backend!(op.name(), (self => d, src => s), d.scan(dst, op, s, src_layout))
    }

    /// See [`BackendStorage::rowwise`].
    pub(crate) fn rowwise(
        &self,
        dst: &Layout,
        plan: &RowPlan,
        args: &RowArgs<'_, Storage>,
    ) -> Result<()> {
        let all = || {
            let mut v = vec![self, args.x.0];
            v.extend(
                [args.dy, args.weight, args.bias, args.stats]
                    .into_iter()
                    .flatten()
                    .map(|o| o.0),
            );
            v
        };
        match self {
            Storage::Cpu(d) => {
                let args = args.map(|s| match s {
                    Storage::Cpu(c) => Some(c),
                    #[cfg(feature = "cuda")]
                    _ => None,
                });
                d.rowwise(
                    dst,
                    plan,
                    &args.ok_or_else(|| mixed(plan.op.name(), &all()))?,
                )
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(d) => {
                let args = args.map(|s| match s {
                    Storage::Cuda(c) => Some(c),
                    _ => None,
                });
                d.rowwise(
                    dst,
                    plan,
                    &args.ok_or_else(|| mixed(plan.op.name(), &all()))?,
                )
            }
        }
    }

    /// See [`BackendStorage::cross_entropy`].
    pub(crate) fn cross_entropy(
        &self,
        dst: &Layout,
        (logits, ll): (&Storage, &Layout),
        (target, tl): (&Storage, &Layout),
        grad: Option<f64>,
    ) -> Result<()> {
        same_backend!(
            "cross_entropy",
            (self => d, logits => l, target => t),
            d.cross_entropy(dst, (l, ll), (t, tl), grad)
        )
    }
}

/// A CSR matrix's arrays as CPU storages, or `None` if one is elsewhere.
fn cpu_csr<'a>(a: &CsrArgs<'a, Storage>) -> Option<CsrArgs<'a, CpuStorage>> {
    a.map(|s| match s {
        Storage::Cpu(c) => Some(c),
        #[cfg(feature = "cuda")]
        _ => None,
    })
}

/// A CSR matrix's arrays as CUDA storages, or `None` if one is elsewhere.
#[cfg(feature = "cuda")]
fn cuda_csr<'a>(a: &CsrArgs<'a, Storage>) -> Option<CsrArgs<'a, crate::cuda::CudaStorage>> {
    a.map(|s| match s {
        Storage::Cuda(c) => Some(c),
        _ => None,
    })
}

/// The error for sparse operands spread over devices.
fn mixed_csr(op: &str, matrices: &[&CsrArgs<'_, Storage>], more: &[&Storage]) -> Error {
    let mut all: Vec<&Storage> = matrices
        .iter()
        .flat_map(|a| [a.indptr, a.indices, a.data])
        .collect();
    all.extend_from_slice(more);
    mixed(op, &all)
}

/// New CSR parts of one backend as shared storages.
fn wrap_parts<S>(parts: CsrParts<S>, wrap: impl Fn(S) -> Storage) -> CsrParts<Arc<Storage>> {
    parts.map(|s| Arc::new(wrap(s)))
}

/// The CSR-to-CSR primitive `$method` of the backend holding every array of `$a`; an error
/// naming `$op` when they are spread over devices.
macro_rules! csr_to_csr {
    ($a:expr, $method:ident, $op:expr) => {{
        if let Some(c) = cpu_csr($a) {
            return Ok(wrap_parts(CpuStorage::$method(&c)?, Storage::Cpu));
        }
        #[cfg(feature = "cuda")]
        if let Some(c) = cuda_csr($a) {
            let parts = crate::cuda::CudaStorage::$method(&c)?;
            return Ok(wrap_parts(parts, Storage::Cuda));
        }
        Err(mixed_csr($op, &[$a], &[]))
    }};
}

impl Storage {
    /// See [`BackendStorage::csr_check`].
    pub(crate) fn csr_check(a: &CsrArgs<'_, Storage>) -> Result<bool> {
        if let Some(c) = cpu_csr(a) {
            return CpuStorage::csr_check(&c);
        }
        #[cfg(feature = "cuda")]
        if let Some(c) = cuda_csr(a) {
            return crate::cuda::CudaStorage::csr_check(&c);
        }
        Err(mixed_csr("sparse matrix", &[a], &[]))
    }

    /// See [`BackendStorage::coo_to_csr`].
    pub(crate) fn coo_to_csr(
        shape: (usize, usize),
        row: &Storage,
        col: &Storage,
        data: &Storage,
        index: DType,
    ) -> Result<CsrParts<Arc<Storage>>> {
        let (rows, cols) = shape;
        match (row, col, data) {
            (Storage::Cpu(r), Storage::Cpu(c), Storage::Cpu(d)) => Ok(wrap_parts(
                CpuStorage::coo_to_csr(rows, cols, r, c, d, index)?,
                Storage::Cpu,
            )),
            #[cfg(feature = "cuda")]
            (Storage::Cuda(r), Storage::Cuda(c), Storage::Cuda(d)) => Ok(wrap_parts(
                crate::cuda::CudaStorage::coo_to_csr(rows, cols, r, c, d, index)?,
                Storage::Cuda,
            )),
            #[allow(unreachable_patterns)]
            _ => Err(mixed("COO to CSR", &[row, col, data])),
        }
    }

    /// See [`BackendStorage::csr_canonical`].
    pub(crate) fn csr_canonical(a: &CsrArgs<'_, Storage>) -> Result<CsrParts<Arc<Storage>>> {
        csr_to_csr!(a, csr_canonical, "sum_duplicates")
    }

    /// See [`BackendStorage::csr_transpose`].
    pub(crate) fn csr_transpose(a: &CsrArgs<'_, Storage>) -> Result<CsrParts<Arc<Storage>>> {
        csr_to_csr!(a, csr_transpose, "sparse transpose")
    }

    /// See [`BackendStorage::csr_to_dense`].
    pub(crate) fn csr_to_dense(&self, dst: &Layout, a: &CsrArgs<'_, Storage>) -> Result<()> {
        match self {
            Storage::Cpu(d) => {
                if let Some(c) = cpu_csr(a) {
                    return d.csr_to_dense(dst, &c);
                }
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(d) => {
                if let Some(c) = cuda_csr(a) {
                    return d.csr_to_dense(dst, &c);
                }
            }
        }
        Err(mixed_csr("todense", &[a], &[self]))
    }

    /// See [`BackendStorage::csr_dense`].
    pub(crate) fn csr_dense(
        &self,
        dst: &Layout,
        plan: &SparseDensePlan,
        a: &CsrArgs<'_, Storage>,
        (x, x_layout): (&Storage, &Layout),
    ) -> Result<()> {
        match (self, x) {
            (Storage::Cpu(d), Storage::Cpu(xs)) => {
                if let Some(c) = cpu_csr(a) {
                    return d.csr_dense(dst, plan, &c, xs, x_layout);
                }
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(d), Storage::Cuda(xs)) => {
                if let Some(c) = cuda_csr(a) {
                    return d.csr_dense(dst, plan, &c, xs, x_layout);
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
        Err(mixed_csr("sparse matmul", &[a], &[self, x]))
    }

    /// See [`BackendStorage::spgemm`].
    pub(crate) fn spgemm(
        a: &CsrArgs<'_, Storage>,
        b: &CsrArgs<'_, Storage>,
    ) -> Result<CsrParts<Arc<Storage>>> {
        if let (Some(x), Some(y)) = (cpu_csr(a), cpu_csr(b)) {
            return Ok(wrap_parts(CpuStorage::spgemm(&x, &y)?, Storage::Cpu));
        }
        #[cfg(feature = "cuda")]
        if let (Some(x), Some(y)) = (cuda_csr(a), cuda_csr(b)) {
            let parts = crate::cuda::CudaStorage::spgemm(&x, &y)?;
            return Ok(wrap_parts(parts, Storage::Cuda));
        }
        Err(mixed_csr("sparse matmul", &[a, b], &[]))
    }
}

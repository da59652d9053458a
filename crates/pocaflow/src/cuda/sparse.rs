//! Sparse products on CUDA through cuSPARSE's generic API: SpMV, SpMM, SpGEMM, the CSR
//! transpose (`csr2csc`) and sparse-to-dense. One handle per device, made on first use (cuSPARSE
//! is loaded then, so a machine without it still runs everything else); sparse-matrix
//! descriptors are cached by their pointers and sizes (a descriptor holds nothing else);
//! workspaces come from the caching pool, ordered on the current stream.
//!
//! `A X` without a transpose runs pocaflow's own kernel (`kernels/spmm.cu`, balanced by
//! nonzeros) for the column counts where the H200 measured it faster than cuSPARSE (see
//! [`SpmmPlan::new`]: 1.4x at 64 float32 columns); the rest through cuSPARSE.
//!
//! Layouts, chosen for the caller: cuSPARSE's SpMM is several times faster with row-major dense
//! operands, so a column-major (or otherwise strided) `X` is copied into row-major order on the
//! device first (`k x n` elements, small next to the product), and `X op(A)` runs as
//! `op(A)^T X^T` on row-major copies, its result transposed into place.
//!
//! SpMV and SpMM only enqueue work. SpGEMM waits: the size of its result is read back before
//! the result is allocated. Format conversions without a cuSPARSE routine (validation,
//! COO to CSR, sorting) copy the index arrays to the host and run the host algorithms of
//! [`crate::csr`].

use super::kernels::{Kernels, SpmmArgs, SpmmPlan};
use super::storage::{context, CudaStorage};
use super::stream::StreamInner;
use crate::backend::{BackendStorage, CsrArgs, CsrParts};
use crate::csr::{self, with_sparse_types, Csr, CsrRef, SparseIndex, SparseValue};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::SparseDensePlan;
use cudarc::cusparse::sys as sp;
use std::collections::HashMap;
use std::ffi::c_void;

/// Sparse-matrix descriptors kept per device (the oldest dropped beyond this).
const MAX_DESCRIPTORS: usize = 64;

/// A cuSPARSE status as an [`Error`].
fn sparse_err(op: &str, status: sp::cusparseStatus_t) -> Error {
    // SAFETY: cusparseGetErrorName returns a static NUL-terminated string for any status.
    let name = unsafe { std::ffi::CStr::from_ptr(sp::cusparseGetErrorName(status)) };
    let name = name.to_string_lossy();
    match status {
        sp::cusparseStatus_t::CUSPARSE_STATUS_ALLOC_FAILED
        | sp::cusparseStatus_t::CUSPARSE_STATUS_INSUFFICIENT_RESOURCES => {
            Error::OutOfMemory(format!("{op}: {name}"))
        }
        _ => Error::Cuda(format!("{op} failed: {name}")),
    }
}

/// `.check(op)` on a cuSPARSE status.
trait StatusExt {
    /// `Ok` for success, else the error of [`sparse_err`].
    fn check(self, op: &str) -> Result<()>;
}

impl StatusExt for sp::cusparseStatus_t {
    fn check(self, op: &str) -> Result<()> {
        match self {
            sp::cusparseStatus_t::CUSPARSE_STATUS_SUCCESS => Ok(()),
            s => Err(sparse_err(op, s)),
        }
    }
}

/// What identifies a sparse-matrix descriptor: its arrays and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DescKey {
    rows: usize,
    cols: usize,
    nnz: usize,
    ptrs: [u64; 3],
    value: DType,
    index: DType,
}

/// An owned sparse-matrix descriptor.
#[derive(Debug)]
struct SpMat(sp::cusparseSpMatDescr_t);

impl Drop for SpMat {
    fn drop(&mut self) {
        // SAFETY: the descriptor was made by cusparseCreateCsr and is destroyed once.
        let _ = unsafe { sp::cusparseDestroySpMat(self.0) };
    }
}

/// An owned dense-matrix descriptor.
struct DnMat(sp::cusparseDnMatDescr_t);

impl Drop for DnMat {
    fn drop(&mut self) {
        // SAFETY: made by cusparseCreateDnMat, destroyed once.
        let _ = unsafe { sp::cusparseDestroyDnMat(self.0) };
    }
}

/// An owned dense-vector descriptor.
struct DnVec(sp::cusparseDnVecDescr_t);

impl Drop for DnVec {
    fn drop(&mut self) {
        // SAFETY: made by cusparseCreateDnVec, destroyed once.
        let _ = unsafe { sp::cusparseDestroyDnVec(self.0) };
    }
}

/// An owned SpGEMM descriptor.
struct SpGemmDesc(sp::cusparseSpGEMMDescr_t);

impl Drop for SpGemmDesc {
    fn drop(&mut self) {
        // SAFETY: made by cusparseSpGEMM_createDescr, destroyed once.
        let _ = unsafe { sp::cusparseSpGEMM_destroyDescr(self.0) };
    }
}

/// cuSPARSE's state for one device: the handle and the descriptor cache.
#[derive(Debug)]
pub(crate) struct Sparse {
    handle: sp::cusparseHandle_t,
    descriptors: HashMap<DescKey, (u64, SpMat)>,
    uses: u64,
}

// SAFETY: the handle is used under the device's Mutex only, from one thread at a time.
unsafe impl Send for Sparse {}

impl Drop for Sparse {
    fn drop(&mut self) {
        self.descriptors.clear();
        // SAFETY: the handle was made by cusparseCreate and is destroyed once.
        let _ = unsafe { sp::cusparseDestroy(self.handle) };
    }
}

impl Sparse {
    /// A handle on the bound device's context.
    ///
    /// # Errors
    /// [`Error::Device`] if cuSPARSE is not installed; cuSPARSE errors.
    pub(crate) fn new() -> Result<Sparse> {
        // SAFETY: only dlopens candidate names.
        if !unsafe { sp::is_culib_present() } {
            return Err(Error::Device(
                "sparse products on CUDA need cuSPARSE (libcusparse.so.12, from the CUDA 13 \
                 toolkit or the nvidia-cusparse pip wheel), which was not found"
                    .into(),
            ));
        }
        let mut handle = std::ptr::null_mut();
        // SAFETY: writes one handle.
        unsafe { sp::cusparseCreate(&mut handle) }.check("cusparseCreate")?;
        Ok(Sparse {
            handle,
            descriptors: HashMap::new(),
            uses: 0,
        })
    }

    /// Points the handle at `stream`.
    fn on(&mut self, stream: &StreamInner) -> Result<sp::cusparseHandle_t> {
        // SAFETY: a live handle and a live stream of its context.
        unsafe { sp::cusparseSetStream(self.handle, stream.raw as sp::cudaStream_t) }
            .check("cusparseSetStream")?;
        Ok(self.handle)
    }

    /// The (cached) descriptor of `a`.
    fn csr(&mut self, a: &CsrArgs<'_, CudaStorage>) -> Result<sp::cusparseSpMatDescr_t> {
        let key = DescKey {
            rows: a.rows,
            cols: a.cols,
            nnz: a.indices.len(),
            ptrs: [a.indptr.at(0), a.indices.at(0), a.data.at(0)],
            value: a.data.dtype(),
            index: a.indices.dtype(),
        };
        self.uses += 1;
        let uses = self.uses;
        if let Some(entry) = self.descriptors.get_mut(&key) {
            entry.0 = uses;
            return Ok(entry.1 .0);
        }
        if self.descriptors.len() >= MAX_DESCRIPTORS {
            let oldest = self
                .descriptors
                .iter()
                .min_by_key(|(_, v)| v.0)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.descriptors.remove(&k);
            }
        }
        let desc = create_csr(&key)?;
        let raw = desc.0;
        self.descriptors.insert(key, (uses, desc));
        Ok(raw)
    }
}

/// A new CSR descriptor for `key`'s arrays.
fn create_csr(key: &DescKey) -> Result<SpMat> {
    let mut desc = std::ptr::null_mut();
    // SAFETY: the pointers address live device arrays of the stated sizes and types; the
    // descriptor only records them.
    unsafe {
        sp::cusparseCreateCsr(
            &mut desc,
            key.rows as i64,
            key.cols as i64,
            key.nnz as i64,
            key.ptrs[0] as *mut c_void,
            key.ptrs[1] as *mut c_void,
            key.ptrs[2] as *mut c_void,
            index_type(key.index),
            index_type(key.index),
            sp::cusparseIndexBase_t::CUSPARSE_INDEX_BASE_ZERO,
            value_type(key.value),
        )
    }
    .check("cusparseCreateCsr")?;
    Ok(SpMat(desc))
}

/// cuSPARSE's name of an index dtype (`int32` or `int64`).
fn index_type(d: DType) -> sp::cusparseIndexType_t {
    if d == DType::I32 {
        sp::cusparseIndexType_t::CUSPARSE_INDEX_32I
    } else {
        sp::cusparseIndexType_t::CUSPARSE_INDEX_64I
    }
}

/// CUDA's name of a value dtype (`float32` or `float64`).
fn value_type(d: DType) -> sp::cudaDataType {
    if d == DType::F64 {
        sp::cudaDataType::CUDA_R_64F
    } else {
        sp::cudaDataType::CUDA_R_32F
    }
}

/// The operation flag for `transpose`.
fn operation(transpose: bool) -> sp::cusparseOperation_t {
    if transpose {
        sp::cusparseOperation_t::CUSPARSE_OPERATION_TRANSPOSE
    } else {
        sp::cusparseOperation_t::CUSPARSE_OPERATION_NON_TRANSPOSE
    }
}

/// Host copies of 1 and 0 in `dtype` (cuSPARSE's alpha and beta, read on the host).
struct Scalars {
    one: [u8; 8],
    zero: [u8; 8],
}

impl Scalars {
    fn new(dtype: DType) -> Scalars {
        let one = if dtype == DType::F64 {
            1f64.to_le_bytes()
        } else {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&1f32.to_le_bytes());
            b
        };
        Scalars { one, zero: [0; 8] }
    }

    fn one(&self) -> *const c_void {
        self.one.as_ptr().cast()
    }

    fn zero(&self) -> *const c_void {
        self.zero.as_ptr().cast()
    }
}

/// A device workspace of at least `bytes` (one byte when none is needed, so the pointer is
/// valid), for use on the current stream.
fn workspace(ordinal: usize, bytes: usize) -> Result<CudaStorage> {
    CudaStorage::alloc(ordinal, DType::U8, bytes.max(1))
}

/// A whole device buffer copied into a host vector (waits for the copy).
fn to_host<T: Element>(s: &CudaStorage) -> Result<Vec<T>> {
    let l = Layout::c_contiguous(&[s.len()]);
    let mut host = CpuBuffer::for_overwrite(T::DTYPE, s.len())?;
    s.download(&l, &mut host, &l)?;
    Ok(host
        .into_vec::<T>()
        .expect("an owned buffer of the element's dtype"))
}

/// A host vector copied into a new buffer on device `ordinal`.
fn to_device<T: Element>(ordinal: usize, v: Vec<T>) -> Result<CudaStorage> {
    let l = Layout::c_contiguous(&[v.len()]);
    let s = CudaStorage::alloc(ordinal, T::DTYPE, v.len())?;
    s.upload(&l, &CpuBuffer::from_vec(v), &l)?;
    Ok(s)
}

/// A host CSR matrix copied to device `ordinal`.
fn upload_csr<T: SparseValue + Element, I: SparseIndex + Element>(
    ordinal: usize,
    m: Csr<T, I>,
) -> Result<CsrParts<CudaStorage>> {
    Ok(CsrParts {
        indptr: to_device(ordinal, m.indptr)?,
        indices: to_device(ordinal, m.indices)?,
        data: to_device(ordinal, m.data)?,
    })
}

/// Runs `f` on a host copy of `a`.
fn on_host<T, I, R>(
    a: &CsrArgs<'_, CudaStorage>,
    f: impl FnOnce(CsrRef<'_, T, I>) -> Result<R>,
) -> Result<R>
where
    T: SparseValue + Element,
    I: SparseIndex + Element,
{
    let (indptr, indices, data) = (
        to_host::<I>(a.indptr)?,
        to_host::<I>(a.indices)?,
        to_host::<T>(a.data)?,
    );
    f(CsrRef {
        rows: a.rows,
        cols: a.cols,
        indptr: &indptr,
        indices: &indices,
        data: &data,
    })
}

/// `a` in canonical form: itself, or a canonical copy made on the host.
fn canonical<'a>(
    a: &CsrArgs<'a, CudaStorage>,
    keep: &'a mut Option<CsrParts<CudaStorage>>,
) -> Result<CsrArgs<'a, CudaStorage>> {
    if a.canonical {
        return Ok(*a);
    }
    let parts = keep.insert(csr_canonical(a)?);
    Ok(CsrArgs {
        indptr: &parts.indptr,
        indices: &parts.indices,
        data: &parts.data,
        canonical: true,
        ..*a
    })
}

/// The narrowest index dtype cuSPARSE's 32-bit-only routines (`csr2csc`, SpGEMM) accept, or an
/// error naming `op` for 64-bit indices.
fn require_i32(op: &str, a: &CsrArgs<'_, CudaStorage>) -> Result<()> {
    if a.indices.dtype() == DType::I32 {
        Ok(())
    } else {
        Err(Error::DType(format!(
            "{op} on CUDA needs int32 indices (cuSPARSE's limit); this matrix has int64 \
             indices because its shape or nnz exceed int32"
        )))
    }
}

/// See [`BackendStorage::csr_check`]: on a host copy of the index arrays.
pub(super) fn csr_check(a: &CsrArgs<'_, CudaStorage>) -> Result<bool> {
    with_sparse_types!(a.data.dtype(), a.indices.dtype(), _T, I, {
        let indptr = to_host::<I>(a.indptr)?;
        let indices = to_host::<I>(a.indices)?;
        csr::check_csr(a.rows, a.cols, &indptr, &indices, a.data.len())
            .map(|c| c.sorted)
            .map_err(Error::Shape)
    })
}

/// See [`BackendStorage::coo_to_csr`]: on the host.
pub(super) fn coo_to_csr(
    rows: usize,
    cols: usize,
    row: &CudaStorage,
    col: &CudaStorage,
    data: &CudaStorage,
    index: DType,
) -> Result<CsrParts<CudaStorage>> {
    let ordinal = data.ordinal();
    with_sparse_types!(data.dtype(), index, T, O, {
        let (r, c, v) = (
            to_host::<i64>(row)?,
            to_host::<i64>(col)?,
            to_host::<T>(data)?,
        );
        csr::check_coo(rows, cols, &r, &c, v.len()).map_err(Error::Shape)?;
        upload_csr(
            ordinal,
            csr::coo_to_csr::<T, i64, O>(rows, cols, &r, &c, &v),
        )
    })
}

/// See [`BackendStorage::csr_canonical`]: on the host.
pub(super) fn csr_canonical(a: &CsrArgs<'_, CudaStorage>) -> Result<CsrParts<CudaStorage>> {
    let ordinal = a.data.ordinal();
    with_sparse_types!(a.data.dtype(), a.indices.dtype(), T, I, {
        on_host::<T, I, _>(a, |m| upload_csr(ordinal, csr::canonicalize(m)))
    })
}

/// See [`BackendStorage::csr_transpose`]: cuSPARSE's `csr2csc` (int32 indices).
pub(super) fn csr_transpose(a: &CsrArgs<'_, CudaStorage>) -> Result<CsrParts<CudaStorage>> {
    require_i32("the sparse transpose", a)?;
    let ordinal = a.data.ordinal();
    let (d, stream) = context(ordinal)?;
    let nnz = a.indices.len();
    let out = CsrParts {
        indptr: CudaStorage::alloc(ordinal, DType::I32, a.cols + 1)?,
        indices: CudaStorage::alloc(ordinal, DType::I32, nnz)?,
        data: CudaStorage::alloc(ordinal, a.data.dtype(), nnz)?,
    };
    let mut sparse = d.cusparse()?;
    let handle = sparse.on(&stream)?;
    let args = |buffer: *mut c_void, size: *mut usize| {
        // SAFETY: every pointer addresses a live device array of the size cuSPARSE reads
        // or writes (m + 1 / n + 1 row pointers, nnz indices and values); `size` is a
        // host usize; the call is enqueued on the handle's stream.
        unsafe {
            if size.is_null() {
                sp::cusparseCsr2cscEx2(
                    handle,
                    a.rows as i32,
                    a.cols as i32,
                    nnz as i32,
                    a.data.at(0) as *const c_void,
                    a.indptr.at(0) as *const i32,
                    a.indices.at(0) as *const i32,
                    out.data.at(0) as *mut c_void,
                    out.indptr.at(0) as *mut i32,
                    out.indices.at(0) as *mut i32,
                    value_type(a.data.dtype()),
                    sp::cusparseAction_t::CUSPARSE_ACTION_NUMERIC,
                    sp::cusparseIndexBase_t::CUSPARSE_INDEX_BASE_ZERO,
                    sp::cusparseCsr2CscAlg_t::CUSPARSE_CSR2CSC_ALG_DEFAULT,
                    buffer,
                )
                .check("cusparseCsr2cscEx2")
            } else {
                sp::cusparseCsr2cscEx2_bufferSize(
                    handle,
                    a.rows as i32,
                    a.cols as i32,
                    nnz as i32,
                    a.data.at(0) as *const c_void,
                    a.indptr.at(0) as *const i32,
                    a.indices.at(0) as *const i32,
                    out.data.at(0) as *mut c_void,
                    out.indptr.at(0) as *mut i32,
                    out.indices.at(0) as *mut i32,
                    value_type(a.data.dtype()),
                    sp::cusparseAction_t::CUSPARSE_ACTION_NUMERIC,
                    sp::cusparseIndexBase_t::CUSPARSE_INDEX_BASE_ZERO,
                    sp::cusparseCsr2CscAlg_t::CUSPARSE_CSR2CSC_ALG_DEFAULT,
                    size,
                )
                .check("cusparseCsr2cscEx2_bufferSize")
            }
        }
    };
    let mut size = 0usize;
    args(std::ptr::null_mut(), &mut size)?;
    let ws = workspace(ordinal, size)?;
    args(ws.at(0) as *mut c_void, std::ptr::null_mut())?;
    for s in [
        a.indptr,
        a.indices,
        a.data,
        &out.indptr,
        &out.indices,
        &out.data,
        &ws,
    ] {
        s.record_use(&stream);
    }
    Ok(out)
}

/// See [`BackendStorage::csr_to_dense`]: cuSPARSE's sparse-to-dense into a row-major view.
pub(super) fn csr_to_dense(
    y: &CudaStorage,
    dst: &Layout,
    a: &CsrArgs<'_, CudaStorage>,
) -> Result<()> {
    if dst.numel() == 0 {
        return Ok(());
    }
    // cuSPARSE writes each stored value: duplicates are summed first.
    let mut keep = None;
    let a = &canonical(a, &mut keep)?;
    let (d, stream) = context(y.ordinal())?;
    let mut sparse = d.cusparse()?;
    let handle = sparse.on(&stream)?;
    let mat = sparse.csr(a)?;
    let dense = dn_mat(y, dst.offset(), a.rows, a.cols, a.cols)?;
    let alg = sp::cusparseSparseToDenseAlg_t::CUSPARSE_SPARSETODENSE_ALG_DEFAULT;
    let mut size = 0usize;
    // SAFETY: live descriptors of live arrays; `size` is a host usize.
    unsafe { sp::cusparseSparseToDense_bufferSize(handle, mat, dense.0, alg, &mut size) }
        .check("cusparseSparseToDense_bufferSize")?;
    let ws = workspace(y.ordinal(), size)?;
    // SAFETY: as above, with a workspace of the size asked for, on the handle's stream.
    unsafe { sp::cusparseSparseToDense(handle, mat, dense.0, alg, ws.at(0) as *mut c_void) }
        .check("cusparseSparseToDense")?;
    for s in [a.indptr, a.indices, a.data, y, &ws] {
        s.record_use(&stream);
    }
    Ok(())
}

/// See [`BackendStorage::csr_dense`].
pub(super) fn csr_dense(
    y: &CudaStorage,
    dst: &Layout,
    plan: &SparseDensePlan,
    a: &CsrArgs<'_, CudaStorage>,
    x: &CudaStorage,
    x_layout: &Layout,
) -> Result<()> {
    let (rows, cols) = (dst.shape()[0], dst.shape()[1]);
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let ordinal = y.ordinal();
    let (d, stream) = context(ordinal)?;
    if a.indices.len() == 0 || x_layout.numel() == 0 {
        return y.fill(dst, crate::Scalar::Int(0));
    }
    let mut sparse = d.cusparse()?;
    let handle = sparse.on(&stream)?;
    let mat = sparse.csr(a)?;
    let scalars = Scalars::new(y.dtype());
    let dtype = y.dtype();
    let mut temps = Vec::new();
    if !plan.dense_first {
        // y = op(A) x: x as a row-major (k, n) matrix.
        let (k, n) = (x_layout.shape()[0], x_layout.shape()[1]);
        let (copy, xo, ld) = row_major(x, x_layout)?;
        let xs = copy.as_ref().unwrap_or(x);
        if n == 1 {
            let (xv, yv) = (dn_vec(xs, xo, k)?, dn_vec(y, dst.offset(), rows)?);
            spmv(
                handle,
                plan.transpose,
                mat,
                &xv,
                &yv,
                &scalars,
                dtype,
                ordinal,
                &mut temps,
            )?;
        } else if let Some(scratch) = own_spmm(
            d.kernels(),
            plan.transpose,
            a,
            (xs, xo, ld),
            (y, dst.offset(), cols),
            &stream,
        )? {
            temps.extend(scratch);
        } else {
            let xm = dn_mat(xs, xo, k, n, ld)?;
            let ym = dn_mat(y, dst.offset(), rows, cols, cols)?;
            spmm(
                handle,
                plan.transpose,
                mat,
                &xm,
                &ym,
                &scalars,
                dtype,
                ordinal,
                &mut temps,
            )?;
        }
        temps.extend(copy);
    } else {
        // y = x op(A), as y^T = op(A)^T x^T on row-major copies of x^T and y^T.
        let xt = x_layout.permute(&[1, 0])?;
        let (k, p) = (xt.shape()[0], xt.shape()[1]);
        let (copy, xo, ld) = row_major(x, &xt)?;
        let xs = copy.as_ref().unwrap_or(x);
        let yt = CudaStorage::alloc(ordinal, dtype, rows * cols)?;
        if p == 1 {
            let (xv, yv) = (dn_vec(xs, xo, k)?, dn_vec(&yt, 0, cols)?);
            spmv(
                handle,
                !plan.transpose,
                mat,
                &xv,
                &yv,
                &scalars,
                dtype,
                ordinal,
                &mut temps,
            )?;
        } else {
            let xm = dn_mat(xs, xo, k, p, ld)?;
            let ym = dn_mat(&yt, 0, cols, rows, rows)?;
            spmm(
                handle,
                !plan.transpose,
                mat,
                &xm,
                &ym,
                &scalars,
                dtype,
                ordinal,
                &mut temps,
            )?;
        }
        drop(sparse);
        temps.extend(copy);
        let yt_layout = Layout::c_contiguous(&[cols, rows]).permute(&[1, 0])?;
        y.copy_from(dst, &yt, &yt_layout)?;
        temps.push(yt);
    }
    for s in [a.indptr, a.indices, a.data, x, y] {
        s.record_use(&stream);
    }
    for t in &temps {
        t.record_use(&stream);
    }
    Ok(())
}

/// See [`BackendStorage::spgemm`]: cuSPARSE's SpGEMM (int32 indices); waits for the size
/// of the result.
pub(super) fn spgemm(
    a: &CsrArgs<'_, CudaStorage>,
    b: &CsrArgs<'_, CudaStorage>,
) -> Result<CsrParts<CudaStorage>> {
    require_i32("the sparse product", a)?;
    let ordinal = a.data.ordinal();
    let dtype = a.data.dtype();
    let (rows, cols) = (a.rows, b.cols);
    if a.indices.len() == 0 || b.indices.len() == 0 || rows == 0 || cols == 0 {
        let indptr = CudaStorage::alloc(ordinal, DType::I32, rows + 1)?;
        indptr.fill(&Layout::c_contiguous(&[rows + 1]), crate::Scalar::Int(0))?;
        return Ok(CsrParts {
            indptr,
            indices: CudaStorage::alloc(ordinal, DType::I32, 0)?,
            data: CudaStorage::alloc(ordinal, dtype, 0)?,
        });
    }
    let (mut keep_a, mut keep_b) = (None, None);
    let a = canonical(a, &mut keep_a)?;
    let b = canonical(b, &mut keep_b)?;
    let (d, stream) = context(ordinal)?;
    let mut sparse = d.cusparse()?;
    let handle = sparse.on(&stream)?;
    let (ma, mb) = (sparse.csr(&a)?, sparse.csr(&b)?);
    let indptr = CudaStorage::alloc(ordinal, DType::I32, rows + 1)?;
    let mc = create_csr(&DescKey {
        rows,
        cols,
        nnz: 0,
        ptrs: [indptr.at(0), 0, 0],
        value: dtype,
        index: DType::I32,
    })?;
    let mut desc = std::ptr::null_mut();
    // SAFETY: writes one descriptor.
    unsafe { sp::cusparseSpGEMM_createDescr(&mut desc) }.check("cusparseSpGEMM_createDescr")?;
    let desc = SpGemmDesc(desc);
    let scalars = Scalars::new(dtype);
    let nt = operation(false);
    let alg = sp::cusparseSpGEMMAlg_t::CUSPARSE_SPGEMM_DEFAULT;
    let (vt, one, zero) = (value_type(dtype), scalars.one(), scalars.zero());
    let mut temps = Vec::new();
    // Work estimation, then compute (one signature): each is asked for its buffer size, then
    // run with a buffer of that size.
    type Phase = unsafe fn(
        sp::cusparseHandle_t,
        sp::cusparseOperation_t,
        sp::cusparseOperation_t,
        *const c_void,
        sp::cusparseConstSpMatDescr_t,
        sp::cusparseConstSpMatDescr_t,
        *const c_void,
        sp::cusparseSpMatDescr_t,
        sp::cudaDataType,
        sp::cusparseSpGEMMAlg_t,
        sp::cusparseSpGEMMDescr_t,
        *mut usize,
        *mut c_void,
    ) -> sp::cusparseStatus_t;
    let phases: [(&str, Phase); 2] = [
        (
            "cusparseSpGEMM_workEstimation",
            sp::cusparseSpGEMM_workEstimation,
        ),
        ("cusparseSpGEMM_compute", sp::cusparseSpGEMM_compute),
    ];
    for (name, phase) in phases {
        let call = |size: &mut usize, buffer: *mut c_void| {
            // SAFETY: live handle and descriptors of live arrays; host scalars of the compute
            // type; `size` a host usize; a null buffer asks for its size, else a buffer of
            // that size; enqueued on the handle's stream.
            unsafe {
                phase(
                    handle, nt, nt, one, ma, mb, zero, mc.0, vt, alg, desc.0, size, buffer,
                )
            }
            .check(name)
        };
        let mut size = 0usize;
        call(&mut size, std::ptr::null_mut())?;
        let buf = workspace(ordinal, size)?;
        call(&mut size, buf.at(0) as *mut c_void)?;
        temps.push(buf);
    }
    let (mut r, mut c, mut nnz) = (0i64, 0i64, 0i64);
    // SAFETY: a live descriptor; three host integers.
    unsafe { sp::cusparseSpMatGetSize(mc.0, &mut r, &mut c, &mut nnz) }
        .check("cusparseSpMatGetSize")?;
    let nnz = usize::try_from(nnz).unwrap_or(0);
    if nnz > i32::MAX as usize {
        return Err(Error::DType(format!(
            "the sparse product has {nnz} nonzeros, more than cuSPARSE's int32 indices hold"
        )));
    }
    let indices = CudaStorage::alloc(ordinal, DType::I32, nnz)?;
    let data = CudaStorage::alloc(ordinal, dtype, nnz)?;
    // SAFETY: a live descriptor and arrays of rows + 1 and nnz elements.
    unsafe {
        sp::cusparseCsrSetPointers(
            mc.0,
            indptr.at(0) as *mut c_void,
            indices.at(0) as *mut c_void,
            data.at(0) as *mut c_void,
        )
    }
    .check("cusparseCsrSetPointers")?;
    // SAFETY: as for the phases above.
    unsafe { sp::cusparseSpGEMM_copy(handle, nt, nt, one, ma, mb, zero, mc.0, vt, alg, desc.0) }
        .check("cusparseSpGEMM_copy")?;
    for s in [a.indptr, a.indices, a.data, b.indptr, b.indices, b.data] {
        s.record_use(&stream);
    }
    for s in temps.iter().chain([&indptr, &indices, &data]) {
        s.record_use(&stream);
    }
    Ok(CsrParts {
        indptr,
        indices,
        data,
    })
}

/// `y = A x` by pocaflow's kernel (`kernels/spmm.cu`) for a row-major `x` (leading dimension
/// `ldx`, element `(0, 0)` at `xo`) and a C-contiguous `y` of `cols` columns (at `yo`), where
/// its [`SpmmPlan`] says it beats cuSPARSE (and `transpose` is false): the scratch arrays, to
/// be kept until the kernel ran; `None` where cuSPARSE is to run.
fn own_spmm(
    kernels: &Kernels,
    transpose: bool,
    a: &CsrArgs<'_, CudaStorage>,
    (x, xo, ldx): (&CudaStorage, usize, usize),
    (y, yo, cols): (&CudaStorage, usize, usize),
    stream: &StreamInner,
) -> Result<Option<[CudaStorage; 2]>> {
    let nnz = a.indices.len();
    let plan = (!transpose)
        .then(|| {
            SpmmPlan::new(
                y.dtype(),
                a.rows,
                nnz,
                cols,
                (x.at(xo), ldx),
                (y.at(yo), cols),
            )
        })
        .flatten();
    let Some(plan) = plan else {
        return Ok(None);
    };
    let ordinal = y.ordinal();
    let cont = CudaStorage::alloc(ordinal, DType::I64, plan.chunks)?;
    let part = CudaStorage::alloc(ordinal, y.dtype(), plan.chunks * cols)?;
    kernels.spmm(
        stream,
        &plan,
        &SpmmArgs {
            indptr: a.indptr.at(0),
            indices: a.indices.at(0),
            data: a.data.at(0),
            x: x.at(xo),
            ldx,
            y: y.at(yo),
            ldy: cols,
            rows: a.rows,
            ncols: cols,
            nnz,
            value: y.dtype(),
            index: a.indices.dtype(),
            cont: cont.at(0),
            part: part.at(0),
        },
    )?;
    Ok(Some([cont, part]))
}

/// `x[l]` (2-D) as a row-major matrix: a row-major copy unless its rows are already dense
/// (`None`), the offset of element `(0, 0)` in the buffer used and its leading dimension. A
/// single column (read as a dense vector) is copied unless its elements are adjacent.
fn row_major(x: &CudaStorage, l: &Layout) -> Result<(Option<CudaStorage>, usize, usize)> {
    let (k, n) = (l.shape()[0], l.shape()[1]);
    let (rs, cs) = (l.strides()[0], l.strides()[1]);
    let dense_rows = if n == 1 {
        k == 1 || rs == 1
    } else {
        cs == 1 && (k == 1 || rs > 0 && rs as usize >= n)
    };
    if dense_rows {
        let ld = if k == 1 { n } else { rs as usize };
        return Ok((None, l.offset(), ld));
    }
    let c = Layout::c_contiguous(&[k, n]);
    let copy = CudaStorage::alloc(x.ordinal(), x.dtype(), k * n)?;
    copy.copy_from(&c, x, l)?;
    Ok((Some(copy), 0, n))
}

/// A row-major dense-matrix descriptor of `(rows, cols)` at element `offset` of `s`.
fn dn_mat(s: &CudaStorage, offset: usize, rows: usize, cols: usize, ld: usize) -> Result<DnMat> {
    let mut desc = std::ptr::null_mut();
    // SAFETY: the view lies inside the live buffer; the descriptor only records it.
    unsafe {
        sp::cusparseCreateDnMat(
            &mut desc,
            rows as i64,
            cols as i64,
            ld as i64,
            s.at(offset) as *mut c_void,
            value_type(s.dtype()),
            sp::cusparseOrder_t::CUSPARSE_ORDER_ROW,
        )
    }
    .check("cusparseCreateDnMat")?;
    Ok(DnMat(desc))
}

/// A dense-vector descriptor of `len` elements at element `offset` of `s`.
fn dn_vec(s: &CudaStorage, offset: usize, len: usize) -> Result<DnVec> {
    let mut desc = std::ptr::null_mut();
    // SAFETY: the vector lies inside the live buffer; the descriptor only records it.
    unsafe {
        sp::cusparseCreateDnVec(
            &mut desc,
            len as i64,
            s.at(offset) as *mut c_void,
            value_type(s.dtype()),
        )
    }
    .check("cusparseCreateDnVec")?;
    Ok(DnVec(desc))
}

/// `y = op(A) x` (cuSPARSE's SpMV, default algorithm), its workspace kept in `temps`.
#[allow(clippy::too_many_arguments)]
fn spmv(
    handle: sp::cusparseHandle_t,
    transpose: bool,
    mat: sp::cusparseSpMatDescr_t,
    x: &DnVec,
    y: &DnVec,
    s: &Scalars,
    dtype: DType,
    ordinal: usize,
    temps: &mut Vec<CudaStorage>,
) -> Result<()> {
    let (op, vt) = (operation(transpose), value_type(dtype));
    let alg = sp::cusparseSpMVAlg_t::CUSPARSE_SPMV_ALG_DEFAULT;
    let mut size = 0usize;
    // SAFETY: live handle and descriptors; host scalars of the compute type; `size` a host
    // usize.
    unsafe {
        sp::cusparseSpMV_bufferSize(
            handle,
            op,
            s.one(),
            mat,
            x.0,
            s.zero(),
            y.0,
            vt,
            alg,
            &mut size,
        )
    }
    .check("cusparseSpMV_bufferSize")?;
    let ws = workspace(ordinal, size)?;
    // SAFETY: as above, with a workspace of the size asked for, on the handle's stream.
    unsafe {
        sp::cusparseSpMV(
            handle,
            op,
            s.one(),
            mat,
            x.0,
            s.zero(),
            y.0,
            vt,
            alg,
            ws.at(0) as *mut c_void,
        )
    }
    .check("cusparseSpMV")?;
    temps.push(ws);
    Ok(())
}

/// `Y = op(A) X` with row-major `X` and `Y` (cuSPARSE's SpMM: CSR algorithm 2, the row-major
/// one, without a transpose; the default algorithm with one), its workspace kept in `temps`.
/// Measured on the H200 (power-law n = 200,000, 4M nonzeros, 64 columns): algorithm 2 345 us,
/// 3 365 us, 1 1336 us, 3 with its preprocessing per call 3385 us; a column-major `X` read in
/// place through `opB = transpose` 2615 us, against 380 us for the tiled copy into row-major
/// order and algorithm 2.
#[allow(clippy::too_many_arguments)]
fn spmm(
    handle: sp::cusparseHandle_t,
    transpose: bool,
    mat: sp::cusparseSpMatDescr_t,
    x: &DnMat,
    y: &DnMat,
    s: &Scalars,
    dtype: DType,
    ordinal: usize,
    temps: &mut Vec<CudaStorage>,
) -> Result<()> {
    let (op, nt, vt) = (operation(transpose), operation(false), value_type(dtype));
    let alg = if transpose {
        sp::cusparseSpMMAlg_t::CUSPARSE_SPMM_ALG_DEFAULT
    } else {
        sp::cusparseSpMMAlg_t::CUSPARSE_SPMM_CSR_ALG2
    };
    let mut size = 0usize;
    // SAFETY: live handle and descriptors; host scalars; `size` a host usize.
    unsafe {
        sp::cusparseSpMM_bufferSize(
            handle,
            op,
            nt,
            s.one(),
            mat,
            x.0,
            s.zero(),
            y.0,
            vt,
            alg,
            &mut size,
        )
    }
    .check("cusparseSpMM_bufferSize")?;
    let ws = workspace(ordinal, size)?;
    // SAFETY: as above, with a workspace of the size asked for, on the handle's stream.
    unsafe {
        sp::cusparseSpMM(
            handle,
            op,
            nt,
            s.one(),
            mat,
            x.0,
            s.zero(),
            y.0,
            vt,
            alg,
            ws.at(0) as *mut c_void,
        )
    }
    .check("cusparseSpMM")?;
    temps.push(ws);
    Ok(())
}

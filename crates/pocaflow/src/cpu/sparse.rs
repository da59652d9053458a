//! The CPU backend's sparse primitives: the host algorithms of [`crate::csr`] on the storages'
//! slices (read locks on the operands, the write lock on the destination, which is always a
//! new buffer).

use super::storage::CpuStorage;
use crate::backend::{CsrArgs, CsrParts};
use crate::csr::{self, with_sparse_types, Csr, CsrRef, DenseMut, DenseRef};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::host::CpuBuffer;
use crate::layout::Layout;
use crate::plan::SparseDensePlan;
use std::sync::RwLockReadGuard;

/// Read guards on a CSR matrix's three buffers.
struct Locked<'a> {
    rows: usize,
    cols: usize,
    indptr: RwLockReadGuard<'a, CpuBuffer>,
    indices: RwLockReadGuard<'a, CpuBuffer>,
    data: RwLockReadGuard<'a, CpuBuffer>,
}

impl<'a> Locked<'a> {
    fn new(a: &CsrArgs<'a, CpuStorage>) -> Locked<'a> {
        Locked {
            rows: a.rows,
            cols: a.cols,
            indptr: a.indptr.read(),
            indices: a.indices.read(),
            data: a.data.read(),
        }
    }

    /// The matrix as slices of `T` values and `I` indices (the dtypes the caller matched).
    fn view<T: Element, I: Element>(&self) -> CsrRef<'_, T, I> {
        CsrRef {
            rows: self.rows,
            cols: self.cols,
            indptr: self.indptr.as_slice::<I>().expect("index dtype matches"),
            indices: self.indices.as_slice::<I>().expect("index dtype matches"),
            data: self.data.as_slice::<T>().expect("value dtype matches"),
        }
    }
}

/// A host CSR matrix as new storages.
fn parts<T: Element, I: Element>(m: Csr<T, I>) -> CsrParts<CpuStorage> {
    let store = |b| CpuStorage::new(b);
    CsrParts {
        indptr: store(CpuBuffer::from_vec(m.indptr)),
        indices: store(CpuBuffer::from_vec(m.indices)),
        data: store(CpuBuffer::from_vec(m.data)),
    }
}

/// The 2-D view `l` of `data`.
fn dense_ref<'a, T>(data: &'a [T], l: &Layout) -> DenseRef<'a, T> {
    DenseRef {
        data,
        offset: l.offset(),
        rows: l.shape()[0],
        cols: l.shape()[1],
        rs: l.strides()[0],
        cs: l.strides()[1],
    }
}

/// The mutable 2-D view `l` of `data`.
fn dense_mut<'a, T>(data: &'a mut [T], l: &Layout) -> DenseMut<'a, T> {
    DenseMut {
        data,
        offset: l.offset(),
        rows: l.shape()[0],
        cols: l.shape()[1],
        rs: l.strides()[0],
        cs: l.strides()[1],
    }
}

/// See [`crate::backend::BackendStorage::csr_check`].
pub(super) fn csr_check(a: &CsrArgs<'_, CpuStorage>) -> Result<bool> {
    let m = Locked::new(a);
    with_sparse_types!(m.data.dtype(), m.indices.dtype(), _T, I, {
        let v = m.view::<_T, I>();
        csr::check_csr(v.rows, v.cols, v.indptr, v.indices, v.data.len())
            .map(|c| c.sorted)
            .map_err(Error::Shape)
    })
}

/// See [`crate::backend::BackendStorage::coo_to_csr`] (the coordinates are `int64`).
pub(super) fn coo_to_csr(
    (rows, cols): (usize, usize),
    row: &CpuStorage,
    col: &CpuStorage,
    data: &CpuStorage,
    index: DType,
) -> Result<CsrParts<CpuStorage>> {
    let (r, c, d) = (row.read(), col.read(), data.read());
    let (r, c) = (
        r.as_slice::<i64>().expect("int64 coordinates"),
        c.as_slice::<i64>().expect("int64 coordinates"),
    );
    with_sparse_types!(d.dtype(), index, T, O, {
        let v = d.as_slice::<T>().expect("value dtype matches");
        csr::check_coo(rows, cols, r, c, v.len()).map_err(Error::Shape)?;
        Ok(parts(csr::coo_to_csr::<T, i64, O>(rows, cols, r, c, v)))
    })
}

/// See [`crate::backend::BackendStorage::csr_canonical`].
pub(super) fn csr_canonical(a: &CsrArgs<'_, CpuStorage>) -> Result<CsrParts<CpuStorage>> {
    let m = Locked::new(a);
    with_sparse_types!(m.data.dtype(), m.indices.dtype(), T, I, {
        Ok(parts(csr::canonicalize(m.view::<T, I>())))
    })
}

/// See [`crate::backend::BackendStorage::csr_transpose`].
pub(super) fn csr_transpose(a: &CsrArgs<'_, CpuStorage>) -> Result<CsrParts<CpuStorage>> {
    let m = Locked::new(a);
    with_sparse_types!(m.data.dtype(), m.indices.dtype(), T, I, {
        Ok(parts(csr::transpose(m.view::<T, I>())))
    })
}

/// See [`crate::backend::BackendStorage::csr_to_dense`].
pub(super) fn csr_to_dense(
    y: &CpuStorage,
    dst: &Layout,
    a: &CsrArgs<'_, CpuStorage>,
) -> Result<()> {
    let m = Locked::new(a);
    let mut out = y.write();
    with_sparse_types!(m.data.dtype(), m.indices.dtype(), T, I, {
        let o = out.as_mut_slice::<T>().expect("value dtype matches");
        csr::to_dense(m.view::<T, I>(), dense_mut(o, dst));
        Ok(())
    })
}

/// See [`crate::backend::BackendStorage::csr_dense`].
pub(super) fn csr_dense(
    y: &CpuStorage,
    dst: &Layout,
    plan: &SparseDensePlan,
    a: &CsrArgs<'_, CpuStorage>,
    x: &CpuStorage,
    x_layout: &Layout,
) -> Result<()> {
    let m = Locked::new(a);
    let xs = x.read();
    let mut out = y.write();
    with_sparse_types!(m.data.dtype(), m.indices.dtype(), T, I, {
        let xv = dense_ref(xs.as_slice::<T>().expect("value dtype matches"), x_layout);
        let yv = dense_mut(out.as_mut_slice::<T>().expect("value dtype matches"), dst);
        if plan.dense_first {
            csr::dense_spmm(xv, m.view::<T, I>(), plan.transpose, yv);
        } else {
            csr::spmm(m.view::<T, I>(), plan.transpose, xv, yv);
        }
        Ok(())
    })
}

/// See [`crate::backend::BackendStorage::spgemm`]: Gustavson's algorithm in one pass, with
/// `int32` indices when the product's count of flops (which bounds its entries) fits, else
/// `int64` ones, narrowed to `int32` if the entries turn out to fit (as SciPy chooses).
pub(super) fn spgemm(
    a: &CsrArgs<'_, CpuStorage>,
    b: &CsrArgs<'_, CpuStorage>,
) -> Result<CsrParts<CpuStorage>> {
    let (ma, mb) = (Locked::new(a), Locked::new(b));
    let shape = (a.rows, b.cols);
    with_sparse_types!(ma.data.dtype(), ma.indices.dtype(), T, I, {
        let (va, vb) = (ma.view::<T, I>(), mb.view::<T, I>());
        let flops = csr::spgemm_flops(va, vb);
        if csr::index_dtype(shape, flops[a.rows]) == DType::I32 {
            return Ok(parts(csr::spgemm::<T, I, i32>(va, vb, &flops)));
        }
        let c = csr::spgemm::<T, I, i64>(va, vb, &flops);
        if csr::index_dtype(shape, c.data.len()) == DType::I32 {
            Ok(parts(c.with_index::<i32>()))
        } else {
            Ok(parts(c))
        }
    })
}
